//! Admin UI sessions: rows of `admin_session`, found by the keyed hash of the session id the
//! admin's cookie holds (the id itself is never stored).

use super::{Store, StoreError, on_pool};

/// A live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRow {
    pub admin_id: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    /// Stores a new session.
    pub async fn insert_admin_session(
        &self,
        id_hash: &str,
        admin_id: i64,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let _: u64 = on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO admin_session (id_hash, admin_id, created_at, expires_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(id_hash)
        .bind(admin_id)
        .bind(created_at)
        .bind(expires_at)
        .execute(p)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// The session with this id hash, unless it expired before `at`.
    pub async fn admin_session(
        &self,
        id_hash: &str,
        at: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        let row: Option<(i64, i64, i64)> = on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT admin_id, created_at, expires_at FROM admin_session WHERE id_hash = $1 AND expires_at > $2"
        )
        .bind(id_hash)
        .bind(at)
        .fetch_optional(p)
        .await?
        });
        Ok(row.map(|(admin_id, created_at, expires_at)| SessionRow {
            admin_id,
            created_at,
            expires_at,
        }))
    }

    /// Ends one session (sign-out).
    pub async fn delete_admin_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let _: u64 = on_pool!(self, |p| sqlx::query(
            "DELETE FROM admin_session WHERE id_hash = $1"
        )
        .bind(id_hash)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Sessions that expired before `at`, in batches.
    pub async fn delete_expired_admin_sessions(&self, at: i64) -> Result<u64, StoreError> {
        let sql = super::tokens::batched_delete!("admin_session", "id_hash", "expires_at <= $1");
        self.delete_in_batches(sql, at).await
    }
}
