//! Valid inputs of every target, built from the real types: the driver mutates them, so
//! that its inputs get past the first decoding step.

use nexus_consensus::{BlockHash, ConsensusMessage, Epoch, Round, SigningKey, Vote, VoteData};
use nexus_das::Coord;
use nexus_net::codec::{encode, Encoded};
use nexus_net::protocol::blocks::BlockRequest;
use nexus_net::protocol::gossip::{GossipMessage, TxSubmission};
use nexus_storage::chain::propose_child;
use nexus_storage::ledger::OpenVm;
use nexus_storage::ledger::{Genesis, LedgerParams, SignedTransaction, Transaction, TxKind};
use nexus_storage::{BlobId, ChainGenesis, Height};

/// Validator `i` of the fuzz chains.
pub fn validator(i: u8) -> SigningKey {
    SigningKey::from_seed(&[i + 1; 32])
}

/// The funded account of the one-validator chain.
pub fn account() -> SigningKey {
    SigningKey::from_seed(&[0xaa; 32])
}

/// The one-validator chain the block and transaction targets build on.
pub fn genesis() -> ChainGenesis {
    let ledger = Genesis {
        params: LedgerParams::default(),
        balances: vec![(account().public(), 1 << 40)],
    };
    ChainGenesis::solo("fuzz-solo", &validator(0), "", ledger, 0).expect("genesis")
}

/// The payload the das target's grid encodes.
pub fn das_payload() -> Vec<u8> {
    (0..20_000u32).map(|i| (i * 31 % 251) as u8).collect()
}

/// A transfer from the funded account, valid on the one-validator chain.
fn transfer() -> SignedTransaction {
    let chain = crate::solo_chain();
    Transaction {
        chain: chain.ledger.chain(),
        sender: account().public(),
        nonce: 0,
        fee: chain.ledger.params().min_tx_fee,
        kind: TxKind::Transfer {
            to: validator(0).public(),
            amount: 5,
        },
    }
    .sign(&account())
}

/// Valid inputs of target `name`.
pub fn for_target(name: &str) -> Vec<Vec<u8>> {
    match name {
        "wire_messages" => vec![
            encode(&GossipMessage::Transaction(Box::new(TxSubmission {
                tx: Encoded::of(&transfer()),
                attempt: 1,
            }))),
            encode(&BlockRequest::Range {
                from: Height(1),
                max: 8,
            }),
        ],
        "transaction" => vec![encode(&transfer())],
        "block" => {
            let chain = crate::solo_chain();
            let child = propose_child(
                validator(0).public(),
                Round(1),
                &chain.block.header,
                &chain.ledger,
                vec![transfer()],
                1,
                &OpenVm,
            )
            .expect("a child block")
            .step;
            vec![
                postcard::to_stdvec(&*chain.block).expect("encode"),
                postcard::to_stdvec(&*child.block).expect("encode"),
            ]
        }
        "consensus" => {
            let ctx = crate::committee_context();
            let data = VoteData {
                epoch: Epoch(0),
                round: Round(1),
                block: BlockHash([2; 32]),
                commit: None,
            };
            let vote = Vote::sign(&validator(1), &ctx.spec().tag(), data);
            vec![postcard::to_stdvec(&ConsensusMessage::Vote(Box::new(vote))).expect("encode")]
        }
        "das_sample" => {
            let sample = crate::encoded()
                .sample(Coord { row: 0, column: 3 })
                .expect("in the grid");
            vec![postcard::to_stdvec(&sample).expect("encode")]
        }
        "api_json" => vec![
            serde_json::to_vec(&*crate::solo_chain().block).expect("json"),
            serde_json::to_vec(&TxKind::AddStake { amount: 3 }).expect("json"),
            BlobId::of(b"fuzz").to_string().into_bytes(),
        ],
        "genesis_config" => vec![serde_json::to_vec(&genesis()).expect("json")],
        // The smallest program the zkVM takes: one `terminate` at 0x200800, a data page.
        "program_elf" => vec![hex_bytes(
            "7f454c460101010000000000000000000200f30001000000000820003400000000000000000000003400\
             2000020000000000000001000000740000000008200000000000040000000400000005000000000000\
             0001000000740000000010200000000000040000000400000006000000000000000b000000",
        )],
        _ => Vec::new(),
    }
}

/// Bytes spelled out in hex (a seed written by hand).
fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex seed"))
        .collect()
}
