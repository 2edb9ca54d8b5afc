//! Every request-response and gossip decoder on arbitrary bytes: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_net::codec::decode;
use nexus_net::protocol::blocks::{self, BlockRequest, BlockResponse, MAX_BLOCK_BYTES};
use nexus_net::protocol::cells::{self, CellsRequest, CellsResponse};
use nexus_net::protocol::chunks::{self, ChunkRequest, ChunkResponse};
use nexus_net::protocol::gossip::{GossipMessage, MAX_GOSSIP_SIZE};
use nexus_net::protocol::headers::{self, HeaderRequest, HeaderResponse};

fuzz_target!(|data: &[u8]| {
    let _ = decode::<ChunkRequest>(data, chunks::CAPS.request);
    let _ = decode::<ChunkResponse>(data, chunks::CAPS.response);
    let _ = decode::<BlockRequest>(data, blocks::CAPS.request);
    let _ = decode::<BlockResponse>(data, blocks::CAPS.response);
    let _ = decode::<HeaderRequest>(data, headers::CAPS.request);
    let _ = decode::<HeaderResponse>(data, headers::CAPS.response);
    let _ = decode::<CellsRequest>(data, cells::CAPS.request);
    let _ = decode::<CellsResponse>(data, cells::CAPS.response);
    let _ = decode::<GossipMessage>(data, MAX_GOSSIP_SIZE);
    // What travels opaque through the network layer, decoded by full nodes.
    let _ = decode::<nexus_storage::ledger::SignedTransaction>(data, MAX_GOSSIP_SIZE);
    let _ = decode::<nexus_storage::CertifiedBlock>(data, MAX_BLOCK_BYTES);
});
