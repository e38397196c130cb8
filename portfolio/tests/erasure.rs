//! Erasure after retention on the real PostgreSQL (decision 0148): customers' data sealed under
//! their own keys from the key store, four metering points projected into the read model, then
//! `due_for_erasure` picks exactly the former customers whose retention ran out (not one still
//! supplied, not one supplied until recently, and a rejected applicant only once their last
//! event is old enough); `erase` deletes their keys (their own, and the key of DataHub's
//! customer data the connector sealed before anyone knew whose it was, adopted when the read
//! model projected it), after which their data no longer opens anywhere while the others'
//! still does, and a second run finds nothing to do. A message key nobody adopted goes on its
//! own once older than the retention.

use afregning_cim::gsrn::Gsrn;
use afregning_portfolio::customer_keys::{self, ErasureCandidate, KeyStoreError};
use afregning_portfolio::personal::{
    Cpr, CustomerIdentity, Keyring, PersonName, PersonalData, SealError, Sealed,
};
use afregning_portfolio::{
    Command, CommandMeta, CustomerKey, CustomerRef, Gln, MeteringPoint, ProcessDetails, ProcessId,
    ProcessKind, Reason, decide, read_model,
};
use afregning_settlement::calendar::local_midnight;
use afregning_testkit::TestEnv;
use chrono::{Duration, NaiveDate};
use sqlx::PgPool;

const US: &str = "5790000000005";

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn pid(s: &str) -> ProcessId {
    ProcessId(s.into())
}

/// One metering point's commands, decided, applied and projected as the processor and the
/// projector do; the sealed value of its customer kept for the checks.
struct Point<'a> {
    pool: &'a PgPool,
    keys: &'a Keyring,
    state: MeteringPoint,
    sealed: Option<Sealed>,
}

impl<'a> Point<'a> {
    fn new(pool: &'a PgPool, keys: &'a Keyring, gsrn: &str) -> Self {
        Point {
            pool,
            keys,
            state: MeteringPoint::new(Gsrn::parse(gsrn).unwrap(), Gln::parse(US).unwrap()),
            sealed: None,
        }
    }

    async fn run(&mut self, on: NaiveDate, command: Command) {
        let meta = CommandMeta {
            at: local_midnight(on) + Duration::hours(9),
            actor: "operator".into(),
            why: "erasure test".into(),
            message_id: None,
        };
        let event =
            decide(&self.state, &meta, &command).unwrap_or_else(|r| panic!("{command:?}: {r}"));
        self.state = self.state.clone().apply(&event);
        assert!(
            read_model::project(self.pool, &self.state, &event)
                .await
                .unwrap()
        );
    }

    /// A move-in for `customer` requested on `on`, effective `effective`; confirmed, and in
    /// effect when `take_effect`.
    async fn move_in(&mut self, on: NaiveDate, effective: NaiveDate, customer: &str, cpr: &str) {
        let data = PersonalData {
            identity: CustomerIdentity::Cpr(Cpr::parse(cpr).unwrap()),
            name: PersonName::new("Test Kunde"),
        };
        let key = CustomerKey(customer.into());
        let sealed = customer_keys::seal_for(self.pool, self.keys, &key, &data)
            .await
            .unwrap();
        self.sealed = Some(sealed.clone());
        let id = format!("{customer}-move-in");
        self.run(
            on,
            Command::Request(ProcessDetails {
                process: pid(&id),
                kind: ProcessKind::MoveIn,
                supplier: Gln::parse(US).unwrap(),
                effective,
                customer: Some(CustomerRef {
                    key,
                    personal: Some(sealed),
                }),
                corrects: None,
                balance_responsible: None,
                notified_reason: None,
            }),
        )
        .await;
    }

    async fn confirm_and_start(&mut self, id: &str, on: NaiveDate, effective: NaiveDate) {
        self.run(
            on,
            Command::Accept {
                process: pid(id),
                datahub_ref: None,
            },
        )
        .await;
        self.run(
            effective,
            Command::TakeEffect {
                process: pid(id),
                disconnected_on: None,
            },
        )
        .await;
    }

    /// An end of supply requested on `on` for `end`, confirmed and carried out.
    async fn end(&mut self, on: NaiveDate, end: NaiveDate) {
        let id = format!("eos-{end}");
        self.run(
            on,
            Command::Request(ProcessDetails {
                process: pid(&id),
                kind: ProcessKind::EndOfSupply,
                supplier: Gln::parse(US).unwrap(),
                effective: end,
                customer: None,
                corrects: None,
                balance_responsible: None,
                notified_reason: None,
            }),
        )
        .await;
        self.run(
            on,
            Command::Accept {
                process: pid(&id),
                datahub_ref: None,
            },
        )
        .await;
        self.run(
            end,
            Command::TakeEffect {
                process: pid(&id),
                disconnected_on: Some(end),
            },
        )
        .await;
    }
}

async fn opens(pool: &PgPool, keys: &Keyring, sealed: &Sealed) -> Result<(), KeyStoreError> {
    customer_keys::open(pool, keys, sealed).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn former_customers_are_erased_after_retention_and_nobody_else() {
    let env = TestEnv::start("portfolio_erasure").await.unwrap();
    let pool = env.pg_pool().await.unwrap();
    afregning_sinks::schema::migrator()
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let mut keys = Keyring::default();
    keys.generate("deployment-1").unwrap();

    // Former: supplied 10 January - 28 February 2025.
    let mut former = Point::new(&pool, &keys, "571313180400000011");
    former
        .move_in(day(2025, 1, 8), day(2025, 1, 10), "former", "0101701111")
        .await;
    former
        .confirm_and_start("former-move-in", day(2025, 1, 8), day(2025, 1, 10))
        .await;
    // DataHub's customer data (RSM-028), sealed by the connector under a key of its own
    // before anyone knew whose it was: projecting it makes the key the customer's.
    let message_ring = customer_keys::message_key(&pool, &keys).await.unwrap();
    let inbound = message_ring
        .seal(&PersonalData {
            identity: CustomerIdentity::Cpr(Cpr::parse("0101701111").unwrap()),
            name: PersonName::new("Test Kunde"),
        })
        .unwrap();
    former
        .run(
            day(2025, 1, 11),
            Command::CustomerData {
                customer: Some(CustomerKey("former".into())),
                process: None,
                personal: inbound.clone(),
            },
        )
        .await;
    former.end(day(2025, 2, 10), day(2025, 3, 1)).await;
    // A message key no customer adopted (its message was dead-lettered).
    customer_keys::message_key(&pool, &keys).await.unwrap();
    // Current: supplied since 10 January 2025, still.
    let mut current = Point::new(&pool, &keys, "571313180400000028");
    current
        .move_in(day(2025, 1, 8), day(2025, 1, 10), "current", "0202802222")
        .await;
    current
        .confirm_and_start("current-move-in", day(2025, 1, 8), day(2025, 1, 10))
        .await;
    // Recent: supplied until 31 December 2025.
    let mut recent = Point::new(&pool, &keys, "571313180400000035");
    recent
        .move_in(day(2025, 1, 8), day(2025, 1, 10), "recent", "0303903333")
        .await;
    recent
        .confirm_and_start("recent-move-in", day(2025, 1, 8), day(2025, 1, 10))
        .await;
    recent.end(day(2025, 12, 1), day(2026, 1, 1)).await;
    // Applicant: a move-in requested 1 May 2025 and rejected; never supplied.
    let mut applicant = Point::new(&pool, &keys, "571313180400000042");
    applicant
        .move_in(day(2025, 5, 1), day(2025, 5, 5), "applicant", "0404904444")
        .await;
    applicant
        .run(
            day(2025, 5, 1),
            Command::Reject {
                process: pid("applicant-move-in"),
                reasons: vec![Reason::new("E10", "unknown metering point")],
            },
        )
        .await;

    let today = day(2026, 6, 1);
    let due = customer_keys::due_for_erasure(&pool, today, 365)
        .await
        .unwrap();
    assert_eq!(
        due,
        [
            ErasureCandidate {
                customer_key: "former".into(),
                last_day: day(2025, 2, 28)
            },
            ErasureCandidate {
                customer_key: "applicant".into(),
                last_day: day(2025, 5, 1)
            },
        ]
    );
    let longer = customer_keys::due_for_erasure(&pool, today, 400)
        .await
        .unwrap();
    assert_eq!(
        longer
            .iter()
            .map(|c| c.customer_key.as_str())
            .collect::<Vec<_>>(),
        ["former"],
        "the applicant's last event (1 May 2025) is not 400 days old on 1 June 2026"
    );

    for candidate in &due {
        let erased = customer_keys::erase(&pool, candidate, Some(365), "test")
            .await
            .unwrap();
        // the former customer's own key and the inbound message's key they adopted
        let expected = if candidate.customer_key == "former" {
            2
        } else {
            1
        };
        assert_eq!(erased.len(), expected, "{candidate:?}");
    }
    for sealed in [
        former.sealed.as_ref().unwrap(),
        &inbound,
        applicant.sealed.as_ref().unwrap(),
    ] {
        assert!(
            matches!(
                opens(&pool, &keys, sealed).await,
                Err(KeyStoreError::Seal(SealError::UnknownKey(_)))
            ),
            "erased: {sealed:?}"
        );
    }
    // The unadopted message key goes once it is older than the retention, on its own.
    let now = chrono::Utc::now().date_naive();
    assert!(
        customer_keys::erase_unadopted(&pool, now, 365, "test")
            .await
            .unwrap()
            .is_empty(),
        "a message key created today is kept"
    );
    let erased = customer_keys::erase_unadopted(&pool, now + Duration::days(400), 365, "test")
        .await
        .unwrap();
    assert_eq!(erased.len(), 1);
    assert!(erased[0].starts_with('m'));
    for kept in [&current, &recent] {
        opens(&pool, &keys, kept.sealed.as_ref().unwrap())
            .await
            .expect("still readable");
    }
    assert!(
        customer_keys::due_for_erasure(&pool, today, 365)
            .await
            .unwrap()
            .is_empty(),
        "nothing left to erase"
    );
    let recorded: Vec<(String, i32, String)> = sqlx::query_as(
        "SELECT customer_key, retention_days, actor FROM portfolio_erasures ORDER BY customer_key",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        recorded,
        [
            (
                customer_keys::UNADOPTED.to_string(),
                365,
                "test".to_string()
            ),
            ("applicant".to_string(), 365, "test".to_string()),
            ("former".to_string(), 365, "test".to_string())
        ]
    );
    pool.close().await;
    env.cleanup().await.unwrap();
}
