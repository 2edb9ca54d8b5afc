//! Thousands of seeded schedules of the HotStuff-2 engine with delays, drops, partitions,
//! crashes and restarts, and up to f byzantine validators: no two honest validators ever
//! commit different blocks at one height, withheld data never commits, and once the
//! network heals every honest validator keeps committing.
//!
//! A failing run prints its seed; `NEXUS_SIM_SEED=<seed> cargo test -p nexus-consensus
//! --test simulator` replays exactly that run.

mod sim;

use sim::{Behaviour, Report, Scenario, Sim};

/// The scenario a seed runs: committee size and faults are drawn from the seed.
fn scenario_for(seed: u64) -> Scenario {
    let n = if seed % 2 == 0 { 4 } else { 7 };
    let f = (n - 1) / 3;
    let mut s = Scenario::new(n);
    // Every 10th run checks every distinct message with real BLS verification.
    s.verify = seed % 10 == 3;
    // Slow and uneven links make certificates and timeouts of one round race each other.
    let (delay, partitions) = match (seed / 12) % 3 {
        0 => ((1, 10), 0.004),
        1 => ((1, 60), 0.02),
        _ => ((5, 150), 0.05),
    };
    s.delay = delay;
    s.partition_rate = partitions;
    s.chaos_until = 1_000;
    s.end = 12_000;
    let byzantine = |k: usize| (0..k).map(|i| n - 1 - i).collect::<Vec<_>>();
    s.faults = match (seed / 2) % 6 {
        0 => Vec::new(),
        1 => byzantine(f)
            .into_iter()
            .map(|i| (i, Behaviour::Equivocate))
            .collect(),
        2 => byzantine(f)
            .into_iter()
            .map(|i| (i, Behaviour::Silent))
            .collect(),
        3 => {
            // Twins: one key, two honest-looking instances on both sides of a partition
            // (plus, with n = 7, an equivocator).
            let mut faults = vec![(0, Behaviour::Twin)];
            if f > 1 {
                faults.push((n - 1, Behaviour::Equivocate));
            }
            faults
        }
        4 => byzantine(f)
            .into_iter()
            .map(|i| (i, Behaviour::WithholdData))
            .collect(),
        _ => {
            // Unequal stakes: one validator holds almost a third, faults elsewhere.
            s.stakes = vec![(0, (n as u64 - 1) / 2)];
            vec![(n - 1, Behaviour::Silent)]
        }
    };
    s
}

fn check(seed: u64, report: &Report) -> Result<(), String> {
    if let Some(v) = &report.violation {
        return Err(format!("seed {seed}: SAFETY: {v}"));
    }
    if let Some(s) = &report.stalled {
        return Err(format!("seed {seed}: LIVENESS: {s}"));
    }
    Ok(())
}

fn run(seed: u64) -> Result<Report, String> {
    let report = Sim::new(scenario_for(seed), seed).run();
    check(seed, &report).map(|()| report)
}

#[test]
fn seeded_schedules_never_fork_and_recover_after_healing() {
    if let Ok(seed) = std::env::var("NEXUS_SIM_SEED") {
        let seed: u64 = seed.parse().expect("NEXUS_SIM_SEED is a number");
        println!("scenario: {:?}", scenario_for(seed));
        match run(seed) {
            Ok(report) => println!("{report:?}"),
            Err(e) => panic!("{e}"),
        }
        return;
    }
    let runs: u64 = std::env::var("NEXUS_SIM_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1000);
    let threads = 2u64;
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    let (mut commits, mut evidence) = (0, 0);
                    for seed in (t..runs).step_by(threads as usize) {
                        match run(seed) {
                            Ok(r) => {
                                commits += r.commits;
                                evidence += r.evidence;
                            }
                            Err(e) => failures.push(e),
                        }
                    }
                    (failures, commits, evidence)
                })
            })
            .collect();
        let mut all = Vec::new();
        let (mut commits, mut evidence) = (0, 0);
        for h in handles {
            let (f, c, e) = h.join().expect("simulation thread");
            all.extend(f);
            commits += c;
            evidence += e;
        }
        println!("{runs} runs: {commits} commits, {evidence} pieces of evidence");
        assert!(commits > runs * 4, "runs committed almost nothing");
        assert!(evidence > 0, "byzantine runs left no evidence");
        all
    });
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed (replay one with NEXUS_SIM_SEED=<seed>):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A validator cut off for hundreds of rounds (the others finalize without it) follows
/// the certificates it receives once healed and commits again; before, it dropped every
/// message more than a window of rounds ahead of it and never caught up.
#[test]
fn a_validator_cut_off_for_hundreds_of_rounds_catches_up_once_healed() {
    for seed in 0..8 {
        let mut s = Scenario::new(4);
        s.isolated = Some((seed % 4) as usize);
        s.chaos_until = 12_000;
        s.drop_rate = 0.0;
        s.crash_rate = 0.0;
        s.partition_rate = 0.0;
        s.end = 30_000;
        let report = Sim::new(s, seed).run();
        if let Err(e) = check(seed, &report) {
            panic!("{e}");
        }
        assert!(
            report.rounds > 150,
            "seed {seed}: the others ran only {} rounds while it was cut off",
            report.rounds
        );
    }
}
