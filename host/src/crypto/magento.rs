//! Magento 2's own cryptography, read-only: the values its `Encryptor` encrypts with the store's
//! `crypt/key`, and the password hashes it writes, so that an import keeps integrators'
//! credentials and accounts' passwords working.
//!
//! Encrypted values are `<key version>:3:<base64 of nonce ‖ ciphertext ‖ tag>`: ChaCha20-Poly1305
//! (IETF, 12-byte nonce) with the nonce also as associated data, under the key of that version
//! (the keys of `crypt/key` separated by whitespace, oldest first; a key written `base64…` is
//! that base64 decoded). Magento trims the plaintext; so does [`MagentoKeys::decrypt`]. Older
//! formats (mcrypt's Rijndael and Blowfish) are refused by name, never guessed.
//!
//! Password hashes are `hash:salt:versions`, the versions a `:`-separated chain, oldest first
//! (a hash Magento upgraded is the older hash hashed again): `0` MD5 and `1` SHA-256 of
//! `salt ‖ input` in hex, `2` Argon2id (32 bytes, 2 passes, 64 MiB) and `3_<len>_<ops>_<mem>`
//! Argon2id with those parameters, of the input with the salt's first 16 bytes, in hex.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use md5::Digest as _;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

/// Marks a password hash kept from Magento in an account's `password_hash`:
/// `magento:hash:salt:versions`. [`super::verify_password`] checks it as Magento would.
pub const MAGENTO_HASH_PREFIX: &str = "magento:";

/// The keys of a Magento store's `crypt/key`, by version.
#[derive(Clone)]
pub struct MagentoKeys(Vec<Vec<u8>>);

impl std::fmt::Debug for MagentoKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MagentoKeys({} keys)", self.0.len())
    }
}

/// Why a Magento value could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagentoDecryptError {
    #[error("the value is not in Magento's encrypted format (`<key version>:3:<base64>`)")]
    Format,
    #[error(
        "the value is encrypted with cipher version {0} (mcrypt), which Magento 2.4 no longer writes; \
         re-save it in Magento 2.4 (or run its `encryption:payment-data:update`) and import again"
    )]
    OldCipher(u32),
    #[error("the value is encrypted with key version {0}, and crypt/key has {1} key(s)")]
    NoKey(usize, usize),
    #[error(
        "the value does not decrypt with key version {0}: a different crypt/key, or the value was altered"
    )]
    Mismatch(usize),
    #[error("the value decrypts to bytes that are not UTF-8")]
    NotText,
}

/// Why `crypt/key` is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagentoKeyError {
    #[error("crypt/key is empty")]
    Empty,
    #[error("key {index} of crypt/key is {len} bytes long; ChaCha20-Poly1305 needs 32")]
    Length { index: usize, len: usize },
    #[error("key {index} of crypt/key starts with `base64` but the rest is not base64")]
    Base64 { index: usize },
}

impl MagentoKeys {
    /// Reads `crypt/key` as Magento does: whitespace-separated keys, the last one current.
    pub fn parse(crypt_key: &str) -> Result<Self, MagentoKeyError> {
        let keys = crypt_key
            .split_whitespace()
            .enumerate()
            .map(|(index, k)| {
                let bytes = match k.strip_prefix("base64") {
                    Some(b64) => base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|_| MagentoKeyError::Base64 { index })?,
                    None => k.as_bytes().to_vec(),
                };
                if bytes.len() != 32 {
                    return Err(MagentoKeyError::Length {
                        index,
                        len: bytes.len(),
                    });
                }
                Ok(bytes)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(MagentoKeyError::Empty);
        }
        Ok(Self(keys))
    }

    /// How many keys `crypt/key` holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no key (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Decrypts a value Magento's `Encryptor::encrypt` wrote.
    pub fn decrypt(&self, value: &str) -> Result<String, MagentoDecryptError> {
        let mut parts = value.splitn(3, ':');
        let (Some(key_version), Some(cipher), Some(data)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(MagentoDecryptError::Format);
        };
        let key_version: usize = key_version
            .parse()
            .map_err(|_| MagentoDecryptError::Format)?;
        match cipher.parse::<u32>() {
            Ok(3) => {}
            Ok(v @ 0..=2) => return Err(MagentoDecryptError::OldCipher(v)),
            _ => return Err(MagentoDecryptError::Format),
        }
        let key = self
            .0
            .get(key_version)
            .ok_or(MagentoDecryptError::NoKey(key_version, self.0.len()))?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| MagentoDecryptError::Format)?;
        if raw.len() < 12 + 16 {
            return Err(MagentoDecryptError::Format);
        }
        let (nonce, sealed) = raw.split_at(12);
        let plain = ChaCha20Poly1305::new(Key::from_slice(key))
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: nonce,
                },
            )
            .map_err(|_| MagentoDecryptError::Mismatch(key_version))?;
        let text = String::from_utf8(plain).map_err(|_| MagentoDecryptError::NotText)?;
        Ok(php_trim(&text).to_owned())
    }
}

/// PHP's `trim()`: spaces, tabs, newlines, carriage returns, NUL and vertical tabs.
fn php_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0B'])
}

/// Why a Magento password hash cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagentoHashError {
    #[error("the password hash is not `hash:salt:version`")]
    Format,
    #[error("the password hash uses version `{0}`, which Magento does not write")]
    Version(String),
    #[error("Argon2id parameters out of range in version `{0}`")]
    Parameters(String),
}

/// One step of a Magento hash chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Md5,
    Sha256,
    Argon2id { len: usize, ops: u32, mem: u32 },
}

/// `SODIUM_CRYPTO_SIGN_SEEDBYTES`, `…_OPSLIMIT_INTERACTIVE`, `…_MEMLIMIT_INTERACTIVE`.
const ARGON2_DEFAULT: Step = Step::Argon2id {
    len: 32,
    ops: 2,
    mem: 64 * 1024 * 1024,
};

fn steps(versions: &str) -> Result<Vec<Step>, MagentoHashError> {
    versions
        .split(':')
        .map(|v| match v {
            "0" => Ok(Step::Md5),
            "1" => Ok(Step::Sha256),
            "2" => Ok(ARGON2_DEFAULT),
            _ => {
                let mut p = v.split('_');
                match (p.next(), p.next(), p.next(), p.next(), p.next()) {
                    (Some("3"), Some(len), Some(ops), Some(mem), None) => {
                        let bad = || MagentoHashError::Parameters(v.to_owned());
                        let len: usize = len.parse().map_err(|_| bad())?;
                        let ops: u32 = ops.parse().map_err(|_| bad())?;
                        let mem: u32 = mem.parse().map_err(|_| bad())?;
                        // What libsodium accepts, and no more than 1 GiB of memory.
                        if !(16..=64).contains(&len) || ops == 0 || ops > 16 {
                            return Err(bad());
                        }
                        if !(8192..=(1 << 30)).contains(&mem) {
                            return Err(bad());
                        }
                        Ok(Step::Argon2id { len, ops, mem })
                    }
                    _ => Err(MagentoHashError::Version(v.to_owned())),
                }
            }
        })
        .collect()
}

/// Checks a Magento hash's form without computing it (for an import's report).
pub fn check_magento_hash(stored: &str) -> Result<(), MagentoHashError> {
    let mut parts = stored.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(hash), Some(_salt), Some(versions)) if !hash.is_empty() => {
            steps(versions).map(|_| ())
        }
        _ => Err(MagentoHashError::Format),
    }
}

/// Whether `password` matches a Magento password hash, recomputing its chain as
/// `Encryptor::isValidHash` does; compared in constant time. Slow for Argon2id: call it off
/// the async threads.
pub fn verify_magento_hash(password: &str, stored: &str) -> Result<bool, MagentoHashError> {
    let mut parts = stored.splitn(3, ':');
    let (Some(hash), Some(salt), Some(versions)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(MagentoHashError::Format);
    };
    let mut recreated = password.to_owned();
    for step in steps(versions)? {
        recreated = match step {
            Step::Md5 => hex(&md5::Md5::digest(format!("{salt}{recreated}"))),
            Step::Sha256 => hex(&sha2::Sha256::digest(format!("{salt}{recreated}"))),
            Step::Argon2id { len, ops, mem } => argon2id(&recreated, salt, len, ops, mem)
                .map_err(|_| MagentoHashError::Parameters(versions.to_owned()))?,
        };
    }
    Ok(bool::from(recreated.as_bytes().ct_eq(hash.as_bytes())))
}

/// libsodium's `crypto_pwhash` with Argon2id v1.3 and one lane, the salt cut or repeated to 16
/// bytes as Magento's `getArgonHash` does, in lower-case hex.
fn argon2id(
    input: &str,
    salt: &str,
    len: usize,
    ops: u32,
    mem: u32,
) -> Result<String, argon2::Error> {
    let salt = salt.as_bytes();
    let mut salt16 = [0u8; 16];
    if salt.is_empty() {
        return Err(argon2::Error::SaltTooShort);
    }
    for (i, b) in salt16.iter_mut().enumerate() {
        *b = salt[i % salt.len()];
    }
    let params = argon2::Params::new(mem / 1024, ops, 1, Some(len))?;
    let mut out = vec![0u8; len];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(input.as_bytes(), &salt16, &mut out)?;
    Ok(hex(&out))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key of Magento's form (32 characters).
    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn encrypt(key: &[u8], version: usize, nonce: [u8; 12], plain: &str) -> String {
        let sealed = ChaCha20Poly1305::new(Key::from_slice(key))
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: &nonce,
                },
            )
            .expect("encrypts");
        let mut raw = nonce.to_vec();
        raw.extend(sealed);
        format!(
            "{version}:3:{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    #[test]
    fn a_value_decrypts_with_the_key_of_its_version() {
        let old = "fedcba9876543210fedcba9876543210";
        let new_raw = [7u8; 32];
        let ring = format!(
            "{old}\n base64{}",
            base64::engine::general_purpose::STANDARD.encode(new_raw)
        );
        let keys = MagentoKeys::parse(&ring).expect("two keys");
        assert_eq!(keys.len(), 2);
        let v0 = encrypt(old.as_bytes(), 0, [1; 12], "secret-zero");
        let v1 = encrypt(&new_raw, 1, [2; 12], " secret-one\n");
        assert_eq!(keys.decrypt(&v0).as_deref(), Ok("secret-zero"));
        assert_eq!(keys.decrypt(&v1).as_deref(), Ok("secret-one"));
        // The nonce is authenticated: another nonce, same ciphertext, fails.
        let mut tampered = base64::engine::general_purpose::STANDARD
            .decode(v0.split(':').nth(2).unwrap())
            .unwrap();
        tampered[0] ^= 1;
        let tampered = format!(
            "0:3:{}",
            base64::engine::general_purpose::STANDARD.encode(tampered)
        );
        assert_eq!(
            keys.decrypt(&tampered),
            Err(MagentoDecryptError::Mismatch(0))
        );
        assert_eq!(
            keys.decrypt(&encrypt(old.as_bytes(), 2, [1; 12], "x")),
            Err(MagentoDecryptError::NoKey(2, 2))
        );
    }

    /// A value encrypted elsewhere: Python's `cryptography` (ChaCha20Poly1305, nonce 0..11, also
    /// as associated data) under [`KEY`], laid out as Magento writes it.
    #[test]
    fn a_value_encrypted_elsewhere_decrypts() {
        let keys = MagentoKeys::parse(KEY).unwrap();
        let value =
            "0:3:AAECAwQFBgcICQoLm0x5SwIgjc7jP5btGLtj61OmMwBQRzUptlVNkV5Kekhpq6CiMQdaCJjWwQcU2u14";
        assert_eq!(
            keys.decrypt(value).as_deref(),
            Ok("cs-secret-of-32-characters-xxxxx")
        );
    }

    #[test]
    fn older_formats_and_bad_keys_are_named() {
        let keys = MagentoKeys::parse(KEY).unwrap();
        assert_eq!(
            keys.decrypt("0:2:abcd:efgh"),
            Err(MagentoDecryptError::OldCipher(2))
        );
        assert_eq!(
            keys.decrypt("plain-secret"),
            Err(MagentoDecryptError::Format)
        );
        assert_eq!(
            keys.decrypt("0:3:not base64!"),
            Err(MagentoDecryptError::Format)
        );
        assert_eq!(
            MagentoKeys::parse("  ").unwrap_err(),
            MagentoKeyError::Empty
        );
        assert_eq!(
            MagentoKeys::parse("short").unwrap_err(),
            MagentoKeyError::Length { index: 0, len: 5 }
        );
        assert_eq!(
            MagentoKeys::parse(&format!("{KEY} base64!!")).unwrap_err(),
            MagentoKeyError::Base64 { index: 1 }
        );
    }

    #[test]
    fn sha256_and_md5_chains_verify() {
        // sha256("s4lt" + "pass") in hex.
        let sha = hex(&sha2::Sha256::digest("s4ltpass"));
        assert!(verify_magento_hash("pass", &format!("{sha}:s4lt:1")).unwrap());
        assert!(!verify_magento_hash("Pass", &format!("{sha}:s4lt:1")).unwrap());
        let md5_then_sha = hex(&sha2::Sha256::digest(format!(
            "s4lt{}",
            hex(&md5::Md5::digest("s4ltpass"))
        )));
        assert!(verify_magento_hash("pass", &format!("{md5_then_sha}:s4lt:0:1")).unwrap());
        assert_eq!(
            verify_magento_hash("pass", "abc:s4lt:9"),
            Err(MagentoHashError::Version("9".into()))
        );
        assert_eq!(
            verify_magento_hash("pass", "abc"),
            Err(MagentoHashError::Format)
        );
    }

    /// Argon2id as libsodium computes it for Magento, checked against a hash made elsewhere:
    /// Python's argon2-cffi, `hash_secret_raw(b"pass", b"saltsaltsaltsalt", time_cost=2,
    /// memory_cost=8192, parallelism=1, hash_len=32, type=Type.ID, version=19)`; the salt
    /// stored is longer and cut to 16 bytes, as Magento does.
    #[test]
    fn argon2id_versions_verify() {
        let salt = "saltsaltsaltsaltANDMORE";
        let h = "4ba0b496b298bbcf77d6cfb293118a3c1cbc73552b26857bc942092725413419";
        let stored = format!("{h}:{salt}:3_32_2_{}", 8192 * 1024);
        assert!(verify_magento_hash("pass", &stored).unwrap());
        assert!(!verify_magento_hash("pas", &stored).unwrap());
        assert!(check_magento_hash(&stored).is_ok());
        assert_eq!(
            check_magento_hash("h:s:3_32_2"),
            Err(MagentoHashError::Version("3_32_2".into()))
        );
        assert_eq!(
            check_magento_hash("h:s:3_32_0_67108864"),
            Err(MagentoHashError::Parameters("3_32_0_67108864".into()))
        );
        // A short salt is repeated to 16 bytes.
        assert_eq!(
            argon2id("pass", "ab", 32, 2, 8192 * 1024).unwrap(),
            argon2id("pass", "abababababababab", 32, 2, 8192 * 1024).unwrap()
        );
    }
}
