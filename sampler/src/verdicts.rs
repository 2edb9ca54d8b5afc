//! A validator's book of sampling verdicts, by grid (its data root): whether a grid is
//! known available, being sampled, or found unavailable a moment ago — and so whether a
//! caller must start a sampling, wait for the one under way, or has its answer. Sans-io:
//! the caller samples, and passes the time in.
//!
//! A validator proposes or votes for a block carrying a grid only once the grid is known
//! available; a verdict of "available" is trusted for [`VerdictPolicy::trusted_for`], an
//! "unavailable" is not retried before [`VerdictPolicy::retry_after`], and samplings ahead
//! of need (of registrations still waiting in the pool) are bounded so that a flood of
//! registrations is not a flood of cell requests, while a block to vote on is always
//! sampled.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nexus_das::DataRoot;

/// How long verdicts hold and how many samplings run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerdictPolicy {
    /// How long a grid found unavailable is not sampled again.
    pub retry_after: Duration,
    /// How long a grid found available is trusted to stay so.
    pub trusted_for: Duration,
    /// Grids remembered (the oldest finished verdicts are forgotten first).
    pub remembered: usize,
    /// Samplings for [`Purpose::Ahead`] under way at once.
    pub max_ahead: usize,
}

impl Default for VerdictPolicy {
    fn default() -> Self {
        VerdictPolicy {
            retry_after: Duration::from_secs(5),
            trusted_for: Duration::from_secs(30),
            remembered: 1024,
            max_ahead: 8,
        }
    }
}

/// Why a grid is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A registration waiting in the pool: sampled ahead if there is room.
    Ahead,
    /// A proposed block this validator may vote for: always sampled.
    Vote,
}

/// What the book answers to [`VerdictBook::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The grid is known available.
    Available,
    /// A sampling is under way: the waiter is called with its verdict.
    Waiting,
    /// Not available as far as the book knows, and no sampling starts now (it failed a
    /// moment ago, or too many samplings ahead are under way): the waiter is dropped.
    NotNow,
    /// The caller must sample the grid now and report with [`VerdictBook::finish`]; the
    /// waiter is called then.
    Sample,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Sampling,
    Available,
    Unavailable,
}

struct Entry<W> {
    verdict: Verdict,
    since: Instant,
    waiters: Vec<W>,
}

/// Verdicts by data root, each with the waiters of a sampling under way.
pub struct VerdictBook<W> {
    policy: VerdictPolicy,
    entries: HashMap<DataRoot, Entry<W>>,
}

impl<W> Default for VerdictBook<W> {
    fn default() -> Self {
        VerdictBook::new(VerdictPolicy::default())
    }
}

impl<W> VerdictBook<W> {
    /// An empty book under `policy`.
    pub fn new(policy: VerdictPolicy) -> VerdictBook<W> {
        VerdictBook {
            policy,
            entries: HashMap::new(),
        }
    }

    /// What is known of grid `root` at `now`, for `purpose`; `waiter` is kept when the
    /// answer is [`Answer::Waiting`] or [`Answer::Sample`] and dropped otherwise.
    pub fn check(&mut self, root: DataRoot, purpose: Purpose, now: Instant, waiter: W) -> Answer {
        let age = |since: Instant| now.saturating_duration_since(since);
        if let Some(entry) = self.entries.get_mut(&root) {
            match entry.verdict {
                Verdict::Available if age(entry.since) < self.policy.trusted_for => {
                    return Answer::Available
                }
                Verdict::Sampling => {
                    entry.waiters.push(waiter);
                    return Answer::Waiting;
                }
                Verdict::Unavailable if age(entry.since) < self.policy.retry_after => {
                    return Answer::NotNow
                }
                Verdict::Available | Verdict::Unavailable => {}
            }
        }
        let sampling = self
            .entries
            .values()
            .filter(|e| e.verdict == Verdict::Sampling)
            .count();
        if purpose == Purpose::Ahead && sampling >= self.policy.max_ahead {
            return Answer::NotNow;
        }
        if self.entries.len() >= self.policy.remembered && !self.entries.contains_key(&root) {
            self.forget_oldest();
        }
        self.entries.insert(
            root,
            Entry {
                verdict: Verdict::Sampling,
                since: now,
                waiters: vec![waiter],
            },
        );
        Answer::Sample
    }

    /// Records the verdict of the sampling of `root` that ended at `now`; returns its
    /// waiters, to be called with `available`.
    pub fn finish(&mut self, root: DataRoot, available: bool, now: Instant) -> Vec<W> {
        let verdict = if available {
            Verdict::Available
        } else {
            Verdict::Unavailable
        };
        let entry = self.entries.entry(root).or_insert(Entry {
            verdict,
            since: now,
            waiters: Vec::new(),
        });
        entry.verdict = verdict;
        entry.since = now;
        std::mem::take(&mut entry.waiters)
    }

    /// Forgets the oldest finished verdict (samplings under way are kept).
    fn forget_oldest(&mut self) {
        let oldest = self
            .entries
            .iter()
            .filter(|(_, e)| e.verdict != Verdict::Sampling)
            .min_by_key(|(_, e)| e.since)
            .map(|(root, _)| *root);
        if let Some(oldest) = oldest {
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(i: u8) -> DataRoot {
        DataRoot([i; 32])
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_grid_is_sampled_once_and_its_waiters_hear_the_verdict() {
        let t0 = Instant::now();
        let mut book = VerdictBook::default();
        assert_eq!(book.check(root(1), Purpose::Vote, t0, 1), Answer::Sample);
        assert_eq!(book.check(root(1), Purpose::Ahead, t0, 2), Answer::Waiting);
        assert_eq!(book.finish(root(1), true, t0 + secs(1)), vec![1, 2]);
        assert_eq!(
            book.check(root(1), Purpose::Vote, t0 + secs(2), 3),
            Answer::Available
        );
    }

    #[test]
    fn an_available_verdict_expires_and_an_unavailable_one_is_retried_later() {
        let policy = VerdictPolicy::default();
        let t0 = Instant::now();
        let mut book = VerdictBook::new(policy);
        book.check(root(1), Purpose::Vote, t0, ());
        book.finish(root(1), true, t0);
        let stale = t0 + policy.trusted_for;
        assert_eq!(
            book.check(root(1), Purpose::Vote, stale, ()),
            Answer::Sample
        );

        book.check(root(2), Purpose::Vote, t0, ());
        book.finish(root(2), false, t0);
        let soon = t0 + policy.retry_after - Duration::from_millis(1);
        assert_eq!(book.check(root(2), Purpose::Vote, soon, ()), Answer::NotNow);
        let later = t0 + policy.retry_after;
        assert_eq!(
            book.check(root(2), Purpose::Vote, later, ()),
            Answer::Sample
        );
    }

    #[test]
    fn samplings_ahead_are_bounded_but_a_vote_always_samples() {
        let policy = VerdictPolicy {
            max_ahead: 2,
            ..VerdictPolicy::default()
        };
        let t0 = Instant::now();
        let mut book = VerdictBook::new(policy);
        assert_eq!(book.check(root(1), Purpose::Ahead, t0, ()), Answer::Sample);
        assert_eq!(book.check(root(2), Purpose::Ahead, t0, ()), Answer::Sample);
        assert_eq!(book.check(root(3), Purpose::Ahead, t0, ()), Answer::NotNow);
        assert_eq!(book.check(root(3), Purpose::Vote, t0, ()), Answer::Sample);
        book.finish(root(1), true, t0);
        assert_eq!(book.check(root(4), Purpose::Ahead, t0, ()), Answer::NotNow);
        book.finish(root(2), true, t0);
        assert_eq!(book.check(root(4), Purpose::Ahead, t0, ()), Answer::Sample);
    }

    #[test]
    fn the_oldest_finished_verdict_is_forgotten_first_and_samplings_are_kept() {
        let policy = VerdictPolicy {
            remembered: 3,
            ..VerdictPolicy::default()
        };
        let t0 = Instant::now();
        let mut book = VerdictBook::new(policy);
        book.check(root(1), Purpose::Vote, t0, ());
        book.check(root(2), Purpose::Vote, t0, ());
        book.finish(root(2), true, t0 + secs(1));
        book.check(root(3), Purpose::Vote, t0, ());
        book.finish(root(3), true, t0 + secs(2));
        // Full: root 2 (the oldest finished) goes, root 1 (sampling) stays.
        book.check(root(4), Purpose::Vote, t0 + secs(3), ());
        assert_eq!(
            book.check(root(1), Purpose::Vote, t0 + secs(3), ()),
            Answer::Waiting
        );
        assert_eq!(
            book.check(root(3), Purpose::Vote, t0 + secs(3), ()),
            Answer::Available
        );
        assert_eq!(
            book.check(root(2), Purpose::Vote, t0 + secs(3), ()),
            Answer::Sample
        );
    }
}
