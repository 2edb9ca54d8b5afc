//! Freeing what an expired blob held: its copy, its shards, and the custody cells of its
//! block once no `das` blob of that block is stored any more.

use super::{Store, StoreError};
use crate::blob::BlobId;
use crate::block::Height;
use crate::ledger::PolicySpec;

/// What [`Store::release_expired`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Local copies deleted: the blob itself and, for an `erasure` blob, its shards.
    pub copies: usize,
    /// The block whose custody cells were dropped, if any.
    pub cells_of: Option<Height>,
}

impl Store {
    /// Deletes what this store holds for `id`, a blob the ledger at the tip no longer
    /// stores: its copy, the shards of an `erasure` blob, and for a `das` blob the custody
    /// cells of its block when that block carries no stored `das` blob any more. A blob
    /// (or shard) the ledger still stores is kept, whatever its name. Idempotent.
    pub fn release_expired(&self, id: &BlobId) -> Result<Released, StoreError> {
        let mut released = Released::default();
        let (Some(tip), Some((height, _, reg))) = (self.tip(), self.registration(id)?) else {
            return Ok(released);
        };
        let live = |b: &BlobId| tip.ledger.blob(b).is_some();
        if live(id) {
            return Ok(released);
        }
        let mut copies = vec![*id];
        if let PolicySpec::Erasure { shards, .. } = &reg.policy {
            copies.extend(shards);
        }
        for copy in copies.iter().filter(|c| !live(c)) {
            if self.delete_blob(copy)? {
                released.copies += 1;
            }
        }
        if reg.policy.is_das() && self.das_blobs_expired(height)? {
            self.drop_cells(height)?;
            released.cells_of = Some(height);
        }
        Ok(released)
    }

    /// Whether the ledger at the tip stores blob `id` (registered and not expired).
    pub fn ledger_stores(&self, id: &BlobId) -> bool {
        self.tip().is_some_and(|t| t.ledger.blob(id).is_some())
    }

    /// Whether block `height` carries `das` blobs and the ledger at the tip stores none of
    /// them any more (its cells are then no longer kept).
    pub fn das_blobs_expired(&self, height: Height) -> Result<bool, StoreError> {
        let (Some(tip), Some(block)) = (self.tip(), self.block(height)?) else {
            return Ok(false);
        };
        let mut das = block
            .registrations()
            .filter(|(_, reg)| reg.policy.is_das())
            .peekable();
        Ok(das.peek().is_some() && das.all(|(_, reg)| tip.ledger.blob(&reg.blob_id).is_none()))
    }
}
