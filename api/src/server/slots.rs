//! The upload budget, shared fairly between client addresses: at most [`MAX_UPLOADS`]
//! uploads are received at once, and a client may start one only while it holds fewer than
//! its fair share — the budget over the clients holding or waiting for one. While someone
//! waits, a client holding more than its share must send at [`SCARCE_UPLOAD_RATE`] or have
//! its uploads cut off, so its slots come back quickly instead of when its slow uploads end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Uploads received at once, all clients together.
pub const MAX_UPLOADS: usize = 128;
/// Bytes per second an upload must average after its grace period.
pub const MIN_UPLOAD_RATE: u64 = 64 << 10;
/// The rate asked of a client holding more than its share while others wait.
pub const SCARCE_UPLOAD_RATE: u64 = 1 << 20;

#[derive(Debug, Default)]
struct State {
    held: HashMap<IpAddr, usize>,
    waiting: HashMap<IpAddr, usize>,
}

impl State {
    /// The budget over the clients that hold or want a slot.
    fn fair_share(&self, total: usize) -> usize {
        let active = self
            .held
            .keys()
            .chain(self.waiting.keys().filter(|c| !self.held.contains_key(c)))
            .count()
            .max(1);
        (total / active).max(1)
    }

    fn held_by(&self, client: &IpAddr) -> usize {
        self.held.get(client).copied().unwrap_or(0)
    }

    fn can_take(&self, client: &IpAddr, total: usize) -> bool {
        self.held.values().sum::<usize>() < total && self.held_by(client) < self.fair_share(total)
    }

    fn count(map: &mut HashMap<IpAddr, usize>, client: IpAddr, up: bool) {
        let n = map.entry(client).or_insert(0);
        if up {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&client);
            }
        }
    }
}

/// The budget.
#[derive(Debug)]
pub struct WriteSlots {
    total: usize,
    state: Mutex<State>,
    changed: Notify,
}

impl Default for WriteSlots {
    fn default() -> Self {
        WriteSlots::new(MAX_UPLOADS)
    }
}

impl WriteSlots {
    /// A budget of `total` uploads at once.
    pub fn new(total: usize) -> WriteSlots {
        WriteSlots {
            total,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `client` may receive one more upload, and takes the slot.
    pub async fn acquire(self: &Arc<Self>, client: IpAddr) -> Slot {
        let mut waiting = false;
        loop {
            let notified = self.changed.notified();
            {
                let mut state = self.lock();
                if state.can_take(&client, self.total) {
                    if waiting {
                        State::count(&mut state.waiting, client, false);
                    }
                    State::count(&mut state.held, client, true);
                    return Slot {
                        slots: self.clone(),
                        client,
                    };
                }
                if !waiting {
                    waiting = true;
                    State::count(&mut state.waiting, client, true);
                }
            }
            notified.await;
        }
    }
}

/// One upload's place in the budget, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<WriteSlots>,
    client: IpAddr,
}

impl Slot {
    /// The rate this upload must keep now: the minimum, or [`SCARCE_UPLOAD_RATE`] while
    /// another client waits and this one holds more than its share.
    pub fn rate_floor(&self) -> u64 {
        let state = self.slots.lock();
        let scarce = state.waiting.keys().any(|c| *c != self.client);
        if scarce && state.held_by(&self.client) > state.fair_share(self.slots.total) {
            SCARCE_UPLOAD_RATE
        } else {
            MIN_UPLOAD_RATE
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        State::count(&mut self.slots.lock().held, self.client, false);
        self.slots.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_gets_its_share_while_another_holds_the_rest() {
        let slots = Arc::new(WriteSlots::new(4));
        let (hog, other) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(slots.acquire(hog).await);
        }
        assert!(held.iter().all(|s| s.rate_floor() == MIN_UPLOAD_RATE));
        // Another client waits; meanwhile the hog, over its share of 2, owes the scarce rate.
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire(other).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        assert_eq!(held[0].rate_floor(), SCARCE_UPLOAD_RATE);
        // One of the hog's uploads ends (cut off): the waiter gets it, not the hog again.
        held.pop();
        let theirs = waiter.await.expect("the waiter gets a slot");
        assert_eq!(theirs.rate_floor(), MIN_UPLOAD_RATE);
        let again = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire(hog).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !again.is_finished(),
            "the hog is at its share and the budget is full"
        );
        drop(theirs);
        drop(held);
        again.await.expect("slots come back");
    }
}
