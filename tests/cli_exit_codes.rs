//! The commands whose exit code is a contract, run through the real binary:
//! 0 when everything checks out, 1 when a check finds something (the finding
//! printed), 2 when the command could not run at all (`src/cli/mod.rs`:
//! "0 ok, 1 a finding, 2 an error").
//!
//! - `afregning cim validate` on Energinet's own example documents in
//!   `../shared/cim` (valid and invalid ones): 1 if any file is invalid or
//!   unreadable (`src/cli/cim.rs`), 2 for a usage error.
//! - `afregning conformance wholesale` on Energinet's opengeh-wholesale
//!   scenarios in `../shared/settlement/data/opengeh-wholesale`: 0 when every
//!   expected file matches, 1 on any difference, 2 on unreadable input
//!   (its `--help`).
//! - `afregning topology verify` against the real local broker and a schema
//!   registry (`afregning-testkit`): 0 after `apply`, 1 listing each
//!   difference, 2 when the registry cannot be reached.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use afregning_testkit::TestEnv;

fn afregning(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_afregning"))
        .args(args)
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("SCHEMA_REGISTRY_URL")
        .env_remove("AFREGNING_TOPIC_PREFIX")
        .output()
        .expect("run afregning")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn shared(path: &str) -> PathBuf {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(path);
    assert!(full.exists(), "{} is missing", full.display());
    full
}

fn cim(path: &str) -> String {
    shared(&format!("cim/{path}")).display().to_string()
}

const VALID: &[&str] = &[
    "rsm-012/ValidMeteredDataForMeteringPoint.json",
    "rsm-012/ValidMeteredDataForMeteringPointWithTwoTransactions.json",
];
const INVALID: &str = "rsm-012/InvalidMeteredDataForMeteringPoint.json";

#[test]
fn cim_validate_exits_0_for_energinets_valid_examples() {
    let files: Vec<String> = VALID.iter().map(|f| cim(f)).collect();
    let args: Vec<&str> = ["cim", "validate"]
        .into_iter()
        .chain(files.iter().map(String::as_str))
        .collect();
    let out = afregning(&args);
    println!("{}", stdout(&out));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "ok NotifyValidatedMeasureData 1 6".to_string(),
            "ok NotifyValidatedMeasureData 2 12".to_string(),
        ],
        "one line per file, in order: kind, series, points (each series lists 6 points)"
    );
}

#[test]
fn cim_validate_exits_1_naming_the_invalid_file_and_where_it_is_wrong() {
    let valid = cim(VALID[0]);
    let invalid = cim(INVALID);
    let out = afregning(&["cim", "validate", &valid, &invalid]);
    println!("{}", stdout(&out));
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("ok "), "{lines:?}");
    // Energinet's documented defect: sender_MarketParticipant.mRID renamed INVALID.mRID.
    assert!(
        lines[1].starts_with("error ")
            && lines[1].contains("$.NotifyValidatedMeasureData_MarketDocument['INVALID.mRID']"),
        "{lines:?}"
    );

    // An invalid file alone, and an unreadable one, are findings too (1, not 2).
    assert_eq!(code(&afregning(&["cim", "validate", &invalid])), 1);
    let missing = afregning(&["cim", "validate", "/nonexistent/document.json"]);
    assert_eq!(code(&missing), 1);
    assert!(
        stdout(&missing).starts_with("error unreadable-file"),
        "{}",
        stdout(&missing)
    );
}

#[test]
fn cim_validate_without_files_is_a_usage_error() {
    let out = afregning(&["cim", "validate"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

fn scenarios() -> PathBuf {
    shared("settlement/data/opengeh-wholesale/scenario_tests/wholesale_calculation")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

#[test]
fn conformance_wholesale_exits_0_on_energinets_scenarios() {
    let dir = scenarios();
    let out = afregning(&["conformance", "wholesale", dir.to_str().expect("utf-8")]);
    println!("{}", stdout(&out));
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).ends_with("3 of 3 scenarios pass\n"),
        "{}",
        stdout(&out)
    );
    let one = dir.join("given_minimal_standard_wholesale_scenario");
    let out = afregning(&["conformance", "wholesale", one.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).ends_with("1 of 1 scenarios pass\n"));
}

#[test]
fn conformance_wholesale_exits_1_when_an_expected_amount_differs() {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp
        .path()
        .join("given_minimal_standard_wholesale_scenario");
    copy_dir(
        &scenarios().join("given_minimal_standard_wholesale_scenario"),
        &dir,
    );
    let file = dir.join("then/wholesale_results/total_monthly_amounts_per_es.csv");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains("10324.530662"));
    std::fs::write(&file, text.replace("10324.530662", "10324.530663")).expect("write");

    let out = afregning(&["conformance", "wholesale", dir.to_str().expect("utf-8")]);
    println!("{}", stdout(&out));
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("10324.530663"), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("0 of 1 scenarios pass\n"));
}

#[test]
fn conformance_wholesale_exits_2_on_unreadable_input() {
    let out = afregning(&["conformance", "wholesale", "/nonexistent/scenarios"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("error:"), "{}", stderr(&out));

    // A scenario whose input CSV is not what it should be cannot be checked: 2.
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp
        .path()
        .join("given_minimal_standard_wholesale_scenario");
    copy_dir(
        &scenarios().join("given_minimal_standard_wholesale_scenario"),
        &dir,
    );
    std::fs::write(
        dir.join("when/time_series_points.csv"),
        "not;a;scenario\n1;2\n",
    )
    .expect("write");
    let out = afregning(&["conformance", "wholesale", dir.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
}

/// `afregning topology <command>` against the test's broker, registry and
/// prefix. The test's registry serves from this test's runtime, so the
/// binary runs on a blocking thread, never on the runtime's own.
async fn topology(env: &TestEnv, command: &str, extra: &[&str], registry: &str) -> Output {
    let args: Vec<String> = [
        "topology",
        command,
        "--prefix",
        env.namespace.as_str(),
        "--bootstrap-servers",
        env.bootstrap_servers.as_str(),
        "--schema-registry-url",
        registry,
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        afregning(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .expect("the command ran");
    println!(
        "$ afregning topology {command} {extra:?}\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_verify_exits_0_after_apply_1_on_a_difference_2_without_a_registry() {
    let env = TestEnv::start("cli_topology_verify")
        .await
        .expect("test environment");
    let registry = env.registry_url.clone();
    // Before apply: every topic is missing.
    let out = topology(&env, "verify", &[], &registry).await;
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains(&format!(
            "DIFFERENCE   missing topic: {}afregning.metering.readings.v1",
            env.namespace
        )),
        "{}",
        stdout(&out)
    );

    let out = topology(&env, "apply", &[], &registry).await;
    assert_eq!(code(&out), 0, "apply succeeds");
    let out = topology(&env, "verify", &[], &registry).await;
    assert_eq!(code(&out), 0, "verify passes after apply");
    assert!(stdout(&out).contains(" 0 differences"), "{}", stdout(&out));
    // Tansu describes every config apply set, so even --strict passes.
    let out = topology(&env, "verify", &["--strict"], &registry).await;
    assert_eq!(code(&out), 0);

    // A changelog whose compaction lag is not decision 0052's: exit 1, named.
    let admin = afregning_topology::admin::Admin::connect(
        afregning_topology::Catalogue::new(afregning_topology::TopologySettings::with_prefix(
            env.namespace.clone(),
        ))
        .expect("catalogue"),
        &env.bootstrap_servers,
        &env.registry_url,
    )
    .expect("admin");
    let changelog = admin
        .catalogue()
        .changelog(afregning_topology::catalogue::Component::Settle, "months")
        .expect("declared")
        .clone();
    let options = rdkafka::admin::AdminOptions::new()
        .operation_timeout(Some(std::time::Duration::from_secs(10)));
    let deleted = admin
        .client()
        .delete_topics(&[&changelog.name], &options)
        .await
        .expect("DeleteTopics answers");
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");
    let created = admin
        .client()
        .create_topics(
            &[rdkafka::admin::NewTopic::new(
                &changelog.name,
                i32::try_from(changelog.partitions).expect("partitions"),
                rdkafka::admin::TopicReplication::Fixed(1),
            )
            .set("cleanup.policy", "compact")
            .set("retention.ms", "-1")],
            &options,
        )
        .await
        .expect("CreateTopics answers");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let out = topology(&env, "verify", &[], &registry).await;
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains(&format!(
            "DIFFERENCE   wrong topic config: {} does not set min.compaction.lag.ms, the catalogue says 3600000",
            changelog.name
        )),
        "{}",
        stdout(&out)
    );

    // No registry to ask: the verdict cannot be given, exit 2 with the reason.
    let out = topology(&env, "verify", &[], "http://127.0.0.1:9").await;
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("schema registry"), "{}", stderr(&out));

    env.cleanup().await.expect("cleanup");
}
