//! What a validator keeps for consensus: its recovery state (persisted with fsync before
//! any vote or timeout leaves the node) and the validated blocks not yet final (so that a
//! certified block survives a restart of every validator).

use super::{decode, encode, Store, StoreError};
use crate::block::{Block, BlockHash};
use nexus_consensus::RecoveryState;

const CONSENSUS_KEY: &[u8] = b"consensus";

impl Store {
    /// The recovery state saved last, if any.
    pub fn consensus_state(&self) -> Result<Option<RecoveryState>, StoreError> {
        self.ks
            .meta
            .get(CONSENSUS_KEY)?
            .map(|v| decode("meta", &v))
            .transpose()
    }

    /// Saves the recovery state and syncs it (with every write before it, pending blocks
    /// included) to disk before returning.
    pub fn save_consensus_state(&self, state: &RecoveryState) -> Result<(), StoreError> {
        self.ks.meta.insert(CONSENSUS_KEY, encode(state))?;
        self.persist()
    }

    /// Keeps a validated block that is not final yet; made durable by the next
    /// [`Store::save_consensus_state`] (a vote for it is always preceded by one).
    pub fn put_pending(&self, block: &Block) -> Result<(), StoreError> {
        self.ks
            .pending
            .insert(block.header.hash().0, encode(block))?;
        Ok(())
    }

    /// The pending blocks kept, lowest height first.
    pub fn pending_blocks(&self) -> Result<Vec<Block>, StoreError> {
        let mut blocks = Vec::new();
        for item in self.ks.pending.iter() {
            let (_, v) = item.into_inner()?;
            blocks.push(decode::<Block>("pending", &v)?);
        }
        blocks.sort_by_key(|b| b.header.height);
        Ok(blocks)
    }

    /// Forgets the pending blocks `hashes` (final now, or abandoned).
    pub fn forget_pending(&self, hashes: &[BlockHash]) -> Result<(), StoreError> {
        if hashes.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for h in hashes {
            batch.remove(&self.ks.pending, h.0);
        }
        batch.commit()?;
        Ok(())
    }
}
