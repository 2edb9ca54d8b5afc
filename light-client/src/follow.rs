//! Following the chain: the genesis (pinned or first seen), then each block checked as the
//! child of the last: height, parent link, proposer, signature, transactions and data
//! commitment (the ledger itself is not replayed).

use nexus_net::protocol::blocks::{BlockRequest, MAX_BLOCKS_PER_RESPONSE};
use nexus_net::protocol::gossip::GossipMessage;
use nexus_net::{GossipId, Network, Validation};
use nexus_sampler::CustodyParams;
use nexus_storage::{Block, BlockError, BlockHash, Header, Height};

use crate::source::custody_params;

/// The chain as a light client sees it: the last accepted header.
pub struct Follower {
    net: Network,
    pin: Option<BlockHash>,
    tip: Option<Header>,
    /// False until the first catch-up reached the network's tip: history is not sampled.
    synced: bool,
    /// The network's custody parameters, known once the genesis is accepted.
    custody: CustodyParams,
}

impl Follower {
    /// A follower that trusts `pin` as genesis, or the first genesis it sees.
    pub fn new(net: Network, pin: Option<BlockHash>) -> Follower {
        Follower {
            net,
            pin,
            tip: None,
            synced: false,
            custody: CustodyParams::DEFAULT,
        }
    }

    /// The custody parameters of the chain followed.
    pub fn custody(&self) -> CustodyParams {
        self.custody
    }

    /// Checks `block` as the next block; returns its header once accepted.
    fn accept(&mut self, block: Block) -> Result<Header, BlockError> {
        let block = match &self.tip {
            None => block.verify_genesis(self.pin)?,
            Some(parent) => block.verify_child(parent)?,
        };
        if let Some(genesis) = &block.genesis {
            self.custody = custody_params(&genesis.params);
        }
        self.tip = Some(block.header.clone());
        Ok(block.header)
    }

    fn next_height(&self) -> Height {
        self.tip
            .as_ref()
            .and_then(|t| t.height.next())
            .unwrap_or(Height(0))
    }

    /// Handles a gossiped block: the next one is accepted and returned for sampling; a
    /// later one triggers a catch-up; an invalid one is rejected.
    pub async fn on_gossip(&mut self, id: GossipId, message: GossipMessage) -> Vec<Header> {
        let GossipMessage::Block(block) = message else {
            self.net.report(id, Validation::Ignore).await;
            return Vec::new();
        };
        let height = block.header.height;
        if self.tip.is_none() || height > self.next_height() {
            self.net.report(id, Validation::Ignore).await;
            return self.catch_up().await;
        }
        if height < self.next_height() {
            self.net.report(id, Validation::Ignore).await;
            return Vec::new();
        }
        match self.accept(*block) {
            Ok(header) => {
                self.net.report(id, Validation::Accept).await;
                if self.synced {
                    vec![header]
                } else {
                    Vec::new()
                }
            }
            Err(e) => {
                tracing::warn!(peer = %id.source(), %height, "invalid block: {e}");
                self.net.report(id, Validation::Reject).await;
                Vec::new()
            }
        }
    }

    /// Fetches blocks after the tip from storage peers until none has more; returns the
    /// headers accepted (none during the very first catch-up, which only finds the tip).
    pub async fn catch_up(&mut self) -> Vec<Header> {
        let peers = self.net.storage_peers().await;
        let mut accepted = Vec::new();
        for peer in peers {
            loop {
                let request = BlockRequest {
                    from: self.next_height(),
                    max: MAX_BLOCKS_PER_RESPONSE,
                };
                let Ok(response) = self.net.request_blocks(peer, request).await else {
                    break;
                };
                if response.blocks.is_empty() {
                    break;
                }
                let mut progressed = false;
                for block in response.blocks {
                    match self.accept(block) {
                        Ok(header) => {
                            progressed = true;
                            if self.synced {
                                accepted.push(header);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(%peer, "peer sent an invalid block: {e}");
                            self.net.penalise(peer).await;
                            break;
                        }
                    }
                }
                if !progressed {
                    break;
                }
            }
            if self.tip.is_some() {
                self.synced = true;
                break;
            }
        }
        accepted
    }
}
