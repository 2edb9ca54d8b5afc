//! Who may hold a connection: what libp2p's `connection_limits` cannot say. Priority peers
//! (the committee's validators and the node's bootstrap peers) always get in and are never
//! closed here; everyone else shares bounded room — at most [`MAX_PENDING_PER_IP`]
//! handshakes and [`MAX_INBOUND_PER_IP`] established inbound connections per IP address —
//! and must identify as a Nexus node within [`IDENTIFY_WITHIN`] or be closed. So a stranger
//! minting identities cannot take a validator's peers: it gets a few slots per address, and
//! only for as long as it behaves like a node.
//!
//! The totals (established, inbound, pending) are `connection_limits`', configured in
//! `behaviour.rs` with the same priority peers exempt.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm,
    ListenFailure, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// Handshakes in progress from one IP address.
pub const MAX_PENDING_PER_IP: usize = 32;
/// Established inbound connections of non-priority peers from one IP address.
pub const MAX_INBOUND_PER_IP: usize = 32;
/// How long a non-priority peer has to identify as a Nexus node.
pub const IDENTIFY_WITHIN: Duration = Duration::from_secs(15);
/// How often connections are checked for an identify overdue.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// A non-priority peer's connection.
#[derive(Debug, Clone, Copy)]
struct Held {
    peer: PeerId,
    /// The remote address of an inbound connection (outbound ones count for no IP).
    inbound_from: Option<IpAddr>,
    since: Instant,
}

/// Why the gate turned a connection away.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum Refusal {
    /// Too many handshakes from the address at once.
    #[error("too many handshakes from {0} at once")]
    PendingFromIp(IpAddr),
    /// Too many connections from the address.
    #[error("too many connections from {0}")]
    InboundFromIp(IpAddr),
}

/// The behaviour: decides on connections, and closes those whose peer never identified.
#[derive(Debug)]
pub struct Gate {
    priority: HashSet<PeerId>,
    pending: HashMap<ConnectionId, IpAddr>,
    held: HashMap<ConnectionId, Held>,
    identified: HashSet<PeerId>,
    sweep: Pin<Box<tokio::time::Sleep>>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            priority: HashSet::new(),
            pending: HashMap::new(),
            held: HashMap::new(),
            identified: HashSet::new(),
            sweep: Box::pin(tokio::time::sleep(SWEEP_EVERY)),
        }
    }
}

/// The IP address of a transport address, if it has one.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl Gate {
    /// Makes `peers` the priority peers (they replace the previous set).
    pub fn set_priority(&mut self, peers: impl IntoIterator<Item = PeerId>) {
        self.priority = peers.into_iter().collect();
        self.held.retain(|_, h| !self.priority.contains(&h.peer));
    }

    /// `peer` identified as a Nexus node: its connections are not closed for silence.
    pub fn identified(&mut self, peer: PeerId) {
        self.identified.insert(peer);
    }

    /// Connections held by non-priority peers from `ip`.
    fn inbound_from(&self, ip: IpAddr) -> usize {
        self.held
            .values()
            .filter(|h| h.inbound_from == Some(ip))
            .count()
    }

    /// The connections whose peer has not identified within [`IDENTIFY_WITHIN`] of `now`.
    fn overdue(&self, now: Instant) -> Vec<(ConnectionId, PeerId)> {
        self.held
            .iter()
            .filter(|(_, h)| {
                !self.identified.contains(&h.peer) && now.duration_since(h.since) >= IDENTIFY_WITHIN
            })
            .map(|(id, h)| (*id, h.peer))
            .collect()
    }

    fn admit(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        inbound_from: Option<IpAddr>,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if self.priority.contains(&peer) {
            return Ok(dummy::ConnectionHandler);
        }
        if let Some(ip) = inbound_from {
            if self.inbound_from(ip) >= MAX_INBOUND_PER_IP {
                return Err(ConnectionDenied::new(Refusal::InboundFromIp(ip)));
            }
        }
        self.held.insert(
            id,
            Held {
                peer,
                inbound_from,
                since: Instant::now(),
            },
        );
        Ok(dummy::ConnectionHandler)
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        if let Some(ip) = ip_of(remote) {
            if self.pending.values().filter(|p| **p == ip).count() >= MAX_PENDING_PER_IP {
                return Err(ConnectionDenied::new(Refusal::PendingFromIp(ip)));
            }
            self.pending.insert(id, ip);
        }
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.pending.remove(&id);
        self.admit(id, peer, ip_of(remote))
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.admit(id, peer, None)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                remaining_established,
                ..
            }) => {
                self.held.remove(&connection_id);
                if remaining_established == 0 {
                    self.identified.remove(&peer_id);
                }
            }
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.pending.remove(&connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        if self.sweep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let now = Instant::now();
        if let Some((id, peer)) = self.overdue(now).into_iter().next() {
            self.held.remove(&id);
            tracing::debug!(%peer, "closing a connection whose peer did not identify");
            // Look again at once for the next one.
            cx.waker().wake_by_ref();
            return Poll::Ready(ToSwarm::CloseConnection {
                peer_id: peer,
                connection: CloseConnection::One(id),
            });
        }
        self.sweep
            .as_mut()
            .reset(tokio::time::Instant::now() + SWEEP_EVERY);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> ConnectionId {
        ConnectionId::new_unchecked(n)
    }

    fn addr(ip: &str) -> Multiaddr {
        format!("/ip4/{ip}/tcp/4001").parse().expect("address")
    }

    #[tokio::test]
    async fn strangers_share_bounded_room_per_address_and_priority_peers_always_get_in() {
        let mut gate = Gate::default();
        let local = addr("127.0.0.1");
        let (attacker, other) = (addr("10.0.0.1"), addr("10.0.0.2"));
        for n in 0..MAX_PENDING_PER_IP {
            gate.handle_pending_inbound_connection(id(n), &local, &attacker)
                .expect("under the handshake cap");
        }
        assert!(gate
            .handle_pending_inbound_connection(id(1000), &local, &attacker)
            .is_err());
        gate.handle_pending_inbound_connection(id(1001), &local, &other)
            .expect("another address has its own room");
        for n in 0..MAX_INBOUND_PER_IP {
            gate.handle_established_inbound_connection(id(n), PeerId::random(), &local, &attacker)
                .expect("under the cap");
        }
        assert!(gate
            .handle_established_inbound_connection(id(2000), PeerId::random(), &local, &attacker)
            .is_err());
        // A priority peer from the same address gets in anyway, and is never watched.
        let validator = PeerId::random();
        gate.set_priority([validator]);
        gate.handle_established_inbound_connection(id(2001), validator, &local, &attacker)
            .expect("priority peers always get in");
        assert!(gate
            .overdue(Instant::now() + IDENTIFY_WITHIN)
            .iter()
            .all(|(_, p)| *p != validator));
    }

    #[tokio::test]
    async fn a_peer_that_never_identifies_is_closed_one_that_does_stays() {
        let mut gate = Gate::default();
        let (silent, node) = (PeerId::random(), PeerId::random());
        let local = addr("127.0.0.1");
        gate.handle_established_inbound_connection(id(1), silent, &local, &addr("10.0.0.1"))
            .expect("admitted");
        gate.handle_established_outbound_connection(
            id(2),
            node,
            &addr("10.0.0.2"),
            Endpoint::Dialer,
            PortUse::New,
        )
        .expect("admitted");
        gate.identified(node);
        let now = Instant::now();
        assert!(gate.overdue(now).is_empty(), "not before its time is up");
        assert_eq!(gate.overdue(now + IDENTIFY_WITHIN), vec![(id(1), silent)]);
    }
}
