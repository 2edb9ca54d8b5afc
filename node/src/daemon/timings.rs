//! Timings of this validator's own blocks — how long building a proposal took, and how
//! long from proposal to commit — for `GET /v1/validator` and `nexus bench consensus`.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use nexus_consensus::BlockHash;
use serde::{Deserialize, Serialize};

/// Samples kept per series.
const KEPT: usize = 4096;

/// The most recent samples of one series, in milliseconds, and how many were ever taken.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Series {
    /// Most recent last.
    pub(crate) recent: VecDeque<f64>,
    /// Samples ever taken (the bench reads the ones after a count it saw before).
    pub(crate) total: u64,
}

/// Median, 99th percentile and count of a set of samples.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) count: usize,
}

impl Series {
    fn push(&mut self, ms: f64) {
        self.recent.push_back(ms);
        self.total += 1;
        while self.recent.len() > KEPT {
            self.recent.pop_front();
        }
    }

    /// p50 and p99 of the samples kept.
    pub(crate) fn summary(&self) -> Option<Summary> {
        summarize(self.recent.iter().copied().collect())
    }
}

/// p50 and p99 of `samples` (nearest rank); `None` when empty.
pub(crate) fn summarize(mut samples: Vec<f64>) -> Option<Summary> {
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

/// This validator's block timings.
#[derive(Default)]
pub(crate) struct Timings {
    proposed: HashMap<BlockHash, Instant>,
    /// From sending a proposal to appending it final.
    pub(crate) commit: Series,
    /// Building a proposal without data.
    pub(crate) build: Series,
    /// Building a proposal that carries a das blob.
    pub(crate) build_with_data: Series,
}

impl Timings {
    /// Records a proposal built in `ms`.
    pub(crate) fn proposed(&mut self, block: BlockHash, ms: f64, with_data: bool) {
        if self.proposed.len() >= KEPT {
            self.proposed.clear();
        }
        self.proposed.insert(block, Instant::now());
        if with_data {
            self.build_with_data.push(ms);
        } else {
            self.build.push(ms);
        }
    }

    /// Records that `block` is final (a commit time if this node proposed it).
    pub(crate) fn committed(&mut self, block: &BlockHash) {
        if let Some(at) = self.proposed.remove(block) {
            self.commit.push(at.elapsed().as_secs_f64() * 1000.0);
        }
    }
}
