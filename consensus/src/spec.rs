//! The chain spec: what a light client must know besides the genesis hash to check
//! finality and sample — the chain id (the signing domain), the committee, and the
//! custody layout of block data. Every header carries the spec's digest.

use serde::{Deserialize, Serialize};

use crate::committee::Committee;
use nexus_das::merkle::Digest;

/// Longest chain id accepted.
pub const MAX_CHAIN_ID_LEN: usize = 64;

/// The 32 bytes that put every signature — consensus messages and transactions — in one
/// chain's domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChainTag(pub(crate) [u8; 32]);

impl ChainTag {
    /// The tag of chain `chain_id`.
    pub fn of(chain_id: &str) -> ChainTag {
        ChainTag(Digest::of(&[b"nexus/chain/v1", chain_id.as_bytes()]).0)
    }

    /// The tag's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Network-wide parameters that consensus and light clients need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSpec {
    /// Name of the chain; signatures made for one chain never verify on another.
    pub chain_id: String,
    /// The validators of the first epoch.
    pub committee: Committee,
    /// Custody groups the 128 cell columns are split into (a divisor of 128).
    #[serde(default = "default_custody_groups")]
    pub custody_groups: u16,
    /// Storage nodes that keep each custody group: every cell is kept by this many.
    #[serde(default = "default_custodians_per_group")]
    pub custodians_per_group: u16,
}

/// 32 groups of 4 columns: a node keeps whole groups, so this is its share's granularity.
fn default_custody_groups() -> u16 {
    32
}

/// Two: losing any one node loses no cell.
fn default_custodians_per_group() -> u16 {
    2
}

/// Why a chain spec is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The chain id is empty or too long.
    #[error("chain id must have 1 to {MAX_CHAIN_ID_LEN} bytes")]
    ChainId,
    /// The custody layout is impossible.
    #[error("custody_groups must divide 128 and custodians_per_group be positive")]
    Custody,
}

impl ChainSpec {
    /// The spec of chain `chain_id` with `committee` and the default custody layout.
    pub fn new(chain_id: impl Into<String>, committee: Committee) -> ChainSpec {
        ChainSpec {
            chain_id: chain_id.into(),
            committee,
            custody_groups: default_custody_groups(),
            custodians_per_group: default_custodians_per_group(),
        }
    }

    /// Checks the parts the committee's own checks do not cover.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.chain_id.is_empty() || self.chain_id.len() > MAX_CHAIN_ID_LEN {
            return Err(SpecError::ChainId);
        }
        let g = self.custody_groups;
        if g == 0 || 128 % g != 0 || self.custodians_per_group == 0 {
            return Err(SpecError::Custody);
        }
        Ok(())
    }

    /// The digest headers carry.
    pub fn digest(&self) -> Digest {
        // Encoding plain data into a Vec cannot fail.
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        Digest::of(&[b"nexus/spec/v1", &bytes])
    }

    /// The signing domain of this chain.
    pub fn tag(&self) -> ChainTag {
        ChainTag::of(&self.chain_id)
    }
}
