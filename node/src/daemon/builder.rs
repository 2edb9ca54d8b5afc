//! Building this validator's proposals. A block is cut from the pending transactions on
//! top of the block consensus says to extend; the payloads of `das` blobs are encoded in
//! the background, so a proposal never waits for encoding: the blobs ride in a later
//! proposal of this validator, whose payload is the one encoded.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use nexus_consensus::{PublicKey, Round};
use nexus_das::{CodeParams, ExtendedData, ProofStrategy};
use nexus_storage::block::{BlockPayload, DasBlobs, DataHeader};
use nexus_storage::chain::propose_child;
use nexus_storage::ledger::{LedgerState, PolicySpec, SignedTransaction, TxError};
use nexus_storage::merkle::Digest;
use nexus_storage::{BlobRegistration, BlockError, Header, Transition, MAX_TRANSACTIONS_PER_BLOCK};
use tokio::task::JoinHandle;

use super::chain::{enqueue, now_ms};
use super::{fetch, Node};

/// A payload of `das` blobs encoded for a block of their own.
struct Encoded {
    payload: BlockPayload,
    dims: u8,
    header: DataHeader,
    data: Option<ExtendedData>,
}

/// `das` blob registrations whose payload is being encoded in the background.
struct Preparing {
    transactions: Vec<SignedTransaction>,
    ids: HashSet<Digest>,
    blobs: DasBlobs,
    task: JoinHandle<Result<Encoded, BlockError>>,
}

/// The state of this validator's block building between its proposals.
#[derive(Default)]
pub(crate) struct Builder {
    preparing: Option<Preparing>,
}

impl Builder {
    /// The block this validator proposes for `round` on top of `parent` (ledger `state`):
    /// a payload encoded meanwhile if one is ready, else the pending transactions (whose
    /// `das` blobs start encoding for a later proposal). The block is kept (with its
    /// encoding) before it is returned, so its cells can be served at once.
    pub(crate) async fn build(
        &mut self,
        node: &Arc<Node>,
        proposer: PublicKey,
        round: Round,
        parent: Header,
        state: Arc<LedgerState>,
    ) -> Result<Transition, BlockError> {
        if self
            .preparing
            .as_ref()
            .is_some_and(|p| p.task.is_finished())
        {
            if let Some(ready) = self.preparing.take() {
                match ready.task.await {
                    Ok(Ok(encoded)) => {
                        let slot = (proposer, round, parent, state);
                        return propose(node, slot, ready.transactions, ready.blobs, Some(encoded))
                            .await;
                    }
                    Ok(Err(e)) => tracing::error!("cannot encode a payload of das blobs: {e}"),
                    Err(e) => tracing::error!("encoding a payload of das blobs stopped: {e}"),
                }
            }
        }
        let batch = take_batch(node, self.preparing.as_ref());
        let (das, others): (Vec<_>, Vec<_>) = batch.into_iter().partition(is_das);
        if self.preparing.is_some() {
            // One payload at a time: these wait for the block after the one in progress.
            for tx in das {
                enqueue(node, tx);
            }
        } else if !das.is_empty() {
            self.preparing = prepare(node, &state, das).await;
        }
        propose(
            node,
            (proposer, round, parent, state),
            others,
            DasBlobs::new(),
            None,
        )
        .await
    }
}

/// Pending transactions for the next block, less those already included or being
/// prepared (their senders resubmit them until they are included).
fn take_batch(node: &Node, preparing: Option<&Preparing>) -> Vec<SignedTransaction> {
    let batch: Vec<SignedTransaction> = {
        let mut pool = node.mempool.lock().unwrap_or_else(|p| p.into_inner());
        let take = pool.len().min(MAX_TRANSACTIONS_PER_BLOCK);
        pool.drain(..take).collect()
    };
    batch
        .into_iter()
        .filter(|tx| matches!(node.store.transaction_location(&tx.id()), Ok(None)))
        .filter(|tx| preparing.is_none_or(|p| !p.ids.contains(&tx.id())))
        .collect()
}

fn is_das(tx: &SignedTransaction) -> bool {
    BlobRegistration::of(tx).is_some_and(|r| r.policy == PolicySpec::Das)
}

/// Gets the bytes of `das` registrations and starts encoding their payload.
async fn prepare(
    node: &Node,
    state: &LedgerState,
    das: Vec<SignedTransaction>,
) -> Option<Preparing> {
    let (transactions, blobs) = stage_das_blobs(node, das, state.params().max_block_data).await;
    if transactions.is_empty() {
        return None;
    }
    let payload = BlockPayload::of(&transactions);
    let dims = state.params().data_dims;
    let task_blobs = blobs.clone();
    let task = tokio::task::spawn_blocking(move || {
        let encode = || encode_payload(&payload, dims, &task_blobs);
        let (header, data) = match background_pool() {
            Some(pool) => pool.install(encode)?,
            None => encode()?,
        };
        Ok(Encoded {
            payload,
            dims,
            header,
            data,
        })
    });
    Some(Preparing {
        ids: transactions.iter().map(SignedTransaction::id).collect(),
        transactions,
        blobs,
        task,
    })
}

/// Threads for background encoding, apart from rayon's global pool: blocks cut meanwhile
/// commit to their own (small) payloads on the global pool, and must not queue behind the
/// seconds of work of a large one. `None` if the threads cannot be started (the global
/// pool is used then).
fn background_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("das-encode-{i}"))
            .build()
            .map_err(|e| tracing::warn!("no separate threads for encoding: {e}"))
            .ok()
    })
    .as_ref()
}

/// Who proposes, for which round, on which parent and its ledger state.
type Slot = (PublicKey, Round, Header, Arc<LedgerState>);

/// Builds the block from `candidates` and keeps its encoding. `encoded` is used when the
/// transactions the ledger accepts have exactly its payload; otherwise the payload is
/// encoded here.
async fn propose(
    node: &Arc<Node>,
    (proposer, round, parent, state): Slot,
    candidates: Vec<SignedTransaction>,
    blobs: DasBlobs,
    encoded: Option<Encoded>,
) -> Result<Transition, BlockError> {
    let built = tokio::task::spawn_blocking(move || {
        let mut kept = None;
        let built = propose_child(
            proposer,
            round,
            &parent,
            &state,
            candidates,
            now_ms(),
            |payload, dims| match encoded {
                Some(e) if e.payload == *payload && e.dims == dims => {
                    kept = e.data;
                    Ok(e.header)
                }
                _ => {
                    let (header, data) = encode_payload(payload, dims, &blobs)?;
                    kept = data;
                    Ok(header)
                }
            },
        );
        built.map(|b| (b, kept))
    })
    .await
    .map_err(|e| BlockError::Data(nexus_consensus::DataError(e.to_string())))?;
    let ((step, refused), encoding) = built?;
    // Keep transactions that are only early (a gap in their sender's nonces).
    for (tx, error) in refused {
        match error {
            TxError::WrongNonce { expected, found } if found > expected => enqueue(node, tx),
            e => tracing::debug!(sender = %tx.tx.sender, "transaction refused: {e}"),
        }
    }
    // Kept before the block is announced, so its cells can be served as soon as anyone
    // sees its header.
    if let Some(data) = encoding {
        node.encodings
            .insert(step.block.header.height, Arc::new(data));
    }
    Ok(step)
}

/// On a proposer: commits to a block's payload (the bytes of its `das` blobs taken from
/// `blobs`) by encoding it, and returns the encoding to serve cells from; none for an empty
/// payload.
fn encode_payload(
    payload: &BlockPayload,
    dims: u8,
    blobs: &DasBlobs,
) -> Result<(DataHeader, Option<ExtendedData>), BlockError> {
    let bytes = payload.assemble(blobs)?;
    if bytes.is_empty() {
        return Ok((DataHeader::commit(&bytes, dims)?, None));
    }
    let started = std::time::Instant::now();
    let data_error = |e: String| BlockError::Data(nexus_consensus::DataError(e));
    let params =
        CodeParams::for_data(dims, bytes.len() as u64).map_err(|e| data_error(e.to_string()))?;
    let data = ExtendedData::encode_with(&bytes, params, ProofStrategy::FASTEST)
        .map_err(|e| data_error(e.to_string()))?;
    tracing::info!(
        rows = params.extended_rows(),
        ms = started.elapsed().as_millis() as u64,
        "encoded a payload to propose"
    );
    let header = DataHeader {
        root: data.root(),
        params,
    };
    Ok((header, Some(data)))
}

/// Gets the bytes of the `das` blobs `batch` registers, up to `max_data` bytes in all.
/// Transactions over the cap wait in the pool for the next payload; those whose bytes no
/// peer serves are dropped (their sender's node submits them again).
async fn stage_das_blobs(
    node: &Node,
    batch: Vec<SignedTransaction>,
    max_data: u64,
) -> (Vec<SignedTransaction>, DasBlobs) {
    let mut blobs = DasBlobs::new();
    let mut kept = Vec::with_capacity(batch.len());
    let mut total = 0u64;
    for tx in batch {
        let Some(reg) = BlobRegistration::of(&tx).filter(|r| r.policy == PolicySpec::Das) else {
            kept.push(tx);
            continue;
        };
        // One blob over the cap is kept, for the ledger to refuse with the reason.
        if total > 0 && total.saturating_add(reg.size) > max_data {
            enqueue(node, tx);
            continue;
        }
        if reg.size > max_data {
            kept.push(tx);
            continue;
        }
        match fetch::blob_bytes(node, &reg).await {
            Ok(bytes) => {
                total += reg.size;
                blobs.insert(reg.blob_id, Arc::new(bytes));
                kept.push(tx);
            }
            Err(e) => tracing::warn!(blob = %reg.blob_id, "das blob left out of the block: {e}"),
        }
    }
    (kept, blobs)
}
