//! The one canonical byte string each kind of consensus message signs.
//!
//! Every message is `"NEXUS-CONSENSUS-V1" ‖ chain tag (32) ‖ kind (1) ‖ epoch (8, BE) ‖
//! round (8, BE) ‖ body`, with a fixed-length body per kind. The kind byte and the chain
//! tag keep a signature of one kind, chain or epoch from ever verifying as another; the
//! fixed lengths leave no room for two readings of one byte string.

use crate::ids::{BlockHash, Epoch, Round};
use crate::spec::ChainTag;

const DOMAIN: &[u8] = b"NEXUS-CONSENSUS-V1";

/// What a signature is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// A leader's proposal of a block.
    Proposal = 1,
    /// A validator's vote for a block (and the commit it implies).
    Vote = 2,
    /// A validator's timeout of a round (with its highest certified round).
    Timeout = 3,
}

fn message(chain: &ChainTag, kind: Kind, epoch: Epoch, round: Round, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 32 + 1 + 16 + body.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(&chain.0);
    m.push(kind as u8);
    m.extend_from_slice(&epoch.0.to_be_bytes());
    m.extend_from_slice(&round.0.to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Signed by a leader proposing `block` in `round`.
pub(crate) fn proposal(chain: &ChainTag, epoch: Epoch, round: Round, block: &BlockHash) -> Vec<u8> {
    message(chain, Kind::Proposal, epoch, round, &block.0)
}

/// Signed by a validator voting for `block` in `round`; `commit` is the block the vote
/// finalises, if any.
pub(crate) fn vote(
    chain: &ChainTag,
    epoch: Epoch,
    round: Round,
    block: &BlockHash,
    commit: Option<&BlockHash>,
) -> Vec<u8> {
    let mut body = [0u8; 65];
    body[..32].copy_from_slice(&block.0);
    if let Some(c) = commit {
        body[32] = 1;
        body[33..].copy_from_slice(&c.0);
    }
    message(chain, Kind::Vote, epoch, round, &body)
}

/// Signed by a validator timing out `round` whose highest certified round is `high_qc`.
pub(crate) fn timeout(chain: &ChainTag, epoch: Epoch, round: Round, high_qc: Round) -> Vec<u8> {
    message(chain, Kind::Timeout, epoch, round, &high_qc.0.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_chains_and_epochs_never_share_a_message() {
        let (a, b) = (ChainTag::of("a"), ChainTag::of("b"));
        let h = BlockHash([7; 32]);
        let all = [
            proposal(&a, Epoch(0), Round(1), &h),
            vote(&a, Epoch(0), Round(1), &h, None),
            vote(&a, Epoch(0), Round(1), &h, Some(&h)),
            timeout(&a, Epoch(0), Round(1), Round(0)),
            vote(&b, Epoch(0), Round(1), &h, None),
            vote(&a, Epoch(1), Round(1), &h, None),
            vote(&a, Epoch(0), Round(2), &h, None),
        ];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }
}
