//! Every wire decoder: round trips, and malformed input yields an error, never a panic.

use nexus_storage::chain::{create_genesis, propose_child, without_das_blobs};
use nexus_storage::ledger::{Genesis, LedgerParams, PolicySpec, Transaction, TxKind};
use nexus_storage::{BlobId, Block, ChunkIndex, Height, MerkleProof, SigningKey};
use proptest::prelude::*;

use super::blocks::{self, BlockRequest, BlockResponse};
use super::cells::{self, CellsRequest, CellsResponse};
use super::chunks::{self, ChunkRequest, ChunkResponse};
use super::gossip::{GossipMessage, TxSubmission, MAX_GOSSIP_SIZE};
use crate::codec::{decode, encode};

fn sample_block() -> Block {
    let key = SigningKey::from_seed(&[1; 32]);
    let genesis = Genesis {
        params: LedgerParams::default(),
        balances: vec![(key.public(), 1_000)],
    };
    let g = create_genesis(&key, genesis, 5).expect("genesis");
    let kind = TxKind::StoreBlob {
        blob_id: BlobId::of(b"x"),
        size: 1,
        policy: PolicySpec::Replicated,
        epochs: 1,
    };
    let tx = Transaction {
        sender: key.public(),
        nonce: 0,
        kind,
    }
    .sign(&key);
    let (child, _) = propose_child(
        &key,
        &g.block.header,
        &g.ledger,
        vec![tx],
        6,
        without_das_blobs,
    )
    .expect("child");
    child.block.into_inner()
}

/// One valid encoding of every message type, built once (blocks and cells cost KZG work).
fn samples() -> Vec<(Vec<u8>, &'static str)> {
    static SAMPLES: std::sync::OnceLock<Vec<(Vec<u8>, &'static str)>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(build_samples).clone()
}

fn build_samples() -> Vec<(Vec<u8>, &'static str)> {
    let block = sample_block();
    vec![
        (
            encode(&ChunkRequest {
                blob_id: BlobId::of(b"a"),
                index: ChunkIndex(3),
            }),
            "chunk request",
        ),
        (
            encode(&ChunkResponse::Chunk {
                data: vec![1, 2, 3],
                proof: MerkleProof {
                    siblings: vec![nexus_storage::Digest::ZERO],
                },
            }),
            "chunk response",
        ),
        (
            encode(&BlockRequest {
                from: Height(2),
                max: 4,
            }),
            "block request",
        ),
        (
            encode(&BlockResponse {
                blocks: vec![block.clone()],
            }),
            "block response",
        ),
        (
            encode(&GossipMessage::Block(Box::new(block.clone()))),
            "gossip block",
        ),
        (
            encode(&GossipMessage::Transaction(Box::new(TxSubmission {
                tx: block.transactions[0].clone(),
                attempt: 9,
            }))),
            "gossip transaction",
        ),
        (
            encode(&CellsRequest {
                height: Height(5),
                coords: vec![nexus_das::Coord { row: 1, column: 2 }],
            }),
            "cells request",
        ),
        (
            encode(&CellsResponse {
                samples: vec![None, Some(sample_cell())],
            }),
            "cells response",
        ),
    ]
}

fn sample_cell() -> nexus_das::Sample {
    let data = nexus_das::ExtendedData::encode(b"cells on the wire", 1).expect("encode");
    data.sample(nexus_das::Coord { row: 0, column: 3 })
        .expect("in grid")
}

/// Decodes `bytes` with every decoder, discarding results: must never panic.
fn decode_everything(bytes: &[u8]) {
    let _ = decode::<ChunkRequest>(bytes, chunks::CAPS.request);
    let _ = decode::<ChunkResponse>(bytes, chunks::CAPS.response);
    let _ = decode::<BlockRequest>(bytes, blocks::CAPS.request);
    let _ = decode::<BlockResponse>(bytes, blocks::CAPS.response);
    let _ = decode::<GossipMessage>(bytes, MAX_GOSSIP_SIZE);
    let _ = decode::<CellsRequest>(bytes, cells::CAPS.request);
    let _ = decode::<CellsResponse>(bytes, cells::CAPS.response);
}

#[test]
fn valid_messages_round_trip() {
    let block = sample_block();
    let bytes = encode(&BlockResponse {
        blocks: vec![block.clone()],
    });
    let back: BlockResponse = decode(&bytes, blocks::CAPS.response).expect("decode");
    assert_eq!(back.blocks, vec![block]);
    for (bytes, what) in samples() {
        decode_everything(&bytes);
        for cut in 0..bytes.len() {
            decode_everything(&bytes[..cut]);
        }
        assert!(!bytes.is_empty(), "{what}");
    }
}

#[test]
fn truncated_chunk_response_is_an_error() {
    let bytes = encode(&ChunkResponse::Chunk {
        data: vec![7; 100],
        proof: MerkleProof { siblings: vec![] },
    });
    for cut in 0..bytes.len() {
        assert!(decode::<ChunkResponse>(&bytes[..cut], chunks::CAPS.response).is_err());
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        decode_everything(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(which in 0usize..8, pos in any::<usize>(), byte in any::<u8>()) {
        let (mut bytes, _) = samples().swap_remove(which);
        let at = pos % bytes.len();
        bytes[at] = byte;
        decode_everything(&bytes);
    }
}
