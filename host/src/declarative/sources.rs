//! One sync over every source of declarative integrations: the definition folders and the
//! config-provider plugins. Start-up, `integration sync` and every plugin reload that changed a
//! provider run it.

use std::path::PathBuf;

use super::{SyncError, SyncReport, sync_sources};
use crate::plugins::{PluginHost, ReloadReport};
use crate::services::integration::IntegrationService;

/// Runs the declarative sync over `dirs` and the config-provider plugins. `Ok(None)` when there
/// is nothing to sync from (no folders, no config provider) and `providers_changed` is false (a
/// provider that just went away must take its integrations with it). When a plugin folder
/// failed to load, nothing is synced: that plugin may declare integrations, and a sync without
/// them would delete them.
pub async fn sync_integrations(
    integrations: &IntegrationService,
    dirs: &[PathBuf],
    plugins: &PluginHost,
    providers_changed: bool,
) -> Result<Option<SyncReport>, SyncError> {
    if dirs.is_empty() && !plugins.has_providers() && !providers_changed {
        return Ok(None);
    }
    if let Some(p) = plugins.problems().iter().find(|p| !p.still_serving) {
        return Err(SyncError::PluginNotLoaded(format!(
            "{p}; the sync waits until every plugin loads, so nothing a config provider declared is deleted"
        )));
    }
    let provided = plugins.provided_integrations().await?;
    sync_sources(integrations, dirs, provided).await.map(Some)
}

/// After a plugin reload: syncs the declarative integrations again when a config provider
/// came, changed or went, and logs what it did; `Ok(None)` when it did not run.
pub async fn sync_after_reload(
    integrations: &IntegrationService,
    dirs: &[PathBuf],
    plugins: &PluginHost,
    report: &ReloadReport,
) -> Result<Option<SyncReport>, SyncError> {
    if !report.providers_changed {
        return Ok(None);
    }
    let outcome = sync_integrations(integrations, dirs, plugins, true).await;
    log_sync(&outcome);
    outcome
}

/// Logs what a sync did, or why it changed nothing.
pub fn log_sync(outcome: &Result<Option<SyncReport>, SyncError>) {
    match outcome {
        Ok(None) => {}
        Ok(Some(report)) => tracing::info!(
            created = ?report.created,
            updated = ?report.updated,
            removed = ?report.removed,
            unchanged = report.unchanged.len(),
            "declarative integrations synced: {report}"
        ),
        Err(e) => tracing::error!(
            error = %e,
            "declarative integrations not synced; nothing was changed"
        ),
    }
}
