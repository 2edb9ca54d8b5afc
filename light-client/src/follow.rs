//! Following the chain: the genesis header and chain spec (pinned by hash, or the first
//! seen), then only final headers — each with a finality proof checked against the
//! committee and linked to the one before. Transactions and the ledger are never fetched.

use nexus_consensus::{CertifiedHeader, Context, FinalityError, Header, Height};
use nexus_net::protocol::gossip::GossipMessage;
use nexus_net::protocol::headers::{HeaderRequest, HeaderResponse, MAX_HEADERS_PER_RESPONSE};
use nexus_net::{GossipId, Network, PeerId, Validation};
use nexus_sampler::CustodyParams;

use crate::source::custody_params;
use nexus_consensus::BlockHash;

/// Why a header from a peer was refused.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The genesis is not the pinned one, or does not match its spec.
    #[error("unacceptable genesis: {0}")]
    Genesis(&'static str),
    /// The header does not follow the last one accepted.
    #[error("header {found} does not follow the tip at {tip}")]
    NotNext {
        /// Height of the tip.
        tip: Height,
        /// Height of the header.
        found: Height,
    },
    /// Its finality proof does not hold.
    #[error(transparent)]
    Finality(#[from] FinalityError),
}

/// The chain as a light client sees it: the trusted context and the last final header.
pub struct Follower {
    net: Network,
    pin: Option<BlockHash>,
    ctx: Option<Context>,
    tip: Option<Header>,
    /// False until the first catch-up reached the network's tip: history is not sampled.
    synced: bool,
}

impl Follower {
    /// A follower that trusts `pin` as genesis, or the first genesis it sees.
    pub fn new(net: Network, pin: Option<BlockHash>) -> Follower {
        Follower {
            net,
            pin,
            ctx: None,
            tip: None,
            synced: false,
        }
    }

    /// The custody parameters of the chain followed.
    pub fn custody(&self) -> CustodyParams {
        self.ctx
            .as_ref()
            .map_or(CustodyParams::DEFAULT, |c| custody_params(c.spec()))
    }

    /// The last final header accepted.
    pub fn tip(&self) -> Option<&Header> {
        self.tip.as_ref()
    }

    /// Checks a genesis answer and adopts it.
    fn accept_genesis(&mut self, response: HeaderResponse) -> Result<(), FollowError> {
        let HeaderResponse::Genesis { header, spec } = response else {
            return Err(FollowError::Genesis("the peer sent no genesis"));
        };
        let hash = header.hash();
        if self.pin.is_some_and(|p| p != hash) {
            return Err(FollowError::Genesis("hash differs from the pinned genesis"));
        }
        if header.height != Height(0) || header.spec != spec.digest() || spec.validate().is_err() {
            return Err(FollowError::Genesis("the chain spec is not the genesis's"));
        }
        self.ctx = Some(Context::new(*spec, hash));
        self.tip = Some(*header);
        Ok(())
    }

    /// Checks `certified` as the next final header; returns it once accepted.
    fn accept(&mut self, certified: CertifiedHeader) -> Result<Header, FollowError> {
        let (Some(ctx), Some(tip)) = (&self.ctx, &self.tip) else {
            return Err(FollowError::Genesis("no genesis yet"));
        };
        let header = &certified.header;
        if Some(header.height) != tip.height.next() || header.parent != tip.hash() {
            return Err(FollowError::NotNext {
                tip: tip.height,
                found: header.height,
            });
        }
        certified.verify(ctx)?;
        self.tip = Some(certified.header.clone());
        Ok(certified.header)
    }

    fn next_height(&self) -> Height {
        self.tip
            .as_ref()
            .and_then(|t| t.height.next())
            .unwrap_or(Height(0))
    }

    /// Handles a gossiped final header: the next one is accepted and returned for
    /// sampling; a later one with a valid proof triggers a catch-up; an invalid one is
    /// rejected.
    pub async fn on_gossip(&mut self, id: GossipId, message: GossipMessage) -> Vec<Header> {
        let GossipMessage::Finalized(certified) = message else {
            self.net.report(id, Validation::Ignore).await;
            return Vec::new();
        };
        let height = certified.header.height;
        let Some(ctx) = &self.ctx else {
            self.net.report(id, Validation::Ignore).await;
            return self.catch_up().await;
        };
        if height < self.next_height() {
            self.net.report(id, Validation::Ignore).await;
            return Vec::new();
        }
        if height > self.next_height() {
            let verdict = match certified.verify(ctx) {
                Ok(()) => Validation::Accept,
                Err(_) => Validation::Reject,
            };
            self.net.report(id, verdict).await;
            return self.catch_up().await;
        }
        match self.accept(*certified) {
            Ok(header) => {
                self.net.report(id, Validation::Accept).await;
                if self.synced {
                    vec![header]
                } else {
                    Vec::new()
                }
            }
            Err(e) => {
                tracing::warn!(peer = %id.source(), %height, "invalid final header: {e}");
                self.net.report(id, Validation::Reject).await;
                Vec::new()
            }
        }
    }

    /// Fetches the genesis if needed, then final headers after the tip from storage peers
    /// until none has more; returns the headers accepted (none during the very first
    /// catch-up, which only finds the tip).
    pub async fn catch_up(&mut self) -> Vec<Header> {
        let peers = self.net.storage_peers().await;
        let mut accepted = Vec::new();
        for peer in peers {
            if self.ctx.is_none() && !self.fetch_genesis(peer).await {
                continue;
            }
            self.fetch_headers(peer, &mut accepted).await;
            if self.tip.is_some() {
                self.synced = true;
                break;
            }
        }
        accepted
    }

    async fn fetch_genesis(&mut self, peer: PeerId) -> bool {
        let Ok(response) = self.net.request_headers(peer, HeaderRequest::Genesis).await else {
            return false;
        };
        if matches!(response, HeaderResponse::Unavailable) {
            return false;
        }
        match self.accept_genesis(response) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(%peer, "peer sent an unacceptable genesis: {e}");
                self.net.penalise(peer).await;
                false
            }
        }
    }

    async fn fetch_headers(&mut self, peer: PeerId, accepted: &mut Vec<Header>) {
        loop {
            let request = HeaderRequest::Range {
                from: self.next_height(),
                max: MAX_HEADERS_PER_RESPONSE,
            };
            let Ok(HeaderResponse::Headers(headers)) =
                self.net.request_headers(peer, request).await
            else {
                return;
            };
            if headers.is_empty() {
                return;
            }
            for certified in headers {
                match self.accept(certified) {
                    Ok(header) if self.synced => accepted.push(header),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(%peer, "peer sent an invalid final header: {e}");
                        self.net.penalise(peer).await;
                        return;
                    }
                }
            }
        }
    }
}
