//! Consensus messages and finality proofs from peers: decoding and verification against a
//! real committee never panic, and a message that does not verify never reaches the engine.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nexus_consensus::{
    BlockHash, CertifiedHeader, ChainSpec, Committee, ConsensusMessage, Context, Engine, Epoch,
    Input, PacemakerConfig, SigningKey, Validator,
};

/// A four-validator chain, built once.
fn context() -> &'static Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        let validators = (0..4u8)
            .map(|i| {
                let key = SigningKey::from_seed(&[i + 1; 32]);
                Validator::new(&key, 1, "")
            })
            .collect();
        let spec = ChainSpec::new("fuzz", Committee::new(Epoch(0), validators).expect("committee"));
        Context::new(spec, BlockHash([1; 32]))
    })
}

fuzz_target!(|data: &[u8]| {
    let ctx = context();
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
});
