//! Peers dropped for sending invalid data, each for a limited time that doubles with every
//! offence: a peer whose disk corrupted a chunk once comes back after a while, a peer that
//! keeps lying stays out for longer and longer. Sans-io: the caller supplies the clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// How long a first offence keeps a peer out.
pub(crate) const FIRST_BAN: Duration = Duration::from_secs(10 * 60);
/// Offences after which the ban stops doubling (the longest ban is 2^this × the first).
const MAX_DOUBLINGS: u32 = 10;

/// The banned peers and what they did.
#[derive(Debug)]
pub(crate) struct Bans {
    first: Duration,
    /// Ban end per banned peer.
    until: HashMap<PeerId, Instant>,
    /// Offences per peer ever banned (kept after a ban ends, for the next one's length).
    offences: HashMap<PeerId, u32>,
}

impl Bans {
    /// No bans yet; a first offence lasts `first`.
    pub(crate) fn new(first: Duration) -> Bans {
        Bans {
            first,
            until: HashMap::new(),
            offences: HashMap::new(),
        }
    }

    /// Bans `peer` from `now` for `first` × 2^(its earlier offences); returns how long.
    pub(crate) fn ban(&mut self, peer: PeerId, now: Instant) -> Duration {
        let offences = self.offences.entry(peer).or_default();
        let length = self.first * 2u32.pow((*offences).min(MAX_DOUBLINGS));
        *offences += 1;
        let end = now + length;
        let until = self.until.entry(peer).or_insert(end);
        *until = (*until).max(end);
        length
    }

    /// Whether `peer` is banned now.
    pub(crate) fn contains(&self, peer: &PeerId) -> bool {
        self.until.contains_key(peer)
    }

    /// Ends the bans that ran out by `now` and returns those peers.
    pub(crate) fn lift_expired(&mut self, now: Instant) -> Vec<PeerId> {
        let lifted: Vec<PeerId> = self
            .until
            .iter()
            .filter(|(_, end)| **end <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &lifted {
            self.until.remove(peer);
        }
        lifted
    }

    /// The peers banned now.
    pub(crate) fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.until.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_end_and_grow_with_every_offence() {
        let minute = Duration::from_secs(60);
        let mut bans = Bans::new(minute);
        let (liar, other) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        assert_eq!(bans.ban(liar, t0), minute);
        assert!(bans.contains(&liar) && !bans.contains(&other));
        assert!(bans.lift_expired(t0 + minute / 2).is_empty());
        assert_eq!(bans.lift_expired(t0 + minute), vec![liar]);
        assert!(!bans.contains(&liar), "a first offence is forgiven");
        assert_eq!(bans.peers().count(), 0);

        // The second offence doubles; banning again during a ban never shortens it.
        let t1 = t0 + 2 * minute;
        assert_eq!(bans.ban(liar, t1), 2 * minute);
        assert_eq!(bans.ban(liar, t1), 4 * minute);
        assert!(bans.lift_expired(t1 + 3 * minute).is_empty());
        assert_eq!(bans.lift_expired(t1 + 4 * minute), vec![liar]);

        // Doubling stops, so the length never overflows.
        for _ in 0..40 {
            bans.ban(other, t1);
        }
        assert_eq!(bans.ban(other, t1), minute * 1024);
    }
}
