//! Season ∞ end to end: blocks carry KZG-committed data, storage nodes keep their custody
//! cells, and light clients (`nexus light`) sample every block and report it available.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::support::*;

/// A `nexus light` process whose report lines go to a file.
/// Custody fetched only once blocks are final: what a withholding uploader then holds back
/// is missing everywhere.
const LATE_CUSTODY: [&str; 2] = ["--fault", "late-custody"];

/// These tests run eight processes each; one at a time keeps their timing honest on two
/// cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Six storage nodes (one of them the validator; storage node `faulty.0` started with
/// `--fault faulty.1`, every node with `everyone`) and two light clients following them.
struct Devnet {
    proposer: TestNode,
    storage: Vec<TestNode>,
    lights: Vec<LightClient>,
    tmp: tempfile::TempDir,
}

fn devnet(faulty: Option<(usize, &str)>, everyone: &[&str]) -> Devnet {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<PathBuf> = (0..6).map(|i| tmp.path().join(format!("n{i}"))).collect();
    let mut extra = vec!["--block-interval-ms", "300"];
    extra.extend_from_slice(everyone);
    // Every cell kept by three nodes rather than the default two: custody is a network
    // parameter.
    let spec = serde_json::json!({ "custodians_per_group": 3 });
    let proposer = start_proposer_with_spec(tmp.path(), &dirs, params(20), spec, &extra);
    let boot = vec![proposer.addr()];
    let storage: Vec<TestNode> = dirs[1..]
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut extra = extra.clone();
            if let Some((_, fault)) = faulty.filter(|(f, _)| *f == i) {
                extra.extend(["--fault", fault]);
            }
            TestNode::start(d, false, &boot, &extra)
        })
        .collect();
    let lights: Vec<LightClient> = (0..2)
        .map(|i| LightClient::start(tmp.path().join(format!("light{i}.out")), &boot[..1]))
        .collect();
    for light in &lights {
        wait_until(
            "the light client to follow the chain",
            Duration::from_secs(60),
            || !light.reports().is_empty(),
        );
    }
    Devnet {
        proposer,
        storage,
        lights,
        tmp,
    }
}

impl Devnet {
    /// Puts a `das` blob of `size` bytes (the payload of its block, which light clients
    /// sample) through storage node `via`; returns its block's height.
    fn put(&self, via: usize, size: usize, seed: u64) -> u64 {
        self.put_with(via, size, seed, "das").1
    }

    /// Puts a blob with `policy`; returns its id and its block's height.
    fn put_with(&self, via: usize, size: usize, seed: u64, policy: &str) -> (String, u64) {
        let file = write_file(self.tmp.path(), &format!("blob{seed}"), &bytes(size, seed));
        let out = cli_ok(
            &self.storage[via].api,
            &["put", &file, "--policy", policy, "--json"],
        );
        let receipt: serde_json::Value = serde_json::from_str(&out).expect("receipt");
        let id = receipt["blob_id"].as_str().expect("id").to_string();
        (id, receipt["height"].as_u64().expect("height"))
    }

    /// Waits until every light client has judged every height up to `last`, and returns
    /// each one's report lines.
    fn verdicts(&self, last: u64) -> Vec<BTreeMap<u64, String>> {
        self.lights
            .iter()
            .map(|light| {
                let first = *light.reports().keys().next().expect("reports");
                wait_until(
                    "the light client to judge the blocks",
                    Duration::from_secs(60),
                    || {
                        let reports = light.reports();
                        (first..=last).all(|h| reports.contains_key(&h))
                    },
                );
                light.reports()
            })
            .collect()
    }
}

/// The confidence a report line states, if it says the block is available after sampling.
fn sampled_confidence(verdict: &str) -> Option<f64> {
    let rest = verdict.strip_prefix("available, confidence ")?;
    rest.split(',').next()?.parse().ok()
}

#[test]
fn light_clients_find_every_block_available_on_a_six_node_devnet() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let net = devnet(None, &[]);
    // Blocks with data: das blobs of a few sizes (one row each), put through different
    // nodes.
    let heights: Vec<u64> = [10_000usize, 60_000, 120_000]
        .into_iter()
        .enumerate()
        .map(|(i, size)| net.put(i, size, i as u64))
        .collect();
    let last = *heights.iter().max().expect("puts");
    for (i, reports) in net.verdicts(last).iter().enumerate() {
        let first = *reports.keys().next().expect("reports");
        // Every block from where it joined on is reported, and every one is available.
        for h in first..=last {
            let verdict = &reports[&h];
            assert!(
                verdict.starts_with("available"),
                "light {i}, height {h}: {verdict}"
            );
        }
        for &h in &heights {
            let verdict = &reports[&h];
            let confidence = sampled_confidence(verdict)
                .unwrap_or_else(|| panic!("light {i}, height {h} was not sampled: {verdict}"));
            assert!(confidence >= 0.9999, "light {i}, height {h}: {verdict}");
        }
    }
    // An operator sees the grid: cells held and sampled, none missing.
    let drawing = cli_ok(&net.storage[4].api, &["inspect", &heights[0].to_string()]);
    assert!(drawing.contains("2 rows x 128 cells"), "{drawing}");
    assert!(drawing.contains("✗ missing: 0"), "{drawing}");
    assert!(drawing.contains('█') && drawing.contains('▓'), "{drawing}");

    // The three payloads (2 rows of 128 cells each) are kept three times over in all, and
    // no node keeps them all: custody is a share. (Exactly three times once every node sees
    // every other; a node that computed its custody before meeting everyone keeps more.)
    wait_until("custody to fill", Duration::from_secs(30), || {
        let held: Vec<u64> = std::iter::once(&net.proposer)
            .chain(&net.storage)
            .map(|n| n.status()["custody_cells"].as_u64().unwrap_or(0))
            .collect();
        held.iter().sum::<u64>() >= 3 * 3 * 256 && held.iter().all(|&n| n < 3 * 256)
    });

    // A node restarted with an empty custody store fills it again from the others.
    let mut net = net;
    let before = net.storage[3].status()["custody_cells"]
        .as_u64()
        .expect("count");
    assert!(before > 0);
    net.storage[3].restart_with(&["--fault", "drop-custody"]);
    wait_until(
        "the emptied node to refill its custody",
        Duration::from_secs(60),
        || {
            net.storage[3].status()["custody_cells"]
                .as_u64()
                .is_some_and(|n| n >= before)
        },
    );
    assert!(net.storage[3]
        .log()
        .contains(&format!("custody store emptied held={before}")));

    // A das blob rides in its block's payload: sampled like any block, and fetched by a
    // node that never held it from the custodians' cells.
    let (id, height) = net.put_with(0, 600_000, 77, "das");
    for (i, reports) in net.verdicts(height).iter().enumerate() {
        let verdict = &reports[&height];
        assert!(
            sampled_confidence(verdict).is_some_and(|c| c >= 0.9999),
            "light {i}, das block {height}: {verdict}"
        );
    }
    assert!(!net.storage[4].has_complete(&id));
    let copy = net.tmp.path().join("das-copy");
    let out = cli_ok(
        &net.storage[4].api,
        &["get", &id, "-o", copy.to_str().expect("utf8")],
    );
    assert!(out.contains("rebuilt from"), "{out}");
    assert_eq!(
        std::fs::read(&copy).expect("copy"),
        bytes(600_000, 77),
        "{out}"
    );
}

#[test]
fn a_withheld_corner_makes_light_clients_report_the_block_unavailable() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // Storage node 0 uploads the blob, and withholds a corner of it once it is final;
    // custodians fetch their cells only then (not ahead, as they do by default).
    let net = devnet(Some((0, "withhold-corner")), &LATE_CUSTODY);
    let height = net.put(0, 50_000, 7);
    for (i, reports) in net.verdicts(height + 1).iter().enumerate() {
        let verdict = &reports[&height];
        assert!(verdict.starts_with("UNAVAILABLE"), "light {i}: {verdict}");
        assert!(reports[&(height + 1)].starts_with("available"), "light {i}");
    }
    // Another node's operator sees the hole.
    let drawing = cli_ok(
        &net.storage[1].api,
        &["inspect", &height.to_string(), "--samples", "256"],
    );
    assert!(!drawing.contains("✗ missing: 0"), "{drawing}");
}

#[test]
fn one_cell_short_of_the_corner_is_rebuilt_by_storage_nodes_and_available() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let net = devnet(Some((0, "withhold-corner-but-one")), &LATE_CUSTODY);
    // The first rebuild waits for the nodes to build their FK20 tables (seconds on a loaded
    // machine); judge the block after it.
    net.put(0, 50_000, 9);
    wait_until(
        "a storage node to rebuild a payload",
        Duration::from_secs(60),
        || {
            net.storage
                .iter()
                .any(|n| n.log().contains("rebuilt a block's payload"))
        },
    );
    let height = net.put(1, 50_000, 8);
    for (i, reports) in net.verdicts(height).iter().enumerate() {
        let verdict = &reports[&height];
        assert!(
            sampled_confidence(verdict).is_some_and(|c| c >= 0.9999),
            "light {i}: {verdict}"
        );
    }
}

#[test]
fn a_custodian_serving_wrong_proofs_is_dropped_and_cells_come_from_others() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let net = devnet(Some((2, "wrong-proofs")), &[]);
    let faulty = net.storage[2].status()["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();
    let heights: Vec<u64> = (0..5)
        .map(|i| net.put(i % 2, 20_000, 20 + i as u64))
        .collect();
    let last = *heights.iter().max().expect("puts");
    let verdicts = net.verdicts(last);
    for (i, reports) in verdicts.iter().enumerate() {
        for &h in &heights {
            let verdict = &reports[&h];
            assert!(
                verdict.starts_with("available"),
                "light {i}, height {h}: {verdict}"
            );
        }
    }
    // An operator inspecting the blocks asks each cell of their custodians first, the
    // faulty one among them.
    wait_until("custody to fill", Duration::from_secs(30), || {
        net.storage[2].status()["custody_cells"].as_u64() > Some(0)
    });
    for &h in &heights {
        cli_ok(
            &net.storage[0].api,
            &["inspect", &h.to_string(), "--samples", "4096"],
        );
    }
    // Whoever asked it first (a light client, a custodian or the operator) found it out
    // and dropped it.
    let light_noticed = verdicts
        .iter()
        .any(|r| r.values().any(|v| v.contains("penalised")));
    let node_noticed = std::iter::once(&net.proposer)
        .chain(net.storage.iter().filter(|n| n.api != net.storage[2].api))
        .any(|n| {
            n.status()["banned_peers"]
                .as_array()
                .is_some_and(|b| b.iter().any(|p| p.as_str() == Some(faulty.as_str())))
        });
    assert!(
        light_noticed || node_noticed,
        "nobody noticed the bad proofs"
    );
}
