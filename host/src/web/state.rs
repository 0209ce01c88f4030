//! What every handler can reach: the services, the plugin host, the route table, the settings.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::config::Settings;
use crate::crypto::KeyMaterial;
use crate::store::Store;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub keys: Arc<KeyMaterial>,
    pub metrics: super::metrics::Metrics,
    pub oauth: crate::services::oauth::OauthService,
    pub integrations: crate::services::integration::IntegrationService,
    pub tokens: crate::services::tokens::TokenService,
    pub roles: crate::services::roles::RoleService,
    pub events: crate::events::Dispatcher,
    /// The Web API route table: the server's own routes and other services'.
    pub routes: Arc<crate::webapi::RouteTable>,
    /// The WebAssembly plugins: observers, permission resolvers, config providers.
    pub plugins: crate::plugins::PluginHost,
    /// Sessions and form keys of the admin UI.
    pub admin_sessions: crate::services::admin_sessions::AdminSessions,
    /// The client of the reverse proxy (no redirects, no system proxy, `proxy.timeout_seconds`).
    pub proxy: reqwest::Client,
    /// Set once shutdown began: `/readyz` answers 503 from then on.
    pub draining: Arc<AtomicBool>,
    /// The JSON of integrations read by id, kept with their cached reads.
    pub integration_answers: super::respond::JsonMemo<(
        crate::services::integration::Integration,
        crate::acl::Grants,
    )>,
    /// The JSON of `/integrations/me`, kept with each caller's cached principal.
    pub self_answers: super::respond::JsonMemo<crate::services::authorization::Principal>,
}
