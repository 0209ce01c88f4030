//! The SDK for integration-host plugins written in Rust.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`. It enables one feature of this crate
//! per role it plays (`observer`, `permission-resolver`, `config-provider`), implements the
//! matching trait on a unit struct, and registers it once:
//!
//! ```ignore
//! use integration_host_sdk::{register, Observer, CustomerLogin, Outcome, PluginError, log};
//!
//! struct Greeter;
//!
//! impl Observer for Greeter {
//!     fn on_customer_login(login: CustomerLogin) -> Result<Outcome, PluginError> {
//!         log::info(&format!("welcome back, {}", login.firstname), &[]);
//!         Ok(Outcome::Proceed)
//!     }
//! }
//!
//! register!(observer: Greeter);
//! ```
//!
//! The raw bindings of the WIT package (`wit/plugin.wit`) stay inside this crate. Plugins are
//! stateless between calls: the host keeps a few warm instances of each plugin and may give a
//! call to any of them, or to a fresh one.

#[doc(hidden)]
pub mod base {
    wit_bindgen::generate!({
        world: "plugin-base",
        path: "../../../../wit/plugin@1.0.0",
        generate_all,
    });
}

#[cfg(feature = "observer")]
#[doc(hidden)]
pub mod observer_bindings {
    wit_bindgen::generate!({
        world: "observer-plugin",
        path: "../../../../wit/plugin@1.0.0",
        with: {
            "integration-host:plugin/types@1.0.0": crate::base::integration_host::plugin::types,
            "integration-host:plugin/host@1.0.0": crate::base::integration_host::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_observer",
        default_bindings_module: "integration_host_sdk::observer_bindings",
    });
}

#[cfg(feature = "permission-resolver")]
#[doc(hidden)]
pub mod resolver_bindings {
    wit_bindgen::generate!({
        world: "permission-resolver-plugin",
        path: "../../../../wit/plugin@1.0.0",
        with: {
            "integration-host:plugin/types@1.0.0": crate::base::integration_host::plugin::types,
            "integration-host:plugin/host@1.0.0": crate::base::integration_host::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_resolver",
        default_bindings_module: "integration_host_sdk::resolver_bindings",
    });
}

#[cfg(feature = "config-provider")]
#[doc(hidden)]
pub mod provider_bindings {
    wit_bindgen::generate!({
        world: "config-provider-plugin",
        path: "../../../../wit/plugin@1.0.0",
        with: {
            "integration-host:plugin/types@1.0.0": crate::base::integration_host::plugin::types,
            "integration-host:plugin/host@1.0.0": crate::base::integration_host::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_provider",
        default_bindings_module: "integration_host_sdk::provider_bindings",
    });
}

pub use base::integration_host::plugin::types::{
    Account, AdminLogin, CustomerLogin, Event, IntegrationRef, IntegrationSaved, OtherEvent,
    PluginError, Principal, Timestamp, TokensRevoked,
};

#[cfg(feature = "observer")]
pub use observer_bindings::exports::integration_host::plugin::observer::Outcome;

#[cfg(feature = "permission-resolver")]
pub use resolver_bindings::exports::integration_host::plugin::permission_resolver::{
    Request, Verdict,
};

#[cfg(feature = "config-provider")]
pub use provider_bindings::exports::integration_host::plugin::config_provider::IntegrationDefinition;

/// Structured logging through the host: every record carries the plugin's id.
pub mod log {
    use crate::base::integration_host::plugin::host::{self, Level};

    fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        host::log(level, message, &fields);
    }

    /// Logs at `debug`.
    pub fn debug(message: &str, fields: &[(&str, &str)]) {
        write(Level::Debug, message, fields)
    }
    /// Logs at `info`.
    pub fn info(message: &str, fields: &[(&str, &str)]) {
        write(Level::Info, message, fields)
    }
    /// Logs at `warn`.
    pub fn warn(message: &str, fields: &[(&str, &str)]) {
        write(Level::Warn, message, fields)
    }
    /// Logs at `error`.
    pub fn error(message: &str, fields: &[(&str, &str)]) {
        write(Level::Error, message, fields)
    }
}

/// The plugin's configuration (its manifest's `[config]` table), deserialized into `T`.
///
/// A configuration that does not fit `T` is a [`PluginError::BadConfig`] naming the field.
pub fn config<T: serde::de::DeserializeOwned>() -> Result<T, PluginError> {
    let raw = base::integration_host::plugin::host::config();
    serde_json::from_str(&raw).map_err(|e| PluginError::BadConfig(e.to_string()))
}

/// An observer of events. Override `on_event` to see every event the manifest subscribes to,
/// or the method of each event you care about; the others proceed.
#[cfg(feature = "observer")]
pub trait Observer {
    /// Every event; by default hands it to the method of its kind.
    fn on_event(event: Event) -> Result<Outcome, PluginError> {
        match event {
            Event::CustomerLogin(e) => Self::on_customer_login(e),
            Event::AdminLogin(e) => Self::on_admin_login(e),
            Event::IntegrationSaved(e) => Self::on_integration_saved(e),
            Event::IntegrationActivated(e) => Self::on_integration_activated(e),
            Event::IntegrationReset(e) => Self::on_integration_reset(e),
            Event::IntegrationDeleted(e) => Self::on_integration_deleted(e),
            Event::TokensRevoked(e) => Self::on_tokens_revoked(e),
            Event::Other(e) => Self::on_other(e),
        }
    }
    /// `customer_login`.
    fn on_customer_login(_event: CustomerLogin) -> Result<Outcome, PluginError> {
        Ok(Outcome::Proceed)
    }
    /// `admin_login`.
    fn on_admin_login(_event: AdminLogin) -> Result<Outcome, PluginError> {
        Ok(Outcome::Proceed)
    }
    /// `integration_saved`.
    fn on_integration_saved(_event: IntegrationSaved) -> Result<Outcome, PluginError> {
        Ok(Outcome::Proceed)
    }
    /// `integration_activated`.
    fn on_integration_activated(_event: IntegrationRef) -> Result<Outcome, PluginError> {
        Ok(Outcome::Proceed)
    }
    /// `integration_reset`.
    fn on_integration_reset(_event: IntegrationRef) -> Result<Outcome, PluginError> {
        Ok(Outcome::Proceed)
    }
    /// `integration_deleted`.
    fn on_integration_deleted(_event: IntegrationRef) -> Result<Outcome, PluginError> {
        Ok(Outcome::Proceed)
    }
    /// `tokens_revoked`.
    fn on_tokens_revoked(_event: TokensRevoked) -> Result<Outcome, PluginError> {
        Ok(Outcome::Proceed)
    }
    /// An event newer than this SDK, by name with a JSON payload.
    fn on_other(_event: OtherEvent) -> Result<Outcome, PluginError> {
        Ok(Outcome::Proceed)
    }
}

/// A permission resolver: answers allow, deny or abstain for one request. Any deny of any
/// resolver wins, then any allow, then the ACL's own answer.
#[cfg(feature = "permission-resolver")]
pub trait PermissionResolver {
    /// Decides one request; by default abstains.
    fn resolve(_request: Request) -> Result<Verdict, PluginError> {
        Ok(Verdict::Abstain)
    }
}

/// A provider of declarative integrations, synced like the TOML definition files.
#[cfg(feature = "config-provider")]
pub trait ConfigProvider {
    /// The integrations to declare; by default none.
    fn integrations() -> Result<Vec<IntegrationDefinition>, PluginError> {
        Ok(Vec::new())
    }
}

/// Registers the plugin's implementations, one per role:
/// `register!(observer: A)`, `register!(permission_resolver: B)`,
/// `register!(config_provider: C)`, or several separated by commas.
#[macro_export]
macro_rules! register {
    ($($role:ident : $ty:ty),+ $(,)?) => {
        $( $crate::register!(@one $role $ty); )+
    };
    (@one observer $ty:ty) => {
        const _: () = {
            struct __Observer;
            impl $crate::observer_bindings::exports::integration_host::plugin::observer::Guest
                for __Observer
            {
                fn on_event(
                    event: $crate::Event,
                ) -> ::core::result::Result<$crate::Outcome, $crate::PluginError> {
                    <$ty as $crate::Observer>::on_event(event)
                }
            }
            $crate::observer_bindings::export_observer!(__Observer with_types_in $crate::observer_bindings);
        };
    };
    (@one permission_resolver $ty:ty) => {
        const _: () = {
            struct __Resolver;
            impl $crate::resolver_bindings::exports::integration_host::plugin::permission_resolver::Guest
                for __Resolver
            {
                fn resolve(
                    request: $crate::Request,
                ) -> ::core::result::Result<$crate::Verdict, $crate::PluginError> {
                    <$ty as $crate::PermissionResolver>::resolve(request)
                }
            }
            $crate::resolver_bindings::export_resolver!(__Resolver with_types_in $crate::resolver_bindings);
        };
    };
    (@one config_provider $ty:ty) => {
        const _: () = {
            struct __Provider;
            impl $crate::provider_bindings::exports::integration_host::plugin::config_provider::Guest
                for __Provider
            {
                fn integrations() -> ::core::result::Result<
                    ::std::vec::Vec<$crate::IntegrationDefinition>,
                    $crate::PluginError,
                > {
                    <$ty as $crate::ConfigProvider>::integrations()
                }
            }
            $crate::provider_bindings::export_provider!(__Provider with_types_in $crate::provider_bindings);
        };
    };
}
