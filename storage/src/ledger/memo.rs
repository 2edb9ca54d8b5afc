//! Bounded memos of pure verifications (signatures, Universal Proofs, program
//! commitments): the same bytes always give the same verdict, so a memo only saves work,
//! and never decides a transaction's validity on its own. Every key covers all the inputs
//! of the verification it stands for; the oldest entries are forgotten first.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

/// The entries, and their keys oldest first.
type Entries<K, V> = (HashMap<K, V>, VecDeque<K>);

/// A map of at most `capacity` entries, shared between threads.
pub(super) struct Memo<K, V> {
    capacity: usize,
    inner: Mutex<Option<Entries<K, V>>>,
}

impl<K: Eq + Hash + Copy, V: Clone> Memo<K, V> {
    /// An empty memo of at most `capacity` entries.
    pub(super) const fn new(capacity: usize) -> Memo<K, V> {
        Memo {
            capacity,
            inner: Mutex::new(None),
        }
    }

    /// The value remembered for `key`.
    pub(super) fn get(&self, key: &K) -> Option<V> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.as_ref().and_then(|(map, _)| map.get(key).cloned())
    }

    /// Remembers `value` for `key`, forgetting the oldest entry when full.
    pub(super) fn insert(&self, key: K, value: V) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = inner.get_or_insert_with(Default::default);
        if map.insert(key, value).is_none() {
            order.push_back(key);
            if order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }

    /// The value for `key`: remembered, or computed by `compute` and remembered.
    pub(super) fn get_or_compute(&self, key: K, compute: impl FnOnce() -> V) -> V {
        if let Some(found) = self.get(&key) {
            return found;
        }
        let value = compute();
        self.insert(key, value.clone());
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entries_go_first_and_a_value_is_computed_once() {
        let memo: Memo<u32, u32> = Memo::new(2);
        let mut calls = 0;
        for _ in 0..3 {
            assert_eq!(
                memo.get_or_compute(1, || {
                    calls += 1;
                    10
                }),
                10
            );
        }
        assert_eq!(calls, 1);
        memo.insert(2, 20);
        memo.insert(3, 30);
        assert_eq!(
            (memo.get(&1), memo.get(&2), memo.get(&3)),
            (None, Some(20), Some(30))
        );
    }
}
