//! The rules of the product, as Magento's public service interfaces state them.
//!
//! Routes and CLI commands both call these services; services call the [`crate::store`] and
//! never speak HTTP. Each submodule owns one family: accounts (admin users and customers),
//! integrations, their ACL permissions, and OAuth (consumers, tokens, the handshake, signed
//! requests).

pub mod accounts;
pub mod admin_sessions;
pub mod authorization;
mod cache;
mod error;
pub mod integration;
pub mod magento_env;
pub mod magento_import;
pub mod oauth;
pub mod outbox;
pub mod plugin_state;
pub mod roles;
pub mod sealing;
pub mod search;
pub mod tokens;

use std::sync::Arc;

pub use error::{FieldError, OauthError, Phrase, PhraseParameters, ServiceError};

use crate::acl::ResourceTree;
use crate::config::Settings;
use crate::crypto::KeyMaterial;
use crate::events::{AuditLog, Dispatcher, Mode};
use crate::store::Store;

/// Every service, wired once for the server and the CLI alike.
#[derive(Debug, Clone)]
pub struct Services {
    pub oauth: oauth::OauthService,
    pub integrations: integration::IntegrationService,
    pub tokens: tokens::TokenService,
    pub roles: roles::RoleService,
    pub events: Dispatcher,
    pub tree: Arc<ResourceTree>,
}

impl Services {
    /// Builds the services; the ACL tree comes from `acl.resources_file` or the built-in one.
    pub fn build(
        store: Store,
        keys: Arc<KeyMaterial>,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        let tree = Arc::new(match &settings.acl.resources_file {
            Some(path) => ResourceTree::load(path)?,
            None => ResourceTree::builtin(),
        });
        let events = Dispatcher::new();
        events
            .subscribe(&["*"], Mode::Sync, Arc::new(AuditLog))
            .expect("every event name is known");
        let cache_ttl = std::time::Duration::from_secs(settings.oauth.credential_cache_seconds);
        let tokens = tokens::TokenService::new(
            store.clone(),
            keys.clone(),
            settings.tokens.clone(),
            events.clone(),
            cache_ttl,
        );
        let oauth = oauth::OauthService::new(
            store.clone(),
            keys,
            settings.oauth.clone(),
            settings.server.base_url.clone(),
        );
        let authorization = authorization::AuthorizationService::new(store.clone(), tree.clone());
        let roles = roles::RoleService::new(store.clone(), tree.clone());
        let integrations = integration::IntegrationService::new(
            store,
            oauth.clone(),
            authorization,
            cache_ttl,
            events.clone(),
            search::PageSizes {
                default: settings.webapi.default_page_size.get(),
                maximum: settings.webapi.maximum_page_size.get(),
            },
        );
        Ok(Self {
            oauth,
            integrations,
            tokens,
            roles,
            events,
            tree,
        })
    }
}
