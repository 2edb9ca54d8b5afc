//! A block from a peer or from disk: decoding and full verification (form and ledger
//! transition) never panic, and an accepted genesis re-encodes to one accepted again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_storage::chain::{accept_child, accept_genesis};
use nexus_storage::Block;

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
});
