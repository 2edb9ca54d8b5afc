//! Commit latency and finalized blocks per second of the HotStuff-2 engine at 4 to 128
//! validators, in the seeded simulator with 1 ms and 50 ms links and each node's CPU and
//! disk time modeled from what this machine measures in the same run (signing, checking a
//! signature, a vote in a batch, fsync). `cargo bench -p nexus-consensus --bench simulator`.

#[path = "../tests/sim/mod.rs"]
mod sim;

#[path = "support/costs.rs"]
mod costs;

use std::time::Instant;

use sim::{Costs, Scenario, Sim};

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let m = costs::Measured::now();
    let costs = Costs {
        sign_us: m.sign_us.round() as u64,
        verify_us: m.verify_us.round() as u64,
        vote_us: m.vote_in_batch_us.round() as u64,
        persist_us: m.fsync_us.round() as u64,
    };
    println!("modeled costs (measured now): {costs:?}\n");
    println!(
        "| validators | link (one way) | commit p50 (ms) | commit p99 (ms) | finalized \
         blocks/s | blocks | rounds | wall time (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for n in [4usize, 7, 16, 64, 128] {
        for link in [1u64, 50] {
            let mut scenario = Scenario::calm(n, (link, link));
            scenario.costs = costs;
            scenario.progress_after_chaos = if n >= 64 { 12 } else { 40 };
            scenario.end = 600_000;
            scenario.pacemaker.min_block_interval_ms = 0;
            scenario.pacemaker.round_timeout_ms = 2_000 + 8 * link;
            scenario.pacemaker.max_round_timeout_ms = 20_000;
            let started = Instant::now();
            let report = Sim::new(scenario, 42).run();
            let wall = started.elapsed().as_secs_f64();
            assert!(report.violation.is_none(), "{:?}", report.violation);
            let l = &report.latencies_ms;
            let blocks = report.committed_min;
            let per_s = blocks as f64 / (report.end_time.max(1) as f64 / 1000.0);
            println!(
                "| {n} | {link} ms | {} | {} | {per_s:.1} | {blocks} | {} | {wall:.1} |",
                percentile(l, 0.5),
                percentile(l, 0.99),
                report.rounds
            );
        }
    }
}
