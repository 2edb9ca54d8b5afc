//! A seeded, deterministic network simulator driving real [`Engine`]s: message delays,
//! drops, reordering, partitions, crashes and restarts with persisted state, and
//! byzantine validators (equivocating leaders, double voters, silent voters, Twins that
//! share one key, leaders that withhold their blocks' data). Every node's time, every
//! delay and every fault comes from one seed, so a seed replays exactly.

#![allow(dead_code, unreachable_pub)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use nexus_consensus::{
    Action, BlockHash, ChainSpec, Committee, ConsensusMessage, Context, DataHeader, Epoch, Header,
    Height, Input, PacemakerConfig, Proposal, PublicKey, QuorumCertificate, RecoveryState, Round,
    SigningKey, Verified, Vote, VoteData,
};
use nexus_das::merkle::Digest;
use nexus_das::{CodeParams, DataRoot};

/// SplitMix64: small, fast, and the same everywhere.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() as f64 / u64::MAX as f64) < p
    }
}

/// How a simulated validator misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Honest,
    /// As leader, sends a different block to each half; votes for every block it sees.
    Equivocate,
    /// Never sends a vote.
    Silent,
    /// One of two honest-looking instances sharing a key.
    Twin,
    /// Honest, but the data of the blocks it proposes is never available.
    WithholdData,
}

impl Behaviour {
    pub fn is_faulty(self) -> bool {
        self != Behaviour::Honest
    }
}

/// What a node's CPU spends per operation, in µs, as measured on the machine running the
/// simulation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Costs {
    /// Signing a vote, timeout or proposal.
    pub sign_us: u64,
    /// Checking one signature or certificate (a proposal, a timeout).
    pub verify_us: u64,
    /// Each further vote of a round checked in the same batch.
    pub vote_us: u64,
    /// Persisting the safety state (fsync).
    pub persist_us: u64,
}

/// A scenario's knobs.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub validators: usize,
    /// Misbehaviour per validator index (missing = honest); a `Twin` entry adds a second
    /// instance with that validator's key.
    pub faults: Vec<(usize, Behaviour)>,
    /// Unequal stakes (index → stake); the rest have stake 1.
    pub stakes: Vec<(usize, u64)>,
    /// One-way delay range of a link, in ms.
    pub delay: (u64, u64),
    /// Until this time: drops, partitions and crashes happen.
    pub chaos_until: u64,
    pub drop_rate: f64,
    pub crash_rate: f64,
    pub partition_rate: f64,
    /// A validator cut off from all others until the chaos ends (a long partition).
    pub isolated: Option<usize>,
    /// End of the run (a run also ends early once liveness is shown).
    pub end: u64,
    /// Blocks every honest node must commit after the chaos.
    pub progress_after_chaos: u64,
    pub pacemaker: PacemakerConfig,
    /// Verify every distinct message with real BLS (else trust senders' signatures, which
    /// in the simulation are always made with real keys).
    pub verify: bool,
    /// Simulated CPU time, to measure latency figures (all zero: time stands still).
    pub costs: Costs,
    /// Chance that a proposal carries data to sample.
    pub data_rate: f64,
}

impl Scenario {
    pub fn new(validators: usize) -> Scenario {
        Scenario {
            validators,
            faults: Vec::new(),
            stakes: Vec::new(),
            delay: (1, 10),
            chaos_until: 400,
            drop_rate: 0.05,
            crash_rate: 0.01,
            partition_rate: 0.004,
            isolated: None,
            end: 4_000,
            progress_after_chaos: 4,
            pacemaker: PacemakerConfig {
                round_timeout_ms: 80,
                max_round_timeout_ms: 640,
                min_block_interval_ms: 5,
            },
            verify: false,
            costs: Costs::default(),
            data_rate: 0.3,
        }
    }

    /// No faults at all: for latency figures.
    pub fn calm(validators: usize, delay: (u64, u64)) -> Scenario {
        Scenario {
            delay,
            chaos_until: 0,
            drop_rate: 0.0,
            crash_rate: 0.0,
            partition_rate: 0.0,
            data_rate: 0.0,
            ..Scenario::new(validators)
        }
    }
}

#[derive(Debug)]
enum Event {
    Deliver {
        from: usize,
        to: usize,
        message: ConsensusMessage,
    },
    Wake {
        node: usize,
    },
    Available {
        node: usize,
        block: BlockHash,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Heal,
}

struct Node {
    validator: usize,
    behaviour: Behaviour,
    engine: Option<Engine2>,
    persisted: Option<RecoveryState>,
    /// Committed chain: heights in order from 1.
    committed: Vec<BlockHash>,
    wake_at: Option<u64>,
    /// Simulated CPU: the node is busy until then.
    busy_until: u64,
    /// Blocks this node voted for per round (byzantine double voting).
    seen_proposals: HashMap<Round, Vec<BlockHash>>,
    /// Rounds whose vote batch this node already paid a verification for.
    batched: HashSet<Round>,
}

type Engine2 = nexus_consensus::Engine;

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub violation: Option<String>,
    pub stalled: Option<String>,
    pub committed_min: u64,
    pub commits: u64,
    pub evidence: u64,
    /// Invalid messages from byzantine nodes that receivers dropped.
    pub rejected: u64,
    pub timeouts: u64,
    /// (proposal time, commit time at the first honest node) of committed blocks.
    pub latencies_ms: Vec<u64>,
    pub end_time: u64,
    pub rounds: u64,
}

pub struct Sim {
    pub scenario: Scenario,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: HashMap<usize, Event>,
    next_event: usize,
    ctx: Context,
    keys: Vec<[u8; 32]>,
    nodes: Vec<Node>,
    headers: HashMap<BlockHash, Header>,
    /// Blocks whose proposer withholds their data.
    withheld: HashSet<BlockHash>,
    /// Height → block, as first committed by an honest node.
    decided: BTreeMap<Height, BlockHash>,
    /// Partition: group per node (messages cross only within a group).
    groups: Option<Vec<u8>>,
    verified: HashMap<Digest, bool>,
    /// What each honest validator voted for, per round: two different votes is a
    /// violation even if no fork follows (a restarted node must remember its votes).
    honest_votes: HashMap<(usize, Round), VoteData>,
    /// What each honest validator proposed, per round (a restarted leader must not
    /// propose again).
    honest_proposals: HashMap<(usize, Round), BlockHash>,
    /// Every QC seen so far, for byzantine leaders to build conflicting blocks on.
    qcs: Vec<QuorumCertificate>,
    proposed_at: HashMap<BlockHash, u64>,
    committed_at: HashMap<BlockHash, u64>,
    report: Report,
    progress_base: Vec<u64>,
}

fn key_seed(i: usize) -> [u8; 32] {
    let mut seed = [7u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    seed
}

fn message_digest(m: &ConsensusMessage) -> Digest {
    Digest::of(&[&postcard::to_stdvec(m).unwrap_or_default()])
}

impl Sim {
    pub fn new(scenario: Scenario, seed: u64) -> Sim {
        let keys: Vec<[u8; 32]> = (0..scenario.validators).map(key_seed).collect();
        let stake = |i: usize| {
            scenario
                .stakes
                .iter()
                .find(|(j, _)| *j == i)
                .map_or(1, |(_, s)| *s)
        };
        let validators = keys
            .iter()
            .enumerate()
            .map(|(i, seed)| {
                let k = SigningKey::from_seed(seed);
                nexus_consensus::Validator::new(&k, stake(i), format!("sim-{i}"))
            })
            .collect();
        let committee = Committee::new(Epoch(0), validators).expect("committee");
        let spec = ChainSpec {
            chain_id: "sim".into(),
            committee,
            custody_groups: 32,
            custodians_per_group: 2,
        };
        let genesis = Header {
            height: Height(0),
            epoch: Epoch(0),
            round: Round(0),
            parent: BlockHash::ZERO,
            timestamp_ms: 0,
            transactions_root: Digest::ZERO,
            transaction_count: 0,
            state_root: Digest::ZERO,
            proposer: Header::GENESIS_PROPOSER,
            data: empty_data(),
            spec: spec.digest(),
        };
        let ctx = Context::new(spec, genesis.hash());
        let mut headers = HashMap::new();
        headers.insert(genesis.hash(), genesis);
        let mut nodes = Vec::new();
        for v in 0..scenario.validators {
            let behaviour = scenario
                .faults
                .iter()
                .find(|(i, _)| *i == v)
                .map_or(Behaviour::Honest, |(_, b)| *b);
            nodes.push(Node::new(v, behaviour));
            if behaviour == Behaviour::Twin {
                nodes.push(Node::new(v, behaviour));
            }
        }
        let mut sim = Sim {
            rng: Rng::new(seed),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_event: 0,
            ctx,
            keys,
            nodes,
            headers,
            withheld: HashSet::new(),
            decided: BTreeMap::new(),
            groups: None,
            verified: HashMap::new(),
            qcs: Vec::new(),
            honest_votes: HashMap::new(),
            honest_proposals: HashMap::new(),
            proposed_at: HashMap::new(),
            committed_at: HashMap::new(),
            report: Report::default(),
            progress_base: Vec::new(),
            scenario,
        };
        // Twins start on opposite sides of a partition, so both halves see "the" validator.
        if sim.nodes.iter().any(|n| n.behaviour == Behaviour::Twin) {
            let mut groups = vec![0u8; sim.nodes.len()];
            let mut twin_side = 0u8;
            for (i, node) in sim.nodes.iter().enumerate() {
                groups[i] = if node.behaviour == Behaviour::Twin {
                    twin_side ^= 1;
                    twin_side
                } else {
                    (sim.rng.next() % 2) as u8
                };
            }
            sim.groups = Some(groups);
            let heal = sim.rng.range(50, sim.scenario.chaos_until.max(60));
            sim.schedule(heal, Event::Heal);
        }
        for i in 0..sim.nodes.len() {
            sim.boot(i);
        }
        sim
    }

    fn schedule(&mut self, at: u64, event: Event) {
        let id = self.next_event;
        self.next_event += 1;
        self.seq += 1;
        self.events.insert(id, event);
        self.queue.push(Reverse((at, self.seq, id)));
    }

    fn boot(&mut self, i: usize) {
        let key = SigningKey::from_seed(&self.keys[self.nodes[i].validator]);
        let mut engine = Engine2::new(
            self.ctx.clone(),
            self.scenario.pacemaker,
            Some(key),
            self.nodes[i].persisted.clone(),
            self.now,
        );
        let actions = engine.start(self.now);
        self.nodes[i].engine = Some(engine);
        self.nodes[i].wake_at = None;
        self.run_actions(i, actions);
    }

    /// Runs until the end time or until every honest node made progress after the chaos.
    pub fn run(mut self) -> Report {
        let honest: Vec<usize> = (0..self.nodes.len())
            .filter(|i| !self.nodes[*i].behaviour.is_faulty())
            .collect();
        let mut chaos_over = self.scenario.chaos_until == 0;
        if chaos_over {
            self.progress_base = vec![0; self.nodes.len()];
        }
        while let Some(Reverse((at, _, id))) = self.queue.pop() {
            if at > self.scenario.end {
                break;
            }
            self.now = at;
            if !chaos_over && self.now >= self.scenario.chaos_until {
                chaos_over = true;
                self.end_chaos();
            }
            if self.now < self.scenario.chaos_until {
                self.maybe_inject_faults();
            }
            let Some(event) = self.events.remove(&id) else {
                continue;
            };
            self.handle(event);
            if self.report.violation.is_some() {
                break;
            }
            if chaos_over
                && honest.iter().all(|i| {
                    self.nodes[*i].committed.len() as u64
                        >= self.progress_base[*i] + self.scenario.progress_after_chaos
                })
            {
                break;
            }
        }
        self.report.end_time = self.now;
        self.report.committed_min = honest
            .iter()
            .map(|i| self.nodes[*i].committed.len() as u64)
            .min()
            .unwrap_or(0);
        if self.report.violation.is_none() {
            let stuck: Vec<usize> = honest
                .iter()
                .copied()
                .filter(|i| {
                    (self.nodes[*i].committed.len() as u64)
                        < self.progress_base.get(*i).copied().unwrap_or(0)
                            + self.scenario.progress_after_chaos
                })
                .collect();
            if !stuck.is_empty() {
                self.report.stalled = Some(format!(
                    "honest nodes {stuck:?} committed too little after the chaos ended (at {} ms; \
                     heights {:?})",
                    self.scenario.chaos_until,
                    honest
                        .iter()
                        .map(|i| self.nodes[*i].committed.len())
                        .collect::<Vec<_>>()
                ));
            }
        }
        let mut latencies: Vec<u64> = self
            .committed_at
            .iter()
            .filter_map(|(b, c)| self.proposed_at.get(b).map(|p| c.saturating_sub(*p)))
            .collect();
        latencies.sort_unstable();
        self.report.latencies_ms = latencies;
        self.report.rounds = self
            .nodes
            .iter()
            .filter_map(|n| n.engine.as_ref().map(|e| e.round().0))
            .max()
            .unwrap_or(0);
        self.report
    }

    fn end_chaos(&mut self) {
        self.groups = None;
        for i in 0..self.nodes.len() {
            if self.nodes[i].engine.is_none() {
                self.boot(i);
            }
        }
        self.progress_base = self
            .nodes
            .iter()
            .map(|n| n.committed.len() as u64)
            .collect();
    }

    fn maybe_inject_faults(&mut self) {
        if self.rng.chance(self.scenario.crash_rate) {
            let node = (self.rng.next() % self.nodes.len() as u64) as usize;
            let at = self.now + self.rng.range(0, 20);
            self.schedule(at, Event::Crash { node });
            let back = at + self.rng.range(1, 120);
            self.schedule(back, Event::Restart { node });
        }
        if self.groups.is_none() && self.rng.chance(self.scenario.partition_rate) {
            let groups = (0..self.nodes.len())
                .map(|_| (self.rng.next() % 2) as u8)
                .collect();
            self.groups = Some(groups);
            let heal = self.now + self.rng.range(20, 200);
            self.schedule(heal, Event::Heal);
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { from, to, message } => self.deliver(from, to, message),
            Event::Wake { node } => {
                if self.nodes[node].wake_at == Some(self.now) {
                    self.nodes[node].wake_at = None;
                    self.step(node, Input::Tick);
                }
            }
            Event::Available { node, block } => self.step(node, Input::Available(block)),
            Event::Crash { node } => {
                self.nodes[node].engine = None;
                self.nodes[node].wake_at = None;
            }
            Event::Restart { node } => {
                if self.nodes[node].engine.is_none() {
                    self.boot(node);
                }
            }
            Event::Heal => self.groups = None,
        }
    }

    fn deliver(&mut self, from: usize, to: usize, message: ConsensusMessage) {
        if self.nodes[to].engine.is_none() {
            return;
        }
        let costs = self.scenario.costs;
        // Votes of a round are checked in one batch: the first costs a verification, the
        // others their share of the batch.
        let cost = match &message {
            ConsensusMessage::Vote(v) => {
                if self.nodes[to].batched.insert(v.data.round) {
                    costs.verify_us
                } else {
                    costs.vote_us
                }
            }
            _ => costs.verify_us,
        };
        self.charge(to, cost);
        let verified = if self.scenario.verify {
            let digest = message_digest(&message);
            let ctx = self.ctx.clone();
            let ok = *self
                .verified
                .entry(digest)
                .or_insert_with(|| message.clone().verify(&ctx).is_ok());
            if !ok {
                // Byzantine nodes may send invalid messages: receivers drop them.
                if !self.nodes[from].behaviour.is_faulty() {
                    self.report.violation = Some(format!(
                        "honest node {from} sent a message that does not verify: {message:?}"
                    ));
                }
                self.report.rejected += 1;
                return;
            }
            Verified::assume_valid(message)
        } else {
            Verified::assume_valid(message)
        };
        if let ConsensusMessage::Proposal(p) = &*verified {
            if !self.qcs.iter().any(|q| q.block() == p.qc.block()) {
                self.qcs.push(p.qc.clone());
            }
            if self.nodes[to].behaviour == Behaviour::Equivocate {
                self.double_vote(to, p);
            }
        }
        self.step(to, Input::Message(verified));
    }

    /// A byzantine validator votes for every block it sees, whatever it voted before.
    fn double_vote(&mut self, node: usize, p: &Proposal) {
        let seen = self.nodes[node]
            .seen_proposals
            .entry(p.header.round)
            .or_default();
        if seen.contains(&p.block()) {
            return;
        }
        seen.push(p.block());
        if seen.len() < 2 {
            return;
        }
        let key = SigningKey::from_seed(&self.keys[self.nodes[node].validator]);
        let vote = Vote::sign(
            &key,
            self.ctx.tag(),
            VoteData {
                epoch: p.header.epoch,
                round: p.header.round,
                block: p.block(),
                commit: (p.qc.round().next() == Some(p.header.round)).then_some(p.header.parent),
            },
        );
        self.broadcast(node, ConsensusMessage::Vote(Box::new(vote)), None);
    }

    fn charge(&mut self, node: usize, us: u64) {
        let n = &mut self.nodes[node];
        n.busy_until = n.busy_until.max(self.now * 1000) + us;
    }

    fn step(&mut self, node: usize, input: Input) {
        let now = self.now;
        let Some(engine) = self.nodes[node].engine.as_mut() else {
            return;
        };
        let actions = engine.step(now, input);
        self.run_actions(node, actions);
    }

    fn run_actions(&mut self, node: usize, actions: Vec<Action>) {
        let Costs {
            sign_us,
            persist_us,
            ..
        } = self.scenario.costs;
        for action in actions {
            match action {
                Action::Persist(state) => {
                    self.charge(node, persist_us);
                    self.nodes[node].persisted = Some(*state);
                }
                Action::Broadcast(message) => {
                    if let ConsensusMessage::Proposal(p) = &message {
                        if !self.nodes[node].behaviour.is_faulty() {
                            let key = (self.nodes[node].validator, p.header.round);
                            match self.honest_proposals.insert(key, p.block()) {
                                Some(first) if first != p.block() => {
                                    self.report.violation = Some(format!(
                                        "honest node {node} proposed two blocks in round {}",
                                        p.header.round
                                    ));
                                    return;
                                }
                                _ => {}
                            }
                        }
                    }
                    if let ConsensusMessage::Vote(v) = &message {
                        if !self.nodes[node].behaviour.is_faulty() {
                            let key = (self.nodes[node].validator, v.data.round);
                            match self.honest_votes.get(&key) {
                                Some(first) if *first != v.data => {
                                    self.report.violation = Some(format!(
                                        "honest node {node} signed two votes in round {}",
                                        v.data.round
                                    ));
                                    return;
                                }
                                Some(_) => {}
                                None => {
                                    self.honest_votes.insert(key, v.data);
                                }
                            }
                        }
                    }
                    self.charge(node, sign_us);
                    self.send(node, message);
                }
                Action::Propose { round, parent } => self.build(node, round, parent),
                Action::Sample { block, .. } => {
                    if !self.withheld.contains(&block) {
                        let at = self.now + self.rng.range(1, 30);
                        self.schedule(at, Event::Available { node, block });
                    }
                }
                Action::Commit { block, qc } => {
                    if qc.commit() != Some(block) {
                        self.report.violation =
                            Some(format!("node {node} commits {block} with a QC for another"));
                        return;
                    }
                    self.commit(node, block);
                }
                Action::Evidence(_) => self.report.evidence += 1,
            }
        }
        let wake = self.nodes[node].engine.as_ref().map(|e| e.next_wakeup());
        if let Some(at) = wake {
            let at = at.max(self.now + 1);
            if self.nodes[node]
                .wake_at
                .is_none_or(|w| at < w || w < self.now)
            {
                self.nodes[node].wake_at = Some(at);
                self.schedule(at, Event::Wake { node });
            }
        }
    }

    fn send(&mut self, from: usize, message: ConsensusMessage) {
        if let ConsensusMessage::Timeout(_) = &message {
            self.report.timeouts += 1;
        }
        let behaviour = self.nodes[from].behaviour;
        match (&message, behaviour) {
            (ConsensusMessage::Vote(_), Behaviour::Silent) => {}
            (ConsensusMessage::Proposal(p), Behaviour::Equivocate) => {
                // The second block extends the same QC, or (half the time) an older one,
                // to try to fork the chain below the certified tip.
                let older: Vec<&QuorumCertificate> = self
                    .qcs
                    .iter()
                    .filter(|q| q.round() < p.qc.round())
                    .collect();
                let qc = match older.len() {
                    0 => p.qc.clone(),
                    len if self.rng.chance(0.5) => {
                        older[(self.rng.next() % len as u64) as usize].clone()
                    }
                    _ => p.qc.clone(),
                };
                let Some(parent) = self.headers.get(&qc.block()).cloned() else {
                    return;
                };
                let mut other = p.header.clone();
                other.parent = qc.block();
                other.height = parent.height.next().expect("height");
                other.transactions_root = Digest::of(&[b"evil", &other.transactions_root.0]);
                self.headers.insert(other.hash(), other.clone());
                let key = SigningKey::from_seed(&self.keys[self.nodes[from].validator]);
                let twin = Proposal::sign(&key, self.ctx.tag(), other, qc, p.tc.clone());
                let half: Vec<bool> = (0..self.nodes.len())
                    .map(|_| self.rng.chance(0.5))
                    .collect();
                self.broadcast(from, message.clone(), Some(&half));
                let other_half: Vec<bool> = half.iter().map(|h| !h).collect();
                self.broadcast(
                    from,
                    ConsensusMessage::Proposal(Box::new(twin)),
                    Some(&other_half),
                );
            }
            _ => self.broadcast(from, message, None),
        }
    }

    fn broadcast(&mut self, from: usize, message: ConsensusMessage, only: Option<&[bool]>) {
        for to in 0..self.nodes.len() {
            if to == from || only.is_some_and(|o| !o[to]) {
                continue;
            }
            let chaos = self.now < self.scenario.chaos_until;
            let blocked = self.groups.as_ref().is_some_and(|g| g[to] != g[from])
                || (chaos && self.scenario.isolated.is_some_and(|i| i == to || i == from));
            if blocked || (chaos && self.rng.chance(self.scenario.drop_rate)) {
                continue;
            }
            let (lo, hi) = self.scenario.delay;
            let busy_ms = self.nodes[from].busy_until.div_ceil(1000);
            let at = self.now.max(busy_ms) + self.rng.range(lo, hi);
            self.schedule(
                at,
                Event::Deliver {
                    from,
                    to,
                    message: message.clone(),
                },
            );
        }
    }

    fn build(&mut self, node: usize, round: Round, parent: BlockHash) {
        let Some(parent_header) = self.headers.get(&parent).cloned() else {
            self.report.violation = Some(format!("node {node} builds on unknown {parent}"));
            return;
        };
        let key = SigningKey::from_seed(&self.keys[self.nodes[node].validator]);
        let salt = self.rng.next();
        let data = if self.rng.chance(self.scenario.data_rate) {
            DataHeader {
                root: DataRoot(Digest::of(&[&salt.to_le_bytes()]).0),
                params: CodeParams {
                    dims: 1,
                    axes: [1, 1],
                    data_len: 100,
                },
            }
        } else {
            empty_data()
        };
        let transactions_root = Digest::of(&[&(node as u64).to_le_bytes(), &salt.to_le_bytes()]);
        let header = Header {
            height: parent_header.height.next().expect("height"),
            epoch: Epoch(0),
            round,
            parent,
            timestamp_ms: self.now.max(parent_header.timestamp_ms),
            transactions_root,
            transaction_count: 0,
            state_root: Digest::of(&[&parent_header.state_root.0, &transactions_root.0]),
            proposer: key.public(),
            data,
            spec: self.ctx.spec_digest(),
        };
        let hash = header.hash();
        if self.nodes[node].behaviour == Behaviour::WithholdData && !header.data.is_empty() {
            self.withheld.insert(hash);
        }
        self.proposed_at.entry(hash).or_insert(self.now);
        self.headers.insert(hash, header.clone());
        self.step(node, Input::Built(Box::new(header)));
    }

    fn commit(&mut self, node: usize, block: BlockHash) {
        // A restarted node may announce again a commit it made before it crashed.
        if let Some(h) = self.headers.get(&block) {
            let height = h.height.0 as usize;
            if height >= 1 && self.nodes[node].committed.get(height - 1) == Some(&block) {
                return;
            }
        }
        // Walk back from the committed block to this node's last committed one.
        let last = self.nodes[node].committed.last().copied();
        let mut chain = Vec::new();
        let mut cursor = block;
        loop {
            if Some(cursor) == last || cursor == self.ctx.genesis() {
                break;
            }
            let Some(h) = self.headers.get(&cursor) else {
                self.report.violation = Some(format!("node {node} committed unknown {cursor}"));
                return;
            };
            if h.height.0 as usize <= self.nodes[node].committed.len() {
                self.report.violation = Some(format!(
                    "node {node} committed {block}, which does not extend its chain at height {}",
                    self.nodes[node].committed.len()
                ));
                return;
            }
            chain.push(cursor);
            cursor = h.parent;
        }
        chain.reverse();
        let honest = !self.nodes[node].behaviour.is_faulty();
        for hash in chain {
            let height = Height(self.nodes[node].committed.len() as u64 + 1);
            if self.withheld.contains(&hash) {
                self.report.violation = Some(format!(
                    "node {node} committed {hash}, whose data was withheld"
                ));
                return;
            }
            self.nodes[node].committed.push(hash);
            self.report.commits += 1;
            if !honest {
                continue;
            }
            self.committed_at.entry(hash).or_insert(self.now);
            match self.decided.get(&height) {
                Some(other) if *other != hash => {
                    self.report.violation = Some(format!(
                        "fork at height {height}: node {node} committed {hash}, another honest \
                         node {other}"
                    ));
                    return;
                }
                Some(_) => {}
                None => {
                    self.decided.insert(height, hash);
                }
            }
        }
    }
}

impl Node {
    fn new(validator: usize, behaviour: Behaviour) -> Node {
        Node {
            validator,
            behaviour,
            engine: None,
            persisted: None,
            committed: Vec::new(),
            wake_at: None,
            busy_until: 0,
            seen_proposals: HashMap::new(),
            batched: HashSet::new(),
        }
    }
}

fn empty_data() -> DataHeader {
    DataHeader {
        root: DataRoot([0; 32]),
        params: CodeParams {
            dims: 1,
            axes: [1, 1],
            data_len: 0,
        },
    }
}

/// The key of validator `i` in simulations.
pub fn validator_key(i: usize) -> PublicKey {
    SigningKey::from_seed(&key_seed(i)).public()
}
