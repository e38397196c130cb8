//! The store contract, checked on both implementations, and the context's
//! read-your-writes view over it.

use std::collections::BTreeMap;

use chrono::Utc;

use super::*;
use crate::runtime::changelog::{MARKER_KEY, Marker};
use crate::runtime::processor::{Context, OutputRecord, WriteBuffer};

fn names() -> Vec<String> {
    vec!["sums".to_string(), "seen".to_string()]
}

fn metadata(seq: u64, offset: i64) -> TaskMetadata {
    TaskMetadata {
        committed: Marker {
            seq,
            input_offsets: BTreeMap::from([("in".to_string(), offset)]),
            global_seen: BTreeMap::new(),
        },
        ..TaskMetadata::fresh()
    }
}

fn put(store: usize, key: &str, value: &str) -> StoreWrite {
    StoreWrite {
        store,
        key: key.as_bytes().to_vec(),
        value: Some(value.as_bytes().to_vec()),
    }
}

/// The contract every [`Store`] keeps.
fn contract(store: &dyn Store) {
    assert_eq!(
        store.metadata().expect("metadata"),
        None,
        "a new store has no metadata"
    );

    store
        .commit(
            &[put(0, "a", "1"), put(0, "b", "2"), put(1, "a", "x")],
            &metadata(1, 10),
        )
        .expect("commit");
    assert_eq!(store.get(0, b"a").expect("get"), Some(b"1".to_vec()));
    assert_eq!(
        store.get(1, b"a").expect("get"),
        Some(b"x".to_vec()),
        "stores are separate"
    );
    assert_eq!(store.metadata().expect("metadata"), Some(metadata(1, 10)));

    // A commit with one bad write applies nothing, offsets included.
    let bad = StoreWrite {
        store: 7,
        key: b"z".to_vec(),
        value: Some(b"z".to_vec()),
    };
    assert!(
        store
            .commit(&[put(0, "a", "100"), bad], &metadata(2, 20))
            .is_err()
    );
    assert_eq!(store.get(0, b"a").expect("get"), Some(b"1".to_vec()));
    assert_eq!(store.metadata().expect("metadata"), Some(metadata(1, 10)));

    // Deletes, and prefix scans in key order.
    store
        .commit(
            &[
                StoreWrite {
                    store: 0,
                    key: b"b".to_vec(),
                    value: None,
                },
                put(0, "ab", "3"),
                put(0, "c", "4"),
            ],
            &metadata(2, 20),
        )
        .expect("commit");
    let mut seen = Vec::new();
    store
        .scan_prefix(0, b"a", &mut |k, v| seen.push((k.to_vec(), v.to_vec())))
        .expect("scan");
    assert_eq!(
        seen,
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"ab".to_vec(), b"3".to_vec())
        ]
    );
    assert_eq!(store.get(0, b"b").expect("get"), None);
}

#[test]
fn the_memory_store_keeps_the_contract() {
    contract(&MemoryStore::new(&names()));
}

#[test]
fn the_rocksdb_store_keeps_the_contract_and_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let memory = StateMemory::new(16);
    {
        let store = RocksStore::open(dir.path(), &names(), &memory).expect("open");
        contract(&store);
    }
    let store = RocksStore::open(dir.path(), &names(), &memory).expect("reopen");
    assert_eq!(store.get(0, b"ab").expect("get"), Some(b"3".to_vec()));
    assert_eq!(store.metadata().expect("metadata"), Some(metadata(2, 20)));
}

#[test]
fn a_store_declared_later_is_added_and_an_undeclared_one_is_kept_unread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let memory = StateMemory::new(16);
    {
        let store = RocksStore::open(dir.path(), &names(), &memory).expect("open");
        store
            .commit(&[put(1, "k", "v")], &metadata(1, 1))
            .expect("commit");
    }
    let only_new = vec!["sums".to_string(), "windows".to_string()];
    let store =
        RocksStore::open(dir.path(), &only_new, &memory).expect("reopen with another declaration");
    assert_eq!(
        store.get(1, b"k").expect("get"),
        None,
        "the new store starts empty"
    );
    drop(store);
    let store =
        RocksStore::open(dir.path(), &names(), &memory).expect("reopen with the old declaration");
    assert_eq!(
        store.get(1, b"k").expect("get"),
        Some(b"v".to_vec()),
        "the old column family was kept"
    );
}

#[test]
fn metadata_of_another_format_is_refused_rather_than_misread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let memory = StateMemory::new(16);
    let store = RocksStore::open(dir.path(), &names(), &memory).expect("open");
    let future = TaskMetadata {
        format: METADATA_FORMAT + 1,
        ..metadata(1, 1)
    };
    store.commit(&[], &future).expect("commit");
    assert!(matches!(store.metadata(), Err(StoreError::Metadata { .. })));
}

#[test]
fn the_memory_budget_is_shared_and_reported() {
    let memory = StateMemory::new(32);
    assert_eq!(memory.budget_bytes(), 32 * 1024 * 1024);
    let dirs: Vec<_> = (0..4)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let stores: Vec<RocksStore> = dirs
        .iter()
        .map(|d| RocksStore::open(d.path(), &names(), &memory).expect("open"))
        .collect();
    let value = vec![7u8; 1000];
    for (i, store) in stores.iter().enumerate() {
        let writes: Vec<StoreWrite> = (0..2000)
            .map(|k| StoreWrite {
                store: 0,
                key: format!("{i}-{k}").into_bytes(),
                value: Some(value.clone()),
            })
            .collect();
        store.commit(&writes, &metadata(1, 1)).expect("commit");
    }
    // Memtables of all four databases are charged to the one cache.
    assert!(memory.memtable_bytes() > 0, "memtables are accounted");
    assert!(memory.usage_bytes() >= memory.memtable_bytes());
    assert!(
        memory.usage_bytes() <= memory.budget_bytes() + memory.budget_bytes() / 4,
        "usage {} over budget",
        memory.usage_bytes()
    );
}

#[test]
fn the_context_reads_its_own_writes_and_merges_scans() {
    let store = MemoryStore::new(&names());
    store
        .commit(
            &[put(0, "a1", "1"), put(0, "a2", "2"), put(0, "b", "3")],
            &metadata(1, 1),
        )
        .expect("commit");
    let mut buffer = WriteBuffer::new(2);
    let mut outputs: Vec<OutputRecord> = Vec::new();
    let mut ctx = Context::new(0, Utc::now(), &store, &mut buffer, &mut outputs, None);
    ctx.put("sums", b"a1", b"10").expect("put");
    ctx.delete("sums", b"a2").expect("delete");
    ctx.put("sums", b"a3", b"30").expect("put");
    assert_eq!(ctx.get("sums", b"a1").expect("get"), Some(b"10".to_vec()));
    assert_eq!(ctx.get("sums", b"a2").expect("get"), None);
    assert_eq!(
        ctx.scan_prefix("sums", b"a").expect("scan"),
        vec![
            (b"a1".to_vec(), b"10".to_vec()),
            (b"a3".to_vec(), b"30".to_vec())
        ]
    );
    assert!(matches!(
        ctx.get("nope", b"a"),
        Err(StoreError::UnknownStore(_))
    ));
    assert!(matches!(
        ctx.put("sums", MARKER_KEY, b"x"),
        Err(StoreError::ReservedKey)
    ));
    assert!(
        ctx.global("prices", b"x").is_err(),
        "no global tables declared"
    );
    let _ = ctx;
    // Nothing reached the store before the commit.
    assert_eq!(store.get(0, b"a1").expect("get"), Some(b"1".to_vec()));
    let writes = buffer.into_writes();
    assert_eq!(writes.len(), 3);
    assert_eq!(
        writes[1],
        StoreWrite {
            store: 0,
            key: b"a2".to_vec(),
            value: None
        }
    );
}
