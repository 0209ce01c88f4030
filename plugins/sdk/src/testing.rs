//! A test double for the host, for unit tests of a plugin's logic run natively with
//! `cargo test` (no server, no WebAssembly): in a build for any target but WebAssembly, the
//! SDK's host functions work on stand-ins kept per test thread (in a component they are the
//! host's, whatever this module was told).
//!
//! - [`plugin`] builds the plugin from a configuration as the host does (the same
//!   deserialization: a table that does not fit is the same [`PluginError::BadConfig`]);
//! - [`logs`] takes what it logged with [`info!`](crate::info) and the others;
//! - [`grant_key_value`] gives it an empty in-memory key-value store ([`kv`](crate::kv) answers
//!   `not-granted` until then), [`kv_value`] reads it;
//! - [`set_variable`] and [`set_delivery`] answer [`variable`](crate::variable) and
//!   [`delivery`](crate::delivery);
//! - [`answer_http`] answers its outbound requests (the `http` feature; without it they fail).
//!
//! Each test runs on a thread of its own, so tests do not see each other's stand-ins.
//!
//! ```ignore
//! use integration_host_sdk::testing;
//!
//! #[test]
//! fn blocked_domains_are_refused() {
//!     let audit: LoginAudit = testing::plugin(r#"{"blocked_domains": ["blocked.example"]}"#).unwrap();
//!     let outcome = audit.on_event(testing::customer_login("jo@blocked.example")).unwrap();
//!     assert!(matches!(outcome, Outcome::Veto(_)));
//!     assert_eq!(testing::logs()[0].message, "customer sign-in refused");
//! }
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use crate::log::Level;
use crate::{Delivery, Plugin, PluginError};

/// One record the plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub level: Level,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

impl LogRecord {
    /// The value of field `name`, if the record has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(feature = "http")]
type HttpAnswer =
    Box<dyn Fn(&crate::http::Request) -> Result<crate::http::Response, crate::http::HttpError>>;

#[derive(Default)]
struct Stand {
    config: Option<String>,
    logs: Vec<LogRecord>,
    kv: Option<BTreeMap<String, Vec<u8>>>,
    variables: HashMap<String, String>,
    delivery: Option<Delivery>,
    #[cfg(feature = "http")]
    http: Option<HttpAnswer>,
}

thread_local! {
    static STAND: RefCell<Stand> = RefCell::new(Stand::default());
}

fn with<T>(f: impl FnOnce(&mut Stand) -> T) -> T {
    STAND.with(|s| f(&mut s.borrow_mut()))
}

/// Builds the plugin from `config` (its manifest's `[config]` table as JSON text, `"{}"` for
/// none) as the host does.
pub fn plugin<P: Plugin>(config: &str) -> Result<P, PluginError> {
    with(|s| s.config = Some(config.to_owned()));
    crate::__new::<P>()
}

/// Takes the records logged since the last call.
pub fn logs() -> Vec<LogRecord> {
    with(|s| std::mem::take(&mut s.logs))
}

/// Grants key-value state: an empty store for this thread.
pub fn grant_key_value() {
    with(|s| s.kv = Some(BTreeMap::new()));
}

/// The value the plugin set for `key`, if any.
pub fn kv_value(key: &str) -> Option<Vec<u8>> {
    with(|s| s.kv.as_ref().and_then(|kv| kv.get(key).cloned()))
}

/// Sets variable `name`, as the operator's grant would.
pub fn set_variable(name: &str, value: &str) {
    with(|s| {
        s.variables.insert(name.to_owned(), value.to_owned());
    });
}

/// Sets the delivery that [`crate::delivery`] answers (an async observer's), or none.
pub fn set_delivery(delivery: Option<Delivery>) {
    with(|s| s.delivery = delivery);
}

/// Answers the plugin's outbound requests with `answer`.
#[cfg(feature = "http")]
pub fn answer_http(
    answer: impl Fn(&crate::http::Request) -> Result<crate::http::Response, crate::http::HttpError>
    + 'static,
) {
    with(|s| s.http = Some(Box::new(answer)));
}

/// A `customer-login` event for `email`, the other fields filled in.
pub fn customer_login(email: &str) -> crate::Event {
    crate::Event::CustomerLogin(crate::CustomerLogin {
        customer_id: 1,
        email: email.to_owned(),
        firstname: "Jo".to_owned(),
        lastname: "Doe".to_owned(),
        at: 1_700_000_000,
        client_address: Some("203.0.113.7".to_owned()),
        user_agent: None,
    })
}

/// The stand-ins the SDK calls in a native build.
#[cfg_attr(target_family = "wasm", allow(dead_code))]
pub(crate) mod host {
    use super::{LogRecord, with};
    use crate::log::Level;

    pub fn log(level: Level, message: &str, fields: &[(String, String)]) {
        with(|s| {
            s.logs.push(LogRecord {
                level,
                message: message.to_owned(),
                fields: fields.to_vec(),
            })
        });
    }

    pub fn config() -> String {
        with(|s| s.config.clone().unwrap_or_else(|| "{}".to_owned()))
    }

    pub fn variable(name: &str) -> Option<String> {
        with(|s| s.variables.get(name).cloned())
    }

    pub fn delivery() -> Option<crate::Delivery> {
        with(|s| s.delivery.clone())
    }

    #[cfg(feature = "http")]
    pub fn http(
        request: &crate::http::Request,
    ) -> Result<crate::http::Response, crate::http::HttpError> {
        with(|s| match &s.http {
            Some(answer) => answer(request),
            None => Err(crate::http::HttpError(
                "no answer set for outbound requests (testing::answer_http)".to_owned(),
            )),
        })
    }

    /// The key-value store, with the host's limits on keys and values.
    pub mod kv {
        use super::with;
        pub use crate::capabilities_bindings::integration_host::capabilities::key_value::KvError;

        const MAX_KEY: usize = 256;
        const MAX_VALUE: usize = 64 * 1024;

        fn check(key: &str) -> Result<(), KvError> {
            if key.is_empty() || key.len() > MAX_KEY {
                return Err(KvError::InvalidKey(format!(
                    "a key is 1 to {MAX_KEY} bytes"
                )));
            }
            Ok(())
        }

        pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
            check(key)?;
            with(|s| match &s.kv {
                Some(kv) => Ok(kv.get(key).cloned()),
                None => Err(KvError::NotGranted),
            })
        }

        pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
            check(key)?;
            if value.len() > MAX_VALUE {
                return Err(KvError::TooLarge(MAX_VALUE as u32));
            }
            with(|s| match &mut s.kv {
                Some(kv) => {
                    kv.insert(key.to_owned(), value.to_vec());
                    Ok(())
                }
                None => Err(KvError::NotGranted),
            })
        }

        pub fn delete(key: &str) -> Result<bool, KvError> {
            check(key)?;
            with(|s| match &mut s.kv {
                Some(kv) => Ok(kv.remove(key).is_some()),
                None => Err(KvError::NotGranted),
            })
        }

        pub fn list_keys(prefix: &str) -> Result<Vec<String>, KvError> {
            with(|s| match &s.kv {
                Some(kv) => Ok(kv
                    .keys()
                    .filter(|k| k.starts_with(prefix))
                    .take(1000)
                    .cloned()
                    .collect()),
                None => Err(KvError::NotGranted),
            })
        }
    }
}
