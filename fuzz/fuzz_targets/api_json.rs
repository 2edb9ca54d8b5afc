//! What the CLI reads from a node or a file (blob proofs, blocks, ids): errors, never
//! panics; a proof that parses is checked without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_storage::{BlobId, BlobProof, Block, PublicKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = serde_json::from_slice::<BlobProof>(data) {
        if let Some(reg) = proof.inclusion.registration() {
            let _ = proof.verify(&reg.blob_id, None);
        }
    }
    let _ = serde_json::from_slice::<Block>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = text.parse::<BlobId>();
        let _ = text.parse::<PublicKey>();
    }
});
