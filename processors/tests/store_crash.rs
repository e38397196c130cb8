//! Atomicity of the store under SIGKILL: a process commits batches in which
//! every key gets the batch's number and the metadata (the offsets' place)
//! gets it too; killed at random moments, the store must always show data
//! and metadata of the same batch, and keep the progress made.

use std::process::{Command, Stdio};
use std::time::Duration;

use afregning_processors::runtime::{RocksStore, StateMemory, Store};
use rand::Rng;

#[test]
fn data_and_offsets_are_never_split_by_a_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("task");
    let mut rng = rand::rng();
    let mut last_seq = 0;
    for round in 0..12 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_afregning-processor-testbed"))
            .arg("store-hammer")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the hammer");
        std::thread::sleep(Duration::from_millis(rng.random_range(150..600)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");

        let store = RocksStore::open(&path, &["a".to_string()], &StateMemory::new(8))
            .expect("reopen after the kill");
        let Some(metadata) = store.metadata().expect("metadata") else {
            continue;
        };
        let seq = metadata.committed.seq;
        let mut values = std::collections::BTreeSet::new();
        let mut keys = 0;
        store
            .scan_prefix(0, b"key-", &mut |_, v| {
                keys += 1;
                values.insert(String::from_utf8_lossy(v).into_owned());
            })
            .expect("scan");
        assert_eq!(keys, 200, "round {round}: a batch was half applied");
        assert_eq!(
            values,
            std::collections::BTreeSet::from([seq.to_string()]),
            "round {round}: data and metadata disagree (metadata says {seq})"
        );
        assert!(
            seq >= last_seq,
            "round {round}: committed work was lost ({seq} < {last_seq})"
        );
        last_seq = seq;
    }
    assert!(last_seq > 0, "the hammer never committed");
}
