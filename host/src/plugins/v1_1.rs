//! API version 1.1 of the plugin interface, the newest: the bindings of
//! `wit/plugin@1.1.0/plugin.wit` (`integration-host:plugin@1.1.0`) and the conversions between
//! the server's types and its.
//!
//! The host works in this version's types: a call into a plugin built against an older version
//! goes through that version's module ([`super::v1_0`]), which converts these types to its own
//! and its answers back, as Zed's extension host does with its `since_v*` modules. A new minor
//! version becomes the newest module; this one then converts to it.

use super::error::GuestError;
use crate::domain::{AccountKind, UserType as ServerUserType};
use crate::events::{self, Event};
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

/// An event's name, as observers subscribe to it (`other` events by their own name).
pub fn event_name(e: &wit::Event) -> &str {
    match e {
        wit::Event::CustomerLogin(_) => "customer_login",
        wit::Event::AdminLogin(_) => "admin_login",
        wit::Event::IntegrationSaved(_) => "integration_saved",
        wit::Event::IntegrationActivated(_) => "integration_activated",
        wit::Event::IntegrationReset(_) => "integration_reset",
        wit::Event::IntegrationDeleted(_) => "integration_deleted",
        wit::Event::TokensRevoked(_) => "tokens_revoked",
        wit::Event::Other(o) => &o.name,
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
        Principal::Admin { id, username, .. } => wit::Principal::Admin(wit::Account {
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

fn account_type(kind: AccountKind) -> wit::UserType {
    user_type(kind.user_type())
}

fn input(i: &events::IntegrationInput) -> IntegrationInput {
    IntegrationInput {
        name: i.name.clone(),
        email: i.email.clone(),
        endpoint_url: i.endpoint.clone(),
        identity_link_url: i.identity_link_url.clone(),
        resources: i.resources.clone(),
        all_resources: i.all_resources,
    }
}

fn input_back(i: IntegrationInput) -> events::IntegrationInput {
    events::IntegrationInput {
        name: i.name,
        email: i.email,
        endpoint: i.endpoint_url,
        identity_link_url: i.identity_link_url,
        resources: i.resources,
        all_resources: i.all_resources,
    }
}

fn iref(i: &events::IntegrationRef) -> wit::IntegrationRef {
    integration_ref(i)
}

fn iref_back(i: wit::IntegrationRef) -> events::IntegrationRef {
    events::IntegrationRef {
        id: i.id,
        name: i.name,
    }
}

/// An operation in this version's shape.
pub fn operation(op: &events::Operation) -> Operation {
    use events::Operation as O;
    match op {
        O::IntegrationCreate(i) => Operation::IntegrationCreate(input(i)),
        O::IntegrationUpdate {
            integration,
            input: i,
        } => Operation::IntegrationUpdate(IntegrationUpdate {
            integration: iref(integration),
            input: input(i),
        }),
        O::IntegrationDelete(i) => Operation::IntegrationDelete(iref(i)),
        O::IntegrationActivate(i) => Operation::IntegrationActivate(iref(i)),
        O::SignIn(s) => {
            let sign_in = SignIn {
                user_type: account_type(s.kind),
                username: s.username.clone(),
                client_address: s.client_address.clone(),
            };
            match s.kind {
                AccountKind::Admin => Operation::AdminSignIn(sign_in),
                AccountKind::Customer => Operation::CustomerSignIn(sign_in),
            }
        }
    }
}

/// A rewritten operation in the server's shape; `None` for a sign-in whose account kind does
/// not match its case.
pub fn operation_back(op: Operation) -> Option<events::Operation> {
    use events::Operation as O;
    let sign_in = |s: SignIn, kind: AccountKind| {
        (account_type(kind) == s.user_type).then_some(O::SignIn(events::SignIn {
            kind,
            username: s.username,
            client_address: s.client_address,
        }))
    };
    match op {
        Operation::IntegrationCreate(i) => Some(O::IntegrationCreate(input_back(i))),
        Operation::IntegrationUpdate(u) => Some(O::IntegrationUpdate {
            integration: iref_back(u.integration),
            input: input_back(u.input),
        }),
        Operation::IntegrationDelete(i) => Some(O::IntegrationDelete(iref_back(i))),
        Operation::IntegrationActivate(i) => Some(O::IntegrationActivate(iref_back(i))),
        Operation::AdminSignIn(s) => sign_in(s, AccountKind::Admin),
        Operation::CustomerSignIn(s) => sign_in(s, AccountKind::Customer),
    }
}

/// A result in the server's shape.
pub fn produced_back(p: Produced) -> events::Produced {
    let token = |kind, a: wit::Account| events::Produced::Token {
        kind,
        id: a.id,
        name: a.name,
    };
    match p {
        Produced::AdminToken(a) => token(AccountKind::Admin, a),
        Produced::CustomerToken(a) => token(AccountKind::Customer, a),
        Produced::RequestAllowed(r) => events::Produced::RequestAllowed(events::AllowedRequest {
            caller: match r.principal {
                wit::Principal::Guest => events::Caller::Guest,
                wit::Principal::Integration(i) => events::Caller::Integration {
                    id: i.id,
                    name: i.name,
                },
                wit::Principal::Admin(a) => events::Caller::Admin {
                    id: a.id,
                    name: a.name,
                },
                wit::Principal::Customer(a) => events::Caller::Customer {
                    id: a.id,
                    name: a.name,
                },
            },
            method: r.method,
            path: r.path,
            resources: r.resources,
            client_address: r.client_address,
        }),
    }
}

/// A result in this version's shape.
pub fn produced(p: &events::Produced) -> Produced {
    match p {
        events::Produced::Token { kind, id, name } => {
            let account = wit::Account {
                id: *id,
                name: name.clone(),
            };
            match kind {
                AccountKind::Admin => Produced::AdminToken(account),
                AccountKind::Customer => Produced::CustomerToken(account),
            }
        }
        events::Produced::RequestAllowed(r) => Produced::RequestAllowed(AllowedRequest {
            principal: match &r.caller {
                events::Caller::Guest => wit::Principal::Guest,
                events::Caller::Integration { id, name } => {
                    wit::Principal::Integration(wit::IntegrationRef {
                        id: *id,
                        name: name.clone(),
                    })
                }
                events::Caller::Admin { id, name } => wit::Principal::Admin(wit::Account {
                    id: *id,
                    name: name.clone(),
                }),
                events::Caller::Customer { id, name } => wit::Principal::Customer(wit::Account {
                    id: *id,
                    name: name.clone(),
                }),
            },
            method: r.method.clone(),
            path: r.path.clone(),
            resources: r.resources.clone(),
            client_address: r.client_address.clone(),
        }),
    }
}

/// Sign-in credentials in this version's shape.
pub fn credentials(c: &events::Credentials) -> Credentials {
    Credentials {
        user_type: account_type(c.kind),
        username: c.username.clone(),
        password: c.password.clone(),
        client_address: c.client_address.clone(),
    }
}

/// A verifier's decision in the server's shape.
pub fn verification(v: Verification) -> events::Verification {
    match v {
        Verification::Accept(name) => events::Verification::Accept(name),
        Verification::Refuse(reason) => events::Verification::Refuse(reason),
        Verification::Abstain => events::Verification::Abstain,
    }
}
