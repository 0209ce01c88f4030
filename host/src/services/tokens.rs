//! Admin and customer tokens: Magento's `AdminTokenServiceInterface` and
//! `CustomerTokenServiceInterface`, its request throttler, and the bearer check of the Web API.
//!
//! A sign-in runs Magento's order: both fields present (else an input error naming each
//! missing one), the user name not locked, the password right for an active account, then
//! the `customer_login` or `admin_login` event, the failure count cleared, and a token issued:
//! a JWT by default, an opaque stored token when `tokens.format = "opaque"`. Every refusal of
//! a sign-in answers the same text, whether the user exists, the password is wrong, the
//! account is inactive or locked. Failures are counted per lower-cased user name, so changing
//! the case of a name does not reset its count.
//!
//! Revoking a user's tokens deletes their stored tokens and writes `revoke_before`: a JWT
//! issued at or before it is refused. A token issued later in the same second as a
//! revocation gets `iat = revoke_before + 1`, so a fresh sign-in right after a revocation works.
//! Bearer checks read the account and its revocation through the credential cache: a change
//! made by this process applies at the next request, one made by another process within
//! `oauth.credential_cache_seconds`.

use std::sync::Arc;
use std::time::Duration;

use super::ServiceError;
use super::accounts::AccountService;
use super::authorization::Principal;
use super::cache::{CAPACITY, TtlCache};
use crate::acl::Grants;
use crate::clock::now;
use crate::config::{TokenFormat, TokenSettings};
use crate::crypto::{self, Claims, JwtKeys, KeyMaterial};
use crate::domain::{AccountKind, RevocationReason, TokenKind, UserType};
use crate::events::{
    AdminLogin, Credentials, CustomerLogin, Dispatcher, Event, Operation, Produced, SignIn,
    TokensRevoked, Verification,
};
use crate::store::{SealedToken, Store};

/// Magento's answer to an admin with the right credentials but no role
/// (`User::verifyIdentity`).
pub const NO_ROLE: &str = "More permissions are needed to access this.";

/// Magento's one answer to every failed sign-in.
pub const SIGN_IN_FAILED: &str = "The account sign-in was incorrect or your account is disabled temporarily. Please wait and try again later.";

/// Lookup-hash and secret-box contexts of opaque user tokens (distinct from integration ones).
const USER_TOKEN_LOOKUP: &str = "user_token";
pub(crate) const USER_TOKEN_VALUE: &str = "oauth_token.token";
pub(crate) const USER_TOKEN_SECRET: &str = "oauth_token.secret";
/// Characters of an opaque token, as Magento makes them.
const OPAQUE_LENGTH: usize = 32;

/// Where a sign-in came from, for the login events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// These fields are missing or empty (Magento's input exception).
    #[error("missing fields: {0:?}")]
    Missing(Vec<&'static str>),
    /// Wrong credentials, an inactive account or a lock: [`SIGN_IN_FAILED`].
    #[error("{SIGN_IN_FAILED}")]
    Refused,
    /// The right credentials of an admin who holds no role: [`NO_ROLE`].
    #[error("{NO_ROLE}")]
    NoRole,
    /// A sync observer of the sign-in event (a plugin) refused it, with its reason.
    #[error("{0}")]
    Vetoed(String),
    /// A before-interceptor (a plugin) refused the sign-in, with its message: a bad request,
    /// not a failed sign-in (the lockout does not count it).
    #[error("{0}")]
    Intercepted(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// A verified user, as the bearer check caches it.
#[derive(Debug)]
struct CachedUser {
    principal: Option<Arc<Principal>>,
    revoke_before: Option<i64>,
}

/// An opaque token as the bearer check caches it.
#[derive(Debug, Clone, Copy)]
struct CachedOpaque {
    kind: AccountKind,
    user_id: i64,
    created_at: i64,
}

#[derive(Debug, Clone)]
pub struct TokenService {
    store: Store,
    accounts: AccountService,
    keys: Arc<KeyMaterial>,
    jwt: JwtKeys,
    settings: TokenSettings,
    events: Dispatcher,
    users: Arc<TtlCache<(AccountKind, i64), Arc<CachedUser>>>,
    opaque: Arc<TtlCache<Vec<u8>, CachedOpaque>>,
    jwts: Arc<TtlCache<String, Claims>>,
    attempts: Arc<SignInAttempts>,
}

/// How a sign-in attempt ended, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The credentials were good.
    Success,
    /// They were checked and wrong (or the account is unknown or inactive).
    Failure,
    /// The account is locked: nothing was checked.
    Locked,
}

impl Attempt {
    pub const ALL: [Attempt; 3] = [Attempt::Success, Attempt::Failure, Attempt::Locked];

    pub fn as_str(self) -> &'static str {
        match self {
            Attempt::Success => "success",
            Attempt::Failure => "failure",
            Attempt::Locked => "locked",
        }
    }
}

/// Sign-in attempts counted by account kind and outcome.
#[derive(Debug, Default)]
pub struct SignInAttempts([std::sync::atomic::AtomicU64; 6]);

impl SignInAttempts {
    fn slot(kind: AccountKind, outcome: Attempt) -> usize {
        let k = match kind {
            AccountKind::Admin => 0,
            AccountKind::Customer => 3,
        };
        k + outcome as usize
    }

    fn count(&self, kind: AccountKind, outcome: Attempt) {
        self.0[Self::slot(kind, outcome)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The attempts of one kind that ended so.
    pub fn get(&self, kind: AccountKind, outcome: Attempt) -> u64 {
        self.0[Self::slot(kind, outcome)].load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl TokenService {
    pub fn new(
        store: Store,
        keys: Arc<KeyMaterial>,
        settings: TokenSettings,
        events: Dispatcher,
        cache_ttl: Duration,
    ) -> Self {
        let jwt = JwtKeys::new(settings.algorithm, keys.signing_keys.clone());
        Self {
            accounts: AccountService::new(store.clone()),
            store,
            keys,
            jwt,
            settings,
            events,
            users: Arc::new(TtlCache::new(cache_ttl, CAPACITY)),
            opaque: Arc::new(TtlCache::new(cache_ttl, CAPACITY)),
            jwts: Arc::new(TtlCache::new(cache_ttl, CAPACITY)),
            attempts: Arc::default(),
        }
    }

    /// `POST /V1/integration/admin/token`.
    pub async fn create_admin_access_token(
        &self,
        username: Option<&str>,
        password: Option<&str>,
        client: ClientInfo,
    ) -> Result<String, SignInError> {
        let account = self.sign_in_admin(username, password, client).await?;
        self.issue_for(AccountKind::Admin, account.id, &account.login)
            .await
    }

    /// `POST /V1/integration/customer/token`; dispatches `customer_login`.
    pub async fn create_customer_access_token(
        &self,
        username: Option<&str>,
        password: Option<&str>,
        client: ClientInfo,
    ) -> Result<String, SignInError> {
        let account = self
            .sign_in(AccountKind::Customer, username, password, &client)
            .await?;
        self.signed_in(Event::CustomerLogin(CustomerLogin {
            customer_id: account.id,
            email: account.email.clone(),
            firstname: account.firstname.clone(),
            lastname: account.lastname.clone(),
            at: now(),
            client_address: client.address,
            user_agent: client.user_agent,
        }))
        .await?;
        self.issue_for(AccountKind::Customer, account.id, &account.login)
            .await
    }

    /// Signs an admin in: the checks, the lock and the `admin_login` event (a sync observer
    /// may veto) of the token route, without issuing a token (the admin UI starts a session
    /// instead). Answers the admin.
    pub async fn sign_in_admin(
        &self,
        username: Option<&str>,
        password: Option<&str>,
        client: ClientInfo,
    ) -> Result<crate::store::AccountRow, SignInError> {
        let account = self
            .sign_in(AccountKind::Admin, username, password, &client)
            .await?;
        // As Magento's `User::verifyIdentity`: right credentials, but no role.
        if self
            .store
            .admin_role(account.id)
            .await
            .map_err(ServiceError::from)?
            .is_none()
        {
            return Err(SignInError::NoRole);
        }
        self.signed_in(Event::AdminLogin(AdminLogin {
            admin_id: account.id,
            username: account.login.clone(),
            at: now(),
            client_address: client.address,
            user_agent: client.user_agent,
        }))
        .await?;
        Ok(account)
    }

    /// A sign-in that passed its checks: its sync observers may still veto it; then it is
    /// written to the outbox for async ones (on its own: a sign-in changes nothing else).
    async fn signed_in(&self, event: Event) -> Result<(), SignInError> {
        let written = super::outbox::recorded(&event);
        self.events
            .dispatch_sync(&event)
            .await
            .map_err(|veto| SignInError::Vetoed(veto.reason))?;
        self.store
            .record_event(&written)
            .await
            .map_err(|e| SignInError::Service(e.into()))?;
        self.events.after_written(event);
        Ok(())
    }

    /// Checks the fields, runs the before-interceptors (which may refuse or rewrite the user
    /// name), checks the lock and the credentials (the credential verifier's, or the password);
    /// counts a failure.
    async fn sign_in(
        &self,
        kind: AccountKind,
        username: Option<&str>,
        password: Option<&str>,
        client: &ClientInfo,
    ) -> Result<crate::store::AccountRow, SignInError> {
        let username = username.filter(|u| !u.is_empty());
        let password = password.filter(|p| !p.is_empty());
        let (Some(username), Some(password)) = (username, password) else {
            let mut missing = Vec::new();
            if username.is_none() {
                missing.push("username");
            }
            if password.is_none() {
                missing.push("password");
            }
            return Err(SignInError::Missing(missing));
        };
        let op = Operation::SignIn(SignIn {
            kind,
            username: username.to_owned(),
            client_address: client.address.clone(),
        });
        let username = match self.events.before(op).await {
            Ok(Operation::SignIn(s)) if !s.username.is_empty() => s.username,
            Ok(_) => username.to_owned(),
            Err(refusal) => return Err(SignInError::Intercepted(refusal.message)),
        };
        let username = username.as_str();
        let log_name = username.to_lowercase();
        let t = now();
        // A failure slot is taken before the credentials are checked, so that however many
        // attempts run at once, at most `lockout_failures` are checked per lock period.
        let lock_until = t.saturating_add(self.settings.lockout_seconds as i64);
        let slot = self
            .store
            .take_failure_slot(
                &log_name,
                kind,
                t,
                lock_until,
                i64::from(self.settings.lockout_failures),
            )
            .await
            .map_err(ServiceError::from)?;
        if !slot {
            self.attempts.count(kind, Attempt::Locked);
            return Err(SignInError::Refused);
        }
        let credentials = Credentials {
            kind,
            username: username.to_owned(),
            password: password.to_owned(),
            client_address: client.address.clone(),
        };
        let account = match self.events.verify(&credentials).await {
            Ok(Verification::Abstain) => self.accounts.verify(kind, username, password).await?,
            Ok(Verification::Accept(name)) => self
                .store
                .find_account(kind, &name)
                .await
                .map_err(ServiceError::from)?
                .filter(|a| a.is_active),
            Ok(Verification::Refuse(reason)) => {
                tracing::info!(username = %username, reason = %reason, "the credential verifier refused a sign-in");
                None
            }
            Err(refusal) => {
                tracing::info!(username = %username, reason = %refusal, "the credential verifier refused a sign-in");
                None
            }
        };
        match account {
            Some(account) => {
                self.attempts.count(kind, Attempt::Success);
                // The slot goes back: a vetoed or intercepted sign-in after this is no failure.
                self.store
                    .reset_failures(&log_name, kind)
                    .await
                    .map_err(ServiceError::from)?;
                Ok(account)
            }
            None => {
                self.attempts.count(kind, Attempt::Failure);
                Err(SignInError::Refused)
            }
        }
    }

    /// Sign-in attempts by account kind and outcome, for the metrics.
    pub fn sign_in_attempts(&self) -> Arc<SignInAttempts> {
        self.attempts.clone()
    }

    /// Issues a token after a sign-in, with the claims the after-interceptors add (to JWTs;
    /// an opaque token carries none). A fail-closed after-interceptor that fails refuses it.
    async fn issue_for(
        &self,
        kind: AccountKind,
        user_id: i64,
        name: &str,
    ) -> Result<String, SignInError> {
        let produced = Produced::Token {
            kind,
            id: user_id,
            name: name.to_owned(),
        };
        let added = self
            .events
            .after(&produced)
            .await
            .map_err(|refusal| SignInError::Intercepted(refusal.message))?;
        Ok(self.issue_with(kind, user_id, &added.claims).await?)
    }

    /// A new token for an account, in the configured format.
    pub async fn issue(&self, kind: AccountKind, user_id: i64) -> Result<String, ServiceError> {
        self.issue_with(kind, user_id, &[]).await
    }

    /// A new token for an account, a JWT with `claims` beside the server's own.
    async fn issue_with(
        &self,
        kind: AccountKind,
        user_id: i64,
        claims: &[(String, serde_json::Value)],
    ) -> Result<String, ServiceError> {
        match self.settings.format {
            TokenFormat::Jwt => {
                let t = now();
                let revoked = self.store.revoked_before(kind, user_id).await?;
                let iat = match revoked {
                    Some(before) if before >= t => before + 1,
                    _ => t,
                };
                let minutes = match kind {
                    AccountKind::Admin => self.settings.admin_lifetime_minutes,
                    AccountKind::Customer => self.settings.customer_lifetime_minutes,
                };
                Ok(self.jwt.sign_with(
                    &Claims {
                        uid: user_id,
                        utypid: kind.user_type().code(),
                        iat,
                        exp: t + i64::from(minutes) * 60,
                    },
                    claims,
                ))
            }
            TokenFormat::Opaque => {
                let value = crypto::random_token();
                let secret = crypto::random_token();
                let sealed = SealedToken {
                    kind: TokenKind::Access,
                    token_hash: self.keys.lookup.hash(USER_TOKEN_LOOKUP, &value),
                    token: self
                        .keys
                        .secret_box
                        .seal(USER_TOKEN_VALUE, value.as_bytes()),
                    secret: self
                        .keys
                        .secret_box
                        .seal(USER_TOKEN_SECRET, secret.as_bytes()),
                    verifier: None,
                    callback_url: String::new(),
                };
                self.store.insert_user_token(kind, user_id, &sealed).await?;
                Ok(value)
            }
        }
    }

    /// Revokes every token of an account. Returns whether the account exists.
    pub async fn revoke(
        &self,
        kind: AccountKind,
        user_id: i64,
        reason: RevocationReason,
    ) -> Result<bool, ServiceError> {
        if self.store.account_by_id(kind, user_id).await?.is_none() {
            return Ok(false);
        }
        let event = Event::TokensRevoked(TokensRevoked {
            account: kind,
            user_id,
            reason,
        });
        self.store
            .revoke_account_tokens(kind, user_id, &super::outbox::recorded(&event))
            .await?;
        self.events.notify(event).await;
        Ok(true)
    }

    /// The admin or customer a bearer token names, when it is valid: a JWT this server
    /// signed, unexpired, not revoked, of an active account; or a live opaque token.
    /// `None` for anything else (the caller is then a guest, as in Magento).
    pub async fn bearer_principal(
        &self,
        token: &str,
    ) -> Result<Option<Arc<Principal>>, ServiceError> {
        let t = now();
        let (kind, user_id, issued) = if token.split('.').count() == 3 {
            let Some(claims) = self.verified(token, t) else {
                return Ok(None);
            };
            let Some(kind) = UserType::try_from(claims.utypid)
                .ok()
                .and_then(UserType::account)
            else {
                return Ok(None);
            };
            (kind, claims.uid, Some(claims.iat))
        } else {
            let Some(opaque) = self.opaque_token(token).await? else {
                return Ok(None);
            };
            let hours = match opaque.kind {
                AccountKind::Admin => self.settings.opaque_admin_lifetime_hours,
                AccountKind::Customer => self.settings.opaque_customer_lifetime_hours,
            };
            if t >= opaque.created_at + i64::from(hours) * 3600 {
                return Ok(None);
            }
            // Revocation deletes stored tokens; the row being there is enough.
            (opaque.kind, opaque.user_id, None)
        };
        let user = self.user(kind, user_id).await?;
        if let (Some(iat), Some(before)) = (issued, user.revoke_before)
            && iat <= before
        {
            return Ok(None);
        }
        Ok(user.principal.clone())
    }

    /// The claims of a JWT that verified, through a cache of tokens already verified (a
    /// signature cannot stop matching, and the expiry is checked on every use). Tokens that
    /// fail are not cached.
    fn verified(&self, token: &str, now: i64) -> Option<Claims> {
        let claims = match self.jwts.get(token, 0) {
            Some(c) => c,
            None => {
                let c = self.jwt.verify(token, now).ok()?;
                self.jwts.put(token.to_owned(), 0, c.clone());
                c
            }
        };
        (now < claims.exp).then_some(claims)
    }

    async fn opaque_token(&self, value: &str) -> Result<Option<CachedOpaque>, ServiceError> {
        if value.len() != OPAQUE_LENGTH {
            return Ok(None);
        }
        let hash = self.keys.lookup.hash(USER_TOKEN_LOOKUP, value);
        let read = || async {
            let Some(row) = self.store.token_by_hash(&hash).await? else {
                return Ok(None);
            };
            let found = match (row.user_type, row.admin_id, row.customer_id) {
                (Some(UserType::Admin), Some(id), _) => (AccountKind::Admin, id),
                (Some(UserType::Customer), _, Some(id)) => (AccountKind::Customer, id),
                _ => return Ok(None),
            };
            if row.kind != TokenKind::Access || row.revoked {
                return Ok(None);
            }
            Ok(Some(CachedOpaque {
                kind: found.0,
                user_id: found.1,
                created_at: row.created_at,
            }))
        };
        self.opaque
            .get_or_fill(hash.clone(), || self.store.generation(), read)
            .await
    }

    /// An account and its revocation, through the cache.
    async fn user(&self, kind: AccountKind, id: i64) -> Result<Arc<CachedUser>, ServiceError> {
        let read = || async {
            let account = self.store.account_by_id(kind, id).await?;
            let revoke_before = self.store.revoked_before(kind, id).await?;
            let principal = match account.filter(|a| a.is_active) {
                None => None,
                Some(a) => Some(Arc::new(match kind {
                    AccountKind::Admin => Principal::Admin {
                        id,
                        username: a.login,
                        // Read with the account, so a role change (which moves the generation)
                        // applies at the next request.
                        grants: match self.store.admin_role(id).await? {
                            Some(role) => Grants::from_rules(role.rules),
                            None => Grants::none(),
                        },
                    },
                    AccountKind::Customer => Principal::Customer { id, email: a.email },
                })),
            };
            Ok::<_, ServiceError>(Some(Arc::new(CachedUser {
                principal,
                revoke_before,
            })))
        };
        let user = self
            .users
            .get_or_fill((kind, id), || self.store.generation(), read)
            .await?;
        Ok(user.expect("an account's entry is always read"))
    }

    /// An active admin with what their role grants now (through the cache), for the admin
    /// UI's pages; `None` when the account is gone or inactive.
    pub async fn admin_principal(&self, id: i64) -> Result<Option<Arc<Principal>>, ServiceError> {
        Ok(self.user(AccountKind::Admin, id).await?.principal.clone())
    }

    /// The account service, for lookups by login.
    pub fn accounts(&self) -> &AccountService {
        &self.accounts
    }
}
