//! Safety rules of two-chain HotStuff-2 (Jolteon; Aptos's `safety_rules_2chain`): the
//! only code that signs a vote or a timeout, and only after updating the [`SafetyData`]
//! that the host must persist before the signature leaves the node.
//!
//! - Vote for a block of round r only if r is above the last round voted or timed out in,
//!   and the block extends the QC of round r-1, or a TC of round r-1 and a QC at least as
//!   high as the highest one that TC reports.
//! - Time out round r only if r follows the highest QC (or TC) held, that QC is at least
//!   the preferred (locked) round, and no higher round was voted in; then never vote in r.
//! - A vote for a block whose parent is of the previous round commits the parent.
//! - Propose at most once per round, and not in a round already voted or timed out in
//!   (not needed for safety, but a restarted leader must not equivocate).

use serde::{Deserialize, Serialize};

use crate::certificate::{QuorumCertificate, TimeoutCertificate, VoteData};
use crate::header::Header;
use crate::ids::{Epoch, Round};
use crate::keys::SigningKey;
use crate::message::{Proposal, Timeout, Vote};
use crate::spec::ChainTag;

/// What a validator must remember across restarts so that it never signs two
/// conflicting messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SafetyData {
    /// Epoch these rounds belong to.
    pub epoch: Epoch,
    /// Highest round voted or timed out in: no vote at or below it again.
    pub last_voted_round: Round,
    /// Highest QC round seen in a proposal voted for or a timeout signed (the lock).
    pub preferred_round: Round,
    /// Highest round timed out.
    pub highest_timeout_round: Round,
    /// The last vote, re-sent as is if asked again for its round.
    pub last_vote: Option<Vote>,
    /// Highest round this validator proposed in: never a second proposal there.
    #[serde(default)]
    pub last_proposed_round: Round,
}

/// Why the safety rules refused to sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafetyError {
    /// Another epoch.
    #[error("epoch {found} is not the current epoch {expected}")]
    WrongEpoch {
        /// Current epoch.
        expected: Epoch,
        /// Asked for.
        found: Epoch,
    },
    /// Already voted or timed out at or beyond this round.
    #[error("round {round} is not above the last voted round {last_voted}")]
    RoundTooLow {
        /// Asked for.
        round: Round,
        /// Last voted.
        last_voted: Round,
    },
    /// Already voted for another block in this round.
    #[error("already voted for another block in round {0}")]
    AlreadyVoted(Round),
    /// The block does not extend the previous round's QC, nor a TC's highest QC.
    #[error("voting for round {round} on a QC of round {qc_round} is not safe")]
    UnsafeVote {
        /// The block's round.
        round: Round,
        /// Its parent's QC round.
        qc_round: Round,
    },
    /// The timeout does not follow the certificates held, or falls below the lock.
    #[error("timing out round {round} with a QC of round {qc_round} is not safe")]
    UnsafeTimeout {
        /// The round.
        round: Round,
        /// The QC offered.
        qc_round: Round,
    },
}

/// The signer of votes and timeouts, and the state that keeps it honest.
pub struct SafetyRules {
    key: SigningKey,
    chain: ChainTag,
    data: SafetyData,
}

impl SafetyRules {
    /// Rules for `key` on chain `chain`, resuming from persisted `data`.
    pub fn new(key: SigningKey, chain: ChainTag, data: SafetyData) -> SafetyRules {
        SafetyRules { key, chain, data }
    }

    /// The state to persist before sending what was just signed.
    pub fn data(&self) -> &SafetyData {
        &self.data
    }

    /// The signing key (for proposals, which are not safety-critical).
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    fn check_epoch(&self, epoch: Epoch) -> Result<(), SafetyError> {
        if epoch == self.data.epoch {
            Ok(())
        } else {
            Err(SafetyError::WrongEpoch {
                expected: self.data.epoch,
                found: epoch,
            })
        }
    }

    /// Signs `header` as this validator's proposal for its round, justified by `qc` (and
    /// `tc`); refuses a round it already proposed or voted in.
    pub fn propose(
        &mut self,
        header: Header,
        qc: QuorumCertificate,
        tc: Option<TimeoutCertificate>,
    ) -> Result<Proposal, SafetyError> {
        let round = header.round;
        self.check_epoch(header.epoch)?;
        let last = self
            .data
            .last_proposed_round
            .max(self.data.last_voted_round);
        if round <= last {
            return Err(SafetyError::RoundTooLow {
                round,
                last_voted: last,
            });
        }
        self.data.last_proposed_round = round;
        Ok(Proposal::sign(&self.key, &self.chain, header, qc, tc))
    }

    /// Signs a vote for `proposal` (whose certificates were verified), or explains why not.
    pub fn vote(&mut self, proposal: &Proposal) -> Result<Vote, SafetyError> {
        let round = proposal.header.round;
        self.check_epoch(proposal.header.epoch)?;
        let block = proposal.block();
        if let Some(last) = &self.data.last_vote {
            if last.data.round == round {
                return if last.data.block == block {
                    Ok(last.clone())
                } else {
                    Err(SafetyError::AlreadyVoted(round))
                };
            }
        }
        if round <= self.data.last_voted_round {
            return Err(SafetyError::RoundTooLow {
                round,
                last_voted: self.data.last_voted_round,
            });
        }
        let qc_round = proposal.qc.round();
        let follows_qc = qc_round.next() == Some(round);
        let follows_tc = proposal
            .tc
            .as_ref()
            .is_some_and(|tc| tc.round.next() == Some(round) && qc_round >= tc.highest_qc_round());
        if !(follows_qc || follows_tc) {
            return Err(SafetyError::UnsafeVote { round, qc_round });
        }
        self.data.last_voted_round = round;
        self.data.preferred_round = self.data.preferred_round.max(qc_round);
        let vote = Vote::sign(
            &self.key,
            &self.chain,
            VoteData {
                epoch: proposal.header.epoch,
                round,
                block,
                commit: follows_qc.then_some(proposal.header.parent),
            },
        );
        self.data.last_vote = Some(vote.clone());
        Ok(vote)
    }

    /// Signs a timeout of `round` carrying `high_qc` (and `last_tc`), or explains why not.
    pub fn timeout(
        &mut self,
        epoch: Epoch,
        round: Round,
        high_qc: &QuorumCertificate,
        last_tc: Option<&TimeoutCertificate>,
    ) -> Result<Timeout, SafetyError> {
        self.check_epoch(epoch)?;
        let qc_round = high_qc.round();
        let follows = qc_round.next() == Some(round)
            || last_tc.is_some_and(|tc| tc.round.next() == Some(round));
        if !follows || qc_round < self.data.preferred_round {
            return Err(SafetyError::UnsafeTimeout { round, qc_round });
        }
        if round < self.data.last_voted_round {
            return Err(SafetyError::RoundTooLow {
                round,
                last_voted: self.data.last_voted_round,
            });
        }
        self.data.last_voted_round = round;
        self.data.highest_timeout_round = self.data.highest_timeout_round.max(round);
        self.data.preferred_round = self.data.preferred_round.max(qc_round);
        Ok(Timeout::sign(
            &self.key,
            &self.chain,
            epoch,
            round,
            high_qc.clone(),
            last_tc.cloned(),
        ))
    }
}
