//! Shared test set-up: a real broker and registry (testkit), the topology applied under the
//! test's namespace, a simulator, a connector configuration with quick intervals, and a
//! reader of the raw topics.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use afregning_connect::config::{
    BackoffConfig, ConnectConfig, KafkaConfig, OutboundConfig, QueueConfig, QueuesConfig, Secret,
};
use afregning_connect::{ConnectorEvent, Observer, Queue};
use afregning_simulator::RunningSimulator;
use afregning_testkit::TestEnv;
use afregning_topology::admin::Admin;
use afregning_topology::{Catalogue, TopologySettings};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub struct Harness {
    pub env: TestEnv,
    pub settings: TopologySettings,
    pub catalogue: Catalogue,
    pub log_dir: tempfile::TempDir,
}

/// The test's broker namespace with every catalogue topic created (3 partitions).
pub async fn harness(label: &str) -> Harness {
    let env = TestEnv::start(label).await.expect("test environment");
    let settings = TopologySettings {
        partitions: 3,
        ..TopologySettings::with_prefix(env.namespace.clone())
    };
    let catalogue = Catalogue::new(settings.clone()).expect("catalogue");
    let admin = Admin::connect(catalogue.clone(), &env.bootstrap_servers, &env.registry_url)
        .expect("admin");
    let report = admin.apply().await.expect("apply");
    assert!(report.problems.is_empty(), "{}", report.render());
    drop(admin);
    Harness {
        env,
        settings,
        catalogue,
        log_dir: tempfile::tempdir().expect("tmp"),
    }
}

impl Harness {
    /// A connector configuration for `sim`: quick idle and retry intervals, the test's topics.
    pub fn config(&self, sim: &RunningSimulator) -> ConnectConfig {
        let mut config = ConnectConfig::default();
        config.datahub.base_url = sim.url.clone();
        config.datahub.token_url = sim.token_url();
        config.datahub.client_id = "afregning-demo".into();
        config.datahub.client_secret = Secret::new("demo-secret");
        config.datahub.request_timeout_ms = 10_000;
        config.queues = QueuesConfig::all(QueueConfig::every(20, 200));
        config.retry = BackoffConfig {
            initial_ms: 50,
            max_ms: 1_000,
            multiplier: 2.0,
        };
        config.requests_per_second = 500;
        config.kafka = KafkaConfig {
            bootstrap_servers: self.env.bootstrap_servers.clone(),
            schema_registry_url: self.env.registry_url.clone(),
            topology: self.settings.clone(),
            ..KafkaConfig::default()
        };
        config.inbound_log.dir = self.log_dir.path().to_path_buf();
        config.outbound = OutboundConfig {
            enabled: false,
            ..OutboundConfig::default()
        };
        config.admin_listen = "127.0.0.1:0".parse().expect("addr");
        config
    }

    pub fn raw_topic(&self, queue: Queue) -> String {
        afregning_connect::publish::raw_topic(queue)
            .name(&self.catalogue)
            .to_string()
    }

    pub async fn cleanup(self) {
        self.env.cleanup().await.expect("cleanup");
    }
}

/// A consumed record.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

impl RawRecord {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// Reads `topics` (3 partitions each) from the beginning until `done` says so or `timeout`.
pub async fn read_topics(
    bootstrap: &str,
    group: &str,
    topics: Vec<String>,
    timeout: Duration,
    done: impl Fn(&[RawRecord]) -> bool + Send + 'static,
) -> Vec<RawRecord> {
    let bootstrap = bootstrap.to_string();
    let group = group.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .expect("consumer");
        let mut list = TopicPartitionList::new();
        for topic in &topics {
            for p in 0..3 {
                list.add_partition_offset(topic, p, Offset::Beginning)
                    .expect("partition");
            }
        }
        consumer.assign(&list).expect("assign");
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while Instant::now() < deadline && !done(&out) {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    let mut headers = BTreeMap::new();
                    if let Some(h) = m.headers() {
                        for header in h.iter() {
                            headers.insert(
                                header.key.to_string(),
                                header
                                    .value
                                    .map(|v| String::from_utf8_lossy(v).into_owned())
                                    .unwrap_or_default(),
                            );
                        }
                    }
                    out.push(RawRecord {
                        topic: m.topic().to_string(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
                        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                        headers,
                    });
                }
                Some(Err(e)) => panic!("consumer error: {e}"),
                None => {}
            }
        }
        out
    })
    .await
    .expect("reader task")
}

/// Collects the connector's events.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<ConnectorEvent>>>);

impl Recorder {
    pub fn observer(&self) -> Observer {
        let events = Arc::clone(&self.0);
        Arc::new(move |e| events.lock().expect("lock").push(e))
    }

    pub fn events(&self) -> Vec<ConnectorEvent> {
        self.0.lock().expect("lock").clone()
    }

    /// (MessageId, instant) of every "all records acknowledged" event.
    pub fn acknowledged(&self) -> Vec<(String, Instant)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                ConnectorEvent::Acknowledged { message_id, at, .. } => Some((message_id, at)),
                _ => None,
            })
            .collect()
    }
}

/// Every dequeue that is not preceded by an acknowledgement of the same message: the k-th
/// dequeue of a MessageId needs at least k acknowledgements of it before it, in time.
pub fn dequeues_before_acknowledgement(
    acks: &[(String, Instant)],
    dequeues: &[(String, Instant)],
) -> Vec<String> {
    let mut violations = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, at) in dequeues {
        let k = seen.entry(id.as_str()).or_insert(0);
        *k += 1;
        let acked_before = acks.iter().filter(|(a, t)| a == id && t <= at).count();
        if acked_before < *k {
            violations.push(id.clone());
        }
    }
    violations
}

/// Waits until `f` is true (checked every 100 ms) or panics after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Our RSM-001 for `gsrn` from `sender` (`process`: E03 change of supplier or E65 move-in)
/// effective `start`, with the customer's CPR and name when given (as the connector posts it,
/// the placeholders opened).
pub fn rsm001(
    message_id: &str,
    sender: &str,
    gsrn: afregning_cim::Gsrn,
    process: afregning_cim::codes::ProcessType,
    start: chrono::DateTime<chrono::Utc>,
    customer: Option<(&str, &str)>,
) -> Vec<u8> {
    use afregning_cim::codes::{BusinessSector, CodingScheme, MessageType, Role};
    use afregning_cim::{DATAHUB_GLN, Header, Participant, PartyId};
    afregning_cim::rsm001::write(&afregning_cim::rsm001::RequestChangeOfSupplier {
        header: Header {
            message_id: message_id.into(),
            business_sector: Some(BusinessSector::ELECTRICITY),
            created: chrono::Utc::now(),
            process_type: process,
            reason_code: None,
            sender: Participant {
                id: PartyId::gln(sender),
                role: Role::ENERGY_SUPPLIER,
            },
            receiver: Participant {
                id: PartyId::gln(DATAHUB_GLN),
                role: Role::METERING_POINT_ADMINISTRATOR,
            },
            document_type: MessageType::REQUEST_CHANGE_OF_SUPPLIER,
        },
        records: vec![afregning_cim::rsm001::SupplierChange {
            transaction_id: format!("tx-{message_id}"),
            business_process_id: None,
            balance_responsible: None,
            customer_id: customer.map(|(cpr, _)| PartyId {
                coding_scheme: CodingScheme::CPR,
                value: cpr.into(),
            }),
            customer_name: customer.map(|(_, name)| name.into()),
            energy_supplier: PartyId::gln("5799999933318"),
            metering_point: gsrn,
            shipper: None,
            start,
        }],
    })
}
