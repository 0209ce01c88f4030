//! The signature base string and HMAC signatures (RFC 5849 sections 3.4.1 to 3.4.2).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};

use super::SignedUrl;
use super::encode::{ascii, encode_bytes};

/// A signature method this server can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    HmacSha1,
    HmacSha256,
}

impl SignatureMethod {
    /// Parses the `oauth_signature_method` value (exact, upper-case, as clients send it).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HMAC-SHA1" => Some(Self::HmacSha1),
            "HMAC-SHA256" => Some(Self::HmacSha256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha1 => "HMAC-SHA1",
            Self::HmacSha256 => "HMAC-SHA256",
        }
    }
}
/// Each parameter percent-encoded as `name=value`, in one buffer, in the order of section
/// 3.4.1.3.2: by encoded name, then encoded value, in byte order (not by the joined text: `=`
/// sorts after some characters a longer name may hold).
struct EncodedPairs {
    buf: Vec<u8>,
    /// Per pair: where it starts, where its `=` is, where it ends.
    spans: Vec<(usize, usize, usize)>,
}

impl EncodedPairs {
    fn new(params: &[(String, String)]) -> Self {
        let raw: usize = params.iter().map(|(k, v)| k.len() + v.len() + 1).sum();
        let mut buf = Vec::with_capacity(raw + raw / 2);
        let mut spans = Vec::with_capacity(params.len());
        for (k, v) in params {
            let start = buf.len();
            encode_bytes(&mut buf, k.as_bytes());
            let eq = buf.len();
            buf.push(b'=');
            encode_bytes(&mut buf, v.as_bytes());
            spans.push((start, eq, buf.len()));
        }
        spans.sort_unstable_by(|&(a, ae, aend), &(b, be, bend)| {
            (&buf[a..ae], &buf[ae + 1..aend]).cmp(&(&buf[b..be], &buf[be + 1..bend]))
        });
        Self { buf, spans }
    }

    /// The pairs in order, each as `name=value`.
    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.spans
            .iter()
            .map(|&(start, _, end)| &self.buf[start..end])
    }
}

/// The normalised parameter string (section 3.4.1.3.2): names and values percent-encoded,
/// sorted by name then value in byte order, duplicates kept, joined with `&`. The caller
/// passes every parameter but `oauth_signature` and `realm`.
pub fn normalize_parameters(params: &[(String, String)]) -> String {
    let pairs = EncodedPairs::new(params);
    let mut out = Vec::with_capacity(pairs.buf.len() + pairs.spans.len());
    for (i, pair) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(pair);
    }
    ascii(out)
}

/// The signature base string: `METHOD&enc(base URI)&enc(normalised parameters)`.
///
/// ```
/// use integration_host::oauth::{SignedUrl, base_string};
/// let u = SignedUrl::parse("http://example.com/r?b=2").unwrap();
/// let params = vec![("b".to_owned(), "2".to_owned()), ("a".to_owned(), "x y".to_owned())];
/// assert_eq!(base_string("get", &u, &params), "GET&http%3A%2F%2Fexample.com%2Fr&a%3Dx%2520y%26b%3D2");
/// ```
pub fn base_string(method: &str, url: &SignedUrl, params: &[(String, String)]) -> String {
    let pairs = EncodedPairs::new(params);
    let uri = url.base_uri().as_bytes();
    let mut out = Vec::with_capacity(
        method.len() + 2 + uri.len() * 2 + (pairs.buf.len() + pairs.spans.len() * 2) * 3 / 2,
    );
    out.extend_from_slice(method.as_bytes());
    out.make_ascii_uppercase();
    out.push(b'&');
    encode_bytes(&mut out, uri);
    out.push(b'&');
    // The normalised string encoded again: its `&` separators are written encoded, and each
    // pair, already encoded, holds only unreserved bytes, `%` and `=`.
    for (i, pair) in pairs.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"%26");
        }
        encode_bytes(&mut out, pair);
    }
    String::from_utf8(out).expect("the method as given, the rest ASCII")
}

fn signing_key(consumer_secret: &str, token_secret: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity((consumer_secret.len() + token_secret.len()) * 3 / 2 + 1);
    encode_bytes(&mut key, consumer_secret.as_bytes());
    key.push(b'&');
    encode_bytes(&mut key, token_secret.as_bytes());
    key
}

fn mac_bytes(method: SignatureMethod, key: &[u8], data: &[u8]) -> Vec<u8> {
    match method {
        SignatureMethod::HmacSha1 => {
            let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).expect("any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        SignatureMethod::HmacSha256 => {
            let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    }
}

/// The base64 signature of `base` with the consumer and token secrets (section 3.4.2).
pub fn sign(
    method: SignatureMethod,
    consumer_secret: &str,
    token_secret: &str,
    base: &str,
) -> String {
    B64.encode(mac_bytes(
        method,
        &signing_key(consumer_secret, token_secret),
        base.as_bytes(),
    ))
}

/// Whether `signature` (base64, as sent) is the signature of `base`; compared in constant time.
pub fn verify(
    method: SignatureMethod,
    consumer_secret: &str,
    token_secret: &str,
    base: &str,
    signature: &str,
) -> bool {
    // Room for any digest this server checks; a longer value cannot match.
    let mut buf = [0u8; 64];
    let Ok(n) = B64.decode_slice(signature.trim(), &mut buf) else {
        return false;
    };
    let given = &buf[..n];
    let key = signing_key(consumer_secret, token_secret);
    match method {
        SignatureMethod::HmacSha1 => {
            let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&key).expect("any key length");
            m.update(base.as_bytes());
            m.verify_slice(given).is_ok()
        }
        SignatureMethod::HmacSha256 => {
            let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).expect("any key length");
            m.update(base.as_bytes());
            m.verify_slice(given).is_ok()
        }
    }
}
