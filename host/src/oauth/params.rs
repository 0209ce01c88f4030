//! Collecting a request's OAuth parameters (RFC 5849 sections 3.4.1.3 and 3.5).

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

/// Why the OAuth parameters of a request could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the Authorization header is not an OAuth header")]
    NotOAuth,
    #[error("malformed Authorization header: {0}")]
    Malformed(String),
    #[error("parameter {0} is given more than once")]
    Duplicate(String),
    #[error("a parameter is not valid UTF-8 once decoded")]
    InvalidUtf8,
}

/// The authentication scheme of an `Authorization` header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme<'a> {
    /// `OAuth …` (any case); the text after the scheme name.
    OAuth(&'a str),
    /// `Bearer …` (any case); the token.
    Bearer(&'a str),
    Other,
}

impl<'a> Scheme<'a> {
    /// Reads the scheme of a header value; scheme names are case-insensitive (RFC 7235).
    ///
    /// ```
    /// use integration_host::oauth::Scheme;
    /// assert_eq!(Scheme::of("bearer abc"), Scheme::Bearer("abc"));
    /// assert!(matches!(Scheme::of("Oauth oauth_nonce=\"x\""), Scheme::OAuth(_)));
    /// assert_eq!(Scheme::of("Basic xyz"), Scheme::Other);
    /// ```
    pub fn of(value: &'a str) -> Self {
        let value = value.trim_start();
        let (name, rest) = match value.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (&value[..i], value[i..].trim()),
            None => (value, ""),
        };
        if name.eq_ignore_ascii_case("oauth") {
            Scheme::OAuth(rest)
        } else if name.eq_ignore_ascii_case("bearer") {
            Scheme::Bearer(rest)
        } else {
            Scheme::Other
        }
    }
}

/// Parses the parameters of an `Authorization: OAuth …` header value, in order.
///
/// Values are percent-decoded; a `+` stays a `+` (headers are not form-encoded), and values that
/// arrive unencoded are taken as they are. Quotes are optional, as some clients omit them.
///
/// ```
/// use integration_host::oauth::parse_authorization;
/// let p = parse_authorization(r#"OAuth realm="x", oauth_nonce="a%20b+c",oauth_version=1.0"#).unwrap();
/// assert_eq!(p[1], ("oauth_nonce".to_owned(), "a b+c".to_owned()));
/// assert_eq!(p[2], ("oauth_version".to_owned(), "1.0".to_owned()));
/// ```
pub fn parse_authorization(value: &str) -> Result<Vec<(String, String)>, ParseError> {
    let Scheme::OAuth(mut rest) = Scheme::of(value) else {
        return Err(ParseError::NotOAuth);
    };
    let mut out = Vec::with_capacity(8);
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            break;
        }
        let eq = rest
            .find('=')
            .ok_or_else(|| ParseError::Malformed("a parameter has no value".into()))?;
        let name = rest[..eq].trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'%'))
        {
            return Err(ParseError::Malformed("a parameter name is invalid".into()));
        }
        rest = rest[eq + 1..].trim_start();
        let raw = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| ParseError::Malformed("a quoted value is not closed".into()))?;
            rest = &quoted[end + 1..];
            let after = rest.trim_start();
            if !after.is_empty() && !after.starts_with(',') {
                return Err(ParseError::Malformed(
                    "parameters must be separated by commas".into(),
                ));
            }
            &quoted[..end]
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let v = rest[..end].trim();
            rest = &rest[end..];
            v
        };
        out.push((decode(name)?, decode(raw)?));
    }
    Ok(out)
}

fn decode(s: &str) -> Result<String, ParseError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ParseError::InvalidUtf8)
}

fn form_pairs(s: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(s)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// What a request carries for OAuth.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Collected {
    /// The protocol parameters (`oauth_*`, without `oauth_signature`) from the header, the form
    /// body and the query together; each may appear once (a copy of a header parameter with
    /// the same value elsewhere counts once).
    pub protocol: BTreeMap<String, String>,
    /// `oauth_signature` as sent.
    pub signature: Option<String>,
    /// Every parameter that is signed: header protocol parameters (not `realm`), query and form
    /// body parameters, duplicates kept (but for such copies), `oauth_signature` left out.
    pub signed: Vec<(String, String)>,
}

/// Collects the OAuth parameters of a request: the `Authorization` header value (if any), the
/// query string of `url`, and `body` when `content_type` is `application/x-www-form-urlencoded`.
pub fn collect(
    url: &url::Url,
    authorization: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Collected, ParseError> {
    let header = match authorization {
        Some(v) if matches!(Scheme::of(v), Scheme::OAuth(_)) => parse_authorization(v)?,
        _ => Vec::new(),
    };
    let query = url
        .query()
        .map(|q| form_pairs(q.as_bytes()))
        .unwrap_or_default();
    let is_form = content_type.is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    let form = if is_form {
        form_pairs(body)
    } else {
        Vec::new()
    };

    let header_oauth: Vec<(String, String)> = header
        .into_iter()
        .filter(|(k, _)| k.starts_with("oauth_"))
        .collect();
    let mut protocol = BTreeMap::new();
    let mut signature = None;
    let mut add = |k: &str, v: &str| -> Result<(), ParseError> {
        let taken = if k == "oauth_signature" {
            signature.replace(v.to_owned()).is_some()
        } else {
            protocol.insert(k.to_owned(), v.to_owned()).is_some()
        };
        if taken {
            Err(ParseError::Duplicate(k.to_owned()))
        } else {
            Ok(())
        }
    };
    let mut signed = Vec::with_capacity(header_oauth.len() + query.len() + form.len());
    for (k, v) in &header_oauth {
        add(k, v)?;
    }
    for (k, v) in form.into_iter().chain(query) {
        if k.starts_with("oauth_") {
            // Some clients (npm oauth-1.0a) send a protocol parameter they signed once both in
            // the header and in the body or query. Magento merges the sources into one map, so
            // such a copy counts once; a different value is ambiguous and refused.
            if header_oauth.iter().any(|(hk, hv)| *hk == k && *hv == v) {
                continue;
            }
            add(&k, &v)?;
        }
        signed.push((k, v));
    }
    signed.extend(header_oauth);
    signed.retain(|(k, _)| k != "oauth_signature");
    Ok(Collected {
        protocol,
        signature,
        signed,
    })
}
