//! Records per second through the processor runtime with the toy summing
//! processor, on the local broker, and the memory the state stores used
//! against their budget. A load test that prints figures (criterion's
//! repetitions would mean minutes of broker time per sample).
//!
//! `cargo bench -p afregning-processors --bench runtime_throughput`
//! (`BENCH_RECORDS` sets the input size, default 200000;
//! `BENCH_FETCH_WAIT_MS` the input consumer's fetch wait, default the
//! runtime's 100, 10 being the local-broker setting; `BENCH_LINGER_MS` the
//! producer's linger, default the runtime's).

#[path = "../testbed/toy.rs"]
mod toy;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use afregning_processors::runtime::{Runtime, RuntimeConfig, RuntimeEvent};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};

const PARTITIONS: i32 = 4;
const KEYS: usize = 10_000;

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn gauge(rendered: &str, name: &str) -> f64 {
    rendered
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .fold(0.0, f64::max)
}

async fn produce_inputs(bootstrap: &str, topic: &str, records: usize) -> anyhow::Result<f64> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .create()?;
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for i in 0..records {
        let k = (i * 7919) % KEYS;
        let key = format!("k{k}");
        let value = format!("id{i},{}", (i % 13) as i64 - 3);
        let record = FutureRecord::to(topic)
            .key(&key)
            .payload(&value)
            .partition((k as i32) % PARTITIONS);
        pending.push_back(producer.send_result(record).map_err(|(e, _)| e)?);
        if pending.len() > 20_000
            && let Some(front) = pending.pop_front()
        {
            front.await?.map_err(|(e, _)| e)?;
        }
    }
    for delivery in pending {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    Ok(records as f64 / started.elapsed().as_secs_f64())
}

struct Figures {
    records_per_second: f64,
    commit_p50_ms: u64,
    commit_p99_ms: u64,
    rounds: usize,
    state_memory_mib: f64,
    rss_mib: f64,
}

async fn run_once(
    env: &afregning_testkit::TestEnv,
    input: &str,
    label: &str,
    records: u64,
    batch_max_records: usize,
    state_memory_mb: usize,
    render: Arc<dyn Fn() -> String + Send + Sync>,
) -> anyhow::Result<Figures> {
    let output = env.topic(&format!("out-{label}"));
    create(&env.bootstrap_servers, &output).await?;
    let dir = tempfile::tempdir()?;
    let config = RuntimeConfig {
        bootstrap_servers: env.bootstrap_servers.clone(),
        topic_prefix: format!("{}{label}.", env.namespace),
        group_id: Some(env.group(label)),
        state_dir: dir.path().to_path_buf(),
        batch_max_records,
        state_memory_mb,
        fetch_wait_max_ms: std::env::var("BENCH_FETCH_WAIT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(RuntimeConfig::default().fetch_wait_max_ms),
        linger_ms: std::env::var("BENCH_LINGER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(RuntimeConfig::default().linger_ms),
        // The toy processor is not in the catalogue: no `topology apply`
        // creates its changelogs.
        create_changelog_topics: true,
        ..RuntimeConfig::default()
    };
    let processed = Arc::new(AtomicU64::new(0));
    let durations = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (p, d) = (processed.clone(), durations.clone());
    let processor = toy::SumProcessor {
        name: "toy".to_string(),
        inputs: vec![input.to_string()],
        output: output.clone(),
        labels: None,
        per_task: false,
        serves: None,
    };
    let runtime =
        Runtime::new(processor, config).with_observer(Arc::new(move |event: &RuntimeEvent| {
            if let RuntimeEvent::BatchCommitted {
                records,
                duration_ms,
                ..
            } = event
            {
                p.fetch_add(*records as u64, Ordering::SeqCst);
                d.lock().expect("durations").push(*duration_ms);
            }
        }));
    let status = runtime.status();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(runtime.run(async {
        let _ = stopped.await;
    }));
    while !status.is_ready() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let mut peak_state = 0.0f64;
    while processed.load(Ordering::SeqCst) < records {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the runtime stalled at {}",
            processed.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak_state = peak_state.max(gauge(&render(), "afregning_processor_state_memory_bytes"));
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    handle.await??;
    let mut durations = durations.lock().expect("durations").clone();
    durations.sort_unstable();
    let pick = |q: f64| {
        durations
            .get(((durations.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    Ok(Figures {
        records_per_second: records as f64 / elapsed.as_secs_f64(),
        commit_p50_ms: pick(0.5),
        commit_p99_ms: pick(0.99),
        rounds: durations.len(),
        state_memory_mib: peak_state / (1024.0 * 1024.0),
        rss_mib: rss_kib("VmHWM:") as f64 / 1024.0,
    })
}

async fn create(bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    for result in admin
        .create_topics(
            &[NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?
    {
        result.map_err(|(t, e)| anyhow::anyhow!("{t}: {e}"))?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too, so
    // only run for real when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("runtime_throughput: skipped (run with `cargo bench`)");
        return Ok(());
    }
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let render: Arc<dyn Fn() -> String + Send + Sync> = Arc::new(move || recorder.render());
    let records: usize = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let env = afregning_testkit::TestEnv::start("bench_runtime").await?;
        let input = env.topic("numbers");
        create(&env.bootstrap_servers, &input).await?;
        let produce_rate = produce_inputs(&env.bootstrap_servers, &input, records).await?;
        println!("input: {records} records (200 B class, {KEYS} keys, {PARTITIONS} partitions), produced at {produce_rate:.0} rec/s");
        println!("| configuration | records/s | commit p50 | commit p99 | rounds | state memory (peak / budget) | process peak RSS |");
        println!("|---|---|---|---|---|---|---|");
        for (label, batch, memory) in [("b5000-m256", 5000, 256), ("b5000-m32", 5000, 32), ("b500-m32", 500, 32)] {
            let figures = run_once(&env, &input, label, records as u64, batch, memory, render.clone()).await?;
            println!(
                "| batch_max_records={batch}, state_memory_mb={memory} | {:.0} | {} ms | {} ms | {} | {:.1} MiB / {memory} MiB | {:.0} MiB |",
                figures.records_per_second, figures.commit_p50_ms, figures.commit_p99_ms, figures.rounds, figures.state_memory_mib, figures.rss_mib
            );
        }
        env.cleanup().await?;
        anyhow::Ok(())
    })
}
