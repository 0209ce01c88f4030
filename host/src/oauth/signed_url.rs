//! The URL a client signed, reduced to what a signature covers (RFC 5849 section 3.4.1.2):
//! the base string URI and the query, whose parameters are signed.
//!
//! A URL is read as the WHATWG URL standard reads it (the `url` crate), which is how clients
//! and Magento agree on it: scheme and host in lower case, the scheme's default port dropped,
//! dot segments resolved, some characters percent-encoded. Every signed request needs this,
//! and a full parse cost about as much as checking the signature; so the plain shape almost
//! every request has (`http` or `https`, a name or a dotted IPv4 address, a path and query of
//! characters the standard leaves as they are, no dot segments) is read directly, and anything
//! else goes through the `url` crate. Both give the same answer (a property test compares them).

use super::encode::{CLASS, PATH, QUERY};

/// The base string URI and the query of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    base_uri: String,
    query: Option<String>,
}

impl SignedUrl {
    /// Reads an absolute URL; `None` when it is not one.
    ///
    /// ```
    /// use integration_host::oauth::SignedUrl;
    /// let u = SignedUrl::parse("HTTPS://Shop.Example:443/rest/V1/x?a=1").unwrap();
    /// assert_eq!(u.base_uri(), "https://shop.example/rest/V1/x");
    /// assert_eq!(u.query(), Some("a=1"));
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        let plain = text.split_once("://").and_then(|(scheme, rest)| {
            let at = rest.find('/')?;
            plain(scheme, &rest[..at], &rest[at..])
        });
        plain.or_else(|| url::Url::parse(text).ok().map(|u| Self::from(&u)))
    }

    /// The URL `scheme://authority` followed by `path_and_query` (which starts with `/`).
    pub fn from_parts(scheme: &str, authority: &str, path_and_query: &str) -> Option<Self> {
        plain(scheme, authority, path_and_query).or_else(|| {
            url::Url::parse(&format!("{scheme}://{authority}{path_and_query}"))
                .ok()
                .map(|u| Self::from(&u))
        })
    }

    /// Scheme, host, port unless the scheme's default, and path: what the base string names.
    pub fn base_uri(&self) -> &str {
        &self.base_uri
    }

    /// The query, without its `?`; `Some("")` for a URL ending in `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }
}

impl From<&url::Url> for SignedUrl {
    fn from(url: &url::Url) -> Self {
        Self {
            base_uri: base_string_uri(url),
            query: url.query().map(str::to_owned),
        }
    }
}

/// The plain shape read directly, or `None` for anything the `url` crate must read.
fn plain(scheme: &str, authority: &str, path_and_query: &str) -> Option<SignedUrl> {
    let (scheme, default_port) = if scheme.eq_ignore_ascii_case("http") {
        ("http", "80")
    } else if scheme.eq_ignore_ascii_case("https") {
        ("https", "443")
    } else {
        return None;
    };
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if !plain_host(host) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if canonical::<u16>(p) => Some(p).filter(|p| *p != default_port),
        Some(_) => return None,
    };
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    if !plain_path(path) || !query.is_none_or(plain_query) {
        return None;
    }
    let mut base_uri = String::with_capacity(
        scheme.len() + 3 + host.len() + port.map_or(0, |p| p.len() + 1) + path.len(),
    );
    base_uri.push_str(scheme);
    base_uri.push_str("://");
    base_uri.extend(host.chars().map(|c| c.to_ascii_lowercase()));
    if let Some(p) = port {
        base_uri.push(':');
        base_uri.push_str(p);
    }
    base_uri.push_str(path);
    Some(SignedUrl {
        base_uri,
        query: query.map(str::to_owned),
    })
}

/// Labels of letters, digits and hyphens, none empty, none an IDNA label (`xn--`), the last
/// not a number (the standard reads such hosts as IPv4 addresses, in several notations); or
/// a dotted IPv4 address as the standard writes it.
fn plain_host(host: &str) -> bool {
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return false;
    }
    let labels = || host.split('.');
    if labels().any(|l| l.is_empty() || l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("xn--")))
    {
        return false;
    }
    let last = labels().next_back().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x"));
    if !numeric {
        return true;
    }
    labels().count() == 4 && labels().all(canonical::<u8>)
}

/// Decimal digits without a leading zero, within `T`: the standard writes such numbers back
/// unchanged (an IPv4 part, a port).
fn canonical<T: std::str::FromStr>(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && text.parse::<T>().is_ok()
}

/// A path from `/`, of bytes kept as they are, with no dot segment (`.`, `..`, or a dot
/// written `%2e`).
fn plain_path(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') || !b.iter().all(|&c| CLASS[c as usize] & PATH != 0) {
        return false;
    }
    if !b.iter().any(|&c| c == b'.' || c == b'%') {
        return true;
    }
    !path.split('/').any(|s| s == "." || s == "..")
        && !b.windows(3).any(|w| w.eq_ignore_ascii_case(b"%2e"))
}

/// A query of bytes kept as they are (the standard encodes `'` in the query of `http(s)`).
fn plain_query(query: &str) -> bool {
    query.bytes().all(|c| CLASS[c as usize] & QUERY != 0)
}

/// The base string URI: scheme and host in lower case, the port only when not the scheme's
/// default, the path as sent, no query or fragment (section 3.4.1.2).
///
/// ```
/// use integration_host::oauth::base_string_uri;
/// let u = url::Url::parse("HTTPS://Shop.Example:443/rest/V1/x?a=1").unwrap();
/// assert_eq!(base_string_uri(&u), "https://shop.example/rest/V1/x");
/// ```
pub fn base_string_uri(url: &url::Url) -> String {
    // `url` already lower-cases scheme and host and drops the scheme's default port.
    let (scheme, host, path) = (url.scheme(), url.host_str().unwrap_or_default(), url.path());
    let mut out = String::with_capacity(scheme.len() + 3 + host.len() + 6 + path.len());
    out.push_str(scheme);
    out.push_str("://");
    out.push_str(host);
    if let Some(port) = url.port() {
        use std::fmt::Write as _;
        let _ = write!(out, ":{port}");
    }
    out.push_str(path);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn through_url(text: &str) -> Option<SignedUrl> {
        url::Url::parse(text).ok().map(|u| SignedUrl::from(&u))
    }

    #[test]
    fn plain_urls_are_read_directly() {
        for (text, base, query) in [
            (
                "http://127.0.0.1:8080/rest/V1/x",
                "http://127.0.0.1:8080/rest/V1/x",
                None,
            ),
            (
                "HTTP://Shop.Example:80/a/b?",
                "http://shop.example/a/b",
                Some(""),
            ),
            (
                "https://shop.example:443/?a=1&b=%20",
                "https://shop.example/",
                Some("a=1&b=%20"),
            ),
            (
                "https://a-b.example:8443//x/",
                "https://a-b.example:8443//x/",
                None,
            ),
        ] {
            let (scheme, rest) = text.split_once("://").unwrap();
            let at = rest.find('/').unwrap();
            let fast = plain(scheme, &rest[..at], &rest[at..]).expect(text);
            assert_eq!(fast.base_uri(), base);
            assert_eq!(fast.query(), query);
            assert_eq!(Some(fast), through_url(text));
        }
    }

    #[test]
    fn other_urls_go_through_the_url_crate() {
        for text in [
            "http://1.2.3/x",
            "http://0x7f.1/x",
            "http://127.000.0.1/x",
            "http://example.0x1/x",
            "http://xn--nxasmq6b.example/x",
            "http://[::1]:8080/x",
            "http://h/a/../b",
            "http://h/a/%2e%2E/b",
            "http://h/a b",
            "http://h/p?it's",
            "http://u@h/p",
            "http://h:080/p",
            "http://h:/p",
            "ftp://h/p",
            "http://h./p",
        ] {
            let (scheme, rest) = text.split_once("://").unwrap();
            let at = rest.find('/').unwrap();
            assert_eq!(plain(scheme, &rest[..at], &rest[at..]), None, "{text}");
            assert_eq!(SignedUrl::parse(text), through_url(text), "{text}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Wherever the direct reading applies, it agrees with the `url` crate.
        #[test]
        fn the_direct_reading_agrees_with_the_url_crate(
            scheme in "(http|HTTPS|https|Http|ftp|ws)",
            host in "[a-zA-Z0-9.-]{1,6}(\\.[0-9xX]{1,4}){0,4}",
            port in "(:[0-9]{0,6})?",
            path in prop_oneof![
                3 => "(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,6}){1,4}",
                1 => "(/[a-zA-Z0-9._~%!$&'()*+,;=:@ <>{}\"\\\\-]{0,6}){1,4}",
            ],
            query in "(\\?[a-zA-Z0-9._~%!$&'()*+,;=:@/? #<>-]{0,12})?",
        ) {
            let authority = format!("{host}{port}");
            let pq = format!("{path}{query}");
            if let Some(fast) = plain(&scheme, &authority, &pq) {
                prop_assert_eq!(Some(fast), through_url(&format!("{scheme}://{authority}{pq}")));
            }
        }
    }
}
