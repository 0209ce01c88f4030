//! Collecting a request's OAuth parameters (RFC 5849 sections 3.4.1.3 and 3.5).

use super::SignedUrl;

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
        let value = value.trim_ascii_start();
        let (name, rest) = match value.bytes().position(|b| b.is_ascii_whitespace()) {
            Some(i) => (&value[..i], value[i..].trim_ascii()),
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
/// Whitespace around names, values and commas is HTTP's: ASCII.
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
        let skip = rest
            .bytes()
            .take_while(|b| b.is_ascii_whitespace() || *b == b',')
            .count();
        rest = &rest[skip..];
        if rest.is_empty() {
            break;
        }
        let eq = position(rest, b'=')
            .ok_or_else(|| ParseError::Malformed("a parameter has no value".into()))?;
        let name = rest[..eq].trim_ascii();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'%'))
        {
            return Err(ParseError::Malformed("a parameter name is invalid".into()));
        }
        rest = rest[eq + 1..].trim_ascii_start();
        let raw = if let Some(quoted) = rest.strip_prefix('"') {
            let end = position(quoted, b'"')
                .ok_or_else(|| ParseError::Malformed("a quoted value is not closed".into()))?;
            rest = &quoted[end + 1..];
            let after = rest.trim_ascii_start();
            if !after.is_empty() && !after.starts_with(',') {
                return Err(ParseError::Malformed(
                    "parameters must be separated by commas".into(),
                ));
            }
            &quoted[..end]
        } else {
            let end = position(rest, b',').unwrap_or(rest.len());
            let v = rest[..end].trim_ascii();
            rest = &rest[end..];
            v
        };
        out.push((decode(name)?, decode(raw)?));
    }
    Ok(out)
}

/// Where an ASCII byte first occurs (a plain loop: the distances here are short).
fn position(s: &str, byte: u8) -> Option<usize> {
    s.bytes().position(|b| b == byte)
}

/// Percent-decodes a header value as `percent_encoding` does (a `%` not followed by two hex
/// digits stays as it is), into a buffer sized once: the signature of nearly every request has
/// escapes, and decoding it byte by byte into a growing vector cost more than the rest of it.
fn decode(s: &str) -> Result<String, ParseError> {
    let bytes = s.as_bytes();
    let Some(first) = position(s, b'%') else {
        return Ok(s.to_owned());
    };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let Some((hi, lo)) = bytes
                .get(i + 1)
                .and_then(|&h| hex(h))
                .zip(bytes.get(i + 2).and_then(|&l| hex(l)))
        {
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ParseError::InvalidUtf8)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The pairs of a query string or form body (`+` is a space), each name and value
/// percent-decoded; one that is not UTF-8 is an error rather than a lossy guess (which would
/// sign other bytes than the client did).
fn form_pairs(s: &[u8]) -> Result<Vec<(String, String)>, ParseError> {
    let text = std::str::from_utf8(s).map_err(|_| ParseError::InvalidUtf8)?;
    let part = |p: &str| {
        if p.contains('+') {
            decode(&p.replace('+', " "))
        } else {
            decode(p)
        }
    };
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((part(k)?, part(v)?))
        })
        .collect()
}

/// The signed parameters with each query parameter's name as the request wrote it, not
/// percent-decoded (values stay decoded): the parameters npm `oauth-1.0a` signs, which splits
/// the query itself and decodes only the values. `None` when every query name reads the same
/// either way, so that there is no second candidate to try.
///
/// ```
/// use integration_host::oauth::{SignedUrl, collect, with_undecoded_query_names};
/// let url = SignedUrl::parse("http://shop.example/rest/V1/x?searchCriteria%5BpageSize%5D=10&a=1").unwrap();
/// let signed = collect(&url, None, None, b"").unwrap().signed;
/// assert_eq!(signed[0], ("searchCriteria[pageSize]".to_owned(), "10".to_owned()));
/// let literal = with_undecoded_query_names(&url, &signed).unwrap();
/// assert_eq!(literal[0], ("searchCriteria%5BpageSize%5D".to_owned(), "10".to_owned()));
/// assert_eq!(literal[1], ("a".to_owned(), "1".to_owned()));
/// ```
pub fn with_undecoded_query_names(
    url: &SignedUrl,
    signed: &[(String, String)],
) -> Option<Vec<(String, String)>> {
    let query = url.query()?;
    let decoded = form_pairs(query.as_bytes()).ok()?;
    let raw_names = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').map_or(pair, |(k, _)| k));
    let mut out = signed.to_vec();
    let mut renamed = vec![false; out.len()];
    let mut any = false;
    for ((name, value), raw) in decoded.iter().zip(raw_names) {
        if raw == name {
            continue;
        }
        // The first entry with this decoded name and value not renamed yet: the order of the
        // query's pairs within `signed` is the query's own.
        let at = out
            .iter()
            .zip(&renamed)
            .position(|((k, v), done)| !done && k == name && v == value)?;
        out[at].0 = raw.to_owned();
        renamed[at] = true;
        any = true;
    }
    any.then_some(out)
}

fn is_protocol(name: &str) -> bool {
    name.starts_with("oauth_")
}

/// What a request carries for OAuth.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Collected {
    /// `oauth_signature` as sent.
    pub signature: Option<String>,
    /// Every parameter that is signed: header protocol parameters (not `realm`), query and form
    /// body parameters, duplicates kept (but for a copy of a header parameter with the same
    /// value), `oauth_signature` left out. Each protocol parameter (`oauth_*`) is here once.
    pub signed: Vec<(String, String)>,
}

impl Collected {
    /// A protocol parameter (`oauth_*`, not `oauth_signature`), from whichever of the header,
    /// the form body and the query carried it.
    pub fn protocol(&self, name: &str) -> Option<&str> {
        self.signed
            .iter()
            .find(|(k, _)| k == name && is_protocol(k))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the request carries any protocol parameter or a signature: whether it means to
    /// be an OAuth request at all.
    pub fn is_oauth(&self) -> bool {
        self.signature.is_some() || self.signed.iter().any(|(k, _)| is_protocol(k))
    }
}

/// The first protocol parameter given twice, in the order header, form body, query
/// (`signed` holds form and query, then the header from `header_start`).
fn repeated(signed: &[(String, String)], header_start: usize) -> Option<String> {
    let names = || {
        signed
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| is_protocol(k))
    };
    // The usual handful compared pairwise, without a buffer; many sorted.
    let unique = if signed.len() <= 16 {
        names()
            .enumerate()
            .all(|(i, a)| names().skip(i + 1).all(|b| a != b))
    } else {
        let mut sorted: Vec<&str> = names().collect();
        sorted.sort_unstable();
        sorted.windows(2).all(|w| w[0] != w[1])
    };
    if unique {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    signed[header_start..]
        .iter()
        .chain(&signed[..header_start])
        .map(|(k, _)| k.as_str())
        .filter(|k| is_protocol(k))
        .find(|k| !seen.insert(*k))
        .map(str::to_owned)
}

/// Collects the OAuth parameters of a request: the `Authorization` header value (if any), the
/// query string of `url`, and `body` when `content_type` is `application/x-www-form-urlencoded`.
pub fn collect(
    url: &SignedUrl,
    authorization: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Collected, ParseError> {
    let header = match authorization {
        Some(v) if matches!(Scheme::of(v), Scheme::OAuth(_)) => parse_authorization(v)?,
        _ => Vec::new(),
    };
    let query = url.query().map(|q| form_pairs(q.as_bytes())).transpose()?;
    let is_form = content_type.is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    let form = if is_form {
        Some(form_pairs(body)?)
    } else {
        None
    };

    let header_oauth: Vec<(String, String)> =
        header.into_iter().filter(|(k, _)| is_protocol(k)).collect();
    let sources = form.into_iter().chain(query).flatten();
    let mut signed = Vec::with_capacity(header_oauth.len() + 4);
    for (k, v) in sources {
        // Some clients (npm oauth-1.0a) send a protocol parameter they signed once both in
        // the header and in the body or query. Magento merges the sources into one map, so
        // such a copy counts once; a different value is ambiguous and refused.
        if is_protocol(&k) && header_oauth.iter().any(|(hk, hv)| *hk == k && *hv == v) {
            continue;
        }
        signed.push((k, v));
    }
    let header_start = signed.len();
    signed.extend(header_oauth);
    if let Some(name) = repeated(&signed, header_start) {
        return Err(ParseError::Duplicate(name));
    }
    let signature = signed
        .iter()
        .position(|(k, _)| k == "oauth_signature")
        .map(|i| signed.remove(i).1);
    Ok(Collected { signature, signed })
}
