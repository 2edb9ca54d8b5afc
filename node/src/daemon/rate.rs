//! A pacing limiter for replication bandwidth.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Spaces out transfers so that on average at most `bytes_per_sec` pass.
pub(crate) struct RateLimit {
    bytes_per_sec: f64,
    next_free: Mutex<Instant>,
}

impl RateLimit {
    /// A limiter for `bytes_per_sec` (must be positive).
    pub(crate) fn new(bytes_per_sec: u64) -> RateLimit {
        RateLimit {
            bytes_per_sec: bytes_per_sec.max(1) as f64,
            next_free: Mutex::new(Instant::now()),
        }
    }

    /// Waits until `bytes` more may be transferred.
    pub(crate) async fn acquire(&self, bytes: u64) {
        let wait = {
            let mut next = self.next_free.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec);
            start - now
        };
        tokio::time::sleep(wait).await;
    }
}
