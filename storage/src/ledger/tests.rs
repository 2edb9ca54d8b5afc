//! Ledger tests: supply conservation and no-op rejections under random transaction
//! sequences, the named rejection cases, and whole scenarios (fees, challenges, slashing,
//! repair, unbonding, deterministic replay).

use proptest::prelude::*;

#[cfg(feature = "zkvm")]
mod compute;

use super::*;
use crate::blob::{leaf_proof, BlobId, BlobIdBuilder, BlobLayout, CHUNK_SIZE};
use crate::erasure::{encode_all, ErasureLayout};
use crate::keys::{PublicKey, SigningKey};
use crate::merkle::{Digest, MerkleProof};
use crate::test_support::verifier;
use nexus_consensus::ChainTag;

fn key(i: u8) -> SigningKey {
    SigningKey::from_seed(&[i; 32])
}

fn pk(i: u8) -> PublicKey {
    key(i).public()
}

const FUNDS: u64 = 1_000_000;

fn params() -> LedgerParams {
    LedgerParams {
        epoch_blocks: 5,
        unbonding_epochs: 2,
        min_stake: 1_000,
        bytes_per_stake: 1 << 20,
        price_per_mib_epoch: 100,
        data_shards: 4,
        parity_shards: 2,
        challenges_per_shard: 2,
        response_window: 3,
        failure_threshold: 1,
        slash_bps: 1_000,
        data_dims: 2,
        max_block_data: 1 << 20,
        min_tx_fee: 0,
    }
}

/// The chain these tests sign for.
fn chain() -> ChainTag {
    ChainTag::of("ledger-test")
}

fn genesis(accounts: u8) -> LedgerState {
    LedgerState::genesis(
        &Genesis {
            params: params(),
            balances: (1..=accounts).map(|i| (pk(i), FUNDS)).collect(),
        },
        chain(),
    )
    .expect("genesis")
}

/// Signs `kind` from account `i` with its next nonce.
fn tx(state: &LedgerState, i: u8, kind: TxKind) -> SignedTransaction {
    Transaction {
        chain: chain(),
        fee: 0,
        sender: pk(i),
        nonce: state.account(&pk(i)).nonce,
        kind,
    }
    .sign(&key(i))
}

fn apply(state: &mut LedgerState, i: u8, kind: TxKind) -> Result<(), TxError> {
    let stx = tx(state, i, kind);
    state.apply_tx(&stx, verifier())
}

fn seed(h: u64) -> Digest {
    Digest::of(&[&h.to_be_bytes()])
}

/// Runs blocks until `height` (inclusive), collecting events.
fn run_to(state: &mut LedgerState, height: u64) -> Vec<LedgerEvent> {
    let mut events = Vec::new();
    for h in state.height() + 1..=height {
        events.extend(state.end_block(h, &seed(h)));
    }
    events
}

#[test]
fn fees_are_burned_when_a_transaction_applies_and_returned_when_it_fails() {
    let mut state = LedgerState::genesis(
        &Genesis {
            params: LedgerParams {
                min_tx_fee: 5,
                ..params()
            },
            balances: vec![(pk(1), 100)],
        },
        chain(),
    )
    .expect("genesis");
    let send = |nonce: u64, fee: u64, amount: u64| {
        Transaction {
            chain: chain(),
            sender: pk(1),
            nonce,
            fee,
            kind: TxKind::Transfer { to: pk(2), amount },
        }
        .sign(&key(1))
    };
    assert_eq!(
        state.apply_tx(&send(0, 4, 10), verifier()),
        Err(TxError::FeeTooLow { offered: 4, min: 5 })
    );
    state
        .apply_tx(&send(0, 5, 10), verifier())
        .expect("transfer");
    assert_eq!(state.account(&pk(1)).balance, 85);
    assert_eq!(state.sinks().1, 5);
    // 85 cannot pay a fee of 5 and move 81: refused, the fee stays with the sender.
    let before = state.clone();
    assert!(matches!(
        state.apply_tx(&send(1, 5, 81), verifier()),
        Err(TxError::InsufficientBalance { .. })
    ));
    assert_eq!(state, before);
    // Signed for another chain: never applies here.
    let mut elsewhere = send(1, 5, 1).tx;
    elsewhere.chain = ChainTag::of("another");
    assert_eq!(
        state.apply_tx(&elsewhere.sign(&key(1)), verifier()),
        Err(TxError::WrongChain)
    );
    assert_eq!(state.total_supply(), 100);
}

#[test]
fn genesis_refuses_unusable_data_parameters() {
    let with = |change: &dyn Fn(&mut LedgerParams)| {
        let mut p = params();
        change(&mut p);
        LedgerState::genesis(
            &Genesis {
                params: p,
                balances: vec![],
            },
            chain(),
        )
    };
    assert!(with(&|_| {}).is_ok());
    assert!(with(&|p| p.data_dims = 4).is_err());
    // One row holds 126,976 bytes: a d = 1 network cannot carry an 8 MiB block.
    assert!(with(&|p| {
        p.data_dims = 1;
        p.max_block_data = 8 << 20;
    })
    .is_err());
    assert!(with(&|p| {
        p.data_dims = 1;
        p.max_block_data = 100_000;
    })
    .is_ok());
    // Parameters left out of a genesis file take their defaults.
    let json = r#"{"epoch_blocks":5,"unbonding_epochs":2,"min_stake":1,"bytes_per_stake":1,
        "price_per_mib_epoch":1,"data_shards":4,"parity_shards":2,"challenges_per_shard":2,
        "response_window":3,"failure_threshold":1,"slash_bps":1}"#;
    let p: LedgerParams = serde_json::from_str(json).expect("params");
    assert_eq!((p.data_dims, p.max_block_data), (2, 8 << 20));
}

#[test]
fn rejected_transactions_say_why_and_change_nothing() {
    let mut s = genesis(3);
    apply(
        &mut s,
        1,
        TxKind::RegisterOrchestrator {
            stake: 2_000,
            commission_bps: 1_000,
        },
    )
    .expect("register");
    let before = s.clone();

    let mut forged = tx(
        &s,
        2,
        TxKind::Transfer {
            to: pk(3),
            amount: 5,
        },
    );
    forged.signature = key(3).sign(&forged.tx.digest().0);
    assert_eq!(s.apply_tx(&forged, verifier()), Err(TxError::BadSignature));

    let replay = Transaction {
        chain: chain(),
        fee: 0,
        sender: pk(1),
        nonce: 0,
        kind: TxKind::AddStake { amount: 1 },
    }
    .sign(&key(1));
    assert_eq!(
        s.apply_tx(&replay, verifier()),
        Err(TxError::WrongNonce {
            expected: 1,
            found: 0
        })
    );

    let too_much = TxKind::Transfer {
        to: pk(3),
        amount: FUNDS + 1,
    };
    assert!(matches!(
        apply(&mut s, 2, too_much),
        Err(TxError::InsufficientBalance { .. })
    ));

    let join_unknown = TxKind::JoinOrchestrator {
        orchestrator: pk(3),
        capacity: 10,
        node: vec![1],
    };
    assert_eq!(
        apply(&mut s, 2, join_unknown),
        Err(TxError::UnknownOrchestrator(pk(3)))
    );

    // 2 000 stake backs 2 000 MiB: a 3 000 MiB join is over capacity.
    let greedy = TxKind::JoinOrchestrator {
        orchestrator: pk(1),
        capacity: 3_000 << 20,
        node: vec![1],
    };
    assert!(matches!(
        apply(&mut s, 2, greedy),
        Err(TxError::OverCapacity { .. })
    ));

    assert!(matches!(
        apply(
            &mut s,
            3,
            TxKind::RegisterOrchestrator {
                stake: 10,
                commission_bps: 0
            }
        ),
        Err(TxError::StakeTooLow { .. })
    ));
    assert_eq!(
        apply(&mut s, 3, TxKind::LeaveOrchestrator),
        Err(TxError::NotProvider)
    );
    assert_eq!(
        apply(&mut s, 3, TxKind::Unbond { amount: 1 }),
        Err(TxError::UnknownOrchestrator(pk(3)))
    );
    let no_room = TxKind::StoreBlob {
        blob_id: BlobId::of(b"x"),
        size: 1000,
        policy: PolicySpec::Erasure {
            shard_size: 256,
            shards: vec![BlobId::of(b"s"); 6],
        },
        epochs: 1,
    };
    assert!(matches!(
        apply(&mut s, 2, no_room),
        Err(TxError::NoOrchestrator { .. })
    ));

    assert_eq!(s, before, "rejected transactions changed the state");
}

/// Six providers join orchestrator 1; returns the state.
fn network_with_providers(providers: u8) -> LedgerState {
    let mut s = genesis(2 + providers);
    apply(
        &mut s,
        1,
        TxKind::RegisterOrchestrator {
            stake: 10_000,
            commission_bps: 2_000,
        },
    )
    .expect("register");
    for p in 3..3 + providers {
        let join = TxKind::JoinOrchestrator {
            orchestrator: pk(1),
            capacity: 64 << 20,
            node: vec![p],
        };
        apply(&mut s, p, join).expect("join");
    }
    s
}

/// Stores `blob` with the erasure policy from account 2; returns its shards.
fn store_erasure(s: &mut LedgerState, blob: &[u8], epochs: u64) -> (BlobId, Vec<Vec<u8>>) {
    let layout = ErasureLayout::new(blob.len() as u64, 4, 2).expect("layout");
    let (shards, ids) = encode_all(blob, layout).expect("encode");
    let blob_id = BlobId::of(blob);
    let policy = PolicySpec::Erasure {
        shard_size: layout.shard_size(),
        shards: ids,
    };
    apply(
        s,
        2,
        TxKind::StoreBlob {
            blob_id,
            size: blob.len() as u64,
            policy,
            epochs,
        },
    )
    .expect("store");
    (blob_id, shards)
}

/// Proof of leaf `leaf` of `shard`, as a provider holding the shard would build it.
fn prove(shard: &[u8], leaf: u64) -> (Vec<u8>, MerkleProof) {
    let mut b = BlobIdBuilder::new();
    b.update(shard);
    let (_, tree, _) = b.finish();
    let chunk = (leaf / 64) as usize;
    let chunk_bytes = &shard[chunk * CHUNK_SIZE..((chunk + 1) * CHUNK_SIZE).min(shard.len())];
    let chunk_proof = tree.proof(chunk as u64).expect("chunk proof");
    let proof = leaf_proof(chunk_bytes, &chunk_proof, (leaf % 64) as u32).expect("leaf proof");
    let layout = BlobLayout::new(shard.len() as u64).expect("layout");
    let start = leaf as usize * crate::blob::LEAF_SIZE;
    let len = layout.leaf_len(leaf).expect("leaf in range");
    (shard[start..start + len].to_vec(), proof)
}

fn answer(
    s: &mut LedgerState,
    provider: u8,
    blob: BlobId,
    shard: u16,
    epoch: Epoch,
    data: &[u8],
) -> Result<(), TxError> {
    let leaves: Vec<u64> = s
        .challenges_for(&pk(provider))
        .find(|(b, sh, e, _)| *b == blob && *sh == shard && *e == epoch)
        .map(|(_, _, _, c)| c.leaves.clone())
        .expect("challenge open");
    let answers = leaves
        .iter()
        .map(|leaf| {
            let (data, proof) = prove(data, *leaf);
            LeafAnswer {
                leaf: *leaf,
                data,
                proof,
            }
        })
        .collect();
    apply(
        s,
        provider,
        TxKind::ChallengeResponse {
            blob_id: blob,
            shard,
            epoch,
            answers,
        },
    )
}

fn index_of(p: &PublicKey) -> u8 {
    (1..=20).find(|i| pk(*i) == *p).expect("known key")
}

#[test]
fn erasure_blob_is_placed_paid_challenged_and_repaired_after_a_failure() {
    let mut s = network_with_providers(7);
    let supply = s.total_supply();
    let blob: Vec<u8> = (0..600_000u32).map(|i| (i * 7 + i / 4096) as u8).collect();
    let (id, shards) = store_erasure(&mut s, &blob, 6);
    let stored = s.blob(&id).expect("stored").clone();
    let holders: Vec<PublicKey> = stored.placement.iter().flatten().copied().collect();
    assert_eq!(holders.len(), 6);
    let mut distinct = holders.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "two shards on one provider");
    assert_eq!(stored.orchestrator, Some(pk(1)));
    let PolicySpec::Erasure {
        shards: shard_ids,
        shard_size,
    } = stored.policy.clone()
    else {
        panic!("an erasure blob");
    };
    for (i, holder) in holders.iter().enumerate() {
        let duty = ShardDuty {
            blob: id,
            index: i as u16,
            shard: shard_ids[i],
            size: shard_size,
        };
        assert_eq!(
            s.shards_placed_at(holder),
            vec![duty],
            "provider {i}'s shards"
        );
    }
    assert!(s.repairs_due(&pk(1)).is_empty());

    // Epoch 1 starts at height 5: fees are paid; shards placed in epoch 0 are still in
    // their grace epoch, so nothing is challenged yet.
    let orch_before = s.account(&pk(1)).balance;
    let events = run_to(&mut s, 5);
    assert!(events.contains(&LedgerEvent::EpochStarted(Epoch(1))));
    assert!(
        s.account(&pk(1)).balance > orch_before,
        "orchestrator got its commission"
    );
    assert!(holders.iter().all(|h| s.challenges_for(h).next().is_none()));
    assert_eq!(s.total_supply(), supply);

    // Epoch 2 (height 10): every shard is challenged.
    let events = run_to(&mut s, 10);
    assert!(events.contains(&LedgerEvent::EpochStarted(Epoch(2))));

    let due = s.challenges_due(&holders[1]);
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].shard.shard, due[0].epoch), (shard_ids[1], Epoch(2)));
    assert!(!due[0].leaves.is_empty());

    // Everyone but the holder of shard 0 answers; a wrong answer is refused.
    let lazy = holders[0];
    let wrong = answer(&mut s, index_of(&holders[1]), id, 1, Epoch(2), &shards[2]);
    assert!(matches!(wrong, Err(TxError::WrongAnswer(_))));
    for (i, holder) in holders.iter().enumerate().skip(1) {
        answer(&mut s, index_of(holder), id, i as u16, Epoch(2), &shards[i]).expect("valid answer");
    }
    let stake_before = s.orchestrator(&pk(1)).expect("orch").stake;
    let events = run_to(&mut s, 13);
    assert!(events
        .iter()
        .any(|e| matches!(e, LedgerEvent::ChallengeFailed { provider, .. } if *provider == lazy)));
    assert!(events
        .iter()
        .any(|e| matches!(e, LedgerEvent::ProviderEvicted { provider, .. } if *provider == lazy)));
    let orch = s.orchestrator(&pk(1)).expect("orch");
    assert_eq!(orch.stake, stake_before - stake_before / 10, "10 % slashed");
    assert_eq!((orch.challenges_passed, orch.challenges_failed), (5, 1));
    assert!(
        s.provider(&lazy).is_none(),
        "the failing provider is evicted"
    );
    let moved = s.blob(&id).expect("stored").placement[0].expect("shard 0 re-placed");
    assert_eq!(
        s.blob(&id).expect("stored").repair,
        vec![true, false, false, false, false, false]
    );
    assert!(
        !holders.contains(&moved),
        "shard 0 went to the spare provider"
    );
    let rebuild = s.repairs_due(&pk(1));
    assert_eq!(rebuild.len(), 1);
    assert_eq!((rebuild[0].index, rebuild[0].shard), (0, shard_ids[0]));
    assert_eq!(
        s.shards_placed_at(&moved),
        rebuild,
        "the new holder holds shard 0"
    );
    assert!(
        s.repairs_due(&pk(2)).is_empty(),
        "only the blob's orchestrator repairs"
    );
    assert!(
        s.shards_placed_at(&lazy).is_empty(),
        "the evicted provider holds nothing"
    );
    assert_eq!(
        s.total_supply(),
        supply,
        "slashing moves stake to the slashed sink"
    );

    // The new holder of shard 0 is not challenged in its grace epoch (3).
    run_to(&mut s, 15);
    assert!(s.challenges_for(&moved).next().is_none());

    // Epoch 4: the new holder is challenged and, answering, clears the repair flag.
    run_to(&mut s, 20);
    answer(&mut s, index_of(&moved), id, 0, Epoch(4), &shards[0]).expect("new holder answers");
    assert!(s.blob(&id).expect("stored").repair.iter().all(|r| !r));
    assert!(
        s.repairs_due(&pk(1)).is_empty(),
        "repaired once the new holder answers"
    );

    // The blob expires after its 6 paid epochs; escrow is exactly used up.
    let events = run_to(&mut s, 30);
    assert!(events.contains(&LedgerEvent::BlobExpired(id)));
    assert!(s.blob(&id).is_none());
    assert_eq!(s.sinks().0, 0, "escrow fully paid out");
    assert!(s.providers_used_is_zero());
    assert_eq!(s.total_supply(), supply);
}

#[test]
fn unbonded_stake_returns_after_the_unbonding_period() {
    let mut s = genesis(1);
    apply(
        &mut s,
        1,
        TxKind::RegisterOrchestrator {
            stake: 5_000,
            commission_bps: 0,
        },
    )
    .expect("register");
    assert!(matches!(
        apply(&mut s, 1, TxKind::Unbond { amount: 4_500 }),
        Err(TxError::UnbondBelowMinimum { .. })
    ));
    apply(&mut s, 1, TxKind::Unbond { amount: 2_000 }).expect("unbond");
    let after_unbond = s.account(&pk(1)).balance;
    run_to(&mut s, 5);
    assert_eq!(
        s.account(&pk(1)).balance,
        after_unbond,
        "not before the period ends"
    );
    run_to(&mut s, 10);
    assert_eq!(s.account(&pk(1)).balance, after_unbond + 2_000);
}

#[test]
fn replaying_the_same_blocks_reaches_the_same_state_root() {
    let build = || {
        let mut s = network_with_providers(6);
        let blob = vec![7u8; 300_000];
        store_erasure(&mut s, &blob, 2);
        apply(
            &mut s,
            2,
            TxKind::Transfer {
                to: pk(1),
                amount: 77,
            },
        )
        .expect("transfer");
        run_to(&mut s, 12);
        s
    };
    let (a, b) = (build(), build());
    assert_eq!(a.state_root(), b.state_root());
    let mut c = build();
    apply(
        &mut c,
        2,
        TxKind::Transfer {
            to: pk(1),
            amount: 1,
        },
    )
    .expect("transfer");
    assert_ne!(a.state_root(), c.state_root());
}

/// One random operation of the property test.
#[derive(Debug, Clone)]
enum Op {
    Transfer(u8, u8, u64),
    Register(u8, u64, u64),
    AddStake(u8, u64),
    Unbond(u8, u64),
    Join(u8, u8, u64),
    Leave(u8),
    Store(u8, u64, u64, bool),
    BadNonce(u8),
    EndBlock,
}

fn op() -> impl Strategy<Value = Op> {
    let who = 1u8..6;
    prop_oneof![
        (who.clone(), who.clone(), 0u64..400_000).prop_map(|(a, b, n)| Op::Transfer(a, b, n)),
        (who.clone(), 0u64..20_000, 0u64..12_000).prop_map(|(a, s, c)| Op::Register(a, s, c)),
        (who.clone(), 0u64..5_000).prop_map(|(a, n)| Op::AddStake(a, n)),
        (who.clone(), 0u64..20_000).prop_map(|(a, n)| Op::Unbond(a, n)),
        (who.clone(), who.clone(), 0u64..(16 << 20)).prop_map(|(a, b, c)| Op::Join(a, b, c)),
        who.clone().prop_map(Op::Leave),
        (who.clone(), 0u64..(8 << 20), 0u64..4, any::<bool>())
            .prop_map(|(a, s, e, er)| Op::Store(a, s, e, er)),
        who.prop_map(Op::BadNonce),
        Just(Op::EndBlock),
        Just(Op::EndBlock),
    ]
}

fn kind_of(op: &Op, n: u64) -> Option<(u8, TxKind)> {
    Some(match op.clone() {
        Op::Transfer(a, b, amount) => (a, TxKind::Transfer { to: pk(b), amount }),
        Op::Register(a, stake, commission_bps) => (
            a,
            TxKind::RegisterOrchestrator {
                stake,
                commission_bps,
            },
        ),
        Op::AddStake(a, amount) => (a, TxKind::AddStake { amount }),
        Op::Unbond(a, amount) => (a, TxKind::Unbond { amount }),
        Op::Join(a, b, capacity) => (
            a,
            TxKind::JoinOrchestrator {
                orchestrator: pk(b),
                capacity,
                node: vec![a],
            },
        ),
        Op::Leave(a) => (a, TxKind::LeaveOrchestrator),
        Op::Store(a, size, epochs, erasure) => {
            let blob_id = BlobId::of(&n.to_be_bytes());
            let policy = if erasure {
                let layout = ErasureLayout::new(size, 4, 2).ok()?;
                let shards = (0..6u8).map(|i| BlobId::of(&[i])).collect();
                PolicySpec::Erasure {
                    shard_size: layout.shard_size(),
                    shards,
                }
            } else {
                PolicySpec::Replicated
            };
            (
                a,
                TxKind::StoreBlob {
                    blob_id,
                    size,
                    policy,
                    epochs,
                },
            )
        }
        Op::BadNonce(_) | Op::EndBlock => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Total supply is conserved by every sequence (fees burned and stake slashed land in
    /// their sinks), and every rejected transaction leaves the state exactly as it was.
    #[test]
    fn supply_is_conserved_and_rejections_are_no_ops(ops in proptest::collection::vec(op(), 1..60)) {
        let mut s = genesis(5);
        let supply = s.total_supply();
        for (n, op) in ops.iter().enumerate() {
            match op {
                Op::EndBlock => {
                    let h = s.height() + 1;
                    s.end_block(h, &seed(h));
                }
                Op::BadNonce(a) => {
                    let before = s.clone();
                    let stale = Transaction {
                        chain: chain(),
                        fee: 0,
                        sender: pk(*a),
                        nonce: s.account(&pk(*a)).nonce + 1,
                        kind: TxKind::Transfer { to: pk(1), amount: 1 },
                    }
                    .sign(&key(*a));
                    prop_assert!(s.apply_tx(&stale, verifier()).is_err());
                    prop_assert_eq!(&s, &before);
                }
                _ => {
                    let Some((who, kind)) = kind_of(op, n as u64) else { continue };
                    let before = s.clone();
                    if s.apply_tx(&tx(&s, who, kind), verifier()).is_err() {
                        prop_assert_eq!(&s, &before);
                    }
                }
            }
            prop_assert_eq!(s.total_supply(), supply);
        }
    }
}

#[test]
fn credits_for_receipts_are_what_the_ledger_accepts_and_skip_unlisted_provers() {
    let mut s = genesis(4);
    for i in [1, 2] {
        let offer = TxKind::OfferCompute {
            delegator: true,
            orchestrator: false,
            node: vec![i],
        };
        apply(&mut s, i, offer).expect("offer");
    }
    let job = Digest::of(&[b"a job"]);
    let anchorer = pk(4);
    let node = |level: u16, index: u32| nexus_compute::NodeRef { level, index };
    let receipt = |i: u8, n: nexus_compute::NodeRef| {
        let message = receipt_message(&s.chain(), &job, &anchorer, n);
        (n, pk(i), key(i).sign(&message.0))
    };
    // Prover 3 offers no compute: its receipt earns nothing.
    let receipts = vec![
        receipt(2, node(0, 1)),
        receipt(1, node(1, 0)),
        receipt(1, node(0, 0)),
        receipt(3, node(0, 2)),
    ];
    let credits = s.credits_for(receipts);
    let mut provers = vec![pk(1), pk(2)];
    provers.sort();
    assert_eq!(
        credits.iter().map(|c| c.prover).collect::<Vec<_>>(),
        provers,
        "listed provers only, in account order"
    );
    for credit in &credits {
        assert!(
            credit.nodes.windows(2).all(|w| w[0] < w[1]),
            "nodes in order"
        );
        let messages: Vec<Digest> = credit
            .nodes
            .iter()
            .map(|n| receipt_message(&s.chain(), &job, &anchorer, *n))
            .collect();
        let refs: Vec<&[u8]> = messages.iter().map(|m| &m.0[..]).collect();
        assert!(credit.prover.verify_aggregate(&refs, &credit.signature));
    }
    let of_1 = credits
        .iter()
        .find(|c| c.prover == pk(1))
        .expect("prover 1");
    assert_eq!(of_1.nodes, vec![node(0, 0), node(1, 0)]);
    assert!(s.credits_for(Vec::new()).is_empty());
}
