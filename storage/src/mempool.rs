//! The pool of transactions waiting for a block, and the admission rules every block
//! producer applies (sans-io: the caller supplies the ledger state and the time).
//!
//! A transaction enters only if it could pay: it is signed for this chain, offers at
//! least the minimum fee, and its sender's balance covers the fee and outlay of every
//! transaction of that sender already waiting plus its own. Its nonce must lie within a
//! small window above the sender's next one. Each sender holds a bounded number of
//! places, and the pool a bounded count and size: when it is full, a transaction paying
//! a higher fee evicts the cheapest last-in-line one. What can never apply (its nonce was
//! used, its sender can no longer pay, it waited too long) is dropped by [`Mempool::prune`].

use std::collections::{BTreeMap, HashMap};

use crate::keys::PublicKey;
use crate::ledger::{Amount, LedgerState, SignedTransaction, TxError};
use crate::merkle::Digest;

/// Bounds of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Most transactions held.
    pub max_transactions: usize,
    /// Most bytes (serialized transactions) held.
    pub max_bytes: usize,
    /// Most transactions held per sender.
    pub per_sender: usize,
    /// A nonce is admitted only below the sender's next nonce plus this.
    pub nonce_window: u64,
    /// Transactions older than this are dropped at the next prune.
    pub max_age_ms: u64,
}

impl Default for PoolLimits {
    /// 10,000 transactions or 32 MiB in all; 256 per sender (a node's own burst of puts)
    /// within 256 nonces; ten minutes at most.
    fn default() -> Self {
        PoolLimits {
            max_transactions: 10_000,
            max_bytes: 32 << 20,
            per_sender: 256,
            nonce_window: 256,
            max_age_ms: 10 * 60 * 1000,
        }
    }
}

/// Why a transaction was not admitted. Nothing is held for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The ledger would never accept it: wrong chain, bad signature, fee too low, or a
    /// sender that cannot pay the fee.
    #[error("{0}")]
    Invalid(TxError),
    /// Its sender's balance does not cover it after the sender's waiting transactions.
    #[error("the sender's balance {balance} does not cover {needed} (this and its waiting transactions)")]
    CannotAfford {
        /// Fees and outlays of the sender's waiting transactions and this one.
        needed: u128,
        /// The sender's balance.
        balance: Amount,
    },
    /// Its nonce was used already.
    #[error("nonce {found} was used already (next is {next})")]
    StaleNonce {
        /// The sender's next nonce.
        next: u64,
        /// The transaction's nonce.
        found: u64,
    },
    /// Its nonce is too far ahead of the sender's next one.
    #[error("nonce {found} is too far ahead (next is {next}, window {window})")]
    NonceTooFarAhead {
        /// The sender's next nonce.
        next: u64,
        /// The transaction's nonce.
        found: u64,
        /// How far ahead a nonce may be.
        window: u64,
    },
    /// The pool holds this very transaction.
    #[error("already waiting")]
    Duplicate,
    /// Another transaction of the sender with this nonce waits, paying at least as much.
    #[error("another transaction with nonce {0} waits, paying as much or more")]
    NonceTaken(u64),
    /// The sender has as many transactions waiting as a sender may.
    #[error("the sender has {0} transactions waiting, the most allowed")]
    SenderFull(usize),
    /// The pool is full of transactions paying as much or more.
    #[error("the pool is full")]
    PoolFull,
}

impl AdmitError {
    /// Whether whoever relayed the transaction sent something no honest node would: it
    /// can never apply on this chain, whatever the pool holds.
    pub fn is_invalid(&self) -> bool {
        matches!(self, AdmitError::Invalid(_))
    }
}

/// What any node can check of a transaction against `ledger` before relaying it, cheapest
/// first: payable (chain, fee, a balance that covers the fee), a nonce not used and less
/// than `window` ahead, and — only then — its signature.
pub fn precheck(
    tx: &SignedTransaction,
    ledger: &LedgerState,
    window: u64,
) -> Result<(), AdmitError> {
    check_window(tx, ledger, window)?;
    if !tx.signature_valid() {
        return Err(AdmitError::Invalid(TxError::BadSignature));
    }
    Ok(())
}

/// Payable but for the signature, and a nonce within `window` of the sender's next one.
fn check_window(
    tx: &SignedTransaction,
    ledger: &LedgerState,
    window: u64,
) -> Result<(), AdmitError> {
    ledger.check_fee(&tx.tx).map_err(AdmitError::Invalid)?;
    let next = ledger.account(&tx.tx.sender).nonce;
    let found = tx.tx.nonce;
    if found < next {
        return Err(AdmitError::StaleNonce { next, found });
    }
    if found - next >= window {
        return Err(AdmitError::NonceTooFarAhead {
            next,
            found,
            window,
        });
    }
    Ok(())
}

/// One waiting transaction.
#[derive(Debug, Clone)]
struct Entry {
    tx: SignedTransaction,
    id: Digest,
    bytes: usize,
    cost: Amount,
    admitted_ms: u64,
}

/// Transactions waiting for a block, by sender and nonce.
#[derive(Debug)]
pub struct Mempool {
    limits: PoolLimits,
    senders: BTreeMap<PublicKey, BTreeMap<u64, Entry>>,
    ids: HashMap<Digest, (PublicKey, u64)>,
    bytes: usize,
}

impl Mempool {
    /// An empty pool with `limits`.
    pub fn new(limits: PoolLimits) -> Mempool {
        Mempool {
            limits,
            senders: BTreeMap::new(),
            ids: HashMap::new(),
            bytes: 0,
        }
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Bytes held (serialized transactions).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether transaction `id` waits here.
    pub fn contains(&self, id: &Digest) -> bool {
        self.ids.contains_key(id)
    }

    /// Admits `tx` against `ledger` (the state the next block builds on) at time `now_ms`,
    /// evicting cheaper transactions if the pool is full. On error nothing changes.
    pub fn admit(
        &mut self,
        tx: SignedTransaction,
        ledger: &LedgerState,
        now_ms: u64,
    ) -> Result<(), AdmitError> {
        let id = tx.id();
        if self.ids.contains_key(&id) {
            return Err(AdmitError::Duplicate);
        }
        // Every cheap check comes first; the signature (a pairing) last.
        check_window(&tx, ledger, self.limits.nonce_window)?;
        let cost = ledger.upfront_cost(&tx.tx).map_err(AdmitError::Invalid)?;
        let sender = tx.tx.sender;
        let account = ledger.account(&sender);
        let (next, nonce) = (account.nonce, tx.tx.nonce);
        let waiting = self.senders.get(&sender);
        let replaced = waiting.and_then(|w| w.get(&nonce));
        if let Some(old) = replaced {
            if old.tx.tx.fee >= tx.tx.fee {
                return Err(AdmitError::NonceTaken(nonce));
            }
        } else if waiting.map_or(0, BTreeMap::len) >= self.limits.per_sender {
            return Err(AdmitError::SenderFull(self.limits.per_sender));
        }
        let others: u128 = waiting
            .into_iter()
            .flat_map(BTreeMap::values)
            .filter(|e| e.tx.tx.nonce != nonce && e.tx.tx.nonce >= next)
            .map(|e| u128::from(e.cost))
            .sum();
        let needed = others + u128::from(cost);
        if needed > u128::from(account.balance) {
            return Err(AdmitError::CannotAfford {
                needed,
                balance: account.balance,
            });
        }
        let bytes = postcard::to_stdvec(&tx).map_or(usize::MAX, |b| b.len());
        let freed = replaced.map_or(0, |e| e.bytes);
        let evict = self.eviction_for(&sender, tx.tx.fee, bytes, freed, replaced.is_some())?;
        if !tx.signature_valid() {
            return Err(AdmitError::Invalid(TxError::BadSignature));
        }
        for (who, n) in evict {
            self.remove(&who, n);
        }
        self.remove(&sender, nonce);
        self.insert(Entry {
            tx,
            id,
            bytes,
            cost,
            admitted_ms: now_ms,
        });
        Ok(())
    }

    /// The transactions to evict so that one of `bytes` paying `fee` from `sender` fits
    /// (`freed` bytes come back from the transaction it replaces): the cheapest last-in-line
    /// transactions of other senders, each paying less than `fee`.
    fn eviction_for(
        &self,
        sender: &PublicKey,
        fee: Amount,
        bytes: usize,
        freed: usize,
        replaces: bool,
    ) -> Result<Vec<(PublicKey, u64)>, AdmitError> {
        if bytes > self.limits.max_bytes {
            return Err(AdmitError::PoolFull);
        }
        let mut count = self.len() + usize::from(!replaces);
        let mut size = self.bytes - freed + bytes;
        let mut depth: HashMap<PublicKey, usize> = HashMap::new();
        let mut evict = Vec::new();
        while count > self.limits.max_transactions || size > self.limits.max_bytes {
            let (who, nonce, freed) = self
                .cheapest_tail(sender, fee, &depth)
                .ok_or(AdmitError::PoolFull)?;
            *depth.entry(who).or_default() += 1;
            evict.push((who, nonce));
            count -= 1;
            size -= freed;
        }
        Ok(evict)
    }

    /// Among senders other than `sender`, the cheapest transaction paying less than `fee`
    /// that is last in its sender's line once `depth[who]` are gone from its end: evicting
    /// from the end of a line never leaves a gap in a sender's nonces.
    fn cheapest_tail(
        &self,
        sender: &PublicKey,
        fee: Amount,
        depth: &HashMap<PublicKey, usize>,
    ) -> Option<(PublicKey, u64, usize)> {
        self.senders
            .iter()
            .filter(|(who, _)| *who != sender)
            .filter_map(|(who, line)| {
                let skip = depth.get(who).copied().unwrap_or(0);
                let e = line.values().rev().nth(skip)?;
                (e.tx.tx.fee < fee).then_some((e.tx.tx.fee, *who, e.tx.tx.nonce, e.bytes))
            })
            .min_by_key(|t| t.0)
            .map(|(_, who, nonce, bytes)| (who, nonce, bytes))
    }

    fn insert(&mut self, entry: Entry) {
        let sender = entry.tx.tx.sender;
        let nonce = entry.tx.tx.nonce;
        self.bytes += entry.bytes;
        self.ids.insert(entry.id, (sender, nonce));
        self.senders.entry(sender).or_default().insert(nonce, entry);
    }

    fn remove(&mut self, sender: &PublicKey, nonce: u64) -> Option<SignedTransaction> {
        let line = self.senders.get_mut(sender)?;
        let entry = line.remove(&nonce)?;
        if line.is_empty() {
            self.senders.remove(sender);
        }
        self.bytes -= entry.bytes;
        self.ids.remove(&entry.id);
        Some(entry.tx)
    }

    /// Drops transaction `id` (the ledger refused it for a reason other than its nonce).
    pub fn discard(&mut self, id: &Digest) -> Option<SignedTransaction> {
        let (sender, nonce) = *self.ids.get(id)?;
        self.remove(&sender, nonce)
    }

    /// Up to `max` transactions that apply in order on `ledger`: for each sender, its run of
    /// consecutive nonces from its next one, senders paying the highest first fee first.
    /// `include` may decline a transaction (e.g. data not yet available); the rest of that
    /// sender's run then waits too. Nothing is removed: [`Mempool::prune`] does that once
    /// a block is final.
    pub fn batch(
        &self,
        ledger: &LedgerState,
        max: usize,
        mut include: impl FnMut(&SignedTransaction) -> bool,
    ) -> Vec<SignedTransaction> {
        let mut runs: Vec<(Amount, Vec<&Entry>)> = self
            .senders
            .iter()
            .filter_map(|(who, line)| {
                let mut next = ledger.account(who).nonce;
                let run: Vec<&Entry> = line
                    .range(next..)
                    .map_while(|(&n, e)| {
                        (n == next).then(|| {
                            next += 1;
                            e
                        })
                    })
                    .collect();
                let first = run.first()?.tx.tx.fee;
                Some((first, run))
            })
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.0));
        let mut batch = Vec::new();
        for (_, run) in runs {
            for e in run {
                if batch.len() >= max || !include(&e.tx) {
                    break;
                }
                batch.push(e.tx.clone());
            }
        }
        batch
    }

    /// Drops what can no longer apply on `ledger` (the state after the latest final
    /// block) at `now_ms`: used nonces, transactions waiting longer than allowed, and, for
    /// each sender, the tail its balance no longer covers. Returns how many were dropped.
    pub fn prune(&mut self, ledger: &LedgerState, now_ms: u64) -> usize {
        let before = self.len();
        let max_age = self.limits.max_age_ms;
        let mut drop: Vec<(PublicKey, u64)> = Vec::new();
        for (who, line) in &self.senders {
            let account = ledger.account(who);
            let mut spent: u128 = 0;
            let mut broke = false;
            for (&nonce, e) in line {
                if nonce < account.nonce {
                    drop.push((*who, nonce));
                    continue;
                }
                spent += u128::from(e.cost);
                broke |= spent > u128::from(account.balance);
                if broke || now_ms.saturating_sub(e.admitted_ms) > max_age {
                    drop.push((*who, nonce));
                }
            }
        }
        for (who, nonce) in drop {
            self.remove(&who, nonce);
        }
        before - self.len()
    }
}

#[cfg(test)]
mod tests;
