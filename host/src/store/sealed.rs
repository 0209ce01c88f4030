//! The columns that hold sealed secrets, read in batches and replaced one value at a time, for
//! re-sealing stored secrets under the newest key (`integration-host crypto rewrap`).
//!
//! A replacement names the value it replaces: a row another process changed meanwhile (a
//! token reset, an integration deleted) is left alone, so a rewrap can run beside serving.

use super::{Store, StoreError, on_pool};
use crate::store::BeginWrite as _;

/// A column holding sealed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    /// `oauth_consumer.secret`
    ConsumerSecret,
    /// `oauth_token.token`
    TokenValue,
    /// `oauth_token.secret`
    TokenSecret,
    /// `oauth_token.verifier` (empty for most tokens)
    TokenVerifier,
}

impl SealedColumn {
    pub const ALL: [SealedColumn; 4] = [
        SealedColumn::ConsumerSecret,
        SealedColumn::TokenValue,
        SealedColumn::TokenSecret,
        SealedColumn::TokenVerifier,
    ];

    /// `table.column`, which is also the purpose the values are sealed for.
    pub fn name(self) -> &'static str {
        match self {
            SealedColumn::ConsumerSecret => "oauth_consumer.secret",
            SealedColumn::TokenValue => "oauth_token.token",
            SealedColumn::TokenSecret => "oauth_token.secret",
            SealedColumn::TokenVerifier => "oauth_token.verifier",
        }
    }

    fn select(self) -> &'static str {
        match self {
            SealedColumn::ConsumerSecret => {
                "SELECT id, secret FROM oauth_consumer WHERE id > $1 ORDER BY id LIMIT $2"
            }
            SealedColumn::TokenValue => {
                "SELECT id, token FROM oauth_token WHERE id > $1 ORDER BY id LIMIT $2"
            }
            SealedColumn::TokenSecret => {
                "SELECT id, secret FROM oauth_token WHERE id > $1 ORDER BY id LIMIT $2"
            }
            SealedColumn::TokenVerifier => {
                "SELECT id, verifier FROM oauth_token
                 WHERE id > $1 AND verifier IS NOT NULL ORDER BY id LIMIT $2"
            }
        }
    }

    fn update(self) -> &'static str {
        match self {
            SealedColumn::ConsumerSecret => {
                "UPDATE oauth_consumer SET secret = $1 WHERE id = $2 AND secret = $3"
            }
            SealedColumn::TokenValue => {
                "UPDATE oauth_token SET token = $1 WHERE id = $2 AND token = $3"
            }
            SealedColumn::TokenSecret => {
                "UPDATE oauth_token SET secret = $1 WHERE id = $2 AND secret = $3"
            }
            SealedColumn::TokenVerifier => {
                "UPDATE oauth_token SET verifier = $1 WHERE id = $2 AND verifier = $3"
            }
        }
    }
}

/// One stored value replaced by another.
#[derive(Debug, Clone)]
pub struct Reseal {
    pub id: i64,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

impl Store {
    /// Up to `limit` sealed values of `column` in rows after `after_id`, by row id.
    pub async fn sealed_values(
        &self,
        column: SealedColumn,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_as(column.select())
            .bind(after_id)
            .bind(limit)
            .fetch_all(p)
            .await?))
    }

    /// Replaces values of `column` in one transaction, each only where the row still holds the
    /// value it replaces; answers how many were replaced.
    pub async fn reseal(&self, column: SealedColumn, batch: &[Reseal]) -> Result<u64, StoreError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let replaced = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let mut n = 0;
            for r in batch {
                n += sqlx::query(column.update())
                    .bind(&r.new)
                    .bind(r.id)
                    .bind(&r.old)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            n
        });
        self.changed();
        Ok(replaced)
    }
}
