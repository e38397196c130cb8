//! Bundle split and join: each part is a complete document with one transaction kept
//! byte-for-byte, split-then-parse gives the same series as parsing the bundle, and join
//! gives back a document equal (as a JSON value) to the original.

mod common;

use afregning_cim::bundle::{join, join_parts, split};
use afregning_cim::{Document, ErrorClass, parse, write};
use common::{samples, shared};
use serde_json::Value;

fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).expect("json")
}

#[test]
fn real_two_series_bundle_splits_losslessly() {
    let bytes = shared("rsm-012/ValidMeteredDataForMeteringPointWithTwoTransactions.json");
    let parts = split(&bytes).expect("split");
    assert_eq!(parts.len(), 2);
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    let Document::NotifyValidatedMeasureData(whole) = parse(&bytes).expect("parse") else {
        panic!()
    };
    for (i, part) in parts.iter().enumerate() {
        assert_eq!((part.index, part.count), (i, 2));
        assert_eq!(
            part.transaction_id.as_deref(),
            Some(whole.series[i].transaction_id.as_str())
        );
        let Document::NotifyValidatedMeasureData(one) = parse(&part.bytes).expect("part parses")
        else {
            panic!()
        };
        assert_eq!(one.header, whole.header);
        assert_eq!(one.series, vec![whole.series[i].clone()]);
        // The transaction's JSON text is the original's, byte for byte.
        let series_text = &String::from_utf8(part.bytes.clone()).expect("utf-8");
        let start = series_text.find("\"Series\": [").expect("array") + "\"Series\": [".len();
        let end = series_text.rfind(']').expect("array end");
        let raw = series_text[start..end].trim();
        assert!(
            text.contains(raw),
            "part {i} does not carry the original bytes"
        );
    }
    assert_eq!(value(&join_parts(&parts).expect("join")), value(&bytes));
}

#[test]
fn every_sample_splits_and_joins() {
    for doc in samples() {
        let bytes = write(&doc);
        let parts = split(&bytes).expect("split");
        assert_eq!(
            parts.len(),
            doc.transaction_count().max(1),
            "{}",
            doc.kind()
        );
        let mut reparsed = Vec::new();
        for part in &parts {
            let one = parse(&part.bytes).unwrap_or_else(|e| panic!("{}: {e}", doc.kind()));
            assert_eq!(one.transaction_count(), 1);
            reparsed.extend(one.transactions_json());
        }
        assert_eq!(reparsed, doc.transactions_json(), "{}", doc.kind());
        let joined =
            join(&parts.iter().map(|p| p.bytes.as_slice()).collect::<Vec<_>>()).expect("join");
        assert_eq!(value(&joined), value(&bytes), "{}", doc.kind());
        assert_eq!(parse(&joined).expect("joined parses"), doc);
    }
}

#[test]
fn large_bundle_parts_are_small() {
    let date = chrono::NaiveDate::from_ymd_opt(2024, 3, 31).expect("date");
    let doc = common::rsm012(
        (1..=200)
            .map(|n| common::full_day_series(n, date))
            .collect(),
    );
    let bytes = afregning_cim::rsm012::write(&doc);
    let parts = split(&bytes).expect("split");
    assert_eq!(parts.len(), 200);
    assert!(parts.iter().all(|p| p.bytes.len() < 64 * 1024));
    assert!(parts.iter().all(|p| p.count == 200));
}

#[test]
fn mismatched_or_missing_parts_are_refused() {
    let a = split(&shared(
        "rsm-012/ValidMeteredDataForMeteringPointWithTwoTransactions.json",
    ))
    .expect("split");
    let b = split(&shared(
        "rsm-015/ValidRequestValidatedMeasurementsWithTwoTransactions.json",
    ))
    .expect("split");
    let e = join(&[a[0].bytes.as_slice(), b[1].bytes.as_slice()]).expect_err("different documents");
    assert_eq!(e.class, ErrorClass::BusinessInvalid);
    let e = join_parts(&a[..1]).expect_err("missing part");
    assert_eq!(e.class, ErrorClass::BusinessInvalid);
    assert_eq!(
        split(b"{\"x\": 1}").expect_err("unknown").class,
        ErrorClass::UnknownDocumentType
    );
    assert_eq!(
        split(b"{\"x\": ").expect_err("malformed").class,
        ErrorClass::MalformedJson
    );
}
