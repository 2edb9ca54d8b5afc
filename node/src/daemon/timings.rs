//! Timings of this validator's own blocks — how long building a proposal took, and how
//! long from proposal to commit — for `GET /v1/validator` and `nexus bench consensus`.

use std::collections::HashMap;
use std::time::Instant;

use nexus_api::stats::{Series, KEPT};
use nexus_consensus::BlockHash;

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
