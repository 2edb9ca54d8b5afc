//! The chain's state transition, pure: a block is accepted only if its form is right
//! (signature, link, transactions root) *and* its transactions, applied to the parent's
//! ledger state, lead to the state root its header claims. Proposers build blocks with the
//! same functions, so what they sign is what everyone else recomputes.

use crate::block::{
    block_data, effective, Block, BlockError, BlockHash, Header, Slot, VerifiedBlock,
};
use crate::keys::PublicKey;
use crate::ledger::{ComputeVerifier, LedgerEvent, LedgerState, SignedTransaction, TxError};
use crate::merkle::Digest;
use nexus_consensus::{Context, FinalityError, FinalityProof, Round};

mod tree;

pub use crate::genesis::ChainGenesis;
pub use tree::{BlockTree, TreeError, MAX_PENDING};

/// A verified block with the ledger state after it and what the state transition did.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The block.
    pub block: VerifiedBlock,
    /// Ledger state after the block.
    pub ledger: LedgerState,
    /// Events of the block's end (challenges, evictions, epochs...).
    pub events: Vec<LedgerEvent>,
}

/// The outcome of running a block's transactions on a copy of the parent's state.
struct Execution {
    ledger: LedgerState,
    events: Vec<LedgerEvent>,
    /// Those a block carries: they took effect or paid for their failed action.
    included: Vec<SignedTransaction>,
    /// Positions in `included` of those whose action failed (ascending), and why.
    failed: Vec<(u32, TxError)>,
    /// Those that cannot be in a block (not payable, wrong nonce).
    refused: Vec<(SignedTransaction, TxError)>,
}

/// Applies `transactions` and the end of block `height` to a copy of `state`, with
/// `verifier` deciding on compute programs and proofs.
fn execute(
    state: &LedgerState,
    height: u64,
    seed: &BlockHash,
    transactions: Vec<SignedTransaction>,
    verifier: &dyn ComputeVerifier,
) -> Execution {
    let mut ledger = state.clone();
    let (mut included, mut failed, mut refused) = (Vec::new(), Vec::new(), Vec::new());
    for tx in transactions {
        match ledger.execute_tx(&tx, verifier) {
            Ok(outcome) => {
                if let Err(e) = outcome {
                    failed.push((included.len() as u32, e));
                }
                included.push(tx);
            }
            Err(e) => refused.push((tx, e)),
        }
    }
    let events = ledger.end_block(height, &Digest(seed.0));
    Execution {
        ledger,
        events,
        included,
        failed,
        refused,
    }
}

/// Builds the genesis block of `genesis` (deterministic: the same genesis always gives
/// the same block).
pub fn create_genesis(genesis: ChainGenesis) -> Result<Transition, BlockError> {
    genesis.spec.validate()?;
    let ledger = LedgerState::genesis(&genesis.ledger, genesis.spec.tag())?;
    let dims = ledger.params().data_dims;
    let slot = Slot {
        parent: None,
        round: Round(0),
        proposer: nexus_consensus::Header::GENESIS_PROPOSER,
        timestamp_ms: genesis.time_ms,
        spec: genesis.spec.digest(),
    };
    let data = block_data([], dims)?;
    let block = Block::build(
        slot,
        Vec::new(),
        Vec::new(),
        ledger.state_root(),
        Some(genesis),
        data,
    )?;
    settle(block, ledger, Vec::new())
}

/// Accepts a genesis block from a peer (or the disk); `pin` is the hash the operator
/// expects, if any.
///
/// The block must carry a chain genesis and be exactly the block that genesis produces
/// (with no transactions), and, when `pin` is given, hash to it.
pub fn accept_genesis(block: Block, pin: Option<BlockHash>) -> Result<Transition, BlockError> {
    if pin.is_some_and(|p| p != block.header.hash()) {
        return Err(BlockError::BadGenesis(
            "hash differs from the pinned genesis",
        ));
    }
    let genesis = block
        .genesis
        .clone()
        .ok_or(BlockError::BadGenesis("no chain genesis"))?;
    let built = create_genesis(genesis)?;
    if built.block.header != block.header
        || !block.transactions.is_empty()
        || !block.failed.is_empty()
    {
        return Err(BlockError::BadGenesis(
            "not the block its chain genesis produces",
        ));
    }
    Ok(built)
}

/// Accepts a block whose transactions led to `ledger`, if that is the root it claims.
fn settle(
    block: Block,
    ledger: LedgerState,
    events: Vec<LedgerEvent>,
) -> Result<Transition, BlockError> {
    if block.header.data.params.dims != ledger.params().data_dims {
        return Err(BlockError::DataMismatch);
    }
    if ledger.state_root() != block.header.state_root {
        return Err(BlockError::StateRootMismatch {
            claimed: block.header.state_root,
            computed: ledger.state_root(),
        });
    }
    Ok(Transition {
        block: VerifiedBlock::assume_verified(block),
        ledger,
        events,
    })
}

/// Accepts `block` as the child of `parent`, whose ledger state is `state`.
pub fn accept_child(
    block: Block,
    parent: &Header,
    state: &LedgerState,
    verifier: &dyn ComputeVerifier,
) -> Result<Transition, BlockError> {
    let block = block.verify_child(parent)?;
    let Execution {
        ledger,
        events,
        failed,
        refused,
        ..
    } = execute(
        state,
        block.header.height.0,
        &parent.hash(),
        block.transactions.clone(),
        verifier,
    );
    if let Some((tx, error)) = refused.into_iter().next() {
        let index = block
            .transactions
            .iter()
            .position(|t| *t == tx)
            .unwrap_or(0);
        return Err(BlockError::InvalidTransaction { index, error });
    }
    if !failed
        .iter()
        .map(|(i, _)| *i)
        .eq(block.failed.iter().copied())
    {
        return Err(BlockError::OutcomesMismatch);
    }
    settle(block, ledger, events)
}

/// Why a block served as final was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinalBlockError {
    /// The block itself is invalid.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// Its finality proof does not hold.
    #[error("finality proof: {0}")]
    Finality(#[from] FinalityError),
}

/// Accepts `block`, served as final with `proof`, as the child of `parent` (state
/// `state`) on the chain of `ctx`.
pub fn accept_final(
    block: Block,
    proof: &FinalityProof,
    parent: &Header,
    state: &LedgerState,
    ctx: &Context,
    verifier: &dyn ComputeVerifier,
) -> Result<Transition, FinalBlockError> {
    proof.verify(&block.header, ctx)?;
    Ok(accept_child(block, parent, state, verifier)?)
}

/// A block this node proposes, and what became of the candidates.
#[derive(Debug)]
pub struct Built {
    /// The block and the state after it.
    pub step: Transition,
    /// Candidates that cannot be in a block (not payable, wrong nonce), and why.
    pub refused: Vec<(SignedTransaction, TxError)>,
    /// Positions of the block's transactions whose action failed (they paid their fee),
    /// and why.
    pub failed: Vec<(u32, TxError)>,
}

/// Builds the child of `parent` for `round`, proposed by `proposer`, from `candidates`:
/// those whose action fails are carried as failed and pay their fee, those that cannot
/// be in a block are left out. Its data commitment is its `das` registration's
/// ([`block_data`]): building a block never encodes anything, whatever it carries.
pub fn propose_child(
    proposer: PublicKey,
    round: Round,
    parent: &Header,
    state: &LedgerState,
    candidates: Vec<SignedTransaction>,
    timestamp_ms: u64,
    verifier: &dyn ComputeVerifier,
) -> Result<Built, BlockError> {
    let height = parent.height.next().ok_or(BlockError::HeightOverflow)?;
    let Execution {
        ledger,
        events,
        included,
        failed,
        refused,
    } = execute(state, height.0, &parent.hash(), candidates, verifier);
    let positions: Vec<u32> = failed.iter().map(|(i, _)| *i).collect();
    let data = block_data(
        effective(&included, &positions).map(|(_, tx)| tx),
        ledger.params().data_dims,
    )?;
    let slot = Slot {
        parent: Some(parent),
        round,
        proposer,
        timestamp_ms,
        spec: parent.spec,
    };
    let block = Block::build(slot, included, positions, ledger.state_root(), None, data)?;
    let block = block.verify_child(parent)?;
    Ok(Built {
        step: settle(block, ledger, events)?,
        refused,
        failed,
    })
}

#[cfg(test)]
mod tests;
