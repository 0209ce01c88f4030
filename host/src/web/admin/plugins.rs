//! The plugins page and its reload.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::common::*;
use crate::web::AppState;

pub(super) struct PluginRow {
    id: String,
    version: String,
    api_version: String,
    description: String,
    roles: String,
    events: String,
    operations: String,
    results: String,
    /// What a failed call means, per role.
    on_error: String,
    asked: String,
    granted: String,
    sort_order: i32,
    calls: u64,
    failures: u64,
    quarantined: Option<u64>,
    /// Its component is still compiling.
    loading: bool,
    /// An async observer's events not delivered yet: pending, given up, the oldest's time.
    backlog: Option<(i64, i64, Option<String>)>,
    dir: String,
    recent_failures: Vec<FailureRow>,
    recent_denials: Vec<DenialRow>,
}

pub(super) struct DenialRow {
    at: String,
    principal: String,
    request: String,
    reason: String,
}

pub(super) struct FailureRow {
    at: String,
    role: String,
    error: String,
}

#[derive(Template)]
#[template(path = "admin/plugins.html")]
pub(super) struct PluginsPage {
    page: Page,
    enabled: bool,
    plugins: Vec<PluginRow>,
    problems: Vec<String>,
}

pub(super) async fn plugins_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let session = or_answer!(signed_in(&req, &state, PLUGINS).await);
    let backlogs = match crate::services::outbox::backlogs(&state.store).await {
        Ok(b) => b,
        Err(e) => return failure(&e),
    };
    let plugins = crate::plugins::with_backlogs(state.plugins.list(), &backlogs)
        .into_iter()
        .map(|p| PluginRow {
            roles: p
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            events: p.events.join(", "),
            operations: p.operations.join(", "),
            results: p.results.join(", "),
            on_error: p
                .on_error
                .iter()
                .map(|(role, policy)| format!("{}: {policy}", role.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            asked: p.asked.join("; "),
            granted: p.granted.join("; "),
            calls: p.health.calls,
            failures: p.health.failures,
            quarantined: p.health.quarantined_for_seconds,
            loading: p.status == crate::plugins::Status::Loading,
            backlog: p.backlog.map(|b| {
                (
                    b.pending,
                    b.given_up,
                    b.oldest_pending_at.map(crate::clock::iso8601),
                )
            }),
            recent_failures: p
                .health
                .recent_failures
                .iter()
                .rev()
                .take(10)
                .map(|f| FailureRow {
                    at: crate::clock::iso8601(f.at),
                    role: f.role.to_owned(),
                    error: f.error.clone(),
                })
                .collect(),
            recent_denials: p
                .health
                .recent_denials
                .iter()
                .rev()
                .take(10)
                .map(|d| DenialRow {
                    at: crate::clock::iso8601(d.at),
                    principal: d.principal.clone(),
                    request: format!("{} {}", d.method, d.path),
                    reason: d.reason.clone(),
                })
                .collect(),
            id: p.id,
            version: p.version,
            api_version: p.api_version,
            description: p.description,
            sort_order: p.sort_order,
            dir: p.dir,
        })
        .collect();
    let t = PluginsPage {
        page: page(&req, &state, &session, "plugins"),
        enabled: state.plugins.enabled(),
        plugins,
        problems: state
            .plugins
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    show(&req, &state, &t)
}

pub(super) async fn plugins_reload(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    or_answer!(post(&req, &body, &state, PLUGINS).await);
    let report = state.plugins.reload().await;
    if let Err(e) = crate::declarative::sync_after_reload(
        &state.integrations,
        &state.settings.integrations.directories,
        &state.plugins,
        &report,
    )
    .await
    {
        return redirect_with(
            &state,
            "/admin/plugins",
            "error",
            &format!("Plugins reloaded; integrations not synced: {e}"),
        );
    }
    let changed = report.loaded.len() + report.reloaded.len() + report.removed.len();
    redirect_with(
        &state,
        "/admin/plugins",
        if report.problems.is_empty() {
            "success"
        } else {
            "warning"
        },
        &format!(
            "Plugins reloaded: {changed} changed, {} not loaded.",
            report.problems.len()
        ),
    )
}
