//! Typed settings and where they come from.
//!
//! This module owns the configuration model of the server: built-in defaults, overridden by a TOML
//! file, overridden by `APP_…` environment variables (`__` separates nesting levels, so
//! `APP_SERVER__LISTEN` sets `server.listen`), overridden by command-line flags. Unknown keys and
//! bad values are errors that name the key and where it came from. Values are parsed into domain
//! types here (parse, don't validate), so the rest of the server never sees a malformed setting.
//! The commented template printed by `config print-default` lives beside this file and is checked
//! against [`Settings::default`] by a unit test, so the two cannot drift apart.

mod grants;
mod loader;
mod types;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use grants::{OutboundRule, PluginGrant, RuleHost, VariableValue, clock_from_list};
pub use loader::{ConfigError, Loader, Origin, load, parse_toml_at_key};
pub use types::{
    CronSchedule, DatabaseUrl, InvalidValue, JwtAlgorithm, KeySpec, ListenAddr, LogFormat,
    LogLevel, PublicUrl, SecretString,
};

/// The commented template of every setting with its default (`config print-default`).
pub const TEMPLATE: &str = include_str!("template.toml");

/// Prefix of environment variables that override settings.
pub const ENV_PREFIX: &str = "APP_";

/// Every setting of the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Folder for the embedded database, generated keys and caches.
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub crypto: CryptoSettings,
    pub tokens: TokenSettings,
    pub oauth: OauthSettings,
    pub acl: AclSettings,
    pub integrations: IntegrationSettings,
    pub webapi: WebapiSettings,
    pub plugins: PluginSettings,
    pub admin_ui: AdminUiSettings,
    pub proxy: ProxySettings,
    pub cron: CronSettings,
    pub events: EventSettings,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
    pub bootstrap: BootstrapSettings,
}

/// The durable delivery of events to async observers (the outbox).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSettings {
    /// Attempts to deliver an event to an async observer before giving up.
    pub max_attempts: u32,
    /// Milliseconds before the second attempt; doubled after each failure.
    pub retry_initial_ms: u64,
    /// The longest wait between attempts, in seconds.
    pub retry_max_seconds: u64,
    /// How often a server looks for events other processes wrote, in milliseconds (its own
    /// are delivered at once).
    pub poll_ms: u64,
    /// Hours an event is kept for observers that have not taken it, and a given-up delivery
    /// for the operator to see.
    pub retention_hours: u64,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            retry_initial_ms: 1000,
            retry_max_seconds: 600,
            poll_ms: 1000,
            retention_hours: 168,
        }
    }
}

/// Where and to whom `/metrics` answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `/metrics` on this address only (the API port then answers 404 there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<ListenAddr>,
    /// Require `Authorization: Bearer <token>` on `/metrics`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<SecretString>,
}

/// The first admin account, created on an empty database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapSettings {
    /// Write its generated password to this file (mode 0600) instead of standard output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

impl BootstrapSettings {
    /// Why the password file cannot be written, when its folder does not exist (checked by
    /// `serve` before it creates the admin, and by `config check`).
    pub fn password_folder_problem(&self) -> Option<String> {
        let path = self.password_file.as_deref()?;
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        (!folder.is_dir()).then(|| format!("the folder {} does not exist", folder.display()))
    }
}

/// The ACL resource tree.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AclSettings {
    /// A resource tree file replacing the built-in tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources_file: Option<PathBuf>,
}

/// Declarative integrations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrationSettings {
    /// Folders whose `*.toml` files declare integrations, synced at start, by
    /// `integration sync`, and when they change.
    pub directories: Vec<PathBuf>,
    /// How often a running server looks for added, changed or removed definition files, in
    /// milliseconds; 0 only syncs at start and on `integration sync`.
    pub watch_poll_ms: u64,
}

impl Default for IntegrationSettings {
    fn default() -> Self {
        Self {
            directories: Vec::new(),
            watch_poll_ms: 1000,
        }
    }
}

/// The HTTP listener and what the server says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: ListenAddr,
    /// Public base URL, as integrators reach the server (sent as `store_base_url`).
    pub base_url: PublicUrl,
    /// Store code accepted in `/rest/<store>/V1/…` paths.
    pub store_code: String,
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Largest request body accepted, in bytes (413 above).
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers) accepted, in bytes (431 above).
    pub max_header_bytes: usize,
    /// Seconds `/readyz` answers 503 after SIGTERM before the listener closes.
    pub drain_seconds: u64,
    /// Seconds in-flight requests get to finish once the listener closed.
    pub shutdown_timeout_seconds: u64,
    /// Milliseconds a client has to send a request's head (its line and headers) from the
    /// moment it connected or its previous answer went out; a slower one gets 408 and is cut off.
    pub header_timeout_ms: u64,
    /// Milliseconds a client has to send a request's whole body once its head arrived; a slower
    /// one gets 408 in the protocol's shape.
    pub body_timeout_ms: u64,
    /// Seconds an idle connection is kept open between requests.
    pub keep_alive_seconds: u64,
    /// Open connections at most, over all workers; further ones wait to be accepted until some
    /// close (the log says when the cap is reached).
    pub max_connections: usize,
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`; unset means `<data_dir>/integration-host.sqlite`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<DatabaseUrl>,
    /// Largest number of open connections.
    pub pool_size: u32,
    /// Seconds to wait for a free connection before failing a request.
    pub acquire_timeout_seconds: u64,
    /// Milliseconds SQLite waits on a locked database before failing.
    pub sqlite_busy_timeout_ms: u64,
    /// On SQLite, microseconds the nonce writer waits, while signed requests arrive together,
    /// for more nonces to join a commit (a commit costs far more than one more row in it). An
    /// idle server never waits. 0 commits whatever is waiting at once.
    pub nonce_commit_delay_us: u64,
}

/// Keys for secrets the server stores and must read back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CryptoSettings {
    /// `"id:base64(32 bytes)"`, newest first: the first encrypts, all decrypt.
    pub secret_keys: Vec<KeySpec>,
    /// Keys announced for a rotation: they open stored secrets but never seal one. Phase one
    /// of a rotation lists the new key here on every server; phase two moves it to the front
    /// of `secret_keys` (see docs/operations.md, "Rotating keys").
    pub next_secret_keys: Vec<KeySpec>,
    /// `"id:base64(32 bytes)"` keying the lookup hash of token values; never rotate it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup_key: Option<KeySpec>,
}

/// Admin and customer bearer tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    pub algorithm: JwtAlgorithm,
    /// `"kid:base64(≥32 bytes)"`, newest first: the first signs, all verify.
    pub signing_keys: Vec<KeySpec>,
    /// Keys announced for a rotation: they verify tokens but never sign one (phase one of a
    /// rotation, as `crypto.next_secret_keys`).
    pub next_signing_keys: Vec<KeySpec>,
    pub admin_lifetime_minutes: u32,
    pub customer_lifetime_minutes: u32,
    /// Issue JWTs, or opaque tokens stored in `oauth_token` as Magento did before 2.4.4.
    pub format: TokenFormat,
    pub opaque_admin_lifetime_hours: u32,
    pub opaque_customer_lifetime_hours: u32,
    /// Sign-in failures of one user name before it is locked.
    pub lockout_failures: u32,
    /// Seconds a lock lasts; every failure pushes it out again.
    pub lockout_seconds: u64,
}

/// What kind of token a sign-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    Jwt,
    Opaque,
}

/// The Web API: its route table and the pages of its lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebapiSettings {
    /// Route tables of other services (forward-auth and proxy), read after the built-in one.
    pub routes_files: Vec<PathBuf>,
    /// Items of a list page when the client asks for no `searchCriteria[pageSize]` (Magento's
    /// "Default Page Size" of its Web API limits); at most `maximum_page_size`.
    pub default_page_size: std::num::NonZeroU32,
    /// The largest `searchCriteria[pageSize]` a client may ask for (Magento's "Maximum Page
    /// Size"); a larger one is refused.
    pub maximum_page_size: std::num::NonZeroU32,
}

impl Default for WebapiSettings {
    fn default() -> Self {
        Self {
            routes_files: Vec::new(),
            default_page_size: std::num::NonZeroU32::new(20).expect("not zero"),
            maximum_page_size: std::num::NonZeroU32::new(300).expect("not zero"),
        }
    }
}

/// The admin UI at `/admin` ([S-7]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminUiSettings {
    /// Minutes an admin UI session lasts after sign-in.
    pub session_minutes: u64,
}

impl Default for AdminUiSettings {
    fn default() -> Self {
        Self {
            session_minutes: 240,
        }
    }
}

/// WebAssembly plugins ([S-5]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginSettings {
    /// Folders holding plugins: every subfolder with a `plugin.toml` is one plugin.
    pub directories: Vec<PathBuf>,
    /// Refuse to start when a plugin cannot be loaded (otherwise it is reported and skipped).
    pub strict: bool,
    /// Where compiled components are cached; default `<data_dir>/plugin-cache`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    /// What each plugin (by id) is granted; a plugin asking for more is not loaded.
    pub grants: BTreeMap<String, PluginGrant>,
    /// How often plugin folders are checked for changes, in milliseconds; 0 turns it off.
    pub reload_poll_ms: u64,
    /// Failures within `quarantine_window_seconds` that quarantine a plugin.
    pub quarantine_failures: u32,
    pub quarantine_window_seconds: u64,
    /// How long a quarantined plugin is skipped.
    pub quarantine_seconds: u64,
    /// Upper bounds over what manifests ask for; each plugin's instances are capped at its own
    /// `[limits] memory_mib`.
    pub max_memory_mib: u32,
    pub max_timeout_ms: u64,
    /// Warm instances kept per plugin and role.
    pub warm_instances: usize,
    /// Limits on the HTTP requests plugins send (`[plugins.http]`).
    pub http: PluginHttpSettings,
    /// Where `plugin build` and `plugin new` find the JavaScript and Python toolchains
    /// (`js/` with componentize-js and jco, `python/` a venv with componentize-py), as
    /// `scripts/plugin-toolchains` installs them.
    pub toolchains_dir: PathBuf,
}

/// Limits on plugins' outbound HTTP requests, per request and per plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginHttpSettings {
    /// Milliseconds to connect (and finish a TLS handshake).
    pub connect_timeout_ms: u64,
    /// Milliseconds for a whole request, to the last byte of the answer; never beyond the time
    /// left of the plugin call that sends it.
    pub timeout_ms: u64,
    /// The largest answer body read, in KiB; a longer one fails the request.
    pub max_response_kib: u64,
    /// Requests one plugin may have under way at once; one more fails at once.
    pub max_concurrent: usize,
}

impl Default for PluginHttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 2000,
            timeout_ms: 10_000,
            max_response_kib: 1024,
            max_concurrent: 16,
        }
    }
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            directories: Vec::new(),
            strict: false,
            cache_dir: None,
            grants: BTreeMap::new(),
            reload_poll_ms: 1000,
            quarantine_failures: 5,
            quarantine_window_seconds: 60,
            quarantine_seconds: 60,
            max_memory_mib: 256,
            max_timeout_ms: 2000,
            warm_instances: 8,
            http: PluginHttpSettings::default(),
            toolchains_dir: PathBuf::from("target/plugin-toolchains"),
        }
    }
}

/// The reverse proxy for routes declared with an upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySettings {
    /// Seconds an upstream may take to answer.
    pub timeout_seconds: u64,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            timeout_seconds: 30,
        }
    }
}

/// Scheduled cleanup jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CronSettings {
    /// Run the jobs on their schedules inside `serve`.
    pub enabled: bool,
    /// Cron expressions (minute hour day-of-month month day-of-week, UTC).
    pub outdated_authentication_failures_cleanup: CronSchedule,
    pub expired_tokens_cleanup: CronSchedule,
    pub nonce_cleanup: CronSchedule,
    pub stale_tokens_cleanup: CronSchedule,
    pub event_outbox_cleanup: CronSchedule,
    /// Minutes nonces and unexchanged handshake tokens are kept (at least the timestamp window).
    pub retention_minutes: u64,
}

impl Default for CronSettings {
    fn default() -> Self {
        let s = |e: &str| CronSchedule::parse(e).expect("default schedules parse");
        Self {
            enabled: true,
            outdated_authentication_failures_cleanup: s("* * * * *"),
            expired_tokens_cleanup: s("0 * * * *"),
            nonce_cleanup: s("*/5 * * * *"),
            stale_tokens_cleanup: s("*/5 * * * *"),
            event_outbox_cleanup: s("*/10 * * * *"),
            retention_minutes: 120,
        }
    }
}

/// OAuth 1.0a for integrations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OauthSettings {
    /// Seconds after activation during which the integrator may exchange tokens.
    pub consumer_exchange_window_seconds: u64,
    /// Largest difference, either way, between `oauth_timestamp` and the server clock.
    pub timestamp_window_seconds: u64,
    /// Accept HMAC-SHA1 signatures (Magento 2.4.4+ refuses them; older clients send them).
    pub allow_hmac_sha1: bool,
    /// Seconds the activation POST to an integration endpoint may take.
    pub endpoint_timeout_seconds: u64,
    /// Follow redirects answered by an integration endpoint.
    pub endpoint_follow_redirects: bool,
    /// Reconstruct the signed URL from `Forwarded` / `X-Forwarded-Proto` / `X-Forwarded-Host`
    /// (only behind a proxy that sets them).
    pub trust_forwarded_headers: bool,
    /// Accept integration access tokens as `Authorization: Bearer` (Magento 2.4.4+: off).
    pub allow_integration_bearer: bool,
    /// Seconds a server process may rely on credentials it read (consumers, tokens, grants)
    /// before reading them again; bounds how long a change made by another process goes
    /// unseen. Changes made through the same process apply at once. 0 disables the cache.
    pub credential_cache_seconds: u64,
    /// When the signature over the standard base string fails, also accept one over the query
    /// names as sent, not percent-decoded (npm oauth-1.0a signs them so).
    pub tolerate_undecoded_query_names: bool,
}

impl Default for OauthSettings {
    fn default() -> Self {
        Self {
            consumer_exchange_window_seconds: 300,
            timestamp_window_seconds: 600,
            allow_hmac_sha1: false,
            endpoint_timeout_seconds: 5,
            endpoint_follow_redirects: false,
            trust_forwarded_headers: false,
            allow_integration_bearer: false,
            credential_cache_seconds: 5,
            tolerate_undecoded_query_names: true,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: LogLevel,
}

/// The checkout this binary was built in, when it runs from there
/// (`<checkout>/target/<profile>/integration-host`).
pub fn checkout_of_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let root = exe.ancestors().nth(3)?;
    root.join("Cargo.toml").is_file().then(|| root.to_owned())
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            crypto: CryptoSettings::default(),
            tokens: TokenSettings::default(),
            oauth: OauthSettings::default(),
            acl: AclSettings::default(),
            integrations: IntegrationSettings::default(),
            webapi: WebapiSettings::default(),
            plugins: PluginSettings::default(),
            admin_ui: AdminUiSettings::default(),
            proxy: ProxySettings::default(),
            cron: CronSettings::default(),
            events: EventSettings::default(),
            log: LogSettings::default(),
            metrics: MetricsSettings::default(),
            bootstrap: BootstrapSettings::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: ListenAddr::parse("127.0.0.1:8080").expect("valid default"),
            base_url: PublicUrl::parse("http://127.0.0.1:8080/").expect("valid default"),
            store_code: "default".into(),
            workers: 0,
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            drain_seconds: 0,
            shutdown_timeout_seconds: 30,
            header_timeout_ms: 5000,
            body_timeout_ms: 30_000,
            keep_alive_seconds: 5,
            max_connections: 10_000,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 16,
            acquire_timeout_seconds: 5,
            sqlite_busy_timeout_ms: 5000,
            nonce_commit_delay_us: 250,
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            algorithm: JwtAlgorithm::Hs256,
            signing_keys: Vec::new(),
            next_signing_keys: Vec::new(),
            admin_lifetime_minutes: 60,
            customer_lifetime_minutes: 60,
            format: TokenFormat::Jwt,
            opaque_admin_lifetime_hours: 4,
            opaque_customer_lifetime_hours: 1,
            lockout_failures: 6,
            lockout_seconds: 1800,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            level: LogLevel::parse("info").expect("valid default"),
        }
    }
}

impl Settings {
    /// The key-value quota, in KiB, granted to a plugin.
    pub fn grants_quota(&self, plugin: &str) -> Option<u64> {
        self.plugins.grants.get(plugin)?.key_value_quota_kib
    }

    /// The database the settings point at, with the default applied.
    pub fn database_url(&self) -> DatabaseUrl {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| DatabaseUrl::Sqlite(self.data_dir.join("integration-host.sqlite")))
    }
}
