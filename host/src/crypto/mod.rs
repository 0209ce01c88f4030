//! Cryptography the server relies on, in one place.
//!
//! This module owns the secret box that encrypts values the server must read back (consumer
//! secrets, token secrets, token values) with key rotation; the keyed lookup hash that finds a
//! token without storing it in plaintext; Magento's random 32-character strings; password
//! hashing with Argon2id; and the key file generated for a local SQLite setup. Nothing here
//! logs or formats key material.

mod jwt;
mod keyfile;
mod password;
mod random;
mod secret_box;

pub use jwt::{Claims, JwtError, JwtKeys};
pub use keyfile::{KeyMaterial, missing_keys, resolve_keys};
pub use password::{PasswordError, hash_password, verify_password};
pub use random::{random_string, random_token};
pub use secret_box::{LookupHasher, SecretBox, SecretBoxError};
