//! A small read-through cache for credentials on the signed-request path (and integrations read
//! by id).
//!
//! Every signed Web API request needs its consumer, its token and its integration's grants;
//! reading them from the database each time would cost several queries per request. Entries are
//! valid while both hold: the store's write generation has not moved since the read that filled
//! them (any write through this process invalidates everything at once, so a revocation here
//! takes effect on the next request; on SQLite, a write by another process moves it within the
//! store's watch interval), and their time to live has not run out (which bounds how long a
//! change made by another process can go unseen where the store cannot see those:
//! `oauth.credential_cache_seconds`).
//! Misses are not cached, so unknown keys cannot fill memory; the map is cleared when it grows
//! past its capacity.
//!
//! A key missing at one moment is read once ([`TtlCache::get_or_fill`]): when a write moves
//! the generation, every request in flight misses at once, and each reading the same
//! credentials for itself made a queue of hundreds of reads (under a cleanup job's batches,
//! twenty times a second).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Whose turn it is to read a key that is missing.
type Gate = Arc<tokio::sync::Mutex<()>>;

/// Entries a credential cache holds before it starts over.
pub(crate) const CAPACITY: usize = 100_000;

#[derive(Debug)]
pub(crate) struct TtlCache<K, V> {
    map: RwLock<HashMap<K, (u64, Instant, V)>>,
    /// The keys being read now, each with the gate its readers take turns at.
    filling: Mutex<HashMap<K, Gate>>,
    ttl: Duration,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            filling: Mutex::new(HashMap::new()),
            ttl,
            capacity,
        }
    }

    /// The value for `key` at the current `generation()`: cached, or read by `fill` and kept.
    /// Callers missing the same key at once take turns: the first reads, the others find what
    /// it read (a value not found is not kept, so each of them reads again).
    pub(crate) async fn get_or_fill<E, Fut>(
        &self,
        key: K,
        generation: impl Fn() -> u64,
        fill: impl FnOnce() -> Fut,
    ) -> Result<Option<V>, E>
    where
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        if let Some(v) = self.get(&key, generation()) {
            return Ok(Some(v));
        }
        if self.ttl.is_zero() {
            return fill().await;
        }
        let turn = Turn::take(self, key);
        let _mine = turn.gate.lock().await;
        let at = generation();
        if let Some(v) = self.get(&turn.key, at) {
            return Ok(Some(v));
        }
        let value = fill().await?;
        if let Some(v) = &value {
            self.put(turn.key.clone(), at, v.clone());
        }
        Ok(value)
    }

    /// The value for `key` if it was filled at `generation` and is not older than the TTL.
    pub(crate) fn get<Q>(&self, key: &Q, generation: u64) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((g, filled, v)) if *g == generation && filled.elapsed() < self.ttl => {
                Some(v.clone())
            }
            _ => None,
        }
    }

    /// Stores a value read at `generation` (the generation taken before the read).
    pub(crate) fn put(&self, key: K, generation: u64, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(key, (generation, Instant::now(), value));
    }
}

/// A caller's place at a key's gate; the last to leave removes the gate.
struct Turn<'a, K: Eq + Hash, V> {
    cache: &'a TtlCache<K, V>,
    key: K,
    gate: Gate,
}

impl<'a, K: Eq + Hash + Clone, V> Turn<'a, K, V> {
    fn take(cache: &'a TtlCache<K, V>, key: K) -> Self {
        let gate = cache
            .filling
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        Self { cache, key, gate }
    }
}

impl<K: Eq + Hash, V> Drop for Turn<'_, K, V> {
    fn drop(&mut self) {
        let mut filling = self.cache.filling.lock().unwrap_or_else(|e| e.into_inner());
        // The map's and this one's: nobody else is waiting (others join under this lock).
        if Arc::strong_count(&self.gate) == 2 {
            filling.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_with_the_generation_and_the_ttl() {
        let c = TtlCache::new(Duration::from_millis(50), 2);
        c.put("a".to_owned(), 1, 10);
        assert_eq!(c.get("a", 1), Some(10));
        assert_eq!(c.get("a", 2), None, "a write happened since");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get("a", 1), None, "too old");
        c.put("a".to_owned(), 1, 1);
        c.put("b".to_owned(), 1, 2);
        c.put("c".to_owned(), 1, 3);
        assert_eq!(c.get("a", 1), None, "cleared at capacity");
        assert_eq!(c.get("c", 1), Some(3));
        let off = TtlCache::new(Duration::ZERO, 2);
        off.put("a".to_owned(), 1, 1);
        assert_eq!(off.get("a", 1), None);
    }

    /// Fifty callers missing one key at once read it once; a key not found is read by each.
    #[tokio::test]
    async fn callers_missing_one_key_at_once_read_it_once() {
        let cache = Arc::new(TtlCache::new(Duration::from_secs(60), 10));
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let callers = (0..50).map(|_| {
            let (cache, reads) = (cache.clone(), reads.clone());
            tokio::spawn(async move {
                cache
                    .get_or_fill(
                        "k".to_owned(),
                        || 7,
                        || async {
                            reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, ()>(Some(42))
                        },
                    )
                    .await
            })
        });
        for caller in futures_util::future::join_all(callers).await {
            assert_eq!(caller.unwrap(), Ok(Some(42)));
        }
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(cache.filling.lock().unwrap().is_empty(), "the gate is gone");
        // Another generation reads again; a value not found is read by every caller.
        assert_eq!(
            cache
                .get_or_fill("k".to_owned(), || 8, || async { Ok::<_, ()>(Some(43)) })
                .await,
            Ok(Some(43))
        );
        for _ in 0..2 {
            let missing = cache
                .get_or_fill(
                    "gone".to_owned(),
                    || 8,
                    || async {
                        reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        Ok::<Option<i32>, ()>(None)
                    },
                )
                .await;
            assert_eq!(missing, Ok(None));
        }
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
