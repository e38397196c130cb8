//! Issue 14's crash test for replay on the real broker and database.
//!
//! One simulated March (two grid areas, three partitions) is settled in two
//! deployments from the same records: A through the whole pipeline, B by
//! settle alone from byte copies of A's settle inputs. Then both get the same
//! corrected margin for March and the same replays: grid area 344 by time,
//! then every partition from offset 0.
//! - A: settle runs in this process, uninterrupted.
//! - B: settle runs as `afregning process run settle` child processes that are
//!   SIGKILLed at random moments (at least [`MIN_KILLS`] times) while the
//!   replays are asked for, acted on, re-read and reported; the replay command
//!   itself is SIGKILLed once while it follows its run, and `replay resume`
//!   finishes it. B repeats the all-partition replay until enough kills
//!   happened: a repeat must find nothing to change.
//!
//! Then both must agree: per metering point the latest provisional version's
//! lines and totals, the number of versions the replays added (one per month),
//! the statements issued after the replays, and each run's summary (apart from
//! version numbers, which depend on how settle's input arrived before).

mod replay_support;
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use afregning_processors::pipeline;
use afregning_processors::replay::ReplaySummary;
use afregning_simulator::{FaultConfig, SimulatorConfig};
use afregning_testkit::TestEnv;
use afregning_topology::records::{ProvisionalSettlement, SettlementStatement, StatementKind};
use afregning_topology::{Catalogue, Codec, topics};
use chrono::Utc;
use rand::Rng;
use replay_support::{corrected, latest, march, newest_run, replay_cli, summary_of_run};

const PARTITIONS: u32 = 3;
const MIN_KILLS: usize = 10;

/// settle of deployment B as a child process, killed and restarted by a thread.
struct Killer {
    bootstrap_servers: String,
    registry_url: String,
    prefix: String,
    state_dir: std::path::PathBuf,
    catalogue_file: std::path::PathBuf,
    default_product: String,
    supplier: String,
    logs: std::path::PathBuf,
}

impl Killer {
    /// Starts settle; the flag turns true once it runs a task (its
    /// `task-running` event).
    fn spawn(&self, n: usize) -> anyhow::Result<(Child, Arc<AtomicBool>)> {
        let log = std::fs::File::create(self.logs.join(format!("settle-{n}.log")))?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_afregning"))
            .args(["process", "run", "settle", "--print-events"])
            .args(["--admin-listen", "127.0.0.1:0"])
            .args(["--topic-prefix", &self.prefix])
            .args(["--partitions", &PARTITIONS.to_string()])
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(["--supplier-gln", &self.supplier])
            .arg("--product-catalogue")
            .arg(&self.catalogue_file)
            .args(["--default-product", &self.default_product])
            .args(["--grace-days", "0", "--tick-ms", "500"])
            .args([
                "--commit-interval-ms",
                "100",
                "--session-timeout-ms",
                "6000",
            ])
            .env("KAFKA_BOOTSTRAP_SERVERS", &self.bootstrap_servers)
            .env("SCHEMA_REGISTRY_URL", &self.registry_url)
            .env("RUST_LOG", "info,rdkafka=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()?;
        let running = Arc::new(AtomicBool::new(false));
        let (stdout, flag) = (child.stdout.take(), running.clone());
        std::thread::spawn(move || {
            let Some(stdout) = stdout else { return };
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if serde_json::from_str::<serde_json::Value>(&line)
                    .is_ok_and(|event| event["event"] == "task-running")
                {
                    flag.store(true, Ordering::SeqCst);
                }
            }
        });
        Ok((child, running))
    }

    /// Runs settle and kills it, until `stop`; leaves the last one running and
    /// returns it. One life in four ends at a random 0.2-2 s after the start
    /// (while it starts, restores or joins the group); the others at a random
    /// 0-3 s after it runs a task (acting on a request, recomputing, re-reading,
    /// reporting, or idle between runs). Killing on a clock alone would, on a
    /// loaded machine, kill every instance before it ever ran a task.
    fn run(&self, stop: &AtomicBool, kills: &AtomicUsize) -> anyhow::Result<Child> {
        let mut rng = rand::rng();
        let mut n = 0;
        loop {
            n += 1;
            let (mut child, running) = self.spawn(n)?;
            let born = Instant::now();
            let early = rng.random_range(0..4) == 0;
            let mut deadline =
                early.then(|| born + Duration::from_millis(rng.random_range(200..2_000)));
            loop {
                if stop.load(Ordering::SeqCst) {
                    return Ok(child);
                }
                if deadline.is_none() && running.load(Ordering::SeqCst) {
                    deadline =
                        Some(Instant::now() + Duration::from_millis(rng.random_range(0..3_000)));
                }
                if deadline.is_some_and(|d| Instant::now() >= d)
                    || born.elapsed() > Duration::from_secs(60)
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            child.kill()?;
            child.wait()?;
            kills.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// What must agree between A and B per metering point: the latest version's
/// content (not its number) and how many versions the replays added.
#[derive(Debug, PartialEq)]
struct Outcome {
    lines: Vec<afregning_topology::records::SettlementLine>,
    total_excl_vat: rust_decimal::Decimal,
    vat_amount: rust_decimal::Decimal,
    days_settled: i32,
    versions_added: i64,
}

fn outcomes(
    before: &[ProvisionalSettlement],
    after: &[ProvisionalSettlement],
) -> BTreeMap<String, Outcome> {
    let (before, after) = (latest(before), latest(after));
    after
        .into_iter()
        .map(|(gsrn, p)| {
            let added = p.version - before.get(&gsrn).map_or(0, |b| b.version);
            (
                gsrn,
                Outcome {
                    lines: p.lines,
                    total_excl_vat: p.total_excl_vat,
                    vat_amount: p.vat_amount,
                    days_settled: p.days_settled,
                    versions_added: added,
                },
            )
        })
        .collect()
}

/// Statements issued after the replays, as (gsrn, kind, total): credit notes
/// and new statements, without ids and versions.
fn new_statements(
    before: &[SettlementStatement],
    after: &[SettlementStatement],
) -> Vec<(String, bool, rust_decimal::Decimal)> {
    let mut out: Vec<_> = after
        .iter()
        .filter(|s| !before.iter().any(|b| b.statement_id == s.statement_id))
        .map(|s| {
            (
                s.gsrn.clone(),
                s.kind == StatementKind::CreditNote,
                s.total_excl_vat,
            )
        })
        .collect();
    out.sort();
    out
}

/// A summary without version numbers (they depend on the history before).
fn comparable(summary: &ReplaySummary) -> ReplaySummary {
    let mut out = summary.without_versions();
    for c in &mut out.changes {
        c.version_before = 0;
    }
    out
}

struct Deployment {
    prefix: String,
    catalogue: Catalogue,
    topics: afregning_processors::shared::Topics,
}

impl Deployment {
    fn read(
        &self,
        env: &TestEnv,
    ) -> anyhow::Result<(Vec<ProvisionalSettlement>, Vec<SettlementStatement>)> {
        Ok((
            support::read_all(
                env,
                &self.topics.name(topics::PROVISIONAL_SETTLEMENTS),
                &self.topics.wire,
            )?,
            support::read_all(
                env,
                &self.topics.name(topics::SETTLEMENT_STATEMENTS),
                &self.topics.wire,
            )?,
        ))
    }
}

/// Starts `afregning replay ARGS`, sends it `signal` at a random moment after it
/// recorded its run (before or after its request is published, while it
/// follows, or after it ended), then `replay resume`s the run; returns its id.
async fn interrupted(
    env: &TestEnv,
    pool: &sqlx::PgPool,
    prefix: &str,
    args: &[&str],
    signal: &str,
) -> anyhow::Result<String> {
    let before = newest_run(pool).await.ok();
    let mut command = replay_support::replay_command(env, prefix, PARTITIONS, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let recorded = Instant::now();
    while newest_run(pool).await.ok() == before {
        anyhow::ensure!(
            recorded.elapsed() < Duration::from_secs(60),
            "the run was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let run = newest_run(pool).await?;
    tokio::time::sleep(Duration::from_millis(rand::rng().random_range(0..2_000))).await;
    Command::new("kill")
        .args([signal, &command.id().to_string()])
        .status()?;
    let status = command.wait()?;
    let (state, _) = summary_of_run(pool, &run).await?;
    eprintln!("replay {args:?} got {signal}: {status}, recorded as {state}");
    match (signal, status.code()) {
        // Ctrl-C while following: recorded as interrupted, exit 130.
        ("-INT", Some(130)) => assert_eq!(state, "interrupted"),
        // It had finished already.
        (_, Some(0)) => assert_eq!(state, "done"),
        // Killed outright (or Ctrl-C before its handler was installed).
        (_, None) => assert_eq!(state, "running"),
        (_, code) => anyhow::bail!("replay exited with {code:?}"),
    }
    let output = replay_cli(env, prefix, PARTITIONS, &["resume", &run])?;
    anyhow::ensure!(output.status.success(), "the resumed replay failed");
    Ok(run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_killed_at_random_points_ends_as_an_uninterrupted_one() -> anyhow::Result<()> {
    afregning_testkit::init_logging();
    let started = Instant::now();
    let env = TestEnv::start("replay-crash").await?;
    let work = tempfile::tempdir()?;
    let mut deployments = Vec::new();
    for name in ["a.", "b."] {
        let prefix = format!("{}{name}", env.namespace);
        let catalogue = support::deployment(&env, &prefix, PARTITIONS).await?;
        let codec = Codec::new(catalogue.clone(), &env.registry_url);
        let topics = pipeline::topics(catalogue.clone(), &codec).await?;
        deployments.push(Deployment {
            prefix,
            catalogue,
            topics,
        });
    }
    let (a, b) = (&deployments[0], &deployments[1]);

    // 1. A: DataHub's March through the whole pipeline.
    let log_start = Utc::now();
    let mut config = SimulatorConfig::default();
    config.scenario.metering_points = 6;
    config.scenario.first_day = march();
    config.scenario.days = 31;
    config.scenario.grid_areas = vec!["344".into(), "791".into()];
    config.scenario.aggregations = false;
    config.faults = FaultConfig::every_fault(0.0);
    let truth = support::drain_datahub(
        &env,
        &a.catalogue,
        config,
        work.path(),
        (march(), march() + chrono::Months::new(1)),
    )
    .await?;
    let products = support::products();
    let settings = |d: &Deployment, dir: &str| {
        support::pipeline_settings(&env, &d.prefix, &work.path().join(dir), &truth.supplier_gln)
    };
    pipeline::run_until_caught_up(
        a.topics.clone(),
        settings(a, "state-a"),
        Duration::from_secs(2),
        Duration::from_secs(300),
    )
    .await?;

    // 2. B: settle's inputs copied byte for byte, settled by settle alone.
    let copied = |d: &Deployment| {
        [
            d.topics.name(topics::ENRICHED_READINGS),
            d.topics.name(topics::CHARGES),
            d.topics.name(topics::CHARGE_PRICES),
            d.topics.name(topics::CHARGE_LINKS),
            d.topics.name(topics::SPOT_PRICES),
        ]
    };
    for (from, to) in copied(a).iter().zip(copied(b).iter()) {
        replay_support::copy_topic(&env, from, to).await?;
    }
    pipeline::run_until_caught_up(
        b.topics.clone(),
        settings(b, "state-b"),
        Duration::from_secs(2),
        Duration::from_secs(300),
    )
    .await?;
    let (a_before, a_statements_before) = a.read(&env)?;
    let (b_before, b_statements_before) = b.read(&env)?;
    assert_eq!(
        latest(&a_before).len(),
        truth.metering_points.len(),
        "every metering point settled in A"
    );
    eprintln!("both settled after {:?}", started.elapsed());

    // The replays both get.
    let fixed = corrected(&products);
    let from_time = log_start.to_rfc3339();
    let period = [
        "--recompute-from",
        "2026-02-28T23:00:00Z",
        "--to-time",
        "2026-03-31T22:00:00Z",
        "--reason",
        "March margin corrected",
        "--timeout-secs",
        "240",
    ];
    let by_time: Vec<&str> = [
        "start",
        "--processor",
        "settle",
        "--grid-area",
        "344",
        "--from-time",
        from_time.as_str(),
    ]
    .into_iter()
    .chain(period)
    .collect();
    let everything: Vec<&str> = ["start", "--processor", "settle", "--from-offset", "0"]
        .into_iter()
        .chain(period)
        .collect();
    let pool = env.pg_pool().await?;

    // 3. A, uninterrupted.
    let mut running = settings(a, "state-a");
    running.settle.catalogue = fixed.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let pipeline_a = tokio::spawn(pipeline::run_all(a.topics.clone(), running, async move {
        let _ = stop_rx.await;
    }));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut a_summaries = Vec::new();
    for args in [&by_time, &everything] {
        let output = replay_cli(&env, &a.prefix, PARTITIONS, args)?;
        anyhow::ensure!(output.status.success(), "A's replay failed");
        let run = summary_of_run(&pool, &newest_run(&pool).await?).await?;
        assert_eq!(run.0, "done");
        a_summaries.push(run);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = stop_tx.send(());
    pipeline_a.await??;
    eprintln!("A replayed after {:?}", started.elapsed());

    // 4. B, with settle killed at random moments throughout.
    let catalogue_file = work.path().join("corrected-catalogue.json");
    std::fs::write(&catalogue_file, serde_json::to_vec(&fixed)?)?;
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let killer = Killer {
        bootstrap_servers: env.bootstrap_servers.clone(),
        registry_url: env.registry_url.clone(),
        prefix: b.prefix.clone(),
        state_dir: work.path().join("state-b"),
        catalogue_file,
        default_product: fixed.products[0].id.clone(),
        supplier: truth.supplier_gln.clone(),
        logs,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(Mutex::new(None));
    let thread = {
        let (stop, kills, last) = (stop.clone(), kills.clone(), last.clone());
        std::thread::spawn(move || -> anyhow::Result<()> {
            let child = killer.run(&stop, &kills)?;
            *last.lock().expect("last") = Some(child);
            Ok(())
        })
    };
    // The first run's command gets Ctrl-C while it follows, the second's SIGKILL;
    // `resume` finishes both.
    let mut b_summaries = Vec::new();
    for (args, signal) in [(&by_time, "-INT"), (&everything, "-KILL")] {
        let run = interrupted(&env, &pool, &b.prefix, args, signal).await?;
        b_summaries.push(summary_of_run(&pool, &run).await?);
    }
    while kills.load(Ordering::SeqCst) < MIN_KILLS {
        let output = replay_cli(&env, &b.prefix, PARTITIONS, &everything)?;
        anyhow::ensure!(output.status.success(), "B's replay failed");
        b_summaries.push(summary_of_run(&pool, &newest_run(&pool).await?).await?);
    }
    stop.store(true, Ordering::SeqCst);
    thread.join().expect("killer thread")?;
    // Finality runs at settle's tick: let the last one issue what is due, then stop it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    if let Some(mut child) = last.lock().expect("last").take() {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait()?;
    }
    let kills = kills.load(Ordering::SeqCst);
    eprintln!(
        "B replayed {} times with {kills} kills of settle after {:?}",
        b_summaries.len(),
        started.elapsed()
    );

    // 5. The same results.
    assert!(kills >= MIN_KILLS, "{kills} kills");
    for (i, (state, _)) in b_summaries.iter().enumerate() {
        assert_eq!(state, "done", "B's run {i}");
    }
    assert_eq!(
        comparable(&a_summaries[0].1),
        comparable(&b_summaries[0].1),
        "grid area 344 by time"
    );
    assert_eq!(
        comparable(&a_summaries[1].1),
        comparable(&b_summaries[1].1),
        "every partition from offset 0"
    );
    assert!(
        !a_summaries[0].1.changes.is_empty() && !a_summaries[1].1.changes.is_empty(),
        "both replays changed something"
    );
    for (i, (_, repeat)) in b_summaries.iter().enumerate().skip(2) {
        assert!(
            repeat.changes.is_empty(),
            "B's repeat {i} changed {:?}",
            repeat.changes
        );
    }
    let (a_after, a_statements) = a.read(&env)?;
    let (b_after, b_statements) = b.read(&env)?;
    let (a_outcomes, b_outcomes) = (outcomes(&a_before, &a_after), outcomes(&b_before, &b_after));
    assert_eq!(a_outcomes, b_outcomes, "latest versions and versions added");
    assert!(
        a_outcomes.values().all(|o| o.versions_added == 1),
        "one new version per month: {:?}",
        a_outcomes
            .iter()
            .map(|(g, o)| (g, o.versions_added))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        new_statements(&a_statements_before, &a_statements),
        new_statements(&b_statements_before, &b_statements),
        "credit notes and new statements"
    );
    eprintln!("done after {:?}", started.elapsed());
    pool.close().await;
    env.cleanup().await?;
    Ok(())
}
