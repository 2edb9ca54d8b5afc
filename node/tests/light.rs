//! Season ∞ end to end: blocks carry KZG-committed data, storage nodes keep their custody
//! cells, and light clients (`nexus light`) sample every block and report it available.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;

/// A `nexus light` process whose report lines go to a file.
struct LightClient {
    child: Child,
    out: PathBuf,
}

impl LightClient {
    fn start(out: PathBuf, bootstrap: &str) -> LightClient {
        let file = std::fs::File::create(&out).expect("light client output");
        let child = Command::new(NEXUS)
            .args([
                "light",
                "--bootstrap",
                bootstrap,
                "--target-confidence",
                "0.9999",
            ])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("output"))
            .stderr(file)
            .spawn()
            .expect("spawn light client");
        LightClient { child, out }
    }

    /// The report line per height printed so far.
    fn reports(&self) -> BTreeMap<u64, String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("height ")?;
                let (h, verdict) = rest.split_once(": ")?;
                Some((h.parse().ok()?, verdict.to_string()))
            })
            .collect()
    }
}

impl Drop for LightClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The confidence a report line states, if it says the block is available after sampling.
fn sampled_confidence(verdict: &str) -> Option<f64> {
    let rest = verdict.strip_prefix("available, confidence ")?;
    rest.split(',').next()?.parse().ok()
}

#[test]
fn light_clients_find_every_block_available_on_a_six_node_devnet() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<PathBuf> = (0..6).map(|i| tmp.path().join(format!("n{i}"))).collect();
    let proposer = start_proposer(tmp.path(), &dirs, &["--block-interval-ms", "300"]);
    let boot = vec![proposer.addr()];
    let storage: Vec<TestNode> = dirs[1..]
        .iter()
        .map(|d| TestNode::start(d, false, &boot, &["--block-interval-ms", "300"]))
        .collect();
    let lights: Vec<LightClient> = (0..2)
        .map(|i| LightClient::start(tmp.path().join(format!("light{i}.out")), &boot[0]))
        .collect();
    for light in &lights {
        wait_until(
            "the light client to follow the chain",
            Duration::from_secs(60),
            || !light.reports().is_empty(),
        );
    }

    // Blocks with data: blobs of a few sizes, put through different nodes.
    let mut heights = Vec::new();
    for (i, size) in [10_000usize, 300_000, 1_000_000].into_iter().enumerate() {
        let file = write_file(tmp.path(), &format!("blob{i}"), &bytes(size, i as u64));
        let api = &storage[i].api;
        let out = cli_ok(api, &["put", &file, "--json"]);
        let receipt: serde_json::Value = serde_json::from_str(&out).expect("receipt");
        heights.push(receipt["height"].as_u64().expect("height"));
    }
    let last = *heights.iter().max().expect("puts");
    for (i, light) in lights.iter().enumerate() {
        let first = *light.reports().keys().next().expect("reports");
        wait_until(
            "the light client to judge the data blocks",
            Duration::from_secs(60),
            || {
                let reports = light.reports();
                (first..=last).all(|h| reports.contains_key(&h))
            },
        );
        let reports = light.reports();
        // Every block from where it joined on is reported, and every one is available.
        for h in first..=last {
            let verdict = reports
                .get(&h)
                .unwrap_or_else(|| panic!("light {i}: no report for {h}"));
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
    drop(storage);
}
