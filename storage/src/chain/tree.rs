//! Blocks validated but not yet final, each with the ledger state after it, hanging off
//! the last committed block. Consensus certifies blocks before they are final, and a
//! leader builds on a certified block, so a node must execute on top of blocks that may
//! still be abandoned; this tree keeps those speculative states until a commit picks one
//! branch.

use std::collections::HashMap;
use std::sync::Arc;

use crate::block::{Block, BlockHash, Header};
use crate::chain::Transition;
use crate::ledger::LedgerState;

/// Most pending blocks kept (a byzantine leader cannot grow the tree past it).
pub const MAX_PENDING: usize = 512;

/// Why the tree refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// The block is neither the root nor pending.
    #[error("block {0} is not known")]
    Unknown(BlockHash),
    /// The parent of an inserted block is neither the root nor pending.
    #[error("the parent {0} of the block is not known")]
    UnknownParent(BlockHash),
    /// The tree is full.
    #[error("{MAX_PENDING} blocks are already pending")]
    Full,
}

/// A validated block and (shared, for its children's execution) the ledger after it.
struct Pending {
    step: Arc<Transition>,
    ledger: Arc<LedgerState>,
}

/// The committed tip and the validated blocks above it.
pub struct BlockTree {
    root: Header,
    root_ledger: Arc<LedgerState>,
    pending: HashMap<BlockHash, Pending>,
}

impl BlockTree {
    /// A tree rooted at the committed block `root`, whose ledger state is `ledger`.
    pub fn new(root: Header, ledger: Arc<LedgerState>) -> BlockTree {
        BlockTree {
            root,
            root_ledger: ledger,
            pending: HashMap::new(),
        }
    }

    /// The last committed block's header.
    pub fn root(&self) -> &Header {
        &self.root
    }

    /// Number of pending blocks.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no block is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The header of `hash` and the ledger state after it, if it is the root or pending:
    /// what a child of it is executed on.
    pub fn state(&self, hash: &BlockHash) -> Option<(Header, Arc<LedgerState>)> {
        if *hash == self.root.hash() {
            return Some((self.root.clone(), self.root_ledger.clone()));
        }
        self.pending
            .get(hash)
            .map(|p| (p.step.block.header.clone(), p.ledger.clone()))
    }

    /// The height of the highest pending block (the root's if none is pending).
    pub fn highest(&self) -> crate::block::Height {
        self.pending
            .values()
            .map(|p| p.step.block.header.height)
            .max()
            .unwrap_or(self.root.height)
            .max(self.root.height)
    }

    /// Whether `hash` is the root or pending.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        *hash == self.root.hash() || self.pending.contains_key(hash)
    }

    /// A pending block.
    pub fn block(&self, hash: &BlockHash) -> Option<&Block> {
        self.pending.get(hash).map(|p| &*p.step.block)
    }

    /// Adds a block validated on top of a block of the tree.
    pub fn insert(&mut self, step: Transition) -> Result<(), TreeError> {
        let hash = step.block.header.hash();
        if self.pending.contains_key(&hash) {
            return Ok(());
        }
        let parent = step.block.header.parent;
        if !self.contains(&parent) {
            return Err(TreeError::UnknownParent(parent));
        }
        if self.pending.len() >= MAX_PENDING {
            return Err(TreeError::Full);
        }
        let ledger = Arc::new(step.ledger.clone());
        self.pending.insert(
            hash,
            Pending {
                step: Arc::new(step),
                ledger,
            },
        );
        Ok(())
    }

    /// The pending blocks from the root's child up to `hash`, oldest first: what becomes
    /// final when `hash` does.
    pub fn path_to(&self, hash: &BlockHash) -> Result<Vec<Arc<Transition>>, TreeError> {
        let root = self.root.hash();
        let mut path = Vec::new();
        let mut cursor = *hash;
        while cursor != root {
            let pending = self
                .pending
                .get(&cursor)
                .ok_or(TreeError::Unknown(cursor))?;
            cursor = pending.step.block.header.parent;
            path.push(pending.step.clone());
        }
        path.reverse();
        Ok(path)
    }

    /// Makes `header` (with `ledger`) the new root once it is committed, keeping only the
    /// pending blocks that descend from it; returns the hashes of those dropped (the
    /// committed ones included). A root never moves back: a header at or below the
    /// current root's height is ignored.
    pub fn advance_root(&mut self, header: Header, ledger: Arc<LedgerState>) -> Vec<BlockHash> {
        if header.height <= self.root.height {
            return Vec::new();
        }
        let root = header.hash();
        let height = header.height;
        self.root = header;
        self.root_ledger = ledger;
        let mut keep: HashMap<BlockHash, bool> = HashMap::new();
        let hashes: Vec<BlockHash> = self.pending.keys().copied().collect();
        for hash in hashes {
            let mut trail = Vec::new();
            let mut cursor = hash;
            let descends = loop {
                if cursor == root {
                    break true;
                }
                if let Some(known) = keep.get(&cursor) {
                    break *known;
                }
                match self.pending.get(&cursor) {
                    Some(p) if p.step.block.header.height > height => {
                        trail.push(cursor);
                        cursor = p.step.block.header.parent;
                    }
                    _ => break false,
                }
            };
            for h in trail {
                keep.insert(h, descends);
            }
        }
        let dropped: Vec<BlockHash> = self
            .pending
            .keys()
            .filter(|h| !keep.get(h).copied().unwrap_or(false))
            .copied()
            .collect();
        for h in &dropped {
            self.pending.remove(h);
        }
        dropped
    }
}
