//! The roles in action: the permission resolvers' combined answer, the config providers'
//! integrations, and the observers subscribed to the event dispatcher.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::error::ProvidersFailed;
use super::manifest::{ObserverMode, ObserverOnError, ResolverOnError};
use super::pool::Plugin;
use super::registry::Registry;
use super::v1_1;
use crate::events::{Dispatcher, Event, Mode, ObserveError, Observer};
use crate::services::authorization::{Decision, Principal, RequestFacts};
use crate::services::integration::IntegrationForm;

impl Registry {
    /// Asks every permission resolver about one request: any deny wins, then any allow.
    pub(super) async fn decide(
        &self,
        principal: &Principal,
        resources: &[String],
        acl_allows: bool,
        facts: RequestFacts<'_>,
    ) -> Decision {
        if self.resolvers.is_empty() {
            return Decision::Abstain;
        }
        let request = Arc::new(v1_1::ResolverRequest {
            principal: v1_1::principal(principal),
            resources: resources.to_vec(),
            acl_allows,
            method: facts.method.to_owned(),
            path: facts.path.to_owned(),
            client_address: facts.client_address,
            now: crate::clock::now(),
        });
        let mut allowed_by = None;
        for plugin in &self.resolvers {
            let verdict = match plugin.resolve(&request).await {
                Ok(v) => v,
                Err(e) => match plugin.manifest.resolver.as_ref().map(|r| r.on_error) {
                    Some(ResolverOnError::Deny) => v1_1::Verdict::Deny(format!("failed: {e}")),
                    _ => v1_1::Verdict::Abstain,
                },
            };
            match verdict {
                v1_1::Verdict::Deny(reason) => {
                    tracing::info!(plugin = %plugin.id(), reason = %reason, path = facts.path, "a permission resolver denied the request");
                    return Decision::Deny {
                        plugin: plugin.id().to_owned(),
                        reason,
                    };
                }
                v1_1::Verdict::Allow if allowed_by.is_none() => {
                    allowed_by = Some(plugin.id().to_owned());
                }
                _ => {}
            }
        }
        match allowed_by {
            Some(plugin) => Decision::Allow { plugin },
            None => Decision::Abstain,
        }
    }

    /// The integrations every config provider declares, as definition forms by source
    /// (`plugin:<id>`). Any provider failing makes the whole answer an error, so a sync never
    /// deletes what a broken provider declared.
    pub(super) async fn provided_integrations(
        &self,
    ) -> Result<Vec<(String, Vec<IntegrationForm>)>, ProvidersFailed> {
        let mut providers: Vec<Arc<Plugin>> = self
            .plugins()
            .filter(|p| p.provider.is_some())
            .cloned()
            .collect();
        providers
            .sort_by(|a, b| (a.manifest.sort_order, a.id()).cmp(&(b.manifest.sort_order, b.id())));
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for p in providers {
            match p.integrations().await {
                Ok(list) => out.push((
                    format!("plugin:{}", p.id()),
                    list.into_iter()
                        .map(|d| IntegrationForm {
                            name: d.name,
                            email: d.email,
                            endpoint: d.endpoint_url,
                            identity_link_url: d.identity_link_url,
                            all_resources: d.all_resources,
                            resources: d.resources,
                        })
                        .collect(),
                )),
                Err(e) => errors.push((p.id().to_owned(), e)),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(ProvidersFailed(errors))
        }
    }
}

/// Subscribes the observers of `next` that `current` did not have (new or reloaded plugins)
/// and unsubscribes those gone.
pub(super) fn subscribe_observers(events: &Dispatcher, current: &Registry, next: &Registry) {
    for old in current.plugins().filter(|p| p.observer.is_some()) {
        if !next
            .plugins()
            .any(|p| p.id() == old.id() && p.observer.is_some())
        {
            events.unsubscribe(&observer_name(old.id()));
        }
    }
    for plugin in next.plugins() {
        let Some(section) = &plugin.manifest.observer else {
            continue;
        };
        let same = current.plugins().any(|p| Arc::ptr_eq(p, plugin));
        if same {
            continue;
        }
        let names: Vec<&str> = section.events.iter().map(String::as_str).collect();
        let mode = match section.mode {
            ObserverMode::Sync => Mode::Sync,
            ObserverMode::Async => Mode::Async,
        };
        let observer = Arc::new(PluginObserver {
            name: observer_name(plugin.id()),
            plugin: plugin.clone(),
        });
        if let Err(e) = events.subscribe_ordered(&names, mode, plugin.manifest.sort_order, observer)
        {
            tracing::error!(plugin = %plugin.id(), error = %e, "cannot subscribe the plugin's observer");
        }
    }
}

fn observer_name(id: &str) -> String {
    format!("plugin:{id}")
}

/// An observer plugin subscribed to the dispatcher.
struct PluginObserver {
    name: String,
    plugin: Arc<Plugin>,
}

impl Observer for PluginObserver {
    fn name(&self) -> &str {
        &self.name
    }

    fn observe<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, Result<(), ObserveError>> {
        Box::pin(async move {
            let on_error = self
                .plugin
                .manifest
                .observer
                .as_ref()
                .map(|o| o.on_error)
                .unwrap_or_default();
            match self.plugin.on_event(event).await {
                Ok(v1_1::Outcome::Proceed) => Ok(()),
                Ok(v1_1::Outcome::Veto(reason)) => Err(ObserveError::Veto(reason)),
                Err(e) if on_error == ObserverOnError::Veto => Err(ObserveError::Veto(format!(
                    "The request was refused because the plugin `{}` failed.",
                    self.plugin.id()
                )))
                .inspect_err(|_| {
                    tracing::warn!(plugin = %self.plugin.id(), error = %e, "a fail-closed observer failed: vetoing");
                }),
                Err(e) => Err(ObserveError::Failed(e.to_string())),
            }
        })
    }
}
