//! JSON bodies of the HTTP API, shared by the daemon and the CLI client.

use nexus_consensus::EngineStatus;

use crate::daemon::{Series, Summary};
use nexus_storage::ledger::{
    Account, Amount, ComputeProver, Epoch, LedgerParams, Orchestrator, Provider,
};
use nexus_storage::{BlobId, BlockHash, Digest, Height, PublicKey};
use serde::{Deserialize, Serialize};

/// Where a resumable upload (`/v1/uploads/{id}`) stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UploadView {
    /// The session's id, which resumes it.
    pub(crate) upload: String,
    /// Bytes received so far: the next request sends from here.
    pub(crate) offset: u64,
    /// Bytes the upload declared.
    pub(crate) size: u64,
    /// Policy the blob is registered with once complete.
    pub(crate) policy: String,
    /// Seconds left before an unused session is given up.
    pub(crate) lease_secs: u64,
}

/// Returned by `PUT /v1/blobs` once the blob is stored, persisted and registered in a
/// final block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Receipt {
    /// The blob's identity.
    pub(crate) blob_id: BlobId,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// The final block that registers it.
    pub(crate) height: Height,
    /// That block's header hash.
    pub(crate) block_hash: BlockHash,
    /// Position of the registration in the block.
    pub(crate) index: u32,
    /// The node's finalized height when it answered (at or above `height`).
    pub(crate) finalized_height: Height,
    /// The validator that proposed the block.
    pub(crate) proposer: PublicKey,
    /// How the network keeps it (`replicated`, `erasure` or `das`).
    pub(crate) policy: String,
    /// For a `das` blob: how long this node took to encode it (cells and proofs), in ms.
    #[serde(default)]
    pub(crate) encode_ms: Option<u64>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Status {
    pub(crate) peer_id: String,
    pub(crate) listen_addrs: Vec<String>,
    pub(crate) peers: Vec<String>,
    pub(crate) banned_peers: Vec<String>,
    /// This node's validator key, if it takes part in consensus.
    pub(crate) validator: Option<PublicKey>,
    /// The node's ledger account.
    pub(crate) account: PublicKey,
    pub(crate) balance: Amount,
    pub(crate) epoch: Option<Epoch>,
    pub(crate) state_root: Option<Digest>,
    /// The chain's id.
    pub(crate) chain_id: Option<String>,
    /// Validators in the committee.
    pub(crate) validators: Option<usize>,
    pub(crate) genesis: Option<BlockHash>,
    /// The finalized height: the last block this node holds, final with its proof.
    pub(crate) height: Option<Height>,
    /// The highest height this node knows of: proposed blocks (on validators) or final
    /// blocks announced by peers that it is still fetching.
    pub(crate) latest_height: Option<Height>,
    pub(crate) tip_hash: Option<BlockHash>,
    pub(crate) blobs_complete: u64,
    pub(crate) blobs_partial: u64,
    pub(crate) used_bytes: u64,
    /// Uploads waiting for their registration (not served, collected if never registered).
    #[serde(default)]
    pub(crate) staged_bytes: u64,
    /// Uploads still being received (open resumable sessions included).
    #[serde(default)]
    pub(crate) receiving_bytes: u64,
    pub(crate) capacity: Option<u64>,
    pub(crate) disk_bytes: u64,
    /// Chunks found corrupt on disk since start, discarded and fetched again from peers.
    pub(crate) corrupt_chunks_found: u64,
    /// What keeps the node from doing its job (a full disk, a store that cannot write);
    /// empty when healthy.
    #[serde(default)]
    pub(crate) problems: Vec<String>,
    /// Bytes of verified chunk data fetched from peers since start.
    pub(crate) bytes_fetched: u64,
    /// Cells of block payloads this node keeps as a custodian.
    pub(crate) custody_cells: u64,
}

/// `GET /v1/blocks/{height}/cells`: a block's extended grid as one node sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GridView {
    /// The block.
    pub(crate) height: Height,
    /// Its DataRoot (hex).
    pub(crate) root: String,
    /// Dimensions of the code.
    pub(crate) dims: u8,
    /// Bytes of payload.
    pub(crate) data_len: u64,
    /// One string per extended row, one character per cell: `H` held by the node, `S`
    /// sampled from a peer and verified, `M` asked for and missing, `.` not checked.
    pub(crate) rows: Vec<String>,
}

/// `GET /v1/blobs/{id}/info`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BlobInfo {
    pub(crate) blob_id: BlobId,
    pub(crate) size: u64,
    /// This node holds the blob whole.
    pub(crate) complete: bool,
    /// Chunks of a copy this node should hold still missing (none for a `das` blob, which
    /// this node keeps as custody cells unless it was put through it).
    pub(crate) missing_chunks: u64,
    pub(crate) registered_at: Option<Height>,
    /// The policy it is registered with, once it is.
    #[serde(default)]
    pub(crate) policy: Option<String>,
}

/// Every error response: a machine-readable kind and a sentence for people.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) kind: String,
    pub(crate) error: String,
}

/// `GET /v1/accounts/{key}`: an account and its roles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccountView {
    pub(crate) key: PublicKey,
    pub(crate) account: Account,
    pub(crate) orchestrator: Option<Orchestrator>,
    pub(crate) provider: Option<Provider>,
    /// Its compute offer (delegator, orchestrator), if it made one.
    pub(crate) compute: Option<ComputeProver>,
    /// Bytes of shards placed on this account's providers, if it is an orchestrator.
    pub(crate) stored_bytes: u64,
}

/// `GET /v1/ledger`: the ledger at the tip.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LedgerView {
    pub(crate) height: Height,
    pub(crate) epoch: Epoch,
    pub(crate) state_root: Digest,
    pub(crate) total_supply: u128,
    pub(crate) escrow: Amount,
    pub(crate) burned: Amount,
    pub(crate) slashed: Amount,
    pub(crate) params: LedgerParams,
    pub(crate) orchestrators: Vec<(PublicKey, Orchestrator)>,
}

/// `GET /v1/chain`: what a verifier trusts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChainView {
    /// The genesis header.
    pub(crate) genesis: nexus_consensus::Header,
    /// The chain spec it names.
    pub(crate) spec: nexus_consensus::ChainSpec,
}

/// `GET /v1/validator`: a validator's view of consensus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ValidatorView {
    /// The engine's state.
    pub(crate) engine: EngineStatus,
    /// The finalized height.
    pub(crate) finalized_height: Option<Height>,
    /// Blocks validated and not final yet.
    pub(crate) pending_blocks: usize,
    /// Proposal-to-commit times of this validator's recent blocks, in ms.
    pub(crate) commit_ms: Option<Summary>,
    /// Times to build its recent proposals without data, in ms.
    pub(crate) build_ms: Option<Summary>,
    /// Times to build its recent proposals carrying a das blob, in ms.
    pub(crate) build_with_data_ms: Option<Summary>,
    /// The commit times themselves (most recent 4,096) and how many were ever taken.
    pub(crate) commits: Series,
}

/// `POST /v1/transactions` answer: where the node's transaction was included.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TxReceipt {
    pub(crate) height: Height,
    pub(crate) index: u32,
}

/// `POST /v1/compute/jobs` body: a program and an input (registered blobs) to prove.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobRequest {
    pub(crate) program: nexus_storage::BlobId,
    pub(crate) input: nexus_storage::BlobId,
    pub(crate) max_cycles: u64,
    /// Paid to whoever anchors the proven result.
    pub(crate) reward: u64,
    /// Blocks the job may take before it expires.
    pub(crate) lifetime: u64,
}

/// `POST /v1/compute/jobs` answer: the job, final in block `height`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobReceipt {
    pub(crate) job: nexus_storage::Digest,
    pub(crate) height: Height,
    pub(crate) segments: u32,
    pub(crate) cycles: u64,
    pub(crate) program_commit: String,
}

/// `GET /v1/compute/jobs/{id}` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobView {
    pub(crate) id: nexus_storage::Digest,
    /// The node's final height.
    pub(crate) height: Height,
    /// The ledger's record.
    pub(crate) job: nexus_storage::ledger::ComputeJob,
    /// The peer id of the node whose view `drive` is (the job's driver).
    #[serde(default)]
    pub(crate) driver: Option<String>,
    /// The proof tree as its driver sees it (none if no driver answered).
    pub(crate) drive: Option<crate::daemon::DriveView>,
    /// The peer id (the `/p2p/` part of a node's peer address) of every prover the
    /// ledger lists, by account key.
    #[serde(default)]
    pub(crate) provers: std::collections::BTreeMap<String, String>,
}

/// Response header of a `das` blob download: cells fetched from peers to rebuild it.
pub(crate) const CELLS_FETCHED: &str = "x-nexus-cells-fetched";
/// Response header of a `das` blob download: bytes received for those cells.
pub(crate) const CELL_BYTES_FETCHED: &str = "x-nexus-cell-bytes-fetched";
