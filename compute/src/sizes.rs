//! Size bounds of proofs, which every party checks before it decodes one (a node that only
//! relays or carries them, too).

/// The largest node proof accepted from a peer (a segment proof is ~0.5–1.2 MB).
pub const MAX_NODE_PROOF_BYTES: usize = 8 << 20;
/// The largest Universal Proof accepted (they are ~230 KB whatever the job's length; a
/// block carries at most 1 MiB).
pub const MAX_UNIVERSAL_PROOF_BYTES: usize = 512 << 10;
