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

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Entries a credential cache holds before it starts over.
pub(crate) const CAPACITY: usize = 100_000;

#[derive(Debug)]
pub(crate) struct TtlCache<K, V> {
    map: RwLock<HashMap<K, (u64, Instant, V)>>,
    ttl: Duration,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            ttl,
            capacity,
        }
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
}
