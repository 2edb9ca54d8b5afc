//! The HTTP API of a Nexus node, shared by everything that speaks it: the request and
//! response bodies ([`types`]), the client the CLI, the devnet and the benches use
//! ([`client`]), and the serving machinery a node or a gateway mounts its routes on
//! ([`server`]: the accept loop with per-client connection caps, fair upload slots, JSON
//! errors). The routes themselves stay with the state they read (the node's daemon).

pub mod client;
pub mod server;
pub mod stats;
pub mod types;
