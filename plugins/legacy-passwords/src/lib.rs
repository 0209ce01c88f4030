//! A credential verifier: signs in the customers listed in the manifest's `[config]` with the
//! salted SHA-256 hashes an old Magento stored (`sha256(salt + password)`, hex), so that
//! customers moved from it keep their passwords; it abstains for everyone else, and the
//! server's own password check decides. A listed customer with a wrong password is refused
//! (and counted by the lockout).

use integration_host_sdk::prelude::*;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    customers: Vec<Legacy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Legacy {
    /// The customer's email address (the account must exist here).
    email: String,
    salt: String,
    /// `sha256(salt + password)`, 64 hex digits.
    hash: String,
}

struct LegacyPasswords {
    /// Email (lower case), salt, hash (lower case).
    customers: Vec<(String, String, String)>,
}

impl Plugin for LegacyPasswords {
    type Config = Config;

    fn new(config: Config) -> Result<Self, PluginError> {
        let mut customers = Vec::new();
        for (i, c) in config.customers.into_iter().enumerate() {
            let hash = c.hash.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(PluginError::BadConfig(format!(
                    "customers[{i}].hash: 64 hex digits of sha256(salt + password)"
                )));
            }
            customers.push((c.email.to_ascii_lowercase(), c.salt, hash));
        }
        Ok(Self { customers })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl CredentialVerifier for LegacyPasswords {
    fn verify(&self, credentials: Credentials) -> Result<Verification, PluginError> {
        if credentials.user_type != UserType::Customer {
            return Ok(Verification::Abstain);
        }
        let email = credentials.username.trim().to_ascii_lowercase();
        let Some((_, salt, hash)) = self.customers.iter().find(|(e, _, _)| *e == email) else {
            return Ok(Verification::Abstain);
        };
        let digest = Sha256::digest(format!("{salt}{}", credentials.password).as_bytes());
        if same(&hex(&digest), hash) {
            info!("legacy password accepted", email = email);
            Ok(Verification::Accept(email))
        } else {
            warn!("legacy password refused", email = email);
            Ok(Verification::Refuse("wrong legacy password".into()))
        }
    }
}

register!(LegacyPasswords: credential_verifier);
