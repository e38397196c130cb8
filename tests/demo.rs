//! The README's first command, `afregning demo`, end to end on the real broker,
//! schema registry and PostgreSQL: every stage runs, each stage's section of
//! the summary shows its output (down to statements on the ERP topic, so the
//! scenario covers a whole billing month), the summary's own checks pass, and
//! the terminal gets the stage lines and the summary, not log lines (those go
//! to the log file).

use std::process::Command;

use afregning_testkit::TestEnv;

#[tokio::test(flavor = "multi_thread")]
async fn demo_runs_every_stage_and_its_checks_pass() -> anyhow::Result<()> {
    let env = TestEnv::start("demo").await?;
    let work = tempfile_dir()?;
    let log_file = work.join("demo.log");
    let prefix = env.namespace.clone();
    let output = {
        let env_vars = (
            env.bootstrap_servers.clone(),
            env.registry_url.clone(),
            env.database_url.clone(),
        );
        let prefix = prefix.clone();
        let work = work.clone();
        let log_file = log_file.clone();
        tokio::task::spawn_blocking(move || {
            // A whole (short) billing month at a small scale: every stage has output.
            Command::new(env!("CARGO_BIN_EXE_afregning"))
                .args(["demo", "--metering-points", "10"])
                .args(["--first-day", "2026-02-01", "--days", "28"])
                .args(["--prefix", &prefix])
                .arg("--work-dir")
                .arg(&work)
                .arg("--log-file")
                .arg(&log_file)
                .args(["--stage-timeout-secs", "240"])
                .env("KAFKA_BOOTSTRAP_SERVERS", &env_vars.0)
                .env("SCHEMA_REGISTRY_URL", &env_vars.1)
                .env("DATABASE_URL", &env_vars.2)
                .env_remove("RUST_LOG")
                .output()
        })
        .await??
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for stage in [
        "[1/6] topology",
        "[3/6] connect",
        "[4/6] processors",
        "[5/6] sinks",
        "[6/6] summary",
    ] {
        assert!(
            stderr.contains(stage),
            "no progress line for {stage}:\n{stderr}"
        );
    }
    assert!(stdout.contains("checks: all passed"), "{stdout}");
    // The terminal is for people: no log lines, no colour codes; the logs are in the file.
    for noise in ["\u{1b}[", " INFO ", " WARN ", " ERROR ", "PartitionEOF"] {
        assert!(
            !stderr.contains(noise) && !stdout.contains(noise),
            "{noise:?} on the terminal:\n{stderr}"
        );
    }
    let logs = std::fs::read_to_string(&log_file)?;
    assert!(
        logs.contains(" INFO "),
        "no log lines in {}",
        log_file.display()
    );
    assert!(!logs.contains("\u{1b}["), "colour codes in the log file");
    assert!(
        stderr.contains(&log_file.display().to_string()),
        "the demo does not say where its logs are:\n{stderr}"
    );
    // Each stage's section of the summary shows its output.
    let section = |title: &str| -> String {
        let mut lines = stdout.lines().skip_while(|l| *l != title).skip(1);
        let mut body = String::new();
        for line in lines.by_ref() {
            if !line.starts_with("  ") {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        assert!(!body.is_empty(), "no {title} section:\n{stdout}");
        body
    };
    assert!(section("topology").contains("topics created"));
    assert!(section("simulator").contains("10 metering points, 28 days"));
    assert!(section("connect").contains("messages dequeued"));
    let sinks = section("sinks");
    assert!(
        sinks.contains("metering_data") && !sinks.contains("ERP sink: 0 statements"),
        "the sinks wrote no statements to the ERP topic:\n{sinks}"
    );
    let counts = section("records per topic (read from each partition's beginning to its end)");
    let count_of = |suffix: &str| -> u64 {
        counts
            .lines()
            .find(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|t| t.ends_with(suffix))
            })
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(count_of("timeseries-raw.v1") > 0, "{counts}");
    // Injected faults dead-letter some documents, so not every series arrives.
    assert!(count_of("metering.readings.v1") > 0, "{counts}");
    assert!(count_of("enriched-readings.v1") > 0, "{counts}");
    assert!(count_of("erp.statements.v1") > 0, "{counts}");
    // The processor stage ran every processor and they wrote their topics.
    for processor in ["validate", "enrich", "aggregate", "settle"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(processor) && l.contains("records in")),
            "no line for {processor}:\n{stdout}"
        );
    }
    for topic in [
        "metering.readings.v1",
        "enriched-readings.v1",
        "daily-aggregates.v1",
        "provisional-lines.v1",
    ] {
        assert!(stdout.contains(topic), "no records on {topic}:\n{stdout}");
    }

    let pool = env.pg_pool().await?;
    let schema: String = prefix
        .trim_end_matches('.')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&pool)
        .await?;
    pool.close().await;
    let _ = std::fs::remove_dir_all(&work);
    env.cleanup().await?;
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("afregning-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
