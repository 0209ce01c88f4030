//! A loaded plugin as `plugin list`, `GET /rest/V1/plugins` and the admin plugins page show it:
//! what it is, what it plays, what it asks for and was granted, how it fares, and for an async
//! observer, the events the outbox has not delivered to it yet.

use std::collections::BTreeMap;

use serde::Serialize;

use super::engine;
use super::manifest::{ObserverMode, Role};
use super::pool::Plugin;
use super::state::HealthReport;
use crate::services::outbox::Backlog;

/// A loaded plugin as `plugin list` and `GET /rest/V1/plugins` show it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub id: String,
    pub version: String,
    pub api_version: String,
    pub description: String,
    pub dir: String,
    pub roles: Vec<Role>,
    pub sort_order: i32,
    pub events: Vec<String>,
    /// What a before-interceptor intercepts.
    pub operations: Vec<String>,
    /// What an after-interceptor adds to.
    pub results: Vec<String>,
    pub mode: Option<ObserverMode>,
    /// What a failed call means, per role (the manifest's `on_error`, or the role's default:
    /// resolvers deny and credential verifiers refuse, the others go on).
    pub on_error: BTreeMap<Role, &'static str>,
    /// The capabilities its manifest asks for, in words.
    pub asked: Vec<String>,
    /// What the operator granted of them, in words (never a variable's value).
    pub granted: Vec<String>,
    pub loaded_at: i64,
    /// `loading` while its component compiles in the background (at server start), then
    /// `ready`.
    pub status: Status,
    /// Compiled at load or read from the cache; absent while loading.
    pub compiled: Option<engine::Origin>,
    pub health: HealthReport,
    /// An async observer's events not yet delivered (filled in by [`with_backlogs`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<Backlog>,
}

/// Whether a plugin serves yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Its component is compiling: each role it plays follows its error policy meanwhile.
    Loading,
    Ready,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Loading => "loading",
            Status::Ready => "ready",
        }
    }
}

/// Fills in each async observer's backlog from the outbox's, by observer name.
pub fn with_backlogs(
    mut plugins: Vec<PluginInfo>,
    backlogs: &BTreeMap<String, Backlog>,
) -> Vec<PluginInfo> {
    for p in &mut plugins {
        if p.mode == Some(ObserverMode::Async) {
            p.backlog = Some(
                backlogs
                    .get(&super::roles::observer_name(&p.id))
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    plugins
}

impl Plugin {
    /// What `plugin list` and the REST API show.
    pub fn info(&self) -> PluginInfo {
        PluginInfo {
            id: self.manifest.id.clone(),
            version: self.manifest.version.clone(),
            api_version: self.manifest.api_text(),
            description: self.manifest.description.clone(),
            dir: self.dir.display().to_string(),
            roles: self.manifest.roles.clone(),
            sort_order: self.manifest.sort_order,
            events: self
                .manifest
                .observer
                .as_ref()
                .map(|o| o.events.clone())
                .unwrap_or_default(),
            mode: self.manifest.observer.as_ref().map(|o| o.mode),
            on_error: self.manifest.on_error().into_iter().collect(),
            operations: self
                .manifest
                .before
                .as_ref()
                .map(|b| b.operations.clone())
                .unwrap_or_default(),
            results: self
                .manifest
                .after
                .as_ref()
                .map(|a| a.results.clone())
                .unwrap_or_default(),
            asked: self.manifest.capabilities.describe(),
            granted: self.manifest.granted.describe(),
            loaded_at: self.loaded_at,
            status: if self.loading() {
                Status::Loading
            } else {
                Status::Ready
            },
            compiled: self.origin,
            health: self.health().report(),
            backlog: None,
        }
    }
}
