//! A job's material: its program and input read from this node's store (both are
//! replicated blobs, each chunk checked against its id), loaded and run once for the
//! beneficiary the proofs are made for (the driver that will anchor them), with the segment
//! boundaries every proof of it is checked against (computed on first use: a delegator that
//! only proves segments never needs them). Prepared once per job and beneficiary, and kept
//! for the few in hand.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use nexus_compute::binding::{beneficiary, NO_BENEFICIARY};
use nexus_compute::zkvm::{Boundary, Program, Run, Zkvm, MAX_INPUT_BYTES};
use nexus_compute::{ProofTree, TreeShape};
use nexus_storage::blob::BlobLayout;
use nexus_storage::ledger::{ComputeJob, MAX_PROGRAM_BYTES};
use nexus_storage::{BlobId, Digest, PublicKey, Store};

use crate::daemon::Node;

/// Jobs whose material is kept.
const KEPT: usize = 4;
/// How long to wait for a job's blobs to arrive by replication.
const BLOB_WAIT: Duration = Duration::from_secs(120);

/// Material is kept per job and beneficiary.
pub(crate) type MaterialKey = (Digest, [u8; 32]);

/// What proving or checking a job needs.
pub(crate) struct Prepared {
    pub(crate) program: Program,
    pub(crate) input: Vec<u8>,
    pub(crate) run: Run,
    boundaries: OnceLock<Vec<Boundary>>,
    pub(crate) tree: ProofTree,
}

impl Prepared {
    /// The machine state at every segment boundary of the run, computed once.
    pub(crate) fn boundaries(&self, zkvm: &Zkvm) -> Result<&[Boundary]> {
        if let Some(found) = self.boundaries.get() {
            return Ok(found);
        }
        let computed = zkvm.boundaries(&self.program, &self.input, &self.run)?;
        Ok(self.boundaries.get_or_init(|| computed))
    }
}

/// A new job's parameters, derived by the node that submits it.
pub(crate) struct Submission {
    /// The program's bytes, which the `ComputeJob` carries.
    pub(crate) program: Vec<u8>,
    /// Its commitment, as the ledger will derive it.
    pub(crate) program_commit: [u8; 32],
    pub(crate) segments: u32,
    pub(crate) cycles: u64,
}

/// Reads a whole stored blob, each chunk checked against its id; waits for a replica in
/// progress to complete (up to [`BLOB_WAIT`]).
pub(crate) async fn read_blob(store: &Store, id: &BlobId, limit: u64) -> Result<Vec<u8>> {
    let started = tokio::time::Instant::now();
    loop {
        match store.blob(id)? {
            Some(record) if record.complete => {
                if record.size > limit {
                    bail!("blob {id} is {} bytes, more than {limit}", record.size);
                }
                let store = store.clone();
                let id = *id;
                return tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
                    let layout = BlobLayout::new(record.size)?;
                    let mut bytes = Vec::with_capacity(record.size as usize);
                    for index in 0..layout.chunk_count() {
                        let index = nexus_storage::blob::ChunkIndex(index as u32);
                        bytes.extend(store.read_chunk(&id, index)?.data);
                    }
                    Ok(bytes)
                })
                .await?;
            }
            _ if started.elapsed() > BLOB_WAIT => {
                bail!("blob {id} is not (yet) stored on this node")
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The material of job `id` for proofs that `anchorer` will anchor, prepared once:
/// checked against what the ledger recorded (commitment, segment count), so a job whose
/// record does not hold is never proven.
pub(crate) async fn prepare(
    node: &Node,
    zkvm: Arc<Zkvm>,
    id: &Digest,
    job: &ComputeJob,
    anchorer: &PublicKey,
) -> Result<Arc<Prepared>> {
    let paid_to = beneficiary(&id.0, &anchorer.0);
    let key = (*id, paid_to);
    if let Some(found) = kept(node, &key) {
        return Ok(found);
    }
    let elf = read_blob(&node.store, &job.program, MAX_PROGRAM_BYTES as u64).await?;
    let input = read_blob(&node.store, &job.input, MAX_INPUT_BYTES as u64).await?;
    let job = job.clone();
    let prepared = tokio::task::spawn_blocking(move || -> Result<Prepared> {
        let program = zkvm.load(&elf)?;
        if program.commit() != job.program_commit {
            bail!("the program's commitment is not the one the job records");
        }
        let run = zkvm.run(&program, &input, paid_to, job.max_cycles)?;
        if run.segments.len() != job.segments as usize {
            bail!(
                "the run takes {} segments, the job records {}",
                run.segments.len(),
                job.segments
            );
        }
        let tree = ProofTree::plan(job.segments, TreeShape::WIDEST)?;
        Ok(Prepared {
            program,
            input,
            run,
            boundaries: OnceLock::new(),
            tree,
        })
    })
    .await??;
    let prepared = Arc::new(prepared);
    let mut kept = node
        .compute
        .prepared
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    kept.retain(|(k, _)| *k != key);
    kept.push((key, prepared.clone()));
    if kept.len() > KEPT {
        kept.remove(0);
    }
    Ok(prepared)
}

fn kept(node: &Node, key: &MaterialKey) -> Option<Arc<Prepared>> {
    let kept = node
        .compute
        .prepared
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    kept.iter().find(|(k, _)| k == key).map(|(_, p)| p.clone())
}

/// Runs a program on an input blob (stored here) as a job submission would, for the
/// parameters the `ComputeJob` transaction carries.
pub(crate) async fn prepare_submission(
    node: &Node,
    elf: Vec<u8>,
    input: &BlobId,
    max_cycles: u64,
) -> Result<Submission> {
    let input = read_blob(&node.store, input, MAX_INPUT_BYTES as u64)
        .await
        .context("the input")?;
    tokio::task::spawn_blocking(move || -> Result<Submission> {
        let zkvm = Zkvm::new()?;
        let program = zkvm.load(&elf)?;
        let run = zkvm.run(&program, &input, NO_BENEFICIARY, max_cycles)?;
        Ok(Submission {
            program_commit: program.commit(),
            program: elf,
            segments: run.segments.len() as u32,
            cycles: run.cycles,
        })
    })
    .await?
}
