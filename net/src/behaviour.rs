//! The composed libp2p behaviour. Field order is deliberate: the block list, the gate and
//! the connection limits come first because they can deny a connection before anything
//! else sees it.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, connection_limits, gossipsub, identify, kad, ping, request_response,
    StreamProtocol,
};
use nexus_das::merkle::Digest;

use crate::codec::CappedCodec;
use crate::gate::Gate;
use crate::protocol::blocks::{self, BlockRequest, BlockResponse};
use crate::protocol::cells::{self, CellsRequest, CellsResponse};
use crate::protocol::chunks::{self, ChunkRequest, ChunkResponse};
use crate::protocol::drives::{self, DriveRequest, DriveResponse};
use crate::protocol::gossip::MAX_GOSSIP_SIZE;
use crate::protocol::headers::{self, HeaderRequest, HeaderResponse};
use crate::protocol::proofs::{self, ProveRequest, ProveResponse};

/// What a peer does on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A storage node: serves chunks, blocks, headers and cells, and relays transactions.
    Storage,
    /// A storage node that also takes part in consensus (subscribes to its topic).
    Validator,
    /// A light client: follows final headers and asks for cells, serves nothing.
    Light,
}

impl Role {
    fn agent(self) -> &'static str {
        match self {
            Role::Storage => concat!("nexus-node/", env!("CARGO_PKG_VERSION")),
            Role::Validator => concat!("nexus-validator/", env!("CARGO_PKG_VERSION")),
            Role::Light => concat!("nexus-light/", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Kademlia protocol name private to Nexus networks.
const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/nexus/kad/1.0.0");
/// Identify protocol version string: a peer that announces another is not a Nexus node.
pub(crate) const IDENTIFY_VERSION: &str = "/nexus/id/1.0.0";
/// Most connections of non-priority peers in total, of which inbound; handshakes from
/// anyone at once; connections per peer. Priority peers (committee, bootstrap) are
/// exempt from all but the last, so the room strangers can take never keeps them out.
const MAX_CONNECTIONS: u32 = 192;
const MAX_INBOUND: u32 = 128;
const MAX_PENDING_INBOUND: u32 = 128;
const MAX_CONNECTIONS_PER_PEER: u32 = 2;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) gate: Gate,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) chunks: request_response::Behaviour<CappedCodec<ChunkRequest, ChunkResponse>>,
    pub(crate) blocks: request_response::Behaviour<CappedCodec<BlockRequest, BlockResponse>>,
    pub(crate) cells: request_response::Behaviour<CappedCodec<CellsRequest, CellsResponse>>,
    pub(crate) headers: request_response::Behaviour<CappedCodec<HeaderRequest, HeaderResponse>>,
    pub(crate) proofs: request_response::Behaviour<CappedCodec<ProveRequest, ProveResponse>>,
    pub(crate) drives: request_response::Behaviour<CappedCodec<DriveRequest, DriveResponse>>,
}

impl Behaviour {
    pub(crate) fn new(
        key: &Keypair,
        request_timeout: Duration,
        role: Role,
    ) -> Result<Self, BoxError> {
        // Light clients only ask; storage nodes also answer (and so advertise the protocols).
        let support = match role {
            Role::Storage | Role::Validator => request_response::ProtocolSupport::Full,
            Role::Light => request_response::ProtocolSupport::Outbound,
        };
        let peer_id = key.public().to_peer_id();
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(MAX_GOSSIP_SIZE)
            .heartbeat_interval(Duration::from_millis(700))
            .message_id_fn(|m: &gossipsub::Message| {
                gossipsub::MessageId::from(
                    Digest::of(&[m.topic.as_str().as_bytes(), &m.data])
                        .0
                        .to_vec(),
                )
            })
            .build()?;
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )
        .map_err(BoxError::from)?;
        let mut kad = kad::Behaviour::with_config(
            peer_id,
            kad::store::MemoryStore::new(peer_id),
            kad::Config::new(KAD_PROTOCOL),
        );
        kad.set_mode(Some(kad::Mode::Server));
        let rr_config = request_response::Config::default().with_request_timeout(request_timeout);
        Ok(Behaviour {
            blocked: Default::default(),
            gate: Gate::default(),
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(MAX_CONNECTIONS))
                    .with_max_established_incoming(Some(MAX_INBOUND))
                    .with_max_pending_incoming(Some(MAX_PENDING_INBOUND))
                    .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER)),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_VERSION.to_string(), key.public())
                    .with_agent_version(role.agent().to_string()),
            ),
            ping: ping::Behaviour::default(),
            kad,
            gossipsub,
            chunks: request_response::Behaviour::with_codec(
                CappedCodec::new(chunks::CAPS),
                [(chunks::PROTOCOL, support.clone())],
                rr_config.clone(),
            ),
            blocks: request_response::Behaviour::with_codec(
                CappedCodec::new(blocks::CAPS),
                [(blocks::PROTOCOL, support.clone())],
                rr_config.clone(),
            ),
            cells: request_response::Behaviour::with_codec(
                CappedCodec::new(cells::CAPS),
                [(cells::PROTOCOL, support.clone())],
                rr_config.clone(),
            ),
            headers: request_response::Behaviour::with_codec(
                CappedCodec::new(headers::CAPS),
                [(headers::PROTOCOL, support.clone())],
                rr_config.clone(),
            ),
            drives: request_response::Behaviour::with_codec(
                CappedCodec::new(drives::CAPS),
                [(drives::PROTOCOL, support.clone())],
                rr_config,
            ),
            proofs: request_response::Behaviour::with_codec(
                CappedCodec::new(proofs::CAPS),
                [(proofs::PROTOCOL, support)],
                request_response::Config::default().with_request_timeout(proofs::TIMEOUT),
            ),
        })
    }
}
