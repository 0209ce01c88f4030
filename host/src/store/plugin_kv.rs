//! Plugins' key-value state (`plugin_kv`): one namespace per plugin id, a size per entry (its
//! key and value in bytes) summed against the plugin's quota by the write itself.

use super::{Pool, Store, StoreError};
use crate::store::BeginWrite as _;

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvWrite {
    Written,
    /// The write would take the plugin's entries past the quota; nothing was written.
    OverQuota,
}

impl Store {
    /// The value of a plugin's key.
    pub async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(super::on_pool!(self, |p| sqlx::query_scalar(
            "SELECT value FROM plugin_kv WHERE plugin_id = $1 AND item_key = $2"
        )
        .bind(plugin)
        .bind(key)
        .fetch_optional(p)
        .await?))
    }

    /// Sets a plugin's key when its entries, this one counted at its new size, stay within
    /// `quota` bytes: one statement that writes only when the sum allows it, so that the check
    /// and the write cannot be split by another writer (SQLite runs it as one write
    /// transaction; PostgreSQL processes take turns per plugin through an advisory lock).
    pub async fn kv_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        quota: u64,
        now: i64,
    ) -> Result<KvWrite, StoreError> {
        const UPSERT: &str = "INSERT INTO plugin_kv (plugin_id, item_key, value, size, updated_at)
             SELECT $1, $2, $3, $4, $5
             WHERE (SELECT COALESCE(SUM(size), 0) FROM plugin_kv
                    WHERE plugin_id = $1 AND item_key <> $2) + $4 <= $6
             ON CONFLICT (plugin_id, item_key) DO UPDATE
             SET value = excluded.value, size = excluded.size, updated_at = excluded.updated_at";
        self.ensure_available()?;
        let size = (key.len() + value.len()) as i64;
        let quota = i64::try_from(quota).unwrap_or(i64::MAX);
        let written = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(UPSERT)
                .bind(plugin)
                .bind(key)
                .bind(value)
                .bind(size)
                .bind(now)
                .bind(quota)
                .execute(p)
                .await?
                .rows_affected(),
            Pool::Postgres(p) => {
                let mut tx = p.begin_write().await?;
                sqlx::query(
                    "SELECT pg_advisory_xact_lock(hashtextextended('plugin_kv:' || $1, 0))",
                )
                .bind(plugin)
                .execute(&mut *tx)
                .await?;
                let n = sqlx::query(UPSERT)
                    .bind(plugin)
                    .bind(key)
                    .bind(value)
                    .bind(size)
                    .bind(now)
                    .bind(quota)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                n
            }
        };
        Ok(if written > 0 {
            KvWrite::Written
        } else {
            KvWrite::OverQuota
        })
    }

    /// Removes a plugin's key; whether it was set.
    pub async fn kv_delete(&self, plugin: &str, key: &str) -> Result<bool, StoreError> {
        let n = super::on_pool!(self, |p| sqlx::query(
            "DELETE FROM plugin_kv WHERE plugin_id = $1 AND item_key = $2"
        )
        .bind(plugin)
        .bind(key)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// Removes every key of a plugin; how many there were.
    pub async fn kv_clear(&self, plugin: &str) -> Result<u64, StoreError> {
        Ok(super::on_pool!(self, |p| sqlx::query(
            "DELETE FROM plugin_kv WHERE plugin_id = $1"
        )
        .bind(plugin)
        .execute(p)
        .await?
        .rows_affected()))
    }

    /// A plugin's keys starting with `prefix`, in byte order, at most `limit`, with the size
    /// of each entry.
    pub async fn kv_keys(
        &self,
        plugin: &str,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.ensure_available()?;
        let chars = prefix.chars().count() as i64;
        // Byte order: SQLite compares text as bytes; PostgreSQL needs the C collation.
        Ok(match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT item_key, size FROM plugin_kv
                     WHERE plugin_id = $1 AND substr(item_key, 1, $2) = $3
                     ORDER BY item_key LIMIT $4",
                )
                .bind(plugin)
                .bind(chars)
                .bind(prefix)
                .bind(limit)
                .fetch_all(p)
                .await?
            }
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "SELECT item_key, size FROM plugin_kv
                     WHERE plugin_id = $1 AND substr(item_key, 1, $2::int) = $3
                     ORDER BY item_key COLLATE \"C\" LIMIT $4",
                )
                .bind(plugin)
                .bind(chars)
                .bind(prefix)
                .bind(limit)
                .fetch_all(p)
                .await?
            }
        })
    }

    /// How many keys a plugin has and the bytes they and their values take.
    pub async fn kv_usage(&self, plugin: &str) -> Result<(i64, i64), StoreError> {
        Ok(super::on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM plugin_kv WHERE plugin_id = $1"
        )
        .bind(plugin)
        .fetch_one(p)
        .await?
        }))
    }
}
