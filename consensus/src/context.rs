//! What a verifier trusts: the chain spec (its digest, signing domain and committee) and
//! the genesis block. Certificates, proposals and finality proofs verify against it.

use crate::committee::Committee;
use crate::ids::BlockHash;
use crate::spec::{ChainSpec, ChainTag};
use nexus_das::merkle::Digest;

/// The trusted starting point of verification.
#[derive(Debug, Clone)]
pub struct Context {
    spec: ChainSpec,
    spec_digest: Digest,
    tag: ChainTag,
    genesis: BlockHash,
}

impl Context {
    /// A context for the chain whose spec is `spec` and whose genesis block is `genesis`.
    pub fn new(spec: ChainSpec, genesis: BlockHash) -> Context {
        Context {
            spec_digest: spec.digest(),
            tag: spec.tag(),
            spec,
            genesis,
        }
    }

    /// The chain spec.
    pub fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    /// Its digest, which every header of this spec carries.
    pub fn spec_digest(&self) -> Digest {
        self.spec_digest
    }

    /// The committee.
    pub fn committee(&self) -> &Committee {
        &self.spec.committee
    }

    /// The signing domain.
    pub fn tag(&self) -> &ChainTag {
        &self.tag
    }

    /// The genesis block's hash.
    pub fn genesis(&self) -> BlockHash {
        self.genesis
    }
}
