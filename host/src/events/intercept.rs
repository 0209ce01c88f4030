//! Magento's before and after plugins, and its preference for checking a password, as points
//! the services call: what an operation is about to be given ([`Operation`]), what it produced
//! ([`Produced`]), and a sign-in's credentials ([`Credentials`]).
//!
//! This module owns those shapes and the [`Interceptors`] seam the [`super::Dispatcher`] holds:
//! the plugin host installs itself there (its before-interceptor, after-interceptor and
//! credential-verifier plugins, in sort order, each under its manifest's error policy); with
//! nothing installed every operation passes unchanged. The services decide what a rewrite may
//! change and check rewritten input like any other.

use futures_util::future::BoxFuture;

use crate::domain::AccountKind;

use super::IntegrationRef;

/// An integration's fields as an admin or the Web API submitted them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationInput {
    pub name: String,
    pub email: Option<String>,
    pub endpoint: Option<String>,
    pub identity_link_url: Option<String>,
    pub resources: Vec<String>,
    pub all_resources: bool,
}

/// A sign-in for an admin or customer token, without its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub kind: AccountKind,
    /// The user name or email address as typed.
    pub username: String,
    pub client_address: Option<String>,
}

/// An operation about to run, with its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    IntegrationCreate(IntegrationInput),
    IntegrationUpdate {
        integration: IntegrationRef,
        input: IntegrationInput,
    },
    IntegrationDelete(IntegrationRef),
    IntegrationActivate(IntegrationRef),
    SignIn(SignIn),
}

impl Operation {
    /// The name manifests subscribe to.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::IntegrationCreate(_) => "integration_create",
            Operation::IntegrationUpdate { .. } => "integration_update",
            Operation::IntegrationDelete(_) => "integration_delete",
            Operation::IntegrationActivate(_) => "integration_activate",
            Operation::SignIn(s) => match s.kind {
                AccountKind::Admin => "admin_sign_in",
                AccountKind::Customer => "customer_sign_in",
            },
        }
    }

    /// Every operation name.
    pub const NAMES: &'static [&'static str] = &[
        "integration_create",
        "integration_update",
        "integration_delete",
        "integration_activate",
        "admin_sign_in",
        "customer_sign_in",
    ];

    /// Whether `rewritten` may stand for `self`: the same operation on the same integration
    /// or account kind (an interceptor changes input, not what the operation is about).
    pub fn same_subject(&self, rewritten: &Operation) -> bool {
        match (self, rewritten) {
            (Operation::IntegrationCreate(_), Operation::IntegrationCreate(_)) => true,
            (
                Operation::IntegrationUpdate { integration: a, .. },
                Operation::IntegrationUpdate { integration: b, .. },
            ) => a.id == b.id,
            (Operation::IntegrationDelete(a), Operation::IntegrationDelete(b))
            | (Operation::IntegrationActivate(a), Operation::IntegrationActivate(b)) => a == b,
            (Operation::SignIn(a), Operation::SignIn(b)) => a.kind == b.kind,
            _ => false,
        }
    }
}

/// Who a request was allowed for, as after-interceptors see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Guest,
    Integration { id: i64, name: String },
    Admin { id: i64, name: String },
    Customer { id: i64, name: String },
}

/// A request forward-auth or the proxy allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedRequest {
    pub caller: Caller,
    pub method: String,
    pub path: String,
    pub resources: Vec<String>,
    pub client_address: Option<String>,
}

/// What an operation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Produced {
    /// A token was issued to an admin or a customer.
    Token {
        kind: AccountKind,
        id: i64,
        /// The user name or email address.
        name: String,
    },
    RequestAllowed(AllowedRequest),
}

impl Produced {
    /// The name manifests subscribe to.
    pub fn name(&self) -> &'static str {
        match self {
            Produced::Token {
                kind: AccountKind::Admin,
                ..
            } => "admin_token",
            Produced::Token {
                kind: AccountKind::Customer,
                ..
            } => "customer_token",
            Produced::RequestAllowed(_) => "request_allowed",
        }
    }

    /// Every result name.
    pub const NAMES: &'static [&'static str] =
        &["admin_token", "customer_token", "request_allowed"];
}

/// What after-interceptors add, checked by the host: claims only for tokens, headers only for
/// allowed requests, never a reserved name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Additions {
    /// JWT claims, by name, with JSON values.
    pub claims: Vec<(String, serde_json::Value)>,
    /// Headers for the upstream (`X-Auth-*`).
    pub headers: Vec<(String, String)>,
}

/// Claims an after-interceptor may not add: JWT's registered claims and the server's own.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "uid", "utypid",
];

/// The identity headers the server sets for the upstream of an allowed request (lower case):
/// an after-interceptor may not add them.
pub const IDENTITY_HEADERS: &[&str] = &["x-auth-user-type", "x-auth-user-id", "x-auth-user-name"];

/// Why an added claim or header cannot be used, if it cannot.
pub fn check_addition(produced: &Produced, kind: AdditionKind, name: &str) -> Option<String> {
    match (kind, produced) {
        (AdditionKind::Claim, Produced::RequestAllowed(_)) => Some(format!(
            "a claim `{name}` for an allowed request (claims go with tokens)"
        )),
        (AdditionKind::Header, Produced::Token { .. }) => Some(format!(
            "a header `{name}` for a token (headers go with allowed requests)"
        )),
        (AdditionKind::Claim, _) if name.is_empty() || RESERVED_CLAIMS.contains(&name) => {
            Some(format!("the claim `{name}`, which is reserved"))
        }
        (AdditionKind::Header, _) => {
            let lower = name.to_ascii_lowercase();
            if !lower.starts_with("x-auth-") || lower.len() == "x-auth-".len() {
                Some(format!(
                    "the header `{name}`: only X-Auth-* headers may be added"
                ))
            } else if IDENTITY_HEADERS.contains(&lower.as_str()) {
                Some(format!("the header `{name}`, which the server sets"))
            } else if !lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                Some(format!("the header `{name}`: not a header name"))
            } else {
                None
            }
        }
        (AdditionKind::Claim, _) => None,
    }
}

/// Which kind of addition [`check_addition`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdditionKind {
    Claim,
    Header,
}

/// A sign-in attempt, for a credential verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub kind: AccountKind,
    pub username: String,
    pub password: String,
    pub client_address: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("kind", &self.kind)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A credential verifier's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Sign in as the account with this user name or email address.
    Accept(String),
    /// Refuse; the lockout counts it. The reason is for the log.
    Refuse(String),
    /// Not one of its accounts: the built-in password check decides.
    Abstain,
}

/// A before-interceptor refused an operation, or one failed under a fail-closed policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The plugin's id.
    pub plugin: String,
    /// Shown to the caller.
    pub message: String,
}

/// The interceptors in force; installed into the dispatcher by the plugin host.
pub trait Interceptors: Send + Sync + 'static {
    /// Runs the before-interceptors of `op` in order, each on what the previous passed on:
    /// the input to go on with, or the refusal.
    fn before(&self, op: Operation) -> BoxFuture<'_, Result<Operation, Refusal>>;
    /// Whether any after-interceptor wants results named `name` (`request_allowed`, ...): the
    /// caller skips building the result when none does.
    fn wants_after(&self, name: &str) -> bool;
    /// Runs the after-interceptors of `produced` in order and gathers what they add; a
    /// fail-closed one that fails refuses the result.
    fn after<'a>(&'a self, produced: &'a Produced) -> BoxFuture<'a, Result<Additions, Refusal>>;
    /// Asks the credential verifier, if one is loaded.
    fn verify<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Verification, Refusal>>;
}
