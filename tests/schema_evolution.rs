//! Issue 18's schema evolution on the real broker and registry.
//!
//! enrich consumes readings and master data while the upstream producer
//! switches mid-stream to version 2 of both schemas (a new optional field,
//! registered under the subjects like any producer would): nothing is
//! dead-lettered and the enriched readings are byte for byte those of a run
//! where every record was written with version 1. enrich is restarted after
//! the switch, so master data it stored as version-2 bytes is read again by
//! a process that never saw that schema id. An incompatible version 3 is
//! refused by the registry (HTTP 409), and `afregning topology apply`
//! refuses a subject whose history the catalogue's schema cannot follow,
//! naming the subject and the reason. The sinks' decoder (`Codec`) reads
//! the version-2 records as this build's records too.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use afregning_processors::pipeline::{self, PipelineSettings, Which};
use afregning_testkit::TestEnv;
use afregning_topology::records::{
    AvroRecord, EnrichedReading, MeteringPoint, MeteringPointKey, MeteringPointPeriodKey, Reading,
    examples,
};
use afregning_topology::{Catalogue, Codec, EncodedRecord, SchemaFile, TopicId, topics};
use apache_avro::types::Value;
use chrono::{Duration as Days, TimeZone, Utc};
use rdkafka::producer::FutureProducer;
use serde_json::json;
use tokio::sync::watch;

const METERING_POINTS: usize = 12;
const PARTITIONS: u32 = 3;

/// A deployment's handles: its catalogue, a codec on the test's registry,
/// and the processors' settings.
struct Deployment {
    prefix: String,
    catalogue: Catalogue,
    codec: Codec,
    settings: PipelineSettings,
}

impl Deployment {
    async fn new(env: &TestEnv, name: &str, state: &std::path::Path) -> anyhow::Result<Self> {
        let prefix = format!("{}{name}.", env.namespace);
        let catalogue = support::deployment(env, &prefix, PARTITIONS).await?;
        let supplier = examples::metering_point()
            .energy_supplier_gln
            .expect("the example names its supplier");
        Ok(Self {
            codec: Codec::new(catalogue.clone(), &env.registry_url),
            settings: support::pipeline_settings(env, &prefix, &state.join(name), &supplier),
            catalogue,
            prefix,
        })
    }

    fn value_subject(&self, topic: TopicId) -> String {
        self.catalogue
            .spec(topic)
            .ok()
            .and_then(|s| s.value_subject())
            .expect("an Avro value subject")
    }

    /// enrich, running until the returned sender says stop.
    async fn start_enrich(
        &self,
    ) -> anyhow::Result<(
        watch::Sender<bool>,
        tokio::task::JoinHandle<Result<(), pipeline::PipelineError>>,
    )> {
        // A new process: its wire knows only this build's schema ids.
        let topics = pipeline::topics(self.catalogue.clone(), &self.codec).await?;
        let settings = self.settings.clone();
        let (stop, mut stopped) = watch::channel(false);
        let handle = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            pipeline::run_one(
                Which::Enrich,
                topics,
                settings,
                Default::default(),
                shutdown,
            )
            .await
        });
        Ok((stop, handle))
    }
}

async fn stop(
    running: (
        watch::Sender<bool>,
        tokio::task::JoinHandle<Result<(), pipeline::PipelineError>>,
    ),
) -> anyhow::Result<()> {
    let _ = running.0.send(true);
    running.1.await??;
    Ok(())
}

fn gsrn(i: usize) -> String {
    format!("5713131800000{i:05}")
}

fn master_data(i: usize) -> (MeteringPointPeriodKey, MeteringPoint) {
    let mut mp = examples::metering_point();
    mp.gsrn = gsrn(i);
    if i % 2 == 1 {
        mp.grid_area = "791".into();
        mp.price_area = Some("DK1".into());
    }
    let key = MeteringPointPeriodKey {
        gsrn: mp.gsrn.clone(),
        valid_from: mp.valid_from,
    };
    (key, mp)
}

/// Metering point `i`'s reading of October 15 + `day` (PT1H, Danish day).
fn reading(i: usize, day: i64) -> (MeteringPointKey, Reading) {
    let mut r = examples::reading();
    r.gsrn = gsrn(i);
    r.period_start = Utc.with_ymd_and_hms(2026, 10, 14, 22, 0, 0).unwrap() + Days::days(day);
    r.period_end = r.period_start + Days::days(1);
    r.registered_at = r.period_end + Days::hours(5);
    r.source_message_id = format!("msg-{i}-{day}");
    r.transaction_id = format!("txn-{i}-{day}");
    (
        MeteringPointKey {
            gsrn: r.gsrn.clone(),
        },
        r,
    )
}

/// `file`'s schema with a new optional field `name` in the middle: what a
/// compatible version 2 of an upstream producer looks like.
fn with_optional_field(file: SchemaFile, name: &str) -> String {
    let mut schema: serde_json::Value = serde_json::from_str(file.registry_text()).unwrap();
    schema["fields"].as_array_mut().unwrap().insert(
        2,
        json!({"name": name, "type": ["null", "string"], "default": null, "doc": "new in version 2"}),
    );
    schema.to_string()
}

/// `record`'s wire-format bytes written with version 2 (`schema`, id `id`),
/// with the new field set.
fn v2_payload<T: AvroRecord>(record: &T, schema: &str, field: &str, id: u32) -> Vec<u8> {
    let Value::Record(mut fields) = record.to_avro().unwrap() else {
        panic!("a record");
    };
    fields.insert(
        2,
        (
            field.to_string(),
            Value::Union(1, Box::new(Value::String("added upstream".into()))),
        ),
    );
    let schema = apache_avro::Schema::parse_str(schema).unwrap();
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    #[allow(deprecated)]
    out.extend(apache_avro::to_avro_datum(&schema, Value::Record(fields)).unwrap());
    out
}

/// Checks that `Codec` (what the sinks decode with) reads `record` written
/// with version 2 as this build's record.
async fn codec_reads_v2<K, V>(
    d: &Deployment,
    topic: afregning_topology::Topic<K, V>,
    record: V,
    schema: &str,
    field: &str,
    id: u32,
) -> anyhow::Result<()>
where
    K: afregning_topology::records::TopicKey,
    V: afregning_topology::records::TopicValue + AvroRecord + PartialEq + std::fmt::Debug,
{
    let bytes = v2_payload(&record, schema, field, id);
    assert_eq!(
        d.codec.decode_value(topic, Some(&bytes)).await?,
        Some(record)
    );
    Ok(())
}

/// The registry's answer to registering `schema` under `subject`.
async fn register(env: &TestEnv, subject: &str, schema: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/subjects/{subject}/versions", env.registry_url))
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .json(&json!({ "schema": schema }))
        .send()
        .await
        .expect("the registry answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// The version-2 schemas of readings and master data, registered.
struct V2 {
    reading: (String, u32),
    master_data: (String, u32),
}

async fn register_v2(env: &TestEnv, d: &Deployment) -> V2 {
    let mut ids = Vec::new();
    for (topic, file, field) in [
        (TopicId::Readings, SchemaFile::Reading, "meter_note"),
        (
            TopicId::MeteringPoints,
            SchemaFile::MeteringPoint,
            "installation_note",
        ),
    ] {
        let schema = with_optional_field(file, field);
        let (status, body) = register(env, &d.value_subject(topic), &schema).await;
        assert_eq!(
            status, 200,
            "a new optional field is BACKWARD compatible: {body}"
        );
        ids.push((schema, body["id"].as_u64().expect("an id") as u32));
    }
    let master_data = ids.pop().unwrap();
    let reading = ids.pop().unwrap();
    V2 {
        reading,
        master_data,
    }
}

/// What one phase produces: master data of `mps`, then the readings.
#[derive(Default)]
struct Phase {
    master_data: Vec<usize>,
    readings: Vec<(usize, i64)>,
}

async fn produce(
    producer: &FutureProducer,
    d: &Deployment,
    phase: &Phase,
    v2: Option<&V2>,
    v2_master_data_of: impl Fn(usize) -> bool,
    v2_reading_of: impl Fn(usize) -> bool,
) -> anyhow::Result<()> {
    let mut records: Vec<EncodedRecord> = Vec::new();
    for &i in &phase.master_data {
        let (key, mp) = master_data(i);
        let mut record = d.codec.encode(topics::METERING_POINTS, &key, &mp).await?;
        if let Some(v2) = v2.filter(|_| v2_master_data_of(i)) {
            let (schema, id) = &v2.master_data;
            record.payload = Some(v2_payload(&mp, schema, "installation_note", *id));
        }
        records.push(record);
    }
    for &(i, day) in &phase.readings {
        let (key, r) = reading(i, day);
        let mut record = d.codec.encode(topics::READINGS, &key, &r).await?;
        if let Some(v2) = v2.filter(|_| v2_reading_of(i)) {
            let (schema, id) = &v2.reading;
            record.payload = Some(v2_payload(&r, schema, "meter_note", *id));
        }
        records.push(record);
    }
    for record in &records {
        producer
            .send(record.as_future_record(), Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// The enriched readings once there are `count`: idempotency key → bytes.
async fn enriched(
    env: &TestEnv,
    d: &Deployment,
    count: usize,
) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let topic = d.codec.topic_name(topics::ENRICHED_READINGS).to_string();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut out = BTreeMap::new();
        for raw in support::read_raw(env, &topic)? {
            let value = raw.value.expect("enriched readings have values");
            let e: EnrichedReading = d
                .codec
                .decode_value(topics::ENRICHED_READINGS, Some(&value))
                .await?
                .expect("a value");
            let key = format!(
                "enriched:{}:{}",
                e.reading.source_message_id, e.reading.transaction_id
            );
            out.insert(key, value);
        }
        if out.len() >= count {
            return Ok(out);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{topic}: {} of {count} enriched readings",
            out.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn dead_letters(env: &TestEnv, d: &Deployment) -> anyhow::Result<Vec<String>> {
    let topic = d.codec.topic_name(topics::DEAD_LETTERS).to_string();
    Ok(support::read_raw(env, &topic)?
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned())
        .collect())
}

fn phases() -> [Phase; 3] {
    let half = METERING_POINTS / 2;
    [
        // Before the switch: half the metering points, one day.
        Phase {
            master_data: (0..half).collect(),
            readings: (0..half).map(|i| (i, 0)).collect(),
        },
        // The producer switched to version 2: new metering points, a day of everyone.
        Phase {
            master_data: (half..METERING_POINTS).collect(),
            readings: (0..METERING_POINTS).map(|i| (i, 1)).collect(),
        },
        // After enrich restarted: a third day of everyone.
        Phase {
            master_data: Vec::new(),
            readings: (0..METERING_POINTS).map(|i| (i, 2)).collect(),
        },
    ]
}

fn expected_after(phases: &[Phase]) -> usize {
    phases.iter().map(|p| p.readings.len()).sum()
}

fn afregning(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_afregning"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// `afregning topology <command>` for `prefix`, off the runtime that serves
/// the test's registry.
async fn topology(env: &TestEnv, command: &str, prefix: &str) -> (i32, String) {
    let args: Vec<String> = [
        "topology",
        command,
        "--prefix",
        prefix,
        "--partitions",
        &PARTITIONS.to_string(),
        "--bootstrap-servers",
        &env.bootstrap_servers,
        "--schema-registry-url",
        &env.registry_url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || afregning(&args))
        .await
        .expect("the command ran");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("$ afregning topology {command} --prefix {prefix}\n{text}");
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_compatible_schema_change_mid_stream_changes_nothing_and_an_incompatible_one_is_refused()
-> anyhow::Result<()> {
    let env = TestEnv::start("schema_evolution").await?;
    let state = tempfile::tempdir()?;
    let producer = support_producer(&env)?;
    let phases = phases();
    let half = METERING_POINTS / 2;

    // The baseline: every record written with version 1.
    let baseline = Deployment::new(&env, "v1", state.path()).await?;
    for phase in &phases {
        produce(&producer, &baseline, phase, None, |_| false, |_| false).await?;
    }
    let running = baseline.start_enrich().await?;
    let expected = enriched(&env, &baseline, expected_after(&phases)).await?;
    stop(running).await?;
    assert_eq!(expected.len(), expected_after(&phases));

    // The same records; the producer switches to version 2 after phase 1.
    let evolved = Deployment::new(&env, "v2", state.path()).await?;
    let running = evolved.start_enrich().await?;
    produce(&producer, &evolved, &phases[0], None, |_| false, |_| false).await?;
    enriched(&env, &evolved, expected_after(&phases[..1])).await?;
    let v2 = register_v2(&env, &evolved).await;
    let own = pipeline::topics(evolved.catalogue.clone(), &evolved.codec).await?;
    assert_ne!(Some(v2.reading.1), own.wire.id(SchemaFile::Reading));
    assert_ne!(
        Some(v2.master_data.1),
        own.wire.id(SchemaFile::MeteringPoint)
    );
    // The sinks' decode path (`Codec`, sink-postgres reads both topics)
    // reads version-2 records as this build's records too.
    let (schema, id) = &v2.reading;
    codec_reads_v2(
        &evolved,
        topics::READINGS,
        reading(0, 1).1,
        schema,
        "meter_note",
        *id,
    )
    .await?;
    let (schema, id) = &v2.master_data;
    let mp = master_data(half).1;
    codec_reads_v2(
        &evolved,
        topics::METERING_POINTS,
        mp,
        schema,
        "installation_note",
        *id,
    )
    .await?;
    // Master data of the new metering points and every reading in version 2.
    produce(
        &producer,
        &evolved,
        &phases[1],
        Some(&v2),
        |_| true,
        |_| true,
    )
    .await?;
    enriched(&env, &evolved, expected_after(&phases[..2])).await?;
    // A new process: the version-2 master data in its store, readings of
    // both versions (the first half in version 2, the others in version 1).
    stop(running).await?;
    let running = evolved.start_enrich().await?;
    produce(
        &producer,
        &evolved,
        &phases[2],
        Some(&v2),
        |_| true,
        |i| i < half,
    )
    .await?;
    let got = enriched(&env, &evolved, expected_after(&phases)).await?;
    stop(running).await?;

    assert_eq!(dead_letters(&env, &baseline)?, Vec::<String>::new());
    assert_eq!(
        dead_letters(&env, &evolved)?,
        Vec::<String>::new(),
        "nothing is dead-lettered for a compatible change"
    );
    assert_eq!(got.len(), expected.len());
    for (key, bytes) in &expected {
        assert_eq!(
            got.get(key),
            Some(bytes),
            "{key}: the enriched reading differs from the run without the change"
        );
    }

    // An incompatible version 3 of readings: refused by the registry.
    let readings = evolved.value_subject(TopicId::Readings);
    let mut changed_type: serde_json::Value =
        serde_json::from_str(SchemaFile::Reading.registry_text())?;
    changed_type["fields"][0]["type"] = json!("long");
    let mut required: serde_json::Value =
        serde_json::from_str(SchemaFile::Reading.registry_text())?;
    required["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "meter_serial", "type": "string", "doc": "required, no default"}));
    for incompatible in [changed_type, required] {
        let (status, body) = register(&env, &readings, &incompatible.to_string()).await;
        println!("409 for {readings}: {body}");
        assert_eq!(
            (status, body["error_code"].clone()),
            (409, json!(409)),
            "{body}"
        );
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("cannot read data written with an earlier one")),
            "{body}"
        );
    }
    // apply is content with the compatible change: nothing to do.
    let (code, text) = topology(&env, "apply", &evolved.prefix).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("no changes"), "{text}");

    // A deployment where an upstream producer registered readings with another
    // type for gsrn first: apply refuses to register the catalogue's schema after it.
    let fresh = format!("{}v3.", env.namespace);
    let subject = format!("{fresh}afregning.metering.readings.v1-value");
    let mut upstream: serde_json::Value =
        serde_json::from_str(SchemaFile::Reading.registry_text())?;
    upstream["fields"][0]["type"] = json!("long");
    let (status, body) = register(&env, &subject, &upstream.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let (code, text) = topology(&env, "apply", &fresh).await;
    assert_eq!(code, 1, "{text}");
    let refusal = text
        .lines()
        .find(|l| l.contains("NOT FIXED") && l.contains(&subject))
        .unwrap_or_else(|| panic!("apply names the subject it refused:\n{text}"));
    assert!(
        refusal.contains(&format!("incompatible schema: {subject}: the registry refused the catalogue's schema (status 409 Conflict)"))
            && refusal.contains("Field 'gsrn' in reader schema does not match the type in the writer schema (BACKWARD)")
            && !refusal.contains("retriable"),
        "apply says why, in the registry's words: {refusal}"
    );
    env.cleanup().await?;
    Ok(())
}

fn support_producer(env: &TestEnv) -> anyhow::Result<FutureProducer> {
    Ok(env
        .kafka_config()
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()?)
}
