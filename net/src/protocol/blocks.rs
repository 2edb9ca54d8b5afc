//! `/nexus/blocks/1`: fetch final blocks by height (catch-up), or a block by hash (a
//! validator missing the parent of a proposal). Blocks travel encoded: only full nodes,
//! which hold the ledger, decode and check them.

use libp2p::StreamProtocol;
use nexus_consensus::{BlockHash, Height};
use serde::{Deserialize, Serialize};

use crate::codec::{Caps, Encoded};

/// Protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/nexus/blocks/1");

/// Most blocks one response carries.
pub const MAX_BLOCKS_PER_RESPONSE: u16 = 32;

/// Largest encoded block accepted (and gossiped in a proposal).
pub const MAX_BLOCK_BYTES: usize = 1024 * 1024;

/// Size caps: 32 blocks of up to 1 MiB would be too much for one answer, so servers stop
/// adding blocks once the response would pass 9 MiB.
pub const CAPS: Caps = Caps {
    request: 64,
    response: 9 * 1024 * 1024,
};

/// What is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockRequest {
    /// Up to `max` final blocks (each with its finality proof) from height `from`.
    Range {
        /// First height wanted.
        from: Height,
        /// Most blocks wanted (the server also caps at [`MAX_BLOCKS_PER_RESPONSE`]).
        max: u16,
    },
    /// The block with this hash, final or only validated (for the parent of a proposal).
    ByHash(BlockHash),
}

/// The blocks found, encoded (empty if the peer has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockResponse {
    /// The blocks, unverified.
    pub blocks: Vec<Encoded>,
}
