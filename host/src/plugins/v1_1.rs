//! API version 1.1 of the plugin interface, the newest: the bindings of
//! `wit/plugin@1.1.0/plugin.wit` (`integration-host:plugin@1.1.0`) and the conversions between
//! the server's types and its.
//!
//! The host works in this version's types: a call into a plugin built against an older version
//! goes through that version's module ([`super::v1_0`]), which converts these types to its own
//! and its answers back, as Zed's extension host does with its `since_v*` modules. A new minor
//! version becomes the newest module; this one then converts to it.

use super::error::GuestError;
use crate::domain::UserType as ServerUserType;
use crate::events::Event;
use crate::services::authorization::Principal;

/// The API version, as `(major, minor)`.
pub const VERSION: (u32, u32) = (1, 1);

/// The shared types and the host interface, from the world every plugin imports.
pub mod base {
    wasmtime::component::bindgen!({
        world: "plugin-base",
        path: "../wit/plugin@1.1.0",
    });
}

/// Generates the bindings of one role's world, sharing the types and host interface of [`base`].
macro_rules! role_world {
    ($module:ident, $world:literal) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                world: $world,
                path: "../wit/plugin@1.1.0",
                exports: { default: async },
                with: {
                    "integration-host:plugin/types@1.1.0": crate::plugins::v1_1::base::integration_host::plugin::types,
                    "integration-host:plugin/host@1.1.0": crate::plugins::v1_1::base::integration_host::plugin::host,
                },
            });
        }
    };
}

role_world!(observer, "observer-plugin");
role_world!(resolver, "permission-resolver-plugin");
role_world!(provider, "config-provider-plugin");
role_world!(before, "before-interceptor-plugin");
role_world!(after, "after-interceptor-plugin");
role_world!(verifier, "credential-verifier-plugin");

pub use after::exports::integration_host::plugin::after_interceptor::{
    Additions, AllowedRequest, Produced,
};
pub use base::integration_host::plugin::host::{Host, Level};
pub use base::integration_host::plugin::types as wit;
pub use before::exports::integration_host::plugin::before_interceptor::{
    Answer, IntegrationInput, IntegrationUpdate, Operation, SignIn,
};
pub use observer::exports::integration_host::plugin::observer::Outcome;
pub use provider::exports::integration_host::plugin::config_provider::IntegrationDefinition;
pub use resolver::exports::integration_host::plugin::permission_resolver::{
    Request as ResolverRequest, Verdict,
};
pub use verifier::exports::integration_host::plugin::credential_verifier::{
    Credentials, Verdict as Verification,
};

fn integration_ref(i: &crate::events::IntegrationRef) -> wit::IntegrationRef {
    wit::IntegrationRef {
        id: i.id,
        name: i.name.clone(),
    }
}

/// A kind of account in this version's shape.
pub fn user_type(t: ServerUserType) -> wit::UserType {
    match t {
        ServerUserType::Integration => wit::UserType::Integration,
        ServerUserType::Admin => wit::UserType::Admin,
        ServerUserType::Customer => wit::UserType::Customer,
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
            user_type: user_type(t.account.user_type()),
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
