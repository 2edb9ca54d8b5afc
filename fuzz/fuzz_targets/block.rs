//! A block from a peer or from disk: decoding and full verification (form, ledger
//! transition, finality proof) never panic, and an accepted genesis re-encodes to one
//! accepted again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_storage::chain::{accept_child, accept_final, accept_genesis};
use nexus_storage::{Block, CertifiedBlock};

fuzz_target!(|data: &[u8]| {
    let Ok(block) = postcard::from_bytes::<Block>(data) else {
        return;
    };
    if let Ok(genesis) = accept_genesis(block.clone(), None) {
        let _ = accept_child(block, &genesis.block.header, &genesis.ledger);
        let again = postcard::to_stdvec(&*genesis.block).expect("encode");
        let back: Block = postcard::from_bytes(&again).expect("decode");
        assert!(accept_genesis(back, None).is_ok());
    }
    if let Ok(certified) = postcard::from_bytes::<CertifiedBlock>(data) {
        if let (Some(proof), Some(genesis)) = (certified.proof, certified.block.genesis.clone()) {
            if let Ok(g) = nexus_storage::chain::create_genesis(genesis) {
                let ctx = g.block.genesis.as_ref().map(|c| c.context(g.block.header.hash()));
                if let Some(ctx) = ctx {
                    let _ = accept_final(certified.block, &proof, &g.block.header, &g.ledger, &ctx);
                }
            }
        }
    }
});
