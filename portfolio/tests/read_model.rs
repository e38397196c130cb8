//! The read model on the real broker and PostgreSQL: portfolio events of a few metering points
//! (a move-in with master data, a change of supplier rejected E17 then resubmitted and
//! accepted, an end of supply requested then cancelled, a customer lost through RSM-004 and a
//! BRS-003 rollback) are produced to a topic keyed by GSRN, projected as they are consumed (with
//! a re-delivery), then the tables are truncated and rebuilt from the topic's beginning: the
//! rebuilt tables equal the first ones. The CPR numbers of the scenario appear in no topic
//! record and no table.

use std::collections::BTreeMap;
use std::time::Duration;

use afregning_cim::gsrn::Gsrn;
use afregning_portfolio::personal::{Cpr, CustomerIdentity, Keyring, PersonName, PersonalData};
use afregning_portfolio::read_model;
use afregning_portfolio::{
    Command, CommandMeta, CustomerKey, CustomerRef, Event, Gln, MasterData, MeteringPoint,
    ProcessDetails, ProcessId, ProcessKind, Reason, decide,
};
use afregning_settlement::calendar::local_midnight;
use afregning_testkit::TestEnv;
use chrono::{Duration as Days, NaiveDate};
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const US: &str = "5790000000005";
const OTHER: &str = "5790000000012";
const CPRS: [&str; 3] = ["0101701111", "0202802222", "0303903333"];

fn gln(s: &str) -> Gln {
    Gln::parse(s).unwrap()
}

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, m, d).unwrap()
}

/// Runs commands against one metering point and keeps the events.
struct Script<'k> {
    state: MeteringPoint,
    events: Vec<Event>,
    keyring: &'k Keyring,
}

impl<'k> Script<'k> {
    fn new(gsrn: &str, keyring: &'k Keyring) -> Self {
        Self {
            state: MeteringPoint::new(Gsrn::parse(gsrn).unwrap(), gln(US)),
            events: Vec::new(),
            keyring,
        }
    }

    fn run(&mut self, on: NaiveDate, command: Command) -> &mut Self {
        let meta = CommandMeta {
            at: local_midnight(on) + Days::hours(9),
            actor: "operator".into(),
            why: "read model test".into(),
            message_id: Some(format!("msg-{}", self.events.len())),
        };
        let event =
            decide(&self.state, &meta, &command).unwrap_or_else(|r| panic!("{command:?}: {r}"));
        self.state = self.state.clone().apply(&event);
        self.events.push(event);
        self
    }

    fn customer(&self, n: usize) -> CustomerRef {
        let personal = self
            .keyring
            .seal(&PersonalData {
                identity: CustomerIdentity::Cpr(Cpr::parse(CPRS[n]).unwrap()),
                name: PersonName::new("Test Kunde"),
            })
            .unwrap();
        CustomerRef {
            key: CustomerKey(format!("customer-{n}")),
            personal: Some(personal),
        }
    }

    fn request(
        &mut self,
        on: NaiveDate,
        id: &str,
        kind: ProcessKind,
        effective: NaiveDate,
        customer: Option<usize>,
    ) -> &mut Self {
        let details = ProcessDetails {
            process: ProcessId(id.into()),
            kind,
            supplier: gln(US),
            effective,
            customer: customer.map(|n| self.customer(n)),
            corrects: None,
            balance_responsible: None,
            notified_reason: None,
        };
        self.run(on, Command::Request(details))
    }

    fn master_data(&mut self, on: NaiveDate, grid_area: &str) -> &mut Self {
        self.run(
            on,
            Command::MasterData(MasterData {
                valid_from: on,
                grid_area: grid_area.into(),
                metering_point_type: Some("E17".into()),
                settlement_method: Some("D01".into()),
                balance_responsible: Some(gln(OTHER)),
            }),
        )
    }
}

fn pid(s: &str) -> ProcessId {
    ProcessId(s.into())
}

fn scenario(keyring: &Keyring) -> Vec<Event> {
    let mut all = Vec::new();
    // 1. Move-in accepted, master data in grid area 344, takes effect, customer data completes it.
    let mut a = Script::new("571313180400000011", keyring);
    a.request(
        day(3, 3),
        "a-move-in",
        ProcessKind::MoveIn,
        day(3, 10),
        Some(0),
    )
    .run(
        day(3, 3),
        Command::Accept {
            process: pid("a-move-in"),
            datahub_ref: Some("dh-a".into()),
        },
    )
    .master_data(day(3, 4), "344")
    .run(
        day(3, 10),
        Command::TakeEffect {
            process: pid("a-move-in"),
            disconnected_on: None,
        },
    );
    let c0 = a.customer(0);
    a.run(
        day(3, 11),
        Command::CustomerData {
            customer: Some(c0.key),
            process: None,
            personal: c0.personal.unwrap(),
        },
    );
    // ... then an end of supply requested and cancelled: nothing changes.
    a.request(
        day(4, 1),
        "a-eos",
        ProcessKind::EndOfSupply,
        day(4, 15),
        None,
    )
    .run(
        day(4, 1),
        Command::Accept {
            process: pid("a-eos"),
            datahub_ref: None,
        },
    )
    .run(
        day(4, 7),
        Command::Cancel {
            process: pid("a-eos"),
        },
    );
    all.extend(a.events.clone());

    // 2. Change of supplier rejected E17, resubmitted, accepted; later lost through RSM-004.
    let mut b = Script::new("571313180400000028", keyring);
    b.request(
        day(3, 3),
        "b-cos-1",
        ProcessKind::ChangeOfSupplier,
        day(3, 5),
        Some(1),
    )
    .run(
        day(3, 3),
        Command::Reject {
            process: pid("b-cos-1"),
            reasons: vec![Reason::new(
                "E17",
                "Startdato 2025-03-04T23:00:00Z er ikke korrekt",
            )],
        },
    )
    .request(
        day(3, 3),
        "b-cos-2",
        ProcessKind::ChangeOfSupplier,
        day(3, 20),
        Some(1),
    )
    .run(
        day(3, 4),
        Command::Accept {
            process: pid("b-cos-2"),
            datahub_ref: Some("dh-b".into()),
        },
    )
    .master_data(day(3, 5), "344")
    .run(
        day(3, 20),
        Command::TakeEffect {
            process: pid("b-cos-2"),
            disconnected_on: None,
        },
    );
    let lost = ProcessDetails {
        process: pid("dh-rsm004-b"),
        kind: ProcessKind::ChangeOfSupplier,
        supplier: gln(OTHER),
        effective: day(5, 14),
        customer: None,
        corrects: None,
        balance_responsible: None,
        notified_reason: Some("E03".into()),
    };
    b.run(day(5, 1), Command::Notify(lost)).run(
        day(5, 14),
        Command::TakeEffect {
            process: pid("dh-rsm004-b"),
            disconnected_on: None,
        },
    );
    all.extend(b.events.clone());

    // 3. Our change of supplier in grid area 804 rolled back by BRS-003.
    let mut c = Script::new("571313180400000035", keyring);
    c.request(
        day(3, 3),
        "c-cos",
        ProcessKind::ChangeOfSupplier,
        day(3, 12),
        Some(2),
    )
    .run(
        day(3, 3),
        Command::Accept {
            process: pid("c-cos"),
            datahub_ref: None,
        },
    )
    .master_data(day(3, 4), "804")
    .run(
        day(3, 12),
        Command::TakeEffect {
            process: pid("c-cos"),
            disconnected_on: None,
        },
    );
    let rollback = ProcessDetails {
        process: pid("c-rollback"),
        kind: ProcessKind::IncorrectChangeOfSupplier,
        supplier: gln(US),
        effective: day(3, 12),
        customer: None,
        corrects: Some(pid("c-cos")),
        balance_responsible: None,
        notified_reason: None,
    };
    c.run(day(4, 2), Command::Request(rollback))
        .run(
            day(4, 2),
            Command::Accept {
                process: pid("c-rollback"),
                datahub_ref: None,
            },
        )
        .run(
            day(4, 2),
            Command::TakeEffect {
                process: pid("c-rollback"),
                disconnected_on: None,
            },
        );
    assert!(c.state.supply.periods.is_empty() && c.state.supply.retired.len() == 1);
    all.extend(c.events.clone());
    all
}

async fn consume_and_project(
    env: &TestEnv,
    topic: &str,
    group: &str,
    count: usize,
    pool: &sqlx::PgPool,
    redeliver: bool,
) -> Vec<Vec<u8>> {
    let consumer: StreamConsumer = env
        .kafka_config()
        .set("group.id", env.group(group))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut states: BTreeMap<String, MeteringPoint> = BTreeMap::new();
    let mut raw = Vec::new();
    while raw.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("events within 60 s")
            .unwrap();
        let payload = message.payload().unwrap().to_vec();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let event: Event = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            key,
            event.metering_point.to_string(),
            "keyed by metering point"
        );
        let state = states
            .remove(&key)
            .unwrap_or_else(|| MeteringPoint::new(event.metering_point, gln(US)))
            .apply(&event);
        assert!(read_model::project(pool, &state, &event).await.unwrap());
        if redeliver {
            assert!(
                !read_model::project(pool, &state, &event).await.unwrap(),
                "a re-delivery writes nothing"
            );
        }
        states.insert(key, state);
        raw.push(payload);
    }
    raw
}

async fn dump(pool: &sqlx::PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for table in [
        "portfolio_metering_points",
        "portfolio_supply_periods",
        "portfolio_processes",
        "portfolio_process_history",
        "portfolio_customers",
        "portfolio_customer_seals",
    ] {
        let lines: Vec<String> =
            sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY t::text"))
                .fetch_all(pool)
                .await
                .unwrap();
        rows.extend(lines.into_iter().map(|l| format!("{table}: {l}")));
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_the_read_model_from_the_topic_gives_the_same_tables() {
    let env = TestEnv::start("portfolio_read_model").await.unwrap();
    let pool = env.pg_pool().await.unwrap();
    afregning_sinks::schema::migrator()
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let topic = env.topic("afregning.portfolio.events.v1");
    let admin: AdminClient<DefaultClientContext> = env.kafka_config().create().unwrap();
    for result in admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap()
    {
        result.unwrap();
    }

    let mut keyring = Keyring::default();
    keyring.generate("k-test").unwrap();
    let events = scenario(&keyring);
    let producer: FutureProducer = env
        .kafka_config()
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for event in &events {
        let key = event.metering_point.to_string();
        let value = serde_json::to_vec(event).unwrap();
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&value),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
    }

    let raw = consume_and_project(&env, &topic, "projection", events.len(), &pool, true).await;
    let first = dump(&pool).await;
    assert!(first.len() > events.len(), "history plus state rows");

    // The queries.
    let supplied = read_model::supplied_in_grid_area(&pool, "344", day(4, 1))
        .await
        .unwrap();
    assert_eq!(supplied, ["571313180400000011", "571313180400000028"]);
    let after_loss = read_model::supplied_in_grid_area(&pool, "344", day(5, 14))
        .await
        .unwrap();
    assert_eq!(after_loss, ["571313180400000011"]);
    assert!(
        read_model::supplied_in_grid_area(&pool, "804", day(3, 20))
            .await
            .unwrap()
            .is_empty(),
        "rolled back"
    );
    let history = read_model::history(&pool, "571313180400000028")
        .await
        .unwrap();
    let changes: Vec<&str> = history.iter().map(|h| h.change.as_str()).collect();
    assert_eq!(changes[..2], ["request_sent", "rejected"]);
    assert_eq!(history[1].status_after.as_deref(), Some("rejected"));

    // Rebuild from the beginning with a fresh consumer group.
    read_model::truncate(&pool).await.unwrap();
    assert!(dump(&pool).await.is_empty());
    consume_and_project(&env, &topic, "rebuild", events.len(), &pool, false).await;
    assert_eq!(
        dump(&pool).await,
        first,
        "rebuilt tables equal the projected ones"
    );

    // No CPR in plaintext in the topic or the tables; the periods hold the customer key.
    for cpr in CPRS {
        assert!(
            raw.iter()
                .all(|r| !String::from_utf8_lossy(r).contains(cpr)),
            "{cpr} in a topic record"
        );
        assert!(
            first.iter().all(|row| !row.contains(cpr)),
            "{cpr} in a table"
        );
    }
    assert!(first.iter().any(|row| row.contains("customer-0")));

    env.cleanup().await.unwrap();
}
