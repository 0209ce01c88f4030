//! OAuth consumers and integration tokens (`oauth_consumer`, `oauth_token` rows of integrations):
//! the rows as stored (secrets sealed), and the writes of the handshake and of activation.

use super::{Store, StoreError, on_pool};
use crate::clock::now;
use crate::domain::{TokenKind, UserType};
use crate::store::BeginWrite as _;

/// An OAuth consumer; `secret` is sealed.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsumerRow {
    pub id: i64,
    pub name: String,
    pub key: String,
    pub secret: Vec<u8>,
    pub callback_url: Option<String>,
    pub rejected_callback_url: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for ConsumerRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// An OAuth token; `token`, `secret` and `verifier` are sealed.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub consumer_id: Option<i64>,
    pub admin_id: Option<i64>,
    pub customer_id: Option<i64>,
    #[sqlx(rename = "type")]
    pub kind: TokenKind,
    pub token: Vec<u8>,
    pub secret: Vec<u8>,
    pub verifier: Option<Vec<u8>>,
    pub callback_url: String,
    pub revoked: bool,
    pub authorized: bool,
    pub user_type: Option<UserType>,
    pub created_at: i64,
}

impl std::fmt::Debug for TokenRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRow")
            .field("id", &self.id)
            .field("consumer_id", &self.consumer_id)
            .field("kind", &self.kind)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

/// A new consumer: key in clear (it is public), secret sealed.
#[derive(Debug, Clone)]
pub struct NewConsumer<'a> {
    pub key: &'a str,
    pub secret: &'a [u8],
    pub callback_url: &'a str,
}

/// Token values to store: lookup hash plus sealed value, secret and verifier.
#[derive(Debug, Clone)]
pub struct SealedToken {
    pub kind: TokenKind,
    pub token_hash: Vec<u8>,
    pub token: Vec<u8>,
    pub secret: Vec<u8>,
    pub verifier: Option<Vec<u8>>,
    pub callback_url: String,
}

macro_rules! token_select {
    ($where:literal) => {
        concat!(
            "SELECT id, consumer_id, admin_id, customer_id, type, token, secret, verifier, callback_url, revoked, authorized, user_type, created_at FROM oauth_token ",
            $where
        )
    };
}

/// Within the transaction `$tx`: deletes the consumer's integration tokens (user type 1) and,
/// given `Some(&SealedToken)`, writes that one as its new token, created at `$at`. Evaluates to
/// the new row's id.
macro_rules! write_integration_token {
    ($tx:ident, $consumer_id:expr, $token:expr, $at:expr) => {{
        sqlx::query("DELETE FROM oauth_token WHERE consumer_id = $1 AND user_type = 1")
            .bind($consumer_id)
            .execute(&mut *$tx)
            .await?;
        let token: Option<&$crate::store::SealedToken> = $token;
        match token {
            Some(token) => Some(
                sqlx::query_scalar::<_, i64>(
                    "INSERT INTO oauth_token (consumer_id, type, token_hash, token, secret, verifier, callback_url, revoked, authorized, user_type, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, FALSE, 1, $8) RETURNING id",
                )
                .bind($consumer_id)
                .bind(token.kind)
                .bind(&token.token_hash)
                .bind(&token.token)
                .bind(&token.secret)
                .bind(&token.verifier)
                .bind(&token.callback_url)
                .bind($at)
                .fetch_one(&mut *$tx)
                .await?,
            ),
            None => None,
        }
    }};
}
pub(crate) use write_integration_token;

impl Store {
    /// Inserts a consumer that no integration owns (yet).
    pub async fn insert_consumer(
        &self,
        name: &str,
        key: &str,
        sealed_secret: &[u8],
    ) -> Result<ConsumerRow, StoreError> {
        let row = on_pool!(self, |p| {
            sqlx::query_as::<_, ConsumerRow>(
            r#"INSERT INTO oauth_consumer (name, "key", secret, callback_url, rejected_callback_url, created_at, updated_at)
               VALUES ($1, $2, $3, NULL, '', $4, $4)
               RETURNING id, name, "key" AS key, secret, callback_url, rejected_callback_url, created_at, updated_at"#
        )
        .bind(name)
        .bind(key)
        .bind(sealed_secret)
        .bind(now())
        .fetch_one(p)
        .await?
        });
        Ok(row)
    }

    /// Deletes a consumer that no integration owns (its tokens and nonces cascade).
    pub async fn delete_consumer(&self, id: i64) -> Result<bool, StoreError> {
        let n = on_pool!(self, |p| sqlx::query(
            "DELETE FROM oauth_consumer WHERE id = $1"
        )
        .bind(id)
        .execute(p)
        .await?
        .rows_affected());
        self.changed();
        Ok(n == 1)
    }

    pub async fn consumer_by_id(&self, id: i64) -> Result<Option<ConsumerRow>, StoreError> {
        let row = on_pool!(self, |p| {
            sqlx::query_as::<_, ConsumerRow>(
            r#"SELECT id, name, "key" AS key, secret, callback_url, rejected_callback_url, created_at, updated_at
               FROM oauth_consumer WHERE id = $1"#
        )
        .bind(id)
        .fetch_optional(p)
        .await?
        });
        Ok(row)
    }

    pub async fn consumer_by_key(&self, key: &str) -> Result<Option<ConsumerRow>, StoreError> {
        let row = on_pool!(self, |p| {
            sqlx::query_as::<_, ConsumerRow>(
            r#"SELECT id, name, "key" AS key, secret, callback_url, rejected_callback_url, created_at, updated_at
               FROM oauth_consumer WHERE "key" = $1"#
        )
        .bind(key)
        .fetch_optional(p)
        .await?
        });
        Ok(row)
    }

    /// Opens the consumer's token-exchange window from now (Magento measures it from
    /// `updated_at`).
    pub async fn touch_consumer(&self, id: i64) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query(
            "UPDATE oauth_consumer SET updated_at = $1 WHERE id = $2"
        )
        .bind(now())
        .bind(id)
        .execute(p)
        .await
        .map(|_| ())?);
        self.changed();
        Ok(())
    }

    /// The integration token (user type 1) of a consumer, if any.
    pub async fn integration_token(
        &self,
        consumer_id: i64,
    ) -> Result<Option<TokenRow>, StoreError> {
        let row = on_pool!(self, |p| sqlx::query_as::<_, TokenRow>(token_select!(
            "WHERE consumer_id = $1 AND user_type = 1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(consumer_id)
        .fetch_optional(p)
        .await?);
        Ok(row)
    }

    /// Finds a token by the lookup hash of its value.
    pub async fn token_by_hash(&self, hash: &[u8]) -> Result<Option<TokenRow>, StoreError> {
        let row = on_pool!(self, |p| sqlx::query_as::<_, TokenRow>(token_select!(
            "WHERE token_hash = $1"
        ))
        .bind(hash)
        .fetch_optional(p)
        .await?);
        Ok(row)
    }

    /// Replaces a consumer's integration token with `token` (deleting any other), in one
    /// transaction. Returns the new row id.
    pub async fn replace_integration_token(
        &self,
        consumer_id: i64,
        token: &SealedToken,
    ) -> Result<i64, StoreError> {
        let t = now();
        let id = on_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let id = write_integration_token!(tx, consumer_id, Some(token), t);
            tx.commit().await?;
            id.expect("a token was given")
        });
        self.changed();
        Ok(id)
    }

    /// Moves a token row from `from_kind` to `token`'s kind with new values, only if it still
    /// has `from_kind` (so two concurrent exchanges cannot both succeed). Returns whether it
    /// moved.
    pub async fn advance_token(
        &self,
        id: i64,
        from_kind: TokenKind,
        token: &SealedToken,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, |p| {
            sqlx::query(
            "UPDATE oauth_token SET type = $1, token_hash = $2, token = $3, secret = $4, callback_url = $5,
                    authorized = $6, created_at = $7
             WHERE id = $8 AND type = $9"
        )
        .bind(token.kind)
        .bind(&token.token_hash)
        .bind(&token.token)
        .bind(&token.secret)
        .bind(&token.callback_url)
        .bind(token.kind == TokenKind::Access)
        .bind(now())
        .bind(id)
        .bind(from_kind)
        .execute(p)
        .await?
        .rows_affected()
        });
        self.changed();
        Ok(n == 1)
    }

    /// Deletes a consumer's integration tokens. Returns how many.
    pub async fn delete_integration_tokens(&self, consumer_id: i64) -> Result<u64, StoreError> {
        let n = on_pool!(self, |p| sqlx::query(
            "DELETE FROM oauth_token WHERE consumer_id = $1 AND user_type = 1"
        )
        .bind(consumer_id)
        .execute(p)
        .await?
        .rows_affected());
        self.changed();
        Ok(n)
    }
}
