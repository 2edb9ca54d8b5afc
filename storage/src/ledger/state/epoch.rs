//! The end of each block and epoch: missed challenge deadlines, evictions with slashing
//! and repair placement, fee payouts, expiry, unbonding releases and new challenges.

use super::{draw, mul_div_ceil, LedgerEvent, LedgerState};
use crate::blob::{BlobId, BlobLayout};
use crate::keys::PublicKey;
use crate::ledger::types::{Amount, Challenge, Epoch, PolicySpec, BPS};
use crate::merkle::Digest;

impl LedgerState {
    /// Evicts a provider (leaving or failing): moves its shards to the orchestrator's other
    /// providers and forgets it.
    pub(super) fn remove_provider(&mut self, provider: &PublicKey, events: &mut Vec<LedgerEvent>) {
        let Some(gone) = self.providers.remove(provider) else {
            return;
        };
        if let Some(o) = self.orchestrators.get_mut(&gone.orchestrator) {
            o.providers.remove(provider);
        }
        self.challenges.retain(|_, c| c.provider != *provider);
        let held: Vec<(BlobId, u16, u64)> = self
            .blobs
            .iter()
            .flat_map(|(id, b)| {
                let size = match &b.policy {
                    PolicySpec::Erasure { shard_size, .. } => *shard_size,
                    PolicySpec::Replicated | PolicySpec::Das { .. } => 0,
                };
                b.placement
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.as_ref() == Some(provider))
                    .map(move |(i, _)| (*id, i as u16, size))
            })
            .collect();
        for (blob_id, shard, size) in held {
            let to = self.replacement(&gone.orchestrator, &blob_id, shard, size);
            if let Some(p) = to.and_then(|p| self.providers.get_mut(&p)) {
                p.used = p.used.saturating_add(size);
            }
            let epoch = self.epoch;
            if let Some(blob) = self.blobs.get_mut(&blob_id) {
                if let Some(slot) = blob.placement.get_mut(usize::from(shard)) {
                    *slot = to;
                }
                if let Some(slot) = blob.assigned.get_mut(usize::from(shard)) {
                    *slot = epoch;
                }
                if let Some(flag) = blob.repair.get_mut(usize::from(shard)) {
                    *flag = to.is_some();
                }
            }
            events.push(LedgerEvent::ShardMoved { blob_id, shard, to });
        }
    }

    /// A provider of `orch` with room that holds no other shard of the blob.
    fn replacement(
        &self,
        orch: &PublicKey,
        blob_id: &BlobId,
        shard: u16,
        size: u64,
    ) -> Option<PublicKey> {
        let o = self.orchestrators.get(orch)?;
        let holders = &self.blobs.get(blob_id)?.placement;
        self.ranked_providers(o, size, &[&blob_id.0, &shard.to_be_bytes()])
            .into_iter()
            .find(|p| !holders.contains(&Some(*p)))
    }

    /// Closes block `height` (with hash `seed`): missed deadlines, evictions, and at epoch
    /// boundaries fees, expiry, unbonding releases and new challenges.
    pub fn end_block(&mut self, height: u64, seed: &Digest) -> Vec<LedgerEvent> {
        let mut events = Vec::new();
        self.height = height;
        self.expire_jobs(height, &mut events);
        let expired: Vec<_> = self
            .challenges
            .iter()
            .filter(|(_, c)| c.deadline <= height)
            .map(|(k, c)| (*k, c.provider))
            .collect();
        for ((blob_id, shard, epoch), provider) in expired {
            self.challenges.remove(&(blob_id, shard, epoch));
            events.push(LedgerEvent::ChallengeFailed {
                blob_id,
                shard,
                provider,
            });
            let orch = self.providers.get(&provider).map(|p| p.orchestrator);
            if let Some(p) = self.providers.get_mut(&provider) {
                p.failures = p.failures.saturating_add(1);
            }
            if let Some(o) = orch.and_then(|o| self.orchestrators.get_mut(&o)) {
                o.challenges_failed += 1;
            }
        }
        let failing: Vec<PublicKey> = self
            .providers
            .iter()
            .filter(|(_, p)| p.failures >= self.params.failure_threshold)
            .map(|(k, _)| *k)
            .collect();
        for provider in failing {
            let Some(orch) = self.providers.get(&provider).map(|p| p.orchestrator) else {
                continue;
            };
            let mut slashed = 0;
            if let Some(o) = self.orchestrators.get_mut(&orch) {
                slashed = mul_div_ceil(o.stake, self.params.slash_bps, u128::from(BPS))
                    .unwrap_or(o.stake)
                    .min(o.stake);
                o.stake -= slashed;
                o.slashed = o.slashed.saturating_add(slashed);
            }
            self.slashed = self.slashed.saturating_add(slashed);
            events.push(LedgerEvent::ProviderEvicted {
                provider,
                orchestrator: orch,
                slashed,
            });
            self.remove_provider(&provider, &mut events);
        }
        if height > 0 && height % self.params.epoch_blocks == 0 {
            self.epoch = Epoch(height / self.params.epoch_blocks);
            events.push(LedgerEvent::EpochStarted(self.epoch));
            self.pay_epoch(&mut events);
            self.release_unbonded();
            self.issue_challenges(height, seed, &mut events);
        }
        events
    }

    fn pay_epoch(&mut self, events: &mut Vec<LedgerEvent>) {
        let ids: Vec<BlobId> = self.blobs.keys().copied().collect();
        for id in ids {
            let Some(blob) = self.blobs.get_mut(&id) else {
                continue;
            };
            blob.epochs_left = blob.epochs_left.saturating_sub(1);
            let fee = blob.fee_per_epoch.min(self.escrow);
            let (orch, placement, done) = (
                blob.orchestrator,
                blob.placement.clone(),
                blob.epochs_left == 0,
            );
            self.escrow -= fee;
            let commission = orch
                .and_then(|o| self.orchestrators.get(&o))
                .map_or(BPS, |o| o.commission_bps);
            let provider_pool = fee
                - mul_div_ceil(fee, commission, u128::from(BPS))
                    .unwrap_or(fee)
                    .min(fee);
            let per_shard = provider_pool
                .checked_div(placement.len() as u64)
                .unwrap_or(0);
            let mut paid = 0;
            for p in placement.iter().flatten() {
                let acct = self.accounts.entry(*p).or_default();
                acct.balance = acct.balance.saturating_add(per_shard);
                paid += per_shard;
            }
            // The orchestrator gets its commission, the share of unplaced shards and dust.
            let rest = fee - paid;
            match orch {
                Some(o) => {
                    let acct = self.accounts.entry(o).or_default();
                    acct.balance = acct.balance.saturating_add(rest);
                }
                None => self.burned = self.burned.saturating_add(rest),
            }
            if done {
                self.expire(&id, events);
            }
        }
    }

    fn expire(&mut self, id: &BlobId, events: &mut Vec<LedgerEvent>) {
        let Some(blob) = self.blobs.remove(id) else {
            return;
        };
        if let PolicySpec::Erasure { shard_size, .. } = blob.policy {
            for p in blob.placement.iter().flatten() {
                if let Some(p) = self.providers.get_mut(p) {
                    p.used = p.used.saturating_sub(shard_size);
                }
            }
        }
        self.challenges.retain(|(b, _, _), _| b != id);
        events.push(LedgerEvent::BlobExpired(*id));
    }

    fn release_unbonded(&mut self) {
        let epoch = self.epoch;
        for (key, orch) in self.orchestrators.iter_mut() {
            let (due, waiting): (Vec<_>, Vec<_>) =
                orch.unbonding.drain(..).partition(|u| u.release <= epoch);
            orch.unbonding = waiting;
            let amount: Amount = due.iter().map(|u| u.amount).sum();
            let acct = self.accounts.entry(*key).or_default();
            acct.balance = acct.balance.saturating_add(amount);
        }
    }

    fn issue_challenges(&mut self, height: u64, seed: &Digest, events: &mut Vec<LedgerEvent>) {
        let per_shard = self.params.challenges_per_shard;
        let deadline = height.saturating_add(self.params.response_window);
        let mut issued = Vec::new();
        for (id, blob) in &self.blobs {
            let PolicySpec::Erasure { shard_size, .. } = blob.policy else {
                continue;
            };
            let leaves = BlobLayout::new(shard_size).map_or(1, |l| l.leaf_count());
            for (shard, provider) in blob.placement.iter().enumerate() {
                let Some(provider) = provider else { continue };
                // Give a new holder one whole epoch to get the shard.
                let since = blob.assigned.get(shard).map_or(0, |e| e.0);
                if since.saturating_add(1) >= self.epoch.0 {
                    continue;
                }
                let shard = shard as u16;
                let picks = (0..per_shard)
                    .map(|j| {
                        draw(&[&seed.0, &id.0, &shard.to_be_bytes(), &j.to_be_bytes()]) % leaves
                    })
                    .collect();
                issued.push((
                    (*id, shard, self.epoch),
                    Challenge {
                        provider: *provider,
                        leaves: picks,
                        deadline,
                    },
                ));
            }
        }
        for (key, challenge) in issued {
            events.push(LedgerEvent::ChallengeIssued {
                blob_id: key.0,
                shard: key.1,
                provider: challenge.provider,
            });
            self.challenges.insert(key, challenge);
        }
    }
}
