//! The REST view of the plugin host: `GET /rest/V1/plugins` (loaded plugins with their roles,
//! health, recent log records and failures, async observers' backlogs, and the folders that
//! failed to load) and
//! `POST /rest/V1/plugins/reload` (reload changed plugin folders now, then re-sync declarative
//! integrations when a config provider changed). Both need `IntegrationHost_Plugins::manage`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::authorize;
use super::error::RestError;
use super::respond::json;
use crate::plugins::{PluginInfo, Problem, ReloadReport, with_backlogs};

/// The plugins of the server.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginsView {
    /// Loaded plugins, by id.
    #[schema(value_type = Vec<Object>)]
    pub plugins: Vec<PluginInfo>,
    /// Plugin folders that failed to load, and why.
    #[schema(value_type = Vec<Object>)]
    pub problems: Vec<Problem>,
}

/// What a reload did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadView {
    #[schema(value_type = Object)]
    pub reload: ReloadReport,
    /// The declarative sync that followed, when a config provider changed: its summary, or
    /// why nothing was synced.
    pub sync: Option<String>,
}

/// Loaded plugins, their health and recent failures, and folders that failed to load.
#[utoipa::path(
    get, path = "/rest/V1/plugins", tag = "plugins",
    responses(
        (status = 200, description = "The plugins", body = PluginsView),
        (status = 401, description = "Not allowed", body = super::error::ErrorBody),
    ),
    security(("bearer" = []), ("oauth1" = []))
)]
pub async fn list(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let backlogs = crate::services::outbox::backlogs(&state.store).await?;
    Ok(json(
        StatusCode::OK,
        &PluginsView {
            plugins: with_backlogs(state.plugins.list(), &backlogs),
            problems: state.plugins.problems(),
        },
    ))
}

/// Reloads changed plugin folders now (the server also does it by itself when
/// `plugins.reload_poll_ms` is set). Calls in flight finish on the version they started with.
#[utoipa::path(
    post, path = "/rest/V1/plugins/reload", tag = "plugins",
    responses(
        (status = 200, description = "What changed", body = ReloadView),
        (status = 401, description = "Not allowed", body = super::error::ErrorBody),
    ),
    security(("bearer" = []), ("oauth1" = []))
)]
pub async fn reload(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    authorize(&req, &body, &state).await?;
    let report = state.plugins.reload().await;
    let sync = match crate::declarative::sync_after_reload(
        &state.integrations,
        &state.settings.integrations.directories,
        &state.plugins,
        &report,
    )
    .await
    {
        Ok(None) => None,
        Ok(Some(report)) => Some(report.to_string()),
        Err(e) => Some(format!("not synced: {e}")),
    };
    Ok(json(
        StatusCode::OK,
        &ReloadView {
            reload: report,
            sync,
        },
    ))
}
