//! Liveness, readiness and metrics endpoints for orchestrators and monitoring.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;

/// `GET /livez`: the process answers.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// `GET /readyz`: ready for traffic: not draining and the database answers.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.draining.load(Ordering::Relaxed) {
        return HttpResponse::ServiceUnavailable().json(json!({"status": "draining"}));
    }
    // Known to be down: say so at once (the ping would wait for a connection).
    let checked = match state.store.ensure_available() {
        Ok(()) => state.store.ping(Duration::from_secs(2)).await,
        Err(e) => Err(e),
    };
    match checked {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed: database");
            HttpResponse::ServiceUnavailable()
                .json(json!({"status": "unavailable", "checks": {"database": "unreachable"}}))
        }
    }
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}
