//! Proving a real two-segment job node by node, as delegators and orchestrators do, and
//! checking that only the true statement verifies. Slow (minutes): one test holds it all
//! so that keys are generated once and at most one prover runs at a time.

use std::path::PathBuf;

use nexus_compute::{
    binding::{beneficiary, blob_id, public_value, NO_BENEFICIARY},
    examples::{loop_input, Example},
    zkvm::{NodeProof, ProofError, UniversalProof, Verifier, Zkvm},
    Level, NodeRef, ProofTree, TreeShape,
};

fn key_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("zkvm-keys")
}

/// The job the ledger's tests anchor this test's proof for, and the account that anchors
/// it (their test account 2, `SigningKey::from_seed(&[2; 32])`): the proof written for them
/// names this beneficiary.
const LEDGER_TEST_JOB: [u8; 32] = [0x4a; 32];
const LEDGER_TEST_ANCHORER: &str = "ac80a5e08c712d5f08f0306ad743f7d8c215d982489b84a1d6ba805733d94c006e8938f9089a75db3ffa135af33bc69a";

fn node(level: u16, index: u32) -> NodeRef {
    NodeRef { level, index }
}

#[test]
fn a_job_proven_node_by_node_verifies_and_no_other_statement_does() {
    let zkvm = Zkvm::open(&key_dir()).expect("zkvm keys");
    let program = zkvm
        .load(Example::Loop.elf().expect("built"))
        .expect("load");
    let input = loop_input(200_000, 5);
    let anchorer = hex::decode(LEDGER_TEST_ANCHORER).expect("hex");
    let paid_to = beneficiary(&LEDGER_TEST_JOB, &anchorer);
    let run = zkvm
        .run(&program, &input, paid_to, 10_000_000)
        .expect("run");
    assert_eq!(run.segments.len(), 2, "the test wants two segments");
    let tree = ProofTree::plan(2, TreeShape::WIDEST).expect("plan");
    let boundaries = zkvm.boundaries(&program, &input, &run).expect("boundaries");

    // Delegators prove the segments; proofs travel as bytes and are checked on receipt.
    let received = |p: NodeProof| NodeProof::from_bytes(&p.to_bytes()).expect("decode");
    let s0 = received(
        zkvm.prove_segment(&program, &input, &run, 0)
            .expect("segment 0"),
    );
    let s1 = received(
        zkvm.prove_segment(&program, &input, &run, 1)
            .expect("segment 1"),
    );
    zkvm.check(&program, &tree, node(0, 0), &boundaries, &s0)
        .expect("s0 checks");
    zkvm.check(&program, &tree, node(0, 1), &boundaries, &s1)
        .expect("s1 checks");

    // A segment proof from the wrong start state, or of another input's run, is refused.
    let misplaced = zkvm.check(&program, &tree, node(0, 0), &boundaries, &s1);
    assert!(
        matches!(misplaced, Err(ProofError::WrongStatement(_))),
        "{misplaced:?}"
    );
    let other_input = loop_input(200_000, 6);
    let other_run = zkvm
        .run(&program, &other_input, paid_to, 10_000_000)
        .expect("run");
    let other = zkvm
        .boundaries(&program, &other_input, &other_run)
        .expect("boundaries");
    let foreign = zkvm.check(&program, &tree, node(0, 0), &other, &s0);
    assert!(
        matches!(foreign, Err(ProofError::WrongStatement(_))),
        "{foreign:?}"
    );
    // Proofs of another program are refused.
    let sha = zkvm
        .load(Example::Sha256.elf().expect("built"))
        .expect("load");
    let wrong_program = zkvm.check(&sha, &tree, node(0, 0), &boundaries, &s0);
    assert!(
        matches!(wrong_program, Err(ProofError::WrongStatement(_))),
        "{wrong_program:?}"
    );
    // A flipped byte never passes.
    let mut bytes = s0.to_bytes();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    if let Ok(tampered) = NodeProof::from_bytes(&bytes) {
        assert!(zkvm
            .check(&program, &tree, node(0, 0), &boundaries, &tampered)
            .is_err());
    }

    // Orchestrators fold level by level, checking each proof they receive.
    let leaf = received(zkvm.fold(Level::Leaf, &[s0, s1]).expect("leaf"));
    zkvm.check(&program, &tree, node(1, 0), &boundaries, &leaf)
        .expect("leaf checks");
    let wrong_level = zkvm.check(&program, &tree, node(2, 0), &boundaries, &leaf);
    assert!(
        wrong_level.is_err(),
        "a leaf proof passed as an internal one"
    );
    let for_leaf = received(zkvm.fold(Level::InternalForLeaf, &[leaf]).expect("i4l"));
    zkvm.check(&program, &tree, node(2, 0), &boundaries, &for_leaf)
        .expect("i4l checks");
    let root = received(
        zkvm.fold(Level::InternalRecursive(0), &[for_leaf])
            .expect("root"),
    );
    zkvm.check(&program, &tree, tree.root(), &boundaries, &root)
        .expect("root checks");
    let universal = zkvm
        .seal(&program, &input, &run, &tree, &root)
        .expect("seal");
    let bytes = universal.to_bytes();
    println!("Universal Proof: {} bytes", bytes.len());
    // The ledger's tests verify this proof: commitment, beneficiary, the input's and the
    // output's BlobId and length, proof.
    let fixture = [
        &program.commit()[..],
        &paid_to,
        &blob_id(&input),
        &(input.len() as u64).to_be_bytes(),
        &blob_id(&run.output),
        &(run.output.len() as u64).to_be_bytes(),
        &bytes,
    ]
    .concat();
    std::fs::write(key_dir().join("universal-proof.fixture"), fixture).expect("fixture");
    assert!(bytes.len() < 300_000);

    // Anyone verifies it with the small cached key alone, or the one shipped in the build
    // (which must be the key these proving keys derive).
    let verifier = Verifier::open(&key_dir()).expect("verifier");
    assert!(
        Verifier::embedded().key_bytes() == zkvm.verifier().key_bytes(),
        "compute/src/zkvm/universal.vk is stale: copy the one in {}",
        key_dir().display()
    );
    let proof = UniversalProof::from_bytes(&bytes).expect("decode");
    verifier
        .verify(&proof, program.commit(), run.public_value)
        .expect("the Universal Proof verifies");
    Verifier::embedded()
        .verify(&proof, program.commit(), run.public_value)
        .expect("the embedded key verifies it too");
    // ... and for nothing else: another output, another input, another program, another
    // beneficiary (the same job anchored by someone else, or another job).
    let other_output = public_value(&paid_to, &blob_id(&input), &blob_id(&[0, 0, 0, 0]));
    assert!(verifier
        .verify(&proof, program.commit(), other_output)
        .is_err());
    assert!(verifier
        .verify(&proof, program.commit(), other_run.public_value)
        .is_err());
    assert!(verifier
        .verify(&proof, sha.commit(), run.public_value)
        .is_err());
    let output_id = blob_id(&run.output);
    for stranger in [
        beneficiary(&LEDGER_TEST_JOB, b"a stranger's account key"),
        beneficiary(&[0x4b; 32], &anchorer),
        NO_BENEFICIARY,
    ] {
        let copied = public_value(&stranger, &blob_id(&input), &output_id);
        assert!(verifier.verify(&proof, program.commit(), copied).is_err());
    }
    // A root wrapped twice (what a root over several children gets) verifies alike.
    let twice = zkvm
        .seal_wrapped(&program, &input, &run, &root, 2)
        .expect("seal twice")
        .to_bytes();
    println!("Universal Proof wrapped twice: {} bytes", twice.len());
    verifier
        .verify(
            &UniversalProof::from_bytes(&twice).expect("decode"),
            program.commit(),
            run.public_value,
        )
        .expect("a twice-wrapped Universal Proof verifies");
    assert!(zkvm.seal_wrapped(&program, &input, &run, &root, 0).is_err());
    // A tampered byte anywhere in the proof body is refused.
    let raw = zstd::decode_all(&bytes[..]).expect("zstd");
    for at in [raw.len() / 5, raw.len() / 2, raw.len() - 40] {
        let mut flipped = raw.clone();
        flipped[at] ^= 0x10;
        let recompressed = zstd::encode_all(&flipped[..], 0).expect("zstd");
        let verdict = UniversalProof::from_bytes(&recompressed)
            .and_then(|p| verifier.verify(&p, program.commit(), run.public_value));
        assert!(verdict.is_err(), "a proof with byte {at} flipped verified");
    }
}
