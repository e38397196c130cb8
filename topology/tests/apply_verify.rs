//! `apply` and `verify` against the real local broker (Tansu) and the
//! project's own schema registry, each test under its own topic prefix.
//!
//! What Tansu 0.6.0 answers, measured here (November 2026), and what that
//! leaves unexercised:
//! - `DescribeConfigs` returns exactly the configs a topic was *created* with
//!   (reported with source "default") and nothing else: no broker defaults, so
//!   a topic created without configs describes as empty. `verify` therefore
//!   compares `cleanup.policy` and `retention.ms` for real on topics created
//!   with configs (a wrong policy is caught below), and reports them as
//!   "unverifiable on this broker" for a topic created without any.
//! - What Tansu *enforces* is out of `verify`'s sight: it reports the policy it
//!   was given, but per the compatibility notes its compacted topics accept
//!   keyless records, and no test here can observe compaction or retention
//!   actually happening. The comparison rules for answers a real Kafka gives
//!   (broker defaults such as a 7-day retention, `compact,delete`) are
//!   unit-tested with described-config fixtures in `src/admin.rs`
//!   (`cleanup_policy_and_retention_are_compared_when_described`).
//! - The same holds for a changelog's `min.compaction.lag.ms` (decision 0052):
//!   Tansu stores the value a topic was created with and returns it, so the
//!   lag `apply` sets is read back from the broker, and a changelog created
//!   with lag 0 or without a lag is a difference on the broker's own answer.
//!   Tansu does not honour the lag (its memory engine never compacts); that
//!   is beyond what `verify` can see.
//! - `CreatePartitions` is unsupported (`UnsupportedFeature`); `apply` never
//!   adds partitions, so nothing here needs it.
//! - Metadata partition counts and `DeleteTopics` work and are used for real.

use std::time::Duration;

use afregning_testkit::TestEnv;
use afregning_topology::admin::{Admin, ApplyReport, Finding, Severity};
use afregning_topology::catalogue::{Catalogue, Component, TopicId, TopicKind, changelog_configs};
use afregning_topology::settings::TopologySettings;
use rdkafka::admin::{AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use schema_registry_converter::async_impl::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

fn admin_for(env: &TestEnv) -> Admin {
    let catalogue =
        Catalogue::new(TopologySettings::with_prefix(&env.namespace)).expect("valid settings");
    Admin::connect(catalogue, &env.bootstrap_servers, &env.registry_url).expect("admin client")
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

fn differences(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity() == Severity::Difference)
        .collect()
}

async fn apply(admin: &Admin) -> ApplyReport {
    let report = admin.apply().await.expect("apply runs");
    println!("{}", report.render());
    report
}

#[tokio::test]
async fn apply_twice_then_verify_passes() {
    let env = TestEnv::start("topology_apply_twice")
        .await
        .expect("test environment");
    let admin = admin_for(&env);
    let catalogue = admin.catalogue().clone();

    let first = apply(&admin).await;
    assert!(first.problems.is_empty(), "{:?}", first.problems);
    assert_eq!(
        first.created_topics.len(),
        catalogue.topics().len(),
        "every topic is created"
    );
    assert_eq!(
        first.registered_subjects.len(),
        catalogue.subjects().len(),
        "every subject is registered"
    );

    let second = apply(&admin).await;
    assert!(
        !second.changed(),
        "a second apply changes nothing: {second:?}"
    );
    assert!(second.render().starts_with("no changes"), "and says so");
    assert_eq!(second.existing_topics.len(), catalogue.topics().len());
    assert_eq!(second.unchanged_subjects.len(), catalogue.subjects().len());

    let report = admin.verify().await.expect("verify runs");
    println!("{}", report.render(false));
    assert!(
        report.passes(false),
        "verify after apply finds no difference:\n{}",
        report.render(false)
    );

    // The partition counts Tansu reports are the catalogue's: the check really ran.
    let live = admin.live_topics().await.expect("metadata");
    for topic in catalogue.topics() {
        assert_eq!(
            live.get(&topic.name).map(|t| t.partitions),
            Some(topic.partitions),
            "{}",
            topic.name
        );
    }
    // Tansu describes the configs `apply` created the topics with, so the
    // cleanup policy and retention of every topic were compared: nothing is
    // left unverifiable and even --strict passes.
    assert_eq!(
        report.of(Severity::Unverifiable).count(),
        0,
        "{}",
        report.render(true)
    );
    assert!(report.passes(true));

    env.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_deleted_topic_is_reported_missing() {
    let env = TestEnv::start("topology_deleted_topic")
        .await
        .expect("test environment");
    let admin = admin_for(&env);
    apply(&admin).await;
    let readings = admin
        .catalogue()
        .spec(TopicId::Readings)
        .unwrap()
        .name
        .clone();

    let deleted = admin
        .client()
        .delete_topics(&[&readings], &options())
        .await
        .expect("DeleteTopics answers");
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");

    let report = admin.verify().await.expect("verify runs");
    println!("{}", report.render(false));
    assert!(!report.passes(false));
    assert_eq!(
        differences(&report.findings),
        vec![&Finding::MissingTopic {
            topic: readings.clone()
        }],
        "exactly the deleted topic is named"
    );
    assert!(
        report
            .render(false)
            .contains(&format!("DIFFERENCE   missing topic: {readings}"))
    );

    // apply repairs it, and verify passes again.
    let repaired = apply(&admin).await;
    assert_eq!(repaired.created_topics, vec![readings]);
    assert!(admin.verify().await.expect("verify").passes(false));
    env.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_wrong_partition_count_is_reported_and_not_changed_by_apply() {
    let env = TestEnv::start("topology_partitions")
        .await
        .expect("test environment");
    let admin = admin_for(&env);
    let links = admin
        .catalogue()
        .spec(TopicId::ChargeLinks)
        .unwrap()
        .name
        .clone();
    // Someone created the topic by hand with the broker's default-ish count.
    let created = admin
        .client()
        .create_topics(
            &[NewTopic::new(&links, 3, TopicReplication::Fixed(1))],
            &options(),
        )
        .await
        .expect("CreateTopics answers");
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    let report = apply(&admin).await;
    let expected = Finding::WrongPartitionCount {
        topic: links.clone(),
        expected: 12,
        actual: 3,
    };
    assert_eq!(
        report.problems,
        vec![expected.clone()],
        "apply reports what it will not fix"
    );

    let verify = admin.verify().await.expect("verify runs");
    println!("{}", verify.render(false));
    assert!(!verify.passes(false));
    assert_eq!(differences(&verify.findings), vec![&expected]);
    env.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn unregistered_schemas_are_reported() {
    let env = TestEnv::start("topology_unregistered")
        .await
        .expect("test environment");
    let admin = admin_for(&env);
    let mut report = ApplyReport::default();
    admin.apply_topics(&mut report).await.expect("topics only");

    let verify = admin.verify().await.expect("verify runs");
    println!("{}", verify.render(false));
    let subjects = admin.catalogue().subjects();
    let not_registered: Vec<&str> = verify
        .findings
        .iter()
        .filter_map(|f| match f {
            Finding::SchemaNotRegistered { subject, .. } => Some(subject.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        not_registered,
        subjects
            .iter()
            .map(|s| s.subject.as_str())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        differences(&verify.findings).len(),
        subjects.len(),
        "and nothing else differs"
    );

    admin.apply_schemas(&mut report).await.expect("schemas");
    assert!(admin.verify().await.expect("verify").passes(false));
    env.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_wrong_cleanup_policy_is_reported_and_an_undescribed_one_is_unverifiable() {
    let env = TestEnv::start("topology_cleanup_policy")
        .await
        .expect("test environment");
    let admin = admin_for(&env);
    let points = admin
        .catalogue()
        .spec(TopicId::MeteringPoints)
        .unwrap()
        .name
        .clone();
    let readings = admin
        .catalogue()
        .spec(TopicId::Readings)
        .unwrap()
        .name
        .clone();
    // By hand, before apply: the master data table with `delete` (it would
    // expire master data), and the readings topic with no configs at all.
    let created = admin
        .client()
        .create_topics(
            &[
                NewTopic::new(&points, 12, TopicReplication::Fixed(1))
                    .set("cleanup.policy", "delete"),
                NewTopic::new(&readings, 12, TopicReplication::Fixed(1)),
            ],
            &options(),
        )
        .await
        .expect("CreateTopics answers");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let report = apply(&admin).await;
    assert!(
        report.problems.is_empty(),
        "partition counts match: {:?}",
        report.problems
    );

    let verify = admin.verify().await.expect("verify runs");
    println!("{}", verify.render(true));
    assert_eq!(
        differences(&verify.findings),
        vec![&Finding::WrongCleanupPolicy {
            topic: points.clone(),
            expected: afregning_topology::catalogue::CleanupPolicy::Compact,
            actual: "delete".into()
        }]
    );
    assert!(verify.render(false).contains(&format!(
        "DIFFERENCE   wrong cleanup policy: {points} has cleanup.policy=delete, the catalogue says compact"
    )));
    // Tansu describes a topic created without configs as empty: neither
    // policy nor retention can be read, which is reported, not passed.
    let unverifiable: Vec<(&str, &str)> = verify
        .of(Severity::Unverifiable)
        .filter_map(|f| match f {
            Finding::Unverifiable {
                resource, check, ..
            } => Some((resource.as_str(), *check)),
            _ => None,
        })
        .collect();
    assert_eq!(
        unverifiable,
        vec![
            (readings.as_str(), "cleanup.policy"),
            (readings.as_str(), "retention.ms")
        ]
    );
    env.cleanup().await.expect("cleanup");
}

/// Sets a subject's compatibility level through the registry's REST API, as an
/// operator would before forcing a schema in (the converter has no call for it).
async fn set_compatibility(registry_url: &str, subject: &str, level: &str) {
    let response = reqwest::Client::new()
        .put(format!("{registry_url}/config/{subject}"))
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .body(format!(r#"{{"compatibility":"{level}"}}"#))
        .send()
        .await
        .expect("registry answers");
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test]
async fn an_incompatible_schema_is_reported() {
    let env = TestEnv::start("topology_incompatible")
        .await
        .expect("test environment");
    let admin = admin_for(&env);
    apply(&admin).await;
    let spec = admin.catalogue().spec(TopicId::Readings).unwrap();
    let subject = spec.value_subject().unwrap();

    // Force in a schema that changes a field's type: only possible with the
    // subject's compatibility switched off, which is exactly the mistake verify must catch.
    set_compatibility(&env.registry_url, &subject, "NONE").await;
    let mut broken: serde_json::Value =
        serde_json::from_str(afregning_topology::SchemaFile::Reading.registry_text()).unwrap();
    broken["fields"][0]["type"] = serde_json::json!("long");
    post_schema(
        &SrSettings::new(env.registry_url.clone()),
        subject.clone(),
        SuppliedSchema::new(
            Some("afregning.metering.Reading".into()),
            SchemaType::Avro,
            broken.to_string(),
        ),
    )
    .await
    .expect("registered with compatibility NONE");

    let verify = admin.verify().await.expect("verify runs");
    println!("{}", verify.render(false));
    assert!(!verify.passes(false));
    let found = differences(&verify.findings);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        matches!(found[0], Finding::IncompatibleSchema { subject: s, registered_version: 2, .. } if *s == subject),
        "{found:?}"
    );
    assert!(verify.render(false).contains(&format!(
        "DIFFERENCE   incompatible schema: {subject} version 2"
    )));
    env.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn apply_reports_a_schema_the_registry_refuses() {
    let env = TestEnv::start("topology_refused")
        .await
        .expect("test environment");
    let admin = admin_for(&env);
    let spec = admin.catalogue().spec(TopicId::DailyAggregates).unwrap();
    let subject = spec.value_subject().unwrap();
    // Another team registered something else under our subject first.
    let squatter = r#"{"type":"record","name":"DailyAggregate","namespace":"afregning.metering","fields":[{"name":"gsrn","type":"long"}]}"#;
    post_schema(
        &SrSettings::new(env.registry_url.clone()),
        subject.clone(),
        SuppliedSchema::new(None, SchemaType::Avro, squatter.to_string()),
    )
    .await
    .expect("registered");

    let report = apply(&admin).await;
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        matches!(&report.problems[0], Finding::IncompatibleSchema { subject: s, .. } if *s == subject)
    );

    let verify = admin.verify().await.expect("verify runs");
    let found = differences(&verify.findings);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        matches!(found[0], Finding::IncompatibleSchema { subject: s, registered_version: 1, .. } if *s == subject)
    );
    env.cleanup().await.expect("cleanup");
}

/// The configs Tansu describes for a topic, as `verify` reads them.
async fn described(admin: &Admin, topic: &str) -> std::collections::BTreeMap<String, String> {
    let results = admin
        .client()
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &options())
        .await
        .expect("DescribeConfigs answers");
    let resource = results
        .into_iter()
        .next()
        .expect("one resource")
        .expect("the topic is described");
    resource
        .entries
        .into_iter()
        .filter_map(|e| e.value.map(|v| (e.name, v)))
        .collect()
}

/// Decision 0052: every changelog `apply` creates carries
/// `min.compaction.lag.ms=3600000`, and the broker says so. Measured on
/// Tansu 0.6.0: it stores the config given at creation and returns it from
/// DescribeConfigs (it does not honour it: its memory and sqlite engines do
/// not compact at all), so the value below is the broker's own answer. Measured
/// (December 2026), every changelog describes as
/// `{"cleanup.policy": "compact", "min.compaction.lag.ms": "3600000", "retention.ms": "-1"}`.
#[tokio::test]
async fn apply_creates_changelogs_with_the_compaction_lag_of_decision_0052() {
    let env = TestEnv::start("topology_changelog_configs")
        .await
        .expect("test environment");
    let admin = admin_for(&env);
    apply(&admin).await;
    let changelogs: Vec<_> = admin
        .catalogue()
        .topics()
        .iter()
        .filter(|t| t.kind == TopicKind::Changelog)
        .cloned()
        .collect();
    assert!(!changelogs.is_empty());
    for changelog in &changelogs {
        let configs = described(&admin, &changelog.name).await;
        println!("{}: {configs:?}", changelog.name);
        for (config, expected) in changelog_configs() {
            assert_eq!(
                configs.get(config),
                Some(&expected),
                "{} as the broker describes it",
                changelog.name
            );
        }
        assert_eq!(
            configs.get("min.compaction.lag.ms").map(String::as_str),
            Some("3600000")
        );
    }
    // And verify compares it: nothing unverifiable about any changelog.
    let report = admin.verify().await.expect("verify runs");
    let unverified: Vec<&Finding> = report
        .of(Severity::Unverifiable)
        .filter(|f| matches!(f, Finding::Unverifiable { resource, .. } if resource.contains("-changelog.")))
        .collect();
    assert!(unverified.is_empty(), "{unverified:?}");
    assert!(report.passes(true), "{}", report.render(true));
    env.cleanup().await.expect("cleanup");
}

/// A changelog created as `apply` used to create it (compacted, kept forever,
/// no compaction lag) and one created with Kafka's default lag of 0 are both
/// differences naming the topic, the config, the expected and the actual
/// value; a changelog created the way the processor runtime creates it
/// (compaction and the lag, no retention) passes.
#[tokio::test]
async fn verify_reports_a_changelog_without_the_compaction_lag() {
    let env = TestEnv::start("topology_changelog_lag")
        .await
        .expect("test environment");
    let admin = admin_for(&env);
    let catalogue = admin.catalogue().clone();
    let name = |processor, store| {
        catalogue
            .changelog(processor, store)
            .expect("declared")
            .name
            .clone()
    };
    let old_apply = name(Component::Settle, "months");
    let lag_zero = name(Component::Aggregate, "days");
    let by_runtime = name(Component::Enrich, "metering-points");
    let created = admin
        .client()
        .create_topics(
            &[
                NewTopic::new(&old_apply, 12, TopicReplication::Fixed(1))
                    .set("cleanup.policy", "compact")
                    .set("retention.ms", "-1"),
                NewTopic::new(&lag_zero, 12, TopicReplication::Fixed(1))
                    .set("cleanup.policy", "compact")
                    .set("retention.ms", "-1")
                    .set("min.compaction.lag.ms", "0"),
                NewTopic::new(&by_runtime, 12, TopicReplication::Fixed(1))
                    .set("cleanup.policy", "compact")
                    .set("min.compaction.lag.ms", "3600000"),
            ],
            &options(),
        )
        .await
        .expect("CreateTopics answers");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    // What the broker itself says about the three, before any comparison.
    assert_eq!(
        described(&admin, &old_apply)
            .await
            .get("min.compaction.lag.ms"),
        None,
        "Tansu describes only the configs a topic was created with"
    );
    assert_eq!(
        described(&admin, &lag_zero)
            .await
            .get("min.compaction.lag.ms")
            .map(String::as_str),
        Some("0")
    );
    let report = apply(&admin).await;
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    let verify = admin.verify().await.expect("verify runs");
    println!("{}", verify.render(false));
    assert!(!verify.passes(false));
    assert_eq!(
        differences(&verify.findings),
        vec![
            &Finding::WrongTopicConfig {
                topic: lag_zero.clone(),
                config: "min.compaction.lag.ms",
                expected: "3600000".into(),
                actual: Some("0".into()),
            },
            &Finding::WrongTopicConfig {
                topic: old_apply.clone(),
                config: "min.compaction.lag.ms",
                expected: "3600000".into(),
                actual: None,
            },
        ]
    );
    let rendered = verify.render(false);
    assert!(rendered.contains(&format!(
        "DIFFERENCE   wrong topic config: {lag_zero} has min.compaction.lag.ms=0, the catalogue says 3600000"
    )));
    assert!(rendered.contains(&format!(
        "DIFFERENCE   wrong topic config: {old_apply} does not set min.compaction.lag.ms, the catalogue says 3600000"
    )));
    assert!(!rendered.contains(&by_runtime), "{rendered}");
    env.cleanup().await.expect("cleanup");
}
