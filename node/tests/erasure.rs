//! Storage season 2 end to end: a blob stored with the `erasure` policy is spread as k+m
//! shards over distinct providers of one orchestrator, and survives losing any m of them.

mod support;

use std::time::Duration;

use support::*;

/// An orchestrator (also the proposer), `providers` providers that joined it, and an
/// uploader; ledger epochs of `epoch_blocks` blocks.
struct Network {
    orchestrator: TestNode,
    providers: Vec<TestNode>,
    uploader: TestNode,
    orchestrator_key: String,
    tmp: tempfile::TempDir,
}

fn network(providers: usize, epoch_blocks: u64) -> Network {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut dirs = vec![tmp.path().join("orchestrator"), tmp.path().join("uploader")];
    dirs.extend((0..providers).map(|i| tmp.path().join(format!("p{i}"))));
    let orchestrator = start_proposer_with(tmp.path(), &dirs, params(epoch_blocks), &[]);
    let boot = vec![orchestrator.addr()];
    let orchestrator_key = orchestrator.status()["account"]
        .as_str()
        .expect("key")
        .to_string();
    cli_ok(
        &orchestrator.api,
        &[
            "orchestrator",
            "register",
            "--stake",
            "10000",
            "--commission",
            "10",
        ],
    );
    let providers: Vec<TestNode> = dirs[2..]
        .iter()
        .map(|d| {
            let p = TestNode::start(d, false, &boot, &[]);
            cli_ok(
                &p.api,
                &[
                    "provider",
                    "join",
                    "--orchestrator",
                    &orchestrator_key,
                    "--capacity",
                    "1GiB",
                ],
            );
            p
        })
        .collect();
    let uploader = TestNode::start(&dirs[1], false, &boot, &[]);
    Network {
        orchestrator,
        providers,
        uploader,
        orchestrator_key,
        tmp,
    }
}

/// The shard ids of an erasure blob, from its inclusion proof.
fn shard_ids(api: &str, blob: &str) -> Vec<String> {
    let proof = get_json(api, &format!("/v1/blobs/{blob}/proof")).expect("proof");
    proof["transaction"]["tx"]["kind"]["StoreBlob"]["policy"]["erasure"]["shards"]
        .as_array()
        .expect("erasure shards")
        .iter()
        .map(|s| s.as_str().expect("id").to_string())
        .collect()
}

/// Index of the provider holding `shard` whole.
fn holder(providers: &[TestNode], shard: &str) -> Option<usize> {
    providers.iter().position(|p| p.has_complete(shard))
}

#[test]
fn shards_land_on_distinct_providers_and_any_m_can_be_lost() {
    let mut net = network(6, 1_000_000);
    let data = bytes(3 << 20, 11);
    let file = write_file(net.tmp.path(), "input", &data);
    let id = put_with(&net.uploader.api, &file, &["--policy", "erasure"]);
    let shards = shard_ids(&net.uploader.api, &id);
    assert_eq!(shards.len(), 6);
    wait_until(
        "every provider to hold its shard",
        Duration::from_secs(60),
        || shards.iter().all(|s| holder(&net.providers, s).is_some()),
    );
    let mut holders: Vec<usize> = shards
        .iter()
        .filter_map(|s| holder(&net.providers, s))
        .collect();
    holders.sort();
    holders.dedup();
    assert_eq!(holders.len(), 6, "two shards on one provider");
    let status = cli_ok(&net.orchestrator.api, &["orchestrator", "status"]);
    assert!(status.contains("providers:    6"), "{status}");

    // Only providers keep the shards now; the worst case loses two data shards.
    net.uploader.kill9();
    for shard in &shards[..2] {
        let i = holder(&net.providers, shard).expect("held");
        net.providers[i].kill9();
    }
    let copy = net.tmp.path().join("copy");
    cli_ok(
        &net.orchestrator.api,
        &["get", &id, "-o", copy.to_str().expect("utf8")],
    );
    assert!(
        std::fs::read(&copy).expect("copy") == data,
        "decoded blob differs"
    );
    assert!(!net.orchestrator_key.is_empty());
}
