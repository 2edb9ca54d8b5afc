//! Counting votes and timeouts by stake, per round, forming certificates at > 2/3 and
//! keeping conflicting messages as evidence.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::certificate::{QuorumCertificate, TimeoutCertificate, VoteData};
use crate::committee::Committee;
use crate::ids::{BlockHash, Epoch, Round};
use crate::keys::{PublicKey, Signature};
use crate::message::{Timeout, Vote};

/// Proof that a validator signed two conflicting messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    /// Two votes of one validator in one round, for different blocks (or commits).
    DoubleVote {
        /// The first vote seen.
        first: Box<Vote>,
        /// The conflicting one.
        second: Box<Vote>,
    },
    /// Two proposals of one leader in one round.
    DoubleProposal {
        /// The leader.
        leader: PublicKey,
        /// The round.
        round: Round,
        /// The first block seen.
        first: BlockHash,
        /// The conflicting one.
        second: BlockHash,
    },
}

/// What adding a vote did.
#[derive(Debug)]
pub(crate) enum VoteOutcome {
    /// Counted, no certificate yet (or already formed).
    Counted,
    /// The same vote again.
    Duplicate,
    /// Conflicts with this validator's earlier vote in the round (not counted).
    Conflict(Box<Evidence>),
    /// This vote completed a quorum.
    Certified(QuorumCertificate),
}

#[derive(Default)]
struct Tally {
    stake: u64,
    signatures: Vec<(usize, Signature)>,
    certified: bool,
}

#[derive(Default)]
struct RoundVotes {
    by_author: HashMap<usize, Vote>,
    tallies: HashMap<VoteData, Tally>,
}

/// Votes of recent rounds.
#[derive(Default)]
pub(crate) struct VoteCollector {
    rounds: BTreeMap<Round, RoundVotes>,
}

impl VoteCollector {
    /// Adds the verified vote of validator `index`.
    pub(crate) fn add(&mut self, committee: &Committee, index: usize, vote: &Vote) -> VoteOutcome {
        let round = self.rounds.entry(vote.data.round).or_default();
        if let Some(first) = round.by_author.get(&index) {
            return if first.data == vote.data {
                VoteOutcome::Duplicate
            } else {
                VoteOutcome::Conflict(Box::new(Evidence::DoubleVote {
                    first: Box::new(first.clone()),
                    second: Box::new(vote.clone()),
                }))
            };
        }
        round.by_author.insert(index, vote.clone());
        let tally = round.tallies.entry(vote.data).or_default();
        tally.stake = tally.stake.saturating_add(committee.stake(index));
        tally.signatures.push((index, vote.signature));
        if tally.certified || !committee.is_quorum(tally.stake) {
            return VoteOutcome::Counted;
        }
        tally.certified = true;
        match QuorumCertificate::aggregate(committee, vote.data, &tally.signatures) {
            Some(qc) => VoteOutcome::Certified(qc),
            None => VoteOutcome::Counted,
        }
    }

    /// Forgets rounds below `round`.
    pub(crate) fn prune_below(&mut self, round: Round) {
        self.rounds = self.rounds.split_off(&round);
    }

    /// Whether `qc` is exactly the aggregate of votes counted here (each verified on its
    /// own): every signer's vote is held for the same data, they hold a quorum of stake,
    /// and their sum is its signature.
    pub(crate) fn recognizes(&self, committee: &Committee, qc: &QuorumCertificate) -> bool {
        let Some(round) = self.rounds.get(&qc.vote.round) else {
            return false;
        };
        if !qc.signers.fits(committee.len()) {
            return false;
        }
        let mut signatures = Vec::new();
        let mut stake = 0u64;
        for index in qc.signers.indices() {
            match round.by_author.get(&index) {
                Some(vote) if vote.data == qc.vote => signatures.push(vote.signature),
                _ => return false,
            }
            stake = stake.saturating_add(committee.stake(index));
        }
        committee.is_quorum(stake)
            && crate::keys::aggregate(signatures.iter()).is_some_and(|sum| sum == qc.signature)
    }
}

/// What adding a timeout did.
#[derive(Debug)]
pub(crate) enum TimeoutOutcome {
    /// Counted; says whether the round's timeouts now hold more than a third of the stake.
    Counted {
        /// More than a third of the stake timed the round out.
        one_third: bool,
    },
    /// This validator's timeout of the round was already counted.
    Duplicate,
    /// This timeout completed a quorum.
    Certified(Box<TimeoutCertificate>),
}

#[derive(Default)]
struct RoundTimeouts {
    by_author: HashMap<usize, (Round, Signature)>,
    stake: u64,
    high_qc: Option<QuorumCertificate>,
    certified: bool,
}

/// Timeouts of recent rounds.
#[derive(Default)]
pub(crate) struct TimeoutCollector {
    rounds: BTreeMap<Round, RoundTimeouts>,
}

impl TimeoutCollector {
    /// Adds the verified timeout of validator `index`.
    pub(crate) fn add(
        &mut self,
        committee: &Committee,
        epoch: Epoch,
        index: usize,
        timeout: &Timeout,
    ) -> TimeoutOutcome {
        let round = self.rounds.entry(timeout.round).or_default();
        if round.by_author.contains_key(&index) {
            return TimeoutOutcome::Duplicate;
        }
        round
            .by_author
            .insert(index, (timeout.high_qc.round(), timeout.signature));
        round.stake = round.stake.saturating_add(committee.stake(index));
        if round
            .high_qc
            .as_ref()
            .is_none_or(|qc| qc.round() < timeout.high_qc.round())
        {
            round.high_qc = Some(timeout.high_qc.clone());
        }
        if round.certified || !committee.is_quorum(round.stake) {
            return TimeoutOutcome::Counted {
                one_third: committee.exceeds_one_third(round.stake),
            };
        }
        round.certified = true;
        let signed: Vec<(usize, Round, Signature)> = round
            .by_author
            .iter()
            .map(|(i, (r, s))| (*i, *r, *s))
            .collect();
        let high_qc = round
            .high_qc
            .clone()
            .unwrap_or_else(|| timeout.high_qc.clone());
        match TimeoutCertificate::aggregate(committee, epoch, timeout.round, high_qc, &signed) {
            Some(tc) => TimeoutOutcome::Certified(Box::new(tc)),
            None => TimeoutOutcome::Counted { one_third: true },
        }
    }

    /// Forgets rounds below `round`.
    pub(crate) fn prune_below(&mut self, round: Round) {
        self.rounds = self.rounds.split_off(&round);
    }
}
