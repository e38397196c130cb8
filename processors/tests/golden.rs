//! Golden tests: each processor runs checked-in input records and its
//! outputs are compared, record by record, with checked-in expected outputs.
//!
//! Why: the unit tests beside each processor assert what a case is about; a
//! golden case pins *everything* a processor writes (topic, partition, key,
//! value, idempotency key, headers) for realistic input, so a change in any
//! output shows up as a readable diff in review rather than downstream.
//!
//! Layout: `tests/golden/<processor>/<case>.json` holds the steps (see
//! [`Step`]); `<case>.expected.json` holds the outputs of each step as JSON
//! (Avro records through their serde form, so amounts read as decimal
//! text). Records are encoded with the same wire as production (the
//! catalogue's schemas, local ids), so the golden files are independent of
//! the registry. After an intended change, regenerate with
//! `GOLDEN_BLESS=1 cargo test -p afregning-processors --test golden` and read
//! the diff before committing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use afregning_processors::aggregate::{Aggregate, AggregateConfig};
use afregning_processors::enrich::{Enrich, EnrichConfig, EnrichRules};
use afregning_processors::runtime::testing::MemoryTask;
use afregning_processors::runtime::{GlobalChange, InputRecord, OutputRecord, Processor};
use afregning_processors::settle::{Settle, SettleConfig};
use afregning_processors::shared::{Topics, Wire};
use afregning_processors::validate::{Validate, ValidateConfig};
use afregning_topology::catalogue::Component;
use afregning_topology::records::{AvroRecord, examples};
use afregning_topology::{Catalogue, Topic, TopologySettings, processors, raw_headers, topics};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// One step of a case: a batch of records, a tick, a global-table change, or
/// global-table entries present before the processor starts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    /// The processing time of the step (UTC).
    at: DateTime<Utc>,
    /// Records processed as one batch.
    #[serde(default)]
    records: Vec<RecordSpec>,
    /// Run the processor's tick.
    #[serde(default)]
    tick: bool,
    /// A change to a global table, delivered to the running task.
    #[serde(default)]
    change: Option<RecordSpec>,
    /// Global-table entries set silently (the state a task starts with).
    #[serde(default)]
    tables: Vec<RecordSpec>,
}

/// A record by topic name: typed key and value as JSON, or a raw DataHub
/// document read from a file (relative to the case) with text replacements.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordSpec {
    topic: String,
    #[serde(default)]
    key: Option<Value>,
    #[serde(default)]
    value: Option<Value>,
    /// Raw topics: the document's file.
    #[serde(default)]
    file: Option<String>,
    /// Raw topics: `[from, to]` text replacements applied to the file.
    #[serde(default)]
    replace: Vec<(String, String)>,
    /// Raw topics: the DataHub message id header.
    #[serde(default)]
    message_id: Option<String>,
}

/// A case file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What the case shows (for the reader; not used).
    #[allow(dead_code)]
    about: String,
    steps: Vec<Step>,
}

fn catalogue() -> Catalogue {
    Catalogue::new(TopologySettings::default()).expect("catalogue")
}

fn processor_topics() -> Topics {
    Topics::new(catalogue(), Wire::local())
}

/// Calls `$body` with the typed topic whose name is `$name`.
macro_rules! with_typed_topic {
    ($name:expr, |$topic:ident| $body:expr) => {{
        let cat = catalogue();
        let name: &str = $name;
        with_typed_topic!(@try cat, name, $topic, $body;
            SPOT_PRICES, READINGS, METERING_POINTS, CHARGES, CHARGE_PRICES, CHARGE_LINKS,
            WHOLESALE_RESULTS, ENRICHED_READINGS, DAILY_AGGREGATES, PROVISIONAL_SETTLEMENTS,
            SETTLEMENT_STATEMENTS, ERP_STATEMENTS, DEAD_LETTERS, OUTBOUND_REQUESTS,
            OUTBOUND_RESPONSES);
        panic!("golden: {name} is not a typed topic of the catalogue")
    }};
    (@try $cat:ident, $name:ident, $topic:ident, $body:expr; $($t:ident),+) => {
        $(
            if $name == topics::$t.name(&$cat) {
                let $topic = topics::$t;
                return $body;
            }
        )+
    };
}

fn typed_encode<K, V>(_topic: Topic<K, V>, spec: &RecordSpec) -> (Vec<u8>, Option<Vec<u8>>)
where
    K: AvroRecord + DeserializeOwned,
    V: AvroRecord + DeserializeOwned,
{
    let wire = Wire::local();
    let key: K = serde_json::from_value(spec.key.clone().expect("a typed record has a key"))
        .unwrap_or_else(|e| panic!("{}: key: {e}", spec.topic));
    let value = spec.value.clone().map(|v| {
        let value: V =
            serde_json::from_value(v).unwrap_or_else(|e| panic!("{}: value: {e}", spec.topic));
        wire.encode(&value).expect("encodes")
    });
    (wire.encode(&key).expect("encodes"), value)
}

fn typed_decode<K, V>(_topic: Topic<K, V>, key: &[u8], value: Option<&[u8]>) -> (Value, Value)
where
    K: AvroRecord + serde::Serialize,
    V: AvroRecord + serde::Serialize,
{
    let wire = Wire::local();
    let key: K = wire.decode(key).expect("the key decodes");
    let value = value.map(|v| wire.decode::<V>(v).expect("the value decodes"));
    (json!(key), json!(value))
}

fn encode(spec: &RecordSpec) -> (Vec<u8>, Option<Vec<u8>>) {
    with_typed_topic!(&spec.topic, |topic| typed_encode(topic, spec))
}

fn decode(topic: &str, key: &[u8], value: Option<&[u8]>) -> (Value, Value) {
    with_typed_topic!(topic, |t| typed_decode(t, key, value))
}

fn is_raw(topic: &str) -> bool {
    let cat = catalogue();
    [
        topics::TIMESERIES_RAW.name(&cat),
        topics::AGGREGATIONS_RAW.name(&cat),
        topics::MASTERDATA_RAW.name(&cat),
        topics::CHARGES_RAW.name(&cat),
    ]
    .contains(&topic)
}

fn input(spec: &RecordSpec, case_dir: &Path, offset: i64, at: DateTime<Utc>) -> InputRecord {
    if is_raw(&spec.topic) {
        let file = case_dir.join(spec.file.as_deref().expect("a raw record names its file"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let text = spec
            .replace
            .iter()
            .fold(text, |text, (from, to)| text.replace(from, to));
        let message_id = spec
            .message_id
            .clone()
            .expect("a raw record has a message_id");
        return InputRecord {
            topic: spec.topic.clone(),
            partition: 0,
            offset,
            timestamp: Some(at.timestamp_millis()),
            key: None,
            value: Some(text.into_bytes()),
            headers: vec![
                (raw_headers::MESSAGE_ID.to_string(), message_id.into_bytes()),
                (raw_headers::PART_INDEX.to_string(), b"0".to_vec()),
            ],
        };
    }
    let (key, value) = encode(spec);
    InputRecord {
        topic: spec.topic.clone(),
        partition: 0,
        offset,
        timestamp: Some(at.timestamp_millis()),
        key: Some(key),
        value,
        headers: Vec::new(),
    }
}

/// Bytes in a dead letter (the failed record's key and payload) as text
/// where they are text (a raw DataHub document), else as hex (Avro).
fn readable_bytes(value: &mut Value) {
    let Some(bytes) = value.as_array().map(|a| {
        a.iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect::<Option<Vec<u8>>>()
    }) else {
        return;
    };
    let Some(bytes) = bytes else { return };
    *value = match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => json!({ "utf8": text }),
        Err(e) => {
            json!({ "hex": e.into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>() })
        }
        Ok(text) => json!({ "hex": text.bytes().map(|b| format!("{b:02x}")).collect::<String>() }),
    };
}

fn output_json(output: &OutputRecord) -> Value {
    let (key, mut value) = decode(&output.topic, &output.key, output.value.as_deref());
    if output.topic == topics::DEAD_LETTERS.name(&catalogue()) {
        for field in ["payload", "source_key"] {
            if let Some(bytes) = value.get_mut(field) {
                readable_bytes(bytes);
            }
        }
    }
    let headers: BTreeMap<&str, String> = output
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    json!({
        "topic": output.topic,
        "partition": output.partition,
        "idempotency_key": output.idempotency_key,
        "headers": headers,
        "key": key,
        "value": value,
    })
}

/// Runs one case through `task`; returns the outputs of each step.
fn run_case<P: Processor>(mut task: MemoryTask<P>, case: &Case, case_dir: &Path) -> Value {
    let tables: BTreeMap<String, String> = task
        .processor()
        .global_tables()
        .into_iter()
        .map(|spec| (spec.topic, spec.name))
        .collect();
    let table_of = |topic: &str| {
        tables
            .get(topic)
            .unwrap_or_else(|| panic!("the processor reads no global table from {topic}"))
            .clone()
    };
    let mut offsets: BTreeMap<String, i64> = BTreeMap::new();
    let mut next_offset = |topic: &str| {
        let offset = offsets.entry(topic.to_string()).or_default();
        *offset += 1;
        *offset - 1
    };
    let mut steps = Vec::new();
    for step in &case.steps {
        for spec in &step.tables {
            let (key, value) = encode(spec);
            task.globals
                .set(&table_of(&spec.topic), &key, value.as_deref());
        }
        let mut outputs = Vec::new();
        if !step.records.is_empty() {
            let records: Vec<InputRecord> = step
                .records
                .iter()
                .map(|spec| input(spec, case_dir, next_offset(&spec.topic), step.at))
                .collect();
            outputs.extend(
                task.process(&records, step.at)
                    .expect("the batch processes"),
            );
        }
        if let Some(spec) = &step.change {
            let (key, value) = encode(spec);
            let change = GlobalChange {
                table: table_of(&spec.topic),
                key,
                value,
                partition: 0,
                offset: next_offset(&spec.topic),
            };
            outputs.extend(
                task.global_change(change, step.at)
                    .expect("the change applies"),
            );
        }
        if step.tick {
            outputs.extend(task.tick(step.at).expect("the tick runs"));
        }
        steps.push(Value::Array(outputs.iter().map(output_json).collect()));
    }
    Value::Array(steps)
}

fn golden_dir(processor: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(processor)
}

/// The paths at which `expected` and `actual` differ (at most `limit`), as
/// `path: expected -> actual` lines.
fn differences(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit || expected == actual {
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let keys: std::collections::BTreeSet<&String> = e.keys().chain(a.keys()).collect();
            for k in keys {
                let (e, a) = (
                    e.get(k).unwrap_or(&Value::Null),
                    a.get(k).unwrap_or(&Value::Null),
                );
                differences(&format!("{path}.{k}"), e, a, out, limit);
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                differences(&format!("{path}[{i}]"), e, a, out, limit);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            out.push(format!("{path}: {} elements -> {}", e.len(), a.len()));
        }
        _ => out.push(format!("{path}: {expected} -> {actual}")),
    }
}

/// What differs between expected and actual outputs, for a readable failure
/// (`step[i][j]` is output j of step i).
fn first_difference(expected: &Value, actual: &Value) -> String {
    let mut out = Vec::new();
    differences("step", expected, actual, &mut out, 12);
    out.join("\n")
}

/// Runs every case of `component` on a fresh task from `task`; compares (or
/// with `GOLDEN_BLESS=1` writes) the expected outputs, and checks that every
/// output goes to a topic the processor's declaration lists.
fn check_cases<P: Processor>(component: Component, task: impl Fn() -> MemoryTask<P>) {
    let declared: Vec<String> = processors::processor(component)
        .expect("a declared processor")
        .outputs
        .iter()
        .map(|id| catalogue().spec(*id).expect("a fixed topic").name.clone())
        .collect();
    let dir = golden_dir(component.name());
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.to_string_lossy().ends_with(".expected.json")
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases in {}", dir.display());
    let bless = std::env::var_os("GOLDEN_BLESS").is_some();
    let mut failures = Vec::new();
    for path in &cases {
        let case: Case = serde_json::from_slice(&std::fs::read(path).expect("case file"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let actual = run_case(task(), &case, &dir);
        let steps = actual.as_array().cloned().unwrap_or_default();
        for output in steps.iter().filter_map(Value::as_array).flatten() {
            let topic = output["topic"].as_str().unwrap_or_default();
            assert!(
                declared.iter().any(|d| d == topic),
                "{}: {component} wrote {topic}, which its declaration (topology::processors) does not list",
                path.display()
            );
        }
        let expected_path = path.with_extension("expected.json");
        if bless {
            let text = serde_json::to_string_pretty(&actual).expect("json") + "\n";
            std::fs::write(&expected_path, text).expect("write expected");
            continue;
        }
        let expected: Value = match std::fs::read(&expected_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).expect("expected file is JSON"),
            Err(_) => {
                failures.push(format!(
                    "{}: no expected outputs; run with GOLDEN_BLESS=1 and review them",
                    path.display()
                ));
                continue;
            }
        };
        if expected != actual {
            failures.push(format!(
                "{}: {}",
                path.display(),
                first_difference(&expected, &actual)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn validate_golden() {
    check_cases(Component::Validate, || {
        MemoryTask::new(
            Validate::new(processor_topics(), ValidateConfig::default()),
            0,
        )
    });
}

#[test]
fn enrich_golden() {
    check_cases(Component::Enrich, || {
        let config = EnrichConfig {
            rules: EnrichRules {
                supplier_gln: examples::metering_point().energy_supplier_gln,
                ..EnrichRules::default()
            },
            pending_timeout: chrono::Duration::hours(1),
            ..EnrichConfig::default()
        };
        MemoryTask::new(Enrich::new(processor_topics(), config), 0)
    });
}

#[test]
fn aggregate_golden() {
    check_cases(Component::Aggregate, || {
        MemoryTask::new(
            Aggregate::new(processor_topics(), AggregateConfig::default()),
            0,
        )
    });
}

#[test]
fn settle_golden() {
    check_cases(Component::Settle, || {
        let products = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/product-catalogue.json"),
        )
        .expect("deploy/product-catalogue.json");
        let config = SettleConfig {
            catalogue: serde_json::from_slice(&products).expect("a product catalogue"),
            default_product: Some("spot-standard".into()),
            grace: chrono::Duration::days(2),
            ..SettleConfig::default()
        };
        MemoryTask::new(Settle::new(processor_topics(), config), 0)
    });
}

/// What a processor's code says it reads: inputs, global-table topics and
/// store names.
fn reads_of<P: Processor>(code: &P) -> (Vec<String>, Vec<String>, Vec<String>) {
    (
        code.input_topics(),
        code.global_tables().into_iter().map(|t| t.topic).collect(),
        code.stores().into_iter().map(|s| s.name).collect(),
    )
}

/// Each processor's code agrees with its declaration in the topology
/// catalogue: inputs (primary first), global tables and state stores.
#[test]
fn every_processor_matches_its_declaration() {
    let cat = catalogue();
    let names = |ids: &[afregning_topology::catalogue::TopicId]| -> Vec<String> {
        ids.iter()
            .map(|id| cat.spec(*id).expect("a fixed topic").name.clone())
            .collect()
    };
    let topics = processor_topics;
    for (component, code) in [
        (
            Component::Validate,
            reads_of(&Validate::new(topics(), ValidateConfig::default())),
        ),
        (
            Component::Enrich,
            reads_of(&Enrich::new(topics(), EnrichConfig::default())),
        ),
        (
            Component::Aggregate,
            reads_of(&Aggregate::new(topics(), AggregateConfig::default())),
        ),
        (
            Component::Settle,
            reads_of(&Settle::new(topics(), SettleConfig::default())),
        ),
    ] {
        let spec = processors::processor(component).expect("declared");
        let stores: Vec<String> = spec.stores().map(|s| s.store.to_string()).collect();
        assert_eq!(code.0, names(spec.inputs), "{component}: inputs");
        assert_eq!(
            code.1,
            names(spec.global_tables),
            "{component}: global tables"
        );
        assert_eq!(code.2, stores, "{component}: stores");
    }
}
