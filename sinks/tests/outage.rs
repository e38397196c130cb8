//! The database sink survives its database going away: on a private
//! PostgreSQL cluster of its own (never the machine's shared server), the sink
//! runs continuously, the cluster is killed (`pg_ctl stop -m immediate`) while
//! the sink has records to write, stays down for a few seconds while more
//! records arrive, and comes back. The sink must retry with the same batch
//! (healthy but not ready meanwhile), catch up, and leave tables that equal
//! the topics exactly: row counts and sums, each record applied once, the
//! positions at the end of every partition.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use afregning_sinks::{RunMode, SinkStatus, run_timescale, schema};
use afregning_stack::{StackDir, StackState};
use afregning_testkit::TestEnv;
use support::{Figures, Scenario, Topology, sink_config};

/// A PostgreSQL cluster only this test uses, in a temporary directory: started
/// by the stack's own code (initdb and pg_ctl, as the `postgres` user when we
/// run as root), stopped and restarted here on the same port.
struct PrivateCluster {
    url: String,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn pg_command(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Whether we run as root (effective uid 0, read from /proc: one check is not
/// worth a dependency); initdb and postgres refuse to run as root.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

impl PrivateCluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The cluster's owner must be able to enter the directory.
        Command::new("chmod")
            .arg("755")
            .arg(dir.path())
            .status()
            .unwrap();
        let stack = StackDir::at(dir.path());
        let url = afregning_stack::ensure_private_postgres(&stack).unwrap();
        let state: StackState =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
                .unwrap();
        let record = &state.services["postgres"];
        let data = PathBuf::from(&record.details["data_dir"]);
        assert!(
            data.starts_with(dir.path()),
            "the private cluster lives in the test's directory, not {}",
            data.display()
        );
        let log = data.parent().unwrap().join("restart.log");
        Self {
            url,
            bin: PathBuf::from(&record.details["bin_dir"]),
            data,
            log,
            _dir: dir,
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> bool {
        pg_command(&self.bin.join("pg_ctl"))
            .args(args)
            .arg("-D")
            .arg(&self.data)
            .output()
            .map(|out| out.status.success())
            .unwrap_or(false)
    }

    /// Kills the server the way a crash would: no checkpoint, clients cut off.
    fn kill(&self) {
        assert!(
            self.pg_ctl(&["stop", "-m", "immediate", "-w"]),
            "pg_ctl stop"
        );
    }

    fn restart(&self) {
        let log = self.log.display().to_string();
        assert!(
            self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log]),
            "pg_ctl start: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }
}

/// The first or second half of a scenario's records per topic (master data
/// and dead letters all in the first, so tombstones keep their order).
fn half(scenario: &Scenario, second: bool) -> Scenario {
    fn part<T: Clone>(items: &[T], second: bool) -> Vec<T> {
        let middle = items.len() / 2;
        if second {
            items[middle..].to_vec()
        } else {
            items[..middle].to_vec()
        }
    }
    Scenario {
        readings: part(&scenario.readings, second),
        metering_points: if second {
            Vec::new()
        } else {
            scenario.metering_points.clone()
        },
        daily: part(&scenario.daily, second),
        provisional: part(&scenario.provisional, second),
        statements: part(&scenario.statements, second),
        dead_letters: if second {
            Vec::new()
        } else {
            scenario.dead_letters.clone()
        },
    }
}

async fn committed_offsets(url: &str) -> Option<i64> {
    let mut conn = schema::connect(url, "test").await.ok()?;
    sqlx::query_scalar("SELECT coalesce(sum(next_offset), 0)::bigint FROM sink_offset")
        .fetch_one(&mut conn)
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_survives_the_database_going_away_and_catches_up_exactly() {
    let env = TestEnv::start("sink_outage").await.unwrap();
    let topology = Topology::apply(&env).await;
    let cluster = Arc::new(
        tokio::task::spawn_blocking(PrivateCluster::start)
            .await
            .unwrap(),
    );
    let scenario = Scenario::generate(60, 5);
    let (first, second) = (half(&scenario, false), half(&scenario, true));
    let mut config = sink_config(&env);
    config.database_url = cluster.url.clone();
    config.batch_max_rows = 1_000;
    config.write_timeout_ms = 10_000;
    config.retry_initial_ms = 100;
    config.retry_max_ms = 500;

    first.produce(&topology).await;
    let status = Arc::new(SinkStatus::default());
    let finished = AtomicBool::new(false);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The sink runs beside the test's steps in the same task (its future is
    // not 'static); every blocking step (pg_ctl) goes to spawn_blocking.
    let sink = async {
        let run = run_timescale(&config, RunMode::Continuous, status.clone(), async {
            let _ = stopped.await;
        })
        .await;
        finished.store(true, Ordering::SeqCst);
        run
    };
    let produced = (scenario.records()
        + scenario
            .metering_points
            .iter()
            .filter(|(_, v, _)| v.is_none())
            .count()) as i64;
    let expected = scenario.expected().normalized();
    let steps = async {
        // Kill the database as soon as the sink committed its first batch: it
        // is mid-run, with the rest of the first half still to write.
        let started = Instant::now();
        let at_kill = loop {
            if let Some(offset) = committed_offsets(&cluster.url).await
                && offset > 0
            {
                break offset;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the sink committed nothing"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let c = cluster.clone();
        tokio::task::spawn_blocking(move || c.kill()).await.unwrap();
        assert!(
            at_kill < produced,
            "the sink had written {at_kill} of {produced} records when the database went away"
        );

        // Down for a few seconds, while the rest arrives: the sink retries,
        // is healthy (restarting it would not help) and not ready.
        second.produce(&topology).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(status.is_healthy(), "the sink stopped during the outage");
        assert!(!status.is_ready(), "the sink claims a working database");
        assert!(!finished.load(Ordering::SeqCst), "the sink gave up");
        let c = cluster.clone();
        tokio::task::spawn_blocking(move || c.restart())
            .await
            .unwrap();

        // It catches up by itself.
        let started = Instant::now();
        loop {
            if let Ok(mut conn) = schema::connect(&cluster.url, "test").await
                && Figures::read(&mut conn).await == expected
                && committed_offsets(&cluster.url).await == Some(produced)
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the sink did not catch up after the database came back"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(status.is_ready(), "ready again after a successful write");
        stop.send(()).unwrap();
    };
    let (run, ()) = tokio::join!(sink, steps);
    let run = run.unwrap();
    assert!(run.report.retries > 0, "the outage was never noticed");
    assert_eq!(
        run.report.records as i64, produced,
        "every record consumed once"
    );
    let mut conn = schema::connect(&cluster.url, "test").await.unwrap();

    // Exactly the topics: counts, sums, each record applied once, positions at the end.
    assert_eq!(Figures::read(&mut conn).await, expected);
    let processed: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_message")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(processed as usize, scenario.records());
    // (Each series version stored once is `metering_series`' count in the figures: the view
    // `metering_data` has one row per position by construction.)
    assert_eq!(committed_offsets(&cluster.url).await, Some(produced));
    drop(conn);
    drop(cluster);
    drop(topology);
    env.cleanup().await.unwrap();
}
