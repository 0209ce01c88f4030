//! OAuth 1.0a for integrations: Magento's `OauthServiceInterface` and token provider.
//!
//! This module owns the handshake rules: the verifier token and the activation POST to the
//! integrator's endpoint, the request-token and access-token exchanges with Magento's check
//! order and texts (`docs/oauth-reference.md`), and minted access tokens. Signatures themselves
//! are computed by the pure [`crate::oauth`] module. Token values, secrets and verifiers are
//! stored sealed and found by a keyed hash; the nonce is recorded only after the signature
//! verified, so a forged request cannot burn a legitimate client's nonce.

use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq as _;

use super::cache::{CAPACITY, TtlCache};
use super::error::{OauthError, ServiceError};
use crate::clock::now;
use crate::config::{OauthSettings, PublicUrl};
use crate::crypto::{self, KeyMaterial};
use crate::domain::{IntegrationStatus, TokenKind, UserType};
use crate::oauth::{Collected, SignatureMethod};
use crate::store::{ConsumerRow, NonceWriter, SealedToken, Store, TokenRow};

const CONSUMER_SECRET: &str = "oauth_consumer.secret";
const TOKEN_VALUE: &str = "oauth_token.token";
const TOKEN_SECRET: &str = "oauth_token.secret";
const TOKEN_VERIFIER: &str = "oauth_token.verifier";
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
                self.store.delete_integration(integration.id).await?;
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

    /// `/oauth/token/request`: a request token for a consumer with a verifier token.
    pub async fn request_token(&self, req: &SignedRequest) -> Result<TokenPair, OauthError> {
        let (consumer, method, timestamp, nonce) = self.check_common(req, &[], false).await?;
        let window = self.settings.consumer_exchange_window_seconds as i64;
        if now() - consumer.updated_at >= window {
            return Err(OauthError::auth("Consumer key has expired"));
        }
        self.check_signature(req, method, &consumer.secret, "")?;
        self.use_nonce(&consumer, nonce, timestamp).await?;
        let token = self
            .store
            .integration_token(consumer.id)
            .await
            .map_err(OauthError::internal)?
            .ok_or_else(|| {
                OauthError::auth(format!(
                    "A token with consumer ID {} does not exist",
                    consumer.id
                ))
            })?;
        if token.kind != TokenKind::Verifier {
            return Err(OauthError::auth(
                "Cannot create request token because consumer token is not a verifier token",
            ));
        }
        let callback = req
            .params
            .protocol("oauth_callback")
            .filter(|c| !c.is_empty())
            .unwrap_or("oob");
        let (sealed, pair) = self.new_token(TokenKind::Request, None, callback);
        let moved = self
            .store
            .advance_token(token.id, TokenKind::Verifier, &sealed)
            .await
            .map_err(OauthError::internal)?;
        if !moved {
            return Err(OauthError::auth(
                "Cannot create request token because consumer token is not a verifier token",
            ));
        }
        Ok(pair)
    }

    /// `/oauth/token/access`: exchanges a request token and verifier for the access token,
    /// and activates the integration.
    pub async fn access_token(&self, req: &SignedRequest) -> Result<TokenPair, OauthError> {
        let (consumer, method, timestamp, nonce) = self
            .check_common(req, &["oauth_token", "oauth_verifier"], false)
            .await?;
        let p = |name| req.params.protocol(name).unwrap_or_default();
        let token = self.find_token(p("oauth_token")).await?;
        if token.consumer_id != Some(consumer.id) {
            return Err(OauthError::auth(
                "Request token is not associated with the specified consumer",
            ));
        }
        if token.kind != TokenKind::Request {
            return Err(OauthError::auth("Token is already being used"));
        }
        let given = p("oauth_verifier");
        if given.len() != LENGTH {
            return Err(OauthError::auth("Verifier is not the correct length"));
        }
        let stored = match &token.verifier {
            Some(v) => self
                .keys
                .secret_box
                .open_string(TOKEN_VERIFIER, v)
                .map_err(OauthError::internal)?,
            None => String::new(),
        };
        if !bool::from(stored.as_bytes().ct_eq(given.as_bytes())) {
            return Err(OauthError::auth(
                "Token verifier and verifier token do not match",
            ));
        }
        let secret = self
            .keys
            .secret_box
            .open_string(TOKEN_SECRET, &token.secret)
            .map_err(OauthError::internal)?;
        self.check_signature(req, method, &consumer.secret, &secret)?;
        self.use_nonce(&consumer, nonce, timestamp).await?;
        let (sealed, pair) = self.new_token(TokenKind::Access, None, "");
        let moved = self
            .store
            .advance_token(token.id, TokenKind::Request, &sealed)
            .await
            .map_err(OauthError::internal)?;
        if !moved {
            return Err(OauthError::auth(
                "Cannot get access token because consumer token is not a request token",
            ));
        }
        if let Some(integration) = self
            .store
            .integration_by_consumer(consumer.id)
            .await
            .map_err(OauthError::internal)?
        {
            self.store
                .set_integration_status(integration.id, IntegrationStatus::Active)
                .await
                .map_err(OauthError::internal)?;
        }
        Ok(pair)
    }

    /// A signed Web API request (Magento's `validateAccessTokenRequest`): the protocol checks,
    /// then the access token (it must exist, belong to the consumer, be an access token and
    /// not be revoked), the signature with the token's secret, and last the nonce. Answers the
    /// consumer id.
    pub async fn authenticate(&self, req: &SignedRequest) -> Result<i64, OauthError> {
        let (consumer, method, timestamp, nonce) =
            self.check_common(req, &["oauth_token"], true).await?;
        let value = req.params.protocol("oauth_token").unwrap_or_default();
        if value.len() != LENGTH {
            return Err(OauthError::auth("Token is not the correct length"));
        }
        let token = self
            .cached_token(value)
            .await
            .map_err(OauthError::internal)?
            .ok_or_else(|| OauthError::auth("Specified token does not exist"))?;
        if token.consumer_id != Some(consumer.id) {
            return Err(OauthError::auth(
                "Token is not associated with the specified consumer",
            ));
        }
        if token.kind != TokenKind::Access {
            return Err(OauthError::auth("Token is not an access token"));
        }
        if token.revoked {
            return Err(OauthError::auth("Access token has been revoked"));
        }
        self.check_signature(req, method, &consumer.secret, &token.secret)?;
        self.use_nonce(&consumer, nonce, timestamp).await?;
        Ok(consumer.id)
    }

    /// An integration access token presented as `Authorization: Bearer`: the consumer id when
    /// it is a live access token of an integration. Callers accept this only when
    /// `oauth.allow_integration_bearer` is set.
    pub async fn bearer_consumer(&self, value: &str) -> Result<Option<i64>, ServiceError> {
        if value.len() != LENGTH {
            return Ok(None);
        }
        let token = self.cached_token(value).await?;
        Ok(token
            .filter(|t| {
                t.kind == TokenKind::Access
                    && !t.revoked
                    && t.user_type == Some(UserType::Integration)
            })
            .and_then(|t| t.consumer_id))
    }

    /// A token by value, through the credential cache.
    async fn cached_token(&self, value: &str) -> Result<Option<Arc<CachedToken>>, ServiceError> {
        let hash = self.keys.lookup.hash(TOKEN_LOOKUP, value);
        let generation = self.store.generation();
        if let Some(t) = self.tokens.get(&hash, generation) {
            return Ok(Some(t));
        }
        let Some(row) = self.store.token_by_hash(&hash).await? else {
            return Ok(None);
        };
        let token = Arc::new(CachedToken {
            secret: self
                .keys
                .secret_box
                .open_string(TOKEN_SECRET, &row.secret)?,
            consumer_id: row.consumer_id,
            kind: row.kind,
            revoked: row.revoked,
            user_type: row.user_type,
        });
        self.tokens.put(hash, generation, token.clone());
        Ok(Some(token))
    }

    /// A consumer by key, through the credential cache.
    async fn cached_consumer(&self, key: &str) -> Result<Option<Arc<Consumer>>, ServiceError> {
        let generation = self.store.generation();
        if let Some(c) = self.consumers.get(key, generation) {
            return Ok(Some(c));
        }
        let consumer = self.load_consumer_by_key(key).await?.map(Arc::new);
        if let Some(c) = &consumer {
            self.consumers.put(key.to_owned(), generation, c.clone());
        }
        Ok(consumer)
    }

    /// The nonce writer's counters (batches committed, nonces written), for the metrics.
    pub fn nonce_stats(&self) -> Arc<crate::store::NonceStats> {
        self.nonces.stats()
    }

    /// Whether bearer use of integration tokens is enabled.
    pub fn allows_integration_bearer(&self) -> bool {
        self.settings.allow_integration_bearer
    }

    async fn find_token(&self, value: &str) -> Result<TokenRow, OauthError> {
        if value.len() != LENGTH {
            return Err(OauthError::auth("Token is not the correct length"));
        }
        self.store
            .token_by_hash(&self.keys.lookup.hash(TOKEN_LOOKUP, value))
            .await
            .map_err(OauthError::internal)?
            .ok_or_else(|| OauthError::auth("Specified token does not exist"))
    }

    /// Magento's `_validateProtocolParams` and consumer lookup, in its order; the nonce is
    /// only checked for shape here and recorded after the signature.
    async fn check_common<'r>(
        &self,
        req: &'r SignedRequest,
        extra_required: &[&str],
        cached: bool,
    ) -> Result<(Arc<Consumer>, SignatureMethod, i64, &'r str), OauthError> {
        let p = |name| req.params.protocol(name);
        if let Some(v) = p("oauth_version")
            && v != "1.0"
        {
            return Err(OauthError::input(format!(
                "The \"{v}\" Oauth version isn't supported."
            )));
        }
        let mut missing = Vec::new();
        for name in [
            "oauth_consumer_key",
            "oauth_signature",
            "oauth_signature_method",
            "oauth_nonce",
            "oauth_timestamp",
        ]
        .iter()
        .chain(extra_required)
        {
            let present = if *name == "oauth_signature" {
                req.params.signature.is_some()
            } else {
                p(name).is_some()
            };
            if !present {
                missing.push(format!("\"{name}\" is required. Enter and try again"));
            }
        }
        if !missing.is_empty() {
            return Err(OauthError::input(missing.join(", ")));
        }
        if let Some(t) = p("oauth_token")
            && t.len() != LENGTH
        {
            return Err(OauthError::input(
                "The token length is invalid. Check the length and try again.",
            ));
        }
        let method_name = p("oauth_signature_method").unwrap_or_default();
        let method = SignatureMethod::parse(method_name)
            .filter(|m| *m != SignatureMethod::HmacSha1 || self.settings.allow_hmac_sha1)
            .ok_or_else(|| {
                OauthError::input(format!("Signature method {method_name} is not supported"))
            })?;
        let key = p("oauth_consumer_key").unwrap_or_default();
        if key.len() != LENGTH {
            return Err(OauthError::auth("Consumer key is not the correct length"));
        }
        let consumer = if cached {
            self.cached_consumer(key).await
        } else {
            self.load_consumer_by_key(key)
                .await
                .map(|c| c.map(Arc::new))
        };
        let consumer = consumer.map_err(OauthError::internal)?.ok_or_else(|| {
            OauthError::auth("A consumer having the specified key does not exist")
        })?;
        let window = self.settings.timestamp_window_seconds as i64;
        let timestamp = p("oauth_timestamp")
            .unwrap_or_default()
            .parse::<i64>()
            .ok()
            .filter(|t| *t > 0 && (t - now()).abs() <= window)
            .ok_or_else(|| {
                OauthError::auth(format!(
                    "The oauth_timestamp is not within {window} seconds of the server time"
                ))
            })?;
        let nonce = p("oauth_nonce").unwrap_or_default();
        if nonce.is_empty() || nonce.len() > MAX_NONCE {
            return Err(OauthError::input(format!(
                "The oauth_nonce must be 1 to {MAX_NONCE} characters long"
            )));
        }
        Ok((consumer, method, timestamp, nonce))
    }

    fn check_signature(
        &self,
        req: &SignedRequest,
        method: SignatureMethod,
        consumer_secret: &str,
        token_secret: &str,
    ) -> Result<(), OauthError> {
        let base = crate::oauth::base_string(&req.method, &req.url, &req.params.signed);
        let signature = req.params.signature.as_deref().unwrap_or_default();
        if crate::oauth::verify(method, consumer_secret, token_secret, &base, signature) {
            Ok(())
        } else {
            Err(OauthError::auth(
                "The signature is invalid. Verify and try again.",
            ))
        }
    }

    async fn use_nonce(
        &self,
        consumer: &Consumer,
        nonce: &str,
        timestamp: i64,
    ) -> Result<(), OauthError> {
        let fresh = self
            .nonces
            .record(consumer.id, nonce, timestamp)
            .await
            .map_err(OauthError::internal)?;
        if fresh {
            Ok(())
        } else {
            Err(OauthError::auth(format!(
                "The nonce is already being used by the consumer with ID {}",
                consumer.id
            )))
        }
    }
}
