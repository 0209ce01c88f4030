//! The plugin host: WebAssembly components that extend the server where Magento uses PHP
//! observers and plugins ([S-5]).
//!
//! This module owns the registry of loaded plugins and every call into them. A plugin is a
//! folder under one of `plugins.directories` with a manifest ([`manifest`]) and a component
//! built against the WIT package in `wit/` ([`v1`]). Loading checks the manifest, compiles the
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
//! gives it back. Any trap or timeout discards the instance. Failures are counted per plugin:
//! `plugins.quarantine_failures` within the window quarantine it for `quarantine_seconds`, during
//! which its calls are skipped and count as failures under its error policy.
//!
//! Roles: observers are subscribed to the event dispatcher (sync or async, ordered by sort
//! order then id, vetoes by their policy); permission resolvers answer in the authorization path
//! through the host's `PermissionResolvers` (any deny wins, then any allow, then the ACL); config providers
//! feed the declarative integration sync through [`PluginHost::provided_integrations`].
//!
//! Files: `host` (the [`PluginHost`] the server holds), `registry` (loaded folders and the
//! reload), `loader` (one folder loaded), `pool` (one plugin and its calls), `roles` (the roles
//! at work), `error` (what fails), `engine`, `state`, `manifest` and `v1` (the 1.0 bindings).

pub mod engine;
pub mod error;
mod host;
mod loader;
pub mod manifest;
mod pool;
mod registry;
mod roles;
pub mod state;
pub mod v1;

pub use error::{CallError, GuestError, LoadError, ProvidersFailed, Trap};
pub use host::{PluginHost, spawn_reloader};
pub use pool::{MAX_PROVIDED, MAX_REASON, Plugin, PluginInfo};
pub use registry::{Problem, ReloadReport};
