//! Plugins' key-value state, as the `key_value` capability defines it: keys of 1 to 256 bytes,
//! values up to 64 KiB, every plugin's keys and values together within the quota its grant
//! sets, each plugin in a namespace of its own. Plugins reach it through the host's
//! `key-value` interface; operators through `integration-host plugin kv`.

use crate::clock::now;
use crate::store::{KvWrite, Store, StoreError};

use super::ServiceError;

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// The largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// The most keys one listing answers.
pub const MAX_LISTED: i64 = 1000;

/// Why a key-value call failed, in the terms of the capability's WIT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("the value is larger than {0} bytes")]
    TooLarge(u32),
    #[error("the plugin's key-value quota of {0} bytes would be exceeded")]
    QuotaExceeded(u64),
    #[error("the database failed: {0}")]
    Unavailable(String),
}

impl From<StoreError> for KvError {
    fn from(e: StoreError) -> Self {
        KvError::Unavailable(e.to_string())
    }
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::InvalidKey("a key is not empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidKey(format!(
            "a key has at most {MAX_KEY_BYTES} bytes; this one has {}",
            key.len()
        )));
    }
    Ok(())
}

/// The key-value state of every plugin.
#[derive(Debug, Clone)]
pub struct PluginState {
    store: Store,
}

impl PluginState {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        Ok(self.store.kv_get(plugin, key).await?)
    }

    /// Sets a key within the plugin's quota (bytes of every key and value).
    pub async fn set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<(), KvError> {
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::TooLarge(MAX_VALUE_BYTES as u32));
        }
        match self.store.kv_set(plugin, key, value, quota, now()).await? {
            KvWrite::Written => Ok(()),
            KvWrite::OverQuota => Err(KvError::QuotaExceeded(quota)),
        }
    }

    pub async fn delete(&self, plugin: &str, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        Ok(self.store.kv_delete(plugin, key).await?)
    }

    /// Keys starting with `prefix`, in byte order, at most [`MAX_LISTED`].
    pub async fn keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, KvError> {
        Ok(self
            .store
            .kv_keys(plugin, prefix, MAX_LISTED)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// For the operator: keys with the size of each entry (key and value, in bytes).
    pub async fn entries(
        &self,
        plugin: &str,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, ServiceError> {
        Ok(self.store.kv_keys(plugin, prefix, limit).await?)
    }

    /// For the operator: how many keys a plugin has and the bytes they take.
    pub async fn usage(&self, plugin: &str) -> Result<(i64, i64), ServiceError> {
        Ok(self.store.kv_usage(plugin).await?)
    }

    /// For the operator: the value of a key, whatever its length.
    pub async fn value(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, ServiceError> {
        Ok(self.store.kv_get(plugin, key).await?)
    }

    /// For the operator: removes one key.
    pub async fn remove(&self, plugin: &str, key: &str) -> Result<bool, ServiceError> {
        Ok(self.store.kv_delete(plugin, key).await?)
    }

    /// For the operator: removes every key of a plugin.
    pub async fn clear(&self, plugin: &str) -> Result<u64, ServiceError> {
        Ok(self.store.kv_clear(plugin).await?)
    }
}
