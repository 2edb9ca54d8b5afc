//! The prover's side: offering this node's CPU in the ledger, and proving the tree nodes
//! job drivers ask for — a delegator proves segments, an orchestrator folds — for the
//! asking driver as beneficiary, each proof handed over with this node's signed receipt
//! (which the driver's result carries for the ledger to pay the node). Only a registered
//! orchestrator may ask, only for an open job, and requests beyond the node's proving
//! slots (plus a short queue) are refused in words.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use nexus_compute::zkvm::NodeProof;
use nexus_compute::NodeRef;
use nexus_net::protocol::proofs::{ProveRequest, ProveResponse};
use nexus_net::{PeerId, Reply};
use nexus_storage::ledger::{receipt_message, JobState, TxKind};
use nexus_storage::PublicKey;

use super::material::prepare;
use super::provers;
use crate::daemon::{submit, Node};

/// Requests waiting beyond those being proven.
const QUEUE: usize = 4;

/// Registers this node's compute offer in the ledger (and again if the ledger forgets it
/// or its roles change); nothing for a node that offers nothing.
pub(crate) async fn offer_loop(node: Arc<Node>) {
    let config = &node.compute.config;
    if !node.compute.proves() {
        return;
    }
    // Open the zkVM (keys generated or read) before taking any work.
    if let Err(e) = node.compute.zkvm().await {
        tracing::error!("the zkVM cannot start, no compute work taken: {e:#}");
        return;
    }
    let peer = node.net.peer_id().to_bytes();
    loop {
        let offered = node.store.tip().is_some_and(|tip| {
            tip.ledger.provers().any(|(k, p)| {
                *k == node.account.public()
                    && p.delegator == config.delegator
                    && p.orchestrator == config.orchestrator
                    && p.node == peer
            })
        });
        if offered {
            tokio::time::sleep(Duration::from_secs(30)).await;
            continue;
        }
        let kind = TxKind::OfferCompute {
            delegator: config.delegator,
            orchestrator: config.orchestrator,
            node: peer.clone(),
        };
        match submit::submit(&node, kind, node.finality_deadline).await {
            Ok(at) => tracing::info!(height = %at.height, "compute offer registered"),
            Err(e) => {
                tracing::info!("compute offer not registered yet: {e}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// Answers a driver's request for a proof (not started if the driver has gone meanwhile),
/// with this node's receipt for it.
pub(crate) async fn serve(
    node: &Arc<Node>,
    peer: PeerId,
    request: ProveRequest,
    reply: &Reply<ProveResponse>,
) -> ProveResponse {
    let asker = Asker::Peer {
        peer,
        gone: &|| reply.is_abandoned(),
    };
    let (job, level, index) = request.node();
    let at = NodeRef { level, index };
    match prove_requested(node, asker, request).await {
        Ok(Proven { proof, anchorer }) => {
            let chain = node.store.tip().map(|t| t.ledger.chain());
            match chain {
                Some(chain) => ProveResponse::Proof {
                    proof: proof.to_bytes(),
                    receipt: node
                        .account
                        .sign(&receipt_message(&chain, &job, &anchorer, at).0),
                },
                None => ProveResponse::Refused("this node has no chain yet".into()),
            }
        }
        Err(e) => ProveResponse::Refused(format!("{e:#}")),
    }
}

/// A proof made for a driver.
pub(crate) struct Proven {
    /// The node's proof.
    pub(crate) proof: NodeProof,
    /// The driver's account: the beneficiary the proof names, and whom the receipt is for.
    pub(crate) anchorer: PublicKey,
}

/// Who asks for a proof.
#[derive(Clone, Copy)]
pub(crate) enum Asker<'a> {
    /// This node itself (a driver proving its own share).
    Itself,
    /// A peer, which must be a registered orchestrator; `gone` tells whether it stopped
    /// waiting for the answer.
    Peer {
        peer: PeerId,
        gone: &'a (dyn Fn() -> bool + Sync),
    },
}

/// Proves what `request` asks for `asker`, with `asker`'s account as beneficiary. A
/// peer's request that waited for a slot is dropped, unproven, if the peer has gone
/// meanwhile (a driver that crashed).
pub(crate) async fn prove_requested(
    node: &Arc<Node>,
    asker: Asker<'_>,
    request: ProveRequest,
) -> Result<Proven> {
    let compute = &node.compute;
    let (job_id, folding) = match &request {
        ProveRequest::Segment { job, .. } => (*job, false),
        ProveRequest::Fold { job, .. } => (*job, true),
    };
    if folding && !compute.config.orchestrator {
        bail!("this node does not fold proofs (not an orchestrator)");
    }
    if !folding && !compute.config.delegator {
        bail!("this node does not prove segments (not a delegator)");
    }
    let Some(tip) = node.store.tip() else {
        bail!("this node has no chain yet");
    };
    let anchorer = match asker {
        Asker::Itself => node.account.public(),
        Asker::Peer { peer, .. } => {
            let (_, orchestrators) = provers(&tip.ledger);
            match orchestrators.iter().find(|o| o.peer == peer) {
                Some(o) => o.account,
                None => bail!("only a registered orchestrator may ask for proofs"),
            }
        }
    };
    let job = match tip.ledger.job(&job_id) {
        Some(job) if job.state == JobState::Open => job.clone(),
        Some(_) => bail!("job {job_id} is closed"),
        None => bail!("no job {job_id} in this node's ledger"),
    };
    // A bounded queue: beyond it, the driver hears at once and asks someone else.
    let waiting = compute.queued.fetch_add(1, Ordering::SeqCst);
    let _queued = Dequeue(node.clone());
    if waiting >= compute.config.parallel.max(1) + QUEUE {
        bail!("busy: {waiting} proofs waiting here");
    }
    let zkvm = compute.zkvm().await?;
    let prepared = prepare(node, zkvm.clone(), &job_id, &job, &anchorer).await?;
    let _slot = compute.slots.clone().acquire_owned().await?;
    if let Asker::Peer { gone, .. } = asker {
        if gone() {
            bail!("the driver stopped waiting before its turn came");
        }
    }
    match &request {
        ProveRequest::Segment { index, .. } => {
            tracing::info!(job = %job_id, segment = index, "proving segment")
        }
        ProveRequest::Fold { level, index, .. } => {
            tracing::info!(job = %job_id, level, index, "folding node")
        }
    }
    let proof = tokio::task::spawn_blocking(move || -> Result<NodeProof> {
        match request {
            ProveRequest::Segment { index, .. } => Ok(zkvm.prove_segment(
                &prepared.program,
                &prepared.input,
                &prepared.run,
                index as usize,
            )?),
            ProveRequest::Fold {
                level,
                index,
                children,
                ..
            } => {
                let node = NodeRef { level, index };
                let expected = prepared.tree.children(node);
                if level == 0 || expected.len() != children.len() {
                    bail!("node {node:?} of this job has {} children", expected.len());
                }
                let mut proofs = Vec::with_capacity(children.len());
                for (child, bytes) in expected.iter().zip(&children) {
                    let proof = NodeProof::from_bytes(bytes)?;
                    zkvm.check(
                        &prepared.program,
                        &prepared.tree,
                        *child,
                        prepared.boundaries(&zkvm)?,
                        &proof,
                    )?;
                    proofs.push(proof);
                }
                Ok(zkvm.fold(prepared.tree.level_kind(level), &proofs)?)
            }
        }
    })
    .await??;
    Ok(Proven { proof, anchorer })
}

/// Leaves the queue when the request ends, however it ends.
struct Dequeue(Arc<Node>);

impl Drop for Dequeue {
    fn drop(&mut self) {
        self.0.compute.queued.fetch_sub(1, Ordering::SeqCst);
    }
}
