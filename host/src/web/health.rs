//! Liveness, readiness and metrics endpoints for orchestrators and monitoring.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::AppState;

/// `GET /livez`: the process answers.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// `GET /readyz`: ready for traffic: not draining and the database answers (plugins whose
/// components are still compiling are listed, and do not hold traffic back).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.draining.load(Ordering::Relaxed) {
        return HttpResponse::ServiceUnavailable().json(json!({"status": "draining"}));
    }
    // Known to be down: say so at once (the ping would wait for a connection).
    let checked = match state.store.ensure_available() {
        Ok(()) => state.store.ping(Duration::from_secs(2)).await,
        Err(e) => Err(e),
    };
    // Writes failed for lack of space: not ready until a write that needs space succeeds
    // (tried here, so the node comes back by itself once space returns).
    let checked = match (checked, crate::store::space::full_since()) {
        (Ok(()), Some(since)) => match state.store.probe_space().await {
            Ok(()) => Ok(()),
            Err(e) if e.is_storage_full() => {
                return HttpResponse::ServiceUnavailable().json(json!({
                    "status": "unavailable",
                    "checks": {"database": "cannot write: the disk is full"},
                    "since": since,
                }));
            }
            Err(e) => Err(e),
        },
        (checked, _) => checked,
    };
    match checked {
        Ok(()) => {
            // Ready: plugins still compiling follow their error policies meanwhile; say which.
            let loading = state.plugins.loading();
            if loading.is_empty() {
                HttpResponse::Ok().json(json!({"status": "ready"}))
            } else {
                HttpResponse::Ok().json(json!({"status": "ready", "plugins_loading": loading}))
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed: database");
            HttpResponse::ServiceUnavailable()
                .json(json!({"status": "unavailable", "checks": {"database": "unreachable"}}))
        }
    }
}

/// `GET /metrics`: Prometheus text exposition; with `metrics.bearer_token` set, only for
/// `Authorization: Bearer <that token>`.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(expected) = &state.settings.metrics.bearer_token {
        let sent = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), expected.expose().as_bytes()).into();
        if !matches {
            return HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", "Bearer realm=\"metrics\""))
                .json(json!({"message": "The metrics need the bearer token configured in metrics.bearer_token."}));
        }
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}
