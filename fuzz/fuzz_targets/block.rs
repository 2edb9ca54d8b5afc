//! A block from a peer or from disk: decoding and verification never panic, and a block
//! that verifies re-encodes to a block that verifies again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_storage::Block;

fuzz_target!(|data: &[u8]| {
    let Ok(block) = postcard::from_bytes::<Block>(data) else {
        return;
    };
    let parent = block.header.clone();
    let _ = block.clone().verify_child(&parent);
    if let Ok(genesis) = block.verify_genesis(None) {
        let again = postcard::to_stdvec(&*genesis).expect("encode");
        let back: Block = postcard::from_bytes(&again).expect("decode");
        assert!(back.verify_genesis(None).is_ok());
    }
});
