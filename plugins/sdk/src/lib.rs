//! The SDK for integration-host plugins written in Rust, for plugin API 1.1.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`. It enables one feature of this crate
//! per role it plays (`observer`, `permission-resolver`, `config-provider`,
//! `before-interceptor`, `after-interceptor`, `credential-verifier`), writes a type that holds
//! its state, built once from its configuration ([`Plugin::new`]), implements the trait of each
//! role on it (each has one required method: an empty impl does not compile), and registers it:
//!
//! ```ignore
//! use integration_host_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Config { greeting: String }
//!
//! struct Greeter { greeting: String }
//!
//! impl Plugin for Greeter {
//!     type Config = Config;
//!     fn new(config: Config) -> Result<Self, PluginError> {
//!         Ok(Self { greeting: config.greeting })
//!     }
//! }
//!
//! impl Observer for Greeter {
//!     fn on_event(&self, event: Event) -> Result<Outcome, PluginError> {
//!         if let Event::CustomerLogin(login) = event {
//!             info!(self.greeting.clone(), email = login.email);
//!         }
//!         Ok(Outcome::Proceed)
//!     }
//! }
//!
//! register!(Greeter: observer);
//! ```
//!
//! The raw bindings of the WIT package (`wit/plugin@1.1.0/plugin.wit`) stay inside this crate.
//! The host keeps a few warm instances of each plugin and may give a call to any of them, or to
//! a fresh one: the state built by `new` is per instance, built at its first call, and lasts
//! until the instance is replaced; keep in it what derives from the configuration, not counts.

#[doc(hidden)]
pub mod base {
    wit_bindgen::generate!({
        world: "plugin-base",
        path: "../../wit/plugin@1.1.0",
        generate_all,
    });
}

#[doc(hidden)]
pub mod capabilities_bindings {
    wit_bindgen::generate!({
        world: "capabilities",
        path: "../../wit/capabilities@1.1.0",
        generate_all,
    });
}

/// Durable key-value state: the `key_value` capability (`wit/capabilities@1.1.0`). The manifest
/// asks for it (`[capabilities] key_value = true`) and the operator grants a quota
/// (`[plugins.grants.<id>] key_value_quota_kib = 1024`); otherwise every call answers
/// [`KvError::NotGranted`]. Keys are 1 to 256 bytes, values up to 64 KiB; the state is kept in
/// the server's database, across calls, reloads and restarts, shared by every server process
/// and seen by no other plugin.
pub mod kv {
    pub use crate::capabilities_bindings::integration_host::capabilities::key_value::KvError;
    use crate::hostcalls::kv as raw;

    /// The value of `key`, if it is set.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
        raw::get(key)
    }

    /// The value of `key` as text, if it is set (a value that is not UTF-8 is an error).
    pub fn get_text(key: &str) -> Result<Option<String>, crate::PluginError> {
        match raw::get(key)? {
            Some(bytes) => Ok(Some(String::from_utf8(bytes).map_err(|e| {
                crate::PluginError::Failed(format!("the value of {key} is not UTF-8: {e}"))
            })?)),
            None => Ok(None),
        }
    }

    /// Sets `key` to `value`.
    pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), KvError> {
        raw::set(key, value.as_ref())
    }

    /// Removes `key`; whether it was set.
    pub fn delete(key: &str) -> Result<bool, KvError> {
        raw::delete(key)
    }

    /// The keys starting with `prefix` (`""` for all), in byte order, at most 1,000.
    pub fn list_keys(prefix: &str) -> Result<Vec<String>, KvError> {
        raw::list_keys(prefix)
    }

    /// What went wrong, in words.
    pub fn describe(e: &KvError) -> String {
        match e {
            KvError::NotGranted => "key-value state is not granted".to_owned(),
            KvError::InvalidKey(m) => format!("invalid key: {m}"),
            KvError::TooLarge(n) => format!("the value is larger than {n} bytes"),
            KvError::QuotaExceeded(q) => format!("the key-value quota of {q} bytes is used up"),
            KvError::Unavailable(m) => format!("key-value state is unavailable: {m}"),
        }
    }

    impl From<KvError> for crate::PluginError {
        fn from(e: KvError) -> Self {
            crate::PluginError::Failed(describe(&e))
        }
    }
}

#[cfg(feature = "http")]
pub mod http;

pub mod testing;

/// The host's functions: the host's own in a component, the [`testing`] stand-ins in a native
/// build (a plugin's unit tests).
mod hostcalls {
    #[cfg(target_family = "wasm")]
    pub use wasm::*;

    #[cfg(not(target_family = "wasm"))]
    pub use crate::testing::host::*;

    #[cfg(target_family = "wasm")]
    mod wasm {
        use crate::base::integration_host::plugin::host;
        use crate::capabilities_bindings::integration_host::capabilities as caps;

        pub fn log(level: host::Level, message: &str, fields: &[(String, String)]) {
            host::log(level, message, fields);
        }

        pub fn config() -> String {
            host::config()
        }

        pub fn variable(name: &str) -> Option<String> {
            caps::variables::get(name)
        }

        pub fn delivery() -> Option<crate::Delivery> {
            caps::delivery::current().map(|d| crate::Delivery {
                event_id: d.event_id,
                attempt: d.attempt,
                recorded_at: d.recorded_at,
            })
        }

        pub use caps::key_value as kv;
    }
}

/// One delivery of an event to an async observer, from the server's durable outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The event's stable id: the same on every attempt and in every server process. Every
    /// event is delivered at least once, so drop one whose id you have handled already.
    pub event_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Unix seconds when the event was written, with the change it reports.
    pub recorded_at: i64,
}

/// The delivery the current call handles: in an async observer's `on_event`; `None` in a
/// sync observer's call and in any other role's. Needs no grant.
pub fn delivery() -> Option<Delivery> {
    hostcalls::delivery()
}

/// The value of variable `name` that the operator set for this plugin
/// (`[plugins.grants.<id>.variables]`), when the manifest asks for it
/// (`[capabilities] variables = ["name"]`); `None` otherwise.
pub fn variable(name: &str) -> Option<String> {
    hostcalls::variable(name)
}

#[cfg(feature = "observer")]
#[doc(hidden)]
pub mod observer_bindings {
    wit_bindgen::generate!({
        world: "observer-plugin",
        path: "../../wit/plugin@1.1.0",
        with: {
            "integration-host:plugin/types@1.1.0": crate::base::integration_host::plugin::types,
            "integration-host:plugin/host@1.1.0": crate::base::integration_host::plugin::host,
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
        path: "../../wit/plugin@1.1.0",
        with: {
            "integration-host:plugin/types@1.1.0": crate::base::integration_host::plugin::types,
            "integration-host:plugin/host@1.1.0": crate::base::integration_host::plugin::host,
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
        path: "../../wit/plugin@1.1.0",
        with: {
            "integration-host:plugin/types@1.1.0": crate::base::integration_host::plugin::types,
            "integration-host:plugin/host@1.1.0": crate::base::integration_host::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_provider",
        default_bindings_module: "integration_host_sdk::provider_bindings",
    });
}

#[cfg(feature = "before-interceptor")]
#[doc(hidden)]
pub mod before_bindings {
    wit_bindgen::generate!({
        world: "before-interceptor-plugin",
        path: "../../wit/plugin@1.1.0",
        with: {
            "integration-host:plugin/types@1.1.0": crate::base::integration_host::plugin::types,
            "integration-host:plugin/host@1.1.0": crate::base::integration_host::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_before",
        default_bindings_module: "integration_host_sdk::before_bindings",
    });
}

#[cfg(feature = "after-interceptor")]
#[doc(hidden)]
pub mod after_bindings {
    wit_bindgen::generate!({
        world: "after-interceptor-plugin",
        path: "../../wit/plugin@1.1.0",
        with: {
            "integration-host:plugin/types@1.1.0": crate::base::integration_host::plugin::types,
            "integration-host:plugin/host@1.1.0": crate::base::integration_host::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_after",
        default_bindings_module: "integration_host_sdk::after_bindings",
    });
}

#[cfg(feature = "credential-verifier")]
#[doc(hidden)]
pub mod verifier_bindings {
    wit_bindgen::generate!({
        world: "credential-verifier-plugin",
        path: "../../wit/plugin@1.1.0",
        with: {
            "integration-host:plugin/types@1.1.0": crate::base::integration_host::plugin::types,
            "integration-host:plugin/host@1.1.0": crate::base::integration_host::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "export_verifier",
        default_bindings_module: "integration_host_sdk::verifier_bindings",
    });
}

pub use base::integration_host::plugin::types::{
    Account, AdminLogin, CustomerLogin, Event, IntegrationRef, IntegrationSaved, OtherEvent,
    PluginError, Principal, Timestamp, TokensRevoked, UserType,
};

#[cfg(feature = "observer")]
pub use observer_bindings::exports::integration_host::plugin::observer::Outcome;

#[cfg(feature = "permission-resolver")]
pub use resolver_bindings::exports::integration_host::plugin::permission_resolver::{
    Request, Verdict,
};

#[cfg(feature = "config-provider")]
pub use provider_bindings::exports::integration_host::plugin::config_provider::IntegrationDefinition;

#[cfg(feature = "before-interceptor")]
pub use before_bindings::exports::integration_host::plugin::before_interceptor::{
    Answer, IntegrationInput, IntegrationUpdate, Operation, SignIn,
};

#[cfg(feature = "after-interceptor")]
pub use after_bindings::exports::integration_host::plugin::after_interceptor::{
    Additions, AllowedRequest, Produced,
};

#[cfg(feature = "credential-verifier")]
pub use verifier_bindings::exports::integration_host::plugin::credential_verifier::{
    Credentials, Verdict as Verification,
};

/// What a plugin usually needs: `use integration_host_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Account, AdminLogin, CustomerLogin, Event, IntegrationRef, Plugin, PluginError, Principal,
        UserType, debug, delivery, error, info, kv, register, variable, warn,
    };

    #[cfg(feature = "observer")]
    pub use crate::{Observer, Outcome};

    #[cfg(feature = "permission-resolver")]
    pub use crate::{PermissionResolver, Request, Verdict};

    #[cfg(feature = "config-provider")]
    pub use crate::{ConfigProvider, IntegrationDefinition};

    #[cfg(feature = "before-interceptor")]
    pub use crate::{Answer, BeforeInterceptor, IntegrationInput, Operation, SignIn};

    #[cfg(feature = "after-interceptor")]
    pub use crate::{Additions, AfterInterceptor, AllowedRequest, Produced};

    #[cfg(feature = "credential-verifier")]
    pub use crate::{CredentialVerifier, Credentials, Verification};
}

/// Structured logging through the host: every record carries the plugin's id, is written to the
/// server's log and kept (the last 50) in `GET /rest/V1/plugins`. The macros [`info!`],
/// [`warn!`], [`error!`] and [`debug!`] are the short way.
pub mod log {
    pub use crate::base::integration_host::plugin::host::Level;

    /// Writes one record: a message and its fields.
    pub fn write(level: Level, message: &str, fields: &[(&str, String)]) {
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        crate::hostcalls::log(level, message, &fields);
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:ident, $message:expr $(, $key:ident = $value:expr)* $(,)?) => {
        $crate::log::write(
            $crate::log::Level::$level,
            &$message,
            &[$((stringify!($key), ::std::string::ToString::to_string(&$value))),*],
        )
    };
}

/// Logs at `info`: `info!("customer signed in", email = login.email, id = login.customer_id)`.
/// The message is any expression that derefs to `str` (`format!(..)` works); each field any
/// value that implements `Display`.
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::__log!(Info, $($t)*) };
}

/// Logs at `warn`; see [`info!`].
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::__log!(Warn, $($t)*) };
}

/// Logs at `error`; see [`info!`].
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::__log!(Error, $($t)*) };
}

/// Logs at `debug`; see [`info!`].
#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { $crate::__log!(Debug, $($t)*) };
}

/// `?` on common errors inside a plugin: they become [`PluginError::Failed`] (configuration
/// errors become [`PluginError::BadConfig`] in [`Plugin::new`]'s caller).
impl From<String> for PluginError {
    fn from(message: String) -> Self {
        PluginError::Failed(message)
    }
}

impl From<&str> for PluginError {
    fn from(message: &str) -> Self {
        PluginError::Failed(message.to_owned())
    }
}

impl From<serde_json::Error> for PluginError {
    fn from(e: serde_json::Error) -> Self {
        PluginError::InvalidInput(e.to_string())
    }
}

impl From<std::num::ParseIntError> for PluginError {
    fn from(e: std::num::ParseIntError) -> Self {
        PluginError::InvalidInput(e.to_string())
    }
}

impl From<std::num::ParseFloatError> for PluginError {
    fn from(e: std::num::ParseFloatError) -> Self {
        PluginError::InvalidInput(e.to_string())
    }
}

impl From<std::str::Utf8Error> for PluginError {
    fn from(e: std::str::Utf8Error) -> Self {
        PluginError::InvalidInput(e.to_string())
    }
}

impl From<std::string::FromUtf8Error> for PluginError {
    fn from(e: std::string::FromUtf8Error) -> Self {
        PluginError::InvalidInput(e.to_string())
    }
}

impl From<std::fmt::Error> for PluginError {
    fn from(e: std::fmt::Error) -> Self {
        PluginError::Failed(e.to_string())
    }
}

/// A plugin: its state, built once per instance from its configuration.
pub trait Plugin: Sized + 'static {
    /// The manifest's `[config]` table, deserialized (serde). `()` takes none; a table that does
    /// not fit is a [`PluginError::BadConfig`] naming the field, answered by every call.
    type Config: serde::de::DeserializeOwned;

    /// Builds the plugin from its configuration, once per instance, at its first call.
    fn new(config: Self::Config) -> Result<Self, PluginError>;
}

#[doc(hidden)]
pub fn __new<P: Plugin>() -> Result<P, PluginError> {
    let raw = hostcalls::config();
    let config: P::Config = serde_json::from_str(&raw)
        .or_else(|e| {
            // A plugin without configuration may take `()` from an empty table.
            if raw.trim() == "{}" {
                serde_json::from_str("null").map_err(|_| e)
            } else {
                Err(e)
            }
        })
        .map_err(|e| PluginError::BadConfig(e.to_string()))?;
    P::new(config)
}

/// Reacts to the events the manifest subscribes to, like a Magento observer.
#[cfg(feature = "observer")]
pub trait Observer: Plugin {
    /// Handles one event; [`Outcome::Veto`] refuses the operation (sync observers only).
    /// Events newer than this SDK arrive as [`Event::Other`].
    fn on_event(&self, event: Event) -> Result<Outcome, PluginError>;
}

/// Takes part in authorization: allow, deny or abstain for one request. Any deny of any
/// resolver wins, then any allow, then the ACL's own answer.
#[cfg(feature = "permission-resolver")]
pub trait PermissionResolver: Plugin {
    fn resolve(&self, request: Request) -> Result<Verdict, PluginError>;
}

/// Declares integrations, synced like the TOML definition files.
#[cfg(feature = "config-provider")]
pub trait ConfigProvider: Plugin {
    fn integrations(&self) -> Result<Vec<IntegrationDefinition>, PluginError>;
}

/// Magento's before plugin: sees an operation's input before it runs (the operations the
/// manifest's `[before_interceptor] operations` names) and passes it, rewrites it, or refuses
/// the operation with a message for the caller.
#[cfg(feature = "before-interceptor")]
pub trait BeforeInterceptor: Plugin {
    fn before(&self, operation: Operation) -> Result<Answer, PluginError>;
}

/// Magento's after plugin: sees what an operation produced (a token issued, a request allowed)
/// and adds claims to the token or `X-Auth-*` headers for the upstream.
#[cfg(feature = "after-interceptor")]
pub trait AfterInterceptor: Plugin {
    fn after(&self, produced: Produced) -> Result<Additions, PluginError>;
}

/// Decides admin and customer sign-ins for the accounts it knows; abstains for the others.
#[cfg(feature = "credential-verifier")]
pub trait CredentialVerifier: Plugin {
    fn verify(&self, credentials: Credentials) -> Result<Verification, PluginError>;
}

/// Registers a plugin type and the roles it plays:
/// `register!(MyPlugin: observer, permission_resolver)`. Roles: `observer`,
/// `permission_resolver`, `config_provider`, `before_interceptor`, `after_interceptor`,
/// `credential_verifier` (each needs its crate feature and its trait implemented).
#[macro_export]
macro_rules! register {
    ($ty:ty : $($role:ident),+ $(,)?) => {
        #[doc(hidden)]
        fn __integration_host_plugin() -> ::core::result::Result<&'static $ty, $crate::PluginError> {
            static INSTANCE: ::std::sync::OnceLock<
                ::core::result::Result<$ty, $crate::PluginError>,
            > = ::std::sync::OnceLock::new();
            INSTANCE
                .get_or_init($crate::__new::<$ty>)
                .as_ref()
                .map_err(::core::clone::Clone::clone)
        }
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
                    <$ty as $crate::Observer>::on_event(__integration_host_plugin()?, event)
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
                    <$ty as $crate::PermissionResolver>::resolve(__integration_host_plugin()?, request)
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
                    <$ty as $crate::ConfigProvider>::integrations(__integration_host_plugin()?)
                }
            }
            $crate::provider_bindings::export_provider!(__Provider with_types_in $crate::provider_bindings);
        };
    };
    (@one before_interceptor $ty:ty) => {
        const _: () = {
            struct __Before;
            impl $crate::before_bindings::exports::integration_host::plugin::before_interceptor::Guest
                for __Before
            {
                fn before(
                    operation: $crate::Operation,
                ) -> ::core::result::Result<$crate::Answer, $crate::PluginError> {
                    <$ty as $crate::BeforeInterceptor>::before(__integration_host_plugin()?, operation)
                }
            }
            $crate::before_bindings::export_before!(__Before with_types_in $crate::before_bindings);
        };
    };
    (@one after_interceptor $ty:ty) => {
        const _: () = {
            struct __After;
            impl $crate::after_bindings::exports::integration_host::plugin::after_interceptor::Guest
                for __After
            {
                fn after(
                    produced: $crate::Produced,
                ) -> ::core::result::Result<$crate::Additions, $crate::PluginError> {
                    <$ty as $crate::AfterInterceptor>::after(__integration_host_plugin()?, produced)
                }
            }
            $crate::after_bindings::export_after!(__After with_types_in $crate::after_bindings);
        };
    };
    (@one credential_verifier $ty:ty) => {
        const _: () = {
            struct __Verifier;
            impl $crate::verifier_bindings::exports::integration_host::plugin::credential_verifier::Guest
                for __Verifier
            {
                fn verify(
                    credentials: $crate::Credentials,
                ) -> ::core::result::Result<$crate::Verification, $crate::PluginError> {
                    <$ty as $crate::CredentialVerifier>::verify(__integration_host_plugin()?, credentials)
                }
            }
            $crate::verifier_bindings::export_verifier!(__Verifier with_types_in $crate::verifier_bindings);
        };
    };
}
