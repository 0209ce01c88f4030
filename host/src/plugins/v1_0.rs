//! API version 1.0 of the plugin interface: the bindings of `wit/plugin@1.0.0/plugin.wit`
//! (`integration-host:plugin@1.0.0`, frozen as released) and the conversions between the newest
//! version's types ([`super::v1_1`], which the host works in) and its.
//!
//! What differs from the newest: no interceptor or credential-verifier roles, and the account
//! kind of `tokens-revoked` is Magento's number (2 admin, 3 customer).

use super::state::State;
use super::v1_1 as newest;

/// The API version, as `(major, minor)`.
pub const VERSION: (u32, u32) = (1, 0);

/// The shared types and the host interface, from the world every plugin imports.
pub mod base {
    wasmtime::component::bindgen!({
        world: "plugin-base",
        path: "../wit/plugin@1.0.0",
    });
}

/// Generates the bindings of one role's world, sharing the types and host interface of [`base`].
macro_rules! role_world {
    ($module:ident, $world:literal) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                world: $world,
                path: "../wit/plugin@1.0.0",
                exports: { default: async },
                with: {
                    "integration-host:plugin/types@1.0.0": crate::plugins::v1_0::base::integration_host::plugin::types,
                    "integration-host:plugin/host@1.0.0": crate::plugins::v1_0::base::integration_host::plugin::host,
                },
            });
        }
    };
}

role_world!(observer, "observer-plugin");
role_world!(resolver, "permission-resolver-plugin");
role_world!(provider, "config-provider-plugin");

use base::integration_host::plugin::host::{Host, Level};
use base::integration_host::plugin::types as wit;
use observer::exports::integration_host::plugin::observer::Outcome;
use provider::exports::integration_host::plugin::config_provider::IntegrationDefinition;
use resolver::exports::integration_host::plugin::permission_resolver::{
    Request as ResolverRequest, Verdict,
};

fn integration_ref(i: &newest::wit::IntegrationRef) -> wit::IntegrationRef {
    wit::IntegrationRef {
        id: i.id,
        name: i.name.clone(),
    }
}

fn account(a: &newest::wit::Account) -> wit::Account {
    wit::Account {
        id: a.id,
        name: a.name.clone(),
    }
}

/// An event in 1.0's shape.
pub fn event(e: &newest::wit::Event) -> wit::Event {
    use newest::wit::Event as E;
    match e {
        E::CustomerLogin(l) => wit::Event::CustomerLogin(wit::CustomerLogin {
            customer_id: l.customer_id,
            email: l.email.clone(),
            firstname: l.firstname.clone(),
            lastname: l.lastname.clone(),
            at: l.at,
            client_address: l.client_address.clone(),
            user_agent: l.user_agent.clone(),
        }),
        E::AdminLogin(l) => wit::Event::AdminLogin(wit::AdminLogin {
            admin_id: l.admin_id,
            username: l.username.clone(),
            at: l.at,
            client_address: l.client_address.clone(),
            user_agent: l.user_agent.clone(),
        }),
        E::IntegrationSaved(s) => wit::Event::IntegrationSaved(wit::IntegrationSaved {
            integration: integration_ref(&s.integration),
            created: s.created,
        }),
        E::IntegrationActivated(i) => wit::Event::IntegrationActivated(integration_ref(i)),
        E::IntegrationReset(i) => wit::Event::IntegrationReset(integration_ref(i)),
        E::IntegrationDeleted(i) => wit::Event::IntegrationDeleted(integration_ref(i)),
        E::TokensRevoked(t) => wit::Event::TokensRevoked(wit::TokensRevoked {
            user_type: match t.user_type {
                newest::wit::UserType::Integration => 1,
                newest::wit::UserType::Admin => 2,
                newest::wit::UserType::Customer => 3,
            },
            user_id: t.user_id,
            reason: t.reason.clone(),
        }),
        E::Other(o) => wit::Event::Other(wit::OtherEvent {
            name: o.name.clone(),
            payload_json: o.payload_json.clone(),
        }),
    }
}

/// An observer's answer in the newest shape.
pub fn outcome(o: Outcome) -> newest::Outcome {
    match o {
        Outcome::Proceed => newest::Outcome::Proceed,
        Outcome::Veto(reason) => newest::Outcome::Veto(reason),
    }
}

/// A resolver's question in 1.0's shape.
pub fn resolver_request(r: &newest::ResolverRequest) -> ResolverRequest {
    use newest::wit::Principal as P;
    ResolverRequest {
        principal: match &r.principal {
            P::Guest => wit::Principal::Guest,
            P::Integration(i) => wit::Principal::Integration(integration_ref(i)),
            P::Admin(a) => wit::Principal::Admin(account(a)),
            P::Customer(c) => wit::Principal::Customer(account(c)),
        },
        resources: r.resources.clone(),
        acl_allows: r.acl_allows,
        method: r.method.clone(),
        path: r.path.clone(),
        client_address: r.client_address.clone(),
        now: r.now,
    }
}

/// A resolver's answer in the newest shape.
pub fn verdict(v: Verdict) -> newest::Verdict {
    match v {
        Verdict::Allow => newest::Verdict::Allow,
        Verdict::Deny(reason) => newest::Verdict::Deny(reason),
        Verdict::Abstain => newest::Verdict::Abstain,
    }
}

/// A provider's integration in the newest shape.
pub fn integration_definition(d: IntegrationDefinition) -> newest::IntegrationDefinition {
    newest::IntegrationDefinition {
        name: d.name,
        email: d.email,
        endpoint_url: d.endpoint_url,
        identity_link_url: d.identity_link_url,
        resources: d.resources,
        all_resources: d.all_resources,
    }
}

/// The guest's own error in the newest shape.
pub fn plugin_error(e: wit::PluginError) -> newest::wit::PluginError {
    match e {
        wit::PluginError::InvalidInput(m) => newest::wit::PluginError::InvalidInput(m),
        wit::PluginError::BadConfig(m) => newest::wit::PluginError::BadConfig(m),
        wit::PluginError::Failed(m) => newest::wit::PluginError::Failed(m),
    }
}

/// The host functions of 1.0 are the newest's.
impl Host for State {
    fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        let level = match level {
            Level::Trace => newest::Level::Trace,
            Level::Debug => newest::Level::Debug,
            Level::Info => newest::Level::Info,
            Level::Warn => newest::Level::Warn,
            Level::Error => newest::Level::Error,
        };
        newest::Host::log(self, level, message, fields)
    }

    fn config(&mut self) -> String {
        newest::Host::config(self)
    }
}

impl wit::Host for State {}
