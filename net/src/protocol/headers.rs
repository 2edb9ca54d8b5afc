//! `/nexus/headers/1`: what a light client asks for: the genesis header with the chain
//! spec it commits to, and final headers with their finality proofs.

use libp2p::StreamProtocol;
use nexus_consensus::{CertifiedHeader, ChainSpec, Header, Height};
use serde::{Deserialize, Serialize};

use crate::codec::Caps;

/// Protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/nexus/headers/1");

/// Most headers one response carries.
pub const MAX_HEADERS_PER_RESPONSE: u16 = 64;

/// Size caps: a chain spec of 1,024 validators is under 300 KiB; 64 certified headers
/// are well under 2 MiB even with long finality proofs.
pub const CAPS: Caps = Caps {
    request: 64,
    response: 2 * 1024 * 1024,
};

/// What is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeaderRequest {
    /// The genesis header and the chain spec its `spec` digest names.
    Genesis,
    /// Up to `max` final headers from height `from`.
    Range {
        /// First height wanted.
        from: Height,
        /// Most wanted (the server also caps at [`MAX_HEADERS_PER_RESPONSE`]).
        max: u16,
    },
}

/// The answer; the client checks everything against its trusted genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeaderResponse {
    /// The genesis header and the chain spec.
    Genesis {
        /// Height 0.
        header: Box<Header>,
        /// The spec, whose digest the header carries.
        spec: Box<ChainSpec>,
    },
    /// Consecutive final headers from the height asked (empty if none).
    Headers(Vec<CertifiedHeader>),
    /// The peer has no chain yet.
    Unavailable,
}
