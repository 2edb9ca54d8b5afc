//! Compute jobs in the ledger: the program's commitment derived by the ledger, the reward
//! held and paid out (credited provers, then the anchorer), results refused before they
//! can be carried when their proof does not verify for the sender, the job's input and the
//! named output, forged credits refused, expiry, and one verdict whatever a process has
//! verified before.
//!
//! The proof is a real one (`universal-proof.fixture`, written by `compute/tests/
//! zkvm_prove.rs`): the loop example's run for job [`FIXTURE_JOB`] anchored by account 2.
//! Layout: program commitment, beneficiary, input BlobId and length, output BlobId and
//! length, proof.

use nexus_compute::{binding::beneficiary, examples::Example, NodeRef, ProofTree, TreeShape};

use super::*;
use crate::chain::{create_genesis, propose_child, Built, ChainGenesis};
use crate::ledger::{receipt_message, Credit, Payout};

const FIXTURE: &[u8] = include_bytes!("universal-proof.fixture");
/// The job id the fixture's proof was made for (`LEDGER_TEST_JOB` in zkvm_prove.rs).
const FIXTURE_JOB: Digest = Digest([0x4a; 32]);

struct Fixture {
    commit: [u8; 32],
    beneficiary: [u8; 32],
    input: (BlobId, u64),
    output: (BlobId, u64),
    proof: Vec<u8>,
}

fn fixture() -> Fixture {
    let id = |at: usize| BlobId(FIXTURE[at..at + 32].try_into().expect("32 bytes"));
    let len = |at: usize| u64::from_be_bytes(FIXTURE[at..at + 8].try_into().expect("8 bytes"));
    Fixture {
        commit: FIXTURE[..32].try_into().expect("32 bytes"),
        beneficiary: FIXTURE[32..64].try_into().expect("32 bytes"),
        input: (id(64), len(96)),
        output: (id(104), len(136)),
        proof: FIXTURE[144..].to_vec(),
    }
}

fn loop_elf() -> Vec<u8> {
    Example::Loop
        .elf()
        .expect("the example guests are built")
        .to_vec()
}

/// Registers a replicated blob of `size` bytes with id `blob_id` from account `i`.
fn register_id(s: &mut LedgerState, i: u8, blob_id: BlobId, size: u64) -> BlobId {
    apply(
        s,
        i,
        TxKind::StoreBlob {
            blob_id,
            size,
            policy: PolicySpec::Replicated,
            epochs: 100,
        },
    )
    .expect("store");
    blob_id
}

/// Registers a replicated blob of `bytes` from account `i`.
fn register(s: &mut LedgerState, i: u8, bytes: &[u8]) -> BlobId {
    register_id(s, i, BlobId::of(bytes), bytes.len() as u64)
}

fn job_kind(program: Vec<u8>, input: BlobId, reward: u64, lifetime: u64) -> TxKind {
    TxKind::ComputeJob {
        program,
        input,
        max_cycles: 10_000_000,
        segments: 2,
        reward,
        lifetime,
    }
}

/// A state with the fixture's job submitted by account 1 (its program, input, output and
/// proof registered), moved to the id the fixture's proof names.
fn with_job(lifetime: u64) -> LedgerState {
    let mut s = genesis(3);
    let f = fixture();
    let elf = loop_elf();
    register(&mut s, 1, &elf);
    register_id(&mut s, 1, f.input.0, f.input.1);
    register_id(&mut s, 2, f.output.0, f.output.1);
    register(&mut s, 2, &f.proof);
    let kind = job_kind(elf, f.input.0, 500, lifetime);
    let id = job_id(&pk(1), s.account(&pk(1)).nonce, &kind);
    apply(&mut s, 1, kind).expect("job accepted");
    let job = s.move_job(&id, FIXTURE_JOB).expect("the job");
    assert_eq!(
        job.program_commit, f.commit,
        "the ledger derives the commitment the zkVM proved"
    );
    assert_eq!(
        beneficiary(&FIXTURE_JOB.0, &pk(2).0),
        f.beneficiary,
        "the fixture's proof is for account 2 (LEDGER_TEST_ANCHORER in zkvm_prove.rs)"
    );
    s
}

fn result_kind(output: BlobId, proof: Vec<u8>, credits: Vec<Credit>) -> TxKind {
    TxKind::ComputeResult {
        job: FIXTURE_JOB,
        output,
        proof_blob: BlobId::of(&proof),
        proof,
        credits,
    }
}

fn fixture_result(credits: Vec<Credit>) -> TxKind {
    let f = fixture();
    result_kind(f.output.0, f.proof, credits)
}

/// Account `i`'s credit for `nodes` of the fixture's job, its receipts made out to
/// `anchorer`.
fn credit(i: u8, anchorer: u8, nodes: &[(u16, u32)]) -> Credit {
    let nodes: Vec<NodeRef> = nodes
        .iter()
        .map(|&(level, index)| NodeRef { level, index })
        .collect();
    let signatures: Vec<_> = nodes
        .iter()
        .map(|n| key(i).sign(&receipt_message(&chain(), &FIXTURE_JOB, &pk(anchorer), *n).0))
        .collect();
    Credit {
        prover: pk(i),
        nodes,
        // No nodes: a signature of nothing in particular.
        signature: nexus_consensus::keys::aggregate(&signatures)
            .unwrap_or_else(|| key(i).sign(b"no receipt")),
    }
}

fn offer(s: &mut LedgerState, i: u8) {
    let kind = TxKind::OfferCompute {
        delegator: true,
        orchestrator: false,
        node: vec![i],
    };
    apply(s, i, kind).expect("offer");
}

/// Executes `kind` from account `i` as a block would and expects it refused, leaving the
/// state as it was (not even the nonce moves).
fn refused(s: &LedgerState, i: u8, kind: TxKind) -> TxError {
    let mut state = s.clone();
    let stx = tx(&state, i, kind);
    let err = state.execute_tx(&stx, verifier()).expect_err("refused");
    assert_eq!(&state, s, "a refused transaction changes nothing");
    err
}

#[test]
fn a_job_holds_its_reward_and_the_proven_result_pays_it() {
    let mut s = with_job(50);
    let supply = s.total_supply();
    assert_eq!(s.job(&FIXTURE_JOB).expect("job").state, JobState::Open);
    assert_eq!(s.sinks().0, 500, "the reward sits in escrow");
    let f = fixture();
    let before = s.account(&pk(2)).balance;
    apply(&mut s, 2, fixture_result(Vec::new())).expect("result");
    assert_eq!(s.account(&pk(2)).balance, before + 500);
    assert_eq!(s.sinks().0, 0);
    assert_eq!(s.total_supply(), supply);
    match &s.job(&FIXTURE_JOB).expect("job").state {
        JobState::Proven(result) => {
            assert_eq!((result.output, result.prover), (f.output.0, pk(2)));
            assert_eq!(result.proof, BlobId::of(&f.proof));
            assert_eq!(
                result.payouts,
                vec![Payout {
                    account: pk(2),
                    nodes: 0,
                    amount: 500
                }]
            );
        }
        other => panic!("not proven: {other:?}"),
    }
    // A second result for the same job is carried as failed: the job is closed.
    let again = tx(&s, 2, fixture_result(Vec::new()));
    assert_eq!(
        s.execute_tx(&again, verifier()),
        Ok(Err(TxError::JobClosed(FIXTURE_JOB)))
    );
}

#[test]
fn a_copied_or_front_run_proof_pays_a_stranger_nothing() {
    let s = with_job(50);
    // Account 3 sends account 2's result as its own, first: its proof names account 2 as
    // beneficiary, so it is refused outright, and the job stays open for account 2.
    let err = refused(&s, 3, fixture_result(Vec::new()));
    assert!(matches!(err, TxError::BadProof(_)), "{err}");
    let mut s = s;
    let before = s.account(&pk(3)).balance;
    apply(&mut s, 2, fixture_result(Vec::new())).expect("the beneficiary anchors it");
    assert_eq!(s.account(&pk(3)).balance, before);
    // The same proof for another job (same program and input, another id) is refused too.
    let mut other = with_job(50);
    let elsewhere = Digest([0x4b; 32]);
    other.move_job(&FIXTURE_JOB, elsewhere).expect("job");
    let f = fixture();
    let copied = TxKind::ComputeResult {
        job: elsewhere,
        output: f.output.0,
        proof_blob: BlobId::of(&f.proof),
        proof: f.proof,
        credits: Vec::new(),
    };
    assert!(matches!(refused(&other, 2, copied), TxError::BadProof(_)));
}

#[test]
fn credited_provers_are_paid_their_nodes_and_the_anchorer_the_rest() {
    let mut s = with_job(50);
    offer(&mut s, 3);
    offer(&mut s, 1);
    let supply = s.total_supply();
    let nodes = ProofTree::plan(2, TreeShape::WIDEST)
        .expect("tree")
        .nodes()
        .count() as u64;
    let share = 500 / (nodes + 1);
    let (b1, b2, b3) = (
        s.account(&pk(1)).balance,
        s.account(&pk(2)).balance,
        s.account(&pk(3)).balance,
    );
    let mut credits = vec![credit(3, 2, &[(0, 0), (0, 1)]), credit(1, 2, &[(1, 0)])];
    credits.sort_by_key(|c| c.prover.0);
    apply(&mut s, 2, fixture_result(credits)).expect("result");
    assert_eq!(s.account(&pk(3)).balance, b3 + 2 * share);
    assert_eq!(s.account(&pk(1)).balance, b1 + share);
    assert_eq!(s.account(&pk(2)).balance, b2 + 500 - 3 * share);
    assert_eq!(s.total_supply(), supply);
    let JobState::Proven(result) = &s.job(&FIXTURE_JOB).expect("job").state else {
        panic!("not proven");
    };
    assert_eq!(result.payouts.len(), 3);
    assert_eq!(result.payouts[2].account, pk(2));
}

#[test]
fn forged_or_malformed_credits_are_refused_not_carried() {
    let mut s = with_job(50);
    offer(&mut s, 3);
    offer(&mut s, 1);
    let mut stolen = credit(3, 2, &[(0, 0)]);
    stolen.prover = pk(1);
    let mut ordered = vec![credit(3, 2, &[(0, 0)]), credit(1, 2, &[(0, 1)])];
    ordered.sort_by_key(|c| std::cmp::Reverse(c.prover.0));
    let mut twice = vec![credit(3, 2, &[(0, 0)]), credit(1, 2, &[(0, 0)])];
    twice.sort_by_key(|c| c.prover.0);
    let cases = [
        // Account 3's receipts presented as account 1's.
        vec![stolen],
        // Receipts made out to another anchorer (account 1), replayed by account 2.
        vec![credit(3, 1, &[(0, 0)])],
        // A node the job's tree does not have.
        vec![credit(3, 2, &[(0, 7)])],
        // A node twice in one credit, nodes out of order, no nodes.
        vec![credit(3, 2, &[(0, 0), (0, 0)])],
        vec![credit(3, 2, &[(0, 1), (0, 0)])],
        vec![credit(3, 2, &[])],
        // Provers out of order; one node credited to two provers.
        ordered,
        twice,
        // An account that offers no compute (account 2 made no offer).
        vec![credit(2, 2, &[(0, 0)])],
    ];
    for credits in cases {
        let err = refused(&s, 2, fixture_result(credits.clone()));
        assert!(matches!(err, TxError::BadCredit(_)), "{credits:?}: {err}");
    }
}

#[test]
fn a_result_whose_proof_does_not_verify_is_refused_not_carried() {
    let mut s = with_job(50);
    let f = fixture();
    // An output blob (registered) whose bytes are not the ones the proof binds.
    let other_output = register(&mut s, 2, b"another output");
    let mut tampered = f.proof.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    let cases = [
        result_kind(other_output, f.proof.clone(), Vec::new()),
        result_kind(f.output.0, tampered, Vec::new()),
        result_kind(f.output.0, vec![1, 2, 3], Vec::new()),
        // The proof blob named is not the proof carried.
        TxKind::ComputeResult {
            job: FIXTURE_JOB,
            output: f.output.0,
            proof_blob: f.output.0,
            proof: f.proof.clone(),
            credits: Vec::new(),
        },
    ];
    for kind in cases {
        // The sender's own dry run (what its node runs before sending) says why at once.
        let unsigned = tx(&s, 2, kind.clone()).tx;
        let dry = s.clone().apply_unsigned(&unsigned, verifier());
        assert!(matches!(dry, Err(TxError::BadProof(_))), "{dry:?}");
        let err = refused(&s, 2, kind);
        assert!(matches!(err, TxError::BadProof(_)), "{err}");
    }
    // A proof of another program: the same proof against a job whose commitment differs.
    if let Some(job) = s.move_job(&FIXTURE_JOB, FIXTURE_JOB) {
        job.program_commit[0] ^= 1;
    }
    assert!(matches!(
        refused(&s, 2, fixture_result(Vec::new())),
        TxError::BadProof(_)
    ));
}

#[test]
fn an_unproven_job_expires_and_its_reward_returns() {
    let mut s = with_job(3);
    let balance = s.account(&pk(1)).balance;
    let deadline = s.job(&FIXTURE_JOB).expect("job").deadline;
    let events = run_to(&mut s, deadline);
    assert!(!events.contains(&LedgerEvent::JobExpired(FIXTURE_JOB)));
    let events = run_to(&mut s, deadline + 1);
    assert!(events.contains(&LedgerEvent::JobExpired(FIXTURE_JOB)));
    assert_eq!(s.job(&FIXTURE_JOB).expect("job").state, JobState::Expired);
    assert_eq!(s.account(&pk(1)).balance, balance + 500);
    assert_eq!(s.sinks().0, 0);
    let late = tx(&s, 2, fixture_result(Vec::new()));
    assert_eq!(
        s.execute_tx(&late, verifier()),
        Ok(Err(TxError::JobClosed(FIXTURE_JOB)))
    );
}

#[test]
fn provers_offer_and_withdraw_their_cpu() {
    let mut s = genesis(2);
    let offer = |d: bool, o: bool| TxKind::OfferCompute {
        delegator: d,
        orchestrator: o,
        node: b"peer".to_vec(),
    };
    apply(&mut s, 1, offer(true, false)).expect("offer");
    apply(&mut s, 2, offer(true, true)).expect("offer");
    let roles: Vec<_> = s
        .provers()
        .map(|(k, p)| (*k, p.delegator, p.orchestrator))
        .collect();
    assert!(roles.contains(&(pk(1), true, false)) && roles.contains(&(pk(2), true, true)));
    apply(&mut s, 1, offer(false, false)).expect("withdraw");
    assert_eq!(s.provers().count(), 1);
    let no_peer = TxKind::OfferCompute {
        delegator: true,
        orchestrator: false,
        node: Vec::new(),
    };
    assert!(apply(&mut s, 1, no_peer).is_err());
}

#[test]
fn a_job_names_only_registered_bytes_the_zkvm_runs_faithfully() {
    let mut s = genesis(2);
    let f = fixture();
    let elf = loop_elf();
    register(&mut s, 1, &elf);
    let input = register_id(&mut s, 1, f.input.0, f.input.1);
    let unknown = BlobId::of(b"never stored");
    let with = |edit: &dyn Fn(&mut TxKind)| {
        let mut kind = job_kind(elf.clone(), input, 10, 10);
        edit(&mut kind);
        kind
    };
    let mut patched = elf.clone();
    let last = patched.len() - 1;
    patched[last] ^= 1;
    let cases: Vec<(TxKind, &str)> = vec![
        // The program's bytes are not those of any registered blob.
        (job_kind(patched, input, 10, 10), "registered"),
        (job_kind(b"#!/bin/sh".to_vec(), input, 10, 10), "registered"),
        (job_kind(elf.clone(), unknown, 10, 10), "input"),
        (
            with(&|k| {
                if let TxKind::ComputeJob { segments, .. } = k {
                    *segments = 0;
                }
            }),
            "segments",
        ),
        (
            with(&|k| {
                if let TxKind::ComputeJob { segments, .. } = k {
                    *segments = MAX_JOB_SEGMENTS + 1;
                }
            }),
            "segments",
        ),
        (
            with(&|k| {
                if let TxKind::ComputeJob { max_cycles, .. } = k {
                    *max_cycles = 0;
                }
            }),
            "cycles",
        ),
        (job_kind(elf.clone(), input, 10, 0), "lifetime"),
        (job_kind(elf.clone(), input, FUNDS * 2, 10), "insufficient"),
    ];
    for (kind, why) in cases {
        let before = s.clone();
        let err = apply(&mut s, 1, kind.clone()).expect_err("refused");
        assert!(err.to_string().contains(why), "{why}: {err}");
        assert_eq!(s, before);
    }
    // A registered program the zkVM would not run as RISC-V means: the loop example with
    // its first instruction (`lui sp, 0x200` of crt0) made an `unimp`, which OpenVM 2.0.2
    // runs as a no-op. Refused, in words, with the instruction's address.
    let at = elf
        .windows(4)
        .position(|w| w == 0x0020_0137u32.to_le_bytes())
        .expect("crt0's first instruction");
    let mut unimp = elf.clone();
    unimp[at..at + 4].copy_from_slice(&0xc000_1073u32.to_le_bytes());
    register(&mut s, 1, &unimp);
    let err = apply(&mut s, 1, job_kind(unimp, input, 10, 10)).expect_err("refused");
    let why = err.to_string();
    assert!(
        why.contains("cannot be proven") && why.contains("GHSA-6p9w-9j7q-867r"),
        "{why}"
    );
    assert!(why.contains("at 0x200800"), "{why}");
    let stx = tx(&s, 2, fixture_result(Vec::new()));
    assert!(matches!(
        s.clone().execute_tx(&stx, verifier()),
        Err(TxError::UnknownJob(_))
    ));
}

/// What this process decides on a result for a job its chain's ledger does not have,
/// after (`NEXUS_VALIDITY_PROBE=warm`) or without (`cold`, the default) verifying the
/// same proof for a ledger that has the job: the proposal built from it and whether
/// another node accepts that block. Printed on a `VERDICT` line for
/// [`two_processes_reach_one_verdict_whatever_they_verified_before`].
#[test]
fn validity_probe() {
    let ledger = Genesis {
        params: params(),
        balances: (1..=3).map(|i| (pk(i), FUNDS)).collect(),
    };
    let g = create_genesis(
        ChainGenesis::solo("ledger-test", &key(1), "", ledger, 1_000).expect("genesis"),
    )
    .expect("genesis block");
    let result = tx(&g.ledger, 2, fixture_result(Vec::new()));
    if std::env::var("NEXUS_VALIDITY_PROBE").as_deref() == Ok("warm") {
        // The very same transaction, checked where its job exists: its proof verifies.
        assert_eq!(with_job(50).check_payable(&result, verifier()), Ok(()));
    }
    let round = g.block.header.round.next().expect("round");
    let Built {
        step,
        refused,
        failed,
    } = propose_child(
        pk(1),
        round,
        &g.block.header,
        &g.ledger,
        vec![result],
        2_000,
        verifier(),
    )
    .expect("a block");
    let accepted = crate::chain::accept_child(
        step.block.clone().into_inner(),
        &g.block.header,
        &g.ledger,
        verifier(),
    )
    .is_ok();
    let reasons: Vec<String> = refused.iter().map(|(_, e)| e.to_string()).collect();
    println!(
        "VERDICT refused={reasons:?} failed={} carried={} block={} accepted={accepted}",
        failed.len(),
        step.block.transactions.len(),
        step.block.header.hash(),
    );
    assert!(
        matches!(refused[..], [(_, TxError::UnknownJob(_))]),
        "{reasons:?}"
    );
}

#[test]
fn two_processes_reach_one_verdict_whatever_they_verified_before() {
    let exe = std::env::current_exe().expect("this test binary");
    let verdict = |mode: &str| {
        let out = std::process::Command::new(&exe)
            .args([
                "--exact",
                "ledger::tests::compute::validity_probe",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("NEXUS_VALIDITY_PROBE", mode)
            .output()
            .expect("run the probe");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{mode} probe failed: {stdout}");
        stdout
            .lines()
            .find_map(|l| l.find("VERDICT").map(|at| l[at..].to_owned()))
            .unwrap_or_else(|| panic!("no verdict from the {mode} probe: {stdout}"))
    };
    let (warm, cold) = (verdict("warm"), verdict("cold"));
    assert_eq!(warm, cold);
    assert!(
        cold.contains("carried=0") && cold.contains("unknown compute job"),
        "{cold}"
    );
}
