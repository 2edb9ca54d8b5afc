//! Compute jobs in the ledger: the reward held and paid, results whose Universal Proof
//! does not verify refused before they can be carried, expiry, and refused requests. The
//! proof is a real one (`universal-proof.fixture`, written by `compute/tests/
//! zkvm_prove.rs`): 32 bytes of program commitment, the input's and the output's SHA-256,
//! then the proof.

use super::*;

const FIXTURE: &[u8] = include_bytes!("universal-proof.fixture");

struct Fixture {
    commit: [u8; 32],
    input_sha256: [u8; 32],
    output_sha256: [u8; 32],
    proof: Vec<u8>,
}

fn fixture() -> Fixture {
    let part = |i: usize| FIXTURE[32 * i..32 * (i + 1)].try_into().expect("32 bytes");
    Fixture {
        commit: part(0),
        input_sha256: part(1),
        output_sha256: part(2),
        proof: FIXTURE[96..].to_vec(),
    }
}

/// Registers a replicated blob of `bytes` from account `i`.
fn register(s: &mut LedgerState, i: u8, bytes: &[u8]) -> BlobId {
    let blob_id = BlobId::of(bytes);
    apply(
        s,
        i,
        TxKind::StoreBlob {
            blob_id,
            size: bytes.len() as u64,
            policy: PolicySpec::Replicated,
            epochs: 100,
        },
    )
    .expect("store");
    blob_id
}

fn job_kind(program: BlobId, input: BlobId, f: &Fixture, reward: u64, lifetime: u64) -> TxKind {
    TxKind::ComputeJob {
        program,
        input,
        program_commit: f.commit,
        input_sha256: f.input_sha256,
        max_cycles: 10_000_000,
        segments: 2,
        reward,
        lifetime,
    }
}

/// A state with a submitted job from account 1; returns the job's id and an output blob.
fn with_job(lifetime: u64) -> (LedgerState, Digest, BlobId) {
    let mut s = genesis(3);
    let f = fixture();
    let program = register(&mut s, 1, b"program");
    let input = register(&mut s, 1, b"input");
    let output = register(&mut s, 2, b"output");
    register(&mut s, 2, &f.proof);
    let kind = job_kind(program, input, &f, 500, lifetime);
    let id = job_id(&pk(1), s.account(&pk(1)).nonce, &kind);
    apply(&mut s, 1, kind).expect("job accepted");
    (s, id, output)
}

fn result_kind(job: Digest, output: BlobId, output_sha256: [u8; 32], proof: Vec<u8>) -> TxKind {
    TxKind::ComputeResult {
        job,
        output,
        output_sha256,
        proof_blob: BlobId::of(&proof),
        proof,
        failures: Vec::new(),
    }
}

#[test]
fn a_job_holds_its_reward_and_the_proven_result_pays_it() {
    let (mut s, id, output) = with_job(50);
    let supply = s.total_supply();
    assert_eq!(s.job(&id).expect("job").state, JobState::Open);
    assert_eq!(s.sinks().0, 500, "the reward sits in escrow");
    let f = fixture();
    let before = s.account(&pk(2)).balance;
    apply(
        &mut s,
        2,
        result_kind(id, output, f.output_sha256, f.proof.clone()),
    )
    .expect("result");
    assert_eq!(s.account(&pk(2)).balance, before + 500);
    assert_eq!(s.sinks().0, 0);
    assert_eq!(s.total_supply(), supply);
    match &s.job(&id).expect("job").state {
        JobState::Proven(result) => {
            assert_eq!((result.output, result.prover), (output, pk(2)));
            assert_eq!(result.proof, BlobId::of(&f.proof));
            assert_eq!(result.output_sha256, f.output_sha256);
        }
        other => panic!("not proven: {other:?}"),
    }
    // A second result for the same job is carried as failed: the job is closed.
    let again = tx(&s, 3, result_kind(id, output, f.output_sha256, f.proof));
    assert_eq!(s.execute_tx(&again), Ok(Err(TxError::JobClosed(id))));
}

fn with_failures(kind: TxKind, list: &[(u8, u32)]) -> TxKind {
    let TxKind::ComputeResult {
        job,
        output,
        output_sha256,
        proof_blob,
        proof,
        ..
    } = kind
    else {
        unreachable!("a result")
    };
    TxKind::ComputeResult {
        job,
        output,
        output_sha256,
        proof_blob,
        proof,
        failures: list
            .iter()
            .map(|&(i, count)| ProverFailures {
                prover: pk(i),
                count,
            })
            .collect(),
    }
}

#[test]
fn failures_are_recorded_with_the_result_and_counted_per_prover() {
    let (mut s, id, output) = with_job(50);
    let offer = TxKind::OfferCompute {
        delegator: true,
        orchestrator: false,
        node: b"peer".to_vec(),
    };
    apply(&mut s, 3, offer.clone()).expect("offer");
    let f = fixture();
    let result = result_kind(id, output, f.output_sha256, f.proof.clone());
    // pk(1) is no prover: recorded with the job, counted nowhere.
    let mut list = [(1u8, 2u32), (3, 5)];
    list.sort_by_key(|(i, _)| pk(*i).0);
    apply(&mut s, 2, with_failures(result, &list)).expect("result");
    let JobState::Proven(proven) = &s.job(&id).expect("job").state else {
        panic!("not proven");
    };
    assert_eq!(proven.failures.len(), 2);
    let counted = |s: &LedgerState| {
        s.provers()
            .find(|(k, _)| **k == pk(3))
            .map(|(_, p)| p.failures)
    };
    assert_eq!(counted(&s), Some(5));
    // A renewed offer keeps the count.
    apply(&mut s, 3, offer).expect("offer again");
    assert_eq!(counted(&s), Some(5));
}

#[test]
fn malformed_failure_records_are_refused_not_carried() {
    let (s, id, output) = with_job(50);
    let f = fixture();
    let result = || result_kind(id, output, f.output_sha256, f.proof.clone());
    let (mut low, mut high) = (1u8, 3u8);
    if pk(low).0 > pk(high).0 {
        std::mem::swap(&mut low, &mut high);
    }
    let too_many: Vec<(u8, u32)> = {
        let mut keys: Vec<u8> = (0..=64).collect();
        keys.sort_by_key(|i| pk(*i).0);
        keys.into_iter().map(|i| (i, 1)).collect()
    };
    let cases = [
        vec![(high, 1), (low, 1)],
        vec![(low, 1), (low, 2)],
        vec![(low, 0)],
        vec![(low, (1 << 16) + 1)],
        too_many,
    ];
    for list in cases {
        let mut state = s.clone();
        let stx = tx(&state, 2, with_failures(result(), &list));
        let refused = state.execute_tx(&stx);
        assert!(
            matches!(refused, Err(TxError::BadJob(_))),
            "{list:?}: {refused:?}"
        );
        assert_eq!(state, s);
    }
}

#[test]
fn a_result_whose_proof_does_not_verify_is_refused_not_carried() {
    let (s, id, output) = with_job(50);
    let f = fixture();
    let mut tampered = f.proof.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    let cases = [
        // Another output than the proof binds.
        result_kind(id, output, [7; 32], f.proof.clone()),
        // A flipped byte.
        result_kind(id, output, f.output_sha256, tampered),
        // Not a proof at all.
        result_kind(id, output, f.output_sha256, vec![1, 2, 3]),
        // The proof blob named is not the proof carried.
        TxKind::ComputeResult {
            job: id,
            output,
            output_sha256: f.output_sha256,
            proof_blob: output,
            proof: f.proof.clone(),
            failures: Vec::new(),
        },
    ];
    for kind in cases {
        let mut state = s.clone();
        let stx = tx(&state, 2, kind);
        let refused = state.execute_tx(&stx);
        assert!(matches!(refused, Err(TxError::BadProof(_))), "{refused:?}");
        assert_eq!(
            state, s,
            "a refused result changes nothing, not even the nonce"
        );
    }
    // A proof of another program: the same proof against a job with another commitment.
    let mut other = genesis(3);
    let program = register(&mut other, 1, b"program");
    let input = register(&mut other, 1, b"input");
    let out = register(&mut other, 2, b"output");
    register(&mut other, 2, &f.proof);
    let mut kind = job_kind(program, input, &f, 1, 50);
    if let TxKind::ComputeJob { program_commit, .. } = &mut kind {
        program_commit[0] ^= 1;
    }
    let other_id = job_id(&pk(1), other.account(&pk(1)).nonce, &kind);
    apply(&mut other, 1, kind).expect("job");
    let stx = tx(
        &other,
        2,
        result_kind(other_id, out, f.output_sha256, f.proof),
    );
    assert!(matches!(other.execute_tx(&stx), Err(TxError::BadProof(_))));
}

#[test]
fn an_unproven_job_expires_and_its_reward_returns() {
    let (mut s, id, output) = with_job(3);
    let balance = s.account(&pk(1)).balance;
    let deadline = s.job(&id).expect("job").deadline;
    let events = run_to(&mut s, deadline);
    assert!(!events.contains(&LedgerEvent::JobExpired(id)));
    let events = run_to(&mut s, deadline + 1);
    assert!(events.contains(&LedgerEvent::JobExpired(id)));
    assert_eq!(s.job(&id).expect("job").state, JobState::Expired);
    assert_eq!(s.account(&pk(1)).balance, balance + 500);
    assert_eq!(s.sinks().0, 0);
    let f = fixture();
    let late = tx(&s, 2, result_kind(id, output, f.output_sha256, f.proof));
    assert_eq!(s.execute_tx(&late), Ok(Err(TxError::JobClosed(id))));
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
fn malformed_jobs_are_refused() {
    let mut s = genesis(2);
    let f = fixture();
    let program = register(&mut s, 1, b"program");
    let input = register(&mut s, 1, b"input");
    let unknown = BlobId::of(b"never stored");
    let with = |edit: &dyn Fn(&mut TxKind)| {
        let mut kind = job_kind(program, input, &f, 10, 10);
        edit(&mut kind);
        kind
    };
    let cases: Vec<TxKind> = vec![
        job_kind(unknown, input, &f, 10, 10),
        job_kind(program, unknown, &f, 10, 10),
        with(&|k| {
            if let TxKind::ComputeJob { segments, .. } = k {
                *segments = 0;
            }
        }),
        with(&|k| {
            if let TxKind::ComputeJob { segments, .. } = k {
                *segments = MAX_JOB_SEGMENTS + 1;
            }
        }),
        with(&|k| {
            if let TxKind::ComputeJob { max_cycles, .. } = k {
                *max_cycles = 0;
            }
        }),
        job_kind(program, input, &f, 10, 0),
        job_kind(program, input, &f, FUNDS * 2, 10),
    ];
    for kind in cases {
        let before = s.clone();
        assert!(apply(&mut s, 1, kind.clone()).is_err(), "{kind:?} accepted");
        assert_eq!(s, before);
    }
    let stx = tx(
        &s,
        1,
        result_kind(Digest::of(&[b"no job"]), program, [0; 32], f.proof),
    );
    assert!(matches!(
        s.clone().execute_tx(&stx),
        Err(TxError::UnknownJob(_))
    ));
}
