//! Sessions of the admin UI and the form keys that protect its forms.
//!
//! This module owns what a session is: a random 32-character id in an `HttpOnly`,
//! `SameSite=Strict` cookie; the database keeps only its keyed hash with the admin and an
//! absolute expiry (`admin_ui.session_minutes`). A session is valid while it has not expired,
//! its admin is active, and it was not ended by sign-out or by revoking the admin's tokens
//! (which deletes the admin's sessions in the same transaction). Every state-changing form
//! carries a form key (Magento's `form_key`) derived from the session id with the lookup key, so
//! nothing more is stored and a page of another origin cannot know it.

use std::sync::Arc;

use subtle::ConstantTimeEq as _;

use crate::clock::now;
use crate::crypto::{self, KeyMaterial};
use crate::domain::AccountKind;
use crate::services::ServiceError;
use crate::store::{AccountRow, Store};

/// A signed-in admin.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub admin: AccountRow,
    /// The cookie's value (the session id).
    pub id: String,
    pub expires_at: i64,
}

/// Starts, finds and ends admin UI sessions.
#[derive(Clone)]
pub struct AdminSessions {
    store: Store,
    keys: Arc<KeyMaterial>,
    lifetime_seconds: i64,
}

impl std::fmt::Debug for AdminSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSessions")
            .field("lifetime_seconds", &self.lifetime_seconds)
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AdminSessions {
    pub fn new(store: Store, keys: Arc<KeyMaterial>, session_minutes: u64) -> Self {
        Self {
            store,
            keys,
            lifetime_seconds: (session_minutes as i64).saturating_mul(60).max(60),
        }
    }

    fn id_hash(&self, id: &str) -> String {
        hex(&self.keys.lookup.hash("admin_session", id))
    }

    /// Starts a session for a signed-in admin; answers it (its id goes in the cookie).
    pub async fn start(&self, admin: AccountRow) -> Result<AdminSession, ServiceError> {
        let id = crypto::random_token();
        let t = now();
        let expires_at = t + self.lifetime_seconds;
        self.store
            .insert_admin_session(&self.id_hash(&id), admin.id, t, expires_at)
            .await?;
        Ok(AdminSession {
            admin,
            id,
            expires_at,
        })
    }

    /// The live session of this cookie value, if any.
    pub async fn find(&self, id: &str) -> Result<Option<AdminSession>, ServiceError> {
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        let Some(row) = self.store.admin_session(&self.id_hash(id), now()).await? else {
            return Ok(None);
        };
        let admin = self
            .store
            .account_by_id(AccountKind::Admin, row.admin_id)
            .await?;
        Ok(admin.filter(|a| a.is_active).map(|admin| AdminSession {
            admin,
            id: id.to_owned(),
            expires_at: row.expires_at,
        }))
    }

    /// Ends the session (sign-out).
    pub async fn end(&self, id: &str) -> Result<(), ServiceError> {
        Ok(self.store.delete_admin_session(&self.id_hash(id)).await?)
    }

    /// The form key of a session (or of the sign-in page's pre-session cookie).
    pub fn form_key(&self, id: &str) -> String {
        hex(&self.keys.lookup.hash("admin_form_key", id))[..32].to_owned()
    }

    /// Whether `submitted` is the form key of `id`, compared in constant time.
    pub fn form_key_matches(&self, id: &str, submitted: &str) -> bool {
        let expected = self.form_key(id);
        expected.len() == submitted.len()
            && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
    }
}
