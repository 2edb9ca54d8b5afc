//! Scripted scenarios of one engine: each step feeds an input and checks the actions.

use nexus_consensus::{
    Action, BlockHash, ChainSpec, Committee, ConsensusMessage, Context, DataHeader, Engine, Epoch,
    Header, Height, Input, PacemakerConfig, Proposal, QuorumCertificate, RecoveryState, Round,
    SigningKey, Validator, Verified, Vote, VoteData,
};
use nexus_das::merkle::Digest;
use nexus_das::{CodeParams, DataRoot};

const CONFIG: PacemakerConfig = PacemakerConfig {
    round_timeout_ms: 1_000,
    max_round_timeout_ms: 8_000,
    min_block_interval_ms: 0,
};

struct Net {
    keys: Vec<SigningKey>,
    ctx: Context,
}

impl Net {
    fn new() -> Net {
        let keys: Vec<SigningKey> = (0..4u8)
            .map(|i| SigningKey::from_seed(&[i + 40; 32]))
            .collect();
        let validators = keys.iter().map(|k| Validator::new(k, 1, "")).collect();
        let spec = ChainSpec::new(
            "script",
            Committee::new(Epoch(0), validators).expect("committee"),
        );
        Net {
            ctx: Context::new(spec, BlockHash([1; 32])),
            keys,
        }
    }

    fn key_of(&self, round: Round) -> &SigningKey {
        let leader = self.ctx.committee().leader(round).key;
        self.keys
            .iter()
            .find(|k| k.public() == leader)
            .expect("leader key")
    }

    /// A key that does not lead `round`.
    fn follower(&self, round: Round) -> SigningKey {
        let leader = self.ctx.committee().leader(round).key;
        let k = self
            .keys
            .iter()
            .find(|k| k.public() != leader)
            .expect("follower");
        SigningKey::from_bytes(&k.to_bytes()).expect("key")
    }

    /// A fresh engine of a validator that does not lead round 1, started at time 0.
    fn started_follower(&self) -> Engine {
        let mut engine = Engine::new(
            self.ctx.clone(),
            CONFIG,
            Some(self.follower(Round(1))),
            None,
            0,
        );
        engine.start(0);
        engine
    }

    fn proposal(&self, round: u64, data: bool, salt: u8) -> Proposal {
        let round = Round(round);
        let header = Header {
            height: Height(1),
            epoch: Epoch(0),
            round,
            parent: self.ctx.genesis(),
            timestamp_ms: 0,
            transactions_root: Digest([salt; 32]),
            transaction_count: 0,
            state_root: Digest::ZERO,
            proposer: self.key_of(round).public(),
            data: DataHeader {
                root: DataRoot([salt; 32]),
                params: CodeParams {
                    dims: 1,
                    axes: [1, 1],
                    data_len: u64::from(data),
                },
            },
            spec: self.ctx.spec_digest(),
        };
        Proposal::sign(
            self.key_of(round),
            self.ctx.tag(),
            header,
            QuorumCertificate::genesis(self.ctx.genesis()),
            None,
        )
    }
}

fn message(p: &Proposal) -> Input {
    Input::Message(Verified::assume_valid(ConsensusMessage::Proposal(
        Box::new(p.clone()),
    )))
}

fn votes(actions: &[Action]) -> Vec<Vote> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast(ConsensusMessage::Vote(v)) => Some((**v).clone()),
            _ => None,
        })
        .collect()
}

/// Every broadcast vote or timeout comes after a persist of the state that signed it.
fn persisted_first(actions: &[Action]) -> Option<RecoveryState> {
    let mut persisted = None;
    for a in actions {
        match a {
            Action::Persist(state) => persisted = Some((**state).clone()),
            Action::Broadcast(ConsensusMessage::Vote(_) | ConsensusMessage::Timeout(_)) => {
                assert!(
                    persisted.is_some(),
                    "signed message sent before persisting: {actions:?}"
                );
            }
            _ => {}
        }
    }
    persisted
}

#[test]
fn votes_once_per_round_and_persists_before_sending() {
    let net = Net::new();
    let key = net.follower(Round(1));
    let me = key.public();
    let mut engine = Engine::new(net.ctx.clone(), CONFIG, Some(key), None, 0);
    engine.start(0);
    let first = net.proposal(1, false, 1);
    let actions = engine.step(1, message(&first));
    let state = persisted_first(&actions).expect("persisted");
    assert_eq!(state.safety.last_voted_round, Round(1));
    let vote = votes(&actions);
    assert_eq!(vote.len(), 1);
    assert_eq!((vote[0].author, vote[0].data.block), (me, first.block()));
    // Round 1 directly follows genesis's round 0: the vote commits its parent.
    assert_eq!(vote[0].data.commit, Some(net.ctx.genesis()));
    // A second, conflicting proposal of the round: evidence, no second vote.
    let second = net.proposal(1, false, 2);
    let actions = engine.step(2, message(&second));
    assert!(votes(&actions).is_empty());
    assert!(actions.iter().any(|a| matches!(a, Action::Evidence(_))));
}

#[test]
fn data_blocks_get_a_vote_only_after_sampling_succeeds() {
    let net = Net::new();
    let mut engine = net.started_follower();
    let p = net.proposal(1, true, 3);
    let actions = engine.step(1, message(&p));
    assert!(
        votes(&actions).is_empty(),
        "voted before sampling: {actions:?}"
    );
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Sample { block, .. } if *block == p.block())));
    // Unrelated availability changes nothing.
    assert!(votes(&engine.step(2, Input::Available(BlockHash([9; 32])))).is_empty());
    let actions = engine.step(3, Input::Available(p.block()));
    persisted_first(&actions);
    assert_eq!(votes(&actions).len(), 1);
}

#[test]
fn withheld_data_means_a_timeout_not_a_vote() {
    let net = Net::new();
    let mut engine = net.started_follower();
    let p = net.proposal(1, true, 4);
    engine.step(1, message(&p));
    let deadline = engine.next_wakeup();
    assert_eq!(deadline, CONFIG.round_timeout_ms);
    let actions = engine.step(deadline, Input::Tick);
    persisted_first(&actions);
    assert!(votes(&actions).is_empty());
    let timeout = actions.iter().find_map(|a| match a {
        Action::Broadcast(ConsensusMessage::Timeout(t)) => Some(t.clone()),
        _ => None,
    });
    assert_eq!(timeout.map(|t| t.round), Some(Round(1)));
    // Sampling finishing after the timeout does not bring a vote.
    assert!(votes(&engine.step(deadline + 1, Input::Available(p.block()))).is_empty());
}

#[test]
fn a_restarted_validator_resends_its_vote_and_never_signs_another() {
    let net = Net::new();
    let key = net.follower(Round(1));
    let mut engine = Engine::new(
        net.ctx.clone(),
        CONFIG,
        Some(SigningKey::from_bytes(&key.to_bytes()).expect("key")),
        None,
        0,
    );
    engine.start(0);
    let first = net.proposal(1, false, 5);
    let actions = engine.step(1, message(&first));
    let state = persisted_first(&actions).expect("state");
    let before = votes(&actions);
    // Killed and restarted from what it persisted.
    let mut again = Engine::new(net.ctx.clone(), CONFIG, Some(key), Some(state), 10);
    again.start(10);
    let resent = votes(&again.step(11, message(&first)));
    assert_eq!(resent, before);
    // A different block of the same round (the leader equivocating, or a replay of an
    // older proposal) gets nothing, even from a fresh engine that only has the state.
    let mut fresh = Engine::new(
        net.ctx.clone(),
        CONFIG,
        Some(net.follower(Round(1))),
        Some(persisted_first(&actions).expect("state")),
        20,
    );
    fresh.start(20);
    let other = net.proposal(1, false, 6);
    assert!(votes(&fresh.step(21, message(&other))).is_empty());
}

#[test]
fn a_restarted_leader_never_proposes_twice_in_a_round() {
    let net = Net::new();
    let leader = || SigningKey::from_bytes(&net.key_of(Round(1)).to_bytes()).expect("key");
    let mut engine = Engine::new(net.ctx.clone(), CONFIG, Some(leader()), None, 0);
    let actions = engine.start(0);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Propose {
                round: Round(1),
                ..
            }
        )),
        "the leader of round 1 is asked to propose: {actions:?}"
    );
    // Its block carries data, so it persists and sends the proposal before it can vote.
    let mut header = net.proposal(1, true, 8).header;
    header.proposer = leader().public();
    let actions = engine.step(1, Input::Built(Box::new(header)));
    assert!(
        matches!(
            &actions[..2],
            [
                Action::Persist(_),
                Action::Broadcast(ConsensusMessage::Proposal(_))
            ]
        ),
        "{actions:?}"
    );
    let state = persisted_first(&actions).expect("persisted");
    // Killed before its vote, restarted from what it persisted: no second proposal.
    let mut again = Engine::new(net.ctx.clone(), CONFIG, Some(leader()), Some(state), 5);
    let actions = again.start(5);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Propose { .. })),
        "{actions:?}"
    );
}

#[test]
fn a_qc_made_of_votes_already_verified_is_recognized_and_a_forged_one_is_not() {
    let net = Net::new();
    let mut engine = net.started_follower();
    let p = net.proposal(1, false, 9);
    engine.step(1, message(&p));
    let data = VoteData {
        epoch: Epoch(0),
        round: Round(1),
        block: p.block(),
        commit: Some(net.ctx.genesis()),
    };
    let votes: Vec<Vote> = net
        .keys
        .iter()
        .map(|k| Vote::sign(k, net.ctx.tag(), data))
        .collect();
    let mut formed = None;
    for v in &votes {
        let input = Input::Message(Verified::assume_valid(ConsensusMessage::Vote(Box::new(
            v.clone(),
        ))));
        engine.step(2, input);
        if engine.high_qc().round() == Round(1) && formed.is_none() {
            formed = Some(engine.high_qc().clone());
        }
    }
    let qc = formed.expect("a QC formed from the votes");
    assert!(engine.recognizes(&qc));
    // One signature short of its claimed signers, or a quorum claimed by fewer: refused.
    let mut forged = qc.clone();
    forged.signature = votes[0].signature;
    assert!(!engine.recognizes(&forged));
    let mut thin = qc;
    let first = thin.signers.indices().next().expect("signer");
    thin.signers = nexus_consensus::SignerBitmap::from_indices(4, [first]);
    assert!(!engine.recognizes(&thin));
    assert!(!engine.recognizes(&QuorumCertificate::genesis(net.ctx.genesis())));
}
