//! The ledger's state and its transitions: transactions, then the end of each block
//! (challenge deadlines, evictions and slashing) and of each epoch (fees, expiry, unbonding,
//! new challenges). Deterministic: ordered maps, checked integer arithmetic, no clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::tx::{SignedTransaction, Transaction, TxError, TxKind};
use super::types::{
    Account, Amount, Challenge, ComputeJob, ComputeProver, Epoch, Genesis, LedgerParams,
    Orchestrator, PolicySpec, Provider, StoredBlob, Unbonding, BPS,
};
use super::verifier::ComputeVerifier;
use crate::blob::{BlobId, BlobLayout};
use crate::erasure::ErasureLayout;
use crate::keys::PublicKey;
use crate::merkle::Digest;
use nexus_consensus::ChainTag;
use nexus_das::CodeParams;

mod compute;
mod duties;
mod epoch;

pub use compute::{
    job_id, prepare_execution, receipt_message, MAX_CREDITED_NODES, MAX_CREDITS, MAX_JOB_LIFETIME,
    MAX_JOB_SEGMENTS,
};
pub use duties::{ChallengeDuty, ShardDuty};

const STATE_TAG: &[u8] = b"nexus/state/v1";
const MIB: u128 = 1 << 20;

/// Something the end of a block did, for nodes to act on and operators to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerEvent {
    /// A new epoch began.
    EpochStarted(Epoch),
    /// A provider must prove leaves of a shard.
    ChallengeIssued {
        /// Blob.
        blob_id: BlobId,
        /// Shard.
        shard: u16,
        /// Provider.
        provider: PublicKey,
    },
    /// A challenge was not answered correctly in time.
    ChallengeFailed {
        /// Blob.
        blob_id: BlobId,
        /// Shard.
        shard: u16,
        /// Provider.
        provider: PublicKey,
    },
    /// A provider was evicted and its orchestrator slashed.
    ProviderEvicted {
        /// Provider.
        provider: PublicKey,
        /// Its orchestrator.
        orchestrator: PublicKey,
        /// Stake slashed.
        slashed: Amount,
    },
    /// A shard changed hands (repair): `to` must rebuild it.
    ShardMoved {
        /// Blob.
        blob_id: BlobId,
        /// Shard.
        shard: u16,
        /// New holder, or `None` if no provider had room.
        to: Option<PublicKey>,
    },
    /// A blob's paid epochs ran out.
    BlobExpired(BlobId),
    /// A compute job was not proven by its deadline; its reward went back.
    JobExpired(Digest),
}

/// Why a genesis is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// An account appears twice.
    #[error("account {0} appears twice in the genesis")]
    DuplicateAccount(PublicKey),
    /// Parameters make no sense.
    #[error("invalid genesis parameters: {0}")]
    BadParams(&'static str),
}

/// The replicated ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    chain: ChainTag,
    params: LedgerParams,
    accounts: BTreeMap<PublicKey, Account>,
    orchestrators: BTreeMap<PublicKey, Orchestrator>,
    providers: BTreeMap<PublicKey, Provider>,
    blobs: BTreeMap<BlobId, StoredBlob>,
    challenges: BTreeMap<(BlobId, u16, Epoch), Challenge>,
    #[serde(default)]
    jobs: BTreeMap<Digest, ComputeJob>,
    #[serde(default)]
    provers: BTreeMap<PublicKey, ComputeProver>,
    escrow: Amount,
    burned: Amount,
    slashed: Amount,
    height: u64,
    epoch: Epoch,
}

fn add(a: Amount, b: Amount) -> Result<Amount, TxError> {
    a.checked_add(b).ok_or(TxError::Overflow)
}

/// `a * b / c` in 128 bits, rounded up.
fn mul_div_ceil(a: u64, b: u64, c: u128) -> Option<u64> {
    u64::try_from((u128::from(a) * u128::from(b)).div_ceil(c)).ok()
}

/// A deterministic 64-bit draw from `parts`.
fn draw(parts: &[&[u8]]) -> u64 {
    let d = Digest::of(parts);
    u64::from_be_bytes(d.0[..8].try_into().unwrap_or([0; 8]))
}

impl LedgerState {
    /// The state at genesis of chain `chain`: only transactions signed for it apply.
    pub fn genesis(genesis: &Genesis, chain: ChainTag) -> Result<LedgerState, GenesisError> {
        let p = &genesis.params;
        if p.epoch_blocks == 0
            || p.data_shards == 0
            || p.slash_bps > BPS
            || !(1..=3).contains(&p.data_dims)
        {
            return Err(GenesisError::BadParams(
                "epoch_blocks and data_shards must be positive, slash_bps at most 10000, \
                 data_dims 1 to 3",
            ));
        }
        if CodeParams::for_data(p.data_dims, p.max_block_data).is_err() {
            return Err(GenesisError::BadParams(
                "max_block_data does not fit the code of data_dims dimensions \
                 (at most 126,976 bytes, one row, for data_dims 1)",
            ));
        }
        let mut accounts = BTreeMap::new();
        for (key, balance) in &genesis.balances {
            let fresh = Account {
                balance: *balance,
                nonce: 0,
            };
            if accounts.insert(*key, fresh).is_some() {
                return Err(GenesisError::DuplicateAccount(*key));
            }
        }
        Ok(LedgerState {
            chain,
            params: genesis.params.clone(),
            accounts,
            orchestrators: BTreeMap::new(),
            providers: BTreeMap::new(),
            blobs: BTreeMap::new(),
            challenges: BTreeMap::new(),
            jobs: BTreeMap::new(),
            provers: BTreeMap::new(),
            escrow: 0,
            burned: 0,
            slashed: 0,
            height: 0,
            epoch: Epoch(0),
        })
    }

    /// The chain whose transactions this ledger applies.
    pub fn chain(&self) -> ChainTag {
        self.chain
    }

    /// Parameters.
    pub fn params(&self) -> &LedgerParams {
        &self.params
    }

    /// Current epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Height of the last block applied.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// An account (empty if never seen).
    pub fn account(&self, key: &PublicKey) -> Account {
        self.accounts.get(key).copied().unwrap_or_default()
    }

    /// An orchestrator.
    pub fn orchestrator(&self, key: &PublicKey) -> Option<&Orchestrator> {
        self.orchestrators.get(key)
    }

    /// Every orchestrator.
    pub fn orchestrators(&self) -> impl Iterator<Item = (&PublicKey, &Orchestrator)> {
        self.orchestrators.iter()
    }

    /// A provider.
    pub fn provider(&self, key: &PublicKey) -> Option<&Provider> {
        self.providers.get(key)
    }

    /// A stored blob.
    pub fn blob(&self, id: &BlobId) -> Option<&StoredBlob> {
        self.blobs.get(id)
    }

    /// Every stored blob.
    pub fn blobs(&self) -> impl Iterator<Item = (&BlobId, &StoredBlob)> {
        self.blobs.iter()
    }

    /// Open challenges addressed to `provider`: (blob, shard, epoch, challenge).
    pub fn challenges_for<'a>(
        &'a self,
        provider: &'a PublicKey,
    ) -> impl Iterator<Item = (BlobId, u16, Epoch, &'a Challenge)> + 'a {
        self.challenges
            .iter()
            .filter(move |(_, c)| c.provider == *provider)
            .map(|((b, s, e), c)| (*b, *s, *e, c))
    }

    /// True when no provider has shards placed on it (tests of expiry).
    #[cfg(test)]
    pub(crate) fn providers_used_is_zero(&self) -> bool {
        self.providers.values().all(|p| p.used == 0)
    }

    /// Fees held for future epochs, burned fees, and slashed stake.
    pub fn sinks(&self) -> (Amount, Amount, Amount) {
        (self.escrow, self.burned, self.slashed)
    }

    /// Every token in existence, wherever it sits (balances, stakes, unbonding, escrow, and
    /// the burned and slashed sinks). Constant across every transition.
    pub fn total_supply(&self) -> u128 {
        let balances: u128 = self.accounts.values().map(|a| u128::from(a.balance)).sum();
        let staked: u128 = self
            .orchestrators
            .values()
            .map(|o| {
                u128::from(o.stake)
                    + o.unbonding
                        .iter()
                        .map(|u| u128::from(u.amount))
                        .sum::<u128>()
            })
            .sum();
        balances
            + staked
            + u128::from(self.escrow)
            + u128::from(self.burned)
            + u128::from(self.slashed)
    }

    /// Commitment to the whole state, carried in block headers.
    pub fn state_root(&self) -> Digest {
        Digest::of(&[STATE_TAG, &postcard::to_stdvec(self).unwrap_or_default()])
    }

    /// The fee for keeping a blob: per epoch and in total.
    pub fn storage_fee(
        &self,
        size: u64,
        policy: &PolicySpec,
        epochs: u64,
    ) -> Result<(Amount, Amount), TxError> {
        let encoded = match policy {
            PolicySpec::Replicated => size,
            // Every cell of the extended grid, 2x per dimension.
            PolicySpec::Das { .. } => size
                .checked_shl(u32::from(self.params.data_dims))
                .ok_or(TxError::Overflow)?,
            PolicySpec::Erasure { shard_size, shards } => shard_size
                .checked_mul(shards.len() as u64)
                .ok_or(TxError::Overflow)?,
        };
        let per_epoch =
            mul_div_ceil(encoded, self.params.price_per_mib_epoch, MIB).ok_or(TxError::Overflow)?;
        let total = per_epoch.checked_mul(epochs).ok_or(TxError::Overflow)?;
        Ok((per_epoch, total))
    }

    /// What `tx` takes from its sender's balance if it applies: its fee plus what its
    /// action moves out (a transfer, a stake, a blob's storage fee for every epoch).
    pub fn upfront_cost(&self, tx: &Transaction) -> Result<Amount, TxError> {
        let action = match &tx.kind {
            TxKind::Transfer { amount, .. } | TxKind::AddStake { amount } => *amount,
            TxKind::RegisterOrchestrator { stake, .. } => *stake,
            TxKind::StoreBlob {
                size,
                policy,
                epochs,
                ..
            } => self.storage_fee(*size, policy, *epochs)?.1,
            TxKind::Unbond { .. }
            | TxKind::JoinOrchestrator { .. }
            | TxKind::LeaveOrchestrator
            | TxKind::ChallengeResponse { .. }
            | TxKind::OfferCompute { .. }
            | TxKind::ComputeResult { .. } => 0,
            TxKind::ComputeJob { reward, .. } => *reward,
        };
        add(tx.fee, action)
    }

    /// The chain, the minimum fee, and a balance that covers the fee: what makes a
    /// transaction payable, short of its signature (the costly part, checked last).
    pub fn check_fee(&self, tx: &Transaction) -> Result<(), TxError> {
        if tx.chain != self.chain {
            return Err(TxError::WrongChain);
        }
        if tx.fee < self.params.min_tx_fee {
            return Err(TxError::FeeTooLow {
                offered: tx.fee,
                min: self.params.min_tx_fee,
            });
        }
        self.debit_check(&tx.sender, tx.fee)
    }

    fn debit_check(&self, who: &PublicKey, amount: Amount) -> Result<(), TxError> {
        let available = self.account(who).balance;
        if available < amount {
            return Err(TxError::InsufficientBalance {
                needed: amount,
                available,
            });
        }
        Ok(())
    }

    /// Checks what makes a transaction payable at all — its chain, its signature, its
    /// fee and that the sender's balance covers the fee, and for a compute result its
    /// proof and credits — without its nonce or action.
    pub fn check_payable(
        &self,
        stx: &SignedTransaction,
        verifier: &dyn ComputeVerifier,
    ) -> Result<(), TxError> {
        self.check_fee(&stx.tx)?;
        if !stx.signature_valid() {
            return Err(TxError::BadSignature);
        }
        self.check_result(&stx.tx.sender, &stx.tx.kind, verifier)
    }

    /// Applies one transaction, burning its fee, only if its action succeeds. On error
    /// nothing changes (for pools and dry runs; blocks use [`LedgerState::execute_tx`]).
    pub fn apply_tx(
        &mut self,
        stx: &SignedTransaction,
        verifier: &dyn ComputeVerifier,
    ) -> Result<(), TxError> {
        self.check_payable(stx, verifier)?;
        self.apply_unsigned(&stx.tx, verifier)
    }

    /// Executes one transaction as a block does. `Err`: it cannot be in a block at all
    /// (another chain, bad signature, fee, balance below the fee, wrong nonce) and nothing
    /// changes. `Ok(outcome)`: its fee is burned and its nonce used whatever its action
    /// does; `outcome` is the action's, which on error changed nothing else.
    pub fn execute_tx(
        &mut self,
        stx: &SignedTransaction,
        verifier: &dyn ComputeVerifier,
    ) -> Result<Result<(), TxError>, TxError> {
        self.check_payable(stx, verifier)?;
        self.run(&stx.tx, FailedAction::Charged, verifier)
    }

    /// Applies `tx` as if its signature had been checked (everything else is, a compute
    /// result's proof included): for an account's dry runs of its own transactions,
    /// never for anything received. On error nothing changes.
    pub fn apply_unsigned(
        &mut self,
        tx: &Transaction,
        verifier: &dyn ComputeVerifier,
    ) -> Result<(), TxError> {
        self.check_result(&tx.sender, &tx.kind, verifier)?;
        self.run(tx, FailedAction::Undone, verifier)?
    }

    /// Charges `tx`'s fee, takes its nonce and carries out its action; a failed action is
    /// charged or undone as `failed` says.
    fn run(
        &mut self,
        tx: &Transaction,
        failed: FailedAction,
        verifier: &dyn ComputeVerifier,
    ) -> Result<Result<(), TxError>, TxError> {
        self.check_fee(tx)?;
        let expected = self.account(&tx.sender).nonce;
        if tx.nonce != expected {
            return Err(TxError::WrongNonce {
                expected,
                found: tx.nonce,
            });
        }
        let sender = tx.sender;
        // Fails early on the (absurd) overflow of the burned sink.
        add(self.burned, tx.fee)?;
        // The action sees the balance left after the fee.
        self.accounts.entry(sender).or_default().balance -= tx.fee;
        let outcome = self.apply_action(sender, &tx.kind, verifier);
        if let (Err(e), FailedAction::Undone) = (&outcome, failed) {
            self.accounts.entry(sender).or_default().balance += tx.fee;
            return Err(e.clone());
        }
        self.burned = self.burned.saturating_add(tx.fee);
        self.accounts.entry(sender).or_default().nonce += 1;
        Ok(outcome)
    }

    /// Carries out `kind` for `sender`. On error nothing changes.
    fn apply_action(
        &mut self,
        sender: PublicKey,
        kind: &TxKind,
        verifier: &dyn ComputeVerifier,
    ) -> Result<(), TxError> {
        match kind {
            TxKind::Transfer { to, amount } => self.transfer(sender, *to, *amount)?,
            TxKind::RegisterOrchestrator {
                stake,
                commission_bps,
            } => self.register_orchestrator(sender, *stake, *commission_bps)?,
            TxKind::AddStake { amount } => self.add_stake(sender, *amount)?,
            TxKind::Unbond { amount } => self.unbond(sender, *amount)?,
            TxKind::JoinOrchestrator {
                orchestrator,
                capacity,
                node,
            } => self.join(sender, *orchestrator, *capacity, node)?,
            TxKind::LeaveOrchestrator => {
                if !self.providers.contains_key(&sender) {
                    return Err(TxError::NotProvider);
                }
                self.remove_provider(&sender, &mut Vec::new());
            }
            TxKind::StoreBlob {
                blob_id,
                size,
                policy,
                epochs,
            } => self.store_blob(sender, *blob_id, *size, policy, *epochs)?,
            TxKind::ChallengeResponse {
                blob_id,
                shard,
                epoch,
                answers,
            } => self.answer(sender, *blob_id, *shard, *epoch, answers)?,
            TxKind::OfferCompute {
                delegator,
                orchestrator,
                node,
            } => self.offer_compute(sender, *delegator, *orchestrator, node)?,
            TxKind::ComputeJob { .. } => {
                if let Some(request) = compute::JobRequest::of(kind) {
                    self.submit_job(sender, request, verifier)?
                }
            }
            TxKind::ComputeResult {
                job,
                output,
                proof_blob,
                credits,
                ..
            } => self.anchor_result(
                sender,
                compute::ResultClaim {
                    job: *job,
                    output: *output,
                    proof_blob: *proof_blob,
                    credits,
                },
            )?,
        }
        // Every path above either failed before mutating or succeeded.
        Ok(())
    }

    fn transfer(&mut self, from: PublicKey, to: PublicKey, amount: Amount) -> Result<(), TxError> {
        if amount == 0 {
            return Err(TxError::InvalidAmount(
                "a transfer must move a positive amount",
            ));
        }
        self.debit_check(&from, amount)?;
        add(self.account(&to).balance, amount)?;
        self.accounts.entry(from).or_default().balance -= amount;
        self.accounts.entry(to).or_default().balance += amount;
        Ok(())
    }

    fn register_orchestrator(
        &mut self,
        who: PublicKey,
        stake: Amount,
        commission_bps: u64,
    ) -> Result<(), TxError> {
        if self.orchestrators.contains_key(&who) {
            return Err(TxError::AlreadyOrchestrator);
        }
        if stake < self.params.min_stake {
            return Err(TxError::StakeTooLow {
                min: self.params.min_stake,
                found: stake,
            });
        }
        if commission_bps > BPS {
            return Err(TxError::BadCommission(commission_bps));
        }
        self.debit_check(&who, stake)?;
        self.accounts.entry(who).or_default().balance -= stake;
        self.orchestrators.insert(
            who,
            Orchestrator {
                stake,
                commission_bps,
                unbonding: Vec::new(),
                providers: Default::default(),
                challenges_passed: 0,
                challenges_failed: 0,
                slashed: 0,
            },
        );
        Ok(())
    }

    fn add_stake(&mut self, who: PublicKey, amount: Amount) -> Result<(), TxError> {
        if amount == 0 {
            return Err(TxError::InvalidAmount(
                "stake must grow by a positive amount",
            ));
        }
        let orch = self
            .orchestrators
            .get(&who)
            .ok_or(TxError::UnknownOrchestrator(who))?;
        add(orch.stake, amount)?;
        self.debit_check(&who, amount)?;
        self.accounts.entry(who).or_default().balance -= amount;
        if let Some(o) = self.orchestrators.get_mut(&who) {
            o.stake += amount;
        }
        Ok(())
    }

    fn unbond(&mut self, who: PublicKey, amount: Amount) -> Result<(), TxError> {
        let min = self.params.min_stake;
        let keeps_data = self.blobs.values().any(|b| b.orchestrator == Some(who));
        let orch = self
            .orchestrators
            .get(&who)
            .ok_or(TxError::UnknownOrchestrator(who))?;
        if amount == 0 || amount > orch.stake {
            return Err(TxError::InvalidAmount(
                "unbond a positive amount no larger than the stake",
            ));
        }
        let left = orch.stake - amount;
        // A stake is either zero (an orchestrator winding down, with no data and no
        // providers) or at least the minimum.
        let winding_down = left == 0 && !keeps_data && orch.providers.is_empty();
        if left < min && !winding_down {
            return Err(TxError::UnbondBelowMinimum { left, min });
        }
        let release = Epoch(self.epoch.0.saturating_add(self.params.unbonding_epochs));
        if let Some(o) = self.orchestrators.get_mut(&who) {
            o.stake = left;
            o.unbonding.push(Unbonding { release, amount });
        }
        Ok(())
    }

    fn join(
        &mut self,
        who: PublicKey,
        orchestrator: PublicKey,
        capacity: u64,
        node: &[u8],
    ) -> Result<(), TxError> {
        if let Some(p) = self.providers.get(&who) {
            return Err(TxError::AlreadyProvider(p.orchestrator));
        }
        let orch = self
            .orchestrators
            .get(&orchestrator)
            .filter(|o| o.stake >= self.params.min_stake)
            .ok_or(TxError::UnknownOrchestrator(orchestrator))?;
        if capacity == 0 || node.is_empty() || node.len() > 128 {
            return Err(TxError::InvalidAmount(
                "capacity must be positive and the node id 1 to 128 bytes",
            ));
        }
        let offered: u64 = orch
            .providers
            .iter()
            .filter_map(|p| self.providers.get(p))
            .map(|p| p.capacity)
            .fold(0u64, u64::saturating_add);
        let requested = offered.saturating_add(capacity);
        let limit = orch.stake.saturating_mul(self.params.bytes_per_stake);
        if requested > limit {
            return Err(TxError::OverCapacity { limit, requested });
        }
        if let Some(o) = self.orchestrators.get_mut(&orchestrator) {
            o.providers.insert(who);
        }
        self.providers.insert(
            who,
            Provider {
                orchestrator,
                capacity,
                used: 0,
                node: node.to_vec(),
                failures: 0,
            },
        );
        Ok(())
    }

    fn store_blob(
        &mut self,
        owner: PublicKey,
        blob_id: BlobId,
        size: u64,
        policy: &PolicySpec,
        epochs: u64,
    ) -> Result<(), TxError> {
        if self.blobs.contains_key(&blob_id) {
            return Err(TxError::AlreadyStored(blob_id));
        }
        if epochs == 0 {
            return Err(TxError::InvalidStorage("pay for at least one epoch".into()));
        }
        BlobLayout::new(size).map_err(|e| TxError::InvalidStorage(e.to_string()))?;
        let (per_epoch, total) = self.storage_fee(size, policy, epochs)?;
        self.debit_check(&owner, total)?;
        let (orchestrator, placement) = match policy {
            PolicySpec::Replicated => (None, Vec::new()),
            PolicySpec::Das { .. } if size > self.params.max_block_data => {
                return Err(TxError::InvalidStorage(format!(
                    "a das blob carries at most {} bytes (the block data size), this one has {size}",
                    self.params.max_block_data
                )))
            }
            PolicySpec::Das { data } => {
                let layout = CodeParams::for_data(self.params.data_dims, size)
                    .map_err(|e| TxError::InvalidStorage(e.to_string()))?;
                if data.params != layout {
                    return Err(TxError::InvalidStorage(format!(
                        "the das commitment's layout {:?} is not that of a {size}-byte blob \
                         in {} dimensions",
                        data.params, self.params.data_dims
                    )));
                }
                (None, Vec::new())
            }
            PolicySpec::Erasure { shard_size, shards } => {
                let p = &self.params;
                let layout = ErasureLayout::new(size, p.data_shards, p.parity_shards)
                    .map_err(|e| TxError::InvalidStorage(e.to_string()))?;
                if *shard_size != layout.shard_size() || shards.len() != layout.total_shards() {
                    return Err(TxError::InvalidStorage(format!(
                        "expected {} shards of {} bytes",
                        layout.total_shards(),
                        layout.shard_size()
                    )));
                }
                let (orch, providers) =
                    self.choose_placement(&blob_id, *shard_size, shards.len())?;
                (Some(orch), providers.into_iter().map(Some).collect())
            }
        };
        // Checks are done: mutate.
        self.accounts.entry(owner).or_default().balance -= total;
        match policy {
            PolicySpec::Replicated | PolicySpec::Das { .. } => {
                self.burned = add(self.burned, total)?
            }
            PolicySpec::Erasure { shard_size, .. } => {
                self.escrow = add(self.escrow, total)?;
                for p in placement.iter().flatten() {
                    if let Some(p) = self.providers.get_mut(p) {
                        p.used = p.used.saturating_add(*shard_size);
                    }
                }
            }
        }
        self.blobs.insert(
            blob_id,
            StoredBlob {
                owner,
                size,
                policy: policy.clone(),
                epochs_left: epochs,
                fee_per_epoch: match policy {
                    PolicySpec::Replicated | PolicySpec::Das { .. } => 0,
                    PolicySpec::Erasure { .. } => per_epoch,
                },
                orchestrator,
                assigned: vec![self.epoch; placement.len()],
                repair: vec![false; placement.len()],
                placement,
            },
        );
        Ok(())
    }

    /// Providers of `orch` with `room` bytes free, best first for `salt`.
    fn ranked_providers(&self, orch: &Orchestrator, room: u64, salt: &[&[u8]]) -> Vec<PublicKey> {
        let mut ranked: Vec<(u64, PublicKey)> = orch
            .providers
            .iter()
            .filter(|p| {
                self.providers
                    .get(p)
                    .is_some_and(|p| p.capacity.saturating_sub(p.used) >= room)
            })
            .map(|p| {
                let mut parts = salt.to_vec();
                parts.push(&p.0);
                (draw(&parts), *p)
            })
            .collect();
        ranked.sort();
        ranked.into_iter().map(|(_, p)| p).collect()
    }

    /// Picks an orchestrator (stake-weighted among those with `count` providers having
    /// room) and its providers for each shard, all distinct.
    fn choose_placement(
        &self,
        blob_id: &BlobId,
        shard_size: u64,
        count: usize,
    ) -> Result<(PublicKey, Vec<PublicKey>), TxError> {
        let candidates: Vec<(&PublicKey, &Orchestrator, Vec<PublicKey>)> = self
            .orchestrators
            .iter()
            .filter(|(_, o)| o.stake >= self.params.min_stake)
            .map(|(k, o)| (k, o, self.ranked_providers(o, shard_size, &[&blob_id.0])))
            .filter(|(_, _, ranked)| ranked.len() >= count)
            .collect();
        let total: u128 = candidates.iter().map(|(_, o, _)| u128::from(o.stake)).sum();
        if total == 0 {
            return Err(TxError::NoOrchestrator {
                needed: count,
                shard_size,
            });
        }
        let mut ticket = u128::from(draw(&[b"orchestrator", &blob_id.0])) % total;
        for (key, orch, ranked) in candidates {
            if ticket < u128::from(orch.stake) {
                return Ok((*key, ranked.into_iter().take(count).collect()));
            }
            ticket -= u128::from(orch.stake);
        }
        Err(TxError::NoOrchestrator {
            needed: count,
            shard_size,
        })
    }

    fn answer(
        &mut self,
        provider: PublicKey,
        blob_id: BlobId,
        shard: u16,
        epoch: Epoch,
        answers: &[super::tx::LeafAnswer],
    ) -> Result<(), TxError> {
        let key = (blob_id, shard, epoch);
        let no_challenge = TxError::NoChallenge {
            blob_id,
            shard,
            epoch,
        };
        let challenge = self
            .challenges
            .get(&key)
            .filter(|c| c.provider == provider)
            .ok_or(no_challenge)?;
        let blob = self.blobs.get(&blob_id).ok_or(TxError::NoChallenge {
            blob_id,
            shard,
            epoch,
        })?;
        let PolicySpec::Erasure { shard_size, shards } = &blob.policy else {
            return Err(TxError::NoChallenge {
                blob_id,
                shard,
                epoch,
            });
        };
        let shard_id = shards.get(usize::from(shard)).ok_or(TxError::NoChallenge {
            blob_id,
            shard,
            epoch,
        })?;
        if answers.len() != challenge.leaves.len() {
            return Err(TxError::WrongAnswer(format!(
                "{} leaves challenged, {} answered",
                challenge.leaves.len(),
                answers.len()
            )));
        }
        for (want, got) in challenge.leaves.iter().zip(answers) {
            if got.leaf != *want
                || !shard_id.verify_leaf(*shard_size, got.leaf, &got.data, &got.proof)
            {
                return Err(TxError::WrongAnswer(format!(
                    "leaf {} does not verify",
                    got.leaf
                )));
            }
        }
        let orch = blob.orchestrator;
        self.challenges.remove(&key);
        if let Some(flag) = self
            .blobs
            .get_mut(&blob_id)
            .and_then(|b| b.repair.get_mut(usize::from(shard)))
        {
            *flag = false;
        }
        if let Some(o) = orch.and_then(|o| self.orchestrators.get_mut(&o)) {
            o.challenges_passed += 1;
        }
        Ok(())
    }
}

/// What becomes of a transaction whose action fails.
#[derive(Debug, Clone, Copy)]
enum FailedAction {
    /// In a block: its fee is burned and its nonce used.
    Charged,
    /// In a dry run or a pool: as if it had never been tried.
    Undone,
}
