//! Shared by the sinks' integration tests: a topology on the real broker and
//! registry under the test's namespace, a producer that writes records the way
//! the processors do (Confluent wire format, the partitioner's partition, the
//! idempotency key header), a generated month of data, and the figures the
//! tables must show for it, computed from the records themselves.
#![allow(clippy::type_complexity)]
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use afregning_sinks::SinkConfig;
use afregning_testkit::TestEnv;
use afregning_topology::admin::Admin;
use afregning_topology::records::*;
use afregning_topology::settings::TopologySettings;
use afregning_topology::topics::{self, Topic};
use afregning_topology::{Catalogue, Codec};
use chrono::{DateTime, Duration as TimeDelta, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Copenhagen;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureProducer;
use rust_decimal::Decimal;

/// Partitions of the test topics (the partitioner spreads grid areas and GSRNs over them).
pub const PARTITIONS: u32 = 3;

/// The topology of one test, applied.
pub struct Topology {
    pub codec: Codec,
    pub producer: FutureProducer,
}

impl Topology {
    pub async fn apply(env: &TestEnv) -> Self {
        let settings = TopologySettings {
            prefix: env.namespace.clone(),
            partitions: PARTITIONS,
            ..TopologySettings::default()
        };
        let catalogue = Catalogue::new(settings).unwrap();
        let admin =
            Admin::connect(catalogue.clone(), &env.bootstrap_servers, &env.registry_url).unwrap();
        let report = admin.apply().await.unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &env.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        Self {
            codec: Codec::new(catalogue, &env.registry_url),
            producer,
        }
    }

    /// Produces records and waits for every acknowledgement.
    pub async fn send<K: TopicKey, V: TopicValue>(
        &self,
        topic: Topic<K, V>,
        records: &[(K, Option<V>, Option<String>)],
    ) {
        let mut encoded = Vec::new();
        for (key, value, idempotency_key) in records {
            let record = match value {
                Some(value) => self.codec.encode(topic, key, value).await.unwrap(),
                None => self.codec.encode_tombstone(topic, key).await.unwrap(),
            };
            encoded.push((record, idempotency_key.clone()));
        }
        let sends = encoded.iter().map(|(record, key)| {
            let mut future = record.as_future_record();
            if let Some(key) = key {
                future = future.headers(OwnedHeaders::new().insert(Header {
                    key: "afregning-idempotency-key",
                    value: Some(key.as_bytes()),
                }));
            }
            self.producer.send(future, Duration::from_secs(30))
        });
        for result in futures::future::join_all(sends).await {
            result.map_err(|(e, _)| e).unwrap();
        }
    }

    pub fn topic_name<K: TopicKey, V: TopicValue>(&self, topic: Topic<K, V>) -> String {
        self.codec.topic_name(topic).to_string()
    }
}

/// A sink configuration for the test's namespace, schema and registry.
pub fn sink_config(env: &TestEnv) -> SinkConfig {
    SinkConfig {
        bootstrap_servers: env.bootstrap_servers.clone(),
        schema_registry_url: env.registry_url.clone(),
        database_url: env.database_url.clone(),
        topic_prefix: env.namespace.clone(),
        partitions: PARTITIONS,
        batch_max_rows: 5_000,
        flush_interval_ms: 200,
        retry_initial_ms: 100,
        retry_max_ms: 1_000,
        stats_interval_ms: 1_000,
        ..SinkConfig::default()
    }
}

fn local_midnight(date: NaiveDate) -> DateTime<Utc> {
    Copenhagen
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

pub fn gsrn(i: usize) -> String {
    format!("5713131804{:08}", i)
}

pub fn grid_area(i: usize) -> &'static str {
    ["740", "344", "791"][i % 3]
}

/// A generated month (and a bit) of pipeline output for `points` metering points.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    pub readings: Vec<(MeteringPointKey, Option<Reading>, Option<String>)>,
    pub metering_points: Vec<(
        MeteringPointPeriodKey,
        Option<MeteringPoint>,
        Option<String>,
    )>,
    pub daily: Vec<(DailyAggregateKey, Option<DailyAggregate>, Option<String>)>,
    pub provisional: Vec<(
        SettlementMonthKey,
        Option<ProvisionalSettlement>,
        Option<String>,
    )>,
    pub statements: Vec<(
        SettlementMonthKey,
        Option<SettlementStatement>,
        Option<String>,
    )>,
    pub dead_letters: Vec<(DeadLetterKey, Option<DeadLetter>, Option<String>)>,
}

fn line(
    gsrn: &str,
    month: NaiveDate,
    version: i64,
    component: SettlementComponent,
    amount_micro: i64,
) -> SettlementLine {
    SettlementLine {
        component,
        description: format!("{component:?}"),
        charge_owner_gln: None,
        charge_type: None,
        charge_code: None,
        quantity: Decimal::new(amount_micro / 3, 6),
        quantity_unit: "KWH".into(),
        unit_price: Decimal::new(3_000_000, 6),
        amount: Decimal::new(amount_micro, 6),
        vat_class: VatClass::Vat25,
        version,
        idempotency_key: format!("{gsrn}:{month}:{component:?}:v{version}"),
    }
}

pub fn statement(
    gsrn: &str,
    grid_area: &str,
    month: NaiveDate,
    version: i64,
    kind: StatementKind,
    corrects: Option<String>,
    base_micro: i64,
) -> SettlementStatement {
    let sign = if kind == StatementKind::CreditNote {
        -1
    } else {
        1
    };
    let line_version = if kind == StatementKind::CreditNote {
        version - 1
    } else {
        version
    };
    let lines = vec![
        line(
            gsrn,
            month,
            line_version,
            SettlementComponent::SpotEnergy,
            sign * base_micro,
        ),
        line(
            gsrn,
            month,
            line_version,
            SettlementComponent::GridTariff,
            sign * base_micro / 2,
        ),
    ];
    let total: Decimal = lines.iter().map(|l| l.amount).sum();
    let id = match kind {
        StatementKind::Statement => format!("{gsrn}:{month}:{version}"),
        StatementKind::CreditNote => format!("{gsrn}:{month}:credit:{}", version - 1),
    };
    SettlementStatement {
        statement_id: id.clone(),
        kind,
        corrects_statement_id: corrects,
        gsrn: gsrn.into(),
        month_start: month,
        grid_area: grid_area.into(),
        energy_supplier_gln: Some("5790002000000".into()),
        version,
        lines,
        total_excl_vat: total,
        vat_amount: (total / Decimal::from(4)).round_dp(6),
        total_incl_vat: total + (total / Decimal::from(4)).round_dp(6),
        currency: "DKK".into(),
        idempotency_key: id,
        issued_at: Utc.with_ymd_and_hms(2026, 12, 2, 8, 0, 0).unwrap(),
    }
}

impl Scenario {
    /// `points` metering points, PT15M readings for `days` days from 29
    /// October 2026 (crossing into November, so two monthly partitions), a
    /// correction of every third metering point's first day, two daily
    /// aggregate versions per day, three provisional versions per month, a
    /// final statement for October (with a credit note and a new version for
    /// every fourth metering point) and a few dead letters.
    pub fn generate(points: usize, days: u32) -> Self {
        let mut s = Scenario::default();
        let first_day = NaiveDate::from_ymd_opt(2026, 10, 29).unwrap();
        for i in 0..points {
            let gsrn = gsrn(i);
            let area = grid_area(i);
            let valid_from = Utc.with_ymd_and_hms(2026, 1, 31, 23, 0, 0).unwrap();
            let mp = MeteringPoint {
                gsrn: gsrn.clone(),
                metering_point_type: "E17".into(),
                settlement_method: Some(SettlementMethod::Flex),
                grid_area: area.into(),
                price_area: Some("DK2".into()),
                resolution: Resolution::Pt15m,
                energy_supplier_gln: Some("5790002000000".into()),
                supply_start: Some(valid_from),
                supply_end: None,
                connection_state: Some("E22".into()),
                valid_from,
                valid_to: None,
                source_message_id: format!("mp-{i}"),
            };
            let key = MeteringPointPeriodKey {
                gsrn: gsrn.clone(),
                valid_from,
            };
            s.metering_points
                .push((key.clone(), Some(mp.clone()), None));
            if i % 5 == 0 {
                // A master data correction for the same period: replaces the row, both in history.
                let mut corrected = mp.clone();
                corrected.connection_state = Some("D03".into());
                corrected.source_message_id = format!("mp-{i}-b");
                s.metering_points.push((key.clone(), Some(corrected), None));
            }
            if i % 7 == 3 {
                // A period that is later withdrawn (tombstone).
                let old_from = Utc.with_ymd_and_hms(2025, 1, 31, 23, 0, 0).unwrap();
                let old_key = MeteringPointPeriodKey {
                    gsrn: gsrn.clone(),
                    valid_from: old_from,
                };
                let mut old = mp.clone();
                old.valid_from = old_from;
                old.valid_to = Some(valid_from);
                old.source_message_id = format!("mp-{i}-old");
                s.metering_points.push((old_key.clone(), Some(old), None));
                s.metering_points.push((old_key, None, None));
            }
            for day in 0..days {
                let date = first_day + chrono::Days::new(u64::from(day));
                let start = local_midnight(date);
                let end = local_midnight(date + chrono::Days::new(1));
                let positions = ((end - start).num_minutes() / 15) as i32;
                let make = |registered: DateTime<Utc>, message: String, bump: i64| Reading {
                    gsrn: gsrn.clone(),
                    metering_point_type: "E17".into(),
                    resolution: Resolution::Pt15m,
                    period_start: start,
                    period_end: end,
                    registered_at: registered,
                    unit: "KWH".into(),
                    product: None,
                    business_reason: Some("E23".into()),
                    source_message_id: message,
                    transaction_id: format!("tx-{i}-{day}"),
                    points: (1..=positions)
                        .map(|p| ReadingPoint {
                            position: p,
                            quantity: (p % 50 != 7).then(|| {
                                Decimal::new(((i as i64 * 31 + i64::from(p) * 17) % 400) + bump, 3)
                            }),
                            quality: if p % 50 == 7 {
                                Quality::NotAvailable
                            } else {
                                Quality::AsProvided
                            },
                        })
                        .collect(),
                };
                let registered = end + TimeDelta::hours(3);
                let reading = make(registered, format!("msg-{i}-{day}"), 0);
                let header = Some(format!("reading:msg-{i}-{day}"));
                s.readings.push((
                    MeteringPointKey { gsrn: gsrn.clone() },
                    Some(reading),
                    header,
                ));
                if i % 3 == 0 && day == 0 {
                    let correction = make(
                        registered + TimeDelta::days(2),
                        format!("msg-{i}-{day}-corr"),
                        1000,
                    );
                    s.readings.push((
                        MeteringPointKey { gsrn: gsrn.clone() },
                        Some(correction),
                        None,
                    ));
                }
                for version in 1..=2 {
                    let total =
                        Decimal::new(10_000 + i as i64 * 10 + i64::from(day) + version * 100, 3);
                    let low = Decimal::new(2_000, 3);
                    let aggregate = DailyAggregate {
                        gsrn: gsrn.clone(),
                        local_date: date,
                        day_start: start,
                        day_end: end,
                        grid_area: area.into(),
                        price_area: Some("DK2".into()),
                        resolution: Resolution::Pt15m,
                        hours: Vec::new(),
                        tariff_periods: vec![
                            TariffPeriodEnergy {
                                tariff_period: "low".into(),
                                kwh: low,
                            },
                            TariffPeriodEnergy {
                                tariff_period: "high".into(),
                                kwh: total - low,
                            },
                        ],
                        total_kwh: total,
                        spot_cost_dkk: Some(Decimal::new(5_000_000, 6)),
                        expected_positions: positions,
                        received_positions: positions - (i % 2) as i32,
                        complete: i % 2 == 0,
                        quality_counts: Vec::new(),
                        version,
                        computed_at: registered,
                    };
                    let key = DailyAggregateKey {
                        gsrn: gsrn.clone(),
                        local_date: date,
                    };
                    s.daily.push((key, Some(aggregate), None));
                }
            }
            let october = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
            let november = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
            for month in [october, november] {
                for version in 1..=3 {
                    let lines = vec![
                        line(
                            &gsrn,
                            month,
                            version,
                            SettlementComponent::SpotEnergy,
                            1_000_000 * version + i as i64,
                        ),
                        line(
                            &gsrn,
                            month,
                            version,
                            SettlementComponent::GridTariff,
                            500_000 * version,
                        ),
                        line(
                            &gsrn,
                            month,
                            version,
                            SettlementComponent::Vat,
                            375_000 * version,
                        ),
                    ];
                    let excl: Decimal = lines[..2].iter().map(|l| l.amount).sum();
                    let settlement = ProvisionalSettlement {
                        gsrn: gsrn.clone(),
                        month_start: month,
                        grid_area: area.into(),
                        energy_supplier_gln: None,
                        version,
                        lines,
                        total_excl_vat: excl,
                        vat_amount: Decimal::new(375_000 * version, 6),
                        total_incl_vat: excl + Decimal::new(375_000 * version, 6),
                        days_settled: 3,
                        days_in_month: 31,
                        idempotency_key: format!("{gsrn}:{month}:v{version}"),
                        computed_at: Utc.with_ymd_and_hms(2026, 11, 3, 3, 0, 0).unwrap(),
                    };
                    let key = SettlementMonthKey {
                        gsrn: gsrn.clone(),
                        month_start: month,
                    };
                    s.provisional.push((key, Some(settlement), None));
                }
            }
            let key = SettlementMonthKey {
                gsrn: gsrn.clone(),
                month_start: october,
            };
            let v1 = statement(
                &gsrn,
                area,
                october,
                1,
                StatementKind::Statement,
                None,
                40_000_000 + i as i64,
            );
            s.statements.push((key.clone(), Some(v1.clone()), None));
            if i % 4 == 1 {
                let credit = statement(
                    &gsrn,
                    area,
                    october,
                    2,
                    StatementKind::CreditNote,
                    Some(v1.statement_id.clone()),
                    40_000_000 + i as i64,
                );
                let v2 = statement(
                    &gsrn,
                    area,
                    october,
                    2,
                    StatementKind::Statement,
                    Some(v1.statement_id.clone()),
                    41_000_000 + i as i64,
                );
                s.statements.push((key.clone(), Some(credit), None));
                s.statements.push((key, Some(v2), None));
            }
            if i % 10 == 0 {
                let letter = DeadLetter {
                    source_topic: "afregning.datahub.timeseries-raw.v1".into(),
                    source_partition: (i % 3) as i32,
                    source_offset: i as i64,
                    source_timestamp: None,
                    source_key: None,
                    payload: Some(b"{".to_vec()),
                    source_message_id: Some(format!("bad-{i}")),
                    component: "validate".into(),
                    error_class: ErrorClass::Undecodable,
                    reason: "EOF while parsing".into(),
                    failed_at: Utc.with_ymd_and_hms(2026, 10, 30, 3, 0, 0).unwrap(),
                    attempts: 1,
                };
                let key = DeadLetterKey {
                    source_topic: letter.source_topic.clone(),
                    source_partition: letter.source_partition,
                    source_offset: letter.source_offset,
                };
                s.dead_letters.push((key, Some(letter), None));
            }
        }
        s
    }

    pub async fn produce(&self, topology: &Topology) {
        topology
            .send(topics::METERING_POINTS, &self.metering_points)
            .await;
        topology.send(topics::READINGS, &self.readings).await;
        topology.send(topics::DAILY_AGGREGATES, &self.daily).await;
        topology
            .send(topics::PROVISIONAL_SETTLEMENTS, &self.provisional)
            .await;
        topology
            .send(topics::SETTLEMENT_STATEMENTS, &self.statements)
            .await;
        topology
            .send(topics::DEAD_LETTERS, &self.dead_letters)
            .await;
    }

    /// What the tables must hold for these records.
    pub fn expected(&self) -> Figures {
        let mut f = Figures::default();
        // metering_data: per (gsrn, ts) the latest registration.
        let mut metering: HashMap<
            (String, DateTime<Utc>),
            (DateTime<Utc>, String, Option<Decimal>),
        > = HashMap::new();
        for (_, reading, _) in &self.readings {
            let reading = reading.as_ref().unwrap();
            for p in &reading.points {
                let ts = reading.period_start + TimeDelta::minutes(15 * i64::from(p.position - 1));
                let candidate = (
                    reading.registered_at,
                    reading.source_message_id.clone(),
                    p.quantity,
                );
                let entry = metering
                    .entry((reading.gsrn.clone(), ts))
                    .or_insert(candidate.clone());
                if (candidate.0, &candidate.1) > (entry.0, &entry.1) {
                    *entry = candidate;
                }
            }
        }
        f.counts.insert("metering_data", metering.len() as i64);
        // metering_series: every version of every series once (a redelivery is the same key).
        let series: std::collections::HashSet<(&str, DateTime<Utc>, &str)> = self
            .readings
            .iter()
            .filter_map(|(_, reading, _)| reading.as_ref())
            .map(|r| {
                (
                    r.gsrn.as_str(),
                    r.period_start,
                    r.source_message_id.as_str(),
                )
            })
            .collect();
        f.counts.insert("metering_series", series.len() as i64);
        f.sums.insert(
            "metering_data.quantity".into(),
            metering.values().filter_map(|(_, _, q)| *q).sum(),
        );
        for ((_, ts), (_, _, q)) in &metering {
            let month = ts.with_timezone(&Utc).format("%Y-%m").to_string();
            *f.sums.entry(format!("metering_data.{month}")).or_default() += q.unwrap_or_default();
        }
        // daily_summary: latest version of each day, one row per tariff period.
        let mut days: HashMap<(String, NaiveDate), &DailyAggregate> = HashMap::new();
        for (_, day, _) in &self.daily {
            let day = day.as_ref().unwrap();
            let entry = days
                .entry((day.gsrn.clone(), day.local_date))
                .or_insert(day);
            if day.version > entry.version {
                *entry = day;
            }
        }
        f.counts.insert(
            "daily_summary",
            days.values().map(|d| d.tariff_periods.len() as i64).sum(),
        );
        f.sums.insert(
            "daily_summary.kwh".into(),
            days.values().map(|d| d.total_kwh).sum(),
        );
        // metering_point: the latest record per key unless tombstoned; history: every distinct message.
        let mut current: BTreeMap<(String, DateTime<Utc>), bool> = BTreeMap::new();
        let mut history: BTreeSet<(String, DateTime<Utc>, String)> = BTreeSet::new();
        for (key, value, _) in &self.metering_points {
            current.insert((key.gsrn.clone(), key.valid_from), value.is_some());
            if let Some(mp) = value {
                history.insert((mp.gsrn.clone(), mp.valid_from, mp.source_message_id.clone()));
            }
        }
        f.counts.insert(
            "metering_point",
            current.values().filter(|&&v| v).count() as i64,
        );
        f.counts
            .insert("metering_point_history", history.len() as i64);
        // Provisional: every version kept; totals per month and component from the latest.
        let mut latest: HashMap<(String, NaiveDate), &ProvisionalSettlement> = HashMap::new();
        let mut lines = 0;
        for (_, s, _) in &self.provisional {
            let s = s.as_ref().unwrap();
            lines += s.lines.len() as i64;
            let entry = latest.entry((s.gsrn.clone(), s.month_start)).or_insert(s);
            if s.version > entry.version {
                *entry = s;
            }
        }
        f.counts
            .insert("settlement_version", self.provisional.len() as i64);
        f.counts.insert("settlement_line", lines);
        for s in latest.values() {
            for l in &s.lines {
                *f.sums
                    .entry(format!(
                        "provisional.{}.{}",
                        s.month_start,
                        l.component.code()
                    ))
                    .or_default() += l.amount;
            }
        }
        // Final: statements and credit notes, every line.
        let mut statement_lines = 0;
        for (_, s, _) in &self.statements {
            let s = s.as_ref().unwrap();
            statement_lines += s.lines.len() as i64;
            for l in &s.lines {
                *f.sums
                    .entry(format!("final.{}.{}", s.month_start, l.component.code()))
                    .or_default() += l.amount;
            }
        }
        f.counts
            .insert("settlement_statement", self.statements.len() as i64);
        f.counts
            .insert("settlement_statement_line", statement_lines);
        f.counts
            .insert("dead_letter", self.dead_letters.len() as i64);
        f
    }

    /// Every record, counted per topic (what `processed_message` must hold
    /// once: tombstones and duplicates aside).
    pub fn records(&self) -> usize {
        self.readings.len()
            + self
                .metering_points
                .iter()
                .filter(|(_, v, _)| v.is_some())
                .count()
            + self.daily.len()
            + self.provisional.len()
            + self.statements.len()
            + self.dead_letters.len()
    }
}

/// Row counts per table and sums, comparable between the records and the tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub counts: BTreeMap<&'static str, i64>,
    pub sums: BTreeMap<String, Decimal>,
}

impl Figures {
    /// The same figures from the database.
    pub async fn read(conn: &mut sqlx::PgConnection) -> Self {
        let mut f = Figures::default();
        for table in [
            "metering_series",
            "metering_data",
            "daily_summary",
            "metering_point",
            "metering_point_history",
            "settlement_version",
            "settlement_line",
            "settlement_statement",
            "settlement_statement_line",
            "dead_letter",
        ] {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            f.counts.insert(table, n);
        }
        let sum: Option<Decimal> = sqlx::query_scalar("SELECT sum(quantity) FROM metering_data")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        f.sums
            .insert("metering_data.quantity".into(), sum.unwrap_or_default());
        let months: Vec<(String, Decimal)> = sqlx::query_as(
            "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM'), coalesce(sum(quantity), 0) FROM metering_data GROUP BY 1",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        for (month, sum) in months {
            f.sums.insert(format!("metering_data.{month}"), sum);
        }
        let kwh: Option<Decimal> =
            sqlx::query_scalar("SELECT sum(kwh) FROM consumption_per_grid_area_day")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        f.sums
            .insert("daily_summary.kwh".into(), kwh.unwrap_or_default());
        let totals: Vec<(String, NaiveDate, String, Decimal)> = sqlx::query_as(
            "SELECT basis, month_start, component, amount_dkk FROM settlement_totals_month_component",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        for (basis, month, component, amount) in totals {
            f.sums
                .insert(format!("{basis}.{month}.{component}"), amount);
        }
        // Decimal equality ignores scale, but normalise for readable diffs.
        for value in f.sums.values_mut() {
            *value = value.normalize();
        }
        f
    }

    pub fn normalized(mut self) -> Self {
        for value in self.sums.values_mut() {
            *value = value.normalize();
        }
        self
    }
}
