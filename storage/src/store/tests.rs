//! Store tests on a real fjall database in a temporary directory.

use super::*;
use crate::blob::CHUNK_SIZE;
use crate::block::Header;
use crate::block::{BlobRegistration, Height};
use crate::chain::{create_genesis, propose_child, ChainGenesis, Transition};
use crate::keys::SigningKey;
use crate::ledger::{Genesis, LedgerParams, PolicySpec, Transaction, TxKind};
use crate::ledger::{LedgerState, SignedTransaction, TxError};
use crate::store::Stage;
use crate::test_support::verifier;
use nexus_consensus::ChainTag;

/// Bytes that do not repeat within a shard, so that no two shards are equal.
/// A chain validated by `key` alone.
fn solo(key: &SigningKey, ledger: Genesis) -> ChainGenesis {
    ChainGenesis::solo("store-test", key, "", ledger, 1).expect("genesis")
}

/// `key` proposes the child of `parent` in the next round.
fn next(
    key: &SigningKey,
    parent: &Header,
    state: &LedgerState,
    txs: Vec<SignedTransaction>,
) -> (Transition, Vec<(SignedTransaction, TxError)>) {
    let round = parent.round.next().expect("round");
    let built =
        propose_child(key.public(), round, parent, state, txs, 2, verifier()).expect("block");
    (built.step, built.refused)
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

fn ingest(store: &Store, bytes: &[u8]) -> crate::store::Ingested {
    let mut w = store.ingest().expect("ingest");
    for piece in bytes.chunks(100_000) {
        w.write(piece).expect("write");
    }
    w.finish().expect("finish")
}

fn read_all(store: &Store, id: &BlobId) -> Vec<u8> {
    let record = store.blob(id).expect("read").expect("known");
    let layout = crate::blob::BlobLayout::new(record.size).expect("layout");
    layout
        .indices()
        .flat_map(|i| store.read_chunk(id, i).expect("chunk").data)
        .collect()
}

#[test]
fn ingest_read_back_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = data(3 * CHUNK_SIZE + 17, 1);
    let id = {
        let store = Store::open(dir.path(), None).expect("open");
        let out = ingest(&store, &bytes);
        assert_eq!(out.blob_id, BlobId::of(&bytes));
        assert!(out.newly_stored);
        assert_eq!(read_all(&store, &out.blob_id), bytes);
        assert!(
            !ingest(&store, &bytes).newly_stored,
            "second copy is deduplicated"
        );
        out.blob_id
    };
    let store = Store::open(dir.path(), None).expect("reopen");
    assert_eq!(read_all(&store, &id), bytes);
    assert_eq!(store.stats().expect("stats").blobs_complete, 1);
    assert_eq!(store.stats().expect("stats").used_bytes, bytes.len() as u64);
}

#[test]
fn a_store_whose_manifest_points_nowhere_is_named_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path(), None).expect("open");
        ingest(&store, &data(100_000, 1));
    }
    // Every keyspace's pointer to its current version names a file that is not there.
    let keyspaces = dir.path().join("keyspaces");
    for entry in std::fs::read_dir(&keyspaces).expect("keyspaces").flatten() {
        let current = entry.path().join("current");
        if current.exists() {
            std::fs::write(&current, [0xff; 8]).expect("damage");
        }
    }
    let err = Store::open(dir.path(), None).err().expect("refused");
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("manifest"), "{err}");
}

#[test]
fn empty_blob_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let out = ingest(&store, &[]);
    assert_eq!(out.blob_id, BlobId::of(&[]));
    assert_eq!(read_all(&store, &out.blob_id), Vec::<u8>::new());
}

#[test]
fn unfinished_upload_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path(), None).expect("open");
        let mut w = store.ingest().expect("ingest");
        w.write(&data(2 * CHUNK_SIZE, 2)).expect("write");
        // Simulate a crash: the writer neither finishes nor cleans up.
        w.abandon_for_test();
        store.persist().expect("persist");
    }
    let store = Store::open(dir.path(), None).expect("reopen");
    let stats = store.stats().expect("stats");
    assert_eq!(
        (stats.blobs_complete, stats.blobs_partial, stats.used_bytes),
        (0, 0, 0)
    );
    assert!(
        store.files.all().is_empty(),
        "the interrupted upload's file was deleted"
    );
}

#[test]
fn a_deleted_copy_gives_its_room_back_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let before = allocated_bytes(dir.path());
    let id = ingest(&store, &data(8 * CHUNK_SIZE, 4)).blob_id;
    let held = allocated_bytes(dir.path());
    assert!(held >= before + 8 * CHUNK_SIZE as u64, "{before} -> {held}");
    assert!(store.delete_blob(&id).expect("delete"));
    let after = allocated_bytes(dir.path());
    assert!(
        after < before + CHUNK_SIZE as u64,
        "the file's room came back: {before} -> {held} -> {after}"
    );
}

#[test]
fn chunks_of_an_older_store_move_into_blob_files_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = data(3 * CHUNK_SIZE + 7, 5);
    let id = {
        let store = Store::open(dir.path(), None).expect("open");
        let id = ingest(&store, &bytes).blob_id;
        // As an older store kept them: the chunks in the database, no blob file.
        let seq = store.blob(&id).expect("read").expect("record").seq;
        for (i, chunk) in bytes.chunks(CHUNK_SIZE).enumerate() {
            store
                .ks
                .chunks
                .insert(chunk_key(seq, ChunkIndex(i as u32)), chunk)
                .expect("insert");
        }
        store.files.delete(seq).expect("delete");
        store.persist().expect("persist");
        id
    };
    let store = Store::open(dir.path(), None).expect("reopen");
    assert_eq!(read_all(&store, &id), bytes);
    assert_eq!(store.ks.chunks.iter().count(), 0);
}

#[test]
fn quota_is_enforced_and_released() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), Some(CHUNK_SIZE as u64)).expect("open");
    assert!(store.check_room(CHUNK_SIZE as u64).is_ok());
    assert!(store.check_room(CHUNK_SIZE as u64 + 1).is_err());
    let mut w = store.ingest().expect("ingest");
    let err = w.write(&data(CHUNK_SIZE + 1, 3)).expect_err("over quota");
    assert!(matches!(err, StoreError::QuotaExceeded { .. }), "{err}");
    drop(w);
    assert_eq!(store.stats().expect("stats").used_bytes, 0);
    ingest(&store, &data(CHUNK_SIZE, 3));
}

#[test]
fn corrupt_chunk_is_detected_and_can_be_repaired_from_a_replica() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let bytes = data(2 * CHUNK_SIZE, 4);
    let id = ingest(&store, &bytes).blob_id;
    let good = store.read_chunk(&id, ChunkIndex(1)).expect("good");
    let mut bad = good.data.clone();
    bad[5] ^= 1;
    store.corrupt_chunk_for_test(&id, ChunkIndex(1), &bad);
    assert!(matches!(
        store.read_chunk(&id, ChunkIndex(1)),
        Err(ReadChunkError::Corrupt { .. })
    ));
    store.discard_chunk(&id, ChunkIndex(1)).expect("discard");
    assert_eq!(
        store.missing_chunks(&id).expect("missing"),
        vec![ChunkIndex(1)]
    );
    assert!(!store.blob(&id).expect("blob").expect("known").complete);
    // A wrong chunk from a peer is refused; the right one repairs the blob.
    assert!(matches!(
        store.put_chunk(&id, ChunkIndex(1), &bad, &good.proof),
        Err(PutChunkError::Invalid(_))
    ));
    store
        .put_chunk(&id, ChunkIndex(1), &good.data, &good.proof)
        .expect("repair");
    assert!(store.complete_replica(&id).expect("complete"));
    assert_eq!(read_all(&store, &id), bytes);
}

#[test]
fn replica_fills_chunk_by_chunk_and_survives_reopen() {
    let (src_dir, dst_dir) = (
        tempfile::tempdir().expect("t"),
        tempfile::tempdir().expect("t"),
    );
    let src = Store::open(src_dir.path(), None).expect("open");
    let bytes = data(4 * CHUNK_SIZE + 3, 5);
    let id = ingest(&src, &bytes).blob_id;
    let reg = BlobRegistration {
        blob_id: id,
        size: bytes.len() as u64,
        policy: PolicySpec::Replicated,
    };
    {
        let dst = Store::open(dst_dir.path(), None).expect("open");
        dst.begin_replica(&reg).expect("begin");
        for i in [0, 2] {
            let c = src.read_chunk(&id, ChunkIndex(i)).expect("chunk");
            dst.put_chunk(&id, ChunkIndex(i), &c.data, &c.proof)
                .expect("put");
        }
        assert!(!dst.complete_replica(&id).expect("incomplete"));
        dst.persist().expect("persist");
    }
    let dst = Store::open(dst_dir.path(), None).expect("reopen");
    let missing = dst.missing_chunks(&id).expect("missing");
    assert_eq!(missing, vec![ChunkIndex(1), ChunkIndex(3), ChunkIndex(4)]);
    for i in missing {
        let c = src.read_chunk(&id, i).expect("chunk");
        dst.put_chunk(&id, i, &c.data, &c.proof).expect("put");
    }
    assert!(dst.complete_replica(&id).expect("complete"));
    assert_eq!(read_all(&dst, &id), bytes);
}

#[test]
fn chain_appends_only_children_and_indexes_registrations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SigningKey::from_seed(&[9; 32]);
    let genesis = Genesis {
        params: LedgerParams::default(),
        balances: vec![(key.public(), 1_000_000)],
    };
    let id = |i: u8| BlobId::of(&[i]);
    let store_tx = |i: u8| {
        let kind = TxKind::StoreBlob {
            blob_id: id(i),
            size: 1,
            policy: PolicySpec::Replicated,
            epochs: 1,
        };
        Transaction {
            chain: ChainTag::of("store-test"),
            fee: 1,
            sender: key.public(),
            nonce: u64::from(i) - 1,
            kind,
        }
        .sign(&key)
    };
    let ledger_root = {
        let store = Store::open(dir.path(), None).expect("open");
        let g = create_genesis(solo(&key, genesis)).expect("genesis");
        let txs = vec![store_tx(1), store_tx(2)];
        let (b1, refused) = next(&key, &g.block.header, &g.ledger, txs);
        assert!(refused.is_empty());
        assert!(matches!(
            store.append_block(&b1, None),
            Err(AppendError::NotNext { .. })
        ));
        store.append_block(&g, None).expect("genesis");
        store.append_block(&b1, None).expect("b1");
        assert!(store.append_block(&b1, None).is_err(), "same block twice");
        assert_eq!(store.unreplicated().expect("list").len(), 2);
        let tx_id = b1.block.transactions[1].id();
        assert_eq!(
            store.transaction_location(&tx_id).expect("read"),
            Some((Height(1), 1))
        );
        b1.ledger.state_root()
    };
    let store = Store::open(dir.path(), None).expect("reopen");
    let tip = store.tip().expect("tip");
    assert_eq!(tip.header.height, Height(1));
    assert_eq!(
        tip.ledger.state_root(),
        ledger_root,
        "the ledger survives a restart"
    );
    let proof = store
        .inclusion_proof(&id(2))
        .expect("read")
        .expect("registered");
    assert_eq!(proof.verify(&id(2)), Ok(()));
    assert_eq!(store.blocks_from(Height(0), 10).expect("range").len(), 2);
    assert_eq!(store.blocks_from(Height(1), 10).expect("range").len(), 1);
    assert!(store.inclusion_proof(&id(3)).expect("read").is_none());
    let reg: BlobRegistration = store.registration(&id(1)).expect("read").expect("known").2;
    assert_eq!(reg.size, 1);
}

#[test]
fn stored_blob_encodes_to_stored_shards_and_decodes_from_any_k() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let bytes = data(3 * CHUNK_SIZE + 999, 8);
    let id = ingest(&store, &bytes).blob_id;
    let layout = crate::erasure::ErasureLayout::new(bytes.len() as u64, 4, 2).expect("layout");
    let shards = store.encode_shards(&id, layout, None).expect("encode");
    assert_eq!(shards.len(), 6);
    let (_, expected) = crate::erasure::encode_all(&bytes, layout).expect("in memory");
    assert_eq!(shards, expected, "stored shards are the in-memory encoding");

    // Lose two data shards: decode from the remaining four.
    for lost in &shards[..2] {
        let record = store.blob(lost).expect("read").expect("stored");
        store.delete_seq(record.seq).expect("delete");
        store.ks.blobs.remove(lost.0).expect("forget");
    }
    let mut out = Vec::new();
    store
        .decode_shards(layout, &shards, &mut |piece| {
            out.extend(piece);
            Ok(())
        })
        .expect("decode");
    assert_eq!(out, bytes);

    // A lost shard is rebuilt, byte for byte, from the others.
    store.rebuild_shard(layout, &shards, 0).expect("rebuild");
    assert!(
        store
            .blob(&shards[0])
            .expect("read")
            .expect("rebuilt")
            .complete
    );
    assert!(store.delete_blob(&shards[0]).expect("delete"));
    assert!(!store.delete_blob(&shards[0]).expect("delete again"));

    // One more loss leaves three: a clear error.
    let record = store.blob(&shards[2]).expect("read").expect("stored");
    store.delete_seq(record.seq).expect("delete");
    store.ks.blobs.remove(shards[2].0).expect("forget");
    let err = store
        .decode_shards(layout, &shards, &mut |_| Ok(()))
        .expect_err("too few");
    assert!(
        err.to_string().contains("3 shards available, 4 needed"),
        "{err}"
    );
}

#[test]
fn expired_blobs_are_released_and_never_fetched_again() {
    use crate::ledger::LedgerEvent;
    use nexus_das::{encode::ExtendedData, Coord};

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let key = SigningKey::from_seed(&[4; 32]);
    let genesis = Genesis {
        params: LedgerParams {
            epoch_blocks: 2,
            ..LedgerParams::default()
        },
        balances: vec![(key.public(), 1 << 40)],
    };
    // Held: a replicated blob paid for one epoch and a das blob paid for two (this node
    // uploaded it). Not held: a replicated blob paid for one epoch and one paid for five.
    let (held, das) = (data(300_000, 1), data(5_000, 2));
    let (missing, lasting) = (BlobId::of(b"missing"), BlobId::of(b"lasting"));
    for bytes in [&held, &das] {
        ingest(&store, bytes);
    }
    let (held, das_bytes) = (BlobId::of(&held), das);
    let das = BlobId::of(&das_bytes);
    let grid = ExtendedData::encode(&das_bytes, 2).expect("encode");
    let commitment = crate::block::DataHeader {
        root: grid.root(),
        params: *grid.params(),
    };
    let registrations = [
        (held, 300_000, PolicySpec::Replicated, 1),
        (das, 5_000, PolicySpec::Das { data: commitment }, 2),
        (missing, 10, PolicySpec::Replicated, 1),
        (lasting, 10, PolicySpec::Replicated, 5),
    ];
    let txs = registrations
        .iter()
        .enumerate()
        .map(|(nonce, (blob_id, size, policy, epochs))| {
            Transaction {
                chain: ChainTag::of("store-test"),
                fee: 1,
                sender: key.public(),
                nonce: nonce as u64,
                kind: TxKind::StoreBlob {
                    blob_id: *blob_id,
                    size: *size,
                    policy: policy.clone(),
                    epochs: *epochs,
                },
            }
            .sign(&key)
        })
        .collect();
    let g = create_genesis(solo(&key, genesis)).expect("genesis");
    let (b1, refused) = next(&key, &g.block.header, &g.ledger, txs);
    assert!(refused.is_empty(), "{refused:?}");
    store.append_block(&g, None).expect("genesis");
    store.append_block(&b1, None).expect("b1");
    let coords = [Coord { row: 0, column: 0 }, Coord { row: 1, column: 5 }];
    let samples: Vec<_> = coords.iter().filter_map(|c| grid.sample(*c)).collect();
    store.put_cells(Height(1), &samples).expect("cells");
    let unreplicated = || -> Vec<BlobId> {
        let list = store.unreplicated().expect("list");
        list.iter().map(|r| r.blob_id).collect()
    };
    assert_eq!(unreplicated(), vec![missing, lasting]);

    // Empty blocks up to height `to`; returns the blobs that expired on the way.
    let advance = |to: u64| -> Vec<BlobId> {
        let mut expired = Vec::new();
        while store.tip().expect("tip").header.height.0 < to {
            let tip = store.tip().expect("tip");
            let (b, _) = next(&key, &tip.header, &tip.ledger, vec![]);
            store.append_block(&b, None).expect("append");
            expired.extend(b.events.iter().filter_map(|e| match e {
                LedgerEvent::BlobExpired(id) => Some(*id),
                _ => None,
            }));
        }
        expired
    };
    // A live blob is never released, whatever the caller asks.
    assert_eq!(
        store.release_expired(&das).expect("release"),
        Released::default()
    );
    let mut expired = advance(2);
    expired.sort();
    let mut expected = vec![held, missing];
    expected.sort();
    assert_eq!(expired, expected);
    assert_eq!(store.release_expired(&held).expect("release").copies, 1);
    assert_eq!(store.blob(&held).expect("read"), None);
    assert_eq!(
        unreplicated(),
        vec![lasting],
        "an expired blob is not fetched again"
    );
    assert!(!store.das_blobs_expired(Height(1)).expect("read"));
    assert_eq!(store.cells_held(Height(1)).expect("cells").len(), 2);

    assert_eq!(advance(4), vec![das]);
    let released = store.release_expired(&das).expect("release");
    assert_eq!(
        released,
        Released {
            copies: 1,
            cells_of: Some(Height(1))
        }
    );
    assert!(store.das_blobs_expired(Height(1)).expect("read"));
    assert!(store.cells_held(Height(1)).expect("cells").is_empty());
    assert_eq!(
        store.stats().expect("stats").used_bytes,
        0,
        "quota given back"
    );
    assert_eq!(store.release_expired(&das).expect("again").copies, 0);
    // The registrations stay provable.
    assert!(store.inclusion_proof(&held).expect("read").is_some());
}

#[test]
fn disk_use_is_what_the_files_occupy_not_the_journal_s_nominal_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("open");
    let empty = store.stats().expect("stats").disk_bytes;
    // fjall reports its journal's nominal size (64 MiB) for an empty database.
    assert!(empty < 8 << 20, "an empty store occupies {empty} bytes");
    ingest(&store, &data(3 << 20, 7));
    store.persist().expect("persist");
    let written = store.stats().expect("stats").disk_bytes;
    assert!(written > empty, "{empty} -> {written}");
}

/// Ingests `bytes` staged with `lease_until_ms`.
fn ingest_staged(store: &Store, bytes: &[u8], lease_until_ms: u64) -> crate::store::Ingested {
    let stage = Stage {
        lease_until_ms,
        kept_by: None,
    };
    let mut w = store.ingest_staged(stage).expect("ingest");
    w.write(bytes).expect("write");
    w.finish().expect("finish")
}

#[test]
fn a_refused_upload_and_its_shards_leave_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), Some(10 << 20)).expect("open");
    let bytes = data(2 * CHUNK_SIZE + 7, 3);
    let id = ingest_staged(&store, &bytes, 1_000).blob_id;
    let layout = crate::erasure::ErasureLayout::new(bytes.len() as u64, 4, 2).expect("layout");
    let stage = Stage {
        lease_until_ms: 1_000,
        kept_by: None,
    };
    let shards = store
        .encode_shards(&id, layout, Some(stage))
        .expect("shards");
    let stats = store.stats().expect("stats");
    assert_eq!(stats.used_bytes, 0, "staged uploads are not stored data");
    assert!(stats.staged_bytes > bytes.len() as u64);
    assert!(shards.iter().all(|s| store.is_staged(s).expect("read")));
    store.discard_staged(&id).expect("discard");
    for blob in std::iter::once(&id).chain(&shards) {
        assert!(store.blob(blob).expect("read").is_none());
        assert!(!store.is_staged(blob).expect("read"));
    }
    let stats = store.stats().expect("stats");
    assert_eq!((stats.used_bytes, stats.staged_bytes), (0, 0));
    // The whole capacity is free again.
    store.check_room(10 << 20).expect("room");
    // A blob stored before is never deleted by a refused upload of the same bytes.
    let kept = ingest(&store, &bytes).blob_id;
    store.discard_staged(&kept).expect("no-op");
    assert_eq!(read_all(&store, &kept), bytes);
}

#[test]
fn staged_uploads_survive_a_crash_and_are_kept_once_registered_or_collected_at_lease_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SigningKey::from_seed(&[6; 32]);
    let (registered, orphan) = (data(5_000, 1), data(6_000, 2));
    {
        let store = Store::open(dir.path(), None).expect("open");
        ingest_staged(&store, &registered, 1_000);
        ingest_staged(&store, &orphan, 1_000);
    }
    // Restarted (as after a crash between upload and registration): both still staged.
    let store = Store::open(dir.path(), None).expect("reopen");
    let (registered, orphan) = (BlobId::of(&registered), BlobId::of(&orphan));
    assert!(store.is_staged(&registered).expect("read") && store.is_staged(&orphan).expect("read"));
    // The first one's registration landed after all.
    let genesis = Genesis {
        params: LedgerParams::default(),
        balances: vec![(key.public(), 1_000_000)],
    };
    let g = create_genesis(solo(&key, genesis)).expect("genesis");
    let register = Transaction {
        chain: ChainTag::of("store-test"),
        fee: 1,
        sender: key.public(),
        nonce: 0,
        kind: TxKind::StoreBlob {
            blob_id: registered,
            size: 5_000,
            policy: PolicySpec::Replicated,
            epochs: 1,
        },
    }
    .sign(&key);
    let (b1, refused) = next(&key, &g.block.header, &g.ledger, vec![register]);
    assert!(refused.is_empty());
    store.append_block(&g, None).expect("genesis");
    store.append_block(&b1, None).expect("b1");
    // Before the lease ends: the registered one is kept, the other waits.
    let done = store.collect_staged(999).expect("collect");
    assert_eq!((done.kept, done.discarded), (vec![registered], vec![]));
    assert!(store.is_staged(&orphan).expect("read"));
    let done = store.collect_staged(1_000).expect("collect");
    assert_eq!((done.kept, done.discarded), (vec![], vec![orphan]));
    assert!(store.blob(&orphan).expect("read").is_none());
    assert!(store.blob(&registered).expect("read").is_some());
    assert!(!store.is_staged(&registered).expect("read"));
}

#[test]
fn a_store_whose_records_are_corrupt_salvages_what_hashes_right_staged_until_registered() {
    let (old_dir, new_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let old = Store::open(old_dir.path(), None).expect("open");
    let intact = data(3 * CHUNK_SIZE + 11, 1);
    let intact_id = ingest(&old, &intact).blob_id;
    let flipped = data(2 * CHUNK_SIZE + 5, 2);
    let flipped_id = ingest(&old, &flipped).blob_id;
    let mut bad = old
        .read_chunk(&flipped_id, ChunkIndex(1))
        .expect("chunk")
        .data;
    bad[9] ^= 1;
    old.corrupt_chunk_for_test(&flipped_id, ChunkIndex(1), &bad);
    // A replica with a hole: chunks 0 and 2 of 3 arrived.
    let holed = data(3 * CHUNK_SIZE, 3);
    let holed_id = BlobId::of(&holed);
    let reg = BlobRegistration {
        blob_id: holed_id,
        size: holed.len() as u64,
        policy: PolicySpec::Replicated,
    };
    old.begin_replica(&reg).expect("replica");
    let mut builder = crate::blob::BlobIdBuilder::new();
    builder.update(&holed);
    let tree = builder.finish().1;
    for i in [0u32, 2] {
        let chunk = &holed[i as usize * CHUNK_SIZE..(i as usize + 1) * CHUNK_SIZE];
        let proof = tree.proof(u64::from(i)).expect("proof");
        old.put_chunk(&holed_id, ChunkIndex(i), chunk, &proof)
            .expect("chunk");
    }
    // A record that no longer decodes: the store does not open any more.
    old.ks.blobs.insert([0xff; 32], b"garbage").expect("insert");
    old.persist().expect("persist");
    drop(old);
    let refused = Store::open(old_dir.path(), None)
        .err()
        .expect("a corrupt record");
    assert!(refused.is_corruption(), "{refused}");

    let new = Store::open(new_dir.path(), None).expect("open");
    let stage = Stage {
        lease_until_ms: 1_000,
        kept_by: None,
    };
    let salvaged = new.salvage_from(old_dir.path(), stage).expect("salvage");
    // The intact blob comes back under its id; the flipped one and the one with a hole
    // only under the ids their bytes hash to (never their own).
    assert!(salvaged.blobs.contains(&intact_id));
    assert!(!salvaged.blobs.contains(&flipped_id));
    assert!(!salvaged.blobs.contains(&holed_id));
    assert_eq!(salvaged.blobs.len(), 3);
    assert_eq!(read_all(&new, &intact_id), intact);
    // Staged: not stored data until registered, and collected at lease end if never.
    assert!(new.is_staged(&intact_id).expect("staged"));
    let collected = new.collect_staged(2_000).expect("collect");
    assert_eq!(collected.discarded.len(), 3);
    assert!(new.blob(&intact_id).expect("read").is_none());
}
