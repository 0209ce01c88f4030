//! The signed requests of the OAuth protocol: the request-token and access-token exchanges
//! of the handshake, and every signed Web API request, each checked in Magento's order
//! (parameters, consumer, timestamp, token, signature, then the nonce) with Magento's texts.

use std::sync::Arc;

use subtle::ConstantTimeEq as _;

use super::{
    CachedToken, Consumer, LENGTH, MAX_NONCE, OauthService, SignedRequest, TOKEN_LOOKUP,
    TOKEN_SECRET, TOKEN_VERIFIER, TokenPair,
};
use crate::clock::now;
use crate::domain::{IntegrationStatus, TokenKind, UserType};
use crate::oauth::SignatureMethod;
use crate::services::error::{OauthError, Phrase, ServiceError};
use crate::store::TokenRow;

impl OauthService {
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
                OauthError::auth(Phrase::positional(
                    "A token with consumer ID %1 does not exist",
                    vec![consumer.id.to_string()],
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
                .set_integration_status(integration.id, IntegrationStatus::Active, None)
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
        // Its length was checked with the protocol parameters (400).
        let value = req.params.protocol("oauth_token").unwrap_or_default();
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
        let read = || async {
            let Some(row) = self.store.token_by_hash(&hash).await? else {
                return Ok(None);
            };
            Ok(Some(Arc::new(CachedToken {
                secret: self
                    .keys
                    .secret_box
                    .open_string(TOKEN_SECRET, &row.secret)?,
                consumer_id: row.consumer_id,
                kind: row.kind,
                revoked: row.revoked,
                user_type: row.user_type,
            })))
        };
        self.tokens
            .get_or_fill(hash.clone(), || self.store.generation(), read)
            .await
    }

    /// A consumer by key, through the credential cache.
    async fn cached_consumer(&self, key: &str) -> Result<Option<Arc<Consumer>>, ServiceError> {
        let read = || async { Ok(self.load_consumer_by_key(key).await?.map(Arc::new)) };
        self.consumers
            .get_or_fill(key.to_owned(), || self.store.generation(), read)
            .await
    }

    /// The nonce writer's counters (batches committed, nonces written), for the metrics.
    pub fn nonce_stats(&self) -> Arc<crate::store::NonceStats> {
        self.nonces.stats()
    }

    /// Whether bearer use of integration tokens is enabled.
    pub fn allows_integration_bearer(&self) -> bool {
        self.settings.allow_integration_bearer
    }

    /// The token `value` names (its length was checked with the protocol parameters).
    async fn find_token(&self, value: &str) -> Result<TokenRow, OauthError> {
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
            return Err(OauthError::input(Phrase::positional(
                "The \"%1\" Oauth version isn't supported.",
                vec![v.to_owned()],
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
                missing.push(Phrase::named(
                    "\"%fieldName\" is required. Enter and try again.",
                    vec![("fieldName", (*name).to_owned())],
                ));
            }
        }
        if !missing.is_empty() {
            return Err(OauthError::inputs(missing));
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
                OauthError::input(Phrase::positional(
                    "Signature method %1 is not supported",
                    vec![method_name.to_owned()],
                ))
            })?;
        let key = p("oauth_consumer_key").unwrap_or_default();
        // An empty key skips the length check, as in Magento's token provider.
        if !key.is_empty() && key.len() != LENGTH {
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
                OauthError::auth(Phrase::positional(
                    "The oauth_timestamp is not within %1 seconds of the server time",
                    vec![window.to_string()],
                ))
            })?;
        let nonce = p("oauth_nonce").unwrap_or_default();
        if nonce.is_empty() || nonce.len() > MAX_NONCE {
            return Err(OauthError::input(Phrase::positional(
                "The oauth_nonce must be 1 to %1 characters long",
                vec![MAX_NONCE.to_string()],
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
        let signature = req.params.signature.as_deref().unwrap_or_default();
        let verified = |params: &[(String, String)]| {
            let base = crate::oauth::base_string(&req.method, &req.url, params);
            crate::oauth::verify(method, consumer_secret, token_secret, &base, signature)
        };
        // The standard base string; then, if allowed, the one over the query names as sent
        // (npm oauth-1.0a's), only when it differs.
        let tolerated = || {
            self.settings.tolerate_undecoded_query_names
                && crate::oauth::with_undecoded_query_names(&req.url, &req.params.signed)
                    .is_some_and(|literal| verified(&literal))
        };
        if verified(&req.params.signed) || tolerated() {
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
            Err(OauthError::auth(Phrase::positional(
                "The nonce is already being used by the consumer with ID %1",
                vec![consumer.id.to_string()],
            )))
        }
    }
}
