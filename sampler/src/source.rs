//! The one thing a sampler needs from the outside world.

use std::fmt::Debug;
use std::hash::Hash;

use futures::future::BoxFuture;
use nexus_das::{Coord, DataRoot, Sample};

/// Why a peer did not deliver a sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The peer does not have the cell.
    #[error("peer does not hold the cell")]
    NotHeld,
    /// The peer could not be reached or the exchange failed.
    #[error("request failed: {0}")]
    Failed(String),
    /// The peer did not answer in time.
    #[error("request timed out")]
    TimedOut,
}

/// A sample and what it cost to get it.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The sample as received (not yet verified).
    pub sample: Sample,
    /// Bytes received for it.
    pub bytes: u64,
}

/// Peers that can be asked for cells.
pub trait CellSource: Send + Sync + 'static {
    /// How a peer is named.
    type Peer: Clone + Eq + Hash + Debug + Send + Sync + 'static;

    /// Peers that should hold the cell at `coord` of the payload committed by `root`, best
    /// first. An empty list means no one is known to hold it.
    fn custodians(&self, root: &DataRoot, coord: Coord) -> Vec<Self::Peer>;

    /// Asks `peer` for the sample at `coord`.
    fn fetch(
        &self,
        peer: Self::Peer,
        root: DataRoot,
        coord: Coord,
    ) -> BoxFuture<'static, Result<Fetched, FetchError>>;

    /// `peer` served a sample that does not verify; called once per bad sample.
    fn penalise(&self, peer: &Self::Peer);
}
