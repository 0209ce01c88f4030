//! RFC 3986 percent-encoding as RFC 5849 section 3.6 requires it.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but the unreserved characters `A-Z a-z 0-9 - . _ ~` is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `s` (as UTF-8) with upper-case hex, leaving only unreserved characters.
///
/// ```
/// use integration_host::oauth::percent_encode;
/// assert_eq!(percent_encode("a b+c~é"), "a%20b%2Bc~%C3%A9");
/// ```
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}
