//! Cryptography the server relies on, in one place.
//!
//! This module owns the secret box that encrypts values the server must read back (consumer
//! secrets, token secrets, token values) with key rotation; the keyed lookup hash that finds a
//! token without storing it in plaintext; Magento's random 32-character strings; password
//! hashing with Argon2id; Magento's own encrypted values and password hashes, read for an
//! import (`magento`); and the key file generated for a local SQLite setup. Nothing here
//! logs or formats key material.

mod jwt;
mod keyfile;
mod magento;
mod password;
mod random;
mod secret_box;

pub use jwt::{Claims, JwtError, JwtKeys};
pub use keyfile::{KeyMaterial, missing_keys, resolve_keys};
pub use magento::{
    MAGENTO_HASH_PREFIX, MagentoDecryptError, MagentoHashError, MagentoKeyError, MagentoKeys,
    check_magento_hash, verify_magento_hash,
};
pub use password::{PasswordError, hash_password, verify_password};
pub use random::{random_string, random_token};
pub use secret_box::{LookupHasher, SecretBox, SecretBoxError};
