//! The roles in action: the permission resolvers' combined answer, the config providers'
//! integrations, the observers subscribed to the event dispatcher, and the interceptors and
//! credential verifier the services call through the dispatcher (in sort order, each under
//! its manifest's error policy, answers the host cannot use counted as failures).

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::error::CallError;
use super::error::ProvidersFailed;
use super::manifest::{
    InterceptorOnError, ObserverMode, ObserverOnError, ResolverOnError, Role, VerifierOnError,
};
use super::pool::Plugin;
use super::registry::Registry;
use super::v1_1;
use crate::events::intercept::{AdditionKind, check_addition};
use crate::events::{
    Additions, Credentials, Delivery, Dispatcher, Event, Mode, ObserveError, Observer, Operation,
    Produced, Refusal, Verification,
};
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
                Err(e) => match plugin.manifest.resolver_on_error() {
                    ResolverOnError::Deny => {
                        tracing::warn!(plugin = %plugin.id(), error = %e, path = facts.path, "a permission resolver failed: the request is denied (on_error = \"deny\")");
                        v1_1::Verdict::Deny(if e == CallError::Loading {
                            e.to_string()
                        } else {
                            format!("failed: {e}")
                        })
                    }
                    ResolverOnError::Abstain => {
                        tracing::warn!(plugin = %plugin.id(), error = %e, path = facts.path, "a permission resolver failed: it abstains, the others and the ACL decide (on_error = \"abstain\")");
                        v1_1::Verdict::Abstain
                    }
                },
            };
            match verdict {
                v1_1::Verdict::Deny(reason) => {
                    tracing::info!(plugin = %plugin.id(), reason = %reason, path = facts.path, "a permission resolver denied the request");
                    plugin.health().denied(super::state::Denial {
                        at: request.now,
                        method: facts.method.to_owned(),
                        path: facts.path.to_owned(),
                        principal: described(principal),
                        reason: reason.clone(),
                    });
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
            .filter(|p| p.manifest.has(Role::ConfigProvider))
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
                    list.into_iter().map(integration_form).collect(),
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

/// Who asked, in words: `integration 3 (Shop A)`, `guest`.
fn described(principal: &Principal) -> String {
    match (principal.user_id(), principal.user_name()) {
        (Some(id), Some(name)) => format!("{} {id} ({name})", principal.type_name()),
        _ => principal.type_name().to_owned(),
    }
}

/// The refusal of an operation because a fail-closed plugin failed (or is still loading).
fn failed_closed(plugin: &Plugin, error: &CallError) -> Refusal {
    let what = if *error == CallError::Loading {
        "is still loading"
    } else {
        "failed"
    };
    Refusal {
        plugin: plugin.id().to_owned(),
        message: format!(
            "The request was refused because the plugin `{}` {what}.",
            plugin.id()
        ),
    }
}

impl Registry {
    /// Runs the before-interceptors that want `op`, in order, each on what the previous one
    /// passed on.
    pub(super) async fn before(&self, mut op: Operation) -> Result<Operation, Refusal> {
        for plugin in &self.befores {
            let Some(section) = plugin.manifest.before.as_ref() else {
                continue;
            };
            if !section.wants(op.name()) {
                continue;
            }
            match plugin.intercept_before(&op).await {
                Ok(BeforeStep::Pass) => {}
                Ok(BeforeStep::Rewrite(new)) => op = new,
                Ok(BeforeStep::Refuse(message)) => {
                    tracing::info!(plugin = %plugin.id(), operation = op.name(), message = %message, "a before-interceptor refused the operation");
                    return Err(Refusal {
                        plugin: plugin.id().to_owned(),
                        message,
                    });
                }
                Err(e) => {
                    if section.on_error == InterceptorOnError::Refuse {
                        tracing::warn!(plugin = %plugin.id(), operation = op.name(), error = %e, "a before-interceptor failed: the operation is refused (on_error = \"refuse\")");
                        return Err(failed_closed(plugin, &e));
                    }
                    tracing::warn!(plugin = %plugin.id(), operation = op.name(), error = %e, "a before-interceptor failed: the operation goes on as passed (on_error = \"continue\")");
                }
            }
        }
        Ok(op)
    }

    /// Runs the after-interceptors that want `produced`, in order, and gathers what they add
    /// (a claim or header added twice: the first stands).
    pub(super) async fn after(&self, produced: &Produced) -> Result<Additions, Refusal> {
        let mut out = Additions::default();
        let mut wit = None;
        for plugin in &self.afters {
            let Some(section) = plugin.manifest.after.as_ref() else {
                continue;
            };
            if !section.wants(produced.name()) {
                continue;
            }
            let wit = wit.get_or_insert_with(|| v1_1::produced(produced));
            match plugin.intercept_after(produced, wit).await {
                Ok(added) => {
                    for (name, value) in added.claims {
                        if !out.claims.iter().any(|(n, _)| *n == name) {
                            out.claims.push((name, value));
                        }
                    }
                    for (name, value) in added.headers {
                        if !out
                            .headers
                            .iter()
                            .any(|(n, _)| n.eq_ignore_ascii_case(&name))
                        {
                            out.headers.push((name, value));
                        }
                    }
                }
                Err(e) if section.on_error == InterceptorOnError::Refuse => {
                    tracing::warn!(plugin = %plugin.id(), result = produced.name(), error = %e, "an after-interceptor failed: the operation is refused (on_error = \"refuse\")");
                    return Err(failed_closed(plugin, &e));
                }
                Err(e) => {
                    tracing::warn!(plugin = %plugin.id(), result = produced.name(), error = %e, "an after-interceptor failed: it adds nothing (on_error = \"continue\")");
                }
            }
        }
        Ok(out)
    }

    /// Asks the credential verifier, if one is loaded.
    pub(super) async fn verify(&self, credentials: &Credentials) -> Result<Verification, Refusal> {
        let Some(plugin) = &self.verifier else {
            return Ok(Verification::Abstain);
        };
        match plugin.verify(&v1_1::credentials(credentials)).await {
            Ok(v) => Ok(v1_1::verification(v)),
            Err(e) => {
                if plugin.manifest.verifier_on_error() == VerifierOnError::Refuse {
                    tracing::warn!(plugin = %plugin.id(), error = %e, "the credential verifier failed: the sign-in is refused (on_error = \"refuse\")");
                    Ok(Verification::Refuse(if e == CallError::Loading {
                        format!("the plugin `{}` is still loading", plugin.id())
                    } else {
                        format!("the plugin `{}` failed", plugin.id())
                    }))
                } else {
                    tracing::warn!(plugin = %plugin.id(), error = %e, "the credential verifier failed: the server's password check decides (on_error = \"abstain\")");
                    Ok(Verification::Abstain)
                }
            }
        }
    }
}

/// One before-interceptor's answer, as the host takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeforeStep {
    /// Go on with the operation as it is.
    Pass,
    /// Go on with this instead (the same operation and subject).
    Rewrite(Operation),
    /// Refused, with a message for the caller.
    Refuse(String),
}

impl Plugin {
    /// Calls the before-interceptor on `op` and checks its answer as the server uses it: a
    /// rewrite must be of the same operation and subject, or the call counts as failed.
    pub async fn intercept_before(&self, op: &Operation) -> Result<BeforeStep, CallError> {
        Ok(match self.before(&v1_1::operation(op)).await? {
            v1_1::Answer::Pass => BeforeStep::Pass,
            v1_1::Answer::Refuse(message) => BeforeStep::Refuse(message),
            v1_1::Answer::Rewrite(new) => match v1_1::operation_back(new) {
                Some(new) if op.same_subject(&new) => BeforeStep::Rewrite(new),
                _ => {
                    return Err(self.failed(
                        Role::BeforeInterceptor,
                        CallError::Unusable(format!(
                            "a rewrite of `{}` into another operation or subject",
                            op.name()
                        )),
                    ));
                }
            },
        })
    }

    /// Calls the after-interceptor on `produced` (`wit`, the same in the plugin's types) and
    /// checks what it adds as the server uses it, or the call counts as failed.
    pub async fn intercept_after(
        &self,
        produced: &Produced,
        wit: &v1_1::Produced,
    ) -> Result<Additions, CallError> {
        let added = self.after(wit).await?;
        usable(produced, added)
            .map_err(|why| self.failed(Role::AfterInterceptor, CallError::Unusable(why)))
    }
}

/// A config provider's declared integration as the definition form the sync takes.
pub fn integration_form(d: v1_1::IntegrationDefinition) -> IntegrationForm {
    IntegrationForm {
        name: d.name,
        email: d.email,
        endpoint: d.endpoint_url,
        identity_link_url: d.identity_link_url,
        all_resources: d.all_resources,
        resources: d.resources,
    }
}

/// What an after-interceptor adds to `produced`, checked as the server checks it (for the fuzz
/// targets of the plugin boundary); the reason when the host cannot use it.
pub fn checked_additions(produced: &Produced, added: v1_1::Additions) -> Result<Additions, String> {
    usable(produced, added)
}

/// An after-interceptor's additions, checked: claims only for tokens and never reserved, their
/// values JSON; headers only `X-Auth-*` for allowed requests, never the identity ones.
fn usable(produced: &Produced, added: v1_1::Additions) -> Result<Additions, String> {
    let mut out = Additions::default();
    for (name, value) in added.claims {
        if let Some(why) = check_addition(produced, AdditionKind::Claim, &name) {
            return Err(why);
        }
        let value: serde_json::Value = serde_json::from_str(&value)
            .map_err(|e| format!("the claim `{name}`: its value is not JSON ({e})"))?;
        out.claims.push((name, value));
    }
    for (name, value) in added.headers {
        if let Some(why) = check_addition(produced, AdditionKind::Header, &name) {
            return Err(why);
        }
        if value.len() > 1024 || value.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(format!("the header `{name}`: not a header value"));
        }
        out.headers.push((name, value));
    }
    Ok(out)
}

/// Subscribes the observers of `next` that `current` did not have (new or reloaded plugins)
/// and unsubscribes those gone.
pub(super) fn subscribe_observers(events: &Dispatcher, current: &Registry, next: &Registry) {
    let observes = |p: &Plugin| p.manifest.has(Role::Observer);
    for old in current.plugins().filter(|p| observes(p)) {
        if !next.plugins().any(|p| p.id() == old.id() && observes(p)) {
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

/// The dispatcher's (and the outbox's) name of a plugin's observer.
pub(super) fn observer_name(id: &str) -> String {
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
        Box::pin(self.handle(event, None))
    }

    fn observe_delivery<'a>(
        &'a self,
        event: &'a Event,
        delivery: &'a Delivery,
    ) -> BoxFuture<'a, Result<(), ObserveError>> {
        Box::pin(self.handle(event, Some(delivery)))
    }
}

impl PluginObserver {
    async fn handle(&self, event: &Event, delivery: Option<&Delivery>) -> Result<(), ObserveError> {
        {
            let on_error = self
                .plugin
                .manifest
                .observer
                .as_ref()
                .map(|o| o.on_error)
                .unwrap_or_default();
            match self.plugin.on_event(event, delivery).await {
                Ok(v1_1::Outcome::Proceed) => Ok(()),
                // Not run: a durable delivery waits for the quarantine to end, or for the
                // plugin to finish loading.
                Err(e @ (CallError::Quarantined | CallError::Loading)) if delivery.is_some() => {
                    Err(ObserveError::Skipped(e.to_string()))
                }
                Ok(v1_1::Outcome::Veto(reason)) => Err(ObserveError::Veto(reason)),
                Err(e) if on_error == ObserverOnError::Veto => Err(ObserveError::Veto(
                    failed_closed(&self.plugin, &e).message,
                ))
                .inspect_err(|_| {
                    tracing::warn!(plugin = %self.plugin.id(), error = %e, "a fail-closed observer failed: vetoing");
                }),
                Err(e) => Err(ObserveError::Failed(e.to_string())),
            }
        }
    }
}
