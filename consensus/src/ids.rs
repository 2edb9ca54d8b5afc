//! Positions in the chain and in the protocol: heights, rounds, epochs and block hashes.

use serde::{Deserialize, Serialize};

use nexus_das::fixed_bytes;

fixed_bytes!(
    /// Hash of a block header: what votes sign and children link to.
    BlockHash,
    32
);

impl BlockHash {
    /// The parent hash of the genesis block.
    pub const ZERO: BlockHash = BlockHash([0; 32]);
}

/// Declares a `u64` position newtype with checked successor and plain display.
macro_rules! position {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
        )]
        pub struct $name(pub u64);

        impl $name {
            /// The next one, or `None` at `u64::MAX`.
            pub fn next(self) -> Option<$name> {
                self.0.checked_add(1).map($name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

position!(
    /// Position of a block in the chain; genesis is height 0.
    Height
);

position!(
    /// A consensus round: at most one proposal, one vote per validator, and either a
    /// quorum certificate or a timeout certificate. Genesis is round 0.
    Round
);

position!(
    /// A committee's term: votes and certificates of one epoch never count in another.
    Epoch
);
