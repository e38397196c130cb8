//! Values and series per second through validate, enrich, aggregate and settle
//! chained in one run (each batch of raw records goes through all four before the
//! next), against the batch baseline: the same month settled once per metering point
//! by the pure crate from an in-memory table, in the same run. A load test that
//! prints figures.
//!
//! A *value* is one quarter-hour (or hour) quantity; a *series* is one metering
//! point's day (96 values at PT15M). Both are printed for every stage.
//!
//! Processors run on [`MemoryTask`] (the runtime's batch semantics on memory
//! state, no broker), so the figures are the processors' own cost; the
//! runtime's Kafka and RocksDB overhead is `runtime_throughput`'s figure.
//!
//! `cargo bench -p afregning-processors --bench pipeline_throughput`
//! (`BENCH_METERING_POINTS`, default 200; `BENCH_PT1H_SHARE`, default 0.15;
//! a 28-day February; records in the order DataHub sends them: reference data,
//! then day by day).

use std::time::{Duration, Instant};

use afregning_processors::aggregate::{Aggregate, AggregateConfig};
use afregning_processors::enrich::{Enrich, EnrichConfig, EnrichRules};
use afregning_processors::runtime::testing::MemoryTask;
use afregning_processors::runtime::{InputRecord, OutputRecord};
use afregning_processors::settle::{Settle, SettleConfig};
use afregning_processors::shared::reference::{
    CHARGE_LINKS_TABLE, CHARGE_PRICES_TABLE, CHARGES_TABLE, SPOT_PRICES_TABLE,
};
use afregning_processors::shared::{Topics, Wire};
use afregning_processors::validate::{Validate, ValidateConfig};
use afregning_settlement::ProductCatalogue;
use afregning_simulator::FaultConfig;
use afregning_simulator::queues::Queue;
use afregning_simulator::scenario::{ScenarioConfig, generate};
use afregning_topology::records::{Resolution, SpotPrice, SpotPriceKey};
use afregning_topology::{Catalogue, TopologySettings, raw_headers, topics};
use chrono::{NaiveDate, Utc};

const BATCH: usize = 500;

fn catalogue() -> ProductCatalogue {
    serde_json::from_str(include_str!("../../deploy/product-catalogue.json")).expect("catalogue")
}

fn as_inputs(outputs: &[OutputRecord], keep: impl Fn(&str) -> bool) -> Vec<InputRecord> {
    outputs
        .iter()
        .filter(|o| keep(&o.topic))
        .enumerate()
        .map(|(i, o)| InputRecord {
            topic: o.topic.clone(),
            partition: 0,
            offset: i as i64,
            timestamp: Some(Utc::now().timestamp_millis()),
            key: Some(o.key.clone()),
            value: o.value.clone(),
            headers: Vec::new(),
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too, so
    // only run for real when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("pipeline_throughput: skipped (run with `cargo bench`)");
        return;
    }
    let metering_points: u32 = std::env::var("BENCH_METERING_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let pt1h_share: f64 = std::env::var("BENCH_PT1H_SHARE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.15);
    let scenario = generate(
        &ScenarioConfig {
            metering_points,
            first_day: NaiveDate::from_ymd_opt(2026, 2, 1).expect("date"),
            days: 28,
            grid_areas: vec!["344".into(), "791".into()],
            aggregations: false,
            pt1h_share,
            ..ScenarioConfig::default()
        },
        &FaultConfig::none(),
    )
    .expect("scenario");
    let cat = Catalogue::new(TopologySettings::default()).expect("catalogue");
    let topics = Topics::new(cat, Wire::local());

    // The raw records, split per transaction as the connector writes them.
    let mut raw = Vec::new();
    for message in &scenario.messages {
        let topic = match message.queue {
            Queue::Timeseries => topics.name(topics::TIMESERIES_RAW),
            Queue::Aggregations => topics.name(topics::AGGREGATIONS_RAW),
            Queue::MasterData => topics.name(topics::MASTERDATA_RAW),
            Queue::Charges => topics.name(topics::CHARGES_RAW),
        };
        for part in afregning_cim::bundle::split(&message.body).expect("splits") {
            raw.push(InputRecord {
                topic: topic.clone(),
                partition: 0,
                offset: raw.len() as i64,
                timestamp: Some(Utc::now().timestamp_millis()),
                key: None,
                value: Some(part.bytes),
                headers: vec![
                    (
                        raw_headers::MESSAGE_ID.into(),
                        message.id.clone().into_bytes(),
                    ),
                    (
                        raw_headers::PART_INDEX.into(),
                        part.index.to_string().into_bytes(),
                    ),
                ],
            });
        }
    }
    // Master data and charges first, as DataHub sends them.
    raw.sort_by_key(|r| r.topic.contains("timeseries"));

    let mut validate = MemoryTask::new(Validate::new(topics.clone(), ValidateConfig::default()), 0);
    let mut enrich = MemoryTask::new(
        Enrich::new(
            topics.clone(),
            EnrichConfig {
                rules: EnrichRules {
                    supplier_gln: Some(scenario.truth.supplier_gln.clone()),
                    ..EnrichRules::default()
                },
                ..EnrichConfig::default()
            },
        ),
        0,
    );
    let mut aggregate = MemoryTask::new(
        Aggregate::new(topics.clone(), AggregateConfig::default()),
        0,
    );
    let mut settle = MemoryTask::new(
        Settle::new(
            topics.clone(),
            SettleConfig {
                catalogue: catalogue(),
                default_product: Some("spot-standard".into()),
                grace: chrono::Duration::zero(),
                ..SettleConfig::default()
            },
        ),
        0,
    );
    // Spot prices are a global table before the month is replayed.
    for p in &scenario.truth.spot_prices {
        let key = SpotPriceKey {
            price_area: p.price_area.clone(),
            start: p.start,
        };
        let value = SpotPrice {
            price_area: p.price_area.clone(),
            start: p.start,
            end: p.end,
            resolution: Resolution::Pt15m,
            price_dkk_per_mwh: p.dkk_per_mwh,
            price_eur_per_mwh: None,
            source: "bench".into(),
            fetched_at: p.start,
        };
        let (key, value) = (
            topics.wire.encode(&key).expect("key"),
            topics.wire.encode(&value).expect("value"),
        );
        aggregate.globals.set(SPOT_PRICES_TABLE, &key, Some(&value));
        settle.globals.set(SPOT_PRICES_TABLE, &key, Some(&value));
    }
    let tables = [
        (CHARGES_TABLE, topics.name(topics::CHARGES)),
        (CHARGE_PRICES_TABLE, topics.name(topics::CHARGE_PRICES)),
        (CHARGE_LINKS_TABLE, topics.name(topics::CHARGE_LINKS)),
    ];
    let readings_topic = topics.name(topics::READINGS);
    let points_topic = topics.name(topics::METERING_POINTS);
    let enriched_topic = topics.name(topics::ENRICHED_READINGS);

    // The chain: each batch through all four processors before the next, the
    // reference data validate writes applied to settle's global tables between
    // (as the runtime's global-table consumer would). One clock for the chain,
    // one per stage inside it.
    let now = Utc::now();
    let mut stage = [Duration::ZERO; 4];
    let mut typed_all = Vec::new();
    let mut enriched_count = 0usize;
    let mut daily_count = 0usize;
    let mut settled_count = 0usize;
    let chained_started = Instant::now();
    let timed = |d: &mut Duration, f: &mut dyn FnMut() -> Vec<OutputRecord>| {
        let t = Instant::now();
        let out = f();
        *d += t.elapsed();
        out
    };
    for chunk in raw.chunks(BATCH) {
        let typed = timed(&mut stage[0], &mut || {
            validate.process(chunk, now).expect("validates")
        });
        for (table, topic) in &tables {
            for o in typed.iter().filter(|o| &o.topic == topic) {
                settle.globals.set(table, &o.key, o.value.as_deref());
            }
        }
        let enrich_in = as_inputs(&typed, |t| t == points_topic || t == readings_topic);
        let enriched = timed(&mut stage[1], &mut || {
            enrich.process(&enrich_in, now).expect("enriches")
        });
        let enriched_in = as_inputs(&enriched, |t| t == enriched_topic);
        let daily = timed(&mut stage[2], &mut || {
            aggregate.process(&enriched_in, now).expect("aggregates")
        });
        let settled = timed(&mut stage[3], &mut || {
            settle.process(&enriched_in, now).expect("settles")
        });
        enriched_count += enriched_in.len();
        daily_count += daily.len();
        settled_count += settled.len();
        typed_all.extend(typed);
    }
    daily_count += timed(&mut stage[2], &mut || aggregate.tick(now).expect("ticks")).len();
    settled_count += timed(&mut stage[3], &mut || settle.tick(now).expect("ticks")).len();
    let t_chained = chained_started.elapsed();

    // Units, counted outside the clocks: series are the readings validate wrote,
    // values their points.
    let mut readings = 0usize;
    let mut values = 0usize;
    for o in typed_all.iter().filter(|o| o.topic == readings_topic) {
        let reading: afregning_topology::records::Reading = topics
            .wire
            .decode(o.value.as_deref().unwrap_or_default())
            .expect("reading");
        readings += 1;
        values += reading.points.len();
    }

    // The batch baseline: every month once, by the pure crate, from the
    // scenario's final data held in memory (the same charges, links, spot
    // prices and product).
    let baseline = {
        let month = afregning_settlement::BillingMonth::new(2026, 2).expect("month");
        let products = catalogue();
        let inputs: Vec<_> = scenario
            .truth
            .metering_points
            .iter()
            .map(|mp| {
                let terms = afregning_processors::settle::core::product_terms(
                    &products,
                    Some("spot-standard"),
                    &mp.gsrn.to_string(),
                    month,
                );
                afregning_simulator::expected::month_input(&scenario.truth, mp, month, terms)
            })
            .collect();
        let started = Instant::now();
        for input in &inputs {
            let _ = afregning_settlement::settle_month(input).expect("settles");
        }
        (inputs.len(), started.elapsed())
    };

    let per_sec = |n: usize, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "pipeline_throughput: {metering_points} metering points x 28 days, {readings} series, {values} values ({} raw records), batches of {BATCH}",
        raw.len()
    );
    println!(
        "{:<40} {:>9} {:>12} {:>12}",
        "stage (one chained run)", "seconds", "values/s", "series/s"
    );
    for (name, d) in [
        ("validate (raw JSON -> typed)", stage[0]),
        ("enrich (join master data)", stage[1]),
        ("aggregate (daily aggregates)", stage[2]),
        ("settle (provisional lines)", stage[3]),
        ("chained, all four (wall clock)", t_chained),
    ] {
        println!(
            "{name:<40} {:>9.3} {:>12.0} {:>12.0}",
            d.as_secs_f64(),
            per_sec(values, d),
            per_sec(readings, d)
        );
    }
    println!(
        "{:<40} {:>9.3} {:>12.0} {:>12.0}   ({} months settled once each)",
        "baseline: batch, pure crate",
        baseline.1.as_secs_f64(),
        per_sec(values, baseline.1),
        per_sec(readings, baseline.1),
        baseline.0
    );
    println!(
        "outputs: {} typed, {enriched_count} enriched, {daily_count} daily aggregates, {settled_count} provisional/statement records; settle prepared {} months",
        typed_all.len(),
        settle.processor().contexts_prepared(),
    );
}
