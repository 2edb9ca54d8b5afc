//! The messages validators exchange — proposals, votes, timeouts — and their stateless
//! checks. A message from the network becomes [`Verified`] only through
//! [`ConsensusMessage::verify`]; the engine accepts nothing else.

use serde::{Deserialize, Serialize};

use crate::certificate::{CertificateError, QuorumCertificate, TimeoutCertificate, VoteData};
use crate::context::Context;
use crate::header::Header;
use crate::ids::{BlockHash, Epoch, Round};
use crate::keys::{PublicKey, Signature, SigningKey};
use crate::signing;
use crate::spec::ChainTag;

/// A leader's block for a round, with the certificates that justify the round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The proposed block's header.
    pub header: Header,
    /// Certificate of the parent block.
    pub qc: QuorumCertificate,
    /// When the parent's round is not the previous round: the timeout certificate of the
    /// previous round.
    pub tc: Option<TimeoutCertificate>,
    /// The leader's signature of (round, block hash).
    pub signature: Signature,
}

/// A validator's vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// What is voted for.
    pub data: VoteData,
    /// The voter.
    pub author: PublicKey,
    /// Its signature of `data`.
    pub signature: Signature,
}

/// A validator giving up on a round, with its highest QC (and the last TC it knows) so
/// that laggards catch up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeout {
    /// Epoch of the committee.
    pub epoch: Epoch,
    /// The round given up.
    pub round: Round,
    /// The sender's highest QC.
    pub high_qc: QuorumCertificate,
    /// The sender's latest timeout certificate, if it entered its round through one.
    pub last_tc: Option<TimeoutCertificate>,
    /// The sender.
    pub author: PublicKey,
    /// Its signature of (epoch, round, high_qc round).
    pub signature: Signature,
}

/// Anything validators send each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsensusMessage {
    /// A proposal (its block's body travels beside it).
    Proposal(Box<Proposal>),
    /// A vote.
    Vote(Box<Vote>),
    /// A timeout.
    Timeout(Box<Timeout>),
}

/// Why a message was refused. Every variant means the sender (or whoever relayed it)
/// sent invalid data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Not from a validator of the committee.
    #[error("{0} is not a validator of this committee")]
    NotValidator(PublicKey),
    /// Another epoch.
    #[error("message of epoch {found}, the committee serves {expected}")]
    WrongEpoch {
        /// The committee's epoch.
        expected: Epoch,
        /// The message's.
        found: Epoch,
    },
    /// The header names another chain spec.
    #[error("the header's chain spec is not this chain's")]
    WrongSpec,
    /// Proposed by someone other than the round's leader.
    #[error("{found} is not the leader of round {round}")]
    NotLeader {
        /// The round.
        round: Round,
        /// The proposer named.
        found: PublicKey,
    },
    /// A signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// Rounds or links that cannot be (parent not the QC's block, round not above it...).
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// A certificate inside does not verify.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
}

/// A message whose signatures and certificates were checked against the committee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Verified<T> {
    /// The message, giving up the mark.
    pub fn into_inner(self) -> T {
        self.0
    }

    /// Marks a message verified without checking. For messages this node made itself,
    /// and for simulations that verify each distinct message once.
    pub fn assume_valid(message: T) -> Verified<T> {
        Verified(message)
    }
}

fn check_epoch(ctx: &Context, found: Epoch) -> Result<(), MessageError> {
    let expected = ctx.committee().epoch();
    if found == expected {
        Ok(())
    } else {
        Err(MessageError::WrongEpoch { expected, found })
    }
}

fn check_author(ctx: &Context, author: &PublicKey) -> Result<usize, MessageError> {
    ctx.committee()
        .index_of(author)
        .ok_or(MessageError::NotValidator(*author))
}

impl Proposal {
    /// Signs `header` as the proposal of its round, justified by `qc` (and `tc`).
    pub fn sign(
        key: &SigningKey,
        chain: &ChainTag,
        header: Header,
        qc: QuorumCertificate,
        tc: Option<TimeoutCertificate>,
    ) -> Proposal {
        let message = signing::proposal(chain, header.epoch, header.round, &header.hash());
        Proposal {
            signature: key.sign(&message),
            header,
            qc,
            tc,
        }
    }

    /// The proposed block's hash.
    pub fn block(&self) -> BlockHash {
        self.header.hash()
    }

    /// The proposal's round.
    pub fn round(&self) -> Round {
        self.header.round
    }

    fn verify(&self, ctx: &Context, qc_known: bool) -> Result<(), MessageError> {
        let h = &self.header;
        check_epoch(ctx, h.epoch)?;
        if h.spec != ctx.spec_digest() {
            return Err(MessageError::WrongSpec);
        }
        if h.parent != self.qc.block() {
            return Err(MessageError::Malformed("parent is not the certified block"));
        }
        if h.round <= self.qc.round() {
            return Err(MessageError::Malformed("round not above its parent's"));
        }
        let leader = ctx.committee().leader(h.round);
        if leader.key != h.proposer {
            return Err(MessageError::NotLeader {
                round: h.round,
                found: h.proposer,
            });
        }
        if self.qc.round().next() != Some(h.round) {
            let tc = self
                .tc
                .as_ref()
                .ok_or(MessageError::Malformed("a round after a gap needs a TC"))?;
            if tc.round.next() != Some(h.round) {
                return Err(MessageError::Malformed(
                    "the TC is not of the previous round",
                ));
            }
            if self.qc.round() < tc.highest_qc_round() {
                return Err(MessageError::Malformed(
                    "does not extend the TC's highest QC",
                ));
            }
        }
        let message = signing::proposal(ctx.tag(), h.epoch, h.round, &h.hash());
        if !h.proposer.verify(&message, &self.signature) {
            return Err(MessageError::BadSignature);
        }
        if !qc_known {
            self.qc.verify(ctx)?;
        }
        if let Some(tc) = &self.tc {
            tc.verify(ctx)?;
        }
        Ok(())
    }
}

impl Vote {
    /// Signs `data` as `key`'s vote.
    pub fn sign(key: &SigningKey, chain: &ChainTag, data: VoteData) -> Vote {
        Vote {
            signature: key.sign(&data.signing_bytes(chain)),
            data,
            author: key.public(),
        }
    }

    fn verify(&self, ctx: &Context) -> Result<(), MessageError> {
        check_epoch(ctx, self.data.epoch)?;
        let index = check_author(ctx, &self.author)?;
        let key = ctx
            .committee()
            .valid_key(index)
            .ok_or(MessageError::NotValidator(self.author))?;
        if key.verify(&self.data.signing_bytes(ctx.tag()), &self.signature) {
            Ok(())
        } else {
            Err(MessageError::BadSignature)
        }
    }
}

impl Timeout {
    /// Signs `key`'s timeout of `round` with its highest QC (and latest TC).
    pub fn sign(
        key: &SigningKey,
        chain: &ChainTag,
        epoch: Epoch,
        round: Round,
        high_qc: QuorumCertificate,
        last_tc: Option<TimeoutCertificate>,
    ) -> Timeout {
        let message = signing::timeout(chain, epoch, round, high_qc.round());
        Timeout {
            epoch,
            round,
            signature: key.sign(&message),
            high_qc,
            last_tc,
            author: key.public(),
        }
    }

    fn verify(&self, ctx: &Context) -> Result<(), MessageError> {
        check_epoch(ctx, self.epoch)?;
        let index = check_author(ctx, &self.author)?;
        if self.high_qc.round() >= self.round {
            return Err(MessageError::Malformed(
                "timeout of a round already certified",
            ));
        }
        if self
            .last_tc
            .as_ref()
            .is_some_and(|tc| tc.round >= self.round)
        {
            return Err(MessageError::Malformed(
                "timeout of a round already timed out",
            ));
        }
        let key = ctx
            .committee()
            .valid_key(index)
            .ok_or(MessageError::NotValidator(self.author))?;
        let message = signing::timeout(ctx.tag(), self.epoch, self.round, self.high_qc.round());
        if !key.verify(&message, &self.signature) {
            return Err(MessageError::BadSignature);
        }
        self.high_qc.verify(ctx)?;
        if let Some(tc) = &self.last_tc {
            tc.verify(ctx)?;
        }
        Ok(())
    }
}

impl ConsensusMessage {
    /// Checks every signature and certificate the message carries against `ctx`.
    pub fn verify(self, ctx: &Context) -> Result<Verified<ConsensusMessage>, MessageError> {
        self.verify_with(ctx, false)
    }

    /// Like [`ConsensusMessage::verify`], but trusts a proposal's QC when `qc_known`: the
    /// caller found it to be exactly the aggregate of votes it verified one by one
    /// ([`crate::Engine::recognizes`]), which saves a pairing check per proposal.
    pub fn verify_with(
        self,
        ctx: &Context,
        qc_known: bool,
    ) -> Result<Verified<ConsensusMessage>, MessageError> {
        match &self {
            ConsensusMessage::Proposal(p) => p.verify(ctx, qc_known)?,
            ConsensusMessage::Vote(v) => v.verify(ctx)?,
            ConsensusMessage::Timeout(t) => t.verify(ctx)?,
        }
        Ok(Verified(self))
    }

    /// Checks many votes at once: those of one vote data by one weighted batch check (one
    /// hash to the curve and one pairing check for all of them), falling back to one check
    /// per vote only if the batch fails. Results are in the order of `votes`.
    pub fn verify_votes(
        ctx: &Context,
        votes: Vec<Vote>,
    ) -> Vec<Result<Verified<ConsensusMessage>, MessageError>> {
        let mut groups: std::collections::HashMap<VoteData, Vec<usize>> =
            std::collections::HashMap::new();
        let mut results: Vec<Option<Result<(), MessageError>>> = vec![None; votes.len()];
        for (i, vote) in votes.iter().enumerate() {
            let stateless = check_epoch(ctx, vote.data.epoch)
                .and_then(|()| check_author(ctx, &vote.author).map(|_| ()));
            match stateless {
                Ok(()) => groups.entry(vote.data).or_default().push(i),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        for (data, members) in groups {
            let keys: Option<Vec<&crate::keys::ValidKey>> = members
                .iter()
                .map(|&i| {
                    let index = ctx.committee().index_of(&votes[i].author)?;
                    ctx.committee().valid_key(index)
                })
                .collect();
            let signatures: Vec<Signature> = members.iter().map(|&i| votes[i].signature).collect();
            let together = members.len() > 1
                && keys.is_some_and(|keys| {
                    crate::keys::verify_batch_same(
                        &keys,
                        &data.signing_bytes(ctx.tag()),
                        &signatures,
                    )
                });
            for &i in &members {
                results[i] = Some(if together {
                    Ok(())
                } else {
                    votes[i].verify(ctx)
                });
            }
        }
        votes
            .into_iter()
            .zip(results)
            .map(|(vote, result)| {
                result
                    .unwrap_or(Err(MessageError::Malformed("not checked")))
                    .map(|()| Verified(ConsensusMessage::Vote(Box::new(vote))))
            })
            .collect()
    }

    /// The round the message is about.
    pub fn round(&self) -> Round {
        match self {
            ConsensusMessage::Proposal(p) => p.header.round,
            ConsensusMessage::Vote(v) => v.data.round,
            ConsensusMessage::Timeout(t) => t.round,
        }
    }

    /// Who signed it.
    pub fn author(&self) -> PublicKey {
        match self {
            ConsensusMessage::Proposal(p) => p.header.proposer,
            ConsensusMessage::Vote(v) => v.author,
            ConsensusMessage::Timeout(t) => t.author,
        }
    }
}
