//! Nexus networking: the libp2p swarm (TCP + Noise + Yamux, DNS, identify, ping, a private
//! Kademlia, gossipsub, request-response) and every wire protocol with its size caps.
//!
//! The crate moves bytes and reports events; it holds no business logic. Peers that send
//! invalid data are dropped through [`Network::penalise`] by whoever found out.

mod bans;
mod behaviour;
pub mod codec;
pub mod gate;
pub mod protocol;
mod service;

pub use behaviour::Role;
pub use libp2p::identity::Keypair;
pub use libp2p::{multiaddr, Multiaddr, PeerId};
pub use service::{
    GossipId, Network, NetworkConfig, NetworkEvent, NetworkInfo, PublishError, Reply, RequestError,
    StartError, Validation,
};
