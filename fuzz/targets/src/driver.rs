//! A stable, time-boxed mutation fuzzer: it mutates a target's seeds (bit flips, random
//! bytes, insertions, deletions, duplications, splices, truncations) for a fixed time and
//! keeps every input that makes the target panic as a regression case. Deterministic for a
//! given seed, so a run replays. No coverage feedback: libFuzzer (`cargo fuzz`, nightly)
//! goes deeper; this keeps every target exercised on every CI run, on stable.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Target;

/// Longest input the driver builds.
const MAX_INPUT: usize = 64 << 10;

/// What a run did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Inputs tried.
    pub runs: u64,
    /// Inputs that panicked, as written to the regression directory.
    pub crashes: Vec<PathBuf>,
}

/// xorshift64*: small, fast and deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Whether `target` panics on `input` (the panic message is not printed).
fn panics(target: Target, input: &[u8]) -> bool {
    catch_unwind(AssertUnwindSafe(|| target(input))).is_err()
}

/// The files of `dir` on which `target` still panics.
pub fn replay(target: Target, dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| std::fs::read(p).is_ok_and(|input| panics(target, &input)))
        .collect()
}

/// Mutates `seeds` into inputs for `target` for `time`, starting from `seed`; inputs that
/// panic are written to `crash_dir`.
pub fn run(
    target: Target,
    seeds: &[Vec<u8>],
    time: Duration,
    seed: u64,
    crash_dir: &Path,
) -> Outcome {
    let mut rng = Rng(seed | 1);
    let mut outcome = Outcome::default();
    let started = Instant::now();
    while started.elapsed() < time {
        let input = mutate(&mut rng, seeds);
        outcome.runs += 1;
        if panics(target, &input) {
            let name = format!("crash-{seed:x}-{}", outcome.runs);
            let path = crash_dir.join(name);
            if std::fs::create_dir_all(crash_dir)
                .and_then(|()| std::fs::write(&path, &input))
                .is_ok()
            {
                outcome.crashes.push(path);
            }
        }
    }
    outcome
}

/// One input: a seed (or random bytes) with one to eight mutations.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut input = match seeds.len() {
        0 => Vec::new(),
        n => seeds[rng.below(n)].clone(),
    };
    if rng.below(16) == 0 {
        input = (0..rng.below(512)).map(|_| rng.next() as u8).collect();
    }
    for _ in 0..1 + rng.below(8) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = [0, 0xff, 0x7f, 0x80, 1][rng.below(5)];
            }
            2 => {
                let at = rng.below(len + 1);
                let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                input.splice(at..at, extra);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                input.drain(at..end);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(64)).min(len);
                let copy = input[at..end].to_vec();
                let to = rng.below(len + 1);
                input.splice(to..to, copy);
            }
            5 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let at = rng.below(len + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            6 => input.truncate(rng.below(len + 1)),
            _ => {
                // A varint length prefix blown up (postcard's favourite way to allocate).
                let at = rng.below(len + 1);
                input.splice(at..at, [0xff, 0xff, 0xff, 0xff, 0x0f]);
            }
        }
    }
    input.truncate(MAX_INPUT);
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragile(data: &[u8]) {
        assert!(data.len() < 3 || data[..3] != [1, 2, 3], "found it");
    }

    #[test]
    fn a_panicking_input_is_found_kept_and_replayed() {
        let dir = std::env::temp_dir().join(format!("nexus-driver-test-{}", std::process::id()));
        let seeds = [vec![1, 2, 3, 4, 5, 6]];
        let outcome = run(fragile, &seeds, Duration::from_millis(300), 7, &dir);
        assert!(outcome.runs > 0 && !outcome.crashes.is_empty());
        assert_eq!(replay(fragile, &dir).len(), outcome.crashes.len());
        let _ = std::fs::remove_dir_all(&dir);
        // The same seed gives the same inputs.
        let (mut a, mut b) = (Rng(9), Rng(9));
        assert_eq!(mutate(&mut a, &seeds), mutate(&mut b, &seeds));
    }
}
