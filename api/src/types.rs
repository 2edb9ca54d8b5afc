//! JSON bodies of the HTTP API, shared by the daemon and the CLI client.

use nexus_consensus::EngineStatus;

use crate::stats::{Series, Summary};
use nexus_storage::ledger::{
    Account, Amount, ComputeProver, Epoch, LedgerParams, Orchestrator, Provider,
};
use nexus_storage::{BlobId, BlockHash, Digest, Height, PublicKey};
use serde::{Deserialize, Serialize};

/// Where a resumable upload (`/v1/uploads/{id}`) stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadView {
    /// The session's id, which resumes it.
    pub upload: String,
    /// Bytes received so far: the next request sends from here.
    pub offset: u64,
    /// Bytes the upload declared.
    pub size: u64,
    /// Policy the blob is registered with once complete.
    pub policy: String,
    /// Seconds left before an unused session is given up.
    pub lease_secs: u64,
}

/// Returned by `PUT /v1/blobs` once the blob is stored, persisted and registered in a
/// final block.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipt {
    /// The blob's identity.
    pub blob_id: BlobId,
    /// Its size in bytes.
    pub size: u64,
    /// The final block that registers it.
    pub height: Height,
    /// That block's header hash.
    pub block_hash: BlockHash,
    /// Position of the registration in the block.
    pub index: u32,
    /// The node's finalized height when it answered (at or above `height`).
    pub finalized_height: Height,
    /// The validator that proposed the block.
    pub proposer: PublicKey,
    /// How the network keeps it (`replicated`, `erasure` or `das`).
    pub policy: String,
    /// For a `das` blob: how long this node took to encode it (cells and proofs), in ms.
    #[serde(default)]
    pub encode_ms: Option<u64>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// The node's libp2p peer id.
    pub peer_id: String,
    /// Addresses it listens on for peers.
    pub listen_addrs: Vec<String>,
    /// Peers connected now.
    pub peers: Vec<String>,
    /// Peers banned for misbehaviour.
    pub banned_peers: Vec<String>,
    /// This node's validator key, if it takes part in consensus.
    pub validator: Option<PublicKey>,
    /// The node's ledger account.
    pub account: PublicKey,
    /// The account's balance.
    pub balance: Amount,
    /// The ledger's epoch at the tip.
    pub epoch: Option<Epoch>,
    /// The ledger's state root at the tip.
    pub state_root: Option<Digest>,
    /// The chain's id.
    pub chain_id: Option<String>,
    /// Validators in the committee.
    pub validators: Option<usize>,
    /// The chain's genesis hash.
    pub genesis: Option<BlockHash>,
    /// The finalized height: the last block this node holds, final with its proof.
    pub height: Option<Height>,
    /// The highest height this node knows of: proposed blocks (on validators) or final
    /// blocks announced by peers that it is still fetching.
    pub latest_height: Option<Height>,
    /// The hash of the finalized tip's header.
    pub tip_hash: Option<BlockHash>,
    /// Blobs this node holds whole.
    pub blobs_complete: u64,
    /// Blobs this node holds part of (still fetching).
    pub blobs_partial: u64,
    /// Bytes of blob content stored.
    pub used_bytes: u64,
    /// Uploads waiting for their registration (not served, collected if never registered).
    #[serde(default)]
    pub staged_bytes: u64,
    /// Uploads still being received (open resumable sessions included).
    #[serde(default)]
    pub receiving_bytes: u64,
    /// The storage quota, if the operator set one.
    pub capacity: Option<u64>,
    /// Bytes the data dir takes on disk.
    pub disk_bytes: u64,
    /// Chunks found corrupt on disk since start, discarded and fetched again from peers.
    pub corrupt_chunks_found: u64,
    /// What keeps the node from doing its job (a full disk, a store that cannot write);
    /// empty when healthy.
    #[serde(default)]
    pub problems: Vec<String>,
    /// Bytes of verified chunk data fetched from peers since start.
    pub bytes_fetched: u64,
    /// Cells of block payloads this node keeps as a custodian.
    pub custody_cells: u64,
}

/// `GET /v1/blocks/{height}/cells`: a block's extended grid as one node sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GridView {
    /// The block.
    pub height: Height,
    /// Its DataRoot (hex).
    pub root: String,
    /// Dimensions of the code.
    pub dims: u8,
    /// Bytes of payload.
    pub data_len: u64,
    /// One string per extended row, one character per cell: `H` held by the node, `S`
    /// sampled from a peer and verified, `M` asked for and missing, `.` not checked.
    pub rows: Vec<String>,
}

/// `GET /v1/blobs/{id}/info`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlobInfo {
    /// The blob's id.
    pub blob_id: BlobId,
    /// Its size in bytes.
    pub size: u64,
    /// This node holds the blob whole.
    pub complete: bool,
    /// Chunks of a copy this node should hold still missing (none for a `das` blob, which
    /// this node keeps as custody cells unless it was put through it).
    pub missing_chunks: u64,
    /// The final block that registers it, once one does.
    pub registered_at: Option<Height>,
    /// The policy it is registered with, once it is.
    #[serde(default)]
    pub policy: Option<String>,
}

/// Every error response: a machine-readable kind and a sentence for people.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable kind (`not_found`, `busy`, `disk_full`...).
    pub kind: String,
    /// What went wrong and what to do, for people.
    pub error: String,
}

/// `GET /v1/accounts/{key}`: an account and its roles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountView {
    /// The account's key.
    pub key: PublicKey,
    /// Its balance and nonce.
    pub account: Account,
    /// Its orchestrator record, if it is one.
    pub orchestrator: Option<Orchestrator>,
    /// Its provider record, if it is one.
    pub provider: Option<Provider>,
    /// Its compute offer (delegator, orchestrator), if it made one.
    pub compute: Option<ComputeProver>,
    /// Bytes of shards placed on this account's providers, if it is an orchestrator.
    pub stored_bytes: u64,
}

/// `GET /v1/ledger`: the ledger at the tip.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerView {
    /// The tip's height.
    pub height: Height,
    /// The epoch at the tip.
    pub epoch: Epoch,
    /// The state root at the tip.
    pub state_root: Digest,
    /// Every token: balances, stakes, escrow and sinks.
    pub total_supply: u128,
    /// Fees held for blobs' future epochs.
    pub escrow: Amount,
    /// Fees burned.
    pub burned: Amount,
    /// Stake slashed.
    pub slashed: Amount,
    /// The ledger's parameters.
    pub params: LedgerParams,
    /// Every orchestrator.
    pub orchestrators: Vec<(PublicKey, Orchestrator)>,
}

/// `GET /v1/chain`: what a verifier trusts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainView {
    /// The genesis header.
    pub genesis: nexus_consensus::Header,
    /// The chain spec it names.
    pub spec: nexus_consensus::ChainSpec,
}

/// `GET /v1/validator`: a validator's view of consensus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidatorView {
    /// The engine's state.
    pub engine: EngineStatus,
    /// The finalized height.
    pub finalized_height: Option<Height>,
    /// Blocks validated and not final yet.
    pub pending_blocks: usize,
    /// Proposal-to-commit times of this validator's recent blocks, in ms.
    pub commit_ms: Option<Summary>,
    /// Times to build its recent proposals without data, in ms.
    pub build_ms: Option<Summary>,
    /// Times to build its recent proposals carrying a das blob, in ms.
    pub build_with_data_ms: Option<Summary>,
    /// The commit times themselves (most recent 4,096) and how many were ever taken.
    pub commits: Series,
}

/// `POST /v1/transactions` answer: where the node's transaction was included.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxReceipt {
    /// The final block that includes it.
    pub height: Height,
    /// Its position in the block.
    pub index: u32,
}

/// `POST /v1/compute/jobs` body: a program and an input (registered blobs) to prove.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRequest {
    /// The program (a registered RV32IM ELF).
    pub program: nexus_storage::BlobId,
    /// Its input.
    pub input: nexus_storage::BlobId,
    /// Most cycles the run may take.
    pub max_cycles: u64,
    /// Paid to whoever anchors the proven result.
    pub reward: u64,
    /// Blocks the job may take before it expires.
    pub lifetime: u64,
}

/// `POST /v1/compute/jobs` answer: the job, final in block `height`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobReceipt {
    /// The job's id.
    pub job: nexus_storage::Digest,
    /// The final block that records it.
    pub height: Height,
    /// Segments the run was cut into.
    pub segments: u32,
    /// Cycles the run took.
    pub cycles: u64,
    /// The program's commitment the proof must state (hex).
    pub program_commit: String,
}

/// `GET /v1/compute/jobs/{id}` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobView {
    /// The job's id.
    pub id: nexus_storage::Digest,
    /// The node's final height.
    pub height: Height,
    /// The ledger's record.
    pub job: nexus_storage::ledger::ComputeJob,
    /// The peer id of the node whose view `drive` is (the job's driver).
    #[serde(default)]
    pub driver: Option<String>,
    /// The proof tree as its driver sees it (none if no driver answered).
    pub drive: Option<nexus_compute::progress::DriveView>,
    /// The peer id (the `/p2p/` part of a node's peer address) of every prover the
    /// ledger lists, by account key.
    #[serde(default)]
    pub provers: std::collections::BTreeMap<String, String>,
}

/// Response header of a `das` blob download: cells fetched from peers to rebuild it.
pub const CELLS_FETCHED: &str = "x-nexus-cells-fetched";
/// Response header of a `das` blob download: bytes received for those cells.
pub const CELL_BYTES_FETCHED: &str = "x-nexus-cell-bytes-fetched";
