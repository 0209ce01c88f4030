//! HTTP: routes and middleware, translating requests to service calls and results to answers.
//!
//! This module owns the actix application: the shared [`AppState`] (`state`), the request
//! observer (`middleware`: request ids, one log line per request, metrics, head and body size
//! limits), the body extractor limits, and the server's own endpoints. No business rule lives
//! here: handlers parse, call a service, and render. Handlers live by route family
//! (`integrations`, `tokens`, `plugins`, `oauth`, `forward_auth`, `admin`, `health`); `routes`
//! registers the REST table and the OpenAPI document; `auth` identifies callers; `error` and
//! `respond` write answers.

mod admin;
pub mod auth;
pub mod connections;
pub mod error;
mod forward_auth;
mod health;
mod integrations;
pub mod metrics;
mod middleware;
pub mod oauth;
mod plugins;
mod respond;
mod roles;
mod routes;
pub(crate) mod search;
mod state;
mod tokens;

use actix_web::web;

pub use middleware::observe;
use respond::get_only;
pub use state::AppState;

/// Registers the server's routes, extractor limits and middleware on an actix `App`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let limit = state.settings.server.max_body_bytes;
        cfg.app_data(state.clone())
            .app_data(web::PayloadConfig::new(limit))
            .app_data(
                web::JsonConfig::default()
                    .limit(limit)
                    .error_handler(move |e, _| error::payload_error(e.into(), limit)),
            )
            .app_data(
                web::FormConfig::default()
                    .limit(limit)
                    .error_handler(move |e, _| error::payload_error(e.into(), limit)),
            )
            .service(get_only("/livez", health::livez))
            .service(get_only("/readyz", health::readyz))
            .configure(|cfg| {
                // On a listener of its own when metrics.listen says so.
                if state.settings.metrics.listen.is_none() {
                    cfg.service(get_only("/metrics", health::metrics));
                }
            })
            .route(
                "/oauth/token/request",
                web::route().to(oauth::request_token),
            )
            .route("/oauth/token/access", web::route().to(oauth::access_token))
            .configure(|cfg| routes::routes(cfg, &state.routes))
            .configure(admin::routes)
            .route("/forward-auth", web::route().to(forward_auth::forward_auth))
            .route(
                "/forward-auth/envoy{tail:.*}",
                web::route().to(forward_auth::forward_auth_envoy),
            )
            // Proxied routes of other services, else 404.
            .default_service(web::to(forward_auth::fallback));
    }
}

/// Registers the routes of the metrics listener (`metrics.listen`): `/metrics` only.
pub fn configure_metrics(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state)
            .service(get_only("/metrics", health::metrics))
            .default_service(web::to(|| async {
                use actix_web::ResponseError as _;
                error::RestError::not_found_route().error_response()
            }));
    }
}
