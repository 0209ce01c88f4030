//! The roles a plugin plays and the manifest's tables that configure them (`[observer]`,
//! `[permission_resolver]`, `[before_interceptor]`, `[after_interceptor]`,
//! `[credential_verifier]`, `[limits]`), with the rule that each role has its table when it needs
//! one and no table stands without its role.

use serde::Deserialize;

/// What a plugin does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Observer,
    PermissionResolver,
    ConfigProvider,
    /// Since 1.1.
    BeforeInterceptor,
    /// Since 1.1.
    AfterInterceptor,
    /// Since 1.1; one plugin at most.
    CredentialVerifier,
}

impl Role {
    /// The WIT interface a component playing the role exports.
    pub fn interface(self) -> &'static str {
        match self {
            Role::Observer => "observer",
            Role::PermissionResolver => "permission-resolver",
            Role::ConfigProvider => "config-provider",
            Role::BeforeInterceptor => "before-interceptor",
            Role::AfterInterceptor => "after-interceptor",
            Role::CredentialVerifier => "credential-verifier",
        }
    }

    /// The API version that introduced the role.
    pub fn since(self) -> (u32, u32) {
        match self {
            Role::Observer | Role::PermissionResolver | Role::ConfigProvider => (1, 0),
            Role::BeforeInterceptor | Role::AfterInterceptor | Role::CredentialVerifier => (1, 1),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.interface()
    }

    /// Every role, in the order the loader starts them.
    pub const ALL: [Role; 6] = [
        Role::Observer,
        Role::PermissionResolver,
        Role::ConfigProvider,
        Role::BeforeInterceptor,
        Role::AfterInterceptor,
        Role::CredentialVerifier,
    ];

    /// The role whose interface is `name` (as exports and manifests write it).
    pub fn from_interface(name: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.interface() == name)
    }
}

/// When an observer runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObserverMode {
    /// Inline, before the operation answers; may veto.
    Sync,
    /// After the answer, from a bounded queue.
    #[default]
    Async,
}

/// What a failure of a sync observer (error, trap, timeout, quarantine) means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObserverOnError {
    /// Logged; the operation goes on.
    #[default]
    Continue,
    /// The operation is refused (fail closed).
    Veto,
}

impl ObserverOnError {
    /// The manifest's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ObserverOnError::Continue => "continue",
            ObserverOnError::Veto => "veto",
        }
    }
}

/// What a failure of a permission resolver means. A security role fails closed unless its
/// manifest says otherwise: a deny-only plugin that breaks must not open the door (as Envoy's
/// external authorization fails closed by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResolverOnError {
    /// Counted as no opinion.
    Abstain,
    /// Counted as a deny (fail closed): the default.
    #[default]
    Deny,
}

impl ResolverOnError {
    /// The manifest's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolverOnError::Abstain => "abstain",
            ResolverOnError::Deny => "deny",
        }
    }
}

/// What a failure of an interceptor (error, trap, timeout, quarantine, an answer the host
/// refuses) means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InterceptorOnError {
    /// Logged; the operation goes on as if the plugin had passed.
    #[default]
    Continue,
    /// The operation is refused (fail closed).
    Refuse,
}

impl InterceptorOnError {
    /// The manifest's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            InterceptorOnError::Continue => "continue",
            InterceptorOnError::Refuse => "refuse",
        }
    }
}

/// The `[before_interceptor]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BeforeSection {
    /// Operation names (`integration_create`, ..., `customer_sign_in`), or `*` for all.
    pub operations: Vec<String>,
    #[serde(default)]
    pub on_error: InterceptorOnError,
}

/// The `[after_interceptor]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AfterSection {
    /// Result names (`admin_token`, `customer_token`, `request_allowed`), or `*` for all.
    pub results: Vec<String>,
    #[serde(default)]
    pub on_error: InterceptorOnError,
}

/// What a failure of the credential verifier means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifierOnError {
    /// The built-in password check decides, as if the plugin had abstained.
    Abstain,
    /// The sign-in is refused (fail closed): the default, as for resolvers.
    #[default]
    Refuse,
}

impl VerifierOnError {
    /// The manifest's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifierOnError::Abstain => "abstain",
            VerifierOnError::Refuse => "refuse",
        }
    }
}

/// The `[credential_verifier]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierSection {
    #[serde(default)]
    pub on_error: VerifierOnError,
}

impl BeforeSection {
    pub fn wants(&self, operation: &str) -> bool {
        self.operations.iter().any(|o| o == "*" || o == operation)
    }
}

impl AfterSection {
    pub fn wants(&self, result: &str) -> bool {
        self.results.iter().any(|r| r == "*" || r == result)
    }
}

/// The `[observer]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObserverSection {
    /// Event names, or `*` for all.
    pub events: Vec<String>,
    #[serde(default)]
    pub mode: ObserverMode,
    #[serde(default)]
    pub on_error: ObserverOnError,
}

/// The `[permission_resolver]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverSection {
    #[serde(default)]
    pub on_error: ResolverOnError,
}

/// The `[limits]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory a plugin instance may grow to, in MiB.
    pub memory_mib: u32,
    /// Time one call may take, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: 16,
            timeout_ms: 100,
        }
    }
}

pub(super) fn role_list(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which role tables a manifest has.
pub(super) struct Tables {
    pub(super) observer: bool,
    pub(super) permission_resolver: bool,
    pub(super) before_interceptor: bool,
    pub(super) after_interceptor: bool,
    pub(super) credential_verifier: bool,
}

/// Each role's table is there when the role needs one, and no table is there without its role.
pub(super) fn check_sections(roles: &[Role], t: &Tables) -> Result<(), (String, String)> {
    let needs = [
        (
            Role::Observer,
            t.observer,
            "observer",
            "an observer needs an [observer] table with its events",
        ),
        (
            Role::BeforeInterceptor,
            t.before_interceptor,
            "before_interceptor",
            "a before-interceptor needs a [before_interceptor] table with its operations",
        ),
        (
            Role::AfterInterceptor,
            t.after_interceptor,
            "after_interceptor",
            "an after-interceptor needs an [after_interceptor] table with its results",
        ),
    ];
    for (role, present, key, message) in needs {
        if roles.contains(&role) && !present {
            return Err((key.into(), message.into()));
        }
    }
    let tables = [
        (Role::Observer, t.observer, "observer"),
        (
            Role::PermissionResolver,
            t.permission_resolver,
            "permission_resolver",
        ),
        (
            Role::BeforeInterceptor,
            t.before_interceptor,
            "before_interceptor",
        ),
        (
            Role::AfterInterceptor,
            t.after_interceptor,
            "after_interceptor",
        ),
        (
            Role::CredentialVerifier,
            t.credential_verifier,
            "credential_verifier",
        ),
    ];
    for (role, present, key) in tables {
        if present && !roles.contains(&role) {
            return Err((
                key.into(),
                format!("the plugin does not play the {} role", role.as_str()),
            ));
        }
    }
    Ok(())
}
