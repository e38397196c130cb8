//! Shared by the runtime's integration tests: topics, input generation, the
//! testbed process (spawn, events, SIGKILL, SIGTERM) and the checks that
//! outputs are exactly what an uninterrupted run produces.

#![allow(dead_code)]

#[path = "../../testbed/toy.rs"]
pub mod toy;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{Value, json};

pub use afregning_testkit::TestEnv;

/// Creates `topic` with `partitions` (compacted when asked).
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32, compacted: bool) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    if compacted {
        new = new.set("cleanup.policy", "compact");
    }
    let results = admin
        .create_topics(
            &[new],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create topics");
    for result in results {
        result.expect("topic created");
    }
}

/// An idempotent producer for test inputs.
pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Produces `(partition, key, value)` records, in order, awaiting each chunk.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    records: &[(i32, String, Option<String>)],
) {
    for chunk in records.chunks(500) {
        let mut deliveries = Vec::new();
        for (partition, key, value) in chunk {
            let mut record: FutureRecord<'_, String, String> =
                FutureRecord::to(topic).key(key).partition(*partition);
            if let Some(value) = value {
                record = record.payload(value);
            }
            deliveries.push(producer.send(record, Duration::from_secs(30)));
        }
        for delivery in futures::future::join_all(deliveries).await {
            delivery.expect("delivered");
        }
    }
}

/// The toy's input for `n` records over `keys` keys and `partitions`
/// partitions (key `k<i>` lives in partition `i % partitions`), with every
/// 20th record re-sent with its id (the dedupe store must drop it).
pub fn toy_inputs(
    start: usize,
    n: usize,
    keys: usize,
    partitions: i32,
) -> Vec<(i32, String, Option<String>)> {
    let mut out = Vec::new();
    for i in start..start + n {
        let k = (i * 7919) % keys;
        let record = (
            (k as i32) % partitions,
            format!("k{k}"),
            Some(format!("id{i},{}", (i % 13) as i64 - 3)),
        );
        if i % 20 == 19 {
            out.push(record.clone());
        }
        out.push(record);
    }
    out
}

/// A consumed record.
#[derive(Debug, Clone)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
    pub headers: BTreeMap<String, String>,
}

impl Rec {
    pub fn idempotency_key(&self) -> Option<&str> {
        self.headers
            .get("afregning-idempotency-key")
            .map(String::as_str)
    }
}

/// A context that does not log end-of-partition events as errors.
pub struct QuietEof;

impl rdkafka::client::ClientContext for QuietEof {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        let eof = matches!(error, rdkafka::error::KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF);
        if !eof {
            eprintln!("kafka client error: {error}: {reason}");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEof {}

/// Everything in `topic` now: all partitions from the beginning to their
/// ends as fetches report them (end-of-partition events; the local broker's
/// ListOffsets under-reports the end on its memory engine).
pub fn read_all(bootstrap: &str, topic: &str) -> Vec<Rec> {
    let consumer: BaseConsumer<QuietEof> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create_with_context(QuietEof)
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut open: BTreeSet<i32> = partitions.into_iter().collect();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !open.is_empty() {
        assert!(
            Instant::now() < deadline,
            "reading {topic} timed out; partitions not at their end: {open:?}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Rec {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    value: m.payload().map(|v| String::from_utf8_lossy(v).into_owned()),
                    headers,
                });
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Err(error)) => panic!("reading {topic}: {error}"),
            None => {}
        }
    }
    out
}

/// What an uninterrupted run of the toy emits, per key: the value of each
/// version (`<count>,<sum>`), computed from the input topic in offset order.
pub fn expected_outputs(inputs: &[Rec]) -> BTreeMap<String, Vec<String>> {
    let mut sorted: Vec<&Rec> = inputs.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut seen: BTreeSet<(i32, String)> = BTreeSet::new();
    let mut state: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rec in sorted {
        let (Some(key), Some(value)) = (&rec.key, &rec.value) else {
            continue;
        };
        let Some((id, amount)) = toy::parse_value(value.as_bytes()) else {
            continue;
        };
        if !seen.insert((rec.partition, id)) {
            continue;
        }
        let entry = state.entry(key.clone()).or_default();
        entry.0 += 1;
        entry.1 += amount;
        out.entry(key.clone())
            .or_default()
            .push(format!("{},{}", entry.0, entry.1));
    }
    out
}

/// Outputs de-duplicated by idempotency key, with the checks that make
/// "nothing counted twice, nothing lost" precise.
#[derive(Debug, Default)]
pub struct OutputCheck {
    /// Idempotency key → value (after de-duplication).
    pub by_idempotency_key: BTreeMap<String, String>,
    /// Output records in total (replays included).
    pub records: usize,
    /// Records that repeated an idempotency key (harmless replays).
    pub replays: usize,
}

/// De-duplicates `outputs` by idempotency key; fails if two records with one
/// key disagree (a replay that was not deterministic: double counting).
pub fn dedupe(outputs: &[Rec]) -> Result<OutputCheck, String> {
    let mut check = OutputCheck::default();
    for rec in outputs {
        check.records += 1;
        let key = rec
            .idempotency_key()
            .ok_or_else(|| format!("output without an idempotency key: {rec:?}"))?
            .to_string();
        let value = rec.value.clone().unwrap_or_default();
        match check.by_idempotency_key.get(&key) {
            Some(existing) if *existing != value => {
                return Err(format!(
                    "idempotency key {key} has two values: {existing} and {value} (double counting or a non-deterministic replay)"
                ));
            }
            Some(_) => check.replays += 1,
            None => {
                check.by_idempotency_key.insert(key, value);
            }
        }
    }
    Ok(check)
}

/// Compares de-duplicated outputs with the expected versions: every version
/// present with its exact value, no extra version.
pub fn compare(
    check: &OutputCheck,
    expected: &BTreeMap<String, Vec<String>>,
) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut wanted = BTreeSet::new();
    let mut first_per_key = Vec::new();
    for (key, versions) in expected {
        let mut reported = false;
        for (i, value) in versions.iter().enumerate() {
            let idem = format!("{key}#{}", i + 1);
            let problem = match check.by_idempotency_key.get(&idem) {
                None => Some(format!("lost: {idem} (expected {value})")),
                Some(actual) if actual != value => {
                    Some(format!("wrong: {idem} is {actual}, expected {value}"))
                }
                Some(_) => None,
            };
            if let Some(problem) = problem {
                if !reported {
                    first_per_key.push(problem.clone());
                    reported = true;
                }
                problems.push(problem);
            }
            wanted.insert(idem);
        }
    }
    for idem in check.by_idempotency_key.keys() {
        if !idem.starts_with("relabel:") && !wanted.contains(idem) {
            problems.push(format!("extra (counted twice): {idem}"));
            first_per_key.push(format!("extra (counted twice): {idem}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        first_per_key.truncate(30);
        Err(format!(
            "{} problems; the first per key: {first_per_key:#?}",
            problems.len()
        ))
    }
}

/// Whether every expected version is present (used to wait for completion).
pub fn complete(check: &OutputCheck, expected: &BTreeMap<String, Vec<String>>) -> bool {
    expected.iter().all(|(key, versions)| {
        check
            .by_idempotency_key
            .contains_key(&format!("{key}#{}", versions.len()))
    })
}

/// Runtime settings for tests: small batches, fast failure detection.
pub fn runtime_config(env: &TestEnv, state_dir: &Path, group: &str, extra: Value) -> Value {
    runtime_config_at(
        &env.bootstrap_servers,
        &env.namespace,
        state_dir,
        group,
        extra,
    )
}

/// [`runtime_config`] for a broker and namespace of the test's own.
pub fn runtime_config_at(
    bootstrap: &str,
    namespace: &str,
    state_dir: &Path,
    group: &str,
    extra: Value,
) -> Value {
    let mut config = json!({
        "bootstrap_servers": bootstrap,
        "topic_prefix": namespace,
        "group_id": format!("{namespace}{group}"),
        "state_dir": state_dir,
        "commit_interval_ms": 50,
        "batch_max_records": 300,
        "state_memory_mb": 16,
        "session_timeout_ms": 6000,
        "stall_timeout_ms": 4000,
        "lag_check_interval_ms": 1000,
        "restore_chunk_records": 50,
        // The toy processor is not in the catalogue: no `topology apply`
        // creates its changelogs.
        "create_changelog_topics": true,
    });
    if let (Some(base), Value::Object(extra)) = (config.as_object_mut(), extra) {
        base.extend(extra);
    }
    config
}

/// A testbed process.
pub struct Testbed {
    pub name: String,
    child: Child,
    events: Arc<Mutex<Vec<(Instant, Value)>>>,
    pub log: PathBuf,
}

impl Testbed {
    /// Starts `afregning-processor-testbed run` with `config` (the testbed's
    /// JSON), logging stderr to `<dir>/<name>.log`.
    pub fn spawn(dir: &Path, name: &str, config: &Value) -> Testbed {
        let config_path = dir.join(format!("{name}.json"));
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(config).expect("json"),
        )
        .expect("write config");
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_afregning-processor-testbed"))
            .arg("run")
            .arg(&config_path)
            .env(
                "RUST_LOG",
                std::env::var("TESTBED_LOG").unwrap_or_else(|_| "info,rdkafka=warn".to_string()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn the testbed");
        let stdout = child.stdout.take().expect("stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(json) = line.strip_prefix("EVENT ")
                    && let Ok(value) = serde_json::from_str::<Value>(json)
                {
                    sink.lock().expect("events").push((Instant::now(), value));
                }
            }
        });
        Testbed {
            name: name.to_string(),
            child,
            events,
            log,
        }
    }

    /// The events so far.
    pub fn events(&self) -> Vec<(Instant, Value)> {
        self.events.lock().expect("events").clone()
    }

    /// Events named `name` so far.
    pub fn events_named(&self, name: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|(_, e)| e["event"] == name)
            .map(|(_, e)| e)
            .collect()
    }

    /// Waits until an event after index `from` matches, returning its index.
    pub fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let events = self.events.lock().expect("events");
                if let Some(i) = events.iter().skip(from).position(|(_, e)| matches(e)) {
                    return Some(from + i);
                }
            }
            if Instant::now() >= deadline || !self.alive() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// How many events were seen.
    pub fn event_count(&self) -> usize {
        self.events.lock().expect("events").len()
    }

    /// Whether the process still runs.
    pub fn alive(&self) -> bool {
        // `try_wait` needs &mut; peek at /proc instead.
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (graceful stop); SIGKILL after `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    /// Waits for the process to exit by itself (a crash failpoint).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The toy's testbed configuration.
pub fn toy_config(runtime: Value, inputs: &[String], output: &str, extra: Value) -> Value {
    let mut config = json!({
        "runtime": runtime,
        "inputs": inputs,
        "output": output,
    });
    if let (Some(base), Value::Object(extra)) = (config.as_object_mut(), extra) {
        base.extend(extra);
    }
    config
}

/// Polls the output topic until every expected version is present (or the
/// timeout); returns the final check.
pub fn wait_complete(
    bootstrap: &str,
    output: &str,
    expected: &BTreeMap<String, Vec<String>>,
    timeout: Duration,
) -> OutputCheck {
    let deadline = Instant::now() + timeout;
    loop {
        let check = dedupe(&read_all(bootstrap, output)).unwrap_or_else(|e| panic!("{e}"));
        if complete(&check, expected) || Instant::now() >= deadline {
            return check;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
