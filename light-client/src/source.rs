//! Cells over the network: a [`CellSource`] that asks storage peers with `/nexus/cells/1`.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use nexus_consensus::{ChainSpec, Height};
use nexus_das::{Coord, DataRoot};
use nexus_net::protocol::cells::CellsRequest;
use nexus_net::{Network, PeerId};
use nexus_sampler::{CellSource, Custody, CustodyParams, FetchError, Fetched};

/// The network's custody parameters, as its chain spec sets them.
pub fn custody_params(spec: &ChainSpec) -> CustodyParams {
    CustodyParams {
        groups: spec.custody_groups,
        custodians_per_group: spec.custodians_per_group,
        ..CustodyParams::DEFAULT
    }
}

/// What the source knows: the custody view and which block each root belongs to.
struct View {
    custody: Custody<Vec<u8>>,
    peers: Vec<PeerId>,
    heights: HashMap<DataRoot, Height>,
}

/// Storage peers as a [`CellSource`]: custodians first, then every other storage peer.
pub struct NetCellSource {
    net: Network,
    /// Set when this node is a storage node itself: it counts in the custody assignment
    /// but is never asked.
    member: Option<PeerId>,
    view: Mutex<View>,
}

impl NetCellSource {
    /// A source over `net` (no peers known until [`NetCellSource::prepare`]).
    pub fn new(net: Network) -> NetCellSource {
        NetCellSource::with_member(net, None)
    }

    /// A source for a storage node, `me`, which takes part in custody itself.
    pub fn for_storage_node(net: Network, me: PeerId) -> NetCellSource {
        NetCellSource::with_member(net, Some(me))
    }

    fn with_member(net: Network, member: Option<PeerId>) -> NetCellSource {
        NetCellSource {
            net,
            member,
            view: Mutex::new(View {
                custody: Custody::new(CustodyParams::DEFAULT, 0, Vec::<Vec<u8>>::new()),
                peers: Vec::new(),
                heights: HashMap::new(),
            }),
        }
    }

    /// Refreshes the storage peers and the custody assignment (under `params`) for block
    /// `height` committed by `root`.
    pub async fn prepare(&self, height: Height, root: DataRoot, params: CustodyParams) {
        let peers = self.net.storage_peers().await;
        let custody = Custody::new(
            params,
            params.epoch_of(height.0),
            peers.iter().chain(&self.member).map(|p| p.to_bytes()),
        );
        let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        view.custody = custody;
        view.peers = peers;
        view.heights.insert(root, height);
        // Keep only recent roots: a light client stores little.
        if view.heights.len() > 256 {
            let oldest = view.heights.values().min().copied();
            view.heights.retain(|_, h| Some(*h) != oldest);
        }
    }
}

impl CellSource for NetCellSource {
    type Peer = PeerId;

    fn custodians(&self, _: &DataRoot, coord: Coord) -> Vec<PeerId> {
        let view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        let mut order: Vec<PeerId> = view
            .custody
            .custodians(coord)
            .filter_map(|bytes| PeerId::from_bytes(bytes).ok())
            .filter(|p| Some(*p) != self.member)
            .collect();
        for p in &view.peers {
            if !order.contains(p) {
                order.push(*p);
            }
        }
        order
    }

    fn fetch(
        &self,
        peer: PeerId,
        root: DataRoot,
        coord: Coord,
    ) -> BoxFuture<'static, Result<Fetched, FetchError>> {
        let height = {
            let view = self.view.lock().unwrap_or_else(|p| p.into_inner());
            view.heights.get(&root).copied()
        };
        let net = self.net.clone();
        Box::pin(async move {
            let height = height.ok_or(FetchError::Failed("unknown block".into()))?;
            let request = CellsRequest {
                height,
                root,
                coords: vec![coord],
            };
            let response = net
                .request_cells(peer, request)
                .await
                .map_err(|e| FetchError::Failed(e.to_string()))?;
            let sample = response
                .samples
                .into_iter()
                .next()
                .flatten()
                .ok_or(FetchError::NotHeld)?;
            let bytes = postcard::to_stdvec(&sample).map_or(0, |b| b.len() as u64);
            Ok(Fetched { sample, bytes })
        })
    }

    fn penalise(&self, peer: &PeerId) {
        let net = self.net.clone();
        let peer = *peer;
        tokio::spawn(async move { net.penalise(peer).await });
    }
}
