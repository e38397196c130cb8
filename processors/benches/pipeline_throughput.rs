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
//! The chain runs once per worker count (`BENCH_WORKERS`, by default one and
//! then one per core), each from fresh state: a worker is one task of each
//! processor, as a deployment runs one task per partition, so N workers are the
//! same pipeline over N partitions on N threads (see [`run_chained`]).
//!
//! `cargo bench -p afregning-processors --bench pipeline_throughput`
//! (`BENCH_METERING_POINTS`, default 200; `BENCH_PT1H_SHARE`, default 0.15;
//! `BENCH_WORKERS`, e.g. `1,2`; `BENCH_DAYS`, default 28, a February from its
//! first day, so `BENCH_DAYS=1` is the live path's day: every series the first
//! of its metering point's month; records in the order DataHub sends them:
//! reference data, then day by day).

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
use chrono::{DateTime, NaiveDate, Utc};

const BATCH: usize = 500;

fn catalogue() -> ProductCatalogue {
    serde_json::from_str(include_str!("../../deploy/product-catalogue.json")).expect("catalogue")
}

/// The worker counts to run, each from fresh state in the same process:
/// `BENCH_WORKERS` (comma-separated), by default one and then every core.
fn worker_counts() -> Vec<usize> {
    if let Ok(list) = std::env::var("BENCH_WORKERS") {
        return list
            .split(',')
            .map(|w| {
                w.trim()
                    .parse()
                    .expect("BENCH_WORKERS: comma-separated counts")
            })
            .collect();
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores > 1 { vec![1, cores] } else { vec![1] }
}

/// One worker: a task of each of the four processors, as a deployment runs one
/// task per partition, with the clocks of its stages.
struct Chain {
    validate: MemoryTask<Validate>,
    enrich: MemoryTask<Enrich>,
    aggregate: MemoryTask<Aggregate>,
    settle: MemoryTask<Settle>,
    /// Next input offset per topic, as the task's consumer would see them.
    offsets: std::collections::HashMap<String, i64>,
    stage: [Duration; 4],
    enriched: usize,
    daily: usize,
    settled: usize,
}

impl Chain {
    fn new(topics: &Topics, supplier_gln: &str, spot: &[(Vec<u8>, Vec<u8>)], task: i32) -> Self {
        let validate = MemoryTask::new(
            Validate::new(topics.clone(), ValidateConfig::default()),
            task,
        );
        let enrich = MemoryTask::new(
            Enrich::new(
                topics.clone(),
                EnrichConfig {
                    rules: EnrichRules {
                        supplier_gln: Some(supplier_gln.to_string()),
                        ..EnrichRules::default()
                    },
                    ..EnrichConfig::default()
                },
            ),
            task,
        );
        let mut aggregate = MemoryTask::new(
            Aggregate::new(topics.clone(), AggregateConfig::default()),
            task,
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
            task,
        );
        // Spot prices are a global table before the month is replayed.
        for (key, value) in spot {
            aggregate.globals.set(SPOT_PRICES_TABLE, key, Some(value));
            settle.globals.set(SPOT_PRICES_TABLE, key, Some(value));
        }
        Self {
            validate,
            enrich,
            aggregate,
            settle,
            offsets: Default::default(),
            stage: [Duration::ZERO; 4],
            enriched: 0,
            daily: 0,
            settled: 0,
        }
    }

    /// `outputs` on the topics `keep` accepts, as this task's input records.
    fn inputs<'a>(
        &mut self,
        outputs: impl Iterator<Item = &'a OutputRecord>,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<InputRecord> {
        let now = Utc::now().timestamp_millis();
        outputs
            .filter(|o| keep(&o.topic))
            .map(|o| {
                let next = self.offsets.entry(o.topic.clone()).or_default();
                *next += 1;
                InputRecord {
                    topic: o.topic.clone(),
                    partition: 0,
                    offset: *next - 1,
                    timestamp: Some(now),
                    key: Some(o.key.clone()),
                    value: o.value.clone(),
                    headers: Vec::new(),
                }
            })
            .collect()
    }

    /// Enrich, aggregate and settle this task's share of a batch.
    fn downstream(&mut self, typed: &[OutputRecord], topics: &Topics, now: DateTime<Utc>) {
        let (points, readings, enriched_topic) = (
            topics.name(topics::METERING_POINTS),
            topics.name(topics::READINGS),
            topics.name(topics::ENRICHED_READINGS),
        );
        let enrich_in = self.inputs(typed.iter(), |t| t == points || t == readings);
        let enriched = timed(&mut self.stage[1], || {
            self.enrich.process(&enrich_in, now).expect("enriches")
        });
        let enriched_in = self.inputs(enriched.iter(), |t| t == enriched_topic);
        let daily = timed(&mut self.stage[2], || {
            self.aggregate
                .process(&enriched_in, now)
                .expect("aggregates")
        });
        let settled = timed(&mut self.stage[3], || {
            self.settle.process(&enriched_in, now).expect("settles")
        });
        self.enriched += enriched_in.len();
        self.daily += daily.len();
        self.settled += settled.len();
    }

    fn finish(&mut self, now: DateTime<Utc>) {
        self.daily += timed(&mut self.stage[2], || {
            self.aggregate.tick(now).expect("ticks")
        })
        .len();
        self.settled += timed(&mut self.stage[3], || self.settle.tick(now).expect("ticks")).len();
    }
}

fn timed<T>(clock: &mut Duration, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    *clock += started.elapsed();
    out
}

/// The chain over `chains.len()` workers, batch by batch: each worker
/// validates its contiguous share of the batch (raw topics are partitioned by
/// message id, so any split is one a deployment could see); the typed records
/// go to the worker owning their partition (readings, metering points and
/// enriched readings are co-partitioned by GSRN), reference data to every
/// settle task's global tables (as the runtime's global-table consumer
/// would); then each worker enriches, aggregates and settles its records. The
/// workers run on their own threads in both phases. Returns every typed record.
fn run_chained(topics: &Topics, raw: &[InputRecord], chains: &mut [Chain]) -> Vec<OutputRecord> {
    let now = Utc::now();
    let workers = chains.len();
    let tables = [
        (CHARGES_TABLE, topics.name(topics::CHARGES)),
        (CHARGE_PRICES_TABLE, topics.name(topics::CHARGE_PRICES)),
        (CHARGE_LINKS_TABLE, topics.name(topics::CHARGE_LINKS)),
    ];
    let mut typed_all = Vec::new();
    for batch in raw.chunks(BATCH) {
        let share = batch.len().div_ceil(workers);
        let typed: Vec<Vec<OutputRecord>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chains
                .iter_mut()
                .zip(batch.chunks(share.max(1)))
                .map(|(chain, part)| {
                    scope.spawn(move || {
                        timed(&mut chain.stage[0], || {
                            chain.validate.process(part, now).expect("validates")
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("validate thread"))
                .collect()
        });
        let typed: Vec<OutputRecord> = typed.into_iter().flatten().collect();
        let mut routed: Vec<Vec<OutputRecord>> = vec![Vec::new(); workers];
        for o in &typed {
            if let Some((table, _)) = tables.iter().find(|(_, topic)| topic == &o.topic) {
                for chain in chains.iter_mut() {
                    chain.settle.globals.set(table, &o.key, o.value.as_deref());
                }
            } else {
                let partition = usize::try_from(o.partition.unwrap_or(0)).unwrap_or(0);
                routed[partition % workers].push(o.clone());
            }
        }
        std::thread::scope(|scope| {
            for (chain, mine) in chains.iter_mut().zip(&routed) {
                scope.spawn(move || chain.downstream(mine, topics, now));
            }
        });
        typed_all.extend(typed);
    }
    std::thread::scope(|scope| {
        for chain in chains.iter_mut() {
            scope.spawn(move || chain.finish(now));
        }
    });
    typed_all
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
    let days: u32 = std::env::var("BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(28);
    let scenario = generate(
        &ScenarioConfig {
            metering_points,
            first_day: NaiveDate::from_ymd_opt(2026, 2, 1).expect("date"),
            days,
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

    let spot_prices: Vec<(Vec<u8>, Vec<u8>)> = scenario
        .truth
        .spot_prices
        .iter()
        .map(|p| {
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
            (
                topics.wire.encode(&key).expect("key"),
                topics.wire.encode(&value).expect("value"),
            )
        })
        .collect();
    let supplier_gln = scenario.truth.supplier_gln.clone();
    let new_chain = |task: i32| Chain::new(&topics, &supplier_gln, &spot_prices, task);

    let mut runs = Vec::new();
    for workers in worker_counts() {
        let mut chains: Vec<Chain> = (0..workers).map(|w| new_chain(w as i32)).collect();
        let started = Instant::now();
        let typed = run_chained(&topics, &raw, &mut chains);
        runs.push((workers, started.elapsed(), chains, typed));
    }
    let (_, _, first_chains, typed_all) = &runs[0];
    let readings_topic = topics.name(topics::READINGS);
    let settle_prepared: u64 = first_chains
        .iter()
        .map(|c| c.settle.processor().contexts_prepared())
        .sum();

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
        "pipeline_throughput: {metering_points} metering points x {days} days, {readings} series, {values} values ({} raw records), batches of {BATCH}",
        raw.len()
    );
    for (workers, wall, chains, _) in &runs {
        let stage = chains.iter().fold([Duration::ZERO; 4], |mut sum, c| {
            for (s, d) in sum.iter_mut().zip(c.stage) {
                *s += d;
            }
            sum
        });
        println!("{workers} worker(s) (one task per worker, records routed by their partition)");
        println!(
            "{:<40} {:>9} {:>12} {:>12}",
            "stage (thread time, all workers)", "seconds", "values/s", "series/s"
        );
        for (name, d) in [
            ("validate (raw JSON -> typed)", stage[0]),
            ("enrich (join master data)", stage[1]),
            ("aggregate (daily aggregates)", stage[2]),
            ("settle (provisional lines)", stage[3]),
            ("chained, all four (wall clock)", *wall),
        ] {
            println!(
                "{name:<40} {:>9.3} {:>12.0} {:>12.0}",
                d.as_secs_f64(),
                per_sec(values, d),
                per_sec(readings, d)
            );
        }
        let sum = |f: fn(&Chain) -> usize| chains.iter().map(f).sum::<usize>();
        println!(
            "outputs: {} enriched, {} daily aggregates, {} provisional/statement records",
            sum(|c| c.enriched),
            sum(|c| c.daily),
            sum(|c| c.settled)
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
        "{} typed records; settle prepared {settle_prepared} months (first run)",
        typed_all.len()
    );
}
