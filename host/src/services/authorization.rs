//! Magento's `AuthorizationServiceInterface` for integrations: grant, grant all, remove, and
//! read back the selected resources.
//!
//! Requested resources are checked against the [`ResourceTree`] and expanded with their
//! ancestors before they are stored; an unknown resource is refused by name and nothing is
//! written.

use std::sync::Arc;

use super::{FieldError, ServiceError};
use crate::acl::{Grants, ResourceTree};
use crate::store::Store;

/// Who made a request, with what they were granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials, or credentials that name no one: holds `anonymous` only.
    Guest,
    /// An active integration, by a signed request or (when enabled) its bearer token.
    Integration {
        id: i64,
        name: String,
        consumer_id: i64,
        grants: Grants,
    },
    /// An admin user by bearer token (or admin session): what their role grants, never
    /// `self`; nothing when they hold no role.
    Admin {
        id: i64,
        username: String,
        grants: Grants,
    },
    /// A customer by bearer token: `self` and `anonymous` only.
    Customer { id: i64, email: String },
}

impl Principal {
    /// The user type's name: `guest`, `integration`, `admin`, `customer`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Principal::Guest => "guest",
            Principal::Integration { .. } => "integration",
            Principal::Admin { .. } => "admin",
            Principal::Customer { .. } => "customer",
        }
    }

    /// The user id (the integration id for integrations); none for guests.
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Principal::Guest => None,
            Principal::Integration { id, .. }
            | Principal::Admin { id, .. }
            | Principal::Customer { id, .. } => Some(*id),
        }
    }

    /// The integration name, admin username or customer email.
    pub fn user_name(&self) -> Option<&str> {
        match self {
            Principal::Guest => None,
            Principal::Integration { name, .. } => Some(name),
            Principal::Admin { username, .. } => Some(username),
            Principal::Customer { email, .. } => Some(email),
        }
    }

    /// Whether every one of `required` is granted.
    pub fn allows<'a>(&self, required: impl IntoIterator<Item = &'a str>) -> bool {
        match self {
            Principal::Guest => Grants::none().allows(required),
            Principal::Integration { grants, .. } => grants.allows(required),
            Principal::Admin { grants, .. } => grants.allows(required),
            Principal::Customer { .. } => required
                .into_iter()
                .all(|r| r == crate::acl::SELF || r == crate::acl::ANONYMOUS),
        }
    }
}

/// The answer of the permission resolvers to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A resolver (or a failing fail-closed one) denied: the plugin id and reason.
    Deny { plugin: String, reason: String },
    /// A resolver allowed and none denied.
    Allow { plugin: String },
    /// No resolver had an opinion: the ACL decides.
    Abstain,
}

/// The request details a permission resolver sees besides principal and resources.
#[derive(Debug, Clone)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// The path without its query.
    pub path: &'a str,
    pub client_address: Option<String>,
}

/// Whatever may overrule the ACL for one request (the plugin host's permission resolvers).
pub trait PermissionResolvers {
    /// Whether any resolver is there to ask (when none is, the ACL alone decides and the
    /// request's facts are never gathered).
    fn active(&self) -> bool;

    /// The resolvers' combined answer for one request, given the ACL's.
    fn decide(
        &self,
        principal: &Principal,
        resources: &[String],
        acl_allows: bool,
        facts: RequestFacts<'_>,
    ) -> impl std::future::Future<Output = Decision> + Send;
}

/// Whether `principal` may call a route that requires `resources`: the ACL's answer, unless a
/// permission resolver decides (any deny wins, then any allow). `facts` are gathered only when
/// a resolver is there to read them.
pub async fn permits<'a>(
    resolvers: &impl PermissionResolvers,
    principal: &Principal,
    resources: &[String],
    facts: impl FnOnce() -> RequestFacts<'a>,
) -> bool {
    let acl = principal.allows(resources.iter().map(String::as_str));
    if !resolvers.active() {
        return acl;
    }
    match resolvers.decide(principal, resources, acl, facts()).await {
        Decision::Deny { .. } => false,
        Decision::Allow { .. } => true,
        Decision::Abstain => acl,
    }
}

#[derive(Debug, Clone)]
pub struct AuthorizationService {
    store: Store,
    tree: Arc<ResourceTree>,
}

impl AuthorizationService {
    pub fn new(store: Store, tree: Arc<ResourceTree>) -> Self {
        Self { store, tree }
    }

    pub fn tree(&self) -> &ResourceTree {
        &self.tree
    }

    /// Checks and expands a request for resources (or all of them).
    pub fn resolve(&self, all: bool, resources: &[String]) -> Result<Grants, ServiceError> {
        if all {
            return Ok(Grants::All);
        }
        self.tree
            .grant(resources.iter().map(String::as_str))
            .map_err(|e| FieldError::invalid("resources", &e.0, "is not an ACL resource").into())
    }

    /// Replaces an integration's permissions with `resources` and their ancestors.
    pub async fn grant_permissions(
        &self,
        integration_id: i64,
        resources: &[String],
    ) -> Result<Grants, ServiceError> {
        let grants = self.resolve(false, resources)?;
        self.store_grants(integration_id, &grants).await?;
        Ok(grants)
    }

    /// Grants an integration every resource.
    pub async fn grant_all_permissions(&self, integration_id: i64) -> Result<(), ServiceError> {
        self.store_grants(integration_id, &Grants::All).await
    }

    /// Removes every permission of an integration.
    pub async fn remove_permissions(&self, integration_id: i64) -> Result<(), ServiceError> {
        Ok(self.store.delete_integration_rules(integration_id).await?)
    }

    /// What an integration was granted.
    pub async fn selected_resources(&self, integration_id: i64) -> Result<Grants, ServiceError> {
        Ok(Grants::from_rules(
            self.store.integration_rules(integration_id).await?,
        ))
    }

    /// What several integrations were granted, read in one query.
    pub async fn selected_resources_of(
        &self,
        integration_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, Grants>, ServiceError> {
        let mut rules = self.store.integrations_rules(integration_ids).await?;
        Ok(integration_ids
            .iter()
            .map(|id| {
                (
                    *id,
                    Grants::from_rules(rules.remove(id).unwrap_or_default()),
                )
            })
            .collect())
    }

    async fn store_grants(&self, integration_id: i64, grants: &Grants) -> Result<(), ServiceError> {
        if self
            .store
            .set_integration_rules(integration_id, &grants.to_rules())
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "The integration with ID \"{integration_id}\" doesn't exist."
            )))
        }
    }
}
