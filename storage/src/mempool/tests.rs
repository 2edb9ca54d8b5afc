//! Pool tests: each admission rule, eviction, batches, pruning, and the bounds under
//! random floods.

use crate::test_support::verifier;
use proptest::prelude::*;

use super::*;
use crate::keys::SigningKey;
use crate::ledger::{Genesis, LedgerParams, Transaction, TxKind};
use nexus_consensus::ChainTag;

const FUNDS: Amount = 1_000;

fn key(i: u8) -> SigningKey {
    SigningKey::from_seed(&[i; 32])
}

fn chain() -> ChainTag {
    ChainTag::of("pool-test")
}

/// Accounts 1..=funded hold `FUNDS`; everyone else nothing. The minimum fee is 2.
fn ledger(funded: u8) -> LedgerState {
    LedgerState::genesis(
        &Genesis {
            params: LedgerParams {
                min_tx_fee: 2,
                ..LedgerParams::default()
            },
            balances: (1..=funded).map(|i| (key(i).public(), FUNDS)).collect(),
        },
        chain(),
    )
    .expect("genesis")
}

/// A transfer of `amount` from account `from` with `nonce` and `fee`.
fn transfer(from: u8, nonce: u64, fee: Amount, amount: Amount) -> SignedTransaction {
    Transaction {
        chain: chain(),
        sender: key(from).public(),
        nonce,
        fee,
        kind: TxKind::Transfer {
            to: key(200).public(),
            amount,
        },
    }
    .sign(&key(from))
}

fn limits() -> PoolLimits {
    PoolLimits {
        max_transactions: 8,
        max_bytes: 1 << 20,
        per_sender: 4,
        nonce_window: 6,
        max_age_ms: 1_000,
    }
}

#[test]
fn what_could_never_pay_is_refused_and_nothing_is_kept() {
    let ledger = ledger(1);
    let mut pool = Mempool::new(limits());
    // An unfunded sender cannot pay even the fee.
    assert!(matches!(
        pool.admit(transfer(9, 0, 2, 1), &ledger, 0),
        Err(AdmitError::Invalid(TxError::InsufficientBalance { .. }))
    ));
    assert_eq!(
        pool.admit(transfer(1, 0, 1, 1), &ledger, 0),
        Err(AdmitError::Invalid(TxError::FeeTooLow {
            offered: 1,
            min: 2
        }))
    );
    let mut other_chain = transfer(1, 0, 2, 1);
    other_chain.tx.chain = ChainTag::of("another");
    other_chain = other_chain.tx.sign(&key(1));
    assert_eq!(
        pool.admit(other_chain, &ledger, 0),
        Err(AdmitError::Invalid(TxError::WrongChain))
    );
    let mut forged = transfer(1, 0, 2, 1);
    forged.signature = key(2).sign(&forged.tx.digest().0);
    assert_eq!(
        pool.admit(forged, &ledger, 0),
        Err(AdmitError::Invalid(TxError::BadSignature))
    );
    assert!(pool
        .admit(transfer(9, 0, 2, 1), &ledger, 0)
        .is_err_and(|e| e.is_invalid()));
    assert!((pool.len(), pool.bytes()) == (0, 0));
}

#[test]
fn nonces_must_be_unused_and_within_the_window() {
    let mut ledger = ledger(1);
    ledger
        .apply_tx(&transfer(1, 0, 2, 1), verifier())
        .expect("first transfer");
    let mut pool = Mempool::new(limits());
    assert_eq!(
        pool.admit(transfer(1, 0, 2, 1), &ledger, 0),
        Err(AdmitError::StaleNonce { next: 1, found: 0 })
    );
    assert_eq!(
        pool.admit(transfer(1, 7, 2, 1), &ledger, 0),
        Err(AdmitError::NonceTooFarAhead {
            next: 1,
            found: 7,
            window: 6
        })
    );
    pool.admit(transfer(1, 6, 2, 1), &ledger, 0)
        .expect("the last nonce of the window");
    assert_eq!(
        pool.admit(transfer(1, 6, 2, 1), &ledger, 0),
        Err(AdmitError::Duplicate)
    );
    assert_eq!(
        pool.admit(transfer(1, 6, 2, 2), &ledger, 0),
        Err(AdmitError::NonceTaken(6))
    );
    // A higher fee replaces the waiting transaction of that nonce.
    pool.admit(transfer(1, 6, 3, 2), &ledger, 0)
        .expect("replace by fee");
    assert_eq!(pool.len(), 1);
}

#[test]
fn a_sender_holds_a_bounded_number_of_places_and_must_afford_them_all() {
    let ledger = ledger(1);
    let mut pool = Mempool::new(limits());
    for nonce in 0..4 {
        pool.admit(transfer(1, nonce, 2, 100), &ledger, 0)
            .expect("within the sender's places");
    }
    assert_eq!(
        pool.admit(transfer(1, 4, 2, 100), &ledger, 0),
        Err(AdmitError::SenderFull(4))
    );
    let mut pool = Mempool::new(limits());
    pool.admit(transfer(1, 0, 2, 600), &ledger, 0)
        .expect("affordable");
    // 602 + 402 exceeds the balance of 1,000, although each alone does not.
    assert_eq!(
        pool.admit(transfer(1, 1, 2, 400), &ledger, 0),
        Err(AdmitError::CannotAfford {
            needed: 1_004,
            balance: FUNDS
        })
    );
}

#[test]
fn a_full_pool_evicts_the_cheapest_last_in_line_for_a_better_fee() {
    let ledger = ledger(9);
    let mut pool = Mempool::new(limits());
    for sender in 1..=4 {
        for nonce in 0..2 {
            pool.admit(
                transfer(sender, nonce, 2 + u64::from(sender), 1),
                &ledger,
                0,
            )
            .expect("room");
        }
    }
    assert_eq!(pool.len(), 8);
    // Paying no more than the cheapest waiting: refused.
    assert_eq!(
        pool.admit(transfer(5, 0, 3, 1), &ledger, 0),
        Err(AdmitError::PoolFull)
    );
    // Paying more: sender 1's last transaction (fee 3) goes, its first stays.
    let richer = transfer(5, 0, 9, 1);
    pool.admit(richer.clone(), &ledger, 0).expect("evicts");
    assert_eq!(pool.len(), 8);
    assert!(pool.contains(&richer.id()));
    assert!(!pool.contains(&transfer(1, 1, 3, 1).id()));
    assert!(pool.contains(&transfer(1, 0, 3, 1).id()));
    // A transaction larger than the whole pool never fits.
    let tiny = Mempool::new(PoolLimits {
        max_bytes: 10,
        ..limits()
    });
    let mut tiny = tiny;
    assert_eq!(
        tiny.admit(transfer(1, 0, 2, 1), &ledger, 0),
        Err(AdmitError::PoolFull)
    );
}

#[test]
fn a_batch_holds_consecutive_runs_best_fee_first_and_stops_a_run_when_declined() {
    let ledger = ledger(3);
    let mut pool = Mempool::new(limits());
    for (sender, nonce, fee) in [(1, 0, 2), (1, 1, 2), (1, 3, 2), (2, 0, 5), (2, 1, 2)] {
        pool.admit(transfer(sender, nonce, fee, 1), &ledger, 0)
            .expect("room");
    }
    let order = |batch: Vec<SignedTransaction>| -> Vec<(u64, u64)> {
        batch
            .iter()
            .map(|t| {
                let who = (1..=3)
                    .find(|&i| key(i).public() == t.tx.sender)
                    .expect("known");
                (u64::from(who), t.tx.nonce)
            })
            .collect()
    };
    // Sender 2 pays more first; sender 1's nonce 3 waits for nonce 2.
    assert_eq!(
        order(pool.batch(&ledger, 10, |_| true)),
        vec![(2, 0), (2, 1), (1, 0), (1, 1)]
    );
    assert_eq!(order(pool.batch(&ledger, 3, |_| true)).len(), 3);
    let declined = transfer(2, 0, 5, 1).id();
    assert_eq!(
        order(pool.batch(&ledger, 10, |t| t.id() != declined)),
        vec![(1, 0), (1, 1)]
    );
    // Every candidate applies, in order, on the ledger.
    let mut state = ledger.clone();
    for tx in pool.batch(&ledger, 10, |_| true) {
        state.apply_tx(&tx, verifier()).expect("applies");
    }
}

#[test]
fn pruning_drops_used_nonces_old_waiters_and_what_the_balance_no_longer_covers() {
    let mut ledger = ledger(2);
    let mut pool = Mempool::new(limits());
    pool.admit(transfer(1, 0, 2, 1), &ledger, 0).expect("room");
    pool.admit(transfer(1, 1, 2, 1), &ledger, 500)
        .expect("room");
    pool.admit(transfer(2, 0, 2, 500), &ledger, 500)
        .expect("room");
    pool.admit(transfer(2, 1, 2, 400), &ledger, 500)
        .expect("room");
    // Block: sender 1's nonce 0 lands; sender 2 spends most of its balance elsewhere.
    ledger
        .apply_tx(&transfer(1, 0, 2, 1), verifier())
        .expect("applies");
    ledger
        .apply_tx(&transfer(2, 0, 2, 600), verifier())
        .expect("applies");
    // Sender 1's nonce 0 and sender 2's nonce 0 are used; sender 2's nonce 1 costs 402
    // and only 398 are left: all three go.
    assert_eq!(pool.prune(&ledger, 1_200), 3);
    assert!(pool.contains(&transfer(1, 1, 2, 1).id()));
    // Waiting longer than a second: dropped.
    assert_eq!(pool.prune(&ledger, 1_501), 1);
    assert!(pool.is_empty() && pool.bytes() == 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever arrives, the pool stays within its bounds, its byte count is exact, and
    /// every batch applies on the ledger in order.
    #[test]
    fn bounds_hold_under_random_floods(
        arrivals in prop::collection::vec((1u8..=6, 0u64..8, 2u64..10, 1u64..300), 1..80),
    ) {
        let ledger = ledger(4);
        let mut pool = Mempool::new(limits());
        for (sender, nonce, fee, amount) in arrivals {
            let before = (pool.len(), pool.bytes());
            if pool.admit(transfer(sender, nonce, fee, amount), &ledger, 0).is_err() {
                prop_assert_eq!((pool.len(), pool.bytes()), before);
            }
            prop_assert!(pool.len() <= 8);
            let exact: usize = pool.senders.values().flat_map(BTreeMap::values).map(|e| e.bytes).sum();
            prop_assert_eq!(pool.bytes(), exact);
            prop_assert!(pool.senders.values().all(|l| l.len() <= 4));
        }
        let mut state = ledger.clone();
        for tx in pool.batch(&ledger, 100, |_| true) {
            prop_assert!(state.apply_tx(&tx, verifier()).is_ok());
        }
    }
}
