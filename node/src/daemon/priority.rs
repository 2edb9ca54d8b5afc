//! Keeps the network's priority peers (see `nexus_net::gate`) the validators of the
//! committee this node follows, so that strangers holding connections never keep a
//! validator from its committee.

use std::sync::Arc;
use std::time::Duration;

use nexus_net::{Multiaddr, PeerId};

use super::Node;

/// How often the committee is read again.
const EVERY: Duration = Duration::from_secs(30);

/// Tells the network the committee's peers, at start and whenever they change.
pub(crate) async fn priority_loop(node: Arc<Node>) {
    let mut told: Option<Vec<PeerId>> = None;
    loop {
        if let Some(ctx) = node.context() {
            let peers = committee_peers(
                ctx.committee()
                    .validators()
                    .iter()
                    .map(|v| v.address.as_str()),
            );
            if told.as_ref() != Some(&peers) {
                node.net.set_priority_peers(peers.clone()).await;
                told = Some(peers);
            }
        }
        tokio::time::sleep(if told.is_some() {
            EVERY
        } else {
            Duration::from_secs(1)
        })
        .await;
    }
}

/// The peer ids that validators' addresses end with (`…/p2p/PEER`); others are skipped.
fn committee_peers<'a>(addresses: impl Iterator<Item = &'a str>) -> Vec<PeerId> {
    let mut peers: Vec<PeerId> = addresses
        .filter_map(|a| a.parse::<Multiaddr>().ok())
        .filter_map(|a| match a.iter().last() {
            Some(nexus_net::multiaddr::Protocol::P2p(peer)) => Some(peer),
            _ => None,
        })
        .collect();
    peers.sort();
    peers.dedup();
    peers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_come_from_addresses_that_name_them() {
        let peer = PeerId::random();
        let found = committee_peers(
            [
                format!("/ip4/127.0.0.1/tcp/7000/p2p/{peer}"),
                format!("/p2p/{peer}"),
                String::new(),
                "/ip4/127.0.0.1/tcp/7001".to_string(),
            ]
            .iter()
            .map(String::as_str),
        );
        assert_eq!(found, vec![peer]);
    }
}
