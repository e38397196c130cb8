//! The README's first command, `afregning demo`, end to end on the real broker,
//! schema registry and PostgreSQL: every stage runs and the summary's own
//! checks pass (the simulator's queues end empty, every message was dequeued,
//! every processor processed records and wrote its output topic).

use std::process::Command;

use afregning_testkit::TestEnv;

#[tokio::test(flavor = "multi_thread")]
async fn demo_runs_every_stage_and_its_checks_pass() -> anyhow::Result<()> {
    let env = TestEnv::start("demo").await?;
    let work = tempfile_dir()?;
    let prefix = env.namespace.clone();
    let output = {
        let env_vars = (
            env.bootstrap_servers.clone(),
            env.registry_url.clone(),
            env.database_url.clone(),
        );
        let prefix = prefix.clone();
        let work = work.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_afregning"))
                .args(["demo", "--metering-points", "20", "--days", "2"])
                .args(["--prefix", &prefix])
                .arg("--work-dir")
                .arg(&work)
                .args(["--stage-timeout-secs", "180"])
                .env("KAFKA_BOOTSTRAP_SERVERS", &env_vars.0)
                .env("SCHEMA_REGISTRY_URL", &env_vars.1)
                .env("DATABASE_URL", &env_vars.2)
                .env("RUST_LOG", "warn")
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
    assert!(stdout.contains("20 metering points, 2 days"), "{stdout}");
    assert!(stdout.contains("messages dequeued"), "{stdout}");
    assert!(stdout.contains("timeseries-raw.v1"), "{stdout}");
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
