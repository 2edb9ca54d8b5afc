//! The network service: a cloneable [`Network`] handle that sends commands, and an event
//! loop task that owns the swarm and reports what peers ask and announce as
//! [`NetworkEvent`]s. Business decisions (what to serve, what a block means) stay with the
//! receiver of the events.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, kad, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};

use crate::bans::{Bans, FIRST_BAN};
use crate::behaviour::{Behaviour, BehaviourEvent, Role, IDENTIFY_VERSION};
use crate::codec::{decode, encode};
use crate::protocol::blocks::{BlockRequest, BlockResponse};
use crate::protocol::cells;
use crate::protocol::cells::{CellsRequest, CellsResponse};
use crate::protocol::chunks::{ChunkRequest, ChunkResponse};
use crate::protocol::drives::{DriveRequest, DriveResponse};
use crate::protocol::gossip::{
    GossipMessage, CONSENSUS_TOPIC, FINALIZED_TOPIC, MAX_GOSSIP_SIZE, TRANSACTIONS_TOPIC,
};
use crate::protocol::headers::{HeaderRequest, HeaderResponse};
use crate::protocol::proofs::{ProveRequest, ProveResponse};

/// How a node joins the network.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The node's identity.
    pub keypair: Keypair,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start (and again whenever the node has no peers), including
    /// `/dns4/`, `/dns6/` and `/dnsaddr/` addresses. Those that name their peer id are
    /// priority peers: they always get a connection (see [`crate::gate`]).
    pub bootstrap: Vec<Multiaddr>,
    /// Deadline of one request-response exchange.
    pub request_timeout: Duration,
    /// Storage node or light client.
    pub role: Role,
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The transport could not be built.
    #[error("cannot build the libp2p transport: {0}")]
    Transport(String),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
}

/// Why a request to a peer produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The network service has stopped.
    #[error("the network service has stopped")]
    Stopped,
    /// The exchange failed (timeout, connection lost, malformed response...).
    #[error("request to {peer} failed: {reason}")]
    Failed {
        /// The peer.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },
}

/// Why a gossip message was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The network service has stopped.
    #[error("the network service has stopped")]
    Stopped,
    /// No peer subscribes to the topic yet.
    #[error("no peer to publish to")]
    NoPeers,
    /// Gossipsub refused the message.
    #[error("publish failed: {0}")]
    Failed(String),
}

/// The answer slot of an inbound request; dropping it sends nothing (the peer times out).
#[derive(Debug)]
pub struct Reply<T>(oneshot::Sender<T>);

impl<T> Reply<T> {
    /// Sends the response to the peer.
    pub fn send(self, response: T) {
        let _ = self.0.send(response);
    }

    /// Whether nobody will read the answer any more: for a proof request, the requester's
    /// connection closed (checked every [`REQUESTER_CHECK`]); long work for it can stop.
    pub fn is_abandoned(&self) -> bool {
        self.0.is_closed()
    }
}

/// How often the requester of a proof (minutes of work) is checked to be still there.
pub(crate) const REQUESTER_CHECK: Duration = Duration::from_secs(2);

/// Identifies a received gossip message for [`Network::report`].
#[derive(Debug, Clone)]
pub struct GossipId {
    message_id: MessageId,
    source: PeerId,
}

impl GossipId {
    /// The peer that forwarded the message.
    pub fn source(&self) -> PeerId {
        self.source
    }
}

/// Verdict on a gossip message: only accepted messages are forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Valid: forward it.
    Accept,
    /// Not useful (duplicate, stale): drop without penalty.
    Ignore,
    /// Invalid: drop and penalise the sender in gossipsub's scoring.
    Reject,
}

/// What the network reports to the node.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A peer asks for a chunk.
    ChunkRequest {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: ChunkRequest,
        /// Where to answer.
        reply: Reply<ChunkResponse>,
    },
    /// A peer asks for blocks.
    BlockRequest {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: BlockRequest,
        /// Where to answer.
        reply: Reply<BlockResponse>,
    },
    /// A peer asks for headers.
    HeaderRequest {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: HeaderRequest,
        /// Where to answer.
        reply: Reply<HeaderResponse>,
    },
    /// A peer asks for cells of a block's payload.
    CellsRequest {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: CellsRequest,
        /// Where to answer.
        reply: Reply<CellsResponse>,
    },
    /// A job's driver asks for a proof of one node of its tree.
    ProveRequest {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: ProveRequest,
        /// Where to answer (when the proof is made).
        reply: Reply<ProveResponse>,
    },
    /// A peer asks for this node's view of a compute job it drives.
    DriveRequest {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: DriveRequest,
        /// Where to answer.
        reply: Reply<DriveResponse>,
    },
    /// A decoded gossip message waiting for a [`Validation`] via [`Network::report`].
    Gossip {
        /// Handle for reporting.
        id: GossipId,
        /// The message.
        message: GossipMessage,
    },
    /// A connection to a new peer was established.
    PeerConnected(PeerId),
}

/// A snapshot of the node's network state.
#[derive(Debug, Clone)]
pub struct NetworkInfo {
    /// This node's peer id.
    pub peer_id: PeerId,
    /// Addresses it listens on.
    pub listen_addrs: Vec<Multiaddr>,
    /// Connected peers.
    pub connected: Vec<PeerId>,
    /// Peers dropped for sending invalid data, for now (a ban lasts 10 minutes and
    /// doubles with every further offence).
    pub banned: Vec<PeerId>,
    /// Connected peers that serve cells (storage nodes), per their identify information.
    pub storage_peers: Vec<PeerId>,
}

enum Command {
    RequestChunk(
        PeerId,
        ChunkRequest,
        oneshot::Sender<Result<ChunkResponse, RequestError>>,
    ),
    RequestBlocks(
        PeerId,
        BlockRequest,
        oneshot::Sender<Result<BlockResponse, RequestError>>,
    ),
    RequestCells(
        PeerId,
        CellsRequest,
        oneshot::Sender<Result<CellsResponse, RequestError>>,
    ),
    RequestHeaders(
        PeerId,
        HeaderRequest,
        oneshot::Sender<Result<HeaderResponse, RequestError>>,
    ),
    RequestProof(
        PeerId,
        ProveRequest,
        oneshot::Sender<Result<ProveResponse, RequestError>>,
    ),
    RequestDrive(
        PeerId,
        DriveRequest,
        oneshot::Sender<Result<DriveResponse, RequestError>>,
    ),
    Publish(GossipMessage, oneshot::Sender<Result<(), PublishError>>),
    Report(GossipId, Validation),
    Penalise(PeerId),
    Info(oneshot::Sender<NetworkInfo>),
    SetPriority(Vec<PeerId>),
}

/// Handle to the running network service; clone it freely. The service stops when every
/// handle is dropped.
#[derive(Clone)]
pub struct Network {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
}

/// An error and its sources as one line, skipping empty messages (libp2p's transport
/// errors display as "" and keep the reason, e.g. "Address already in use", in a source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.contains(&text) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Fails if another process listens on `addr`'s TCP port. libp2p's TCP listeners set
/// SO_REUSEPORT, so a second node on the same port would otherwise start and share the
/// incoming connections with the first; a plain bind (without that option) cannot.
fn ensure_port_unshared(addr: &Multiaddr) -> std::io::Result<()> {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(port) if port != 0 => {
                if let Some(ip) = ip {
                    std::net::TcpListener::bind((ip, port))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

impl Network {
    /// Builds the swarm, binds the listen addresses, dials the bootstrap peers and spawns
    /// the event loop on the current tokio runtime.
    pub fn start(
        config: NetworkConfig,
    ) -> Result<(Network, mpsc::Receiver<NetworkEvent>), StartError> {
        let transport_err = |e: &dyn std::fmt::Display| StartError::Transport(e.to_string());
        let timeout = config.request_timeout;
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| transport_err(&e))?
            .with_dns()
            .map_err(|e| transport_err(&e))?
            .with_behaviour(|key| Behaviour::new(key, timeout, config.role))
            .map_err(|e| transport_err(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        let topics: &[&str] = match config.role {
            Role::Validator => &[CONSENSUS_TOPIC, FINALIZED_TOPIC, TRANSACTIONS_TOPIC],
            Role::Storage => &[FINALIZED_TOPIC, TRANSACTIONS_TOPIC],
            Role::Light => &[FINALIZED_TOPIC],
        };
        for topic in topics {
            swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(&IdentTopic::new(*topic))
                .map_err(|e| transport_err(&e))?;
        }
        for addr in &config.listen {
            ensure_port_unshared(addr).map_err(|e| StartError::Listen {
                addr: addr.clone(),
                reason: error_chain(&e),
            })?;
            swarm
                .listen_on(addr.clone())
                .map_err(|e| StartError::Listen {
                    addr: addr.clone(),
                    reason: error_chain(&e),
                })?;
        }
        let (commands, command_rx) = mpsc::channel(1024);
        let (event_tx, events) = mpsc::channel(1024);
        let peer_id = *swarm.local_peer_id();
        let mut event_loop = EventLoop {
            swarm,
            commands: command_rx,
            events: event_tx,
            bootstrap: config.bootstrap,
            pending_chunks: HashMap::new(),
            pending_blocks: HashMap::new(),
            pending_cells: HashMap::new(),
            pending_headers: HashMap::new(),
            pending_proofs: HashMap::new(),
            pending_drives: HashMap::new(),
            replies: FuturesUnordered::new(),
            bans: Bans::new(FIRST_BAN),
            storage_peers: HashSet::new(),
            listen_addrs: Vec::new(),
            priority: HashSet::new(),
        };
        event_loop.set_priority(Vec::new());
        event_loop.dial_bootstrap();
        tokio::spawn(event_loop.run());
        Ok((Network { commands, peer_id }, events))
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Asks `peer` for a chunk. The response is unverified.
    pub async fn request_chunk(
        &self,
        peer: PeerId,
        request: ChunkRequest,
    ) -> Result<ChunkResponse, RequestError> {
        self.call(|tx| Command::RequestChunk(peer, request, tx))
            .await
            .unwrap_or(Err(RequestError::Stopped))
    }

    /// Asks `peer` for blocks. The response is unverified.
    pub async fn request_blocks(
        &self,
        peer: PeerId,
        request: BlockRequest,
    ) -> Result<BlockResponse, RequestError> {
        self.call(|tx| Command::RequestBlocks(peer, request, tx))
            .await
            .unwrap_or(Err(RequestError::Stopped))
    }

    /// Asks `peer` for cells. The samples are unverified.
    pub async fn request_cells(
        &self,
        peer: PeerId,
        request: CellsRequest,
    ) -> Result<CellsResponse, RequestError> {
        self.call(|tx| Command::RequestCells(peer, request, tx))
            .await
            .unwrap_or(Err(RequestError::Stopped))
    }

    /// Asks `peer` for headers. The response is unverified.
    pub async fn request_headers(
        &self,
        peer: PeerId,
        request: HeaderRequest,
    ) -> Result<HeaderResponse, RequestError> {
        self.call(|tx| Command::RequestHeaders(peer, request, tx))
            .await
            .unwrap_or(Err(RequestError::Stopped))
    }

    /// Asks `peer` to prove one node of a job's tree; answers when the proof is made or
    /// after [`crate::protocol::proofs::TIMEOUT`]. The proof is unchecked.
    pub async fn request_proof(
        &self,
        peer: PeerId,
        request: ProveRequest,
    ) -> Result<ProveResponse, RequestError> {
        self.call(|tx| Command::RequestProof(peer, request, tx))
            .await
            .unwrap_or(Err(RequestError::Stopped))
    }

    /// Asks `peer` for its view of a compute job it drives. The view is the peer's word.
    pub async fn request_drive(
        &self,
        peer: PeerId,
        request: DriveRequest,
    ) -> Result<DriveResponse, RequestError> {
        self.call(|tx| Command::RequestDrive(peer, request, tx))
            .await
            .unwrap_or(Err(RequestError::Stopped))
    }

    /// Publishes a message on its gossip topic.
    pub async fn publish(&self, message: GossipMessage) -> Result<(), PublishError> {
        self.call(|tx| Command::Publish(message, tx))
            .await
            .unwrap_or(Err(PublishError::Stopped))
    }

    /// Reports the validation result of a received gossip message.
    pub async fn report(&self, id: GossipId, validation: Validation) {
        let _ = self.commands.send(Command::Report(id, validation)).await;
    }

    /// Drops `peer` for sending invalid data: closes its connections and refuses new ones.
    pub async fn penalise(&self, peer: PeerId) {
        let _ = self.commands.send(Command::Penalise(peer)).await;
    }

    /// Connected storage nodes (empty if the service stopped).
    pub async fn storage_peers(&self) -> Vec<PeerId> {
        self.info()
            .await
            .map(|i| i.storage_peers)
            .unwrap_or_default()
    }

    /// Current peers and addresses, or `None` if the service stopped.
    pub async fn info(&self) -> Option<NetworkInfo> {
        self.call(Command::Info).await
    }

    /// Makes `peers` (the committee's validators), with the bootstrap peers, the priority
    /// peers: they always get a connection, whatever strangers hold.
    pub async fn set_priority_peers(&self, peers: Vec<PeerId>) {
        let _ = self.commands.send(Command::SetPriority(peers)).await;
    }
}

enum PendingReply {
    Chunk(ResponseChannel<ChunkResponse>, Option<ChunkResponse>),
    Blocks(ResponseChannel<BlockResponse>, Option<BlockResponse>),
    Cells(ResponseChannel<CellsResponse>, Option<CellsResponse>),
    Headers(ResponseChannel<HeaderResponse>, Option<HeaderResponse>),
    Proof(ResponseChannel<ProveResponse>, Option<ProveResponse>),
    Drive(ResponseChannel<DriveResponse>, Option<DriveResponse>),
}

/// Connections beyond which discovered peers are no longer dialled.
const TARGET_PEERS: usize = 32;

struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    bootstrap: Vec<Multiaddr>,
    pending_chunks: Pending<ChunkResponse>,
    pending_blocks: Pending<BlockResponse>,
    pending_cells: Pending<CellsResponse>,
    pending_headers: Pending<HeaderResponse>,
    pending_proofs: Pending<ProveResponse>,
    pending_drives: Pending<DriveResponse>,
    replies: FuturesUnordered<BoxFuture<'static, PendingReply>>,
    bans: Bans,
    storage_peers: HashSet<PeerId>,
    listen_addrs: Vec<Multiaddr>,
    priority: HashSet<PeerId>,
}

impl EventLoop {
    async fn run(mut self) {
        let mut maintenance = tokio::time::interval(Duration::from_secs(3));
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event).await,
                command = self.commands.recv() => match command {
                    Some(c) => self.on_command(c),
                    None => break,
                },
                Some(reply) = self.replies.next(), if !self.replies.is_empty() => self.send_reply(reply),
                _ = maintenance.tick() => self.maintain(),
            }
        }
    }

    /// Priority peers: `peers` and the bootstrap peers, exempt from the gate and the limits.
    fn set_priority(&mut self, peers: Vec<PeerId>) {
        let bootstrap = self
            .bootstrap
            .iter()
            .filter_map(|addr| match addr.iter().last() {
                Some(Protocol::P2p(peer)) => Some(peer),
                _ => None,
            });
        let priority: HashSet<PeerId> = peers.into_iter().chain(bootstrap).collect();
        let b = self.swarm.behaviour_mut();
        for old in self.priority.difference(&priority) {
            b.limits.remove_peer_id(old);
        }
        for peer in &priority {
            b.limits.bypass_peer_id(peer);
        }
        b.gate.set_priority(priority.iter().copied());
        self.priority = priority;
    }

    fn dial_bootstrap(&mut self) {
        for addr in self.bootstrap.clone() {
            if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                if self.bans.contains(&peer) {
                    continue;
                }
                let mut base = addr.clone();
                base.pop();
                self.swarm.behaviour_mut().kad.add_address(&peer, base);
            }
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::debug!(%addr, "bootstrap dial failed: {e}");
            }
        }
    }

    fn maintain(&mut self) {
        for peer in self.bans.lift_expired(Instant::now()) {
            tracing::info!(%peer, "ban ended");
            let b = self.swarm.behaviour_mut();
            b.blocked.unblock_peer(peer);
            b.gossipsub.remove_blacklisted_peer(&peer);
        }
        let connected = self.swarm.connected_peers().count();
        if connected == 0 {
            self.dial_bootstrap();
        } else if connected < TARGET_PEERS {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
    }

    fn send_reply(&mut self, reply: PendingReply) {
        let b = self.swarm.behaviour_mut();
        let _ = match reply {
            PendingReply::Chunk(ch, Some(r)) => b.chunks.send_response(ch, r).is_ok(),
            PendingReply::Blocks(ch, Some(r)) => b.blocks.send_response(ch, r).is_ok(),
            PendingReply::Cells(ch, Some(r)) => b.cells.send_response(ch, r).is_ok(),
            PendingReply::Headers(ch, Some(r)) => b.headers.send_response(ch, r).is_ok(),
            PendingReply::Proof(ch, Some(r)) => b.proofs.send_response(ch, r).is_ok(),
            PendingReply::Drive(ch, Some(r)) => b.drives.send_response(ch, r).is_ok(),
            _ => false,
        };
    }

    fn on_command(&mut self, command: Command) {
        let b = self.swarm.behaviour_mut();
        match command {
            Command::RequestChunk(peer, req, tx) => {
                let id = b.chunks.send_request(&peer, req);
                self.pending_chunks.insert(id, tx);
            }
            Command::RequestBlocks(peer, req, tx) => {
                let id = b.blocks.send_request(&peer, req);
                self.pending_blocks.insert(id, tx);
            }
            Command::RequestCells(peer, req, tx) => {
                let id = b.cells.send_request(&peer, req);
                self.pending_cells.insert(id, tx);
            }
            Command::RequestHeaders(peer, req, tx) => {
                let id = b.headers.send_request(&peer, req);
                self.pending_headers.insert(id, tx);
            }
            Command::RequestProof(peer, req, tx) => {
                let id = b.proofs.send_request(&peer, req);
                self.pending_proofs.insert(id, tx);
            }
            Command::RequestDrive(peer, req, tx) => {
                let id = b.drives.send_request(&peer, req);
                self.pending_drives.insert(id, tx);
            }
            Command::Publish(message, tx) => {
                let topic = IdentTopic::new(message.topic());
                let result = match b.gossipsub.publish(topic, encode(&message)) {
                    Ok(_) | Err(gossipsub::PublishError::Duplicate) => Ok(()),
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                        Err(PublishError::NoPeers)
                    }
                    Err(e) => Err(PublishError::Failed(e.to_string())),
                };
                let _ = tx.send(result);
            }
            Command::Report(id, validation) => {
                let acceptance = match validation {
                    Validation::Accept => MessageAcceptance::Accept,
                    Validation::Ignore => MessageAcceptance::Ignore,
                    Validation::Reject => MessageAcceptance::Reject,
                };
                b.gossipsub.report_message_validation_result(
                    &id.message_id,
                    &id.source,
                    acceptance,
                );
            }
            Command::Penalise(peer) => {
                let length = self.bans.ban(peer, Instant::now());
                tracing::warn!(%peer, ?length, "dropping peer that sent invalid data");
                b.blocked.block_peer(peer);
                b.gossipsub.blacklist_peer(&peer);
                b.kad.remove_peer(&peer);
            }
            Command::SetPriority(peers) => self.set_priority(peers),
            Command::Info(tx) => {
                let _ = tx.send(NetworkInfo {
                    peer_id: *self.swarm.local_peer_id(),
                    listen_addrs: self.listen_addrs.clone(),
                    connected: self.swarm.connected_peers().copied().collect(),
                    banned: self.bans.peers().copied().collect(),
                    storage_peers: self
                        .storage_peers
                        .iter()
                        .filter(|p| self.swarm.is_connected(p))
                        .copied()
                        .collect(),
                });
            }
        }
    }

    async fn emit(&mut self, event: NetworkEvent) {
        // The receiver only goes away at shutdown; then there is nobody left to tell.
        let _ = self.events.send(event).await;
    }

    async fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.listen_addrs.push(address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } if num_established.get() == 1 => {
                self.emit(NetworkEvent::PeerConnected(peer_id)).await;
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event).await,
            _ => {}
        }
    }

    async fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        let replies = &self.replies;
        let inbound = match event {
            BehaviourEvent::Chunks(event) => on_request_response(
                event,
                &mut self.pending_chunks,
                replies,
                PendingReply::Chunk,
                |peer, request, reply| NetworkEvent::ChunkRequest {
                    peer,
                    request,
                    reply,
                },
                false,
            ),
            BehaviourEvent::Blocks(event) => on_request_response(
                event,
                &mut self.pending_blocks,
                replies,
                PendingReply::Blocks,
                |peer, request, reply| NetworkEvent::BlockRequest {
                    peer,
                    request,
                    reply,
                },
                false,
            ),
            BehaviourEvent::Cells(event) => on_request_response(
                event,
                &mut self.pending_cells,
                replies,
                PendingReply::Cells,
                |peer, request, reply| NetworkEvent::CellsRequest {
                    peer,
                    request,
                    reply,
                },
                false,
            ),
            BehaviourEvent::Headers(event) => on_request_response(
                event,
                &mut self.pending_headers,
                replies,
                PendingReply::Headers,
                |peer, request, reply| NetworkEvent::HeaderRequest {
                    peer,
                    request,
                    reply,
                },
                false,
            ),
            BehaviourEvent::Proofs(event) => on_request_response(
                event,
                &mut self.pending_proofs,
                replies,
                PendingReply::Proof,
                |peer, request, reply| NetworkEvent::ProveRequest {
                    peer,
                    request,
                    reply,
                },
                true,
            ),
            BehaviourEvent::Drives(event) => on_request_response(
                event,
                &mut self.pending_drives,
                replies,
                PendingReply::Drive,
                |peer, request, reply| NetworkEvent::DriveRequest {
                    peer,
                    request,
                    reply,
                },
                false,
            ),
            other => {
                self.on_other_behaviour_event(other).await;
                None
            }
        };
        if let Some(e) = inbound {
            self.emit(e).await;
        }
    }

    /// Gossip, identify and Kademlia events.
    async fn on_other_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let id = GossipId {
                    message_id,
                    source: propagation_source,
                };
                match decode::<GossipMessage>(&message.data, MAX_GOSSIP_SIZE) {
                    Ok(decoded) if decoded.topic() == message.topic.as_str() => {
                        self.emit(NetworkEvent::Gossip {
                            id,
                            message: decoded,
                        })
                        .await;
                    }
                    _ => {
                        tracing::debug!(peer = %propagation_source, "malformed gossip rejected");
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .report_message_validation_result(
                                &id.message_id,
                                &id.source,
                                MessageAcceptance::Reject,
                            );
                    }
                }
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if info.protocol_version != IDENTIFY_VERSION {
                    tracing::debug!(peer = %peer_id, version = %info.protocol_version, "not a Nexus node: disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                self.swarm.behaviour_mut().gate.identified(peer_id);
                if info.protocols.contains(&cells::PROTOCOL) {
                    self.storage_peers.insert(peer_id);
                }
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated { peer, .. }) => {
                let connected = self.swarm.connected_peers().count();
                if connected < TARGET_PEERS
                    && !self.swarm.is_connected(&peer)
                    && !self.bans.contains(&peer)
                {
                    let _ = self.swarm.dial(peer);
                }
            }
            _ => {}
        }
    }
}

type Pending<Resp> = HashMap<OutboundRequestId, oneshot::Sender<Result<Resp, RequestError>>>;

/// Handles one request-response protocol's event: completes outbound requests, and turns an
/// inbound request into the [`NetworkEvent`] built by `inbound` (its reply is sent when the
/// node answers, through `replies`).
/// Waits for the node's answer while the requester's stream is open; once it closes, the
/// answer slot is dropped, which [`Reply::is_abandoned`] tells the work in progress.
async fn answer_while_requester_waits<Resp>(
    channel: ResponseChannel<Resp>,
    mut answer: oneshot::Receiver<Resp>,
    wrap: fn(ResponseChannel<Resp>, Option<Resp>) -> PendingReply,
) -> PendingReply {
    loop {
        tokio::select! {
            r = &mut answer => return wrap(channel, r.ok()),
            () = tokio::time::sleep(REQUESTER_CHECK) => {
                if !channel.is_open() {
                    return wrap(channel, None);
                }
            }
        }
    }
}

fn on_request_response<Req, Resp>(
    event: request_response::Event<Req, Resp>,
    pending: &mut Pending<Resp>,
    replies: &FuturesUnordered<BoxFuture<'static, PendingReply>>,
    wrap: fn(ResponseChannel<Resp>, Option<Resp>) -> PendingReply,
    inbound: fn(PeerId, Req, Reply<Resp>) -> NetworkEvent,
    watch_requester: bool,
) -> Option<NetworkEvent>
where
    Resp: Send + 'static,
{
    use request_response::{Event, Message};
    match event {
        Event::Message { peer, message, .. } => match message {
            Message::Request {
                request, channel, ..
            } => {
                let (tx, rx) = oneshot::channel();
                if watch_requester {
                    replies.push(answer_while_requester_waits(channel, rx, wrap).boxed());
                } else {
                    replies.push(rx.map(move |r| wrap(channel, r.ok())).boxed());
                }
                Some(inbound(peer, request, Reply(tx)))
            }
            Message::Response {
                request_id,
                response,
            } => {
                if let Some(tx) = pending.remove(&request_id) {
                    let _ = tx.send(Ok(response));
                }
                None
            }
        },
        Event::OutboundFailure {
            peer,
            request_id,
            error,
            ..
        } => {
            if let Some(tx) = pending.remove(&request_id) {
                let reason = error.to_string();
                let _ = tx.send(Err(RequestError::Failed { peer, reason }));
            }
            None
        }
        _ => None,
    }
}
