//! The season-2 ledger on real node processes: orchestrators, providers, transfers, clear
//! rejections, and every node reaching the proposer's state root for the same blocks.

use std::time::Duration;

use crate::support::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn staking_transfers_and_rejections_through_the_cli_and_identical_state_roots() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = ["n0", "n1", "n2"]
        .iter()
        .map(|n| tmp.path().join(n))
        .collect();
    let n0 = start_proposer(tmp.path(), &dirs, &[]);
    let boot = vec![n0.addr()];
    let n1 = TestNode::start(&dirs[1], false, &boot, &[]);
    let n2 = TestNode::start(&dirs[2], false, &boot, &[]);
    let key = |n: &TestNode| n.status()["account"].as_str().expect("account").to_string();
    let (k0, k1, k2) = (key(&n0), key(&n1), key(&n2));

    let register = [
        "orchestrator",
        "register",
        "--stake",
        "5000",
        "--commission",
        "10",
    ];
    let out = cli_ok(&n1.api, &register);
    assert!(out.contains("included in block"), "{out}");
    cli_ok(
        &n2.api,
        &[
            "provider",
            "join",
            "--orchestrator",
            &k1,
            "--capacity",
            "1GiB",
        ],
    );

    let status = cli_ok(&n0.api, &["orchestrator", "status", &k1]);
    assert!(status.contains("stake:        5000"), "{status}");
    assert!(status.contains(&k2), "{status}");
    assert!(status.contains("10.00 %"), "{status}");
    let provider = cli_ok(&n1.api, &["provider", "status", &k2]);
    assert!(
        provider.contains(&k1) && provider.contains("1.00 GiB"),
        "{provider}"
    );

    let before = get_json(&n0.api, &format!("/v1/accounts/{k2}")).expect("account")["account"]
        ["balance"]
        .as_u64()
        .expect("balance");
    cli_ok(
        &n0.api,
        &["account", "transfer", "--to", &k2, "--amount", "1234"],
    );
    let balance = cli_ok(&n2.api, &["account", "balance"]);
    wait_until("n2 to see the transfer", Duration::from_secs(30), || {
        cli_ok(&n2.api, &["account", "balance"]).contains(&format!("balance:  {}", before + 1234))
    });
    assert!(balance.contains("balance:"), "{balance}");

    // The ledger's refusals reach the user as sentences, and nothing is applied.
    let refused = |node: &TestNode, args: &[&str], words: &str| {
        let out = cli(&node.api, args);
        assert!(
            !out.status.success() && stderr(&out).contains(words),
            "{args:?}: {}",
            stderr(&out)
        );
    };
    let huge = "999999999999999";
    refused(
        &n2,
        &["account", "transfer", "--to", &k0, "--amount", huge],
        "insufficient balance",
    );
    let join = ["provider", "join", "--orchestrator"];
    refused(
        &n0,
        &[&join[..], &[&k0, "--capacity", "1GiB"]].concat(),
        "unknown orchestrator",
    );
    refused(
        &n0,
        &[&join[..], &[&k1, "--capacity", "10TiB"]].concat(),
        "over capacity",
    );
    refused(&n1, &register, "already an orchestrator");

    // Every node recomputes the ledger from the blocks and lands on the proposer's roots.
    for node in [&n1, &n2] {
        wait_until("ledger views to line up", Duration::from_secs(30), || {
            let Some(view) = get_json(&node.api, "/v1/ledger") else {
                return false;
            };
            let height = view["height"].as_u64().expect("height");
            let Some(block) = get_json(&n0.api, &format!("/v1/blocks/{height}")) else {
                return false;
            };
            assert_eq!(
                view["state_root"], block["header"]["state_root"],
                "diverged at {height}"
            );
            height >= 5
        });
    }
    let supply = get_json(&n0.api, "/v1/ledger").expect("ledger")["total_supply"].clone();
    assert_eq!(
        supply,
        serde_json::json!(3_000_000_000_000u64),
        "supply conserved"
    );
}
