//! `/nexus/blocks/1`: fetch a range of consecutive blocks (catch-up and back-fill).

use libp2p::StreamProtocol;
use nexus_storage::{Block, Height};
use serde::{Deserialize, Serialize};

use crate::codec::Caps;

/// Protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/nexus/blocks/1");

/// Most blocks one response carries.
pub const MAX_BLOCKS_PER_RESPONSE: u16 = 32;

/// Size caps: a full block is ~250 KiB, so a response of 32 fits in 9 MiB.
pub const CAPS: Caps = Caps {
    request: 64,
    response: 9 * 1024 * 1024,
};

/// Asks for up to `max` blocks starting at `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRequest {
    /// First height wanted.
    pub from: Height,
    /// Most blocks wanted (the server also caps at [`MAX_BLOCKS_PER_RESPONSE`]).
    pub max: u16,
}

/// Consecutive blocks from the requested height (empty if the peer has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockResponse {
    /// The blocks, unverified.
    pub blocks: Vec<Block>,
}
