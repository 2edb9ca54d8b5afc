//! Verifiable-compute jobs in the ledger: accepting a job (its reward held in escrow),
//! anchoring its proven result (the Universal Proof verified as a condition of the
//! transaction itself, so a bad proof never enters a block), and expiry.

use nexus_compute::{
    binding::public_value_of_digests,
    zkvm::{UniversalProof, Verifier},
};

use super::{add, LedgerEvent, LedgerState};
use crate::blob::BlobId;
use crate::keys::PublicKey;
use crate::ledger::tx::{SignedTransaction, TxError, TxKind, VerifiedIds};
use crate::ledger::types::{
    Amount, ComputeJob, ComputeProver, JobResult, JobState, ProverFailures,
};
use crate::merkle::Digest;

/// Most segments a job may take (its proof tree's width).
pub const MAX_JOB_SEGMENTS: u32 = 4096;
/// Most blocks a job may stay open.
pub const MAX_JOB_LIFETIME: u64 = 1_000_000;
/// Most provers a result may record failures of.
pub const MAX_RECORDED_FAILURES: usize = 64;
/// Most failures a result may record of one prover.
const MAX_FAILURES_PER_PROVER: u32 = 1 << 16;

const JOB_TAG: &[u8] = b"nexus/job/v1";

/// Ids of result transactions whose proof verified in this process. The verdict is a pure
/// function of the transaction (which names the job by an id that fixes its contents).
static PROOFS_VERIFIED: VerifiedIds = VerifiedIds::new();

/// The id of the job a `ComputeJob` transaction from `sender` with `nonce` creates: it
/// covers the whole request, so one id never names two different jobs on two forks.
pub fn job_id(sender: &PublicKey, nonce: u64, kind: &TxKind) -> Digest {
    Digest::of(&[
        JOB_TAG,
        &sender.0,
        &nonce.to_be_bytes(),
        &postcard::to_stdvec(kind).unwrap_or_default(),
    ])
}

/// A result's failure record: at most [`MAX_RECORDED_FAILURES`] provers, in strictly
/// increasing account order (each once), each with 1 to 65,536 failures.
fn check_failures(failures: &[ProverFailures]) -> Result<(), TxError> {
    let bad = |why: &str| Err(TxError::BadJob(why.into()));
    if failures.len() > MAX_RECORDED_FAILURES {
        return bad("a result records the failures of at most 64 provers");
    }
    if failures.windows(2).any(|w| w[0].prover.0 >= w[1].prover.0) {
        return bad("recorded failures are listed once per prover, in account order");
    }
    if failures
        .iter()
        .any(|f| !(1..=MAX_FAILURES_PER_PROVER).contains(&f.count))
    {
        return bad("a prover's recorded failures are 1 to 65,536");
    }
    Ok(())
}

/// What a `ComputeJob` transaction asks for.
pub(super) struct JobRequest<'a> {
    pub(super) kind: &'a TxKind,
    pub(super) program: BlobId,
    pub(super) input: BlobId,
    pub(super) program_commit: [u8; 32],
    pub(super) input_sha256: [u8; 32],
    pub(super) max_cycles: u64,
    pub(super) segments: u32,
    pub(super) reward: Amount,
    pub(super) lifetime: u64,
}

impl LedgerState {
    /// A job by id.
    pub fn job(&self, id: &Digest) -> Option<&ComputeJob> {
        self.jobs.get(id)
    }

    /// Every job, by id.
    pub fn jobs(&self) -> impl Iterator<Item = (&Digest, &ComputeJob)> {
        self.jobs.iter()
    }

    /// The nodes offering their CPU, by account.
    pub fn provers(&self) -> impl Iterator<Item = (&PublicKey, &ComputeProver)> {
        self.provers.iter()
    }

    /// The compute offer of account `key`, if it made one.
    pub fn prover(&self, key: &PublicKey) -> Option<&ComputeProver> {
        self.provers.get(key)
    }

    /// Records (or, with no role, forgets) the sender's compute offer.
    pub(super) fn offer_compute(
        &mut self,
        sender: PublicKey,
        delegator: bool,
        orchestrator: bool,
        node: &[u8],
    ) -> Result<(), TxError> {
        if !(delegator || orchestrator) {
            self.provers.remove(&sender);
            return Ok(());
        }
        if node.is_empty() || node.len() > 64 {
            return Err(TxError::BadJob(
                "a prover's peer id is 1 to 64 bytes".into(),
            ));
        }
        let failures = self.provers.get(&sender).map_or(0, |p| p.failures);
        self.provers.insert(
            sender,
            ComputeProver {
                delegator,
                orchestrator,
                node: node.to_vec(),
                failures,
            },
        );
        Ok(())
    }

    /// Accepts a job, holding its reward in escrow. On error nothing changes.
    pub(super) fn submit_job(
        &mut self,
        sender: PublicKey,
        request: JobRequest<'_>,
    ) -> Result<(), TxError> {
        let bad = |why: &str| Err(TxError::BadJob(why.into()));
        if self.blob(&request.program).is_none() {
            return bad("the program is not a registered blob");
        }
        if self.blob(&request.input).is_none() {
            return bad("the input is not a registered blob");
        }
        if request.max_cycles == 0 {
            return bad("max cycles must be positive");
        }
        if !(1..=MAX_JOB_SEGMENTS).contains(&request.segments) {
            return bad("a job takes 1 to 4096 segments");
        }
        if !(1..=MAX_JOB_LIFETIME).contains(&request.lifetime) {
            return bad("a job's lifetime is 1 to 1,000,000 blocks");
        }
        self.debit_check(&sender, request.reward)?;
        let escrow = add(self.escrow, request.reward)?;
        let nonce = self.account(&sender).nonce;
        let id = job_id(&sender, nonce, request.kind);
        if self.jobs.contains_key(&id) {
            return bad("this job already exists");
        }
        self.accounts.entry(sender).or_default().balance -= request.reward;
        self.escrow = escrow;
        self.jobs.insert(
            id,
            ComputeJob {
                submitter: sender,
                program: request.program,
                input: request.input,
                program_commit: request.program_commit,
                input_sha256: request.input_sha256,
                max_cycles: request.max_cycles,
                segments: request.segments,
                reward: request.reward,
                submitted: self.height + 1,
                deadline: (self.height + 1).saturating_add(request.lifetime),
                state: JobState::Open,
            },
        );
        Ok(())
    }

    /// Anchors a job's result and pays its reward to `sender`. The proof was verified when
    /// the transaction was found payable. On error nothing changes.
    pub(super) fn anchor_result(
        &mut self,
        sender: PublicKey,
        job: Digest,
        result: JobResult,
    ) -> Result<(), TxError> {
        let open = self.jobs.get(&job).ok_or(TxError::UnknownJob(job))?;
        if open.state != JobState::Open || result.height > open.deadline {
            return Err(TxError::JobClosed(job));
        }
        if self.blob(&result.output).is_none() || self.blob(&result.proof).is_none() {
            return Err(TxError::BadJob(
                "the output and the proof must be registered blobs".into(),
            ));
        }
        let reward = open.reward;
        add(self.account(&sender).balance, reward)?;
        self.escrow -= reward;
        self.accounts.entry(sender).or_default().balance += reward;
        for f in &result.failures {
            if let Some(p) = self.provers.get_mut(&f.prover) {
                p.failures = p.failures.saturating_add(u64::from(f.count));
            }
        }
        if let Some(j) = self.jobs.get_mut(&job) {
            j.state = JobState::Proven(result);
        }
        Ok(())
    }

    /// For a `ComputeResult`: its failure record is well formed, and the Universal Proof
    /// verifies for the job's program and the binding of the job's input and the claimed
    /// output. Part of what makes such a
    /// transaction payable at all, so a bad proof is refused, never carried.
    pub(super) fn check_result_proof(&self, stx: &SignedTransaction) -> Result<(), TxError> {
        let TxKind::ComputeResult {
            job,
            output_sha256,
            proof_blob,
            proof,
            failures,
            ..
        } = &stx.tx.kind
        else {
            return Ok(());
        };
        check_failures(failures)?;
        if BlobId::of(proof) != *proof_blob {
            return Err(TxError::BadProof(
                "the proof blob's id is not that of the proof".into(),
            ));
        }
        let id = stx.id();
        if PROOFS_VERIFIED.contains(&id) {
            return Ok(());
        }
        let open = self.jobs.get(job).ok_or(TxError::UnknownJob(*job))?;
        let public_value = public_value_of_digests(&open.input_sha256, output_sha256);
        let proof =
            UniversalProof::from_bytes(proof).map_err(|e| TxError::BadProof(e.to_string()))?;
        Verifier::embedded()
            .verify(&proof, open.program_commit, public_value)
            .map_err(|e| TxError::BadProof(e.to_string()))?;
        PROOFS_VERIFIED.insert(id);
        Ok(())
    }

    /// Expires the open jobs whose deadline passed at `height`, returning their rewards.
    pub(super) fn expire_jobs(&mut self, height: u64, events: &mut Vec<LedgerEvent>) {
        let expired: Vec<Digest> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.state == JobState::Open && j.deadline < height)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(job) = self.jobs.get_mut(&id) {
                job.state = JobState::Expired;
                let (submitter, reward) = (job.submitter, job.reward);
                self.escrow -= reward;
                let account = self.accounts.entry(submitter).or_default();
                account.balance = account.balance.saturating_add(reward);
                events.push(LedgerEvent::JobExpired(id));
            }
        }
    }
}
