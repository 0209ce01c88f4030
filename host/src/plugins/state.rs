//! What one plugin instance's store holds, and what the host remembers about each plugin.
//!
//! This module owns the per-store state (a WASI context without files, sockets, environment or
//! a real clock unless granted; `wasi:http` checked by [`super::outbound`]; the memory limiter; the captured standard error; the call
//! deadline), the `host` functions of the plugin API, and each plugin's [`Health`]: recent log
//! records and failures, the failure count that quarantines it, and call counters.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::v1_1;

/// Longest log message kept from a plugin.
pub const MAX_LOG_MESSAGE: usize = 4096;
/// Log records and failures kept per plugin.
const KEEP: usize = 50;
/// Denials kept per permission resolver.
const DENIALS_KEPT: usize = 20;
/// Standard error kept per instance (a panic message).
const STDERR_BYTES: usize = 8192;

/// What the store of one instance holds.
pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: super::outbound::Hooks,
    table: ResourceTable,
    limiter: Limiter,
    stderr: MemoryOutputPipe,
    pub(super) plugin: Arc<Identity>,
    /// When the current call must have finished.
    pub(super) deadline: Instant,
    /// The delivery an async observer's current call handles.
    pub(super) delivery: Option<crate::events::Delivery>,
}

/// Who an instance belongs to: what its host functions need.
#[derive(Debug)]
pub struct Identity {
    pub id: String,
    pub config_json: String,
    pub health: Arc<Health>,
    /// What it asked for within its grant.
    pub granted: super::capabilities::Granted,
    /// The key-value state of every plugin, when the host has a database.
    pub kv: Option<crate::services::plugin_state::PluginState>,
    /// Where it may send HTTP requests, within which limits.
    pub outbound: Arc<super::outbound::Outbound>,
}

impl State {
    pub fn new(plugin: Arc<Identity>, memory_bytes: usize, clock: bool) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let mut wasi = WasiCtx::builder();
        wasi.stderr(stderr.clone());
        if !clock {
            wasi.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
        }
        Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: super::outbound::Hooks {
                outbound: plugin.outbound.clone(),
                deadline: Instant::now(),
            },
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_bytes,
                hit: false,
            },
            stderr,
            plugin,
            deadline: Instant::now(),
            delivery: None,
        }
    }

    pub fn limiter(&mut self) -> &mut dyn wasmtime::ResourceLimiter {
        &mut self.limiter
    }

    /// What the instance wrote to standard error (a panic message), lossily decoded.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned()
    }

    /// Whether a memory grow was refused by the limit.
    pub fn memory_limit_hit(&self) -> bool {
        self.limiter.hit
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("plugin", &self.plugin.id)
            .finish_non_exhaustive()
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.hooks.deadline = self.deadline;
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Clocks that read zero: what a plugin without the `clock` capability sees.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

struct Limiter {
    memory_bytes: usize,
    hit: bool,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = true;
            return Err(wasmtime::format_err!(
                "memory limit of {} MiB exceeded (asked for {} MiB)",
                self.memory_bytes >> 20,
                desired.div_ceil(1 << 20)
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl v1_1::Host for State {
    fn log(&mut self, level: v1_1::Level, message: String, fields: Vec<(String, String)>) {
        let mut message = message;
        truncate(&mut message, MAX_LOG_MESSAGE);
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .take(32)
            .map(|(mut k, mut v)| {
                truncate(&mut k, 128);
                truncate(&mut v, 1024);
                (k, v)
            })
            .collect();
        let id = &self.plugin.id;
        let shown = fields
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(" ");
        match level {
            v1_1::Level::Trace => {
                tracing::trace!(target: "integration_host::plugin", plugin = %id, fields = %shown, "{message}")
            }
            v1_1::Level::Debug => {
                tracing::debug!(target: "integration_host::plugin", plugin = %id, fields = %shown, "{message}")
            }
            v1_1::Level::Info => {
                tracing::info!(target: "integration_host::plugin", plugin = %id, fields = %shown, "{message}")
            }
            v1_1::Level::Warn => {
                tracing::warn!(target: "integration_host::plugin", plugin = %id, fields = %shown, "{message}")
            }
            v1_1::Level::Error => {
                tracing::error!(target: "integration_host::plugin", plugin = %id, fields = %shown, "{message}")
            }
        }
        self.plugin.health.log(LogRecord {
            seq: 0,
            at: crate::clock::now(),
            level: match level {
                v1_1::Level::Trace => "trace",
                v1_1::Level::Debug => "debug",
                v1_1::Level::Info => "info",
                v1_1::Level::Warn => "warn",
                v1_1::Level::Error => "error",
            },
            message,
            fields,
        });
    }

    fn config(&mut self) -> String {
        self.plugin.config_json.clone()
    }
}

impl v1_1::wit::Host for State {}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub(super) fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
}

/// One log record a plugin wrote.
#[derive(Debug, Clone, Serialize)]
pub struct LogRecord {
    /// Orders records across all plugins of the server.
    pub seq: u64,
    pub at: i64,
    pub level: &'static str,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// One request a permission resolver denied (the path without its query; no credentials).
#[derive(Debug, Clone, Serialize)]
pub struct Denial {
    pub at: i64,
    pub method: String,
    pub path: String,
    /// Who asked: `integration 3 (Shop A)`, `admin 1 (jane)`, `customer 2 (jo@example.com)`,
    /// `guest`.
    pub principal: String,
    pub reason: String,
}

/// One failed call.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub at: i64,
    pub role: &'static str,
    pub error: String,
}

/// What the host remembers about a plugin across its calls (and across reloads of it).
#[derive(Debug)]
pub struct Health {
    seq: Arc<AtomicU64>,
    inner: Mutex<HealthInner>,
    pub calls: AtomicU64,
    pub failures: AtomicU64,
    /// Its outbound HTTP requests.
    pub http: Arc<super::outbound::HttpStats>,
}

#[derive(Debug, Default)]
struct HealthInner {
    logs: VecDeque<LogRecord>,
    recent: VecDeque<Failure>,
    denials: VecDeque<Denial>,
    window: VecDeque<Instant>,
    quarantined_until: Option<Instant>,
}

/// A snapshot of a plugin's health for `plugin list` and the REST API.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub calls: u64,
    pub failures: u64,
    /// Seconds left in quarantine, when quarantined.
    pub quarantined_for_seconds: Option<u64>,
    pub recent_failures: Vec<Failure>,
    pub recent_logs: Vec<LogRecord>,
    /// A permission resolver's last denials, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recent_denials: Vec<Denial>,
}

impl Health {
    /// `max_requests`: outbound HTTP requests it may have under way at once.
    pub fn new(seq: Arc<AtomicU64>, max_requests: usize) -> Self {
        Self {
            seq,
            inner: Mutex::default(),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            http: Arc::new(super::outbound::HttpStats::new(max_requests)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn log(&self, mut record: LogRecord) {
        record.seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let mut inner = self.lock();
        if inner.logs.len() == KEEP {
            inner.logs.pop_front();
        }
        inner.logs.push_back(record);
    }

    /// Keeps a denial among the last few.
    pub fn denied(&self, denial: Denial) {
        let mut inner = self.lock();
        if inner.denials.len() == DENIALS_KEPT {
            inner.denials.pop_front();
        }
        inner.denials.push_back(denial);
    }

    /// Whether calls are being skipped now.
    pub fn quarantined(&self) -> bool {
        let mut inner = self.lock();
        match inner.quarantined_until {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                inner.quarantined_until = None;
                inner.window.clear();
                false
            }
            None => false,
        }
    }

    /// Counts a failure; returns true when it put the plugin in quarantine.
    pub fn fail(
        &self,
        role: &'static str,
        error: String,
        limit: u32,
        window: Duration,
        quarantine: Duration,
    ) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.recent.len() == KEEP {
            inner.recent.pop_front();
        }
        inner.recent.push_back(Failure {
            at: crate::clock::now(),
            role,
            error,
        });
        while inner
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            inner.window.pop_front();
        }
        inner.window.push_back(now);
        if limit > 0 && inner.window.len() >= limit as usize && inner.quarantined_until.is_none() {
            inner.quarantined_until = Some(now + quarantine);
            return true;
        }
        false
    }

    /// Lifts a quarantine (a reload brings a new version).
    pub fn clear_quarantine(&self) {
        let mut inner = self.lock();
        inner.quarantined_until = None;
        inner.window.clear();
    }

    pub fn report(&self) -> HealthReport {
        let inner = self.lock();
        HealthReport {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            quarantined_for_seconds: inner
                .quarantined_until
                .and_then(|u| u.checked_duration_since(Instant::now()))
                .map(|d| d.as_secs().max(1)),
            recent_failures: inner.recent.iter().cloned().collect(),
            recent_logs: inner.logs.iter().cloned().collect(),
            recent_denials: inner.denials.iter().cloned().collect(),
        }
    }
}

// The host's side of the capabilities (`wit/capabilities@1.1.0`): what the plugin asked for
// within its grant ([`Identity::granted`]), and nothing else.

use super::capabilities::bindings::integration_host::capabilities::{
    delivery, key_value, variables,
};
use crate::services::plugin_state::KvError;

fn to_wit(e: KvError) -> key_value::KvError {
    match e {
        KvError::InvalidKey(m) => key_value::KvError::InvalidKey(m),
        KvError::TooLarge(n) => key_value::KvError::TooLarge(n),
        KvError::QuotaExceeded(q) => key_value::KvError::QuotaExceeded(q),
        KvError::Unavailable(m) => key_value::KvError::Unavailable(m),
    }
}

impl State {
    /// The key-value service and the quota, when this plugin was granted key-value state.
    fn key_value(
        &self,
    ) -> Result<(crate::services::plugin_state::PluginState, u64), key_value::KvError> {
        match (&self.plugin.kv, self.plugin.granted.quota) {
            (Some(kv), Some(quota)) => Ok((kv.clone(), quota)),
            (None, Some(_)) => Err(key_value::KvError::Unavailable(
                "this process has no database (a plugin checked or measured by the command line)"
                    .into(),
            )),
            (_, None) => Err(key_value::KvError::NotGranted),
        }
    }
}

impl key_value::Host for State {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, key_value::KvError> {
        let (kv, _) = self.key_value()?;
        kv.get(&self.plugin.id, &key).await.map_err(to_wit)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), key_value::KvError> {
        let (kv, quota) = self.key_value()?;
        kv.set(&self.plugin.id, &key, &value, quota)
            .await
            .map_err(to_wit)
    }

    async fn delete(&mut self, key: String) -> Result<bool, key_value::KvError> {
        let (kv, _) = self.key_value()?;
        kv.delete(&self.plugin.id, &key).await.map_err(to_wit)
    }

    async fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, key_value::KvError> {
        let (kv, _) = self.key_value()?;
        kv.keys(&self.plugin.id, &prefix).await.map_err(to_wit)
    }
}

impl variables::Host for State {
    async fn get(&mut self, name: String) -> Option<String> {
        self.plugin
            .granted
            .variables
            .get(&name)
            .map(|v| v.expose().to_owned())
    }
}

impl delivery::Host for State {
    async fn current(&mut self) -> Option<delivery::DeliveryInfo> {
        self.delivery.as_ref().map(|d| delivery::DeliveryInfo {
            event_id: d.event_id.clone(),
            attempt: d.attempt,
            recorded_at: d.recorded_at,
        })
    }
}
