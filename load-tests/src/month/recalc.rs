//! The month's recalculation (issue 14): with the whole month settled and the pipeline idle,
//! one processor is replayed over every partition from offset 0 and asked to recompute from
//! the month's start, the request `afregning replay start --processor P --from-offset 0
//! --recompute-from <month start>` writes (decision 0090), with the processors running as
//! they are.
//!
//! What it measures: the wall time from publishing the request to every task's `caught-up`
//! report (the recompute from state, then the re-read of the whole month's inputs), the
//! replayed processor's CPU, and the records re-read, as values/s and series/s over the
//! month's data. What it checks: the data did not change, so every month is compared and
//! none gets a new version (no change in the summary, no new provisional record on the
//! topic).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use afregning_processors::replay::client::{self, Followed, Progress};
use afregning_processors::replay::{ReplayRequest, ReplaySummary, TopicOffsets};
use afregning_processors::shared::Topics;
use afregning_settlement::BillingMonth;
use anyhow::{Context, bail};
use rdkafka::ClientConfig;

use super::child::{self, ChildArgs, Stage};
use super::fleet::Fleet;
use super::tail::Tail;
use crate::figures::{rate, secs};

/// What the recalculation took and found.
pub(crate) struct Recalc {
    stage: Stage,
    /// Records re-read per input topic (all partitions).
    records: BTreeMap<String, u64>,
    /// The primary input's records: one per series.
    series: u64,
    /// Publishing the request → every task reported `caught-up` (to the follower's 200 ms
    /// poll).
    wall: Duration,
    /// The replayed processor's CPU over the run (utime + stime).
    cpu: Duration,
    summary: ReplaySummary,
    /// Provisional records that appeared on the topic during the run.
    new_provisional: u64,
}

/// The replay's request: every partition of `inputs` from offset 0 to `end`, months from
/// `billing`'s start recomputed.
fn request(
    stage: Stage,
    inputs: &[String],
    end: BTreeMap<i32, TopicOffsets>,
    billing: BillingMonth,
) -> ReplayRequest {
    let start = end
        .keys()
        .map(|task| (*task, inputs.iter().map(|t| (t.clone(), 0)).collect()))
        .collect();
    ReplayRequest {
        run_id: format!(
            "load-month-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%3f")
        ),
        processor: stage.name().to_string(),
        start,
        end,
        recompute_from: Some(billing.start()),
        recompute_to: None,
        dry_run: false,
        requested_at: chrono::Utc::now(),
    }
}

/// Replays `stage` over the month (see the module doc) and waits until the fleet is caught
/// up again; fails at `deadline`.
pub(crate) async fn run(
    fleet: &mut Fleet,
    tail: &Tail,
    template: &ChildArgs,
    topics: &Topics,
    stage: Stage,
    billing: BillingMonth,
    deadline: Instant,
) -> anyhow::Result<Recalc> {
    let settings = child::settings(&ChildArgs {
        which: stage,
        ..template.clone()
    })?;
    let group = settings.runtime.group(stage.name());
    let inputs = child::input_topics(stage, topics, &settings);
    let primary = inputs
        .first()
        .cloned()
        .context("the processor has no input")?;
    let partitions: Vec<i32> = (0..template.partitions as i32).collect();
    let mut kafka = ClientConfig::new();
    kafka.set("bootstrap.servers", &template.bootstrap_servers);
    let end = {
        let (kafka, inputs) = (kafka.clone(), inputs.clone());
        tokio::task::spawn_blocking(move || {
            client::ends(&kafka, &inputs, &partitions, Duration::from_secs(30))
        })
        .await??
    };
    let request = request(stage, &inputs, end, billing);
    let mut records: BTreeMap<String, u64> = BTreeMap::new();
    for ends in request.end.values() {
        for (topic, end) in ends {
            *records.entry(topic.clone()).or_default() += (*end).max(0) as u64;
        }
    }
    println!(
        "recalculation: replaying {} from offset 0 on {} partitions, months from {} ({} records to re-read)",
        stage.name(),
        request.end.len(),
        billing.first_day(),
        records.values().sum::<u64>()
    );
    let provisional_before = tail.with(|s| s.records);
    let cpu_before = fleet
        .sample()
        .get(&stage)
        .map(|s| s.cpu)
        .unwrap_or_default();
    let started = Instant::now();
    client::publish(&kafka, &template.prefix, &request)
        .await
        .context("publishing the replay request")?;
    let followed = {
        let (kafka, prefix, request) = (kafka.clone(), template.prefix.clone(), request.clone());
        let timeout = deadline.saturating_duration_since(Instant::now());
        tokio::task::spawn_blocking(move || {
            let mut last_line = Instant::now();
            client::follow(
                &kafka,
                &prefix,
                &group,
                &request,
                &Arc::new(AtomicBool::new(false)),
                timeout,
                |p: &Progress| {
                    if last_line.elapsed() >= Duration::from_secs(10) {
                        println!(
                            "  recalculation: {}/{} records re-read, tasks applied {}/{}, caught up {}/{}",
                            p.records_done, p.records_total, p.applied, p.tasks, p.caught_up, p.tasks
                        );
                        last_line = Instant::now();
                    }
                },
            )
        })
        .await??
    };
    let wall = started.elapsed();
    let Followed::Complete(reports) = followed else {
        bail!("the recalculation was interrupted");
    };
    let cpu_after = fleet
        .sample()
        .get(&stage)
        .map(|s| s.cpu)
        .unwrap_or_default();
    fleet
        .wait_caught_up(Duration::from_secs(3), deadline)
        .await
        .context("after the recalculation")?;
    let summary = ReplaySummary::of(
        reports
            .values()
            .flatten()
            .filter_map(|r| r.outcome.as_ref()),
    );
    Ok(Recalc {
        stage,
        series: records.get(&primary).copied().unwrap_or(0),
        records,
        wall,
        cpu: cpu_after.saturating_sub(cpu_before),
        summary,
        new_provisional: tail.with(|s| s.records) - provisional_before,
    })
}

impl Recalc {
    /// Prints the section; `values` and `series` are the month's.
    pub(crate) fn print(&self, values: u64, series: u64) {
        println!();
        println!(
            "== Recalculation: `replay start --processor {} --from-offset 0` over the whole month ({series} series, {values} values) ==",
            self.stage.name()
        );
        for (topic, records) in &self.records {
            println!("re-read {records} records of {topic}");
        }
        println!(
            "request → every task recomputed its months from state and re-read the month's inputs: {} s",
            secs(self.wall)
        );
        println!(
            "{} values/s, {} series/s (wall); {} CPU-s in {}: {} values/CPU-s, {} series/CPU-s",
            rate(values as f64, self.wall),
            rate(series as f64, self.wall),
            secs(self.cpu),
            self.stage.name(),
            rate(values as f64, self.cpu),
            rate(series as f64, self.cpu)
        );
        for line in self.summary.render() {
            println!("{line}");
        }
        println!(
            "{} new provisional versions on the topic during the run (expected: none, the data did not change)",
            self.new_provisional
        );
    }

    /// What the recalculation of an unchanged month must not do.
    pub(crate) fn mismatches(&self, metering_points: u64) -> Vec<String> {
        let mut out = Vec::new();
        if self.series == 0 {
            out.push("recalculation: nothing re-read".to_string());
        }
        if self.stage == Stage::Settle && self.summary.results_checked != metering_points {
            out.push(format!(
                "recalculation: {} months compared, expected {metering_points}",
                self.summary.results_checked
            ));
        }
        if !self.summary.changes.is_empty() {
            out.push(format!(
                "recalculation: {} months changed on unchanged data (first: {:?})",
                self.summary.changes.len(),
                self.summary.changes.first()
            ));
        }
        if self.new_provisional != 0 {
            out.push(format!(
                "recalculation: {} new provisional versions on unchanged data",
                self.new_provisional
            ));
        }
        out
    }
}
