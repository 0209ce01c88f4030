//! Authenticated encryption of stored secrets, with key rotation.
//!
//! A sealed value is `0x01 | id length | key id | 24-byte nonce | XChaCha20-Poly1305 output`.
//! The key id lets any configured key open it, so the newest key can encrypt while older
//! values stay readable. The caller's `purpose` (for example `oauth_consumer.secret`) is bound
//! as associated data, so a sealed value copied into another column does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::TryRngCore as _;
use sha2::Sha256;

use crate::config::KeySpec;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SecretBoxError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed with key `{0}`, which is not configured")]
    UnknownKey(String),
    #[error("sealed value failed authentication (tampered, or another purpose)")]
    Tampered,
    #[error("no secret key is configured")]
    NoKey,
}

/// Seals and opens secrets under the configured keys.
#[derive(Clone)]
pub struct SecretBox {
    keys: Vec<(String, XChaCha20Poly1305)>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<_> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SecretBox").field("key_ids", &ids).finish()
    }
}

impl SecretBox {
    /// Keys newest first: the first seals, all open. Only the first 32 bytes of each are used.
    pub fn new(keys: &[KeySpec]) -> Result<Self, SecretBoxError> {
        if keys.is_empty() {
            return Err(SecretBoxError::NoKey);
        }
        Ok(Self {
            keys: keys
                .iter()
                .map(|k| {
                    let cipher = XChaCha20Poly1305::new_from_slice(&k.material()[..32])
                        .expect("32-byte key");
                    (k.id().to_owned(), cipher)
                })
                .collect(),
        })
    }

    /// Encrypts `plaintext` under the newest key, bound to `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        let (id, cipher) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .expect("the operating system's random source works");
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory input");
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.push(id.len() as u8);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a value sealed by [`SecretBox::seal`] with the same `purpose`.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretBoxError> {
        let (&version, rest) = sealed.split_first().ok_or(SecretBoxError::Malformed)?;
        if version != VERSION {
            return Err(SecretBoxError::Malformed);
        }
        let (&id_len, rest) = rest.split_first().ok_or(SecretBoxError::Malformed)?;
        let id_len = id_len as usize;
        if rest.len() < id_len + NONCE_LEN + 16 {
            return Err(SecretBoxError::Malformed);
        }
        let (id, rest) = rest.split_at(id_len);
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let id = std::str::from_utf8(id).map_err(|_| SecretBoxError::Malformed)?;
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or_else(|| SecretBoxError::UnknownKey(id.to_owned()))?;
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| SecretBoxError::Tampered)
    }

    /// Opens a value that was sealed from UTF-8 text.
    pub fn open_string(&self, purpose: &str, sealed: &[u8]) -> Result<String, SecretBoxError> {
        String::from_utf8(self.open(purpose, sealed)?).map_err(|_| SecretBoxError::Malformed)
    }

    /// Id of the key that seals new values.
    pub fn sealing_key_id(&self) -> &str {
        &self.keys[0].0
    }

    /// Ids of every key that opens values, the sealing one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }

    /// `sealed` opened and sealed again under the newest key; `None` when the newest key
    /// already sealed it.
    pub fn reseal(&self, purpose: &str, sealed: &[u8]) -> Result<Option<Vec<u8>>, SecretBoxError> {
        if Self::key_id_of(sealed) == Some(self.sealing_key_id()) {
            return Ok(None);
        }
        let plain = self.open(purpose, sealed)?;
        Ok(Some(self.seal(purpose, &plain)))
    }

    /// Id of the key that sealed `sealed`, to find values still under an old key.
    pub fn key_id_of(sealed: &[u8]) -> Option<&str> {
        let id_len = *sealed.get(1)? as usize;
        std::str::from_utf8(sealed.get(2..2 + id_len)?).ok()
    }
}

/// Keyed hash (HMAC-SHA256) that finds a token row by its value without storing the value.
#[derive(Clone)]
pub struct LookupHasher {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for LookupHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LookupHasher(<redacted>)")
    }
}

impl LookupHasher {
    pub fn new(key: &KeySpec) -> Self {
        Self {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(key.material())
                .expect("HMAC takes any key length"),
        }
    }

    /// The 32-byte lookup hash of `value` for `purpose`.
    pub fn hash(&self, purpose: &str, value: &str) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> KeySpec {
        KeySpec::generate(id)
    }

    #[test]
    fn round_trip() {
        let b = SecretBox::new(&[key("a")]).unwrap();
        let sealed = b.seal("oauth_consumer.secret", b"s3cret");
        assert_eq!(b.open("oauth_consumer.secret", &sealed).unwrap(), b"s3cret");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        // Two seals of one value differ (random nonce).
        assert_ne!(sealed, b.seal("oauth_consumer.secret", b"s3cret"));
    }

    #[test]
    fn rotation_newest_seals_all_open() {
        let old = key("old");
        let new = key("new");
        let before = SecretBox::new(std::slice::from_ref(&old)).unwrap();
        let sealed_old = before.seal("p", b"value");
        let after = SecretBox::new(&[new.clone(), old.clone()]).unwrap();
        assert_eq!(after.open("p", &sealed_old).unwrap(), b"value");
        let sealed_new = after.seal("p", b"value");
        assert_eq!(SecretBox::key_id_of(&sealed_new), Some("new"));
        assert_eq!(SecretBox::key_id_of(&sealed_old), Some("old"));
        // A server that dropped the old key can no longer read the old value, and says why.
        let only_new = SecretBox::new(&[new]).unwrap();
        assert_eq!(
            only_new.open("p", &sealed_old),
            Err(SecretBoxError::UnknownKey("old".into()))
        );
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let b = SecretBox::new(&[key("k")]).unwrap();
        let sealed = b.seal("p", b"token-value");
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut t = sealed.clone();
                t[i] ^= 1 << bit;
                assert!(
                    b.open("p", &t).is_err(),
                    "flip of bit {bit} in byte {i} opened"
                );
            }
        }
        assert!(b.open("p", &sealed[..sealed.len() - 1]).is_err());
        assert!(b.open("p", &[]).is_err());
    }

    #[test]
    fn purpose_is_bound() {
        let b = SecretBox::new(&[key("k")]).unwrap();
        let sealed = b.seal("oauth_token.secret", b"x");
        assert_eq!(
            b.open("oauth_consumer.secret", &sealed),
            Err(SecretBoxError::Tampered)
        );
    }

    #[test]
    fn same_key_id_with_other_material_fails_authentication() {
        let sealed = SecretBox::new(&[key("k")]).unwrap().seal("p", b"x");
        let other = SecretBox::new(&[key("k")]).unwrap();
        assert_eq!(other.open("p", &sealed), Err(SecretBoxError::Tampered));
    }

    #[test]
    fn lookup_hash_is_keyed_and_purpose_bound() {
        let k = key("l");
        let h = LookupHasher::new(&k);
        assert_eq!(h.hash("t", "abc"), h.hash("t", "abc"));
        assert_ne!(h.hash("t", "abc"), h.hash("u", "abc"));
        assert_ne!(
            h.hash("t", "abc"),
            LookupHasher::new(&key("l")).hash("t", "abc")
        );
    }
}
