//! HotStuff-2 finality with real processes: four `nexus` validators on loopback keep
//! finalizing with one of them SIGKILLed (the leader included), the killed one catches up
//! and votes again without ever signing conflicting messages, two killed stop finality
//! without a fork, and finality resumes when they return. A leader that withholds its
//! block's data never gets that block finalized, and light clients never call it
//! available.

use std::time::{Duration, Instant};

use crate::support::*;

/// Validators of the test network.
const VALIDATORS: usize = 4;

/// Block interval and round timeout: fast, but well above a loopback round trip.
const TIMING: [&str; 4] = ["--block-interval-ms", "100", "--round-timeout-ms", "600"];

struct Committee {
    nodes: Vec<TestNode>,
    tmp: tempfile::TempDir,
}

impl Committee {
    /// Four validators of one genesis, each bootstrapping from those started before it.
    fn start(extra: &[&[&str]]) -> Committee {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dirs: Vec<_> = (0..VALIDATORS)
            .map(|i| tmp.path().join(format!("v{i}")))
            .collect();
        let genesis = chain_genesis(
            tmp.path(),
            &dirs,
            VALIDATORS,
            params(1_000),
            serde_json::json!({}),
        );
        let mut nodes: Vec<TestNode> = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            let boot: Vec<String> = nodes.iter().map(TestNode::addr).collect();
            let mut args = vec!["--genesis-config", genesis.as_str()];
            args.extend_from_slice(&TIMING);
            if let Some(more) = extra.get(i) {
                args.extend_from_slice(more);
            }
            nodes.push(TestNode::start(dir, true, &boot, &args));
        }
        Committee { nodes, tmp }
    }

    fn height(&self, i: usize) -> u64 {
        self.nodes[i].status()["height"].as_u64().unwrap_or(0)
    }

    /// Waits until every node in `live` has finalized at least `target`.
    fn wait_finalized(&self, live: &[usize], target: u64, limit: Duration) {
        wait_until(
            &format!("validators {live:?} to finalize height {target}"),
            limit,
            || live.iter().all(|&i| self.height(i) >= target),
        );
    }

    /// Addresses of every validator but `i`, as `--bootstrap` arguments.
    fn bootstrap_for(&self, i: usize) -> Vec<String> {
        let mut args = Vec::new();
        for (j, n) in self.nodes.iter().enumerate() {
            if j != i {
                args.push("--bootstrap".to_string());
                args.push(n.addr_offline());
            }
        }
        args
    }

    /// Restarts validator `i` (same data dir, same ports) knowing every other validator.
    fn restart(&mut self, i: usize) {
        let boot = self.bootstrap_for(i);
        let boot: Vec<&str> = boot.iter().map(String::as_str).collect();
        self.nodes[i].restart_with(&boot);
    }

    fn validator_view(&self, i: usize) -> serde_json::Value {
        get_json(&self.nodes[i].api, "/v1/validator").expect("validator view")
    }

    /// Every pair of nodes in `which` holds the same block at every height both have.
    fn assert_one_chain(&self, which: &[usize]) {
        let top = which.iter().map(|&i| self.height(i)).min().unwrap_or(0);
        for h in 1..=top {
            let hashes: Vec<String> = which
                .iter()
                .map(|&i| {
                    let block =
                        get_json(&self.nodes[i].api, &format!("/v1/blocks/{h}")).expect("block");
                    serde_json::to_string(&block["header"]).expect("header")
                })
                .collect();
            assert!(
                hashes.windows(2).all(|w| w[0] == w[1]),
                "validators disagree at height {h}"
            );
        }
    }

    /// No validator saw another sign conflicting messages.
    fn assert_no_equivocation(&self) {
        for i in 0..VALIDATORS {
            let view = self.validator_view(i);
            assert_eq!(
                view["engine"]["counters"]["evidence"], 0,
                "validator {i} saw conflicting messages: {view}"
            );
        }
    }

    /// The index of the validator leading the current round, as node 0 sees it.
    fn leader(&self) -> usize {
        let leader = self.validator_view(0)["engine"]["leader"]
            .as_str()
            .expect("leader")
            .to_string();
        (0..VALIDATORS)
            .find(|&i| keys_of(&self.nodes[i].dir)["validator"] == leader.as_str())
            .expect("the leader is a validator")
    }
}

#[test]
fn four_validators_survive_one_kill_halt_without_forking_at_two_and_resume() {
    let mut net = Committee::start(&[]);
    let all: Vec<usize> = (0..VALIDATORS).collect();
    net.wait_finalized(&all, 5, Duration::from_secs(60));

    // SIGKILL the leader of the moment: the other three keep finalizing.
    let victim = net.leader();
    let live: Vec<usize> = all.iter().copied().filter(|&i| i != victim).collect();
    net.nodes[victim].kill9();
    let at_kill = live.iter().map(|&i| net.height(i)).max().unwrap_or(0);
    net.wait_finalized(&live, at_kill + 10, Duration::from_secs(60));

    // It comes back, catches up from its peers, and votes again.
    let votes_before = net.validator_view(live[0])["engine"]["counters"]["votes"]
        .as_u64()
        .unwrap_or(0);
    net.restart(victim);
    let target = net.height(live[0]) + 3;
    net.wait_finalized(&all, target, Duration::from_secs(60));
    wait_until(
        "the restarted validator to vote",
        Duration::from_secs(30),
        || {
            net.validator_view(victim)["engine"]["counters"]["votes"]
                .as_u64()
                .is_some_and(|v| v > 0)
        },
    );
    assert!(
        net.validator_view(live[0])["engine"]["counters"]["votes"]
            .as_u64()
            .unwrap_or(0)
            > votes_before
    );
    net.assert_one_chain(&all);

    // Two killed: a third of the stake is gone and nothing finalizes (no fork either).
    let (a, b) = (victim, live[0]);
    net.nodes[a].kill9();
    net.nodes[b].kill9();
    let survivors: Vec<usize> = all.iter().copied().filter(|&i| i != a && i != b).collect();
    // Let blocks that were already certified settle, then watch the height stand still.
    std::thread::sleep(Duration::from_secs(2));
    let stalled: Vec<u64> = survivors.iter().map(|&i| net.height(i)).collect();
    std::thread::sleep(Duration::from_secs(4));
    let after: Vec<u64> = survivors.iter().map(|&i| net.height(i)).collect();
    assert_eq!(
        stalled, after,
        "blocks finalized with half the committee down"
    );
    net.assert_one_chain(&survivors);

    // Both back: finality resumes, on one chain, with no conflicting signature anywhere.
    net.restart(a);
    net.restart(b);
    let resumed = Instant::now();
    let target = after.iter().max().copied().unwrap_or(0) + 5;
    net.wait_finalized(&all, target, Duration::from_secs(90));
    eprintln!(
        "finality resumed {:?} after the restarts",
        resumed.elapsed()
    );
    net.assert_one_chain(&all);
    net.assert_no_equivocation();
    drop(net.tmp);
}

#[test]
fn a_block_whose_leader_withholds_its_data_never_finalizes() {
    // Validator 0 keeps its own transactions to itself and never serves the cells of the
    // blocks it proposes; uploads through it wait for finality 15 s at most.
    let net = Committee::start(&[&[
        "--fault",
        "withhold-proposals",
        "--finality-deadline-secs",
        "15",
    ]]);
    let all: Vec<usize> = (0..VALIDATORS).collect();
    net.wait_finalized(&all, 3, Duration::from_secs(60));
    let light = LightClient::start(
        net.tmp.path().join("light.out"),
        &[net.nodes[1].addr(), net.nodes[2].addr()],
    );
    wait_until(
        "the light client to follow the chain",
        Duration::from_secs(60),
        || !light.reports().is_empty(),
    );
    // A das blob put through validator 0 rides only in its own proposals, whose data no
    // one else can sample: no vote, no QC, never final, and the upload says so.
    let data = bytes(50_000, 5);
    let file = write_file(net.tmp.path(), "das", &data);
    let out = cli(&net.nodes[0].api, &["put", &file, "--policy", "das"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "a withheld blob got a receipt");
    assert!(stderr.contains("not final within"), "{stderr}");
    // Its registration may still land: the upload stays staged (not served) for its lease.
    assert_eq!(
        net.nodes[0].status()["staged_bytes"].as_u64(),
        Some(data.len() as u64)
    );
    assert!(
        net.nodes[0].log().contains("fault withhold-proposals"),
        "validator 0 never proposed the blob"
    );
    // Meanwhile the chain went on without it, and its light client judged every final
    // block available.
    let withholder = keys_of(&net.nodes[0].dir)["validator"]
        .as_str()
        .expect("key")
        .to_string();
    for h in 1..=net.height(1) {
        let block = get_json(&net.nodes[1].api, &format!("/v1/blocks/{h}")).expect("block");
        let header = &block["header"];
        assert!(
            header["data"]["params"]["data_len"].as_u64().unwrap_or(0) == 0
                || header["proposer"].as_str() != Some(withholder.as_str()),
            "height {h}: a block with withheld data became final"
        );
    }
    // The same blob put through an honest validator is final, sampled and available.
    let out = cli_ok(
        &net.nodes[1].api,
        &["put", &file, "--policy", "das", "--json"],
    );
    let receipt: serde_json::Value = serde_json::from_str(&out).expect("receipt");
    let height = receipt["height"].as_u64().expect("height");
    // Registered by validator 1's transaction (validator 0's never becomes final), whoever
    // proposed the block: the data is served now, by validator 1.
    let id = receipt["blob_id"].as_str().expect("id");
    let proof = get_json(&net.nodes[1].api, &format!("/v1/blobs/{id}/proof")).expect("proof");
    assert_eq!(
        proof["inclusion"]["transaction"]["tx"]["sender"],
        keys_of(&net.nodes[1].dir)["account"]
    );
    wait_until(
        "the light client to judge the block",
        Duration::from_secs(60),
        || light.reports().contains_key(&height),
    );
    let reports = light.reports();
    assert!(
        reports[&height].starts_with("available, confidence"),
        "{}",
        reports[&height]
    );
    assert!(
        !reports.values().any(|r| r.contains("UNAVAILABLE")),
        "{reports:?}"
    );
}

/// A validator that dies between consensus committing blocks and its store appending them
/// (as on a full disk: exit status 75) resumes — alone, where no peer holds those blocks,
/// as in a committee — three times over.
#[test]
fn a_validator_dying_between_a_commit_and_its_append_resumes_alone_and_in_a_committee() {
    const FAULT: [&str; 2] = ["--fault", "exit-before-append"];
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut solo = start_proposer(tmp.path(), &[tmp.path().join("solo")], &FAULT);
    for round in 0..3 {
        let status = solo
            .wait_exit(Duration::from_secs(60))
            .expect("the fault's exit");
        assert_eq!(status.code(), Some(75), "round {round}: {}", solo.log());
        solo.restart_without(&["--fault"]);
        let resumed = solo.status()["height"].as_u64().unwrap_or(0);
        wait_until(
            &format!("round {round}: the lone validator to finalize again"),
            Duration::from_secs(30),
            || {
                solo.status()["height"]
                    .as_u64()
                    .is_some_and(|h| h >= resumed + 3)
            },
        );
        solo.restart_with(&FAULT);
    }
    solo.kill9();

    let mut committee = Committee::start(&[&[], &[], &[], &FAULT]);
    for round in 0..3 {
        let status = committee.nodes[3]
            .wait_exit(Duration::from_secs(60))
            .expect("the fault's exit");
        assert_eq!(status.code(), Some(75), "round {round}");
        let others = committee.height(0);
        committee.wait_finalized(&[0, 1, 2], others + 3, Duration::from_secs(30));
        committee.nodes[3].restart_without(&["--fault"]);
        let target = committee.height(0) + 3;
        committee.wait_finalized(&[0, 1, 2, 3], target, Duration::from_secs(60));
        committee.nodes[3].restart_with(&FAULT);
    }
}
