//! Cheap identities against a committee: a dialer of our own on libp2p opens connections
//! to every validator of four, each with a fresh Ed25519 key, completing multistream, Noise
//! and Yamux and then doing nothing, redialling whatever is closed — 252 at a time per
//! validator. The validators go on finalizing, a validator SIGKILLed and restarted in the
//! middle of the attack gets back to its committee and catches up, and no validator holds
//! more of the attacker's connections than the gate allows from one address.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::swarm::{dummy, SwarmEvent};
use libp2p::{noise, tcp, yamux, Multiaddr};
use support::*;

const VALIDATORS: usize = 4;
/// Connections the attacker tries to hold at each validator (the 252).
const SYBILS_PER_VALIDATOR: usize = 252;

/// One cheap identity after another against `target`: a fresh key per connection, which
/// is held until the validator closes it, then replaced.
async fn sybil(target: Multiaddr, stop: Arc<AtomicBool>, held: Arc<AtomicUsize>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(builder) = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
        else {
            return;
        };
        let Ok(builder) = builder.with_behaviour(|_| dummy::Behaviour);
        let mut swarm = builder
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .build();
        if swarm.dial(target.clone()).is_err() {
            return;
        }
        let mut holding = false;
        while !stop.load(Ordering::Relaxed) {
            let event =
                tokio::time::timeout(Duration::from_millis(500), swarm.select_next_some()).await;
            match event {
                Ok(SwarmEvent::ConnectionEstablished { .. }) => {
                    holding = true;
                    held.fetch_add(1, Ordering::Relaxed);
                }
                Ok(SwarmEvent::ConnectionClosed { .. })
                | Ok(SwarmEvent::OutgoingConnectionError { .. }) => break,
                _ => {}
            }
        }
        if holding {
            held.fetch_sub(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The finalized heights of `nodes` (0 for one that does not answer).
fn heights(nodes: &[TestNode]) -> Vec<u64> {
    nodes
        .iter()
        .map(|n| {
            get_json(&n.api, "/v1/status")
                .and_then(|s| s["height"].as_u64())
                .unwrap_or(0)
        })
        .collect()
}

/// Blocks finalized per second by validator 0 over `span`.
fn rate(nodes: &[TestNode], span: Duration) -> f64 {
    let start = heights(nodes)[0];
    std::thread::sleep(span);
    (heights(nodes)[0] - start) as f64 / span.as_secs_f64()
}

#[test]
fn a_committee_keeps_finalizing_and_a_restarted_validator_rejoins_under_a_sybil_flood() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = (0..VALIDATORS)
        .map(|i| tmp.path().join(format!("v{i}")))
        .collect();
    // The committee names each validator's peer id: its peers are priority peers.
    let keys: Vec<serde_json::Value> = dirs.iter().map(|d| keys_of(d)).collect();
    let committee: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            serde_json::json!({
                "key": k["validator"],
                "proof_of_possession": k["validator_proof_of_possession"],
                "stake": 1,
                "address": format!("/p2p/{}", k["peer_id"].as_str().expect("peer id")),
            })
        })
        .collect();
    let genesis = chain_genesis(
        tmp.path(),
        &dirs,
        VALIDATORS,
        params(1_000),
        serde_json::json!({ "committee": { "epoch": 0, "validators": committee } }),
    );
    let timing = ["--block-interval-ms", "200", "--round-timeout-ms", "1000"];
    let mut nodes: Vec<TestNode> = Vec::new();
    for dir in &dirs {
        let boot: Vec<String> = nodes.iter().map(TestNode::addr).collect();
        let mut args = vec!["--genesis-config", genesis.as_str()];
        args.extend_from_slice(&timing);
        nodes.push(TestNode::start(dir, true, &boot, &args));
    }
    wait_until("the committee to finalize", Duration::from_secs(60), || {
        heights(&nodes).iter().all(|h| *h >= 5)
    });
    let idle = rate(&nodes, Duration::from_secs(10));

    let stop = Arc::new(AtomicBool::new(false));
    let held: Vec<Arc<AtomicUsize>> = (0..VALIDATORS).map(|_| Arc::default()).collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for (node, held) in nodes.iter().zip(&held) {
        let target: Multiaddr = node.listen.parse().expect("listen address");
        for _ in 0..SYBILS_PER_VALIDATOR {
            runtime.spawn(sybil(target.clone(), stop.clone(), held.clone()));
        }
    }
    std::thread::sleep(Duration::from_secs(10));
    let attacked = rate(&nodes, Duration::from_secs(10));
    let holding: Vec<usize> = held.iter().map(|h| h.load(Ordering::Relaxed)).collect();
    // Each validator's own count: its committee and what the gate lets one address hold.
    let peers: Vec<usize> = nodes
        .iter()
        .map(|n| n.status()["peers"].as_array().map_or(0, Vec::len))
        .collect();
    eprintln!(
        "blocks/s idle {idle:.2}, under {SYBILS_PER_VALIDATOR} sybils per validator {attacked:.2}; \
         peers per validator {peers:?}; connections the attacker saw open {holding:?}"
    );
    for p in &peers {
        assert!(
            *p <= nexus_net::gate::MAX_INBOUND_PER_IP + VALIDATORS,
            "a validator holds {peers:?} peers"
        );
    }
    assert!(attacked > 0.0, "the committee stopped finalizing");

    // A validator killed and restarted in the middle of the attack gets back in.
    nodes[3].kill9();
    std::thread::sleep(Duration::from_secs(3));
    let killed_at = Instant::now();
    nodes[3].restart_with(&[]);
    let target = heights(&nodes)[0] + 10;
    wait_until(
        "the restarted validator to catch up with the committee",
        Duration::from_secs(120),
        || heights(&nodes)[3] >= target,
    );
    eprintln!(
        "restarted validator back at the committee's height {:?} after the restart",
        killed_at.elapsed()
    );
    let before = heights(&nodes);
    std::thread::sleep(Duration::from_secs(5));
    let after = heights(&nodes);
    assert!(
        after.iter().zip(&before).all(|(a, b)| a > b),
        "every validator, the restarted one included, keeps finalizing: {before:?} → {after:?}"
    );
    stop.store(true, Ordering::Relaxed);
    runtime.shutdown_timeout(Duration::from_secs(5));
}
