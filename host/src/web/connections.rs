//! Open connections: how many there are (a gauge in `/metrics`), and the log line when
//! `server.max_connections` is reached (actix then stops accepting until some close).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Warn about a full cap at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The open connections of one server.
#[derive(Debug)]
pub struct Connections {
    open: AtomicUsize,
    cap: usize,
    warned: Mutex<Option<Instant>>,
}

/// Held by a connection while it is open (in its extensions): counts it out when dropped.
#[derive(Debug)]
pub struct Open(Arc<Connections>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connections {
    /// `cap`: the most connections the server keeps open at once.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            cap,
            warned: Mutex::new(None),
        })
    }

    /// How many are open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Counts a new connection in; keep what it answers with the connection.
    pub fn opened(self: &Arc<Self>) -> Open {
        let now_open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        if now_open >= self.cap {
            let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
            if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                *warned = Some(Instant::now());
                tracing::warn!(
                    open = now_open,
                    max_connections = self.cap,
                    "connection cap reached: new connections wait to be accepted until open ones close (idle ones close after server.header_timeout_ms or server.keep_alive_seconds)"
                );
            }
        }
        Open(Arc::clone(self))
    }

    /// The cap each of `workers` worker threads keeps (actix counts per worker).
    pub fn per_worker(&self, workers: usize) -> usize {
        self.cap.div_ceil(workers.max(1)).max(1)
    }
}
