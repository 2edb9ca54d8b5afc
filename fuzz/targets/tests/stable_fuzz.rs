//! Every fuzz target, in `cargo test`: the regression cases in `fuzz/regressions/TARGET`
//! must pass, then the driver mutates the target's seeds for `NEXUS_FUZZ_SECONDS` (default
//! 5) from `NEXUS_FUZZ_SEED` (default: the clock, printed so that a run replays). A
//! panicking input is saved there as a new regression case and fails the test.

use std::path::PathBuf;
use std::time::Duration;

use nexus_fuzz_targets::{driver, seeds, TARGETS};

fn regressions(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../regressions")
        .join(name)
}

fn fuzz(name: &str) {
    let target = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("a target of that name");
    let dir = regressions(name);
    let still = driver::replay(target, &dir);
    assert!(
        still.is_empty(),
        "{name}: regression cases panic again: {still:?}"
    );
    let seconds: u64 = std::env::var("NEXUS_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let seed: u64 = std::env::var("NEXUS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let seeds = seeds::for_target(name);
    assert!(!seeds.is_empty(), "{name} has no seeds");
    for s in &seeds {
        target(s);
    }
    let outcome = driver::run(target, &seeds, Duration::from_secs(seconds), seed, &dir);
    eprintln!(
        "{name}: {} inputs in {seconds} s (NEXUS_FUZZ_SEED={seed})",
        outcome.runs
    );
    assert!(
        outcome.crashes.is_empty(),
        "{name} panicked (NEXUS_FUZZ_SEED={seed}); inputs kept as regression cases: {:?}",
        outcome.crashes
    );
}

#[test]
fn wire_messages() {
    fuzz("wire_messages");
}

#[test]
fn transaction() {
    fuzz("transaction");
}

#[test]
fn block() {
    fuzz("block");
}

#[test]
fn consensus() {
    fuzz("consensus");
}

#[test]
fn das_sample() {
    fuzz("das_sample");
}

#[test]
fn api_json() {
    fuzz("api_json");
}

#[test]
fn genesis_config() {
    fuzz("genesis_config");
}

#[test]
fn program_elf() {
    fuzz("program_elf");
}
