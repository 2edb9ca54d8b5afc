//! Storage season 2 end to end: a blob stored with the `erasure` policy is spread as k+m
//! shards over distinct providers of one orchestrator, and survives losing any m of them.

use std::sync::Mutex;
use std::time::Duration;

use crate::support::*;

/// These tests run a dozen processes each; one at a time keeps their timing honest on
/// two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// An orchestrator (also the proposer), `providers` providers that joined it, and an
/// uploader; ledger epochs of `epoch_blocks` blocks.
struct Network {
    orchestrator: TestNode,
    providers: Vec<TestNode>,
    uploader: TestNode,
    orchestrator_key: String,
    tmp: tempfile::TempDir,
}

fn network(providers: usize, epoch_blocks: u64, block_ms: &str) -> Network {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut dirs = vec![tmp.path().join("orchestrator"), tmp.path().join("uploader")];
    dirs.extend((0..providers).map(|i| tmp.path().join(format!("p{i}"))));
    let orchestrator = start_proposer_with(
        tmp.path(),
        &dirs,
        params(epoch_blocks),
        &["--block-interval-ms", block_ms],
    );
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
            let path = format!("/v1/accounts/{orchestrator_key}");
            wait_until(
                "the provider's node to see the orchestrator",
                Duration::from_secs(30),
                || get_json(&p.api, &path).is_some_and(|a| !a["orchestrator"].is_null()),
            );
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
    // The uploader judges a put by its ledger: let it see every provider joined.
    let joined = orchestrator.status()["height"].as_u64().expect("height");
    wait_until("the uploader to sync", Duration::from_secs(60), || {
        uploader.status()["height"]
            .as_u64()
            .is_some_and(|h| h >= joined)
    });
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
    proof["inclusion"]["transaction"]["tx"]["kind"]["StoreBlob"]["policy"]["erasure"]["shards"]
        .as_array()
        .expect("erasure shards")
        .iter()
        .map(|s| s.as_str().expect("id").to_string())
        .collect()
}

/// Puts `size` random bytes with the erasure policy through the uploader and waits until
/// every shard is whole on some provider. Returns (blob id, shard ids, bytes).
fn put_erasure_blob(net: &Network, size: usize, seed: u64) -> (String, Vec<String>, Vec<u8>) {
    let data = bytes(size, seed);
    let file = write_file(net.tmp.path(), "input", &data);
    let id = put_with(&net.uploader.api, &file, &["--policy", "erasure"]);
    let shards = shard_ids(&net.uploader.api, &id);
    wait_until(
        "every provider to hold its shard",
        Duration::from_secs(60),
        || shards.iter().all(|s| holder(&net.providers, s).is_some()),
    );
    (id, shards, data)
}

/// Index of the provider holding `shard` whole.
fn holder(providers: &[TestNode], shard: &str) -> Option<usize> {
    providers.iter().position(|p| p.has_complete(shard))
}

#[test]
fn shards_land_on_distinct_providers_and_any_m_can_be_lost() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut net = network(6, 1_000_000, "100");
    let (id, shards, data) = put_erasure_blob(&net, 3 << 20, 11);
    assert_eq!(shards.len(), 6);
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
    let copy = get_bytes(&net.orchestrator.api, &id, net.tmp.path());
    assert!(copy == data, "decoded blob differs");
    assert!(!net.orchestrator_key.is_empty());
}

#[test]
fn a_provider_that_lost_its_shard_is_slashed_evicted_and_its_shard_rebuilt_elsewhere() {
    // Epochs of 20 blocks of 200 ms: every placed shard is challenged every 4 s.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut net = network(7, 20, "200");
    let (id, shards, data) = put_erasure_blob(&net, 1 << 20, 12);
    // Only providers keep shards from now on, so a lost shard can only be rebuilt.
    net.uploader.kill9();
    let culprit = holder(&net.providers, &shards[0]).expect("held");
    let culprit_key = net.providers[culprit].status()["account"]
        .as_str()
        .expect("key")
        .to_string();
    net.providers[culprit].restart_with(&["--fault", "drop-shards"]);

    let orch = |field: &str| {
        get_json(
            &net.orchestrator.api,
            &format!("/v1/accounts/{}", net.orchestrator_key),
        )
        .map(|a| a["orchestrator"][field].clone())
    };
    wait_until(
        "the orchestrator to be slashed",
        Duration::from_secs(90),
        || {
            orch("slashed")
                .and_then(|v| v.as_u64())
                .is_some_and(|s| s > 0)
        },
    );
    let events: Vec<String> = net
        .orchestrator
        .log()
        .lines()
        .filter(|l| l.contains("ledger:") && !l.contains("ChallengeIssued"))
        .map(str::to_string)
        .chain(net.providers.iter().flat_map(|p| {
            p.log()
                .lines()
                .filter(|l| l.contains("challenge") || l.contains("WARN"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        }))
        .collect();
    assert_eq!(
        orch("stake").and_then(|v| v.as_u64()),
        Some(9_000),
        "10 % of 10 000 slashed:\n{}",
        events.join("\n")
    );
    let culprit_view = get_json(
        &net.orchestrator.api,
        &format!("/v1/accounts/{culprit_key}"),
    )
    .expect("account");
    assert!(
        culprit_view["provider"].is_null(),
        "the culprit is evicted: {culprit_view}"
    );
    let out = cli(&net.orchestrator.api, &["provider", "status", &culprit_key]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a provider"));

    wait_until(
        "shard 0 to be rebuilt on another provider",
        Duration::from_secs(90),
        || {
            net.providers
                .iter()
                .enumerate()
                .any(|(i, p)| i != culprit && p.has_complete(&shards[0]))
        },
    );
    assert!(
        net.orchestrator.log().contains("shard rebuilt"),
        "{}",
        net.orchestrator.log()
    );
    let copy = get_bytes(&net.orchestrator.api, &id, net.tmp.path());
    assert!(copy == data, "blob differs after repair");
    // Honest providers answered their challenges and keep their place.
    let failed = orch("challenges_failed")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let passed = orch("challenges_passed")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    assert_eq!(failed, 1, "only the culprit failed");
    assert!(passed >= 5, "honest providers answered ({passed})");
}
