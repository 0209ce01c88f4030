//! RFC 3986 percent-encoding as RFC 5849 section 3.6 requires it.
//!
//! Written out rather than through `percent_encoding`'s `Display`: every signed request
//! encodes its parameters twice, and the formatting machinery made that a tenth of the cost of
//! a request. Bytes in, bytes out (the output is ASCII), so that no step checks UTF-8 again.
//! Byte for byte the same output as the crate's (a unit test compares them).

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Byte classes, for the encoder here and the URL reader in `signed_url`.
pub(super) const UNRESERVED: u8 = 1;
/// Kept as it is in a URL's path (`%` included: the standard leaves escapes as written).
pub(super) const PATH: u8 = 2;
/// Kept as it is in the query of an `http(s)` URL.
pub(super) const QUERY: u8 = 4;

/// The classes of every byte value.
pub(super) static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        let path = unreserved
            || matches!(
                b,
                b'!' | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
                    | b'%'
            );
        let query = (path && b != b'\'') || b == b'?';
        t[i] = if unreserved { UNRESERVED } else { 0 }
            | if path { PATH } else { 0 }
            | if query { QUERY } else { 0 };
        i += 1;
    }
    t
};

/// Whether a byte is one of the unreserved characters `A-Z a-z 0-9 - . _ ~`.
fn unreserved(b: u8) -> bool {
    CLASS[b as usize] & UNRESERVED != 0
}

/// Appends `s` percent-encoded with upper-case hex to `out`: runs of unreserved bytes are
/// copied whole.
pub(super) fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len());
    let mut rest = s;
    loop {
        let run = rest
            .iter()
            .position(|&b| !unreserved(b))
            .unwrap_or(rest.len());
        out.extend_from_slice(&rest[..run]);
        let Some(&b) = rest.get(run) else { break };
        out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        rest = &rest[run + 1..];
    }
}

/// Percent-encodes `s` (as UTF-8) with upper-case hex, leaving only unreserved characters.
///
/// ```
/// use integration_host::oauth::percent_encode;
/// assert_eq!(percent_encode("a b+c~é"), "a%20b%2Bc~%C3%A9");
/// ```
pub fn percent_encode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + s.len() / 2);
    encode_bytes(&mut out, s.as_bytes());
    ascii(out)
}

/// Text that this module wrote: only ASCII.
pub(super) fn ascii(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("percent-encoded text is ASCII")
}

#[cfg(test)]
mod tests {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

    const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');

    proptest::proptest! {
        #[test]
        fn same_as_the_percent_encoding_crate(s in "\\PC*") {
            proptest::prop_assert_eq!(
                super::percent_encode(&s),
                utf8_percent_encode(&s, UNRESERVED).to_string()
            );
        }
    }

    #[test]
    fn every_byte_value() {
        for c in (0u32..0x800).filter_map(char::from_u32) {
            let s = c.to_string();
            assert_eq!(
                super::percent_encode(&s),
                utf8_percent_encode(&s, UNRESERVED).to_string()
            );
        }
    }
}
