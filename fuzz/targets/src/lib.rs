//! Every decoder of untrusted bytes as a fuzz target — wire messages, transactions,
//! blocks, consensus messages, das samples, the JSON the API and the CLI read, genesis
//! files — each a function that must return (errors are fine) and never panic. The
//! cargo-fuzz binaries in `fuzz/` (nightly, libFuzzer) and the stable driver in
//! [`driver`] (run by `cargo test`) call the same functions.

pub mod driver;
pub mod seeds;

use nexus_storage::ledger::OpenVm;
use std::sync::OnceLock;

use nexus_consensus::{
    BlockHash, CertifiedHeader, ChainSpec, Committee, ConsensusMessage, Context, Engine, Epoch,
    Input, PacemakerConfig, SigningKey, Validator,
};
use nexus_das::{ExtendedData, PartialGrid, Sample};
use nexus_net::codec::decode;
use nexus_net::protocol::blocks::{self, BlockRequest, BlockResponse, MAX_BLOCK_BYTES};
use nexus_net::protocol::cells::{self, CellsRequest, CellsResponse};
use nexus_net::protocol::chunks::{self, ChunkRequest, ChunkResponse};
use nexus_net::protocol::drives::{self, DriveRequest, DriveResponse};
use nexus_net::protocol::gossip::{GossipMessage, MAX_GOSSIP_SIZE};
use nexus_net::protocol::headers::{self, HeaderRequest, HeaderResponse};
use nexus_net::protocol::proofs::{self, ProveRequest, ProveResponse};
use nexus_storage::chain::{accept_child, accept_final, accept_genesis, create_genesis};
use nexus_storage::ledger::{SignedTransaction, TxKind};
use nexus_storage::mempool::{Mempool, PoolLimits};
use nexus_storage::{BlobId, BlobProof, Block, CertifiedBlock, ChainGenesis, PublicKey};

/// A fuzz target: any bytes in, never a panic.
pub type Target = fn(&[u8]);

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: &[(&str, Target)] = &[
    ("wire_messages", wire_messages),
    ("transaction", transaction),
    ("block", block),
    ("consensus", consensus),
    ("das_sample", das_sample),
    ("api_json", api_json),
    ("genesis_config", genesis_config),
    ("program_elf", program_elf),
];

/// Every request-response and gossip decoder.
pub fn wire_messages(data: &[u8]) {
    let _ = decode::<ChunkRequest>(data, chunks::CAPS.request);
    let _ = decode::<ChunkResponse>(data, chunks::CAPS.response);
    let _ = decode::<BlockRequest>(data, blocks::CAPS.request);
    let _ = decode::<BlockResponse>(data, blocks::CAPS.response);
    let _ = decode::<HeaderRequest>(data, headers::CAPS.request);
    let _ = decode::<HeaderResponse>(data, headers::CAPS.response);
    let _ = decode::<CellsRequest>(data, cells::CAPS.request);
    let _ = decode::<CellsResponse>(data, cells::CAPS.response);
    let _ = decode::<GossipMessage>(data, MAX_GOSSIP_SIZE);
    let _ = decode::<CertifiedBlock>(data, MAX_BLOCK_BYTES);
    let _ = decode::<ProveRequest>(data, proofs::CAPS.request);
    let _ = decode::<ProveResponse>(data, proofs::CAPS.response);
    let _ = decode::<DriveRequest>(data, drives::CAPS.request);
    let _ = decode::<DriveResponse>(data, drives::CAPS.response);
}

/// The funded ledger of a one-validator chain and its genesis, built once.
fn solo_chain() -> &'static nexus_storage::Transition {
    static CHAIN: OnceLock<nexus_storage::Transition> = OnceLock::new();
    CHAIN.get_or_init(|| create_genesis(seeds::genesis()).expect("the seed genesis is valid"))
}

/// A transaction from gossip: decoded, admitted to a pool and applied to a ledger.
pub fn transaction(data: &[u8]) {
    let Ok(tx) = decode::<SignedTransaction>(data, MAX_GOSSIP_SIZE) else {
        return;
    };
    let ledger = &solo_chain().ledger;
    let mut pool = Mempool::new(PoolLimits::default());
    if pool.admit(tx.clone(), ledger, 0).is_ok() {
        let mut state = ledger.clone();
        for t in pool.batch(ledger, 16, |_| true) {
            assert!(
                state.apply_tx(&t, &OpenVm).is_ok() || t != tx,
                "an admitted batch applies"
            );
        }
    }
    let _ = ledger.clone().apply_tx(&tx, &OpenVm);
}

/// A block from a peer or from disk: decoding and full verification (form, ledger
/// transition, finality proof); an accepted genesis re-encodes to one accepted again.
pub fn block(data: &[u8]) {
    if let Ok(block) = postcard::from_bytes::<Block>(data) {
        if let Ok(genesis) = accept_genesis(block.clone(), None) {
            let _ = accept_child(block, &genesis.block.header, &genesis.ledger, &OpenVm);
            let again = postcard::to_stdvec(&*genesis.block).expect("encode");
            let back: Block = postcard::from_bytes(&again).expect("decode");
            assert!(accept_genesis(back, None).is_ok());
        }
        let chain = solo_chain();
        let _ = accept_child(
            postcard::from_bytes::<Block>(data).expect("decoded once"),
            &chain.block.header,
            &chain.ledger,
            &OpenVm,
        );
    }
    if let Ok(certified) = postcard::from_bytes::<CertifiedBlock>(data) {
        if let (Some(proof), Some(genesis)) = (certified.proof, certified.block.genesis.clone()) {
            if let Ok(g) = create_genesis(genesis) {
                let ctx = g
                    .block
                    .genesis
                    .as_ref()
                    .map(|c| c.context(g.block.header.hash()));
                if let Some(ctx) = ctx {
                    let _ = accept_final(
                        certified.block,
                        &proof,
                        &g.block.header,
                        &g.ledger,
                        &ctx,
                        &OpenVm,
                    );
                }
            }
        }
    }
}

/// A four-validator chain, built once.
fn committee_context() -> &'static Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        let validators = (0..4u8)
            .map(|i| Validator::new(&seeds::validator(i), 1, ""))
            .collect();
        let committee = Committee::new(Epoch(0), validators).expect("committee");
        Context::new(ChainSpec::new("fuzz", committee), BlockHash([1; 32]))
    })
}

/// Consensus messages and finality proofs: verified against a real committee; a message
/// that verifies is fed to an engine.
pub fn consensus(data: &[u8]) {
    let ctx = committee_context();
    if let Ok(message) = postcard::from_bytes::<ConsensusMessage>(data) {
        if let Ok(verified) = message.verify(ctx) {
            let key = SigningKey::from_seed(&[1; 32]);
            let mut engine =
                Engine::new(ctx.clone(), PacemakerConfig::default(), Some(key), None, 0);
            let _ = engine.step(1, Input::Message(verified));
        }
    }
    if let Ok(certified) = postcard::from_bytes::<CertifiedHeader>(data) {
        let _ = certified.verify(ctx);
    }
    let _ = postcard::from_bytes::<ChainSpec>(data);
}

/// The grid the das target checks samples against, encoded once.
fn encoded() -> &'static ExtendedData {
    static DATA: OnceLock<ExtendedData> = OnceLock::new();
    DATA.get_or_init(|| ExtendedData::encode(&seeds::das_payload(), 2).expect("encode"))
}

/// A sample from a peer: a sample that verifies carries exactly the encoder's cell.
pub fn das_sample(data: &[u8]) {
    let Ok(sample) = postcard::from_bytes::<Sample>(data) else {
        return;
    };
    let honest = encoded();
    if sample.verify(&honest.root()).is_ok() {
        assert_eq!(honest.cell(sample.coord), Some(sample.cell.0.clone()));
    }
    if let Ok(mut grid) = PartialGrid::new(*honest.params()) {
        let _ = grid.insert(sample.coord, &sample.cell.0);
    }
}

/// What the API and the CLI read as JSON or text: blob proofs (checked), blocks,
/// transaction bodies, ids and keys.
pub fn api_json(data: &[u8]) {
    if let Ok(proof) = serde_json::from_slice::<BlobProof>(data) {
        if let Some(reg) = proof.inclusion.registration() {
            let _ = proof.verify(&reg.blob_id, None);
        }
    }
    let _ = serde_json::from_slice::<Block>(data);
    let _ = serde_json::from_slice::<TxKind>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = text.parse::<BlobId>();
        let _ = text.parse::<PublicKey>();
    }
}

/// A compute job's program, checked before anything is paid for or proven.
pub fn program_elf(data: &[u8]) {
    let _ = nexus_compute::inspect(data);
}

/// A genesis file (`--genesis-config`): parsed, then built into a genesis block.
pub fn genesis_config(data: &[u8]) {
    if let Ok(genesis) = serde_json::from_slice::<ChainGenesis>(data) {
        let _ = create_genesis(genesis);
    }
}
