//! The HotStuff-2 engine: one state machine per node, driven by [`Engine::step`].
//!
//! Rounds advance on certificates: a QC of round r or a TC of round r moves everyone to
//! r + 1, and the leader of r + 1 proposes at once (optimistic responsiveness; only
//! `min_block_interval_ms` may hold it back). Votes and timeouts go to every validator, so
//! each forms certificates itself and commits as soon as the QC of a block's direct child
//! forms. A round that makes no progress times out after the pacemaker's duration; > 1/3
//! of the stake timing out pulls the rest along, > 2/3 forms a TC.
//!
//! A proposal whose block registers data is voted for only after the host reports that
//! its own sampling reached the target ([`Input::Available`]): withheld data gets no vote,
//! never a negative one, and its round times out.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::certificate::{QuorumCertificate, TimeoutCertificate};
use crate::context::Context;
use crate::header::Header;
use crate::ids::{BlockHash, Epoch, Round};
use crate::io::{Action, Input, RecoveryState};
use crate::keys::{PublicKey, SigningKey};
use crate::message::{ConsensusMessage, Proposal, Timeout, Verified, Vote};
use crate::pacemaker::PacemakerConfig;
use crate::safety::{SafetyData, SafetyRules};
use crate::votes::{Evidence, TimeoutCollector, TimeoutOutcome, VoteCollector, VoteOutcome};

/// Rounds ahead of the current one whose votes and timeouts are still kept (older and
/// further ones are dropped, which bounds what a byzantine validator can make us store).
const ROUND_WINDOW: u64 = 64;

/// Counters of what this node did, for status pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct EngineCounters {
    /// Proposals signed.
    pub proposals: u64,
    /// Votes signed.
    pub votes: u64,
    /// Timeouts signed.
    pub timeouts: u64,
    /// Rounds entered through a timeout certificate.
    pub timeout_certificates: u64,
    /// Conflicting messages seen.
    pub evidence: u64,
}

/// A snapshot of the engine for status pages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EngineStatus {
    /// Current round.
    pub round: Round,
    /// Its leader.
    pub leader: PublicKey,
    /// Highest certified round and block.
    pub high_qc_round: Round,
    /// The block certified there.
    pub high_qc_block: BlockHash,
    /// Round of the highest QC that committed a block.
    pub committed_round: Round,
    /// This node's key, if it is a validator.
    pub validator: Option<PublicKey>,
    /// What it signed since start.
    pub counters: EngineCounters,
}

/// The block this node asked its host to build, and the certificates it will carry.
struct Building {
    round: Round,
    qc: QuorumCertificate,
    tc: Option<TimeoutCertificate>,
}

/// One node's HotStuff-2 state machine.
pub struct Engine {
    ctx: Context,
    config: PacemakerConfig,
    safety: Option<SafetyRules>,
    round: Round,
    round_deadline: u64,
    /// Our timeout of the current round and when it was last sent.
    timeout_sent: Option<(u64, Timeout)>,
    high_qc: QuorumCertificate,
    high_tc: Option<TimeoutCertificate>,
    committed_round: Round,
    votes: VoteCollector,
    timeouts: TimeoutCollector,
    /// When to ask the host for this round's block (leader only).
    proposal_due: Option<u64>,
    building: Option<Building>,
    /// Timestamps of recent blocks, for the minimum block interval.
    block_times: BTreeMap<Round, (BlockHash, u64)>,
    /// The first proposal seen per round (to spot a second one).
    proposals_seen: BTreeMap<Round, BlockHash>,
    /// The current round's proposal, waiting for its data to be available.
    awaiting_data: Option<Verified<ConsensusMessage>>,
    /// Blocks whose data this node's sampling found available.
    available: HashSet<BlockHash>,
    /// Blocks sampling was asked for.
    sampling: HashMap<BlockHash, Round>,
    counters: EngineCounters,
    actions: Vec<Action>,
    now: u64,
}

impl Engine {
    /// An engine for the chain of `ctx`. With `key`, the node is that validator (a key
    /// outside the committee makes it an observer); `recovered` is what it persisted last.
    pub fn new(
        ctx: Context,
        config: PacemakerConfig,
        key: Option<SigningKey>,
        recovered: Option<RecoveryState>,
        now: u64,
    ) -> Engine {
        let epoch = ctx.committee().epoch();
        let me = key
            .as_ref()
            .and_then(|k| ctx.committee().index_of(&k.public()));
        let recovered = recovered.filter(|r| r.safety.epoch == epoch);
        let (safety_data, high_qc, high_tc) = match recovered {
            Some(r) => (r.safety, r.high_qc, r.high_tc),
            None => (
                SafetyData {
                    epoch,
                    ..SafetyData::default()
                },
                QuorumCertificate::genesis(ctx.genesis()),
                None,
            ),
        };
        let safety = match (key, me) {
            (Some(k), Some(_)) => Some(SafetyRules::new(k, *ctx.tag(), safety_data)),
            _ => None,
        };
        let mut engine = Engine {
            ctx,
            config,
            safety,
            round: Round(0),
            round_deadline: now,
            timeout_sent: None,
            committed_round: Round(0),
            high_qc,
            high_tc,
            votes: VoteCollector::default(),
            timeouts: TimeoutCollector::default(),
            proposal_due: None,
            building: None,
            block_times: BTreeMap::new(),
            proposals_seen: BTreeMap::new(),
            awaiting_data: None,
            available: HashSet::new(),
            sampling: HashMap::new(),
            counters: EngineCounters::default(),
            actions: Vec::new(),
            now,
        };
        let start = engine
            .high_qc
            .round()
            .max(engine.high_tc.as_ref().map_or(Round(0), |tc| tc.round));
        engine.enter_round(start.next().unwrap_or(start));
        engine.actions.clear();
        engine
    }

    /// Handles one event at time `now` (milliseconds, any fixed origin) and returns what
    /// the host must do, in order.
    pub fn step(&mut self, now: u64, input: Input) -> Vec<Action> {
        self.now = self.now.max(now);
        match input {
            Input::Tick => {}
            Input::Message(message) => self.on_message(message),
            Input::Built(header) => self.on_built(*header),
            Input::Available(block) => self.on_available(block),
        }
        self.on_timers();
        std::mem::take(&mut self.actions)
    }

    /// The actions of starting up: a leader of the first round is asked to propose.
    pub fn start(&mut self, now: u64) -> Vec<Action> {
        self.now = self.now.max(now);
        self.schedule_proposal();
        self.on_timers();
        std::mem::take(&mut self.actions)
    }

    /// When the engine next needs a [`Input::Tick`].
    pub fn next_wakeup(&self) -> u64 {
        let timer = match &self.timeout_sent {
            None => self.round_deadline,
            Some((sent, _)) => sent.saturating_add(self.round_duration()),
        };
        self.proposal_due.map_or(timer, |due| due.min(timer))
    }

    /// The current round.
    pub fn round(&self) -> Round {
        self.round
    }

    /// The highest QC this node holds.
    pub fn high_qc(&self) -> &QuorumCertificate {
        &self.high_qc
    }

    /// Whether `qc` is the aggregate of votes this engine counted (each verified on its
    /// own), so that a proposal carrying it need not have it verified again. The genesis
    /// QC is never "recognized": it is checked by value.
    pub fn recognizes(&self, qc: &QuorumCertificate) -> bool {
        self.votes.recognizes(self.ctx.committee(), qc)
    }

    /// The verification context (chain spec, committee, genesis).
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// A snapshot for status pages.
    pub fn status(&self) -> EngineStatus {
        EngineStatus {
            round: self.round,
            leader: self.ctx.committee().leader(self.round).key,
            high_qc_round: self.high_qc.round(),
            high_qc_block: self.high_qc.block(),
            committed_round: self.committed_round,
            validator: self.safety.as_ref().map(|s| s.key().public()),
            counters: self.counters,
        }
    }

    fn epoch(&self) -> Epoch {
        self.ctx.committee().epoch()
    }

    fn round_duration(&self) -> u64 {
        self.config.round_duration(self.round, self.high_qc.round())
    }

    fn is_leader(&self, round: Round) -> bool {
        self.safety
            .as_ref()
            .is_some_and(|s| self.ctx.committee().leader(round).key == s.key().public())
    }

    fn persist(&mut self) {
        if let Some(safety) = &self.safety {
            self.actions.push(Action::Persist(Box::new(RecoveryState {
                safety: safety.data().clone(),
                high_qc: self.high_qc.clone(),
                high_tc: self.high_tc.clone(),
            })));
        }
    }

    fn enter_round(&mut self, round: Round) {
        if round <= self.round {
            return;
        }
        self.round = round;
        self.round_deadline = self.now.saturating_add(self.round_duration());
        self.timeout_sent = None;
        self.awaiting_data = None;
        self.building = None;
        self.proposal_due = None;
        let keep = Round(self.high_qc.round().0.min(round.0.saturating_sub(1)));
        self.votes.prune_below(keep);
        self.timeouts.prune_below(keep);
        self.proposals_seen = self.proposals_seen.split_off(&keep);
        self.block_times = self.block_times.split_off(&keep);
        self.sampling.retain(|_, r| *r >= keep);
        let sampling = &self.sampling;
        self.available.retain(|b| sampling.contains_key(b));
        self.schedule_proposal();
    }

    /// A leader asks for its block once the minimum interval after its parent passed;
    /// never in a round it already proposed, voted or timed out in (a restarted leader
    /// must not propose a second block).
    fn schedule_proposal(&mut self) {
        let voted = self.safety.as_ref().is_some_and(|s| {
            let data = s.data();
            data.last_voted_round.max(data.last_proposed_round) >= self.round
        });
        if !self.is_leader(self.round)
            || voted
            || self.proposal_due.is_some()
            || self.building.is_some()
        {
            return;
        }
        let parent = self.high_qc.block();
        let parent_time = self
            .block_times
            .values()
            .find(|(hash, _)| *hash == parent)
            .map(|(_, t)| *t);
        let due = parent_time.map_or(self.now, |t| {
            t.saturating_add(self.config.min_block_interval_ms)
        });
        self.proposal_due = Some(due.max(self.now).min(self.round_deadline));
    }

    fn on_timers(&mut self) {
        if self.proposal_due.is_some_and(|due| due <= self.now) {
            self.proposal_due = None;
            let tc = self
                .high_tc
                .clone()
                .filter(|tc| tc.round.next() == Some(self.round));
            self.building = Some(Building {
                round: self.round,
                qc: self.high_qc.clone(),
                tc,
            });
            self.actions.push(Action::Propose {
                round: self.round,
                parent: self.high_qc.block(),
            });
        }
        match &self.timeout_sent {
            None if self.now >= self.round_deadline => self.local_timeout(),
            Some((sent, timeout)) if self.now >= sent.saturating_add(self.round_duration()) => {
                let timeout = timeout.clone();
                self.actions
                    .push(Action::Broadcast(ConsensusMessage::Timeout(Box::new(
                        timeout.clone(),
                    ))));
                self.timeout_sent = Some((self.now, timeout));
            }
            _ => {}
        }
    }

    fn local_timeout(&mut self) {
        let (epoch, round) = (self.epoch(), self.round);
        let tc = self
            .high_tc
            .clone()
            .filter(|tc| tc.round.next() == Some(round));
        let Some(safety) = self.safety.as_mut() else {
            // Observers keep no timers of their own.
            self.round_deadline = u64::MAX;
            return;
        };
        match safety.timeout(epoch, round, &self.high_qc, tc.as_ref()) {
            Ok(timeout) => {
                self.counters.timeouts += 1;
                self.persist();
                self.actions
                    .push(Action::Broadcast(ConsensusMessage::Timeout(Box::new(
                        timeout.clone(),
                    ))));
                self.timeout_sent = Some((self.now, timeout.clone()));
                self.count_timeout(&timeout);
            }
            Err(_) => {
                // Cannot happen for a round entered through the certificates held; wait a
                // round's length before trying again rather than spin.
                self.round_deadline = self.now.saturating_add(self.round_duration());
            }
        }
    }

    fn on_message(&mut self, message: Verified<ConsensusMessage>) {
        if self.beyond_window(message.round()) {
            // Too far ahead to keep its vote or timeout, but the certificates it carries
            // (verified) prove the committee moved on: follow them, so that a validator
            // cut off for many rounds catches up instead of dropping everything it hears.
            self.follow_certificates(&message);
            if self.beyond_window(message.round()) {
                return;
            }
        }
        match &*message {
            ConsensusMessage::Proposal(_) => self.on_proposal(message),
            ConsensusMessage::Vote(vote) => {
                let vote = vote.clone();
                self.count_vote(&vote);
            }
            ConsensusMessage::Timeout(timeout) => {
                let timeout = (**timeout).clone();
                self.on_timeout(&timeout);
            }
        }
    }

    /// Whether `round` is too far ahead of the current one for its messages to be kept.
    fn beyond_window(&self, round: Round) -> bool {
        round.0 > self.round.0.saturating_add(ROUND_WINDOW)
    }

    /// Takes in the QC and TC a message carries, and nothing else of it.
    fn follow_certificates(&mut self, message: &ConsensusMessage) {
        let (qc, tc) = match message {
            ConsensusMessage::Proposal(p) => (&p.qc, p.tc.as_ref()),
            ConsensusMessage::Timeout(t) => (&t.high_qc, t.last_tc.as_ref()),
            ConsensusMessage::Vote(_) => return,
        };
        self.process_qc(qc);
        if let Some(tc) = tc {
            self.process_tc(tc);
        }
    }

    fn on_proposal(&mut self, message: Verified<ConsensusMessage>) {
        let ConsensusMessage::Proposal(p) = &*message else {
            return;
        };
        self.process_qc(&p.qc);
        if let Some(tc) = &p.tc {
            self.process_tc(tc);
        }
        let (round, block) = (p.header.round, p.block());
        self.block_times
            .insert(round, (block, p.header.timestamp_ms));
        match self.proposals_seen.get(&round) {
            Some(first) if *first != block => {
                self.counters.evidence += 1;
                self.actions
                    .push(Action::Evidence(Box::new(Evidence::DoubleProposal {
                        leader: p.header.proposer,
                        round,
                        first: *first,
                        second: block,
                    })));
                return;
            }
            Some(_) => {}
            None => {
                self.proposals_seen.insert(round, block);
            }
        }
        if round != self.round || self.safety.is_none() {
            return;
        }
        if !p.header.data.is_empty() && !self.available.contains(&block) {
            if let std::collections::hash_map::Entry::Vacant(e) = self.sampling.entry(block) {
                e.insert(round);
                self.actions.push(Action::Sample {
                    block,
                    header: p.header.clone(),
                });
            }
            self.awaiting_data = Some(message);
            return;
        }
        self.vote_for(p);
    }

    fn vote_for(&mut self, proposal: &Proposal) {
        let Some(safety) = self.safety.as_mut() else {
            return;
        };
        if self.timeout_sent.is_some() {
            return;
        }
        if let Ok(vote) = safety.vote(proposal) {
            self.counters.votes += 1;
            self.persist();
            self.actions
                .push(Action::Broadcast(ConsensusMessage::Vote(Box::new(
                    vote.clone(),
                ))));
            self.count_vote(&vote);
        }
    }

    fn on_available(&mut self, block: BlockHash) {
        if !self.sampling.contains_key(&block) {
            return;
        }
        self.available.insert(block);
        let waiting = self.awaiting_data.as_ref().is_some_and(|m| match &**m {
            ConsensusMessage::Proposal(p) => p.block() == block && p.header.round == self.round,
            _ => false,
        });
        if waiting {
            if let Some(message) = self.awaiting_data.take() {
                if let ConsensusMessage::Proposal(p) = message.into_inner() {
                    self.vote_for(&p);
                }
            }
        }
    }

    fn on_built(&mut self, header: Header) {
        let Some(building) = self.building.take() else {
            return;
        };
        let Some(safety) = self.safety.as_mut() else {
            return;
        };
        if building.round != self.round
            || header.round != building.round
            || header.parent != building.qc.block()
            || header.proposer != safety.key().public()
            || header.epoch != self.ctx.committee().epoch()
        {
            return;
        }
        let Ok(proposal) = safety.propose(header, building.qc, building.tc) else {
            return;
        };
        self.counters.proposals += 1;
        let message = ConsensusMessage::Proposal(Box::new(proposal));
        // Vote for it at once (unless its data must be sampled first); one persist then
        // covers the proposal and the vote, and must precede both.
        let at = self.actions.len();
        self.on_proposal(Verified::assume_valid(message.clone()));
        if !matches!(self.actions.get(at), Some(Action::Persist(_))) {
            self.persist();
            if let Some(persist) = self.actions.pop() {
                self.actions.insert(at, persist);
            }
        }
        self.actions.insert(at + 1, Action::Broadcast(message));
    }

    fn count_vote(&mut self, vote: &Vote) {
        if vote.data.round < self.high_qc.round() {
            return;
        }
        let Some(index) = self.ctx.committee().index_of(&vote.author) else {
            return;
        };
        match self.votes.add(self.ctx.committee(), index, vote) {
            VoteOutcome::Certified(qc) => self.process_qc(&qc),
            VoteOutcome::Conflict(evidence) => {
                self.counters.evidence += 1;
                self.actions.push(Action::Evidence(evidence));
            }
            VoteOutcome::Counted | VoteOutcome::Duplicate => {}
        }
    }

    fn on_timeout(&mut self, timeout: &Timeout) {
        self.process_qc(&timeout.high_qc);
        if let Some(tc) = &timeout.last_tc {
            self.process_tc(tc);
        }
        self.count_timeout(timeout);
    }

    fn count_timeout(&mut self, timeout: &Timeout) {
        if timeout.round < self.round {
            return;
        }
        let Some(index) = self.ctx.committee().index_of(&timeout.author) else {
            return;
        };
        let epoch = self.epoch();
        match self
            .timeouts
            .add(self.ctx.committee(), epoch, index, timeout)
        {
            TimeoutOutcome::Certified(tc) => self.process_tc(&tc),
            TimeoutOutcome::Counted { one_third: true }
                if timeout.round == self.round && self.timeout_sent.is_none() =>
            {
                // More than a third gave up on this round: at least one honest validator
                // did, so it cannot be certified without us; join rather than wait.
                self.local_timeout();
            }
            TimeoutOutcome::Counted { .. } | TimeoutOutcome::Duplicate => {}
        }
    }

    fn process_qc(&mut self, qc: &QuorumCertificate) {
        if qc.round() > self.high_qc.round() {
            self.high_qc = qc.clone();
        }
        if let Some(block) = qc.commit() {
            if qc.round() > self.committed_round {
                self.committed_round = qc.round();
                self.actions.push(Action::Commit {
                    block,
                    qc: qc.clone(),
                });
            }
        }
        if let Some(next) = qc.round().next() {
            self.enter_round(next);
        }
    }

    fn process_tc(&mut self, tc: &TimeoutCertificate) {
        self.process_qc(&tc.high_qc);
        if self.high_tc.as_ref().is_none_or(|t| t.round < tc.round) {
            self.high_tc = Some(tc.clone());
        }
        if let Some(next) = tc.round.next() {
            if next > self.round {
                self.counters.timeout_certificates += 1;
            }
            self.enter_round(next);
        }
    }
}
