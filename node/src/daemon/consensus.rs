//! The validator's consensus task: a thin driver around [`nexus_consensus::Engine`]. It
//! feeds the engine verified messages, timer ticks and sampling results, and carries out
//! what the engine asks — persisting its state (fsync) before anything signed leaves,
//! broadcasting, building proposals, sampling, appending final blocks — in order. The
//! protocol's rules are all in the engine and in `nexus_storage::chain`.

use nexus_storage::ledger::OpenVm;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_consensus::{
    Action, BlockHash, CertifiedHeader, ConsensusMessage, Context, Engine, FinalityProof, Header,
    Input, PacemakerConfig, Proposal, QuorumCertificate, Round, SigningKey, Verified,
};
use nexus_net::codec::Encoded;
use nexus_net::protocol::blocks::{BlockRequest, MAX_BLOCK_BYTES};
use nexus_net::protocol::gossip::{ConsensusGossip, GossipMessage};
use nexus_net::{GossipId, PeerId, PublishError, Validation};
use nexus_storage::chain::accept_child;
use nexus_storage::{Block, Transition};
use tokio::sync::mpsc;

use super::availability::Availability;
use super::builder;
use super::chain::append_final;
use super::{Fault, Node};
use crate::units::now_ms;
use nexus_sampler::verdicts::Purpose;

/// Ancestors of a proposal fetched by hash before giving up (and syncing final blocks).
const MAX_ANCESTORS_FETCHED: usize = 32;
/// Deadline of one block-by-hash request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// What reaches the consensus task from the rest of the node.
pub(crate) enum ConsensusEvent {
    /// A consensus message from gossip, to validate and report.
    Gossip(GossipId, Box<ConsensusGossip>),
    /// This node's sampling found the block's data available.
    Available(BlockHash),
}

struct Driver {
    node: Arc<Node>,
    engine: Engine,
    ctx: Context,
    key_public: nexus_consensus::PublicKey,
    sampled: mpsc::UnboundedSender<BlockHash>,
    commits: mpsc::UnboundedSender<Commit>,
    /// Proposals whose missing ancestors were fetched meanwhile.
    retry: mpsc::UnboundedSender<(Verified<ConsensusMessage>, Encoded)>,
}

/// Blocks that became final (oldest first) and the QC that commits the last of them.
type Commit = (Vec<Arc<Transition>>, QuorumCertificate);

/// Appends final blocks in order, each with its finality proof, and announces them; a
/// block appended is forgotten from the pending blocks on disk only then.
async fn committer(node: Arc<Node>, mut commits: mpsc::UnboundedReceiver<Commit>) {
    let started = Instant::now();
    while let Some((path, qc)) = commits.recv().await {
        if node.has_fault(Fault::ExitBeforeAppend) && started.elapsed() >= Duration::from_secs(3) {
            tracing::error!("fault: exiting between a commit and its append");
            std::process::exit(super::health::EXIT_STORE_FAILED);
        }
        let headers: Vec<Header> = path.iter().map(|t| t.block.header.clone()).collect();
        for (i, step) in path.into_iter().enumerate() {
            let proof = FinalityProof {
                descendants: headers[i + 1..].to_vec(),
                qc: qc.clone(),
            };
            let (appender, kept) = (node.clone(), proof.clone());
            let appended =
                tokio::task::spawn_blocking(move || append_final(&appender, &step, Some(kept)))
                    .await;
            if !matches!(appended, Ok(Ok(()))) {
                tracing::error!("cannot append a final block: {appended:?}");
                node.sync_now.notify_one();
                break;
            }
            if let Err(e) = node.store.forget_pending(&[headers[i].hash()]) {
                tracing::warn!("cannot forget an appended pending block: {e}");
            }
            node.timings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .committed(&headers[i].hash());
            // Its proposer announces it (one announcement per block, not one per
            // validator); a block whose proposer is away is learnt from the next one's.
            if Some(headers[i].proposer) != node.validator {
                continue;
            }
            let certified = CertifiedHeader {
                header: headers[i].clone(),
                proof,
            };
            let announce = GossipMessage::Finalized(Box::new(certified));
            match node.net.publish(announce).await {
                Ok(()) | Err(PublishError::NoPeers) => {}
                Err(e) => tracing::debug!("cannot announce a final block: {e}"),
            }
        }
    }
}

/// Runs the validator until the node stops.
pub(crate) async fn run(
    node: Arc<Node>,
    key: SigningKey,
    config: PacemakerConfig,
    mut events: mpsc::Receiver<ConsensusEvent>,
) {
    // The genesis comes from the genesis file or, failing that, from peers.
    let ctx = loop {
        if let Some(ctx) = node.context() {
            break ctx;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if ctx.committee().index_of(&key.public()).is_none() {
        tracing::error!(
            key = %key.public(),
            "this node's validator key is not in the committee: it follows the chain only"
        );
    }
    let recovered = match node.store.consensus_state() {
        Ok(state) => state,
        Err(e) => {
            tracing::error!("cannot read the consensus state, refusing to vote: {e}");
            return;
        }
    };
    restore_pending(&node);
    let recovered_qc = recovered.as_ref().map(|r| r.high_qc.clone());
    let key_public = key.public();
    let engine = Engine::new(ctx.clone(), config, Some(key), recovered, now_ms());
    let (commits, to_commit) = mpsc::unbounded_channel();
    tokio::spawn(committer(node.clone(), to_commit));
    // Sampling verdicts come on a queue of their own: a flood of gossip must not crowd
    // them out (at most one per block this validator may vote for).
    let (sampled, mut verdicts) = mpsc::unbounded_channel();
    let (retry, mut retries) = mpsc::unbounded_channel();
    let mut driver = Driver {
        node,
        engine,
        ctx,
        key_public,
        sampled,
        commits,
        retry,
    };
    // What the recovered certificate committed and the store did not append yet (a crash
    // between the two): append it now, from the pending blocks kept on disk.
    if let Some(qc) = recovered_qc {
        if let Some(block) = qc.commit() {
            driver.commit(block, qc);
        }
    }
    let actions = driver.engine.start(now_ms());
    driver.execute(actions).await;
    loop {
        driver.publish_status();
        let wake = driver.engine.next_wakeup();
        let sleep = Duration::from_millis(wake.saturating_sub(now_ms()));
        let first = tokio::select! {
            event = events.recv() => match event {
                Some(event) => event,
                None => return,
            },
            Some(block) = verdicts.recv() => ConsensusEvent::Available(block),
            Some((message, body)) = retries.recv() => {
                if let Some(input) = driver.readmit(message, body) {
                    let actions = driver.engine.step(now_ms(), input);
                    driver.execute(actions).await;
                }
                continue;
            }
            _ = tokio::time::sleep(sleep) => {
                let actions = driver.engine.step(now_ms(), Input::Tick);
                driver.execute(actions).await;
                continue;
            }
        };
        // Whatever else is queued is handled with it: votes of one round then share one
        // batch signature check.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match events.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        driver.handle(batch).await;
    }
}

/// Most queued events handled together.
const MAX_BATCH: usize = 64;

/// Re-executes the pending blocks kept on disk on top of the committed tip, so that a
/// certified block survives a restart.
fn restore_pending(node: &Node) {
    let blocks = match node.store.pending_blocks() {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("cannot read pending blocks: {e}");
            return;
        }
    };
    let mut restored = 0;
    for block in blocks {
        if node.tree_contains(&block.header.parent) && validate(node, block).is_ok() {
            restored += 1;
        }
    }
    if restored > 0 {
        tracing::info!(restored, "pending blocks restored");
    }
}

/// Executes `block` on its parent's state and keeps it in the tree (and on disk).
fn validate(node: &Node, block: Block) -> Result<Transition, String> {
    let (parent, state) = node
        .tree_state(&block.header.parent)
        .ok_or("unknown parent")?;
    let step = accept_child(block, &parent, &state, &OpenVm).map_err(|e| e.to_string())?;
    node.store
        .put_pending(&step.block)
        .map_err(|e| e.to_string())?;
    node.tree_insert(step.clone()).map_err(|e| e.to_string())?;
    Ok(step)
}

impl Driver {
    /// Handles queued events: the votes first, checked together (one batch per vote
    /// data), so that a proposal in the same batch finds its QC made of votes already
    /// counted; then the rest, in order.
    async fn handle(&mut self, batch: Vec<ConsensusEvent>) {
        let (votes, others): (Vec<_>, Vec<_>) = batch.into_iter().partition(|e| {
            matches!(e, ConsensusEvent::Gossip(_, g) if matches!(g.message, ConsensusMessage::Vote(_)))
        });
        for input in self.check_votes(votes).await {
            let actions = self.engine.step(now_ms(), input);
            self.execute(actions).await;
        }
        for event in others {
            let input = match event {
                ConsensusEvent::Available(block) => Some(Input::Available(block)),
                ConsensusEvent::Gossip(id, gossip) => self.admit(id, *gossip).await,
            };
            if let Some(input) = input {
                let actions = self.engine.step(now_ms(), input);
                self.execute(actions).await;
            }
        }
    }

    /// Checks gossiped votes in one batch and reports each verdict.
    async fn check_votes(&mut self, events: Vec<ConsensusEvent>) -> Vec<Input> {
        let mut ids = Vec::with_capacity(events.len());
        let mut votes = Vec::with_capacity(events.len());
        for event in events {
            if let ConsensusEvent::Gossip(id, gossip) = event {
                if let ConsensusMessage::Vote(v) = gossip.message {
                    ids.push(id);
                    votes.push(*v);
                }
            }
        }
        if votes.is_empty() {
            return Vec::new();
        }
        // CPU work the task waits for anyway: done on this worker thread (the runtime moves
        // its other tasks elsewhere) rather than handed to another thread and back.
        let results =
            tokio::task::block_in_place(|| ConsensusMessage::verify_votes(&self.ctx, votes));
        let mut inputs = Vec::new();
        for (id, result) in ids.into_iter().zip(results) {
            match result {
                Ok(vote) => {
                    self.node.net.report(id, Validation::Accept).await;
                    inputs.push(Input::Message(vote));
                }
                Err(e) => {
                    tracing::warn!(peer = %id.source(), "invalid vote: {e}");
                    self.node.net.report(id, Validation::Reject).await;
                }
            }
        }
        inputs
    }

    /// Checks a gossiped message (signatures; for a proposal, its block too) and reports
    /// the verdict to gossip; returns the engine's input if it is valid.
    async fn admit(&mut self, id: GossipId, gossip: ConsensusGossip) -> Option<Input> {
        let ConsensusGossip { message, body, .. } = gossip;
        let qc_known =
            matches!(&message, ConsensusMessage::Proposal(p) if self.engine.recognizes(&p.qc));
        let verified = tokio::task::block_in_place(|| message.verify_with(&self.ctx, qc_known));
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(peer = %id.source(), "invalid consensus message: {e}");
                self.node.net.report(id, Validation::Reject).await;
                return None;
            }
        };
        if let ConsensusMessage::Proposal(p) = &*verified {
            let parent = p.header.parent;
            if !self.node.tree_contains(&parent) && !self.node.tree_contains(&p.block()) {
                // Fetched off this task (a slow or silent peer must not stall consensus);
                // the proposal comes back once its ancestors are in the tree.
                let (node, retry, source) = (self.node.clone(), self.retry.clone(), id.source());
                tokio::spawn(async move {
                    match fetch_ancestors(&node, parent, source).await {
                        Ok(()) => {
                            let _ = retry.send((verified, body));
                        }
                        Err(e) => tracing::debug!("proposal set aside: {e:?}"),
                    }
                });
                self.node.net.report(id, Validation::Ignore).await;
                return None;
            }
            match self.admit_block(p, &body) {
                Ok(()) => {}
                Err(Verdict::Invalid(e)) => {
                    tracing::warn!(peer = %id.source(), round = %p.header.round, "invalid proposal: {e}");
                    self.node.net.report(id, Validation::Reject).await;
                    return None;
                }
                Err(Verdict::NotNow(e)) => {
                    tracing::debug!(round = %p.header.round, "proposal set aside: {e}");
                    self.node.net.report(id, Validation::Ignore).await;
                    return None;
                }
            }
        }
        self.node.net.report(id, Validation::Accept).await;
        Some(Input::Message(verified))
    }

    /// Decodes a proposal's block and executes it on its parent (which the tree holds).
    fn admit_block(&mut self, proposal: &Proposal, body: &Encoded) -> Result<(), Verdict> {
        let block: Block = body
            .decode(MAX_BLOCK_BYTES)
            .map_err(|e| Verdict::Invalid(format!("undecodable block: {e}")))?;
        if block.header != proposal.header {
            return Err(Verdict::Invalid(
                "the block is not the proposed header's".into(),
            ));
        }
        if self.node.tree_contains(&proposal.block()) {
            return Ok(());
        }
        tokio::task::block_in_place(|| validate(&self.node, block)).map_err(Verdict::Invalid)?;
        Ok(())
    }

    /// A proposal set aside for its missing ancestors, now fetched: executed and handed to
    /// the engine (its gossip verdict was given already).
    fn readmit(&mut self, message: Verified<ConsensusMessage>, body: Encoded) -> Option<Input> {
        let ConsensusMessage::Proposal(p) = &*message else {
            return None;
        };
        let p: &Proposal = p;
        match self.admit_block(p, &body) {
            Ok(()) => Some(Input::Message(message)),
            Err(e) => {
                tracing::debug!(round = %p.header.round, "proposal dropped: {e:?}");
                None
            }
        }
    }

    /// Carries out the engine's actions in order; a failed persist stops the rest (nothing
    /// signed after it may leave).
    async fn execute(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Persist(state) => {
                    let saved = tokio::task::block_in_place(|| {
                        self.node.store.save_consensus_state(&state)
                    });
                    if saved.is_err() {
                        tracing::error!("cannot persist the consensus state; not sending");
                        return;
                    }
                }
                Action::Broadcast(message) => self.broadcast(message).await,
                Action::Propose { round, parent } => {
                    if let Some(header) = self.build(round, parent).await {
                        queue.extend(self.engine.step(now_ms(), Input::Built(Box::new(header))));
                    }
                }
                Action::Sample { block, header } => self.sample(block, header),
                Action::Commit { block, qc } => self.commit(block, qc),
                Action::Evidence(evidence) => {
                    tracing::warn!("a validator signed conflicting messages: {evidence:?}");
                }
            }
        }
    }

    async fn broadcast(&self, message: ConsensusMessage) {
        let body = match &message {
            ConsensusMessage::Proposal(p) => match self.node.tree_block(&p.block()) {
                Some(block) => Encoded::of(&block),
                None => return,
            },
            _ => Encoded::default(),
        };
        let gossip = GossipMessage::Consensus(Box::new(ConsensusGossip {
            message,
            body,
            send: rand::random(),
        }));
        match self.node.net.publish(gossip).await {
            Ok(()) | Err(PublishError::NoPeers) => {}
            Err(e) => tracing::warn!("cannot broadcast a consensus message: {e}"),
        }
    }

    /// Builds this node's block for `round` on `parent`; `None` if it cannot (the round
    /// then times out).
    async fn build(&mut self, round: Round, parent: BlockHash) -> Option<Header> {
        if !self.node.tree_contains(&parent) {
            let first = self.node.net.storage_peers().await.first().copied()?;
            if let Err(e) = fetch_ancestors(&self.node, parent, first).await {
                tracing::warn!(%round, "cannot build on {parent}: {e:?}");
                return None;
            }
        }
        let (header, state) = self.node.tree_state(&parent)?;
        let started = Instant::now();
        match builder::build(&self.node, self.key_public, round, header, state).await {
            Ok(step) => {
                let header = step.block.header.clone();
                if let Err(e) = self.node.store.put_pending(&step.block) {
                    tracing::error!("cannot keep the proposed block: {e}");
                    return None;
                }
                if let Err(e) = self.node.tree_insert(step) {
                    tracing::error!("cannot keep the proposed block: {e}");
                    return None;
                }
                if self.node.has_fault(Fault::WithholdProposals) && !header.data.is_empty() {
                    tracing::warn!(%round, "fault withhold-proposals: proposing data it withholds");
                }
                self.node
                    .timings
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .proposed(
                        header.hash(),
                        started.elapsed().as_secs_f64() * 1000.0,
                        !header.data.is_empty(),
                    );
                Some(header)
            }
            Err(e) => {
                tracing::error!(%round, "cannot build a block: {e}");
                None
            }
        }
    }

    /// Reports the proposed block's data available once this node's sampling says so
    /// (at once if it was sampled before, as a `das` blob waiting in the pool).
    fn sample(&self, block: BlockHash, header: Header) {
        let sampled = self.sampled.clone();
        let report = move |available: bool| {
            if available {
                // The engine forgets the block if its round ended meanwhile.
                let _ = sampled.send(block);
            }
        };
        if Availability::check(
            &self.node,
            Purpose::Vote,
            header.height,
            header.data,
            report,
        ) {
            let _ = self.sampled.send(block);
        }
    }

    /// Appends `block` and its uncommitted ancestors, each with its finality proof, and
    /// announces them.
    fn commit(&mut self, block: BlockHash, qc: QuorumCertificate) {
        let path = match self.node.tree_path(&block) {
            Some(path) if !path.is_empty() => path,
            Some(_) => return,
            None => {
                // Committed by others before this node saw the block: sync fetches it.
                self.node.sync_now.notify_one();
                return;
            }
        };
        // The tree moves on at once (later proposals execute on it); the store catches up
        // in the committer, off this task, and the blocks stay pending on disk until then.
        if let Some(last) = path.last() {
            let unappended: Vec<BlockHash> = path.iter().map(|t| t.block.header.hash()).collect();
            self.node
                .advance_tree(&last.block.header, &last.ledger, &unappended);
        }
        if self.commits.send((path, qc)).is_err() {
            tracing::error!("the committer stopped");
        }
    }

    fn publish_status(&self) {
        let status = self.engine.status();
        *self
            .node
            .engine_status
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(status);
    }
}

/// Fetches the blocks between the tree and `missing` by hash and executes them, oldest
/// first. Too long a gap means this node is behind: final blocks are synced instead.
async fn fetch_ancestors(
    node: &Arc<Node>,
    missing: BlockHash,
    source: PeerId,
) -> Result<(), Verdict> {
    let mut chain = Vec::new();
    let mut cursor = missing;
    while !node.tree_contains(&cursor) {
        if chain.len() >= MAX_ANCESTORS_FETCHED {
            node.sync_now.notify_one();
            return Err(Verdict::NotNow(
                "too far behind; syncing final blocks".into(),
            ));
        }
        let block = fetch_block(node, cursor, source).await.ok_or_else(|| {
            node.sync_now.notify_one();
            Verdict::NotNow(format!("no peer serves block {cursor}"))
        })?;
        cursor = block.header.parent;
        chain.push(block);
    }
    for block in chain.into_iter().rev() {
        let node = node.clone();
        tokio::task::spawn_blocking(move || validate(&node, block))
            .await
            .map_err(|e| Verdict::NotNow(e.to_string()))?
            .map_err(|e| Verdict::NotNow(format!("an ancestor does not execute: {e}")))?;
    }
    Ok(())
}

/// The block with `hash` from `first` or any storage peer, checked against the hash.
async fn fetch_block(node: &Node, hash: BlockHash, first: PeerId) -> Option<Block> {
    let mut peers = vec![first];
    peers.extend(node.net.storage_peers().await);
    peers.dedup();
    for peer in peers {
        let request = BlockRequest::ByHash(hash);
        let response =
            tokio::time::timeout(FETCH_TIMEOUT, node.net.request_blocks(peer, request)).await;
        let Ok(Ok(response)) = response else {
            continue;
        };
        for encoded in response.blocks {
            if let Ok(block) = encoded.decode::<Block>(MAX_BLOCK_BYTES) {
                if block.header.hash() == hash {
                    return Some(block);
                }
            }
        }
    }
    None
}

/// Why a proposal was not passed to the engine.
#[derive(Debug)]
enum Verdict {
    /// Its block is invalid: the sender is at fault.
    Invalid(String),
    /// It cannot be checked now (missing ancestors): no fault.
    NotNow(String),
}
