//! What a chain starts from, shared by block verification and the state transition.

use serde::{Deserialize, Serialize};

use crate::keys::SigningKey;
use crate::ledger::Genesis;
use nexus_consensus::{BlockHash, ChainSpec, Committee, Context, Epoch, Validator};

/// Everything a chain starts from: its spec (chain id, validator committee, custody
/// layout), the genesis time, and the ledger's first state. Every node given the same
/// genesis builds the same genesis block, so validators need not exchange it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainGenesis {
    /// Chain id, committee and custody layout.
    pub spec: ChainSpec,
    /// Timestamp of the genesis block, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The ledger's parameters and balances.
    pub ledger: Genesis,
}

impl ChainGenesis {
    /// A chain whose only validator is `validator` (stake 1), reachable at `address`.
    pub fn solo(
        chain_id: &str,
        validator: &SigningKey,
        address: &str,
        ledger: Genesis,
        time_ms: u64,
    ) -> Result<ChainGenesis, nexus_consensus::CommitteeError> {
        let committee = Committee::new(Epoch(0), vec![Validator::new(validator, 1, address)])?;
        Ok(ChainGenesis {
            spec: ChainSpec {
                chain_id: chain_id.to_string(),
                committee,
                custody_groups: 32,
                custodians_per_group: 2,
            },
            time_ms,
            ledger,
        })
    }

    /// The verification context of this chain, whose genesis block hashes to `genesis`.
    pub fn context(&self, genesis: BlockHash) -> Context {
        Context::new(self.spec.clone(), genesis)
    }
}
