//! `apply` and `verify`: the live cluster and registry against the catalogue.
//!
//! The comparisons are pure functions over snapshots ([`ClusterSnapshot`],
//! [`SubjectState`]) so every rule can be tested with fixtures, including the
//! ones a local broker cannot exercise; [`Admin`] only gathers the snapshots
//! (rdkafka's `AdminClient`, the registry through `schema_registry_converter`)
//! and creates what is missing.
//!
//! Findings have three severities:
//! - **difference**: the cluster or registry contradicts the catalogue
//!   (missing topic, wrong partition count or replication, wrong cleanup policy
//!   or retention, a changelog without the compaction lag decision 0052 needs,
//!   schema not registered, incompatible schema); `verify` exits 1;
//! - **unverifiable**: the broker would not say (Tansu 0.6.0 describes only
//!   the configs a topic was created with, so a topic created without them has
//!   no readable cleanup policy or retention there); reported, and fatal only
//!   with `--strict`;
//! - **notice**: worth knowing, not wrong (a topic or subject under our prefix
//!   the catalogue does not have, a newer compatible schema in the registry).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_all_subjects, get_schema_by_subject_and_version, perform_sr_call, post_schema,
};
use schema_registry_converter::schema_registry_common::SrCall;

use crate::catalogue::{Catalogue, CleanupPolicy, SubjectSpec, TopicSpec};
use crate::codec::supplied_schema;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Contradicts the catalogue: `verify` fails.
    Difference,
    /// The broker or registry would not say: `verify --strict` fails.
    Unverifiable,
    /// For information.
    Notice,
}

/// One thing `verify` (or `apply`) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The topic does not exist.
    MissingTopic {
        /// Topic name.
        topic: String,
    },
    /// The topic has another partition count.
    WrongPartitionCount {
        /// Topic name.
        topic: String,
        /// What the catalogue says.
        expected: u32,
        /// What the cluster has.
        actual: u32,
    },
    /// The topic has another replication factor.
    WrongReplicationFactor {
        /// Topic name.
        topic: String,
        /// What the catalogue says.
        expected: u16,
        /// What the cluster has.
        actual: u16,
    },
    /// The topic has another cleanup policy.
    WrongCleanupPolicy {
        /// Topic name.
        topic: String,
        /// What the catalogue says.
        expected: CleanupPolicy,
        /// What the broker reports.
        actual: String,
    },
    /// The topic has another retention.
    WrongRetention {
        /// Topic name.
        topic: String,
        /// What the catalogue says, ms (-1 forever).
        expected_ms: i64,
        /// What the broker reports.
        actual: String,
    },
    /// Another topic config the catalogue sets (see [`TopicSpec::configs`]),
    /// such as a changelog's `min.compaction.lag.ms`, has another value or is
    /// not set on the topic.
    WrongTopicConfig {
        /// Topic name.
        topic: String,
        /// The config's name.
        config: &'static str,
        /// What the catalogue says.
        expected: String,
        /// What the broker reports; `None` when the topic does not have the config.
        actual: Option<String>,
    },
    /// The catalogue's schema is not registered under the subject.
    SchemaNotRegistered {
        /// The subject.
        subject: String,
        /// Whether the subject exists at all, and what it holds.
        detail: String,
    },
    /// The registered schema and the catalogue's cannot read each other's records as BACKWARD requires.
    IncompatibleSchema {
        /// The subject.
        subject: String,
        /// The registered version involved; 0 when `apply` was refused
        /// against the subject's history (the registry's compatibility level
        /// decides which versions count).
        registered_version: u32,
        /// Why.
        reason: String,
    },
    /// A check the broker or registry gave no answer to.
    Unverifiable {
        /// Topic or subject.
        resource: String,
        /// Which check.
        check: &'static str,
        /// Why it could not be made.
        reason: String,
    },
    /// A topic under our prefix that the catalogue does not have (a renamed store's old changelog?).
    UnexpectedTopic {
        /// Topic name.
        topic: String,
    },
    /// A subject under our prefix that the catalogue does not have.
    UnexpectedSubject {
        /// The subject.
        subject: String,
    },
    /// The registry's latest version is newer than (and compatible with) the catalogue's.
    NewerSchemaRegistered {
        /// The subject.
        subject: String,
        /// Version of the catalogue's schema.
        catalogue_version: u32,
        /// Latest version.
        latest_version: u32,
    },
}

impl Finding {
    /// How serious it is.
    pub fn severity(&self) -> Severity {
        match self {
            Finding::MissingTopic { .. }
            | Finding::WrongPartitionCount { .. }
            | Finding::WrongReplicationFactor { .. }
            | Finding::WrongCleanupPolicy { .. }
            | Finding::WrongRetention { .. }
            | Finding::WrongTopicConfig { .. }
            | Finding::SchemaNotRegistered { .. }
            | Finding::IncompatibleSchema { .. } => Severity::Difference,
            Finding::Unverifiable { .. } => Severity::Unverifiable,
            Finding::UnexpectedTopic { .. }
            | Finding::UnexpectedSubject { .. }
            | Finding::NewerSchemaRegistered { .. } => Severity::Notice,
        }
    }

    /// A stable short name, e.g. `missing topic`, used at the start of the report line.
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::MissingTopic { .. } => "missing topic",
            Finding::WrongPartitionCount { .. } => "wrong partition count",
            Finding::WrongReplicationFactor { .. } => "wrong replication factor",
            Finding::WrongCleanupPolicy { .. } => "wrong cleanup policy",
            Finding::WrongRetention { .. } => "wrong retention",
            Finding::WrongTopicConfig { .. } => "wrong topic config",
            Finding::SchemaNotRegistered { .. } => "schema not registered",
            Finding::IncompatibleSchema { .. } => "incompatible schema",
            Finding::Unverifiable { .. } => "unverifiable on this broker",
            Finding::UnexpectedTopic { .. } => "unexpected topic",
            Finding::UnexpectedSubject { .. } => "unexpected subject",
            Finding::NewerSchemaRegistered { .. } => "newer schema registered",
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.kind())?;
        match self {
            Finding::MissingTopic { topic } => write!(f, "{topic}"),
            Finding::WrongPartitionCount {
                topic,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "{topic} has {actual} partitions, the catalogue says {expected}"
                )
            }
            Finding::WrongReplicationFactor {
                topic,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "{topic} has replication factor {actual}, the catalogue says {expected}"
                )
            }
            Finding::WrongCleanupPolicy {
                topic,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "{topic} has cleanup.policy={actual}, the catalogue says {}",
                    expected.as_str()
                )
            }
            Finding::WrongRetention {
                topic,
                expected_ms,
                actual,
            } => {
                write!(
                    f,
                    "{topic} has retention.ms={actual}, the catalogue says {expected_ms}"
                )
            }
            Finding::WrongTopicConfig {
                topic,
                config,
                expected,
                actual,
            } => match actual {
                Some(actual) => write!(
                    f,
                    "{topic} has {config}={actual}, the catalogue says {expected}"
                ),
                None => write!(
                    f,
                    "{topic} does not set {config}, the catalogue says {expected}"
                ),
            },
            Finding::SchemaNotRegistered { subject, detail } => write!(f, "{subject} ({detail})"),
            Finding::IncompatibleSchema {
                subject,
                registered_version,
                reason,
            } => match registered_version {
                // apply's refusal: against the subject's history, not one version.
                0 => write!(f, "{subject}: {reason}"),
                _ => write!(f, "{subject} version {registered_version}: {reason}"),
            },
            Finding::Unverifiable {
                resource,
                check,
                reason,
            } => write!(f, "{check} of {resource}: {reason}"),
            Finding::UnexpectedTopic { topic } => write!(f, "{topic} is not in the catalogue"),
            Finding::UnexpectedSubject { subject } => {
                write!(f, "{subject} is not in the catalogue")
            }
            Finding::NewerSchemaRegistered {
                subject,
                catalogue_version,
                latest_version,
            } => write!(
                f,
                "{subject}: the catalogue's schema is version {catalogue_version}, the latest is {latest_version} (compatible)"
            ),
        }
    }
}

/// A topic as the broker's metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTopic {
    /// Partitions.
    pub partitions: u32,
    /// Replicas of partition 0, when the broker reports replicas.
    pub replication_factor: Option<u16>,
}

/// What the broker said about a topic's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescribedConfig {
    /// The entries the broker returned.
    Entries(BTreeMap<String, String>),
    /// No answer; why.
    Unavailable(String),
}

/// The broker's view of our topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterSnapshot {
    /// Every topic on the cluster, by name.
    pub topics: BTreeMap<String, LiveTopic>,
    /// Configurations of the catalogue's topics that exist.
    pub configs: BTreeMap<String, DescribedConfig>,
}

/// What the registry holds under a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectState {
    /// No such subject.
    Missing,
    /// The subject exists.
    Registered {
        /// Latest version number.
        latest_version: u32,
        /// Latest schema text.
        latest_schema: String,
        /// The version under which the catalogue's exact schema is registered, if it is.
        catalogue_version: Option<u32>,
    },
}

/// Compares a topic's described configuration with the catalogue. Pure, so the
/// rule is tested even where the local broker cannot describe configs.
pub fn compare_topic_config(spec: &TopicSpec, described: &DescribedConfig) -> Vec<Finding> {
    let entries = match described {
        DescribedConfig::Entries(entries) if !entries.is_empty() => entries,
        DescribedConfig::Entries(_) => {
            return unverifiable_configs(
                spec,
                "the broker described no configuration entries for the topic (Tansu 0.6.0 reports only configs set at creation)",
            );
        }
        DescribedConfig::Unavailable(reason) => return unverifiable_configs(spec, reason),
    };
    let mut findings = Vec::new();
    let expected = spec.cleanup_policy();
    match entries.get("cleanup.policy") {
        None => findings.push(Finding::Unverifiable {
            resource: spec.name.clone(),
            check: "cleanup.policy",
            reason: "not among the described entries".into(),
        }),
        Some(actual) => {
            let policies: BTreeSet<&str> = actual
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            if policies != BTreeSet::from([expected.as_str()]) {
                findings.push(Finding::WrongCleanupPolicy {
                    topic: spec.name.clone(),
                    expected,
                    actual: actual.clone(),
                });
            }
        }
    }
    // Retention deletes only under the delete policy; on compacted topics it is inert.
    if expected == CleanupPolicy::Delete {
        match entries.get("retention.ms") {
            None => findings.push(Finding::Unverifiable {
                resource: spec.name.clone(),
                check: "retention.ms",
                reason: "not among the described entries".into(),
            }),
            Some(actual) => {
                if actual.trim().parse::<i64>().ok() != Some(spec.retention_ms) {
                    findings.push(Finding::WrongRetention {
                        topic: spec.name.clone(),
                        expected_ms: spec.retention_ms,
                        actual: actual.clone(),
                    });
                }
            }
        }
    }
    // Every further config the catalogue sets (a changelog's compaction lag).
    // Kafka describes every config, defaults included, so a missing entry
    // means the topic does not set it (Tansu echoes only what a topic was
    // created with): the catalogue's value is not in force either way.
    for (config, expected) in extra_configs(spec) {
        let actual = entries.get(config);
        if actual.map(|a| a.trim()) != Some(expected.as_str()) {
            findings.push(Finding::WrongTopicConfig {
                topic: spec.name.clone(),
                config,
                expected,
                actual: actual.cloned(),
            });
        }
    }
    findings
}

/// The configs of [`TopicSpec::configs`] beyond cleanup policy and retention,
/// which are compared by their own rules.
fn extra_configs(spec: &TopicSpec) -> impl Iterator<Item = (&'static str, String)> {
    spec.configs()
        .into_iter()
        .filter(|(config, _)| !matches!(*config, "cleanup.policy" | "retention.ms"))
}

fn unverifiable_configs(spec: &TopicSpec, reason: &str) -> Vec<Finding> {
    let mut checks = vec!["cleanup.policy"];
    if spec.cleanup_policy() == CleanupPolicy::Delete {
        checks.push("retention.ms");
    }
    checks.extend(extra_configs(spec).map(|(config, _)| config));
    checks
        .into_iter()
        .map(|check| Finding::Unverifiable {
            resource: spec.name.clone(),
            check,
            reason: reason.to_string(),
        })
        .collect()
}

/// Compares the cluster's topics with the catalogue.
pub fn compare_topics(catalogue: &Catalogue, snapshot: &ClusterSnapshot) -> Vec<Finding> {
    let mut findings = Vec::new();
    for spec in catalogue.topics() {
        let Some(live) = snapshot.topics.get(&spec.name) else {
            findings.push(Finding::MissingTopic {
                topic: spec.name.clone(),
            });
            continue;
        };
        if live.partitions != spec.partitions {
            findings.push(Finding::WrongPartitionCount {
                topic: spec.name.clone(),
                expected: spec.partitions,
                actual: live.partitions,
            });
        }
        match live.replication_factor {
            Some(actual) if actual != spec.replication_factor => {
                findings.push(Finding::WrongReplicationFactor {
                    topic: spec.name.clone(),
                    expected: spec.replication_factor,
                    actual,
                })
            }
            Some(_) => {}
            None => findings.push(Finding::Unverifiable {
                resource: spec.name.clone(),
                check: "replication factor",
                reason: "the broker's metadata lists no replicas".into(),
            }),
        }
        let described = snapshot
            .configs
            .get(&spec.name)
            .cloned()
            .unwrap_or_else(|| DescribedConfig::Unavailable("not described".into()));
        findings.extend(compare_topic_config(spec, &described));
    }
    let ours = format!("{}afregning.", catalogue.settings().prefix);
    for name in snapshot.topics.keys() {
        if name.starts_with(&ours) && catalogue.by_name(name).is_none() {
            findings.push(Finding::UnexpectedTopic {
                topic: name.clone(),
            });
        }
    }
    findings
}

/// Compares what the registry holds under a subject with the catalogue's schema.
pub fn compare_subject(spec: &SubjectSpec, state: &SubjectState) -> Vec<Finding> {
    let ours = spec.schema.schema();
    match state {
        SubjectState::Missing => vec![Finding::SchemaNotRegistered {
            subject: spec.subject.clone(),
            detail: "no such subject".into(),
        }],
        SubjectState::Registered {
            latest_version,
            latest_schema,
            catalogue_version,
        } => {
            let latest = match Schema::parse_str(latest_schema) {
                Ok(schema) => schema,
                Err(e) => {
                    return vec![Finding::IncompatibleSchema {
                        subject: spec.subject.clone(),
                        registered_version: *latest_version,
                        reason: format!("the registered schema does not parse as Avro: {e}"),
                    }];
                }
            };
            match catalogue_version {
                Some(version) if version == latest_version => Vec::new(),
                Some(version) => match SchemaCompatibility::can_read(ours, &latest) {
                    Ok(_) => vec![Finding::NewerSchemaRegistered {
                        subject: spec.subject.clone(),
                        catalogue_version: *version,
                        latest_version: *latest_version,
                    }],
                    Err(e) => vec![Finding::IncompatibleSchema {
                        subject: spec.subject.clone(),
                        registered_version: *latest_version,
                        reason: format!(
                            "the latest schema cannot read records written with the catalogue's (version {version}): {e}"
                        ),
                    }],
                },
                None => match SchemaCompatibility::can_read(&latest, ours) {
                    Ok(_) => vec![Finding::SchemaNotRegistered {
                        subject: spec.subject.clone(),
                        detail: format!(
                            "the subject's latest is version {latest_version}; `apply` would register the catalogue's schema after it"
                        ),
                    }],
                    Err(e) => vec![Finding::IncompatibleSchema {
                        subject: spec.subject.clone(),
                        registered_version: *latest_version,
                        reason: format!(
                            "the catalogue's schema cannot read records written with the registered one, so BACKWARD forbids registering it: {e}"
                        ),
                    }],
                },
            }
        }
    }
}

/// The result of `verify`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Everything found, differences first.
    pub findings: Vec<Finding>,
    /// Topics compared.
    pub topics_checked: usize,
    /// Subjects compared.
    pub subjects_checked: usize,
}

impl VerifyReport {
    /// Findings of one severity.
    pub fn of(&self, severity: Severity) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| f.severity() == severity)
    }

    /// Whether the cluster matches: no difference, and in strict mode nothing unverifiable either.
    pub fn passes(&self, strict: bool) -> bool {
        self.of(Severity::Difference).next().is_none()
            && (!strict || self.of(Severity::Unverifiable).next().is_none())
    }

    /// The report as text, one line per finding.
    pub fn render(&self, strict: bool) -> String {
        let mut out = String::new();
        let differences: Vec<_> = self.of(Severity::Difference).collect();
        let unverifiable: Vec<_> = self.of(Severity::Unverifiable).collect();
        let notices: Vec<_> = self.of(Severity::Notice).collect();
        for finding in &differences {
            out.push_str(&format!("DIFFERENCE   {finding}\n"));
        }
        for finding in &unverifiable {
            let label = if strict {
                "UNVERIFIED!  "
            } else {
                "unverified   "
            };
            out.push_str(&format!("{label}{finding}\n"));
        }
        for finding in &notices {
            out.push_str(&format!("notice       {finding}\n"));
        }
        out.push_str(&format!(
            "{} topics and {} subjects checked: {} differences, {} checks unverifiable on this broker{}, {} notices\n",
            self.topics_checked,
            self.subjects_checked,
            differences.len(),
            unverifiable.len(),
            if strict { " (fatal with --strict)" } else { "" },
            notices.len()
        ));
        out
    }
}

/// What `apply` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Topics created.
    pub created_topics: Vec<String>,
    /// Topics that already existed.
    pub existing_topics: Vec<String>,
    /// Subjects a schema was registered under, with the schema id.
    pub registered_subjects: Vec<(String, u32)>,
    /// Subjects already holding the catalogue's schema.
    pub unchanged_subjects: Vec<String>,
    /// What `apply` cannot or did not fix (partition count of an existing topic, a refused schema).
    pub problems: Vec<Finding>,
}

impl ApplyReport {
    /// Whether anything was created or registered.
    pub fn changed(&self) -> bool {
        !self.created_topics.is_empty() || !self.registered_subjects.is_empty()
    }

    /// The report as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for topic in &self.created_topics {
            out.push_str(&format!("created topic      {topic}\n"));
        }
        for (subject, id) in &self.registered_subjects {
            out.push_str(&format!("registered schema  {subject} (id {id})\n"));
        }
        for problem in &self.problems {
            out.push_str(&format!("NOT FIXED          {problem}\n"));
        }
        if self.changed() {
            out.push_str(&format!(
                "{} topics created, {} schemas registered; {} topics and {} subjects were already in place\n",
                self.created_topics.len(),
                self.registered_subjects.len(),
                self.existing_topics.len(),
                self.unchanged_subjects.len()
            ));
        } else {
            out.push_str(&format!(
                "no changes: all {} topics and {} subjects were already in place\n",
                self.existing_topics.len(),
                self.unchanged_subjects.len()
            ));
        }
        out
    }
}

/// Why `apply` or `verify` could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The broker could not be reached or refused a request.
    #[error("broker: {0}")]
    Broker(String),
    /// The registry could not be reached or answered unexpectedly.
    #[error("schema registry: {0}")]
    Registry(String),
}

/// Talks to one broker and one registry on behalf of a catalogue.
pub struct Admin {
    catalogue: Catalogue,
    admin: Arc<AdminClient<DefaultClientContext>>,
    registry: SrSettings,
    timeout: Duration,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("prefix", &self.catalogue.settings().prefix)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Connects (lazily: the first request reaches out) to the broker and registry.
    pub fn connect(
        catalogue: Catalogue,
        bootstrap_servers: &str,
        registry_url: &str,
    ) -> Result<Self, AdminError> {
        let admin = ClientConfig::new()
            .set("bootstrap.servers", bootstrap_servers)
            .create()
            .map_err(|e| {
                AdminError::Broker(format!(
                    "cannot create an admin client for {bootstrap_servers}: {e}"
                ))
            })?;
        Ok(Self {
            catalogue,
            admin: Arc::new(admin),
            registry: SrSettings::new(registry_url.trim_end_matches('/').to_string()),
            timeout: Duration::from_secs(30),
        })
    }

    /// The catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The underlying admin client (tests use it to break things on purpose).
    pub fn client(&self) -> &AdminClient<DefaultClientContext> {
        &self.admin
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .operation_timeout(Some(self.timeout))
            .request_timeout(Some(self.timeout))
    }

    /// Every topic on the cluster with its partition count and replication.
    pub async fn live_topics(&self) -> Result<BTreeMap<String, LiveTopic>, AdminError> {
        let timeout = self.timeout;
        let admin = Arc::clone(&self.admin);
        // fetch_metadata blocks; keep it off the async workers.
        let metadata =
            tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, timeout))
                .await
                .map_err(|e| AdminError::Broker(format!("metadata task failed: {e}")))?
                .map_err(|e| AdminError::Broker(format!("cannot fetch metadata: {e}")))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| {
                let replication_factor = t
                    .partitions()
                    .first()
                    .map(|p| p.replicas().len())
                    .filter(|n| *n > 0)
                    .and_then(|n| u16::try_from(n).ok());
                (
                    t.name().to_string(),
                    LiveTopic {
                        partitions: u32::try_from(t.partitions().len()).unwrap_or(u32::MAX),
                        replication_factor,
                    },
                )
            })
            .collect())
    }

    async fn describe(&self, names: &[String]) -> BTreeMap<String, DescribedConfig> {
        let mut out = BTreeMap::new();
        if names.is_empty() {
            return out;
        }
        let specifiers: Vec<ResourceSpecifier<'_>> =
            names.iter().map(|n| ResourceSpecifier::Topic(n)).collect();
        match self
            .admin
            .describe_configs(&specifiers, &self.options())
            .await
        {
            Err(e) => {
                for name in names {
                    out.insert(
                        name.clone(),
                        DescribedConfig::Unavailable(format!("DescribeConfigs failed: {e}")),
                    );
                }
            }
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(resource) => {
                            let rdkafka::admin::OwnedResourceSpecifier::Topic(name) =
                                &resource.specifier
                            else {
                                continue;
                            };
                            let entries: BTreeMap<String, String> = resource
                                .entries
                                .iter()
                                .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
                                .collect();
                            out.insert(name.clone(), DescribedConfig::Entries(entries));
                        }
                        Err(code) => {
                            tracing::debug!(?code, "DescribeConfigs returned an error for a topic");
                        }
                    }
                }
                for name in names {
                    out.entry(name.clone()).or_insert_with(|| {
                        DescribedConfig::Unavailable(
                            "the broker answered DescribeConfigs without this topic".into(),
                        )
                    });
                }
            }
        }
        out
    }

    /// The broker's view of the catalogue's topics.
    pub async fn snapshot(&self) -> Result<ClusterSnapshot, AdminError> {
        let topics = self.live_topics().await?;
        let present: Vec<String> = self
            .catalogue
            .topics()
            .iter()
            .filter(|t| topics.contains_key(&t.name))
            .map(|t| t.name.clone())
            .collect();
        let configs = self.describe(&present).await;
        Ok(ClusterSnapshot { topics, configs })
    }

    async fn subjects_on_registry(&self) -> Result<BTreeSet<String>, AdminError> {
        Ok(get_all_subjects(&self.registry)
            .await
            .map_err(|e| AdminError::Registry(format!("cannot list subjects: {e}")))?
            .into_iter()
            .collect())
    }

    /// The version under which the catalogue's exact schema is registered, if any.
    async fn lookup(&self, spec: &SubjectSpec) -> Result<Option<(u32, u32)>, AdminError> {
        let body = serde_json::json!({"schema": spec.schema.registry_text(), "schemaType": "AVRO"})
            .to_string();
        match perform_sr_call(&self.registry, SrCall::PostForVersion(&spec.subject, &body)).await {
            Ok(found) => Ok(found.version.zip(found.id)),
            Err(e) if e.retriable => Err(AdminError::Registry(format!(
                "looking up {}: {e}",
                spec.subject
            ))),
            // 40401 subject not found / 40403 schema not found.
            Err(_) => Ok(None),
        }
    }

    /// What the registry holds under one subject.
    pub async fn subject_state(
        &self,
        spec: &SubjectSpec,
        existing: &BTreeSet<String>,
    ) -> Result<SubjectState, AdminError> {
        if !existing.contains(&spec.subject) {
            return Ok(SubjectState::Missing);
        }
        let latest = get_schema_by_subject_and_version(&self.registry, &spec.subject, None)
            .await
            .map_err(|e| {
                AdminError::Registry(format!("reading the latest {}: {e}", spec.subject))
            })?;
        let catalogue_version = self.lookup(spec).await?.map(|(version, _)| version);
        Ok(SubjectState::Registered {
            latest_version: latest.version.unwrap_or(0),
            latest_schema: latest.schema,
            catalogue_version,
        })
    }

    /// Creates the catalogue's missing topics (never touches existing ones).
    pub async fn apply_topics(&self, report: &mut ApplyReport) -> Result<(), AdminError> {
        let live = self.live_topics().await?;
        let mut missing = Vec::new();
        for spec in self.catalogue.topics() {
            match live.get(&spec.name) {
                Some(topic) => {
                    report.existing_topics.push(spec.name.clone());
                    if topic.partitions != spec.partitions {
                        report.problems.push(Finding::WrongPartitionCount {
                            topic: spec.name.clone(),
                            expected: spec.partitions,
                            actual: topic.partitions,
                        });
                    }
                }
                None => missing.push(spec),
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let configs: Vec<Vec<(&'static str, String)>> =
            missing.iter().map(|spec| spec.configs()).collect();
        let new_topics: Vec<NewTopic<'_>> = missing
            .iter()
            .zip(&configs)
            .map(|(spec, configs)| {
                let partitions = i32::try_from(spec.partitions).unwrap_or(i32::MAX);
                let replication = TopicReplication::Fixed(i32::from(spec.replication_factor));
                configs.iter().fold(
                    NewTopic::new(&spec.name, partitions, replication),
                    |topic, (key, value)| topic.set(key, value),
                )
            })
            .collect();
        let results = self
            .admin
            .create_topics(&new_topics, &self.options())
            .await
            .map_err(|e| AdminError::Broker(format!("CreateTopics failed: {e}")))?;
        for result in results {
            match result {
                Ok(name) => report.created_topics.push(name),
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    report.existing_topics.push(name)
                }
                Err((name, code)) => {
                    return Err(AdminError::Broker(format!("cannot create {name}: {code}")));
                }
            }
        }
        self.await_topics(&report.created_topics).await
    }

    /// Waits until the metadata shows the created topics, so a `verify` right
    /// after `apply` sees them on a multi-broker cluster too.
    async fn await_topics(&self, names: &[String]) -> Result<(), AdminError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let live = self.live_topics().await?;
            if names.iter().all(|n| live.contains_key(n)) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(AdminError::Broker(
                    "created topics did not appear in the metadata in time".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Registers the catalogue's schemas where they are not yet registered.
    pub async fn apply_schemas(&self, report: &mut ApplyReport) -> Result<(), AdminError> {
        for spec in self.catalogue.subjects() {
            if self.lookup(&spec).await?.is_some() {
                report.unchanged_subjects.push(spec.subject.clone());
                continue;
            }
            match post_schema(
                &self.registry,
                spec.subject.clone(),
                supplied_schema(spec.schema),
            )
            .await
            {
                Ok(registered) => report
                    .registered_subjects
                    .push((spec.subject.clone(), registered.id)),
                Err(e) if e.retriable => {
                    return Err(AdminError::Registry(format!(
                        "registering {}: {e}",
                        spec.subject
                    )));
                }
                Err(e) => report.problems.push(Finding::IncompatibleSchema {
                    subject: spec.subject.clone(),
                    registered_version: 0,
                    reason: refusal_reason(&e),
                }),
            }
        }
        Ok(())
    }

    /// Creates missing topics and registers missing schemas. Idempotent: a
    /// second run changes nothing and its report says so.
    pub async fn apply(&self) -> Result<ApplyReport, AdminError> {
        let mut report = ApplyReport::default();
        self.apply_topics(&mut report).await?;
        self.apply_schemas(&mut report).await?;
        Ok(report)
    }

    /// Compares the cluster and registry with the catalogue.
    pub async fn verify(&self) -> Result<VerifyReport, AdminError> {
        let snapshot = self.snapshot().await?;
        let mut findings = compare_topics(&self.catalogue, &snapshot);
        let existing = self.subjects_on_registry().await?;
        let subjects = self.catalogue.subjects();
        for spec in &subjects {
            let state = self.subject_state(spec, &existing).await?;
            findings.extend(compare_subject(spec, &state));
        }
        let ours = format!("{}afregning.", self.catalogue.settings().prefix);
        let known: BTreeSet<&str> = subjects.iter().map(|s| s.subject.as_str()).collect();
        for subject in &existing {
            if subject.starts_with(&ours) && !known.contains(subject.as_str()) {
                findings.push(Finding::UnexpectedSubject {
                    subject: subject.clone(),
                });
            }
        }
        findings.sort_by_key(Finding::severity);
        Ok(VerifyReport {
            findings,
            topics_checked: self.catalogue.topics().len(),
            subjects_checked: subjects.len(),
        })
    }
}

/// Why the registry refused to register the catalogue's schema, in its own
/// words: `HTTP 409 ... error_code: 409, message: ... Field 'gsrn' ...`
/// without the client's wrapping ("it's retriable: false, it's cached: false").
fn refusal_reason(e: &schema_registry_converter::error::SRCError) -> String {
    match &e.cause {
        Some(cause) => format!(
            "the registry refused the catalogue's schema ({}): {cause}",
            e.error
                .trim_start_matches("HTTP request to schema registry failed with ")
        ),
        None => format!("the registry refused the catalogue's schema: {}", e.error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Component, TopicId};
    use crate::schemas::SchemaFile;
    use crate::settings::TopologySettings;

    fn catalogue() -> Catalogue {
        Catalogue::new(TopologySettings::with_prefix("t.")).unwrap()
    }

    fn entries(pairs: &[(&str, &str)]) -> DescribedConfig {
        DescribedConfig::Entries(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The cleanup-policy and retention comparison, on the kind of answer a
    /// real Kafka gives to DescribeConfigs (broker defaults included, such as a
    /// 7-day retention or `compact,delete`). Tansu 0.6.0 only echoes the
    /// configs a topic was created with, so these cases cannot be produced
    /// locally; see `tests/apply_verify.rs` for what runs live.
    #[test]
    fn cleanup_policy_and_retention_are_compared_when_described() {
        let catalogue = catalogue();
        let table = catalogue.spec(TopicId::MeteringPoints).unwrap();
        assert_eq!(
            compare_topic_config(
                table,
                &entries(&[("cleanup.policy", "compact"), ("retention.ms", "604800000")])
            ),
            vec![],
            "retention is inert on a compacted topic"
        );
        assert_eq!(
            compare_topic_config(
                table,
                &entries(&[("cleanup.policy", "delete"), ("retention.ms", "-1")])
            ),
            vec![Finding::WrongCleanupPolicy {
                topic: "t.afregning.metering.metering-points.v1".into(),
                expected: CleanupPolicy::Compact,
                actual: "delete".into()
            }]
        );
        assert_eq!(
            compare_topic_config(table, &entries(&[("cleanup.policy", "compact,delete")])).len(),
            1,
            "compact,delete on a table would expire master data"
        );
        let raw = catalogue.spec(TopicId::TimeseriesRaw).unwrap();
        let ninety_days = (90 * 24 * 3600 * 1000i64).to_string();
        assert_eq!(
            compare_topic_config(
                raw,
                &entries(&[("cleanup.policy", "delete"), ("retention.ms", &ninety_days)])
            ),
            vec![]
        );
        assert_eq!(
            compare_topic_config(
                raw,
                &entries(&[("cleanup.policy", "delete"), ("retention.ms", "604800000")])
            ),
            vec![Finding::WrongRetention {
                topic: "t.afregning.datahub.timeseries-raw.v1".into(),
                expected_ms: 90 * 24 * 3600 * 1000,
                actual: "604800000".into()
            }],
            "Kafka's 7-day default would lose the settlement window"
        );
        assert_eq!(
            compare_topic_config(
                raw,
                &entries(&[
                    ("cleanup.policy", "compact"),
                    ("retention.ms", &ninety_days)
                ])
            )[0]
            .kind(),
            "wrong cleanup policy"
        );
    }

    #[test]
    fn an_empty_answer_is_unverifiable_not_a_difference() {
        let catalogue = catalogue();
        let raw = catalogue.spec(TopicId::TimeseriesRaw).unwrap();
        let findings = compare_topic_config(raw, &DescribedConfig::Entries(BTreeMap::new()));
        assert_eq!(findings.len(), 2);
        assert!(
            findings
                .iter()
                .all(|f| f.severity() == Severity::Unverifiable)
        );
        let table = catalogue.spec(TopicId::ChargeLinks).unwrap();
        let findings =
            compare_topic_config(table, &DescribedConfig::Unavailable("no answer".into()));
        assert_eq!(
            findings.len(),
            1,
            "a compacted topic has no retention check"
        );
        let report = VerifyReport {
            findings,
            topics_checked: 1,
            subjects_checked: 0,
        };
        assert!(report.passes(false));
        assert!(
            !report.passes(true),
            "--strict fails on what it could not check"
        );
        let changelog = catalogue.changelog(Component::Settle, "months").unwrap();
        let checks: Vec<&str> =
            compare_topic_config(changelog, &DescribedConfig::Entries(BTreeMap::new()))
                .iter()
                .filter_map(|f| match f {
                    Finding::Unverifiable { check, .. } => Some(*check),
                    _ => None,
                })
                .collect();
        assert_eq!(checks, vec!["cleanup.policy", "min.compaction.lag.ms"]);
    }

    /// Decision 0052's compaction lag on changelogs, on the answers a real
    /// Kafka gives (every config, its default 0 included) and the ones Tansu
    /// gives (only what the topic was created with).
    #[test]
    fn a_changelog_without_the_compaction_lag_is_a_difference() {
        let catalogue = catalogue();
        let changelog = catalogue.changelog(Component::Settle, "months").unwrap();
        let name = "t.afregning.settle.months-changelog.v1";
        assert_eq!(changelog.name, name);
        assert_eq!(
            compare_topic_config(
                changelog,
                &entries(&[
                    ("cleanup.policy", "compact"),
                    ("retention.ms", "-1"),
                    ("min.compaction.lag.ms", "3600000")
                ])
            ),
            vec![]
        );
        // Kafka, topic created without the setting: the broker default.
        let kafka = compare_topic_config(
            changelog,
            &entries(&[
                ("cleanup.policy", "compact"),
                ("retention.ms", "604800000"),
                ("min.compaction.lag.ms", "0"),
            ]),
        );
        assert_eq!(
            kafka,
            vec![Finding::WrongTopicConfig {
                topic: name.into(),
                config: "min.compaction.lag.ms",
                expected: "3600000".into(),
                actual: Some("0".into()),
            }]
        );
        assert_eq!(kafka[0].severity(), Severity::Difference);
        assert_eq!(
            kafka[0].to_string(),
            format!(
                "wrong topic config: {name} has min.compaction.lag.ms=0, the catalogue says 3600000"
            )
        );
        // Tansu, topic created as `apply` did before: the entry is absent.
        let tansu = compare_topic_config(
            changelog,
            &entries(&[("cleanup.policy", "compact"), ("retention.ms", "-1")]),
        );
        assert_eq!(
            tansu[0].to_string(),
            format!(
                "wrong topic config: {name} does not set min.compaction.lag.ms, the catalogue says 3600000"
            )
        );
        // Other topics are not held to it.
        let table = catalogue.spec(TopicId::MeteringPoints).unwrap();
        assert_eq!(
            compare_topic_config(table, &entries(&[("cleanup.policy", "compact")])),
            vec![]
        );
    }

    #[test]
    fn topics_are_compared_by_existence_partitions_and_replication() {
        let catalogue = catalogue();
        let mut snapshot = ClusterSnapshot::default();
        for spec in catalogue.topics() {
            snapshot.topics.insert(
                spec.name.clone(),
                LiveTopic {
                    partitions: spec.partitions,
                    replication_factor: Some(1),
                },
            );
            snapshot.configs.insert(
                spec.name.clone(),
                DescribedConfig::Entries(
                    spec.configs()
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                ),
            );
        }
        assert_eq!(compare_topics(&catalogue, &snapshot), vec![]);
        snapshot.topics.remove("t.afregning.metering.readings.v1");
        snapshot
            .topics
            .get_mut("t.afregning.charges.links.v1")
            .unwrap()
            .partitions = 3;
        snapshot
            .topics
            .get_mut("t.afregning.ops.dead-letters.v1")
            .unwrap()
            .replication_factor = Some(3);
        snapshot.topics.insert(
            "t.afregning.enrich.old-store-changelog.v1".into(),
            LiveTopic {
                partitions: 12,
                replication_factor: Some(1),
            },
        );
        snapshot.topics.insert(
            "someone-elses-topic".into(),
            LiveTopic {
                partitions: 1,
                replication_factor: Some(1),
            },
        );
        let findings = compare_topics(&catalogue, &snapshot);
        assert_eq!(
            findings,
            vec![
                Finding::MissingTopic {
                    topic: "t.afregning.metering.readings.v1".into()
                },
                Finding::WrongPartitionCount {
                    topic: "t.afregning.charges.links.v1".into(),
                    expected: 12,
                    actual: 3
                },
                Finding::WrongReplicationFactor {
                    topic: "t.afregning.ops.dead-letters.v1".into(),
                    expected: 1,
                    actual: 3
                },
                Finding::UnexpectedTopic {
                    topic: "t.afregning.enrich.old-store-changelog.v1".into()
                },
            ]
        );
    }

    fn subject(file: SchemaFile) -> SubjectSpec {
        SubjectSpec {
            subject: "t.afregning.metering.readings.v1-value".into(),
            topic: "t.afregning.metering.readings.v1".into(),
            is_key: false,
            schema: file,
        }
    }

    #[test]
    fn subjects_are_compared_by_registration_and_compatibility() {
        let spec = subject(SchemaFile::Reading);
        let ours = SchemaFile::Reading.registry_text().to_string();
        assert_eq!(
            compare_subject(&spec, &SubjectState::Missing)[0].kind(),
            "schema not registered"
        );
        assert_eq!(
            compare_subject(
                &spec,
                &SubjectState::Registered {
                    latest_version: 1,
                    latest_schema: ours.clone(),
                    catalogue_version: Some(1)
                }
            ),
            vec![]
        );
        // An older schema (fewer fields): ours has no defaults for the extra fields, so it cannot read it.
        let older = r#"{"type":"record","name":"Reading","namespace":"afregning.metering","fields":[{"name":"gsrn","type":"string"}]}"#;
        let findings = compare_subject(
            &spec,
            &SubjectState::Registered {
                latest_version: 1,
                latest_schema: older.into(),
                catalogue_version: None,
            },
        );
        assert_eq!(findings[0].kind(), "incompatible schema", "{findings:?}");
        // A newer schema that only adds an optional field: a notice.
        let mut newer: serde_json::Value = serde_json::from_str(&ours).unwrap();
        newer["fields"].as_array_mut().unwrap().push(
            serde_json::json!({"name":"extra","type":["null","string"],"default":null,"doc":"d"}),
        );
        let findings = compare_subject(
            &spec,
            &SubjectState::Registered {
                latest_version: 2,
                latest_schema: newer.to_string(),
                catalogue_version: Some(1),
            },
        );
        assert_eq!(findings[0].kind(), "newer schema registered");
        assert_eq!(findings[0].severity(), Severity::Notice);
        // A newer schema that changed a field's type: incompatible.
        let mut changed: serde_json::Value = serde_json::from_str(&ours).unwrap();
        changed["fields"][0]["type"] = serde_json::json!("long");
        let findings = compare_subject(
            &spec,
            &SubjectState::Registered {
                latest_version: 2,
                latest_schema: changed.to_string(),
                catalogue_version: Some(1),
            },
        );
        assert_eq!(findings[0].kind(), "incompatible schema");
    }

    #[test]
    fn reports_say_what_happened() {
        let report = ApplyReport {
            existing_topics: vec!["a".into()],
            unchanged_subjects: vec!["a-value".into()],
            ..ApplyReport::default()
        };
        assert!(!report.changed());
        assert!(report.render().starts_with("no changes"));
        let verify = VerifyReport {
            findings: vec![Finding::MissingTopic { topic: "x".into() }],
            topics_checked: 1,
            subjects_checked: 0,
        };
        assert!(!verify.passes(false));
        assert!(
            verify
                .render(false)
                .contains("DIFFERENCE   missing topic: x")
        );
    }
}
