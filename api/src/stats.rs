//! Latency samples the API reports: a series of recent samples and its median and 99th
//! percentile.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Samples kept per series.
pub const KEPT: usize = 4096;

/// The most recent samples of one series, in milliseconds, and how many were ever taken.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Series {
    /// Most recent last.
    pub recent: VecDeque<f64>,
    /// Samples ever taken (the bench reads the ones after a count it saw before).
    pub total: u64,
}

/// Median, 99th percentile and count of a set of samples.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Summary {
    /// The median.
    pub p50: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// Samples summarized.
    pub count: usize,
}

impl Series {
    /// Adds a sample, forgetting the oldest beyond [`KEPT`].
    pub fn push(&mut self, ms: f64) {
        self.recent.push_back(ms);
        self.total += 1;
        while self.recent.len() > KEPT {
            self.recent.pop_front();
        }
    }

    /// p50 and p99 of the samples kept.
    pub fn summary(&self) -> Option<Summary> {
        summarize(self.recent.iter().copied().collect())
    }
}

/// p50 and p99 of `samples` (nearest rank); `None` when empty.
pub fn summarize(mut samples: Vec<f64>) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Some(Summary {
        p50: at(0.5),
        p99: at(0.99),
        count: samples.len(),
    })
}
