//! One sync over every source of declarative integrations: the definition folders and the
//! config-provider plugins. Start-up, `integration sync`, every plugin reload that changed a
//! provider, and the watcher of the definition folders when a file changed run it; processes
//! take turns at it through the store's sync lock.

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
    // One process at a time: a change is applied once, the others find it done.
    let _lock = integrations.sync_lock().await?;
    sync_sources(integrations, dirs, provided).await.map(Some)
}

/// A digest of the definition folders: the name and text of each `*.toml` file in them.
pub fn folders_fingerprint(dirs: &[PathBuf]) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::hash::DefaultHasher::new();
    for dir in dirs {
        dir.hash(&mut h);
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        for f in files {
            f.hash(&mut h);
            std::fs::read(&f).unwrap_or_default().hash(&mut h);
        }
    }
    h.finish()
}

/// Watches the definition folders: every `every`, when a file was added, changed or removed,
/// syncs again and logs what it did (a broken file changes nothing and is reported, as at
/// start). `None` without folders or with `every` zero.
pub fn spawn_watcher(
    integrations: IntegrationService,
    dirs: Vec<PathBuf>,
    plugins: PluginHost,
    every: std::time::Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    if dirs.is_empty() || every.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let read = |dirs: Vec<PathBuf>| async move {
            tokio::task::spawn_blocking(move || folders_fingerprint(&dirs))
                .await
                .unwrap_or_default()
        };
        let mut seen = read(dirs.clone()).await;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = read(dirs.clone()).await;
            if now == seen {
                continue;
            }
            seen = now;
            tracing::info!("a definition file was added, changed or removed: syncing");
            log_sync(&sync_integrations(&integrations, &dirs, &plugins, false).await);
        }
    }))
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
