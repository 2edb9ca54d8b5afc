//! A network partition with real processes: six `nexus` nodes (four validators, two
//! storage nodes), each in a network namespace of its own, joined by a bridge. The
//! network is split 2/3 against 1/3 by moving the minority's links to a second bridge;
//! the majority keeps finalizing and acknowledging puts, the minority finalizes nothing
//! and acknowledges nothing; once healed the minority catches up, holds every blob
//! acknowledged meanwhile, and its validator votes again.
//!
//! No root is needed: the test re-runs itself under `unshare --user --map-root-user
//! --net`, where it may create namespaces, bridges and veth pairs (`ip`, `nsenter`).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// Set in the copy of this test that runs inside the namespace.
const INSIDE: &str = "NEXUS_TEST_IN_NETNS";

/// Nodes 0..4 are validators (stake 1 each), 4 and 5 storage nodes.
const NODES: usize = 6;
const VALIDATORS: usize = 4;
/// The third cut off: one validator (a quarter of the stake) and one storage node.
const MINORITY: [usize; 2] = [3, 5];
const MAJORITY: [usize; 4] = [0, 1, 2, 4];

const TIMING: [&str; 4] = ["--block-interval-ms", "100", "--round-timeout-ms", "600"];

#[test]
fn a_split_two_thirds_finalize_the_third_stalls_then_catches_up_when_healed() {
    if std::env::var_os(INSIDE).is_none() {
        run_inside_namespace(
            "a_split_two_thirds_finalize_the_third_stalls_then_catches_up_when_healed",
        );
        return;
    }
    let lab = Lab::new(NODES);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = (0..NODES)
        .map(|i| tmp.path().join(format!("n{i}")))
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
        if i == 5 {
            args.extend_from_slice(&["--finality-deadline-secs", "5"]);
        }
        nodes.push(TestNode::start_in_netns(
            dir,
            lab.holder(i),
            &Lab::peer_ip(i),
            &Lab::api_ip(i),
            i < VALIDATORS,
            &boot,
            &args,
        ));
    }
    let height = |i: usize| nodes[i].status()["height"].as_u64().unwrap_or(0);
    let wait_height = |which: &[usize], target: u64, what: &str| {
        wait_until(what, Duration::from_secs(90), || {
            which.iter().all(|&i| height(i) >= target)
        })
    };
    let all: Vec<usize> = (0..NODES).collect();
    wait_height(&all, 3, "every node to finalize height 3");

    // Acknowledged before the split: everyone keeps it.
    let before = bytes(300_000, 1);
    let before_file = write_file(tmp.path(), "before", &before);
    let before_id = put(&nodes[4].api, &before_file);
    wait_until(
        "every node to store the first blob",
        Duration::from_secs(60),
        || all.iter().all(|&i| nodes[i].has_complete(&before_id)),
    );

    // Split. Let what was in flight settle, then watch the minority stand still while the
    // majority goes on.
    lab.move_to(&MINORITY, Lab::SPLIT_BRIDGE);
    std::thread::sleep(Duration::from_secs(2));
    let stalled: Vec<u64> = MINORITY.iter().map(|&i| height(i)).collect();
    let majority_at_split = MAJORITY.iter().map(|&i| height(i)).max().unwrap_or(0);
    wait_height(
        &MAJORITY,
        majority_at_split + 20,
        "the majority to finalize 20 blocks while split",
    );
    let during = bytes(400_000, 2);
    let during_file = write_file(tmp.path(), "during", &during);
    let during_id = put(&nodes[0].api, &during_file);
    wait_until(
        "the majority's storage node to store the blob",
        Duration::from_secs(60),
        || nodes[4].has_complete(&during_id),
    );
    // The cut-off storage node acknowledges nothing: its upload is not final in time.
    let cut_off_file = write_file(tmp.path(), "cut-off", &bytes(10_000, 3));
    let refused = cli(&nodes[5].api, &["put", &cut_off_file]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("not final"),
        "a put on the cut-off side was acknowledged: {stderr}"
    );
    let still: Vec<u64> = MINORITY.iter().map(|&i| height(i)).collect();
    assert_eq!(
        stalled, still,
        "the cut-off quarter of the stake finalized blocks"
    );
    assert!(!nodes[5].has_complete(&during_id));

    // Heal: the minority catches up and holds what was acknowledged meanwhile.
    lab.move_to(&MINORITY, Lab::BRIDGE);
    let healed = Instant::now();
    let majority_at_heal = MAJORITY.iter().map(|&i| height(i)).max().unwrap_or(0);
    wait_height(
        &all,
        majority_at_heal,
        "the minority to catch up after the heal",
    );
    eprintln!(
        "the minority caught up {:?} after the heal",
        healed.elapsed()
    );
    wait_until(
        "the cut-off nodes to fetch the blob put meanwhile",
        Duration::from_secs(60),
        || MINORITY.iter().all(|&i| nodes[i].has_complete(&during_id)),
    );
    eprintln!("and held the blob {:?} after the heal", healed.elapsed());
    assert_eq!(get_bytes(&nodes[5].api, &during_id, tmp.path()), during);
    assert_eq!(get_bytes(&nodes[3].api, &before_id, tmp.path()), before);

    // The cut-off validator votes again: with another validator SIGKILLed, finality now
    // needs it (a validator that dropped messages from rounds far ahead never did).
    let mut nodes = nodes;
    nodes[1].kill9();
    let live = [0usize, 2, 3, 4, 5];
    let height = |i: usize| nodes[i].status()["height"].as_u64().unwrap_or(0);
    let top = live.iter().map(|&i| height(i)).max().unwrap_or(0);
    let killed = Instant::now();
    while !live.iter().all(|&i| height(i) >= top + 10) {
        if killed.elapsed() > Duration::from_secs(90) {
            let views: Vec<String> = [0, 2, 3]
                .iter()
                .map(|&i| {
                    get_json(&nodes[i].api, "/v1/validator").unwrap_or_default()["engine"]
                        .to_string()
                })
                .collect();
            panic!(
                "no finality from height {top} with the healed validator and one other \
                 killed; engines of 0, 2, 3:\n{}",
                views.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "10 blocks final with validator 1 killed in {:?}",
        killed.elapsed()
    );
    assert_one_chain(&nodes, &live);
}

/// Every pair of nodes in `which` holds the same block header at every height all have.
fn assert_one_chain(nodes: &[TestNode], which: &[usize]) {
    let top = which
        .iter()
        .map(|&i| nodes[i].status()["height"].as_u64().unwrap_or(0))
        .min()
        .unwrap_or(0);
    for h in 1..=top {
        let headers: Vec<String> = which
            .iter()
            .map(|&i| {
                let block = get_json(&nodes[i].api, &format!("/v1/blocks/{h}")).expect("block");
                block["header"].to_string()
            })
            .collect();
        assert!(
            headers.windows(2).all(|w| w[0] == w[1]),
            "nodes disagree at height {h}"
        );
    }
}

/// Runs test `name` of this binary again, inside a new user and network namespace, and
/// fails if it fails there.
fn run_inside_namespace(name: &str) {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--"])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .output()
        .expect("run unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown by `--nocapture` (and with a failure).
    eprintln!("{stderr}");
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the test failed inside its namespace:\n{stdout}\n{stderr}"
    );
}

/// The namespaces and links of the test: a management bridge over which the test reaches
/// every node's API, a data bridge carrying peer traffic, and a second data bridge that
/// holds the links of nodes split off.
struct Lab {
    /// One process per node holding its network namespace.
    holders: Vec<Child>,
}

impl Lab {
    const BRIDGE: &'static str = "data0";
    const SPLIT_BRIDGE: &'static str = "data1";
    const MANAGEMENT: &'static str = "mgmt0";

    /// Sets up `nodes` namespaces, each linked to the data bridge and the management bridge.
    fn new(nodes: usize) -> Lab {
        ip(&["link", "set", "lo", "up"]);
        for bridge in [Self::BRIDGE, Self::SPLIT_BRIDGE, Self::MANAGEMENT] {
            ip(&["link", "add", bridge, "type", "bridge"]);
            ip(&["link", "set", bridge, "up"]);
        }
        ip(&["addr", "add", "192.168.77.254/24", "dev", Self::MANAGEMENT]);
        let mut lab = Lab {
            holders: Vec::new(),
        };
        let own = std::fs::read_link("/proc/self/ns/net").expect("own netns");
        for i in 0..nodes {
            let holder = Command::new("unshare")
                .args(["--net", "sleep", "900"])
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn a namespace holder");
            let pid = holder.id();
            lab.holders.push(holder);
            wait_until("a namespace holder", Duration::from_secs(10), || {
                std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|ns| ns != own)
            });
            let pid = pid.to_string();
            let (data, mgmt) = (format!("d{i}"), format!("m{i}"));
            ip(&[
                "link", "add", &data, "type", "veth", "peer", "name", "eth0", "netns", &pid,
            ]);
            ip(&[
                "link", "add", &mgmt, "type", "veth", "peer", "name", "eth1", "netns", &pid,
            ]);
            ip(&["link", "set", &data, "master", Self::BRIDGE, "up"]);
            ip(&["link", "set", &mgmt, "master", Self::MANAGEMENT, "up"]);
            let inside = |args: &[&str]| {
                let mut all = vec!["-t", pid.as_str(), "--net", ip_command()];
                all.extend_from_slice(args);
                run("nsenter", &all);
            };
            inside(&["link", "set", "lo", "up"]);
            inside(&[
                "addr",
                "add",
                &format!("{}/24", Self::peer_ip(i)),
                "dev",
                "eth0",
            ]);
            inside(&[
                "addr",
                "add",
                &format!("{}/24", Self::api_ip(i)),
                "dev",
                "eth1",
            ]);
            inside(&["link", "set", "eth0", "up"]);
            inside(&["link", "set", "eth1", "up"]);
        }
        lab
    }

    /// The pid whose network namespace node `i` runs in.
    fn holder(&self, i: usize) -> u32 {
        self.holders[i].id()
    }

    /// Node `i`'s address for peer traffic.
    fn peer_ip(i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }

    /// Node `i`'s address for its HTTP API.
    fn api_ip(i: usize) -> String {
        format!("192.168.77.{}", i + 1)
    }

    /// Moves the data links of `nodes` onto `bridge`: they reach only nodes on it.
    fn move_to(&self, nodes: &[usize], bridge: &str) {
        for i in nodes {
            ip(&["link", "set", &format!("d{i}"), "master", bridge]);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for holder in &mut self.holders {
            let _ = holder.kill();
            let _ = holder.wait();
        }
    }
}

/// `ip` from iproute2 (often outside an unprivileged user's PATH).
fn ip_command() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("ip")
}

fn ip(args: &[&str]) {
    run(ip_command(), args);
}

/// Runs a set-up command, failing the test with its error output if it fails.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
