//! Bounded fuzzing that runs with `cargo test` (and so in CI): the parser and the bundle
//! functions never panic on arbitrary bytes or on mutated valid documents, and always return
//! either a document or a classified error.

mod common;

use afregning_cim::{bundle, parse};
use common::mutation::{apply, mutation};
use common::{samples, shared};
use proptest::prelude::*;

fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut out: Vec<Vec<u8>> = samples().iter().map(afregning_cim::write).collect();
        out.push(shared("rsm-012/ValidMeteredDataForMeteringPoint.json"));
        out.push(shared("rsm-012/InvalidMeteredDataForMeteringPoint.json"));
        out
    })
}

fn exercise(bytes: &[u8]) {
    match parse(bytes) {
        Ok(doc) => {
            // A document that parses also writes, splits and parses again.
            let again = afregning_cim::write(&doc);
            assert_eq!(parse(&again).as_ref().map(|d| d.kind()), Ok(doc.kind()));
        }
        Err(e) => assert!(!e.path.is_empty() && e.path.starts_with('$')),
    }
    let _ = bundle::split(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_documents_never_panic(
        pick in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let corpus = corpus();
        let base = corpus[pick % corpus.len()].clone();
        exercise(&apply(base, &mutations));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse(deep.as_bytes()).is_err());
    let deep = format!(
        "{{\"NotifyValidatedMeasureData_MarketDocument\": {}{}}}",
        "{\"a\":".repeat(50_000),
        "}".repeat(50_000)
    );
    assert!(parse(deep.as_bytes()).is_err());
    assert!(bundle::split(deep.as_bytes()).is_err());
}
