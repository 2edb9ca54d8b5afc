//! Every wire decoder: round trips, and malformed input yields an error, never a panic.

use nexus_consensus::{
    BlockHash, CertifiedHeader, ChainSpec, Committee, ConsensusMessage, DataHeader, Epoch,
    FinalityProof, Header, Height, QuorumCertificate, Round, SigningKey, Validator, Vote, VoteData,
};
use nexus_das::merkle::{Digest, MerkleProof};
use proptest::prelude::*;

use super::blocks::{self, BlockRequest, BlockResponse};
use super::cells::{self, CellsRequest, CellsResponse};
use super::chunks::{self, ChunkRequest, ChunkResponse};
use super::drives::{self, DriveRequest, DriveResponse, DriveView, NodeView};
use super::gossip::{ConsensusGossip, GossipMessage, TxSubmission, MAX_GOSSIP_SIZE};
use super::headers::{self, HeaderRequest, HeaderResponse};
use super::proofs::{self, ProveRequest, ProveResponse};
use crate::codec::{decode, encode, Encoded};

fn spec() -> ChainSpec {
    let key = SigningKey::from_seed(&[1; 32]);
    let validator = Validator::new(&key, 5, "/ip4/127.0.0.1/tcp/1");
    ChainSpec::new(
        "wire",
        Committee::new(Epoch(0), vec![validator]).expect("committee"),
    )
}

fn header() -> Header {
    Header {
        height: Height(3),
        epoch: Epoch(0),
        round: Round(4),
        parent: BlockHash([2; 32]),
        timestamp_ms: 9,
        transactions_root: Digest::ZERO,
        transaction_count: 0,
        state_root: Digest::ZERO,
        proposer: SigningKey::from_seed(&[1; 32]).public(),
        data: DataHeader::empty(2).expect("empty"),
        spec: spec().digest(),
    }
}

fn vote() -> Vote {
    let key = SigningKey::from_seed(&[1; 32]);
    let data = VoteData {
        epoch: Epoch(0),
        round: Round(4),
        block: header().hash(),
        commit: Some(BlockHash([2; 32])),
    };
    Vote::sign(&key, &spec().tag(), data)
}

/// One valid encoding of every message type, built once (blocks and cells cost KZG work).
fn samples() -> Vec<(Vec<u8>, &'static str)> {
    static SAMPLES: std::sync::OnceLock<Vec<(Vec<u8>, &'static str)>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(build_samples).clone()
}

fn build_samples() -> Vec<(Vec<u8>, &'static str)> {
    let certified = CertifiedHeader {
        header: header(),
        proof: FinalityProof {
            descendants: vec![header()],
            qc: QuorumCertificate::genesis(BlockHash([2; 32])),
        },
    };
    vec![
        (
            encode(&ChunkRequest {
                blob_id: Digest([3; 32]),
                index: 3,
            }),
            "chunk request",
        ),
        (
            encode(&ChunkResponse::Chunk {
                data: vec![1, 2, 3],
                proof: MerkleProof {
                    siblings: vec![Digest::ZERO],
                },
            }),
            "chunk response",
        ),
        (
            encode(&BlockRequest::Range {
                from: Height(2),
                max: 4,
            }),
            "block request",
        ),
        (
            encode(&BlockResponse {
                blocks: vec![Encoded(vec![1, 2, 3])],
            }),
            "block response",
        ),
        (
            encode(&GossipMessage::Consensus(Box::new(ConsensusGossip {
                message: ConsensusMessage::Vote(Box::new(vote())),
                body: Encoded::default(),
                send: 1,
            }))),
            "gossip vote",
        ),
        (
            encode(&GossipMessage::Finalized(Box::new(certified.clone()))),
            "gossip finalized header",
        ),
        (
            encode(&GossipMessage::Transaction(Box::new(TxSubmission {
                tx: Encoded(vec![9; 40]),
                attempt: 9,
            }))),
            "gossip transaction",
        ),
        (
            encode(&CellsRequest {
                height: Height(5),
                root: nexus_das::DataRoot([4; 32]),
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
        (encode(&HeaderRequest::Genesis), "header request"),
        (
            encode(&HeaderResponse::Genesis {
                header: Box::new(header()),
                spec: Box::new(spec()),
            }),
            "genesis response",
        ),
        (
            encode(&HeaderResponse::Headers(vec![certified])),
            "headers response",
        ),
        (
            encode(&ProveRequest::Fold {
                job: Digest([5; 32]),
                level: 1,
                index: 2,
                children: vec![serde_bytes::ByteBuf::from(vec![7; 12])],
            }),
            "prove request",
        ),
        (
            encode(&ProveResponse::Refused("busy".into())),
            "prove response",
        ),
        (
            encode(&DriveRequest {
                job: Digest([6; 32]),
            }),
            "drive request",
        ),
        (encode(&DriveResponse::View(drive_view())), "drive response"),
    ]
}

fn drive_view() -> DriveView {
    DriveView {
        phase: "proving".into(),
        levels: vec![2, 1, 1, 1],
        nodes: vec![NodeView {
            level: 0,
            index: 1,
            state: "proven".into(),
            prover: Some("ab".repeat(48)),
            attempt: 2,
        }],
        failures: [("cd".repeat(48), 1)].into(),
    }
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
    let _ = decode::<HeaderRequest>(bytes, headers::CAPS.request);
    let _ = decode::<HeaderResponse>(bytes, headers::CAPS.response);
    let _ = decode::<ProveRequest>(bytes, proofs::CAPS.request);
    let _ = decode::<ProveResponse>(bytes, proofs::CAPS.response);
    let _ = decode::<DriveRequest>(bytes, drives::CAPS.request);
    let _ = decode::<DriveResponse>(bytes, drives::CAPS.response);
}

#[test]
fn valid_messages_round_trip() {
    let response = HeaderResponse::Genesis {
        header: Box::new(header()),
        spec: Box::new(spec()),
    };
    let bytes = encode(&response);
    let back: HeaderResponse = decode(&bytes, headers::CAPS.response).expect("decode");
    assert_eq!(back, response);
    let gossip = GossipMessage::Consensus(Box::new(ConsensusGossip {
        message: ConsensusMessage::Vote(Box::new(vote())),
        body: Encoded::default(),
        send: 2,
    }));
    let back: GossipMessage = decode(&encode(&gossip), MAX_GOSSIP_SIZE).expect("decode");
    assert_eq!(back, gossip);
    let view = DriveResponse::View(drive_view());
    let back: DriveResponse = decode(&encode(&view), drives::CAPS.response).expect("decode");
    assert_eq!(back, view);
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
    fn mutated_messages_never_panic(which in 0usize..12, pos in any::<usize>(), byte in any::<u8>()) {
        let (mut bytes, _) = samples().swap_remove(which);
        let at = pos % bytes.len();
        bytes[at] = byte;
        decode_everything(&bytes);
    }
}
