//! Readings per second through validate, enrich, aggregate and settle, one
//! processor at a time and chained, against the batch baseline: the same
//! month settled once per metering point by the pure crate from an
//! in-memory table. A load test that prints figures.
//!
//! Processors run on [`MemoryTask`] (the runtime's batch semantics on memory
//! state, no broker), so the figures are the processors' own cost; the
//! runtime's Kafka and RocksDB overhead is `runtime_throughput`'s figure.
//!
//! `cargo bench -p afregning-processors --bench pipeline_throughput`
//! (`BENCH_METERING_POINTS`, default 200; a 28-day February at PT15M/PT1H).

use std::time::{Duration, Instant};

use afregning_processors::aggregate::{Aggregate, AggregateConfig};
use afregning_processors::enrich::{Enrich, EnrichConfig, EnrichRules};
use afregning_processors::runtime::testing::MemoryTask;
use afregning_processors::runtime::{InputRecord, OutputRecord, Processor};
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

fn run<P: Processor>(
    task: &mut MemoryTask<P>,
    records: &[InputRecord],
) -> (Vec<OutputRecord>, Duration) {
    let now = Utc::now();
    let started = Instant::now();
    let mut out = Vec::new();
    for chunk in records.chunks(BATCH) {
        out.extend(task.process(chunk, now).expect("processes"));
    }
    out.extend(task.tick(now).expect("ticks"));
    (out, started.elapsed())
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
    let scenario = generate(
        &ScenarioConfig {
            metering_points,
            first_day: NaiveDate::from_ymd_opt(2026, 2, 1).expect("date"),
            days: 28,
            grid_areas: vec!["344".into(), "791".into()],
            aggregations: false,
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
    let (typed, t_validate) = run(&mut validate, &raw);
    let readings_topic = topics.name(topics::READINGS);
    let readings = typed.iter().filter(|o| o.topic == readings_topic).count();

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
    let points_topic = topics.name(topics::METERING_POINTS);
    let mut enrich_in = as_inputs(&typed, |t| t == points_topic);
    enrich_in.extend(as_inputs(&typed, |t| t == readings_topic));
    let (enriched, t_enrich) = run(&mut enrich, &enrich_in);
    let enriched_topic = topics.name(topics::ENRICHED_READINGS);
    let enriched_in = as_inputs(&enriched, |t| t == enriched_topic);

    // Reference data as global tables, from validate's outputs and the spot prices.
    let mut globals: Vec<(&str, Vec<u8>, Vec<u8>)> = Vec::new();
    for (table, topic) in [
        (CHARGES_TABLE, topics.name(topics::CHARGES)),
        (CHARGE_PRICES_TABLE, topics.name(topics::CHARGE_PRICES)),
        (CHARGE_LINKS_TABLE, topics.name(topics::CHARGE_LINKS)),
    ] {
        for o in typed.iter().filter(|o| o.topic == topic) {
            globals.push((table, o.key.clone(), o.value.clone().unwrap_or_default()));
        }
    }
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
        globals.push((
            SPOT_PRICES_TABLE,
            topics.wire.encode(&key).expect("key"),
            topics.wire.encode(&value).expect("value"),
        ));
    }

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
    for (table, key, value) in &globals {
        if *table == SPOT_PRICES_TABLE {
            aggregate.globals.set(table, key, Some(value));
        }
        settle.globals.set(table, key, Some(value));
    }
    let (daily, t_aggregate) = run(&mut aggregate, &enriched_in);
    let (settled, t_settle) = run(&mut settle, &enriched_in);

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
    let chained = t_validate + t_enrich + t_aggregate + t_settle;
    println!(
        "pipeline_throughput: {metering_points} metering points x 28 days, {readings} readings ({} raw records), batches of {BATCH}",
        raw.len()
    );
    println!("{:<34} {:>10} {:>14}", "stage", "seconds", "readings/s");
    for (name, d) in [
        ("validate (raw JSON -> typed)", t_validate),
        ("enrich (join master data)", t_enrich),
        ("aggregate (daily aggregates)", t_aggregate),
        ("settle (provisional lines)", t_settle),
        ("chained, all four", chained),
    ] {
        println!(
            "{name:<34} {:>10.3} {:>14.0}",
            d.as_secs_f64(),
            per_sec(readings, d)
        );
    }
    println!(
        "{:<34} {:>10.3} {:>14.0}   ({} months settled once each)",
        "batch baseline (pure crate)",
        baseline.1.as_secs_f64(),
        per_sec(readings, baseline.1),
        baseline.0
    );
    println!(
        "outputs: {} typed, {} enriched, {} daily aggregates, {} provisional/statement records",
        typed.len(),
        enriched.len(),
        daily.len(),
        settled.len()
    );
}
