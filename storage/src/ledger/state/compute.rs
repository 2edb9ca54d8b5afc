//! Verifiable-compute jobs in the ledger: accepting a job (its program's commitment derived
//! here from the bytes the transaction carries, its reward held in escrow), anchoring its
//! proven result (the Universal Proof verified for the sender as beneficiary, and the
//! credits for the tree's nodes checked against their provers' receipts, as conditions of
//! the transaction itself), paying the reward out, and expiry.
//!
//! Every verdict here is a function of the transaction and the state: the memos below only
//! skip recomputing a verification whose every input is in their key.

use std::collections::BTreeMap;

use nexus_compute::{
    binding::{beneficiary, public_value},
    NodeRef, ProofTree, TreeShape,
};
use nexus_consensus::ChainTag;

use super::{add, LedgerEvent, LedgerState};
use crate::blob::BlobId;
use crate::keys::{PublicKey, Signature};
use crate::ledger::tx::{Transaction, TxError, TxKind, MAX_PROGRAM_BYTES};
use crate::ledger::types::{
    Amount, ComputeJob, ComputeProver, Credit, JobResult, JobState, Payout,
};
use crate::ledger::verifier::ComputeVerifier;
use crate::merkle::Digest;

/// Most segments a job may take (its proof tree's width).
pub const MAX_JOB_SEGMENTS: u32 = 4096;
/// Most blocks a job may stay open.
pub const MAX_JOB_LIFETIME: u64 = 1_000_000;
/// Most provers a result credits.
pub const MAX_CREDITS: usize = 64;
/// Most tree nodes a result credits in all (each costs its verifier a Miller loop, about
/// half a millisecond; nodes beyond go uncredited, their shares to the anchorer).
pub const MAX_CREDITED_NODES: usize = 1024;

const JOB_TAG: &[u8] = b"nexus/job/v1";
const RECEIPT_TAG: &[u8] = b"nexus/receipt/v1";

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

/// What a prover signs when it hands the proof of `node` of job `job` to `anchorer` on
/// chain `chain`: its receipt, which a result's [`Credit`] carries so that the ledger pays
/// the prover its share.
pub fn receipt_message(
    chain: &ChainTag,
    job: &Digest,
    anchorer: &PublicKey,
    node: NodeRef,
) -> Digest {
    Digest::of(&[
        RECEIPT_TAG,
        chain.as_bytes(),
        &job.0,
        &anchorer.0,
        &node.level.to_be_bytes(),
        &node.index.to_be_bytes(),
    ])
}

/// Asks `verifier` now for what executing `kind` will need that takes long: the program
/// commitment of a `ComputeJob` (about two seconds with OpenVM, which remembers it). For a
/// node that receives such a transaction, so that building or validating a block carrying
/// it does not wait on it. Changes no verdict: the same value is computed either way.
pub fn prepare_execution(kind: &TxKind, verifier: &dyn ComputeVerifier) {
    if let TxKind::ComputeJob { program, .. } = kind {
        if program.len() <= MAX_PROGRAM_BYTES {
            let _ = verifier.program_commit(program);
        }
    }
}

/// The proof tree every party plans for a job of `segments` segments.
fn tree_of(job: &ComputeJob) -> Result<ProofTree, TxError> {
    ProofTree::plan(job.segments, TreeShape::WIDEST).map_err(|e| TxError::BadJob(e.to_string()))
}

/// What a `ComputeJob` transaction asks for.
pub(super) struct JobRequest<'a> {
    kind: &'a TxKind,
    program: &'a [u8],
    input: BlobId,
    max_cycles: u64,
    segments: u32,
    reward: Amount,
    lifetime: u64,
}

impl<'a> JobRequest<'a> {
    /// The request of `kind`, if it is a `ComputeJob`.
    pub(super) fn of(kind: &'a TxKind) -> Option<JobRequest<'a>> {
        let TxKind::ComputeJob {
            program,
            input,
            max_cycles,
            segments,
            reward,
            lifetime,
        } = kind
        else {
            return None;
        };
        Some(JobRequest {
            kind,
            program,
            input: *input,
            max_cycles: *max_cycles,
            segments: *segments,
            reward: *reward,
            lifetime: *lifetime,
        })
    }
}

/// What a `ComputeResult` transaction anchors.
pub(super) struct ResultClaim<'a> {
    pub(super) job: Digest,
    pub(super) output: BlobId,
    pub(super) proof_blob: BlobId,
    pub(super) credits: &'a [Credit],
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
        self.provers.insert(
            sender,
            ComputeProver {
                delegator,
                orchestrator,
                node: node.to_vec(),
            },
        );
        Ok(())
    }

    /// Whether the `ComputeJob` `tx` can apply here as far as the checks that cost nothing
    /// tell — its fee and reward covered, its terms in bounds, its blobs registered — without
    /// deriving its program's commitment. A node asks this before it runs a program for a
    /// submitter, so that a hopeless job costs it nothing.
    pub fn precheck_job(&self, tx: &Transaction) -> Result<(), TxError> {
        self.check_fee(tx)?;
        match JobRequest::of(&tx.kind) {
            Some(request) => self.job_terms(&tx.sender, &request, tx.fee).map(|_| ()),
            None => Ok(()),
        }
    }

    /// The checks of a job request that cost nothing; `unpaid` is what the sender still
    /// owes besides the reward (the fee, before it is charged). Returns the program's
    /// BlobId, the escrow with the reward and the job's id.
    fn job_terms(
        &self,
        sender: &PublicKey,
        request: &JobRequest<'_>,
        unpaid: Amount,
    ) -> Result<(BlobId, Amount, Digest), TxError> {
        let bad = |why: &str| Err(TxError::BadJob(why.into()));
        if request.program.len() > MAX_PROGRAM_BYTES {
            return bad("a job's program is at most 256 KiB (a model's weights go in its input)");
        }
        let program = BlobId::of(request.program);
        if self.blob(&program).is_none() {
            return bad("the program's bytes are not a registered blob: store them first");
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
        self.debit_check(sender, add(request.reward, unpaid)?)?;
        let escrow = add(self.escrow, request.reward)?;
        let id = job_id(sender, self.account(sender).nonce, request.kind);
        if self.jobs.contains_key(&id) {
            return bad("this job already exists");
        }
        Ok((program, escrow, id))
    }

    /// Accepts a job, holding its reward in escrow, once its program is a registered blob
    /// the zkVM runs as RISC-V means it (its commitment derived here) and its input a
    /// registered blob. On error nothing changes.
    pub(super) fn submit_job(
        &mut self,
        sender: PublicKey,
        request: JobRequest<'_>,
        verifier: &dyn ComputeVerifier,
    ) -> Result<(), TxError> {
        let (program, escrow, id) = self.job_terms(&sender, &request, 0)?;
        // Last, being the costly check: the program's commitment.
        let program_commit = verifier
            .program_commit(request.program)
            .map_err(|why| TxError::BadJob(format!("the program cannot be proven: {why}")))?;
        self.accounts.entry(sender).or_default().balance -= request.reward;
        self.escrow = escrow;
        self.jobs.insert(
            id,
            ComputeJob {
                submitter: sender,
                program,
                input: request.input,
                program_commit,
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

    /// Anchors a job's result for `sender` and pays the reward out: a share per credited
    /// node (the reward over the tree's nodes and the seal), the rest to `sender`. The
    /// proof and the credits were checked when the transaction was found payable. On
    /// error nothing changes.
    pub(super) fn anchor_result(
        &mut self,
        sender: PublicKey,
        claim: ResultClaim<'_>,
    ) -> Result<(), TxError> {
        let job = claim.job;
        let open = self.jobs.get(&job).ok_or(TxError::UnknownJob(job))?;
        let height = self.height + 1;
        if open.state != JobState::Open || height > open.deadline {
            return Err(TxError::JobClosed(job));
        }
        if self.blob(&claim.output).is_none() || self.blob(&claim.proof_blob).is_none() {
            return Err(TxError::BadJob(
                "the output and the proof must be registered blobs".into(),
            ));
        }
        let nodes = tree_of(open)?.nodes().count() as u64;
        let share = open.reward / (nodes + 1);
        let mut payouts: Vec<Payout> = claim
            .credits
            .iter()
            .map(|c| Payout {
                account: c.prover,
                nodes: c.nodes.len() as u32,
                amount: share * c.nodes.len() as u64,
            })
            .collect();
        let credited: Amount = payouts.iter().map(|p| p.amount).sum();
        payouts.push(Payout {
            account: sender,
            nodes: 0,
            amount: open.reward - credited,
        });
        // Every balance can take its payout before anything moves.
        let mut after = std::collections::BTreeMap::new();
        for p in &payouts {
            let balance = after
                .get(&p.account)
                .copied()
                .unwrap_or(self.account(&p.account).balance);
            after.insert(p.account, add(balance, p.amount)?);
        }
        self.escrow -= open.reward;
        for (account, balance) in after {
            self.accounts.entry(account).or_default().balance = balance;
        }
        if let Some(j) = self.jobs.get_mut(&job) {
            j.state = JobState::Proven(JobResult {
                output: claim.output,
                proof: claim.proof_blob,
                prover: sender,
                height,
                payouts,
            });
        }
        Ok(())
    }

    /// For a `ComputeResult` from `sender`: the job exists, the Universal Proof verifies
    /// for the job's program and the binding of the sender as beneficiary, the job's input
    /// and the claimed output, and every credit is well formed and signed. Part of what
    /// makes such a transaction payable at all, so a bad or copied proof is refused, never
    /// carried.
    pub(super) fn check_result(
        &self,
        sender: &PublicKey,
        kind: &TxKind,
        verifier: &dyn ComputeVerifier,
    ) -> Result<(), TxError> {
        let TxKind::ComputeResult {
            job: id,
            output,
            proof_blob,
            proof,
            credits,
        } = kind
        else {
            return Ok(());
        };
        let job = self.jobs.get(id).ok_or(TxError::UnknownJob(*id))?;
        if BlobId::of(proof) != *proof_blob {
            return Err(TxError::BadProof(
                "the proof blob's id is not that of the proof".into(),
            ));
        }
        let expected = public_value(&beneficiary(&id.0, &sender.0), &job.input.0, &output.0);
        verifier
            .verify_universal(proof, job.program_commit, expected)
            .map_err(TxError::BadProof)?;
        self.check_credits(id, job, sender, credits)
    }

    /// The credits a result may carry for `receipts` (a node, its prover, the prover's
    /// checked receipt): per prover this ledger lists, its nodes in order with their
    /// receipts aggregated, provers in account order — what [`Self::check_credits`]
    /// accepts. Provers beyond [`MAX_CREDITS`] and nodes beyond [`MAX_CREDITED_NODES`] go
    /// uncredited (their shares stay with the anchorer).
    pub fn credits_for(
        &self,
        receipts: impl IntoIterator<Item = (NodeRef, PublicKey, Signature)>,
    ) -> Vec<Credit> {
        let mut by_prover: BTreeMap<PublicKey, BTreeMap<NodeRef, Signature>> = BTreeMap::new();
        for (node, prover, receipt) in receipts {
            if self.provers.contains_key(&prover) {
                by_prover.entry(prover).or_default().insert(node, receipt);
            }
        }
        let mut budget = MAX_CREDITED_NODES;
        let mut credits = Vec::new();
        for (prover, nodes) in by_prover.into_iter().take(MAX_CREDITS) {
            let nodes: Vec<(NodeRef, Signature)> = nodes.into_iter().take(budget).collect();
            let Some(signature) = nexus_consensus::keys::aggregate(nodes.iter().map(|(_, s)| s))
            else {
                continue;
            };
            budget -= nodes.len();
            credits.push(Credit {
                prover,
                nodes: nodes.into_iter().map(|(n, _)| n).collect(),
                signature,
            });
        }
        credits
    }

    /// Credits name registered provers once each, in account order; nodes of the job's
    /// tree once each, in order; at most [`MAX_CREDITS`] provers and
    /// [`MAX_CREDITED_NODES`] nodes; and each carries its prover's receipts for this job
    /// and this anchorer.
    fn check_credits(
        &self,
        id: &Digest,
        job: &ComputeJob,
        anchorer: &PublicKey,
        credits: &[Credit],
    ) -> Result<(), TxError> {
        let bad = |why: &str| Err(TxError::BadCredit(why.into()));
        if credits.len() > MAX_CREDITS {
            return bad("a result credits at most 64 provers");
        }
        if credits.windows(2).any(|w| w[0].prover.0 >= w[1].prover.0) {
            return bad("credits are listed once per prover, in account order");
        }
        if credits.iter().map(|c| c.nodes.len()).sum::<usize>() > MAX_CREDITED_NODES {
            return bad("a result credits at most 1,024 nodes");
        }
        let tree = tree_of(job)?;
        let mut credited = std::collections::BTreeSet::new();
        for credit in credits {
            if !self.provers.contains_key(&credit.prover) {
                return bad("a credited account offers no compute");
            }
            if credit.nodes.is_empty() || credit.nodes.windows(2).any(|w| w[0] >= w[1]) {
                return bad("a credit lists its nodes once each, in order");
            }
            for node in &credit.nodes {
                if !tree.contains(*node) || !credited.insert(*node) {
                    return bad("a credited node is not in the job's tree, or credited twice");
                }
            }
            let messages: Vec<Digest> = credit
                .nodes
                .iter()
                .map(|n| receipt_message(&self.chain, id, anchorer, *n))
                .collect();
            let refs: Vec<&[u8]> = messages.iter().map(|m| &m.0[..]).collect();
            if !credit.prover.verify_aggregate(&refs, &credit.signature) {
                return bad("a credit's receipts are not its prover's signatures");
            }
        }
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

#[cfg(all(test, feature = "zkvm"))]
impl LedgerState {
    /// Moves job `from` to id `to`: tests anchor a fixture proof made for a fixed job id.
    pub(crate) fn move_job(&mut self, from: &Digest, to: Digest) -> Option<&mut ComputeJob> {
        let job = self.jobs.remove(from)?;
        self.jobs.insert(to, job);
        self.jobs.get_mut(&to)
    }
}
