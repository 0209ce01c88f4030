//! The plugin host: WebAssembly components that extend the server where Magento uses PHP
//! observers and plugins ([S-5]).
//!
//! This module owns the registry of loaded plugins and every call into them. A plugin is a
//! folder under one of `plugins.directories` with a manifest ([`manifest`]) and a component
//! built against one version of the WIT package in `wit/` ([`v1_0`], [`v1_1`]). Loading checks the manifest, compiles the
//! component (or reads it from the cache, [`engine`]), checks its exports against the roles and
//! API version the manifest names, and instantiates it once. A plugin that fails any of this is
//! reported with its folder and reason and left out (in strict mode the server refuses to
//! start); a folder that changes is reloaded, and when the new version fails the old one keeps
//! serving.
//!
//! Calls: each plugin keeps a few warm instances per role (a fresh one costs tens of
//! microseconds, a call on a warm one about one); a call takes one, runs with the plugin's
//! memory cap and an epoch deadline (the plugin yields to the server's scheduler every
//! millisecond, so a busy plugin never stalls other requests) inside a wall-clock bound, and
//! gives it back. Any trap or timeout discards the instance; one that served 10,000 calls is
//! replaced by a fresh one started on a blocking thread (it serves until that is ready).
//! Failures are counted per plugin: `plugins.quarantine_failures` within the window quarantine
//! it for `quarantine_seconds`, during which its calls are skipped and count as failures under
//! its error policy.
//!
//! Roles: observers are subscribed to the event dispatcher (sync or async, ordered by sort
//! order then id, vetoes by their policy); permission resolvers answer in the authorization path
//! through the host's `PermissionResolvers` (any deny wins, then any allow, then the ACL); config providers
//! feed the declarative integration sync through [`PluginHost::provided_integrations`].
//!
//! Files: `host` (the [`PluginHost`] the server holds), `registry` (loaded folders and the
//! reload), `loader` (one folder loaded), `pool` (one plugin and its calls), `roles` (the roles
//! at work), `error` (what fails), `engine`, `state`, `manifest`, `capabilities` (asked, granted, and
//! the host's key-value and variables), and `v1_1` (the newest bindings, which the host works
//! in) and `v1_0` (1.0's, converting to and from the newest), `wit_json` (the newest types as
//! JSON, for `plugin call`).

pub mod capabilities;
mod engine;
pub mod error;
mod host;
mod info;
mod loader;
pub mod manifest;
pub mod outbound;
mod pool;
mod registry;
mod roles;
pub mod state;
pub mod v1_0;
pub mod v1_1;
pub mod wit_json;

pub use error::{CallError, GuestError, LoadError, ProvidersFailed, Trap};
pub use host::{PluginHost, spawn_reloader};
pub use info::{PluginInfo, Status, with_backlogs};
pub use pool::{MAX_PROVIDED, MAX_REASON, Plugin};
pub use registry::{Problem, ReloadReport};
pub use roles::{BeforeStep, checked_additions, integration_form};

/// WIT packages released to plugin authors (the plugin API by version, and the capabilities
/// plugins import), with the SHA-256 of their one `.wit` file: a released version is frozen,
/// so its file never changes (additions go in a new version's folder).
pub const RELEASED_WIT: &[(&str, &str)] = &[
    (
        "capabilities@1.0.0",
        "414d52596007dc3187550cdfd99a3ea4257b3e425854ae10aa485741c9af6eb8",
    ),
    (
        "capabilities@1.1.0",
        "a112dbf5a701dedf2ddb8e4024b82f06948e08ac1fcda47e139fd8ccec2ca400",
    ),
    (
        "plugin@1.0.0",
        "68cce3050ccaed20f61f35ea036a35374da84ac0ba31ca56477b2421eb97bd85",
    ),
    (
        "plugin@1.1.0",
        "f3bfbbbf31ea1c8583ebf246373d9deefbe6050543ef3501bf354858aebaee03",
    ),
];

/// The version in development, if any: its WIT may still change until it is released (then
/// its hash joins [`RELEASED_WIT`]).
pub const UNRELEASED_WIT: Option<&str> = None;

#[cfg(test)]
mod tests {
    use sha2::Digest as _;

    fn wit_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
    }

    #[test]
    fn released_wit_files_never_change() {
        for (folder, pinned) in super::RELEASED_WIT {
            let package = folder.split('@').next().unwrap();
            let path = wit_dir().join(folder).join(format!("{package}.wit"));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let hash = format!("{:x}", sha2::Sha256::digest(&bytes));
            assert_eq!(
                &hash, pinned,
                "wit/{folder}/plugin.wit changed: API {folder} is released and frozen; put changes in a new version's folder"
            );
        }
    }

    #[test]
    fn every_wit_folder_is_released_or_the_one_in_development() {
        let mut folders: Vec<String> = std::fs::read_dir(wit_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        folders.sort();
        let mut known: Vec<String> = super::RELEASED_WIT
            .iter()
            .map(|(f, _)| f.to_string())
            .chain(super::UNRELEASED_WIT.map(str::to_owned))
            .collect();
        known.sort();
        assert_eq!(folders, known);
        assert_eq!(
            super::manifest::SUPPORTED_API,
            [super::v1_0::VERSION, super::v1_1::VERSION]
        );
        // Every version the host loads has its folder.
        for (major, minor) in super::manifest::SUPPORTED_API {
            let folder = format!("plugin@{major}.{minor}.0");
            assert!(known.contains(&folder), "{folder}");
        }
    }
}
