//! The WebAssembly engine of the plugin host: its configuration, the epoch ticker, the
//! on-disk cache of compiled components and the linker with what plugins may import.
//!
//! One engine per server: epoch interruption (a ticker thread advances the epoch every
//! millisecond, and each call gets a deadline), the pooling allocator (instance slots are
//! reserved once, so a new instance costs microseconds), and Cranelift. Compiled components are
//! cached in `plugins.cache_dir`, named by the component's SHA-256 and the engine's
//! compatibility hash, so a restart or reload of an unchanged component skips compiling.

use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::state::State;
use crate::config::PluginSettings;

/// How often the epoch advances: the granularity of call deadlines.
pub const TICK: Duration = Duration::from_millis(1);

/// Concurrent instances the pooling allocator reserves room for.
const POOL_INSTANCES: u32 = 512;

/// Builds the engine and starts its ticker (which stops when the engine is dropped).
pub fn engine(settings: &PluginSettings) -> anyhow::Result<Engine> {
    let max_memory = u64::from(settings.max_memory_mib) << 20;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 4)
        .total_memories(POOL_INSTANCES)
        .total_tables(POOL_INSTANCES * 2)
        .total_stacks(POOL_INSTANCES)
        .max_memory_size(max_memory as usize);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        // Each slot reserves the whole 4 GiB a 32-bit memory can address, plus a guard: the
        // compiled code then leaves out the bounds check of nearly every load and store (a
        // JavaScript plugin's call runs a quarter faster than with slots of max_memory_mib).
        // Address space only (512 slots: about 2 TiB of the 128 TiB a process has); what an
        // instance may use is capped by max_memory_size and its manifest's memory_mib.
        .memory_reservation(4 << 30)
        .memory_reservation_for_growth(0)
        .memory_guard_size(32 << 20)
        .max_wasm_stack(512 << 10);
    let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .context("cannot start the plugin epoch thread")?;
    Ok(engine)
}

/// The linker every plugin instance is built from: WASI preview 2 (with no files, sockets or
/// environment in its context), `wasi:http/outgoing-handler` (within the plugin's grant), the
/// plugin API's `host` interface and the capabilities.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Outbound HTTP: every request is checked against the plugin's grant (`outbound`).
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The host interface of every supported API version, each by its exact name.
    super::v1_0::base::PluginBase::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    super::capabilities::bindings::Capabilities::add_to_linker::<State, HasSelf<State>>(
        &mut linker,
        |s| s,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    super::v1_1::base::PluginBase::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(linker)
}

/// The cache folder: configured, or under the data folder.
pub fn cache_dir(settings: &PluginSettings, data_dir: &Path) -> PathBuf {
    settings
        .cache_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("plugin-cache"))
}

fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    let mut h = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}-{:016x}.cwasm", h.finish())
}

/// Where a component came from: compiled now, or read from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Compiled,
    Cached,
}

/// Loads a component, from the cache when it holds this exact component for this engine.
/// Blocking (compiling takes from tens of milliseconds to tens of seconds): call it off the
/// async threads.
pub fn load_component(
    engine: &Engine,
    bytes: &[u8],
    cache: &Path,
) -> anyhow::Result<(Component, Origin)> {
    if let Some(c) = cached(engine, bytes, cache) {
        return Ok((c, Origin::Cached));
    }
    let component = Component::new(engine, bytes).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let path = cache.join(cache_key(engine, bytes));
    if let Err(e) = store_compiled(&component, cache, &path) {
        tracing::warn!(path = %path.display(), error = %e, "cannot cache a compiled plugin");
    }
    Ok((component, Origin::Compiled))
}

/// The component from the cache, when it holds this exact component compiled by this engine
/// (reading it maps the file: milliseconds, whatever the component's size).
pub fn cached(engine: &Engine, bytes: &[u8], cache: &Path) -> Option<Component> {
    let path = cache.join(cache_key(engine, bytes));
    if !path.is_file() {
        return None;
    }
    // SAFETY: `Component::deserialize_file` trusts its input to be a component this
    // engine serialized. The file is named by the SHA-256 of the source component and the
    // engine's compatibility hash, lives in the server's own cache folder (created 0700),
    // and is written only by `store_compiled` by an atomic rename of what `serialize` produced.
    #[allow(unsafe_code)]
    let cached = unsafe { Component::deserialize_file(engine, &path) };
    cached
        .inspect_err(|e| {
            tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable compiled plugin in the cache");
        })
        .ok()
}

fn store_compiled(component: &Component, cache: &Path, path: &Path) -> anyhow::Result<()> {
    create_private_dir(cache)?;
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    let tmp = tempfile::NamedTempFile::new_in(cache)?;
    std::fs::write(tmp.path(), bytes)?;
    tmp.persist(path)?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}
