//! JSON Web Tokens for admin and customer bearer tokens, as Magento's `JwtUserToken` issues
//! them: HMAC-SHA256 (or SHA-384/512 by configuration), the key id in the header, and the
//! claims `uid`, `utypid`, `iat`, `exp`.
//!
//! Only the configured algorithm is accepted: `none`, any asymmetric algorithm and the other
//! HMAC sizes are refused before a key is touched. Several keys may be configured: the first
//! signs, every one verifies, chosen by the header's `kid`. The signature is compared in
//! constant time. This is a small module rather than a general JWT crate because only three
//! HMAC algorithms are ever needed, and general crates bring RSA and elliptic-curve code (and
//! the algorithm-confusion pitfalls that come with it) that this server must never run.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};

use crate::config::{JwtAlgorithm, KeySpec};

/// The claims of a user token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The admin or customer id.
    pub uid: i64,
    /// The user type: 2 admin, 3 customer (Magento's `UserContextInterface` codes).
    pub utypid: i64,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expires at, unix seconds: the token is refused from this second on.
    pub exp: i64,
}

/// Why a token was refused. The message never contains the token or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token's algorithm is not the configured one")]
    Algorithm,
    #[error("the token names no configured key")]
    UnknownKey,
    #[error("the token's signature does not match")]
    Signature,
    #[error("the token's claims are missing or malformed")]
    Claims,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued in the future")]
    NotYetValid,
}

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    alg: &'a str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<&'a str>,
    #[serde(default)]
    kid: Option<&'a str>,
}

/// Seconds a token's `iat` may lie ahead of this server's clock (clocks of several servers
/// drift a little).
const CLOCK_SKEW: i64 = 60;

/// Signs and verifies user tokens with the configured algorithm and keys.
#[derive(Clone)]
pub struct JwtKeys {
    algorithm: JwtAlgorithm,
    keys: Vec<KeySpec>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .field("keys", &self.keys)
            .finish()
    }
}

fn name(algorithm: JwtAlgorithm) -> &'static str {
    match algorithm {
        JwtAlgorithm::Hs256 => "HS256",
        JwtAlgorithm::Hs384 => "HS384",
        JwtAlgorithm::Hs512 => "HS512",
    }
}

/// HMAC of `input` under `key` with the algorithm's hash.
fn mac(algorithm: JwtAlgorithm, key: &[u8], input: &[u8]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &[u8]) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes any key");
        m.update(input);
        m.finalize().into_bytes().to_vec()
    }
    match algorithm {
        JwtAlgorithm::Hs256 => run::<Hmac<sha2::Sha256>>(key, input),
        JwtAlgorithm::Hs384 => run::<Hmac<sha2::Sha384>>(key, input),
        JwtAlgorithm::Hs512 => run::<Hmac<sha2::Sha512>>(key, input),
    }
}

impl JwtKeys {
    /// Keys newest first; at least one is required.
    pub fn new(algorithm: JwtAlgorithm, keys: Vec<KeySpec>) -> Self {
        assert!(!keys.is_empty(), "at least one signing key");
        Self { algorithm, keys }
    }

    /// A signed token with the newest key.
    ///
    /// ```
    /// use integration_host::config::{JwtAlgorithm, KeySpec};
    /// use integration_host::crypto::{Claims, JwtKeys};
    /// let key = KeySpec::parse("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    /// let keys = JwtKeys::new(JwtAlgorithm::Hs256, vec![key]);
    /// let claims = Claims { uid: 7, utypid: 3, iat: 1000, exp: 4600 };
    /// let token = keys.sign(&claims);
    /// assert_eq!(keys.verify(&token, 2000), Ok(claims));
    /// assert!(keys.verify(&token, 4600).is_err());
    /// ```
    pub fn sign(&self, claims: &Claims) -> String {
        self.sign_payload(&serde_json::to_vec(claims).expect("claims serialize"))
    }

    /// Signs the claims with more beside them (after-interceptors' claims); a name the claims
    /// already have is left out, so the server's own always stand.
    pub fn sign_with(&self, claims: &Claims, more: &[(String, serde_json::Value)]) -> String {
        if more.is_empty() {
            return self.sign(claims);
        }
        let serde_json::Value::Object(mut all) =
            serde_json::to_value(claims).expect("claims serialize")
        else {
            unreachable!("claims serialize to an object")
        };
        for (name, value) in more {
            all.entry(name.clone()).or_insert_with(|| value.clone());
        }
        self.sign_payload(&serde_json::to_vec(&all).expect("claims serialize"))
    }

    fn sign_payload(&self, payload: &[u8]) -> String {
        let key = &self.keys[0];
        let header = Header {
            alg: name(self.algorithm),
            typ: Some("JWT"),
            kid: Some(key.id()),
        };
        let mut token = B64URL.encode(serde_json::to_vec(&header).expect("header serializes"));
        token.push('.');
        token.push_str(&B64URL.encode(payload));
        let signature = mac(self.algorithm, key.material(), token.as_bytes());
        token.push('.');
        token.push_str(&B64URL.encode(signature));
        token
    }

    /// The claims of a token this server signed (with any configured key) that has not
    /// expired at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, JwtError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header_json = B64URL.decode(header).map_err(|_| JwtError::Malformed)?;
        let header_fields: Header<'_> =
            serde_json::from_slice(&header_json).map_err(|_| JwtError::Malformed)?;
        if header_fields.alg != name(self.algorithm) {
            return Err(JwtError::Algorithm);
        }
        let key = header_fields
            .kid
            .and_then(|kid| self.keys.iter().find(|k| k.id() == kid))
            .ok_or(JwtError::UnknownKey)?;
        let signature = B64URL.decode(signature).map_err(|_| JwtError::Malformed)?;
        let signed = &token[..header.len() + 1 + payload.len()];
        let expected = mac(self.algorithm, key.material(), signed.as_bytes());
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_slice(),
            signature.as_slice(),
        )) {
            return Err(JwtError::Signature);
        }
        let payload = B64URL.decode(payload).map_err(|_| JwtError::Claims)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| JwtError::Claims)?;
        if now >= claims.exp {
            return Err(JwtError::Expired);
        }
        if claims.iat > now + CLOCK_SKEW {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> KeySpec {
        KeySpec::parse(&format!(
            "{id}:{}",
            base64::prelude::BASE64_STANDARD.encode([byte; 32])
        ))
        .unwrap()
    }

    fn claims() -> Claims {
        Claims {
            uid: 5,
            utypid: 2,
            iat: 1_000,
            exp: 4_600,
        }
    }

    fn forge(header: &str, payload: &str, key: &[u8], algorithm: JwtAlgorithm) -> String {
        let mut t = format!("{}.{}", B64URL.encode(header), B64URL.encode(payload));
        let sig = mac(algorithm, key, t.as_bytes());
        t.push('.');
        t.push_str(&B64URL.encode(sig));
        t
    }

    #[test]
    fn every_algorithm_round_trips_and_names_itself() {
        for alg in [
            JwtAlgorithm::Hs256,
            JwtAlgorithm::Hs384,
            JwtAlgorithm::Hs512,
        ] {
            let keys = JwtKeys::new(alg, vec![key("a", 1)]);
            let token = keys.sign(&claims());
            let header: serde_json::Value =
                serde_json::from_slice(&B64URL.decode(token.split('.').next().unwrap()).unwrap())
                    .unwrap();
            assert_eq!(header["alg"], name(alg));
            assert_eq!(header["kid"], "a");
            assert_eq!(keys.verify(&token, 2_000), Ok(claims()));
            // Another size of the same family is refused.
            for other in [
                JwtAlgorithm::Hs256,
                JwtAlgorithm::Hs384,
                JwtAlgorithm::Hs512,
            ] {
                if other != alg {
                    let verifier = JwtKeys::new(other, vec![key("a", 1)]);
                    assert_eq!(verifier.verify(&token, 2_000), Err(JwtError::Algorithm));
                }
            }
        }
    }

    #[test]
    fn rotation_old_keys_verify_new_key_signs() {
        let old = JwtKeys::new(JwtAlgorithm::Hs256, vec![key("old", 1)]);
        let rotated = JwtKeys::new(JwtAlgorithm::Hs256, vec![key("new", 2), key("old", 1)]);
        let before = old.sign(&claims());
        assert_eq!(rotated.verify(&before, 2_000), Ok(claims()));
        let after = rotated.sign(&claims());
        assert_eq!(old.verify(&after, 2_000), Err(JwtError::UnknownKey));
        let dropped = JwtKeys::new(JwtAlgorithm::Hs256, vec![key("new", 2)]);
        assert_eq!(dropped.verify(&before, 2_000), Err(JwtError::UnknownKey));
    }

    #[test]
    fn refusals() {
        let keys = JwtKeys::new(JwtAlgorithm::Hs256, vec![key("a", 1)]);
        let payload = serde_json::to_string(&claims()).unwrap();
        // alg none, with and without a signature.
        let none = format!(
            "{}.{}.",
            B64URL.encode(r#"{"alg":"none","kid":"a"}"#),
            B64URL.encode(&payload)
        );
        assert_eq!(keys.verify(&none, 2_000), Err(JwtError::Algorithm));
        let none_upper = forge(
            r#"{"alg":"None","kid":"a"}"#,
            &payload,
            &[1; 32],
            JwtAlgorithm::Hs256,
        );
        assert_eq!(keys.verify(&none_upper, 2_000), Err(JwtError::Algorithm));
        // The wrong key under the right id.
        let wrong = forge(
            r#"{"alg":"HS256","kid":"a"}"#,
            &payload,
            &[9; 32],
            JwtAlgorithm::Hs256,
        );
        assert_eq!(keys.verify(&wrong, 2_000), Err(JwtError::Signature));
        // No kid.
        let no_kid = forge(
            r#"{"alg":"HS256"}"#,
            &payload,
            &[1; 32],
            JwtAlgorithm::Hs256,
        );
        assert_eq!(keys.verify(&no_kid, 2_000), Err(JwtError::UnknownKey));
        // A tampered payload keeps the old signature.
        let token = keys.sign(&claims());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut tampered = claims();
        tampered.uid = 1;
        parts[1] = B64URL.encode(serde_json::to_vec(&tampered).unwrap());
        assert_eq!(
            keys.verify(&parts.join("."), 2_000),
            Err(JwtError::Signature)
        );
        // Expiry is exclusive; iat in the future beyond the skew.
        assert_eq!(keys.verify(&token, 4_599), Ok(claims()));
        assert_eq!(keys.verify(&token, 4_600), Err(JwtError::Expired));
        assert_eq!(
            keys.verify(&token, 1_000 - CLOCK_SKEW - 1),
            Err(JwtError::NotYetValid)
        );
        // Claims of the wrong types.
        let bad = forge(
            r#"{"alg":"HS256","kid":"a"}"#,
            r#"{"uid":"5","utypid":2,"iat":1,"exp":9999}"#,
            &[1; 32],
            JwtAlgorithm::Hs256,
        );
        assert_eq!(keys.verify(&bad, 2_000), Err(JwtError::Claims));
        // Shapes that are not JWTs.
        for s in ["", "a.b", "a.b.c.d", "...", "e30.e30.", "!!.??.**"] {
            assert!(keys.verify(s, 2_000).is_err(), "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_single_byte_change_is_refused(pos in 0usize..400, byte in 0u8..128) {
            let keys = JwtKeys::new(JwtAlgorithm::Hs256, vec![key("a", 1)]);
            let token = keys.sign(&claims());
            let mut bytes = token.clone().into_bytes();
            let pos = pos % bytes.len();
            proptest::prop_assume!(bytes[pos] != byte);
            bytes[pos] = byte;
            let changed = String::from_utf8(bytes).unwrap();
            // Base64url without padding can encode one value two ways in its last character;
            // a change that decodes to the same bytes is the same token.
            let same = changed.split('.').map(|p| B64URL.decode(p).ok()).collect::<Vec<_>>()
                == token.split('.').map(|p| B64URL.decode(p).ok()).collect::<Vec<_>>();
            proptest::prop_assume!(!same);
            proptest::prop_assert!(keys.verify(&changed, 2_000).is_err());
        }
    }
}
