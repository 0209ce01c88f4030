//! OAuth 1.0a for integrations: Magento's `OauthServiceInterface` and token provider.
//!
//! This module owns the handshake rules: the verifier token and the activation POST to the
//! integrator's endpoint, the request-token and access-token exchanges with Magento's check
//! order and texts (`docs/oauth-reference.md`), and minted access tokens. Signatures themselves
//! are computed by the pure [`crate::oauth`] module. Token values, secrets and verifiers are
//! stored sealed and found by a keyed hash; the nonce is recorded only after the signature
//! verified, so a forged request cannot burn a legitimate client's nonce.

mod signed;

use std::sync::Arc;
use std::time::Duration;

use super::cache::{CAPACITY, TtlCache};
use super::error::ServiceError;
use crate::config::{OauthSettings, PublicUrl};
use crate::crypto::{self, KeyMaterial};
use crate::domain::{TokenKind, UserType};
use crate::oauth::Collected;
use crate::store::{ConsumerRow, NonceWriter, SealedToken, Store, TokenRow};

pub(crate) const CONSUMER_SECRET: &str = "oauth_consumer.secret";
pub(crate) const TOKEN_VALUE: &str = "oauth_token.token";
pub(crate) const TOKEN_SECRET: &str = "oauth_token.secret";
pub(crate) const TOKEN_VERIFIER: &str = "oauth_token.verifier";
const TOKEN_LOOKUP: &str = "oauth_token";
const LENGTH: usize = 32;
const MAX_NONCE: usize = 64;

/// A token and its secret, in clear, to hand to the integrator once.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub token: String,
    pub secret: String,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenPair(<redacted>)")
    }
}

/// A consumer with its secret opened.
#[derive(Clone)]
pub struct Consumer {
    pub id: i64,
    pub key: String,
    pub secret: String,
    pub updated_at: i64,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("id", &self.id)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A request as the client signed it.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub method: String,
    /// The URL the client signed, reconstructed (scheme, host, port, path and query).
    pub url: crate::oauth::SignedUrl,
    pub params: Collected,
}

/// Magento's OauthService and token provider.
#[derive(Debug, Clone)]
pub struct OauthService {
    store: Store,
    keys: Arc<KeyMaterial>,
    settings: OauthSettings,
    base_url: PublicUrl,
    http: reqwest::Client,
    nonces: NonceWriter,
    consumers: Arc<TtlCache<String, Arc<Consumer>>>,
    tokens: Arc<TtlCache<Vec<u8>, Arc<CachedToken>>>,
}

/// What the signed-request path needs of a token, its secret opened.
#[derive(Clone)]
struct CachedToken {
    consumer_id: Option<i64>,
    kind: TokenKind,
    revoked: bool,
    user_type: Option<UserType>,
    secret: String,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("consumer_id", &self.consumer_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl OauthService {
    pub fn new(
        store: Store,
        keys: Arc<KeyMaterial>,
        settings: OauthSettings,
        base_url: PublicUrl,
    ) -> Self {
        let redirects = if settings.endpoint_follow_redirects {
            reqwest::redirect::Policy::limited(5)
        } else {
            reqwest::redirect::Policy::none()
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(
                settings.endpoint_timeout_seconds.max(1),
            ))
            .redirect(redirects)
            .user_agent(concat!("integration-host/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds");
        let ttl = Duration::from_secs(settings.credential_cache_seconds);
        Self {
            consumers: Arc::new(TtlCache::new(ttl, CAPACITY)),
            tokens: Arc::new(TtlCache::new(ttl, CAPACITY)),
            nonces: NonceWriter::spawn(store.clone(), settings.timestamp_window_seconds),
            store,
            keys,
            settings,
            base_url,
            http,
        }
    }

    pub(crate) fn seal_consumer_secret(&self, secret: &str) -> Vec<u8> {
        self.keys
            .secret_box
            .seal(CONSUMER_SECRET, secret.as_bytes())
    }

    /// An integration's access token given from outside (an import), sealed to store.
    pub(crate) fn seal_integration_token(&self, token: &str, secret: &str) -> SealedToken {
        let b = &self.keys.secret_box;
        SealedToken {
            kind: TokenKind::Access,
            token_hash: self.keys.lookup.hash(TOKEN_LOOKUP, token),
            token: b.seal(TOKEN_VALUE, token.as_bytes()),
            secret: b.seal(TOKEN_SECRET, secret.as_bytes()),
            verifier: None,
            callback_url: String::new(),
        }
    }

    fn open_consumer(&self, row: ConsumerRow) -> Result<Consumer, ServiceError> {
        Ok(Consumer {
            id: row.id,
            secret: self
                .keys
                .secret_box
                .open_string(CONSUMER_SECRET, &row.secret)?,
            key: row.key,
            updated_at: row.updated_at,
        })
    }

    /// Creates a consumer on its own (Magento's `createConsumer`), with a random key and
    /// secret; integrations create theirs with them.
    pub async fn create_consumer(&self, name: &str) -> Result<Consumer, ServiceError> {
        let key = crypto::random_token();
        let secret = crypto::random_token();
        let sealed = self.seal_consumer_secret(&secret);
        let row = self.store.insert_consumer(name, &key, &sealed).await?;
        Ok(Consumer {
            id: row.id,
            key,
            secret,
            updated_at: row.updated_at,
        })
    }

    /// Deletes a consumer with its tokens and nonces (Magento's `deleteConsumer`). The
    /// integration owning it is deleted with it, so that nothing is left half-linked.
    pub async fn delete_consumer(&self, id: i64) -> Result<Consumer, ServiceError> {
        let consumer = self.load_consumer(id).await?;
        match self.store.integration_by_consumer(id).await? {
            Some(integration) => {
                self.store.delete_integration(integration.id, None).await?;
            }
            None => {
                self.store.delete_consumer(id).await?;
            }
        }
        Ok(consumer)
    }

    /// Loads a consumer by id.
    pub async fn load_consumer(&self, id: i64) -> Result<Consumer, ServiceError> {
        let row = self.store.consumer_by_id(id).await?.ok_or_else(|| {
            ServiceError::NotFound(format!("A consumer with the ID {id} does not exist"))
        })?;
        self.open_consumer(row)
    }

    /// Loads a consumer by key.
    pub async fn load_consumer_by_key(&self, key: &str) -> Result<Option<Consumer>, ServiceError> {
        match self.store.consumer_by_key(key).await? {
            Some(row) => Ok(Some(self.open_consumer(row)?)),
            None => Ok(None),
        }
    }

    /// A new token of `kind`, sealed for storage, with its clear values.
    fn new_token(
        &self,
        kind: TokenKind,
        verifier: Option<&str>,
        callback: &str,
    ) -> (SealedToken, TokenPair) {
        let token = crypto::random_token();
        let secret = crypto::random_token();
        let b = &self.keys.secret_box;
        let sealed = SealedToken {
            kind,
            token_hash: self.keys.lookup.hash(TOKEN_LOOKUP, &token),
            token: b.seal(TOKEN_VALUE, token.as_bytes()),
            secret: b.seal(TOKEN_SECRET, secret.as_bytes()),
            verifier: verifier.map(|v| b.seal(TOKEN_VERIFIER, v.as_bytes())),
            callback_url: callback.to_owned(),
        };
        (sealed, TokenPair { token, secret })
    }

    fn open_pair(&self, row: &TokenRow) -> Result<TokenPair, ServiceError> {
        let b = &self.keys.secret_box;
        Ok(TokenPair {
            token: b.open_string(TOKEN_VALUE, &row.token)?,
            secret: b.open_string(TOKEN_SECRET, &row.secret)?,
        })
    }

    /// Deletes the consumer's integration tokens (reauthorization, deactivation).
    pub async fn delete_integration_token(&self, consumer_id: i64) -> Result<u64, ServiceError> {
        Ok(self.store.delete_integration_tokens(consumer_id).await?)
    }

    /// Mints an access token for the consumer (no exchange). With `clear_existing` any token
    /// it had is replaced; without, an existing access token is kept. Returns whether a new
    /// token was created.
    pub async fn create_access_token(
        &self,
        consumer_id: i64,
        clear_existing: bool,
    ) -> Result<bool, ServiceError> {
        if !clear_existing
            && let Some(existing) = self.store.integration_token(consumer_id).await?
            && existing.kind == TokenKind::Access
        {
            return Ok(false);
        }
        let (sealed, _) = self.new_token(TokenKind::Access, None, "");
        self.store
            .replace_integration_token(consumer_id, &sealed)
            .await?;
        Ok(true)
    }

    /// The consumer's access token and secret, if it has one.
    pub async fn get_access_token(
        &self,
        consumer_id: i64,
    ) -> Result<Option<TokenPair>, ServiceError> {
        match self.store.integration_token(consumer_id).await? {
            Some(row) if row.kind == TokenKind::Access && !row.revoked => {
                Ok(Some(self.open_pair(&row)?))
            }
            _ => Ok(None),
        }
    }

    /// Where the identity-link page sends the admin back when the integrator is done.
    pub fn success_callback_url(&self, integration_id: i64) -> String {
        format!(
            "{}admin/integration/loginSuccessCallback?id={integration_id}",
            self.base_url.as_str()
        )
    }

    /// Starts the token exchange: creates the verifier token, opens the consumer's exchange
    /// window, and POSTs `oauth_consumer_key`, `oauth_consumer_secret`, `store_base_url` and
    /// `oauth_verifier` to the endpoint. Fails clearly when the endpoint cannot be reached or
    /// does not answer 2xx.
    #[tracing::instrument(skip(self))]
    pub async fn post_to_consumer(
        &self,
        consumer_id: i64,
        endpoint: &str,
    ) -> Result<(), ServiceError> {
        let consumer = self.load_consumer(consumer_id).await?;
        let verifier = crypto::random_token();
        let (sealed, _) = self.new_token(TokenKind::Verifier, Some(&verifier), "oob");
        self.store
            .replace_integration_token(consumer_id, &sealed)
            .await?;
        self.store.touch_consumer(consumer_id).await?;
        let form = [
            ("oauth_consumer_key", consumer.key.as_str()),
            ("oauth_consumer_secret", consumer.secret.as_str()),
            ("store_base_url", self.base_url.as_str()),
            ("oauth_verifier", verifier.as_str()),
        ];
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let host = url::Url::parse(endpoint)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let response = self
            .http
            .post(endpoint)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let why = if e.is_timeout() {
                    format!(
                        "did not answer within {} s",
                        self.settings.endpoint_timeout_seconds
                    )
                } else if e.is_connect() {
                    "could not be reached".to_owned()
                } else {
                    "failed".to_owned()
                };
                ServiceError::Endpoint(format!(
                    "The integration endpoint on {host} {why}; the credentials were not delivered."
                ))
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(ServiceError::Endpoint(format!(
                "The integration endpoint on {host} answered HTTP {}{}; the credentials were not accepted.",
                status.as_u16(),
                if status.is_redirection() {
                    " (redirects are not followed)"
                } else {
                    ""
                }
            )));
        }
        tracing::info!(
            consumer_id,
            "credentials posted to the integration endpoint"
        );
        Ok(())
    }
}
