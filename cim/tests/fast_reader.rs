//! The fast first reader (`docs/decisions/0152-fast-first-cim-reader.md`) is held to the
//! strict serde_json reader: on every input, real, written or damaged, [`parse`] returns
//! exactly what [`parse_strict`] returns (value or error), and whatever the fast attempt
//! accepts alone ([`parse_fast`]) the strict reader accepts with the same value. The tests
//! also show that DataHub's documents take the fast path, so the equality is not vacuous.

mod common;

use std::path::{Path, PathBuf};

use afregning_cim::{Document, parse, parse_fast, parse_strict, write};
use common::mutation::{Mutation, apply};
use common::{samples, shared};
use proptest::prelude::*;

/// Checks the three readers agree on `bytes`; true when the fast attempt accepted it.
fn agree(bytes: &[u8]) -> bool {
    let strict = parse_strict(bytes);
    let text = String::from_utf8_lossy(bytes);
    assert_eq!(
        parse(bytes),
        strict,
        "parse differs from the strict reader on\n{text}"
    );
    match parse_fast(bytes) {
        Some(doc) => {
            assert_eq!(
                Ok(&doc),
                strict.as_ref(),
                "the fast reader accepted what the strict reader reads otherwise:\n{text}"
            );
            true
        }
        None => false,
    }
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

#[test]
fn real_documents_read_the_same_and_take_the_fast_path() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "../../shared/cim",
        "../../shared/lifecycle",
        "tests/fixtures",
    ] {
        json_files(&root.join(dir), &mut files);
    }
    assert!(files.len() >= 20, "found only {} JSON files", files.len());
    let mut fast = 0;
    for file in &files {
        let bytes = std::fs::read(file).expect("read");
        if agree(&bytes) {
            fast += 1;
        }
    }
    // The files include schemas and invalid examples, which both readers reject; every valid
    // document among them must have been read by the fast reader.
    let accepted = files
        .iter()
        .filter(|f| parse_strict(&std::fs::read(f).expect("read")).is_ok())
        .count();
    assert_eq!(fast, accepted, "of {} files", files.len());
    assert!(accepted >= 8, "only {accepted} valid documents found");
    for name in [
        "rsm-012/ValidMeteredDataForMeteringPoint.json",
        "rsm-012/ValidMeteredDataForMeteringPointWithTwoTransactions.json",
    ] {
        assert!(parse_fast(&shared(name)).is_some(), "{name} gave up");
    }
}

#[test]
fn every_sample_document_takes_the_fast_path_indented_and_compact() {
    for doc in samples() {
        let indented = write(&doc);
        assert!(agree(&indented), "{} gave up", doc.kind());
        let value: serde_json::Value = serde_json::from_slice(&indented).expect("json");
        let compact = serde_json::to_vec(&value).expect("json");
        agree(&compact);
        let bom: Vec<u8> = b"\xEF\xBB\xBF".iter().chain(&indented).copied().collect();
        assert!(agree(&bom), "{} with a BOM gave up", doc.kind());
    }
}

/// The real RSM-012 example with one text replaced.
fn edited(from: &str, to: &str) -> Vec<u8> {
    let text =
        String::from_utf8(shared("rsm-012/ValidMeteredDataForMeteringPoint.json")).expect("utf-8");
    assert!(text.contains(from), "`{from}` is not in the example");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn tokens_at_the_edges_of_json_read_as_the_strict_reader_reads_them() {
    let quantity = "\"quantity\": 242";
    let position = "\"value\": 1\n";
    let mrid = "\"mRID\": \"4413675032_5080574373\"";
    // (from, to, whether the fast reader must accept it)
    let cases: &[(&str, &str, bool)] = &[
        (quantity, "\"quantity\": 242.000", true),
        (quantity, "\"quantity\": -1.5", false),
        (quantity, "\"quantity\": 0", true),
        (quantity, "\"quantity\": 0.0", true),
        (quantity, "\"quantity\":242", true),
        (quantity, "\"quantity\"\t:\r\n242", true),
        (quantity, "\"quantity\": 1e2", true),
        (quantity, "\"quantity\": 1.5E-2", true),
        (quantity, "\"quantity\": 123456789012345678901234567", true),
        (quantity, "\"quantity\": -0", false),
        (quantity, "\"quantity\": -0.000", false),
        (quantity, "\"quantity\": 01", false),
        (quantity, "\"quantity\": 1.", false),
        (quantity, "\"quantity\": .5", false),
        (quantity, "\"quantity\": 1e", false),
        (quantity, "\"quantity\": +1", false),
        (quantity, "\"quantity\": \"242\"", false),
        (quantity, "\"quantity\": null", false),
        (quantity, "\"quantity\": true", false),
        (
            quantity,
            "\"quantity\": 1234567890123456789012345678901234",
            false,
        ),
        (quantity, "\"quan\\u0074ity\": 242", false),
        (quantity, "\"quantity\": 242,", false),
        (quantity, "\"quantity\": 242 1", false),
        (position, "\"value\":\t1\n", true),
        (position, "\"value\": 0\n", false),
        (position, "\"value\": 4294967295\n", false),
        (position, "\"value\": 4294967296\n", false),
        (position, "\"value\": -0\n", false),
        (position, "\"value\": 1.0\n", false),
        (position, "\"value\": 1e0\n", false),
        (position, "\"value\": 01\n", false),
        // A wrapped value: the fast reader takes `{"value": …}` itself (its braces and key).
        (position, "\"value\": 1, \"value\": 2\n", false),
        (position, "\"value\": 1, \"other\": 2\n", false),
        (position, "\"valuex\": 1\n", false),
        (position, "\"Value\": 1\n", false),
        (position, "\"value\": {\"value\": 1}\n", false),
        (position, "\"value\": 1,\n", false),
        (position, "\"val\\u0075e\": 1\n", false),
        (position, "\"value\" : 1 \n", true),
        ("\"position\": {\n", "\"position\": {}, \"x\": {\n", false),
        ("\"position\": {\n", "\"position\": 1, \"x\": {\n", false),
        ("\"position\": {\n", "\"position\":{", true),
        (mrid, "\"mRID\": \"4413675032\\u005f5080574373\"", false),
        (mrid, "\"mRID\": \"4413675032\\\\5080574373\"", false),
        (mrid, "\"mRID\": \"4413675032\u{1}5080574373\"", false),
        (mrid, "\"mRID\": \"4413675032æøå5080574373\"", true),
        (mrid, "\"mRID\": \"\"", true),
    ];
    for (from, to, fast) in cases {
        let bytes = edited(from, to);
        let accepted = agree(&bytes);
        if *fast {
            assert!(parse_strict(&bytes).is_ok(), "`{to}` is not a valid case");
            assert!(accepted, "the fast reader gave up on `{to}`");
        }
    }
}

fn reader_mutation() -> impl Strategy<Value = Mutation> {
    let tokens = proptest::sample::select(vec![
        b" ".to_vec(),
        b"\t".to_vec(),
        b"\r\n".to_vec(),
        b"\n        ".to_vec(),
        b"\\".to_vec(),
        b"\\u0041".to_vec(),
        b"\"".to_vec(),
        b"\x01".to_vec(),
        "ø".as_bytes().to_vec(),
        b",".to_vec(),
        b":".to_vec(),
        b"{".to_vec(),
        b"}".to_vec(),
        b"[".to_vec(),
        b"]".to_vec(),
        b"0".to_vec(),
        b"7".to_vec(),
        b"-".to_vec(),
        b"+".to_vec(),
        b".".to_vec(),
        b"e".to_vec(),
        b"true".to_vec(),
        b"null".to_vec(),
    ]);
    prop_oneof![
        3 => (any::<usize>(), tokens).prop_map(|(a, t)| Mutation::Insert(a, t)),
        1 => (any::<usize>(), 1usize..4).prop_map(|(a, n)| Mutation::Delete(a, n)),
        1 => (any::<usize>(), 1u8..=255).prop_map(|(a, x)| Mutation::Flip(a, x)),
    ]
}

fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut out: Vec<Vec<u8>> = samples().iter().map(write).collect();
        out.push(shared("rsm-012/ValidMeteredDataForMeteringPoint.json"));
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    /// Small damage anywhere in a valid document: the fast reader may give up, but never reads
    /// anything other than what the strict reader reads, and `parse`'s errors stay the strict
    /// reader's.
    #[test]
    fn damaged_documents_read_as_the_strict_reader_reads_them(
        pick in any::<usize>(),
        mutations in proptest::collection::vec(reader_mutation(), 1..4),
    ) {
        let corpus = corpus();
        agree(&apply(corpus[pick % corpus.len()].clone(), &mutations));
    }

    /// Documents of random series (PT15M and PT1H, DST days, missing and estimated values)
    /// take the fast path and read as written.
    #[test]
    fn random_measure_data_takes_the_fast_path(doc in common::arb_rsm012()) {
        let doc = Document::NotifyValidatedMeasureData(doc);
        let bytes = write(&doc);
        prop_assert!(agree(&bytes));
        prop_assert_eq!(parse_fast(&bytes), Some(doc));
    }
}
