//! What can go wrong with a plugin: loading it ([`LoadError`]) and calling it ([`CallError`]).
//! The texts are what operators read in logs, `plugin list`, `GET /rest/V1/plugins` and the
//! admin plugins page; code decides on the variants.

use super::manifest::Role;

/// Why a trapped call stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Trap {
    /// The epoch deadline interrupted it.
    #[error("timed out after {ms} ms")]
    Timeout { ms: u64 },
    /// It grew its memory past the plugin's cap.
    #[error("exceeded its memory limit of {mib} MiB")]
    MemoryLimit { mib: u32 },
    #[error("overflowed its stack")]
    StackOverflow,
    /// Rust and C guests keep a stack in linear memory without a guard page: its overflow
    /// shows as an access below address zero.
    #[error("accessed memory out of bounds (its stack overflowed, or a memory bug)")]
    OutOfBounds,
    #[error("panicked or aborted")]
    Panicked,
    /// Another trap, in wasmtime's words.
    #[error("trapped: {0}")]
    Other(String),
    /// An error that is not a trap (a host function failed, a bad value crossed the boundary).
    #[error("failed: {0}")]
    Host(String),
}

/// The guest's own error answer (`plugin-error` of the WIT package).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("bad configuration: {0}")]
    BadConfig(String),
    #[error("failed: {0}")]
    Failed(String),
}

/// Why a call into a plugin failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Skipped: the plugin is quarantined after repeated failures.
    #[error("quarantined after repeated failures")]
    Quarantined,
    /// Skipped: the plugin's component is still being compiled (at server start, in the
    /// background); the call follows the plugin's error policy.
    #[error("still loading (its component is being compiled)")]
    Loading,
    /// The plugin does not play the role it was called in.
    #[error("does not play the {} role", .0.as_str())]
    NotInRole(Role),
    /// No instance could be started.
    #[error("cannot start: {0}")]
    Start(Box<CallError>),
    /// The instance trapped; `stderr` is what it wrote there (cut short), if anything.
    #[error("{trap}{}", in_parentheses(.stderr))]
    Trapped { trap: Trap, stderr: String },
    /// The server's wall-clock bound on the whole call ran out.
    #[error("did not finish within its wall-clock bound of {ms} ms")]
    WallClock { ms: u128 },
    /// The plugin answered an error of its own.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// The plugin's answer broke a limit of the host (a reason too long, too many
    /// integrations).
    #[error("{0}")]
    Oversized(String),
    /// The plugin answered what the host cannot use (a rewrite of another operation, a reserved
    /// claim or header).
    #[error("answered what the host cannot use: {0}")]
    Unusable(String),
}

fn in_parentheses(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(" ({stderr})")
    }
}

/// Config providers that failed to answer, by plugin id: the sync waits for all of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|(id, e)| format!("plugin:{id}: {e}")).collect::<Vec<_>>().join("\n"))]
pub struct ProvidersFailed(pub Vec<(String, CallError)>);

/// Why a plugin folder could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The manifest is missing, unreadable or invalid.
    #[error("{0}")]
    Manifest(String),
    #[error("cannot read the component {path}: {reason}")]
    Component { path: String, reason: String },
    #[error("not a valid component: {0}")]
    Invalid(String),
    /// The component's exports do not match the manifest's roles or API version.
    #[error("{0}")]
    Exports(String),
    #[error("the component imports something this server does not provide: {0}")]
    Imports(String),
    #[error("does not fit the {} world: {reason}", .role.as_str())]
    World { role: Role, reason: String },
    /// Its first instance failed to start.
    #[error(transparent)]
    Start(#[from] CallError),
    /// Another folder already holds a plugin with this id.
    #[error("the id is already used by {0}")]
    DuplicateId(String),
    /// A role one plugin at most may play is played by another.
    #[error("plays the {} role, which `{first}` already plays: one plugin at most", .role.as_str())]
    SecondSeam { role: Role, first: String },
    #[error("this host has no engine")]
    NoEngine,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_read_as_operators_knew_them() {
        let t = CallError::Trapped {
            trap: Trap::Timeout { ms: 50 },
            stderr: String::new(),
        };
        assert_eq!(t.to_string(), "timed out after 50 ms");
        let t = CallError::Trapped {
            trap: Trap::Panicked,
            stderr: "boom".into(),
        };
        assert_eq!(t.to_string(), "panicked or aborted (boom)");
        assert_eq!(
            CallError::Start(Box::new(CallError::WallClock { ms: 150 })).to_string(),
            "cannot start: did not finish within its wall-clock bound of 150 ms"
        );
        assert_eq!(
            CallError::from(GuestError::BadConfig("x".into())).to_string(),
            "bad configuration: x"
        );
    }
}
