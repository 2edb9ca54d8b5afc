//! Verifiable compute end to end with real processes: a job of two segments, proven by
//! two delegator processes and folded by an orchestrator process, yields a Universal Proof
//! that `nexus compute verify` accepts — after one delegator was SIGKILLed mid-proof and
//! its segment reassigned, and the orchestrator SIGKILLed and restarted (it resumes from
//! the proofs it kept). A job whose program cannot run is refused at submission and
//! anchors nothing. Slow (~8 min): each proof takes about a minute here, and the job takes
//! six (two segments, one of them twice, three folds, the seal) — the fewest that still
//! show a reassigned segment, a resumed driver and every kind of fold.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use support::*;

/// The zkVM's key cache shared with `compute`'s tests (keys are generated once).
fn key_dir() -> String {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("zkvm-keys")
        .display()
        .to_string()
}

fn xorshift32(mut x: u32, iterations: u32) -> u32 {
    for _ in 0..iterations {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
    }
    x
}

/// The segments the driver's view shows proven.
fn proven_segments(api: &str, path: &str) -> Vec<u64> {
    let Some(view) = get_json(api, path) else {
        return Vec::new();
    };
    view["drive"]["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter(|n| n["level"] == 0 && n["state"] == "proven")
                .filter_map(|n| n["index"].as_u64())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_two_segment_job_survives_killed_provers_and_its_proof_verifies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let names = ["proposer", "orchestrator", "delegator-a", "delegator-b"];
    let dirs: Vec<PathBuf> = names.iter().map(|n| tmp.path().join(n)).collect();
    let keys = key_dir();
    let proposer = start_proposer(tmp.path(), &dirs, &["--block-interval-ms", "1000"]);
    let boot = vec![proposer.addr()];
    let mut orchestrator = TestNode::start(
        &dirs[1],
        false,
        &boot,
        &["--orchestrator", "--zkvm-keys", &keys],
    );
    let mut delegators: Vec<TestNode> = dirs[2..]
        .iter()
        .map(|d| TestNode::start(d, false, &boot, &["--delegator", "--zkvm-keys", &keys]))
        .collect();
    for node in delegators.iter().chain([&orchestrator]) {
        wait_until(
            "every prover's compute offer to be final",
            Duration::from_secs(180),
            || node.log().contains("compute offer registered"),
        );
    }
    // The ledger shows each offer with its roles.
    let mut accounts = Vec::new();
    for (node, delegator) in delegators
        .iter()
        .map(|d| (d, true))
        .chain([(&orchestrator, false)])
    {
        let account = node.status()["account"]
            .as_str()
            .expect("account")
            .to_string();
        let offer = get_json(&proposer.api, &format!("/v1/accounts/{account}")).expect("account")
            ["compute"]
            .clone();
        assert_eq!(offer["delegator"], delegator, "{offer}");
        assert_eq!(offer["orchestrator"], !delegator, "{offer}");
        accounts.push(account);
    }
    // Accounts of the delegators, then the orchestrator's.
    let account_of_delegator = |i: usize| accounts[i].clone();
    let orchestrator_account = accounts[2].clone();

    // The example loop guest, 2 segments; first a program that cannot run at all.
    let examples = tmp.path().join("examples");
    cli_ok(
        &proposer.api,
        &["compute", "examples", examples.to_str().expect("path")],
    );
    let elf = examples.join("loop.elf").display().to_string();
    let (iterations, seed) = (200_000u32, 11u32);
    let input = write_file(
        tmp.path(),
        "input.bin",
        &[iterations.to_le_bytes(), seed.to_le_bytes()].concat(),
    );
    let not_elf = write_file(tmp.path(), "script.sh", b"#!/bin/sh\necho no\n");
    let refused = cli(
        &proposer.api,
        &["compute", "submit", &not_elf, "--input", &input],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not an ELF"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let submitted = cli_ok(
        &proposer.api,
        &["compute", "submit", &elf, "--input", &input, "--no-wait"],
    );
    let job = submitted
        .split_whitespace()
        .skip_while(|w| *w != "job")
        .nth(1)
        .expect("a job id in the answer")
        .to_string();
    assert!(submitted.contains("2 segments"), "{submitted}");

    // Kill the first delegator that starts proving, in the middle of its proof.
    let mut victim = None;
    wait_until(
        "a delegator to start proving",
        Duration::from_secs(180),
        || {
            victim = delegators
                .iter()
                .position(|d| d.log().contains("proving segment"));
            victim.is_some()
        },
    );
    let victim = victim.expect("a delegator proving");
    // The node the job was submitted through shows its tree as the driver sees it.
    let path = format!("/v1/compute/jobs/{job}");
    let driver = orchestrator.status()["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();
    let mut relayed = serde_json::Value::Null;
    wait_until(
        "the submitting node to show the tree its driver hands out",
        Duration::from_secs(60),
        || {
            relayed = get_json(&proposer.api, &path).unwrap_or_default();
            relayed["drive"]["nodes"]
                .as_array()
                .is_some_and(|nodes| nodes.iter().any(|n| n["state"] == "assigned"))
        },
    );
    assert_eq!(relayed["driver"], driver.as_str(), "{relayed}");
    std::thread::sleep(Duration::from_secs(10));
    delegators[victim].kill9();

    // The orchestrator is SIGKILLed once it has checked a segment proof; restarted, it
    // resumes from the proofs it kept, and those segments are not proven again.
    // What the view shows is on the driver's disk first, so what it counted before the
    // kill must survive it.
    let (mut kept, mut failed_before_restart) = (Vec::new(), BTreeMap::new());
    wait_until(
        "the orchestrator to check a segment proof and count the killed delegator's failure",
        Duration::from_secs(900),
        || {
            kept = proven_segments(&orchestrator.api, &path);
            failed_before_restart = drive_failures(&orchestrator.api, &path);
            !kept.is_empty() && !failed_before_restart.is_empty()
        },
    );
    orchestrator.restart_with(&[]);
    wait_until("the job to be proven", Duration::from_secs(1500), || {
        get_json(&orchestrator.api, &path).is_some_and(|v| v["job"]["state"]["proven"].is_object())
    });
    let view = get_json(&orchestrator.api, &path).expect("job");
    let failures = view["drive"]["failures"]
        .as_object()
        .expect("failures")
        .clone();
    assert!(
        failures.values().any(|n| n.as_u64().unwrap_or(0) >= 1),
        "the killed delegator's failure is counted: {view}"
    );
    // The picture of the tree names the prover of every node, kept ones included.
    let unnamed: Vec<&serde_json::Value> = view["drive"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["state"] == "proven" && !n["prover"].is_string())
        .collect();
    assert!(
        unnamed.is_empty(),
        "proven nodes without a prover: {unnamed:?}"
    );
    // What the driver counted before its restart it still counts after.
    let after = drive_failures(&orchestrator.api, &path);
    for (prover, before) in &failed_before_restart {
        assert!(
            after.get(prover).is_some_and(|n| n >= before),
            "{prover} failed {before} times before the restart, the driver now says {after:?}"
        );
    }
    // The reward is paid out on the receipts: the surviving delegator for the two
    // segments it proved (those kept across the driver's restart included), the driver
    // for the rest; the killed delegator, which delivered nothing, for nothing.
    let payouts = view["job"]["state"]["proven"]["payouts"]
        .as_array()
        .expect("the result's payouts")
        .clone();
    let paid = |account: &str| {
        payouts.iter().find(|p| p["account"] == account).map(|p| {
            (
                p["nodes"].as_u64().unwrap_or(0),
                p["amount"].as_u64().unwrap_or(0),
            )
        })
    };
    let survivor_account = account_of_delegator(1 - victim);
    let (nodes, amount) = paid(&survivor_account).expect("the survivor is paid");
    assert_eq!(nodes, 2, "{payouts:?}");
    // 1000 over 5 nodes and the seal: 166 a node.
    assert_eq!(amount, 2 * 166, "{payouts:?}");
    assert_eq!(paid(&orchestrator_account), Some((0, 1000 - 2 * 166)));
    assert_eq!(paid(&account_of_delegator(victim)), None, "{payouts:?}");
    assert!(
        orchestrator.log().contains("resuming with kept proofs"),
        "{}",
        orchestrator.log()
    );
    let survivor = delegators[1 - victim].log();
    for segment in kept {
        let proofs = survivor
            .lines()
            .filter(|l| l.contains("proving segment") && l.contains(&format!("segment={segment}")))
            .count();
        assert_eq!(
            proofs, 1,
            "segment {segment} was kept, yet proven {proofs} times"
        );
    }
    let status = cli_ok(&orchestrator.api, &["compute", "status", &job]);
    assert!(status.contains("proven"), "{status}");
    // Levels are named as the README names them, provers by the peer id the devnet's
    // banner ends their peer address with.
    for line in [
        "segment (2)",
        "leaf (1)",
        "internal-for-leaf (1)",
        "internal-recursive.0 (1)",
        "seal       done",
    ] {
        assert!(status.contains(line), "{line:?} missing: {status}");
    }
    let survivor_peer = delegators[1 - victim].status()["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();
    assert!(
        status.contains(&format!("by node {survivor_peer}")),
        "{status}"
    );
    // Through a node that did not drive it, the same picture, from its driver.
    let relayed = cli_ok(&proposer.api, &["compute", "status", &job]);
    assert!(
        relayed.contains(&format!("driver     node {driver}: ")),
        "{relayed}"
    );
    let proven_nodes = |s: &str| {
        s.lines()
            .filter(|l| l.trim_start().starts_with('#') && l.contains(" proven "))
            .count()
    };
    assert_eq!(proven_nodes(&relayed), proven_nodes(&status), "{relayed}");
    assert_eq!(proven_nodes(&relayed), 5, "2 segments, 3 folds: {relayed}");

    // Anyone checks it on their own machine, through any node.
    let verified = cli_ok(&proposer.api, &["compute", "verify", &job]);
    assert!(verified.contains("verified"), "{verified}");
    let out = tmp.path().join("out.bin");
    cli_ok(
        &delegators[1 - victim].api,
        &["compute", "get", &job, "-o", out.to_str().expect("path")],
    );
    let output = std::fs::read(&out).expect("output");
    assert_eq!(output, xorshift32(seed, iterations).to_le_bytes());
}

/// Failures per prover account, as the driver's view counts them.
fn drive_failures(api: &str, path: &str) -> BTreeMap<String, u64> {
    let Some(view) = get_json(api, path) else {
        return BTreeMap::new();
    };
    view["drive"]["failures"]
        .as_object()
        .map(|counts| {
            counts
                .iter()
                .filter_map(|(prover, n)| Some((prover.clone(), n.as_u64()?)))
                .filter(|(_, n)| *n > 0)
                .collect()
        })
        .unwrap_or_default()
}
