//! Chain tests: proposing and accepting blocks, every rejection reason, inclusion proofs.

use proptest::prelude::*;

use std::sync::Arc;

use super::*;
use crate::blob::BlobId;
use crate::block::{BlockHash, Height, InclusionError};
use crate::block::{BlockPayload, DasBlobs, DataHeader};
use crate::ledger::{LedgerParams, PolicySpec, Transaction, TxKind};

/// Commits to a payload whose `das` blobs are in `blobs`.
fn with(blobs: &DasBlobs) -> impl FnOnce(&BlockPayload, u8) -> Result<DataHeader, BlockError> + '_ {
    move |payload, dims| DataHeader::of_payload(payload, dims, blobs)
}

fn key(i: u8) -> SigningKey {
    SigningKey::from_seed(&[i; 32])
}

fn genesis_for(users: &[u8]) -> Genesis {
    Genesis {
        params: LedgerParams::default(),
        balances: users
            .iter()
            .map(|u| (key(*u).public(), 1_000_000_000))
            .collect(),
    }
}

fn store_tx(user: u8, nonce: u64, i: u64) -> SignedTransaction {
    Transaction {
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
    let g = create_genesis(&key(1), genesis_for(&[1, 2]), 1_000).expect("genesis");
    let txs = (0..n).map(|i| store_tx(2, i, i)).collect();
    let (child, refused) = propose_child(
        &key(1),
        &g.block.header,
        &g.ledger,
        txs,
        2_000,
        without_das_blobs,
    )
    .expect("child");
    assert!(refused.is_empty());
    (g, child)
}

#[test]
fn proposed_blocks_are_accepted_by_others() {
    let (g, child) = chain(3);
    let g2 =
        accept_genesis(g.block.clone().into_inner(), Some(g.block.header.hash())).expect("genesis");
    assert_eq!(g2.ledger, g.ledger);
    let c2 =
        accept_child(child.block.clone().into_inner(), &g.block.header, &g.ledger).expect("child");
    assert_eq!(c2.ledger.state_root(), child.block.header.state_root);
    assert_eq!(child.block.registrations().count(), 3);
}

#[test]
fn proposer_leaves_out_refused_transactions() {
    let g = create_genesis(&key(1), genesis_for(&[1, 2]), 0).expect("genesis");
    let replay = store_tx(2, 5, 0);
    let (child, refused) = propose_child(
        &key(1),
        &g.block.header,
        &g.ledger,
        vec![store_tx(2, 0, 0), replay],
        1,
        without_das_blobs,
    )
    .expect("child");
    assert_eq!(child.block.transactions.len(), 1);
    assert_eq!(refused.len(), 1);
}

/// A child of `parent` signed by `key`, whatever its contents, with its data committed in
/// `dims` dimensions.
fn signed(
    key: &SigningKey,
    parent: &Header,
    transactions: Vec<SignedTransaction>,
    state_root: Digest,
    dims: u8,
) -> Block {
    let data = DataHeader::of_payload(&BlockPayload::of(&transactions), dims, &DasBlobs::new())
        .expect("data");
    Block::sign_new(key, Some(parent), 5, transactions, state_root, None, data).expect("sign")
}

#[test]
fn bad_blocks_are_rejected_with_the_reason() {
    let (g, child) = chain(3);
    let (gh, gl) = (&g.block.header, &g.ledger);
    let base = child.block.clone().into_inner();

    let mut b = base.clone();
    b.header.height = Height(5);
    assert!(matches!(
        accept_child(b, gh, gl),
        Err(BlockError::WrongHeight { .. })
    ));

    let mut b = base.clone();
    b.header.parent = BlockHash([9; 32]);
    assert!(matches!(
        accept_child(b, gh, gl),
        Err(BlockError::WrongParent { .. })
    ));

    let mut b = base.clone();
    b.transactions.pop();
    assert_eq!(
        accept_child(b, gh, gl).err(),
        Some(BlockError::TransactionsMismatch)
    );

    let mut b = base.clone();
    b.header.timestamp_ms += 1;
    assert_eq!(
        accept_child(b, gh, gl).err(),
        Some(BlockError::BadSignature)
    );

    // Signed correctly, but the claimed state root is not what the transactions give.
    let b = signed(&key(1), gh, base.transactions.clone(), Digest::ZERO, 2);
    assert!(matches!(
        accept_child(b, gh, gl),
        Err(BlockError::StateRootMismatch { .. })
    ));

    // A transaction the ledger refuses makes the block invalid.
    let bad = vec![store_tx(2, 7, 0)];
    let b = signed(&key(1), gh, bad, gl.state_root(), 2);
    assert!(matches!(
        accept_child(b, gh, gl),
        Err(BlockError::InvalidTransaction { index: 0, .. })
    ));

    // Another proposer cannot extend this chain.
    let b = signed(&key(9), gh, vec![], gl.state_root(), 2);
    assert!(matches!(
        accept_child(b, gh, gl),
        Err(BlockError::WrongProposer { .. })
    ));

    // The header's data commitment must be the payload's, in the network's dimensions.
    let mut b = base.clone();
    b.header.data.root = nexus_das::DataRoot([1; 32]);
    b.signature = key(1).sign(&b.header.hash().0);
    assert_eq!(
        accept_child(b, gh, gl).err(),
        Some(BlockError::DataMismatch)
    );
    let b = signed(
        &key(1),
        gh,
        base.transactions.clone(),
        base.header.state_root,
        3,
    );
    assert_eq!(
        accept_child(b, gh, gl).err(),
        Some(BlockError::DataMismatch)
    );

    assert!(accept_genesis(g.block.clone().into_inner(), Some(BlockHash([1; 32]))).is_err());
    assert!(accept_genesis(child.block.clone().into_inner(), None).is_err());
    let mut forged = g.block.clone().into_inner();
    forged.genesis = Some(genesis_for(&[3]));
    assert!(
        accept_genesis(forged, None).is_err(),
        "ledger genesis is bound by the state root"
    );
}

fn das_tx(user: u8, nonce: u64, data: &[u8]) -> SignedTransaction {
    Transaction {
        sender: key(user).public(),
        nonce,
        kind: TxKind::StoreBlob {
            blob_id: BlobId::of(data),
            size: data.len() as u64,
            policy: PolicySpec::Das,
            epochs: 1,
        },
    }
    .sign(&key(user))
}

#[test]
fn das_blobs_ride_in_the_payload_and_are_checked_by_layout() {
    let g = create_genesis(&key(1), genesis_for(&[1, 2]), 0).expect("genesis");
    let (gh, gl) = (&g.block.header, &g.ledger);
    let (a, b) = (vec![7u8; 300_000], vec![9u8; 5]);
    let txs = vec![das_tx(2, 0, &a), store_tx(2, 1, 0), das_tx(2, 2, &b)];

    // The proposer needs the bytes of every das blob it includes.
    let mut blobs = DasBlobs::new();
    blobs.insert(BlobId::of(&a), Arc::new(a.clone()));
    assert_eq!(
        propose_child(&key(1), gh, gl, txs.clone(), 1, with(&blobs)).err(),
        Some(BlockError::MissingBlob(BlobId::of(&b)))
    );
    blobs.insert(BlobId::of(&b), Arc::new(b.clone()));
    let (child, refused) = propose_child(&key(1), gh, gl, txs, 1, with(&blobs)).expect("child");
    assert!(refused.is_empty());

    // The payload is the registrations then each das blob, in order, and is what the
    // header commits to.
    let payload = BlockPayload::of(&child.block.transactions);
    let bytes = payload.assemble(&blobs).expect("bytes");
    assert_eq!(payload.len(), bytes.len() as u64);
    let (offset, len) = payload.blob_range(&BlobId::of(&a)).expect("a");
    assert_eq!(&bytes[offset as usize..(offset + len) as usize], &a[..]);
    let (offset, len) = payload.blob_range(&BlobId::of(&b)).expect("b");
    assert_eq!(&bytes[offset as usize..(offset + len) as usize], &b[..]);
    assert_eq!(payload.blob_range(&BlobId::of(&0u64.to_le_bytes())), None);
    let header = crate::block::DataHeader::commit(&bytes, 2).expect("commit");
    assert_eq!(child.block.header.data, header);

    // Others accept it without the blobs' bytes, but not with a layout that does not fit.
    let block = child.block.clone().into_inner();
    accept_child(block.clone(), gh, gl).expect("accepted without the bytes");
    let mut wrong = block;
    wrong.header.data.params.data_len += 1;
    wrong.signature = key(1).sign(&wrong.header.hash().0);
    assert_eq!(
        accept_child(wrong, gh, gl).err(),
        Some(BlockError::DataMismatch)
    );
}

#[test]
fn a_block_carries_at_most_the_block_data_size() {
    let mut genesis = genesis_for(&[1, 2]);
    genesis.params.max_block_data = 1_000;
    let g = create_genesis(&key(1), genesis, 0).expect("genesis");
    let (gh, gl) = (&g.block.header, &g.ledger);
    let (a, b) = (vec![1u8; 600], vec![2u8; 600]);
    let mut blobs = DasBlobs::new();
    blobs.insert(BlobId::of(&a), Arc::new(a.clone()));
    blobs.insert(BlobId::of(&b), Arc::new(b.clone()));
    let txs = vec![das_tx(2, 0, &a), das_tx(2, 1, &b)];
    assert_eq!(
        propose_child(&key(1), gh, gl, txs, 1, with(&blobs)).err(),
        Some(BlockError::TooMuchData {
            max: 1_000,
            found: 1_200
        })
    );
    // One blob larger than a block is refused by the ledger with the reason.
    let big = vec![3u8; 1_001];
    let (_, refused) =
        propose_child(&key(1), gh, gl, vec![das_tx(2, 0, &big)], 1, with(&blobs)).expect("child");
    assert!(matches!(
        &refused[..],
        [(_, crate::ledger::TxError::InvalidStorage(m))] if m.contains("at most 1000 bytes")
    ));
}

proptest! {
    #[test]
    fn inclusion_proofs_verify_for_every_index_and_reject_tampering(
        n in 1u64..40, pick in any::<u32>(), byte in 0usize..32
    ) {
        let (_, child) = chain(n);
        let proposer = key(1).public();
        let index = pick % n as u32;
        let proof = child.block.inclusion_proof(index).expect("in range");
        let id = proof.registration().expect("store blob").blob_id;
        prop_assert_eq!(proof.verify(&id, &proposer), Ok(()));
        prop_assert!(proof.verify(&id, &key(6).public()).is_err());
        prop_assert!(proof.verify(&BlobId([0; 32]), &proposer).is_err());

        let mut bad = proof.clone();
        bad.index = (index + 1) % n as u32;
        if n > 1 {
            prop_assert!(bad.verify(&id, &proposer).is_err());
        }
        let mut bad = proof.clone();
        bad.header.timestamp_ms ^= 1;
        prop_assert_eq!(bad.verify(&id, &proposer), Err(InclusionError::BadSignature));
        let mut bad = proof.clone();
        bad.transaction.tx.nonce += 1;
        prop_assert_eq!(bad.verify(&id, &proposer), Err(InclusionError::PathMismatch));
        if let Some(s) = proof.path.siblings.first() {
            let mut bad = proof.clone();
            let mut s = *s;
            s.0[byte] ^= 0x80;
            bad.path.siblings[0] = s;
            prop_assert_eq!(bad.verify(&id, &proposer), Err(InclusionError::PathMismatch));
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
