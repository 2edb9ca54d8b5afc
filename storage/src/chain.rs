//! The chain's state transition, pure: a block is accepted only if its form is right
//! (signature, link, transactions root) *and* its transactions, applied to the parent's
//! ledger state, lead to the state root its header claims. Proposers build blocks with the
//! same functions, so what they sign is what everyone else recomputes.

use crate::block::{
    Block, BlockError, BlockHash, BlockPayload, DasBlobs, DataHeader, Header, VerifiedBlock,
};
use crate::keys::SigningKey;
use crate::ledger::{Genesis, LedgerEvent, LedgerState, SignedTransaction, TxError};
use crate::merkle::Digest;

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
    applied: Vec<SignedTransaction>,
    refused: Vec<(SignedTransaction, TxError)>,
}

/// Applies `transactions` and the end of block `height` to a copy of `state`.
fn execute(
    state: &LedgerState,
    height: u64,
    seed: &BlockHash,
    transactions: Vec<SignedTransaction>,
) -> Execution {
    let mut ledger = state.clone();
    let (mut applied, mut refused) = (Vec::new(), Vec::new());
    for tx in transactions {
        match ledger.apply_tx(&tx) {
            Ok(()) => applied.push(tx),
            Err(e) => refused.push((tx, e)),
        }
    }
    let events = ledger.end_block(height, &Digest(seed.0));
    Execution {
        ledger,
        events,
        applied,
        refused,
    }
}

/// Creates and signs the genesis block of a new chain.
pub fn create_genesis(
    key: &SigningKey,
    genesis: Genesis,
    timestamp_ms: u64,
) -> Result<Transition, BlockError> {
    let ledger = LedgerState::genesis(&genesis)?;
    let block = Block::sign_new(
        key,
        None,
        timestamp_ms,
        Vec::new(),
        ledger.state_root(),
        Some(genesis),
        DataHeader::of_payload(
            &BlockPayload::of(&[]),
            ledger.params().data_dims,
            &DasBlobs::new(),
        )?,
    )?;
    accept_genesis(block, None)
}

/// Accepts a genesis block from a peer (or the disk); `pin` is the hash the operator
/// expects, if any.
pub fn accept_genesis(block: Block, pin: Option<BlockHash>) -> Result<Transition, BlockError> {
    let block = block.verify_genesis(pin)?;
    let genesis = block
        .genesis
        .as_ref()
        .ok_or(BlockError::BadGenesis("no ledger genesis"))?;
    let ledger = LedgerState::genesis(genesis)?;
    settle(block, ledger, Vec::new())
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
    let (max, found) = (
        ledger.params().max_block_data,
        BlockPayload::of(&block.transactions).blob_bytes(),
    );
    if found > max {
        return Err(BlockError::TooMuchData { max, found });
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
) -> Result<Transition, BlockError> {
    let block = block.verify_child(parent)?;
    let Execution {
        ledger,
        events,
        refused,
        ..
    } = execute(
        state,
        block.header.height.0,
        &parent.hash(),
        block.transactions.clone(),
    );
    if let Some((tx, error)) = refused.into_iter().next() {
        let index = block
            .transactions
            .iter()
            .position(|t| *t == tx)
            .unwrap_or(0);
        return Err(BlockError::InvalidTransaction { index, error });
    }
    settle(block, ledger, events)
}

/// Commits to a payload that carries no `das` blobs (a [`propose_child`] commitment for
/// chains without them; fails with [`BlockError::MissingBlob`] otherwise).
pub fn without_das_blobs(payload: &BlockPayload, dims: u8) -> Result<DataHeader, BlockError> {
    DataHeader::of_payload(payload, dims, &DasBlobs::new())
}

/// Builds and signs the child of `parent` from `candidates`, leaving out the transactions
/// the ledger refuses (returned with the reason). `commit` commits to the payload of the
/// transactions kept, in the ledger's `data_dims` dimensions (see
/// [`DataHeader::of_payload`]); a proposer that encodes the payload on the way keeps the
/// encoding to serve cells from.
pub fn propose_child(
    key: &SigningKey,
    parent: &Header,
    state: &LedgerState,
    candidates: Vec<SignedTransaction>,
    timestamp_ms: u64,
    commit: impl FnOnce(&BlockPayload, u8) -> Result<DataHeader, BlockError>,
) -> Result<(Transition, Vec<(SignedTransaction, TxError)>), BlockError> {
    let height = parent.height.next().ok_or(BlockError::HeightOverflow)?;
    let Execution {
        ledger,
        events,
        applied,
        refused,
    } = execute(state, height.0, &parent.hash(), candidates);
    let data = commit(&BlockPayload::of(&applied), ledger.params().data_dims)?;
    let block = Block::sign_new(
        key,
        Some(parent),
        timestamp_ms,
        applied,
        ledger.state_root(),
        None,
        data,
    )?;
    let block = block.verify_child(parent)?;
    Ok((settle(block, ledger, events)?, refused))
}

#[cfg(test)]
mod tests;
