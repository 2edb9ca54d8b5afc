//! `/nexus/cells/1`: fetch cells of a block's encoded payload, each with its KZG proof and
//! Merkle path (a [`Sample`]); used by custodians filling their custody and by samplers.

use libp2p::StreamProtocol;
use nexus_consensus::Height;
use nexus_das::params::BYTES_PER_CELL;
use nexus_das::{Coord, DataRoot, Sample};
use serde::{Deserialize, Serialize};

use crate::codec::Caps;

/// Protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/nexus/cells/1");

/// Most cells one request may ask for.
pub const MAX_CELLS_PER_REQUEST: usize = 64;

/// Size caps: a sample is a cell plus two points and a path of at most 16 levels.
pub const CAPS: Caps = Caps {
    request: 96 + 8 * MAX_CELLS_PER_REQUEST,
    response: MAX_CELLS_PER_REQUEST * (BYTES_PER_CELL + 1024),
};

/// Asks for the cells at `coords` of the grid committed by `root` (the payload of block
/// `height`, which may not be final yet, or a `das` blob not yet in a block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellsRequest {
    /// The block whose payload it is (for cells kept in custody).
    pub height: Height,
    /// The grid's DataRoot.
    pub root: DataRoot,
    /// The cells wanted (at most [`MAX_CELLS_PER_REQUEST`]).
    pub coords: Vec<Coord>,
}

/// One entry per requested coordinate, in order: the sample, or `None` if not held. The
/// receiver verifies every sample against the block's DataRoot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellsResponse {
    /// The samples.
    pub samples: Vec<Option<Sample>>,
}
