//! Finality proofs: why a light client may treat a header as final.
//!
//! A QC whose vote commits block B proves B final. A block committed along with a
//! descendant (after rounds without direct commits) is proven by the headers that link it
//! to that descendant, then the descendant's QC. Verifying needs only the committee.

use serde::{Deserialize, Serialize};

use crate::certificate::{CertificateError, QuorumCertificate};
use crate::context::Context;
use crate::header::Header;
use crate::ids::BlockHash;

/// Most headers a proof may walk through before its QC.
pub const MAX_PROOF_HEADERS: usize = 64;

/// Evidence that a header is final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalityProof {
    /// Headers from the block's child to the block the QC commits (empty when the QC
    /// commits the block itself), each the parent of the next.
    pub descendants: Vec<Header>,
    /// A QC whose vote commits the last of them.
    pub qc: QuorumCertificate,
}

/// A header with its finality proof: what light clients follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedHeader {
    /// The header.
    pub header: Header,
    /// Why it is final.
    pub proof: FinalityProof,
}

/// Why a finality proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinalityError {
    /// Too many headers to walk.
    #[error("proof walks {0} headers, at most {MAX_PROOF_HEADERS} allowed")]
    TooLong(usize),
    /// A header does not link to the one before.
    #[error("header {index} of the proof does not link to the one before")]
    BrokenLink {
        /// Position in `descendants`.
        index: usize,
    },
    /// The QC commits another block.
    #[error("the QC commits {found:?}, not {expected}")]
    WrongCommit {
        /// The block the chain leads to.
        expected: BlockHash,
        /// What the QC commits.
        found: Option<BlockHash>,
    },
    /// The QC does not verify against the committee.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
}

impl FinalityProof {
    /// Checks that `header` is final on the chain of `ctx`.
    pub fn verify(&self, header: &Header, ctx: &Context) -> Result<(), FinalityError> {
        if self.descendants.len() > MAX_PROOF_HEADERS {
            return Err(FinalityError::TooLong(self.descendants.len()));
        }
        let mut expected = header.hash();
        for (index, next) in self.descendants.iter().enumerate() {
            if next.parent != expected {
                return Err(FinalityError::BrokenLink { index });
            }
            expected = next.hash();
        }
        if self.qc.commit() != Some(expected) {
            return Err(FinalityError::WrongCommit {
                expected,
                found: self.qc.commit(),
            });
        }
        self.qc.verify(ctx)?;
        Ok(())
    }
}

impl CertifiedHeader {
    /// Checks the header's finality on the chain of `ctx`.
    pub fn verify(&self, ctx: &Context) -> Result<(), FinalityError> {
        self.proof.verify(&self.header, ctx)
    }
}
