//! Chain tests: proposing and accepting blocks, every rejection reason, inclusion proofs.

use proptest::prelude::*;

use std::sync::Arc;

use super::*;
use crate::blob::BlobId;
use crate::block::{block_data, DataHeader};
use crate::block::{BlockHash, Height, InclusionError};
use crate::keys::SigningKey;
use crate::ledger::{Genesis, LedgerParams, PolicySpec, Transaction, TxKind};
use crate::test_support::verifier;
use nexus_consensus::ChainTag;

fn key(i: u8) -> SigningKey {
    SigningKey::from_seed(&[i; 32])
}

fn ledger_for(users: &[u8]) -> Genesis {
    Genesis {
        params: LedgerParams::default(),
        balances: users
            .iter()
            .map(|u| (key(*u).public(), 1_000_000_000))
            .collect(),
    }
}

/// A chain validated by key 1 alone, funding `users`.
fn genesis_for(users: &[u8]) -> ChainGenesis {
    ChainGenesis::solo("test", &key(1), "", ledger_for(users), 1_000).expect("genesis")
}

/// Key 1 proposes the child of `parent` in the next round.
fn propose(
    parent: &Header,
    state: &LedgerState,
    candidates: Vec<SignedTransaction>,
) -> Result<Built, BlockError> {
    let round = parent.round.next().expect("round");
    propose_child(
        key(1).public(),
        round,
        parent,
        state,
        candidates,
        2_000,
        verifier(),
    )
}

fn store_tx(user: u8, nonce: u64, i: u64) -> SignedTransaction {
    Transaction {
        chain: ChainTag::of("test"),
        fee: 1,
        sender: key(user).public(),
        nonce,
        kind: TxKind::StoreBlob {
            blob_id: BlobId::of(&i.to_le_bytes()),
            size: 8,
            policy: PolicySpec::Replicated,
            epochs: 1,
        },
    }
    .sign(&key(user))
}

/// Genesis by key 1 and one child carrying `n` StoreBlob transactions from user 2.
fn chain(n: u64) -> (Transition, Transition) {
    let g = create_genesis(genesis_for(&[1, 2])).expect("genesis");
    let txs = (0..n).map(|i| store_tx(2, i, i)).collect();
    let Built {
        step: child,
        refused,
        ..
    } = propose(&g.block.header, &g.ledger, txs).expect("child");
    assert!(refused.is_empty());
    (g, child)
}

#[test]
fn proposed_blocks_are_accepted_by_others() {
    let (g, child) = chain(3);
    let g2 =
        accept_genesis(g.block.clone().into_inner(), Some(g.block.header.hash())).expect("genesis");
    assert_eq!(g2.ledger, g.ledger);
    let c2 = accept_child(
        child.block.clone().into_inner(),
        &g.block.header,
        &g.ledger,
        verifier(),
    )
    .expect("child");
    assert_eq!(c2.ledger.state_root(), child.block.header.state_root);
    assert_eq!(child.block.registrations().count(), 3);
}

#[test]
fn proposer_leaves_out_refused_transactions() {
    let g = create_genesis(genesis_for(&[1, 2])).expect("genesis");
    let replay = store_tx(2, 5, 0);
    let Built {
        step: child,
        refused,
        ..
    } = propose(&g.block.header, &g.ledger, vec![store_tx(2, 0, 0), replay]).expect("child");
    assert_eq!(child.block.transactions.len(), 1);
    assert_eq!(refused.len(), 1);
}

#[test]
fn a_transaction_whose_action_fails_pays_its_fee_and_does_nothing_else() {
    let g = create_genesis(genesis_for(&[1, 2])).expect("genesis");
    let (gh, gl) = (&g.block.header, &g.ledger);
    // The second registers blob 0 again (a lost race): it fails, and is charged.
    let txs = vec![store_tx(2, 0, 0), store_tx(2, 1, 0), store_tx(2, 2, 2)];
    let Built {
        step: child,
        refused,
        ..
    } = propose(gh, gl, txs.clone()).expect("child");
    assert!(refused.is_empty());
    assert_eq!(child.block.transactions.len(), 3);
    assert_eq!(child.block.failed, vec![1]);
    let registered: Vec<u32> = child.block.registrations().map(|(i, _)| i).collect();
    assert_eq!(registered, vec![0, 2]);
    assert!(child.block.inclusion_proof(1).is_none());
    let proof = child.block.inclusion_proof(2).expect("proof");
    proof
        .verify(&BlobId::of(&2u64.to_le_bytes()))
        .expect("effective");

    // Exactly one fee more than a block without it, and its nonce is used.
    let sender = key(2).public();
    let Built { step: without, .. } = propose(gh, gl, vec![txs[0].clone()]).expect("child");
    let fee = LedgerParams::default().min_tx_fee;
    let registered_two = child.ledger.account(&sender).balance;
    let Built { step: both, .. } =
        propose(gh, gl, vec![txs[0].clone(), store_tx(2, 1, 2)]).expect("child");
    assert_eq!(registered_two + fee, both.ledger.account(&sender).balance);
    assert!(without.ledger.account(&sender).balance > both.ledger.account(&sender).balance);
    assert_eq!(child.ledger.account(&sender).nonce, 3);

    // Others accept it, and only with its outcomes as executed.
    let block = child.block.clone().into_inner();
    let accepted = accept_child(block.clone(), gh, gl, verifier()).expect("accepted");
    assert_eq!(accepted.ledger, child.ledger);
    let mut claims_success = block.clone();
    claims_success.failed.clear();
    assert_eq!(
        accept_child(claims_success, gh, gl, verifier()).err(),
        Some(BlockError::TransactionsMismatch)
    );
    let rebuilt = built(
        gh,
        txs,
        child.block.header.state_root,
        gl.params().data_dims,
    );
    assert_eq!(
        accept_child(rebuilt, gh, gl, verifier()).err(),
        Some(BlockError::OutcomesMismatch)
    );
    let mut out_of_block = block;
    out_of_block.failed = vec![7];
    assert_eq!(
        accept_child(out_of_block, gh, gl, verifier()).err(),
        Some(BlockError::BadOutcomes)
    );
}

/// A child of `parent`, whatever its contents, with its data committed in `dims`
/// dimensions.
fn built(
    parent: &Header,
    transactions: Vec<SignedTransaction>,
    state_root: Digest,
    dims: u8,
) -> Block {
    let data = block_data(&transactions, dims).expect("data");
    let slot = Slot {
        parent: Some(parent),
        round: parent.round.next().expect("round"),
        proposer: key(1).public(),
        timestamp_ms: 5,
        spec: parent.spec,
    };
    Block::build(slot, transactions, Vec::new(), state_root, None, data).expect("build")
}

#[test]
fn bad_blocks_are_rejected_with_the_reason() {
    let (g, child) = chain(3);
    let (gh, gl) = (&g.block.header, &g.ledger);
    let base = child.block.clone().into_inner();

    let mut b = base.clone();
    b.header.height = Height(5);
    assert!(matches!(
        accept_child(b, gh, gl, verifier()),
        Err(BlockError::WrongHeight { .. })
    ));

    let mut b = base.clone();
    b.header.parent = BlockHash([9; 32]);
    assert!(matches!(
        accept_child(b, gh, gl, verifier()),
        Err(BlockError::WrongParent { .. })
    ));

    let mut b = base.clone();
    b.transactions.pop();
    assert_eq!(
        accept_child(b, gh, gl, verifier()).err(),
        Some(BlockError::TransactionsMismatch)
    );

    // A round not above the parent's, or another chain spec.
    let mut b = base.clone();
    b.header.round = gh.round;
    assert_eq!(
        accept_child(b, gh, gl, verifier()).err(),
        Some(BlockError::BadConsensusFields)
    );
    let mut b = base.clone();
    b.header.spec = Digest([1; 32]);
    assert_eq!(
        accept_child(b, gh, gl, verifier()).err(),
        Some(BlockError::BadConsensusFields)
    );

    // The claimed state root is not what the transactions give.
    let b = built(gh, base.transactions.clone(), Digest::ZERO, 2);
    assert!(matches!(
        accept_child(b, gh, gl, verifier()),
        Err(BlockError::StateRootMismatch { .. })
    ));

    // A transaction the ledger refuses makes the block invalid.
    let bad = vec![store_tx(2, 7, 0)];
    let b = built(gh, bad, gl.state_root(), 2);
    assert!(matches!(
        accept_child(b, gh, gl, verifier()),
        Err(BlockError::InvalidTransaction { index: 0, .. })
    ));

    // The header's data commitment must be the payload's, in the network's dimensions.
    let mut b = base.clone();
    b.header.data.root = nexus_das::DataRoot([1; 32]);
    assert_eq!(
        accept_child(b, gh, gl, verifier()).err(),
        Some(BlockError::DataMismatch)
    );
    let b = built(gh, base.transactions.clone(), base.header.state_root, 3);
    assert_eq!(
        accept_child(b, gh, gl, verifier()).err(),
        Some(BlockError::DataMismatch)
    );

    assert!(accept_genesis(g.block.clone().into_inner(), Some(BlockHash([1; 32]))).is_err());
    assert!(accept_genesis(child.block.clone().into_inner(), None).is_err());
    let mut forged = g.block.clone().into_inner();
    let mut other = genesis_for(&[1, 2]);
    other.ledger = ledger_for(&[3]);
    forged.genesis = Some(other);
    assert!(
        accept_genesis(forged, None).is_err(),
        "ledger genesis is bound by the state root"
    );
    let mut forged = g.block.clone().into_inner();
    let mut other = genesis_for(&[1, 2]);
    other.spec.chain_id = "another".into();
    forged.genesis = Some(other);
    assert!(
        accept_genesis(forged, None).is_err(),
        "chain spec is bound by the header"
    );
    // Anyone given the same genesis builds the same block.
    let again = create_genesis(genesis_for(&[1, 2])).expect("genesis");
    assert_eq!(again.block.header.hash(), gh.hash());
}

/// A `das` registration of `data`, committed the way its uploader would.
fn das_tx(user: u8, nonce: u64, data: &[u8]) -> SignedTransaction {
    let commitment = DataHeader::commit(data, 2).expect("commit");
    Transaction {
        chain: ChainTag::of("test"),
        fee: 1,
        sender: key(user).public(),
        nonce,
        kind: TxKind::StoreBlob {
            blob_id: BlobId::of(data),
            size: data.len() as u64,
            policy: PolicySpec::Das { data: commitment },
            epochs: 1,
        },
    }
    .sign(&key(user))
}

#[test]
fn a_das_blob_brings_its_own_commitment_and_rides_alone() {
    let g = create_genesis(genesis_for(&[1, 2])).expect("genesis");
    let (gh, gl) = (&g.block.header, &g.ledger);
    let (a, b) = (vec![7u8; 300_000], vec![9u8; 5]);

    // The block's data commitment is the registration's: nothing is encoded to build it.
    let txs = vec![das_tx(2, 0, &a), store_tx(2, 1, 0)];
    let Built {
        step: child,
        refused,
        ..
    } = propose(gh, gl, txs).expect("child");
    assert!(refused.is_empty());
    assert_eq!(
        child.block.header.data,
        DataHeader::commit(&a, 2).expect("commit")
    );
    // A block without a das blob commits to the empty grid.
    let Built { step: plain, .. } = propose(gh, gl, vec![store_tx(2, 0, 0)]).expect("child");
    assert!(plain.block.header.data.is_empty());

    // Others accept it without the blob's bytes, but not with another commitment.
    let block = child.block.clone().into_inner();
    accept_child(block.clone(), gh, gl, verifier()).expect("accepted without the bytes");
    let mut wrong = block;
    wrong.header.data.params.data_len += 1;
    assert_eq!(
        accept_child(wrong, gh, gl, verifier()).err(),
        Some(BlockError::DataMismatch)
    );

    // Two das blobs never share a block: one grid per block for light clients.
    assert_eq!(
        propose(gh, gl, vec![das_tx(2, 0, &a), das_tx(2, 1, &b)]).err(),
        Some(BlockError::TooManyDasBlobs)
    );
}

#[test]
fn das_blobs_too_large_or_with_a_layout_that_does_not_fit_fail_and_commit_no_data() {
    let mut genesis = genesis_for(&[1, 2]);
    genesis.ledger.params.max_block_data = 1_000;
    let g = create_genesis(genesis).expect("genesis");
    let (gh, gl) = (&g.block.header, &g.ledger);
    // One blob larger than a block fails with the reason (and pays its fee).
    let big = vec![3u8; 1_001];
    let built = propose(gh, gl, vec![das_tx(2, 0, &big)]).expect("child");
    assert!(matches!(
        &built.failed[..],
        [(0, crate::ledger::TxError::InvalidStorage(m))] if m.contains("at most 1000 bytes")
    ));
    assert_eq!(
        built.step.block.header.data,
        block_data([], gl.params().data_dims).expect("empty")
    );
    // A commitment whose layout is not the blob's size in the network's dimensions.
    let mut lying = das_tx(2, 0, &[1u8; 100]);
    if let TxKind::StoreBlob { size, .. } = &mut lying.tx.kind {
        *size = 999;
    }
    let lying = lying.tx.sign(&key(2));
    let built = propose(gh, gl, vec![lying]).expect("child");
    assert!(matches!(
        &built.failed[..],
        [(0, crate::ledger::TxError::InvalidStorage(m))] if m.contains("layout")
    ));
}

proptest! {
    #[test]
    fn inclusion_proofs_verify_for_every_index_and_reject_tampering(
        n in 1u64..40, pick in any::<u32>(), byte in 0usize..32
    ) {
        let (_, child) = chain(n);
        let index = pick % n as u32;
        let proof = child.block.inclusion_proof(index).expect("in range");
        let id = proof.registration().expect("store blob").blob_id;
        prop_assert_eq!(proof.verify(&id), Ok(()));
        prop_assert!(proof.verify(&BlobId([0; 32])).is_err());

        let mut bad = proof.clone();
        bad.index = (index + 1) % n as u32;
        if n > 1 {
            prop_assert!(bad.verify(&id).is_err());
        }
        let mut bad = proof.clone();
        bad.transaction.tx.nonce += 1;
        prop_assert_eq!(bad.verify(&id), Err(InclusionError::PathMismatch));
        if let Some(s) = proof.path.siblings.first() {
            let mut bad = proof.clone();
            let mut s = *s;
            s.0[byte] ^= 0x80;
            bad.path.siblings[0] = s;
            prop_assert_eq!(bad.verify(&id), Err(InclusionError::PathMismatch));
        }
    }
}

#[test]
fn decoding_garbage_is_an_error_not_a_panic() {
    for len in 0..200usize {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
        let _ = postcard::from_bytes::<Block>(&junk);
    }
    let (_, child) = chain(2);
    let bytes = postcard::to_stdvec(&child.block.into_inner()).expect("encode");
    for cut in 0..bytes.len() {
        assert!(postcard::from_bytes::<Block>(&bytes[..cut]).is_err());
    }
}

#[test]
fn the_tree_executes_on_pending_blocks_and_keeps_only_the_committed_branch() {
    let g = create_genesis(genesis_for(&[1, 2])).expect("genesis");
    let mut tree = BlockTree::new(g.block.header.clone(), Arc::new(g.ledger.clone()));
    let child = |tree: &BlockTree, parent: &BlockHash, txs: Vec<SignedTransaction>| {
        let (header, state) = tree.state(parent).expect("parent known");
        propose(&header, &state, txs).expect("child").step
    };
    let genesis = g.block.header.hash();
    // Two branches off genesis: a (with a transaction) then a2, and b.
    let a = child(&tree, &genesis, vec![store_tx(2, 0, 0)]);
    let a_hash = a.block.header.hash();
    tree.insert(a).expect("a");
    let a2 = child(&tree, &a_hash, vec![store_tx(2, 1, 1)]);
    let a2_hash = a2.block.header.hash();
    assert_eq!(
        a2.block.transactions.len(),
        1,
        "executed on a's state (nonce 1)"
    );
    tree.insert(a2).expect("a2");
    let b = child(&tree, &genesis, vec![]);
    let b_hash = b.block.header.hash();
    tree.insert(b).expect("b");
    assert_eq!(tree.len(), 3);
    let orphan = child(&tree, &b_hash, vec![]);
    let mut lost = orphan.clone();
    lost.block = crate::block::VerifiedBlock::assume_verified({
        let mut block = orphan.block.into_inner();
        block.header.parent = BlockHash([5; 32]);
        block
    });
    assert!(matches!(
        tree.insert(lost),
        Err(TreeError::UnknownParent(_))
    ));

    let path = tree.path_to(&a2_hash).expect("path");
    let hashes: Vec<BlockHash> = path.iter().map(|t| t.block.header.hash()).collect();
    assert_eq!(hashes, vec![a_hash, a2_hash]);
    assert!(matches!(
        tree.path_to(&BlockHash([7; 32])),
        Err(TreeError::Unknown(_))
    ));
    // Committing a drops b, whose branch can never be final now.
    let committed = &path[0];
    tree.advance_root(
        committed.block.header.clone(),
        Arc::new(committed.ledger.clone()),
    );
    assert!(tree.contains(&a_hash) && tree.contains(&a2_hash));
    assert!(!tree.contains(&b_hash));
    assert_eq!(tree.len(), 1);
}
