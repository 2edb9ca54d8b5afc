//! Quorum certificates (a block certified by > 2/3 of the stake) and timeout certificates
//! (a round abandoned by > 2/3 of the stake), each one aggregate BLS signature plus a
//! signer bitmap.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bitmap::SignerBitmap;
use crate::committee::Committee;
use crate::context::Context;
use crate::ids::{BlockHash, Epoch, Round};
use crate::keys::{self, Signature, ValidKey};
use crate::signing;
use crate::spec::ChainTag;

/// What a vote says, and what every signer of a QC signed: a block in a round, and the
/// block this vote finalises (the parent, when the block's round directly follows the
/// parent's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VoteData {
    /// Epoch of the committee voting.
    pub epoch: Epoch,
    /// Round of the block voted for.
    pub round: Round,
    /// The block voted for.
    pub block: BlockHash,
    /// The block committed once this vote's QC forms.
    pub commit: Option<BlockHash>,
}

impl VoteData {
    /// The bytes a voter signs.
    pub(crate) fn signing_bytes(&self, chain: &ChainTag) -> Vec<u8> {
        signing::vote(
            chain,
            self.epoch,
            self.round,
            &self.block,
            self.commit.as_ref(),
        )
    }
}

/// Why a certificate does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Signed by another epoch's committee.
    #[error("certificate of epoch {found}, expected {expected}")]
    WrongEpoch {
        /// The committee's epoch.
        expected: Epoch,
        /// The certificate's.
        found: Epoch,
    },
    /// The bitmap does not fit the committee.
    #[error("signer bitmap does not fit a committee of {0}")]
    BadBitmap(usize),
    /// The signers hold two thirds of the stake or less.
    #[error("signers hold {stake} of {total} stake, not more than two thirds")]
    NotQuorum {
        /// Stake of the signers.
        stake: u64,
        /// The committee's total.
        total: u64,
    },
    /// The aggregate signature does not verify.
    #[error("aggregate signature does not verify")]
    BadSignature,
    /// A round-0 certificate that is not the genesis one.
    #[error("round 0 certifies only the genesis block")]
    NotGenesis,
    /// The parts of a timeout certificate disagree.
    #[error("inconsistent timeout certificate: {0}")]
    Inconsistent(&'static str),
}

/// Checks the signer set: right epoch, fitting bitmap, quorum of stake; returns the keys.
fn signer_keys<'a>(
    committee: &'a Committee,
    epoch: Epoch,
    signers: &SignerBitmap,
) -> Result<Vec<&'a ValidKey>, CertificateError> {
    if epoch != committee.epoch() {
        return Err(CertificateError::WrongEpoch {
            expected: committee.epoch(),
            found: epoch,
        });
    }
    if !signers.fits(committee.len()) {
        return Err(CertificateError::BadBitmap(committee.len()));
    }
    let stake = signers.indices().map(|i| committee.stake(i)).sum();
    if !committee.is_quorum(stake) {
        return Err(CertificateError::NotQuorum {
            stake,
            total: committee.total_stake(),
        });
    }
    signers
        .indices()
        .map(|i| {
            committee
                .valid_key(i)
                .ok_or(CertificateError::BadBitmap(committee.len()))
        })
        .collect()
}

/// More than two thirds of the committee's stake voted for `vote.block` in `vote.round`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumCertificate {
    /// What every signer signed.
    pub vote: VoteData,
    /// Who signed.
    pub signers: SignerBitmap,
    /// Their aggregate signature.
    pub signature: Signature,
}

impl QuorumCertificate {
    /// The certificate of the genesis block, valid by definition (round 0, no signers).
    pub fn genesis(genesis: BlockHash) -> QuorumCertificate {
        QuorumCertificate {
            vote: VoteData {
                epoch: Epoch(0),
                round: Round(0),
                block: genesis,
                commit: None,
            },
            signers: SignerBitmap::default(),
            signature: Signature([0; 96]),
        }
    }

    /// The round certified.
    pub fn round(&self) -> Round {
        self.vote.round
    }

    /// The block certified.
    pub fn block(&self) -> BlockHash {
        self.vote.block
    }

    /// The block this certificate finalises, if any.
    pub fn commit(&self) -> Option<BlockHash> {
        self.vote.commit
    }

    /// Combines `signatures` (committee index, signature of `vote`) into a certificate;
    /// `None` if a signature is malformed. The caller checked each one and the quorum.
    pub(crate) fn aggregate(
        committee: &Committee,
        vote: VoteData,
        signatures: &[(usize, Signature)],
    ) -> Option<QuorumCertificate> {
        Some(QuorumCertificate {
            vote,
            signers: SignerBitmap::from_indices(committee.len(), signatures.iter().map(|s| s.0)),
            signature: keys::aggregate(signatures.iter().map(|s| &s.1))?,
        })
    }

    /// Checks the certificate against the trusted committee and chain.
    pub fn verify(&self, ctx: &Context) -> Result<(), CertificateError> {
        if self.vote.round == Round(0) {
            return if *self == QuorumCertificate::genesis(ctx.genesis()) {
                Ok(())
            } else {
                Err(CertificateError::NotGenesis)
            };
        }
        let keys = signer_keys(ctx.committee(), self.vote.epoch, &self.signers)?;
        let message = self.vote.signing_bytes(ctx.tag());
        if keys::verify_aggregate_same(&keys, &message, &self.signature) {
            Ok(())
        } else {
            Err(CertificateError::BadSignature)
        }
    }
}

/// More than two thirds of the committee's stake gave up on `round`; each signer signed
/// its own highest certified round, and `high_qc` is the highest of them, which the next
/// leader must extend (or something higher).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutCertificate {
    /// Epoch of the committee.
    pub epoch: Epoch,
    /// The round abandoned.
    pub round: Round,
    /// The highest QC among the signers'.
    pub high_qc: QuorumCertificate,
    /// Who signed.
    pub signers: SignerBitmap,
    /// Each signer's highest certified round, in signer order.
    pub high_qc_rounds: Vec<Round>,
    /// Aggregate of each signer's timeout signature.
    pub signature: Signature,
}

impl TimeoutCertificate {
    /// Combines timeouts (committee index, highest QC round, signature) of `round` into a
    /// certificate extending `high_qc`; `None` if a signature is malformed.
    pub(crate) fn aggregate(
        committee: &Committee,
        epoch: Epoch,
        round: Round,
        high_qc: QuorumCertificate,
        timeouts: &[(usize, Round, Signature)],
    ) -> Option<TimeoutCertificate> {
        let mut sorted: Vec<&(usize, Round, Signature)> = timeouts.iter().collect();
        sorted.sort_by_key(|t| t.0);
        Some(TimeoutCertificate {
            epoch,
            round,
            high_qc,
            signers: SignerBitmap::from_indices(committee.len(), sorted.iter().map(|t| t.0)),
            high_qc_rounds: sorted.iter().map(|t| t.1).collect(),
            signature: keys::aggregate(sorted.iter().map(|t| &t.2))?,
        })
    }

    /// The highest certified round any signer reported.
    pub fn highest_qc_round(&self) -> Round {
        self.high_qc.round()
    }

    /// Checks the certificate (and the QC it carries) against the trusted committee.
    pub fn verify(&self, ctx: &Context) -> Result<(), CertificateError> {
        let keys = signer_keys(ctx.committee(), self.epoch, &self.signers)?;
        if keys.len() != self.high_qc_rounds.len() {
            return Err(CertificateError::Inconsistent("one round per signer"));
        }
        if self.high_qc_rounds.iter().max() != Some(&self.high_qc.round()) {
            return Err(CertificateError::Inconsistent(
                "the QC carried is not the highest reported",
            ));
        }
        if self.high_qc.round() >= self.round {
            return Err(CertificateError::Inconsistent(
                "a QC at or above the round timed out",
            ));
        }
        let mut groups: BTreeMap<Round, Vec<&ValidKey>> = BTreeMap::new();
        for (key, round) in keys.into_iter().zip(&self.high_qc_rounds) {
            groups.entry(*round).or_default().push(key);
        }
        let groups: Vec<(Vec<&ValidKey>, Vec<u8>)> = groups
            .into_iter()
            .map(|(hqc, keys)| {
                (
                    keys,
                    signing::timeout(ctx.tag(), self.epoch, self.round, hqc),
                )
            })
            .collect();
        if !keys::verify_aggregate_grouped(&groups, &self.signature) {
            return Err(CertificateError::BadSignature);
        }
        self.high_qc.verify(ctx)
    }
}
