//! API version 1.0 of the plugin interface: the bindings of `wit/plugin.wit`
//! (`integration-host:plugin@1.0.0`) and the conversions between the server's types and its.
//!
//! A frozen API version gets its own module like this one; a later version adds a sibling and
//! the host keeps both.

use super::error::GuestError;
use crate::events::Event;
use crate::services::authorization::Principal;

/// The shared types and the host interface, from the world every plugin imports.
pub mod base {
    wasmtime::component::bindgen!({
        world: "plugin-base",
        path: "../wit",
    });
}

/// The observer world.
pub mod observer {
    wasmtime::component::bindgen!({
        world: "observer-plugin",
        path: "../wit",
        exports: { default: async },
        with: {
            "integration-host:plugin/types@1.0.0": crate::plugins::v1::base::integration_host::plugin::types,
            "integration-host:plugin/host@1.0.0": crate::plugins::v1::base::integration_host::plugin::host,
        },
    });
}

/// The permission-resolver world.
pub mod resolver {
    wasmtime::component::bindgen!({
        world: "permission-resolver-plugin",
        path: "../wit",
        exports: { default: async },
        with: {
            "integration-host:plugin/types@1.0.0": crate::plugins::v1::base::integration_host::plugin::types,
            "integration-host:plugin/host@1.0.0": crate::plugins::v1::base::integration_host::plugin::host,
        },
    });
}

/// The config-provider world.
pub mod provider {
    wasmtime::component::bindgen!({
        world: "config-provider-plugin",
        path: "../wit",
        exports: { default: async },
        with: {
            "integration-host:plugin/types@1.0.0": crate::plugins::v1::base::integration_host::plugin::types,
            "integration-host:plugin/host@1.0.0": crate::plugins::v1::base::integration_host::plugin::host,
        },
    });
}

pub use base::integration_host::plugin::host::{Host, Level};
pub use base::integration_host::plugin::types as wit;
pub use observer::exports::integration_host::plugin::observer::Outcome;
pub use provider::exports::integration_host::plugin::config_provider::IntegrationDefinition;
pub use resolver::exports::integration_host::plugin::permission_resolver::{
    Request as ResolverRequest, Verdict,
};

fn integration_ref(i: &crate::events::IntegrationRef) -> wit::IntegrationRef {
    wit::IntegrationRef {
        id: i.id,
        name: i.name.clone(),
    }
}

/// The server's event in this version's shape; events newer than it go as `other`.
pub fn event(e: &Event) -> wit::Event {
    match e {
        Event::CustomerLogin(l) => wit::Event::CustomerLogin(wit::CustomerLogin {
            customer_id: l.customer_id,
            email: l.email.clone(),
            firstname: l.firstname.clone(),
            lastname: l.lastname.clone(),
            at: l.at,
            client_address: l.client_address.clone(),
            user_agent: l.user_agent.clone(),
        }),
        Event::AdminLogin(l) => wit::Event::AdminLogin(wit::AdminLogin {
            admin_id: l.admin_id,
            username: l.username.clone(),
            at: l.at,
            client_address: l.client_address.clone(),
            user_agent: l.user_agent.clone(),
        }),
        Event::IntegrationSaved {
            integration,
            created,
        } => wit::Event::IntegrationSaved(wit::IntegrationSaved {
            integration: integration_ref(integration),
            created: *created,
        }),
        Event::IntegrationActivated(i) => wit::Event::IntegrationActivated(integration_ref(i)),
        Event::IntegrationReset(i) => wit::Event::IntegrationReset(integration_ref(i)),
        Event::IntegrationDeleted(i) => wit::Event::IntegrationDeleted(integration_ref(i)),
        Event::TokensRevoked(t) => wit::Event::TokensRevoked(wit::TokensRevoked {
            user_type: t.account.user_type().code(),
            user_id: t.user_id,
            reason: t.reason.as_str().to_owned(),
        }),
    }
}

/// The caller in this version's shape.
pub fn principal(p: &Principal) -> wit::Principal {
    match p {
        Principal::Guest => wit::Principal::Guest,
        Principal::Integration { id, name, .. } => {
            wit::Principal::Integration(wit::IntegrationRef {
                id: *id,
                name: name.clone(),
            })
        }
        Principal::Admin { id, username } => wit::Principal::Admin(wit::Account {
            id: *id,
            name: username.clone(),
        }),
        Principal::Customer { id, email } => wit::Principal::Customer(wit::Account {
            id: *id,
            name: email.clone(),
        }),
    }
}

/// The guest's own error answer, as the host types it.
pub fn guest_error(e: wit::PluginError) -> GuestError {
    match e {
        wit::PluginError::InvalidInput(m) => GuestError::InvalidInput(m),
        wit::PluginError::BadConfig(m) => GuestError::BadConfig(m),
        wit::PluginError::Failed(m) => GuestError::Failed(m),
    }
}
