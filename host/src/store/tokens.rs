//! Admin and customer tokens, the sign-in failure log, and the deletions of the cleanup jobs.
//!
//! Bearer tokens are JWTs that the database does not hold; revoking them writes the user's
//! `revoke_before` into `jwt_auth_revoked`. In the opaque format they are `oauth_token` rows
//! (user type 2 or 3, value sealed, found by its lookup hash). The sign-in failure log is
//! Magento's `oauth_token_request_log`: one row per (user name, user type), counted while its
//! lock has not expired. Cleanups delete in bounded batches so that a million expired rows never
//! hold the database for long.

use super::{SealedToken, Store, StoreError, on_pool};
use crate::clock::now;
use crate::domain::AccountKind;
use crate::store::BeginWrite as _;

/// Rows one cleanup statement deletes at most; the jobs repeat until fewer are left.
pub const CLEANUP_BATCH: i64 = 1_000;

/// Rows one cleanup statement deletes at least (unless fewer are left).
const CLEANUP_BATCH_MIN: i64 = 16;

/// How long one cleanup statement should hold the database (SQLite's write lock, which every
/// signed request's nonce write waits for). A nonce's row goes in about a microsecond; a
/// token's takes ten or more, one random page of its lookup index each: a batch of a thousand
/// tokens held the lock for 11 ms (median) to 105 ms, and every signed request waited.
const CLEANUP_BATCH_TIME: std::time::Duration = std::time::Duration::from_millis(2);

/// How long a cleanup rests between batches, as a multiple of the time the batch took: the
/// deletion uses at most a third of one core and of the database's write lock.
const CLEANUP_REST: u32 = 2;

/// The size of a cleanup's next batch, found as it goes: halved after a batch that took longer
/// than [`CLEANUP_BATCH_TIME`], doubled after one that took less than a third of it, between
/// [`CLEANUP_BATCH_MIN`] and [`CLEANUP_BATCH`] rows.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchSize(i64);

impl BatchSize {
    /// A first batch of a tenth of the most: a cold cache makes the first the slowest.
    pub(super) fn new() -> Self {
        Self(CLEANUP_BATCH / 10)
    }

    pub(super) fn rows(self) -> i64 {
        self.0
    }

    /// Adjusts the size to the time the last full batch took.
    pub(super) fn took(&mut self, elapsed: std::time::Duration) {
        if elapsed > CLEANUP_BATCH_TIME {
            self.0 = (self.0 / 2).max(CLEANUP_BATCH_MIN);
        } else if elapsed * 3 < CLEANUP_BATCH_TIME {
            self.0 = (self.0 * 2).min(CLEANUP_BATCH);
        }
    }
}

/// Revokes every token of an account inside the open transaction `$tx`: stored tokens are
/// deleted, bearer tokens issued up to `$t` are refused, and an admin's UI sessions end.
macro_rules! revoke_account_tokens {
    ($tx:expr, $kind:expr, $id:expr, $t:expr) => {{
        let delete = match $kind {
            AccountKind::Admin => "DELETE FROM oauth_token WHERE admin_id = $1",
            AccountKind::Customer => "DELETE FROM oauth_token WHERE customer_id = $1",
        };
        sqlx::query(delete).bind($id).execute(&mut *$tx).await?;
        if matches!($kind, AccountKind::Admin) {
            sqlx::query("DELETE FROM admin_session WHERE admin_id = $1")
                .bind($id)
                .execute(&mut *$tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO jwt_auth_revoked (user_type, user_id, revoke_before) VALUES ($1, $2, $3)
             ON CONFLICT (user_type, user_id) DO UPDATE SET revoke_before = excluded.revoke_before",
        )
        .bind($kind.user_type())
        .bind($id)
        .bind($t)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use revoke_account_tokens;

/// One batched deletion in each dialect.
#[derive(Debug, Clone, Copy)]
pub(super) struct Batched {
    pub(super) sqlite: &'static str,
    pub(super) postgres: &'static str,
}

/// `DELETE FROM table WHERE <condition on $1>` limited to `$2` rows, in each dialect: SQLite
/// by rowid (or the primary key of a table without one), PostgreSQL by ctid.
macro_rules! batched_delete {
    ($table:literal, $key:literal, $condition:literal) => {
        $crate::store::tokens::Batched {
            sqlite: concat!(
                "DELETE FROM ",
                $table,
                " WHERE ",
                $key,
                " IN (SELECT ",
                $key,
                " FROM ",
                $table,
                " WHERE ",
                $condition,
                " LIMIT $2)"
            ),
            postgres: concat!(
                "DELETE FROM ",
                $table,
                " WHERE ctid IN (SELECT ctid FROM ",
                $table,
                " WHERE ",
                $condition,
                " LIMIT $2)"
            ),
        }
    };
}
pub(super) use batched_delete;

impl Store {
    /// Stores an opaque admin or customer token. Returns the row id.
    pub async fn insert_user_token(
        &self,
        kind: AccountKind,
        user_id: i64,
        token: &SealedToken,
    ) -> Result<i64, StoreError> {
        macro_rules! insert_for {
            ($column:literal) => {
                concat!(
                    "INSERT INTO oauth_token (",
                    $column,
                    ", type, token_hash, token, secret, callback_url, revoked, authorized, user_type, created_at)
                     VALUES ($1, 'access', $2, $3, $4, '', FALSE, TRUE, $5, $6) RETURNING id"
                )
            };
        }
        let sql = match kind {
            AccountKind::Admin => insert_for!("admin_id"),
            AccountKind::Customer => insert_for!("customer_id"),
        };
        let id = on_pool!(self, |p| sqlx::query_scalar(sql)
            .bind(user_id)
            .bind(&token.token_hash)
            .bind(&token.token)
            .bind(&token.secret)
            .bind(kind.user_type())
            .bind(now())
            .fetch_one(p)
            .await?);
        Ok(id)
    }

    /// Revokes every token of an account (stored ones deleted, bearer tokens issued until now
    /// refused), with the event reporting it. Returns the `revoke_before` written.
    pub async fn revoke_account_tokens(
        &self,
        kind: AccountKind,
        id: i64,
        event: &super::NewEvent,
    ) -> Result<i64, StoreError> {
        let t = now();
        let postgres = self.is_postgres();
        on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            revoke_account_tokens!(tx, kind, id, t);
            super::outbox::record_event!(tx, event, postgres);
            tx.commit().await?;
        });
        self.changed();
        Ok(t)
    }

    /// Takes one of a user name's failure slots before its password is checked: counts one
    /// more failure and pushes the lock out to `lock_until` (a row whose lock had expired
    /// starts again from one), unless `max` failures are counted within the lock already; then
    /// answers `false` and changes nothing. One statement, so concurrent attempts each take
    /// their own slot and at most `max` passwords are checked per lock period. A success gives
    /// the slot back ([`Store::reset_failures`]).
    pub async fn take_failure_slot(
        &self,
        user_name: &str,
        kind: AccountKind,
        at: i64,
        lock_until: i64,
        max: i64,
    ) -> Result<bool, StoreError> {
        let taken: Option<i64> = on_pool!(self, |p| {
            sqlx::query_scalar(
            "INSERT INTO oauth_token_request_log (user_name, user_type, failures_count, lock_expires_at)
             VALUES ($1, $2, 1, $4)
             ON CONFLICT (user_name, user_type) DO UPDATE SET
                 failures_count = CASE WHEN oauth_token_request_log.lock_expires_at > $3
                                       THEN oauth_token_request_log.failures_count + 1 ELSE 1 END,
                 lock_expires_at = $4
             WHERE oauth_token_request_log.lock_expires_at <= $3
                OR oauth_token_request_log.failures_count < $5
             RETURNING failures_count"
        )
        .bind(user_name)
        .bind(throttle_code(kind))
        .bind(at)
        .bind(lock_until)
        .bind(max)
        .fetch_optional(p)
        .await?
        });
        Ok(taken.is_some())
    }

    /// Clears a user name's failures after a successful sign-in.
    pub async fn reset_failures(
        &self,
        user_name: &str,
        kind: AccountKind,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query(
            "DELETE FROM oauth_token_request_log WHERE user_name = $1 AND user_type = $2"
        )
        .bind(user_name)
        .bind(throttle_code(kind))
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Runs one batched deletion until it deletes fewer than a batch. Its statement deletes at
    /// most `$2` rows matching `$1`. Returns the rows deleted.
    pub(super) async fn delete_in_batches(
        &self,
        sql: Batched,
        cutoff: i64,
    ) -> Result<u64, StoreError> {
        let sql = match self.backend() {
            super::Backend::Sqlite => sql.sqlite,
            super::Backend::Postgres => sql.postgres,
        };
        self.in_batches(|limit| async move {
            Ok(on_pool!(self, |p| sqlx::query(sql)
                .bind(cutoff)
                .bind(limit)
                .execute(p)
                .await?
                .rows_affected()))
        })
        .await
    }

    /// Calls `batch` with a number of rows to delete until it deletes fewer: each batch within
    /// about [`CLEANUP_BATCH_TIME`] ([`BatchSize`]), each followed by a rest. Returns the rows
    /// deleted.
    pub(super) async fn in_batches<F, Fut>(&self, mut batch: F) -> Result<u64, StoreError>
    where
        F: FnMut(i64) -> Fut,
        Fut: std::future::Future<Output = Result<u64, StoreError>>,
    {
        let mut size = BatchSize::new();
        let mut total = 0;
        loop {
            let started = std::time::Instant::now();
            let n = batch(size.rows()).await?;
            let took = started.elapsed();
            total += n;
            tracing::debug!(rows = n, took_us = took.as_micros() as u64, "cleanup batch");
            if n < size.rows() as u64 {
                return Ok(total);
            }
            size.took(took);
            // A cleanup is never urgent: between batches it leaves the database's write lock
            // and the CPU to requests for twice as long as the batch took, so that deleting
            // ten million rows slows requests down little (it takes three times as long).
            tokio::time::sleep((took * CLEANUP_REST).min(std::time::Duration::from_secs(1))).await;
        }
    }

    /// Failure-log rows whose lock expired before `at`.
    pub async fn delete_expired_failures(&self, at: i64) -> Result<u64, StoreError> {
        let sql = batched_delete!("oauth_token_request_log", "id", "lock_expires_at <= $1");
        self.delete_in_batches(sql, at).await
    }

    /// Nonces whose timestamp is before `cutoff`.
    pub async fn delete_nonces_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        // On SQLite the nonces are a log keyed by `seq`, a row's arrival or timestamp in
        // microseconds (whichever is later, see `nonces::sqlite::next_seq`): a row whose `seq`
        // is below the cutoff has a timestamp before it, so the rows to delete are a range of
        // the table's own key (the log has no index on its timestamp); the timestamp test
        // covers the rows numbered 1, 2, 3 ... before migration 0015, and a row that arrived
        // after the cutoff waits for a later cleanup. The newest row stays: a new row's `seq` must never be one a process has read already
        // (migration 0006). PostgreSQL goes by row address.
        let sql = Batched {
            sqlite: batched_delete!(
                "oauth_nonce",
                "seq",
                "seq < $1 * 1000000 AND timestamp < $1 \
                 AND seq < (SELECT MAX(seq) FROM oauth_nonce)"
            )
            .sqlite,
            postgres: batched_delete!("oauth_nonce", "seq", "timestamp < $1").postgres,
        };
        self.delete_in_batches(sql, cutoff).await
    }

    /// Opaque admin or customer tokens created before `cutoff`.
    pub async fn delete_user_tokens_before(
        &self,
        kind: AccountKind,
        cutoff: i64,
    ) -> Result<u64, StoreError> {
        // The user types of `AccountKind::user_type`, written out: SQL is never formatted.
        let sql = match kind {
            AccountKind::Admin => {
                batched_delete!("oauth_token", "id", "user_type = 2 AND created_at < $1")
            }
            AccountKind::Customer => {
                batched_delete!("oauth_token", "id", "user_type = 3 AND created_at < $1")
            }
        };
        let n = self.delete_in_batches(sql, cutoff).await?;
        if n > 0 {
            self.changed();
        }
        Ok(n)
    }

    /// Revocation entries older than `cutoff` (every token they refuse has expired anyway).
    pub async fn delete_revocations_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        let sql = batched_delete!("jwt_auth_revoked", "rowid", "revoke_before < $1");
        self.delete_in_batches(sql, cutoff).await
    }

    /// Integration verifier and request tokens (never exchanged) created before `cutoff`.
    pub async fn delete_stale_handshake_tokens(&self, cutoff: i64) -> Result<u64, StoreError> {
        let sql = batched_delete!(
            "oauth_token",
            "id",
            "user_type = 1 AND type IN ('verifier', 'request') AND created_at < $1"
        );
        let n = self.delete_in_batches(sql, cutoff).await?;
        if n > 0 {
            self.changed();
        }
        Ok(n)
    }
}

/// The `user_type` of `oauth_token_request_log`, where Magento's throttler numbers customers 2
/// and admins 3 (`RequestThrottler::USER_TYPE_*`): the reverse of its user types elsewhere.
fn throttle_code(kind: AccountKind) -> i64 {
    match kind {
        AccountKind::Admin => 3,
        AccountKind::Customer => 2,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_batch_shrinks_when_slow_and_grows_when_fast_within_its_bounds() {
        let mut size = BatchSize::new();
        assert_eq!(size.rows(), CLEANUP_BATCH / 10);
        size.took(CLEANUP_BATCH_TIME * 5);
        assert_eq!(size.rows(), CLEANUP_BATCH / 20);
        size.took(CLEANUP_BATCH_TIME / 2);
        assert_eq!(size.rows(), CLEANUP_BATCH / 20, "within the time: kept");
        for _ in 0..20 {
            size.took(Duration::ZERO);
        }
        assert_eq!(size.rows(), CLEANUP_BATCH);
        for _ in 0..20 {
            size.took(Duration::from_secs(1));
        }
        assert_eq!(size.rows(), CLEANUP_BATCH_MIN);
    }
}
