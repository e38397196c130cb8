//! Replay: recalculating chosen partitions of a running processor from an
//! offset or a time (issue 14, decision 0090).
//!
//! A replay is a [`ReplayRequest`] written to the deployment's request topic.
//! Every processor instance follows that topic as a runtime-internal global
//! table; the task that owns a listed partition rewinds its inputs to the
//! request's start offsets and calls [`crate::runtime::Processor::on_replay`]
//! in the same batch, so the rewind, the rebuilt state and the new versions
//! commit together. It reports on the result topic: [`ReplayReport`]s, one
//! when it acted (with what changed) and one when its committed positions
//! reached the request's end offsets. The CLI (`afregning replay`) writes the
//! requests, follows the reports and records the run in PostgreSQL.
//!
//! - [`offsets`]: offsets for times, verified against the records, with a
//!   search over record timestamps where the broker answers wrongly;
//! - [`topics`]: the two control topics, created when missing;
//! - [`dead_letters`]: re-submitting resolved dead letters to their source;
//! - [`plan`], [`runs`], [`resubmit`]: starting a run and recording it in
//!   PostgreSQL, shared by the CLI and the API.

pub mod client;
pub mod dead_letters;
pub mod offsets;
pub mod plan;
pub mod resubmit;
pub mod runs;
pub mod topics;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The name the request topic is followed by as a global table (runtime-internal:
/// no processor declares it and none sees its changes).
pub const REQUESTS_TABLE: &str = "afregning-replay-requests";

/// Input offsets per topic of one partition.
pub type TopicOffsets = BTreeMap<String, i64>;

/// What an operator asked one processor to recalculate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRequest {
    /// The run's id (also the record key).
    pub run_id: String,
    /// The processor (`validate`, `enrich`, `aggregate`, `settle`).
    pub processor: String,
    /// Per partition (task): where each input is re-read from.
    pub start: BTreeMap<i32, TopicOffsets>,
    /// Per partition: the inputs' ends when the run started; the task reports
    /// `caught-up` once its committed positions reach them.
    pub end: BTreeMap<i32, TopicOffsets>,
    /// The data period whose results are recomputed (inclusive start), when
    /// the processor computes per period (settle: months from this one's).
    pub recompute_from: Option<DateTime<Utc>>,
    /// The end of that period (exclusive); `None` for everything after.
    pub recompute_to: Option<DateTime<Utc>>,
    /// Compute and report only: no positions moved, no state written, nothing published.
    pub dry_run: bool,
    /// When the operator started it.
    pub requested_at: DateTime<Utc>,
}

impl ReplayRequest {
    /// Whether this request concerns task `task` of processor `processor`.
    pub fn concerns(&self, processor: &str, task: i32) -> bool {
        self.processor == processor && self.start.contains_key(&task)
    }
}

/// The scope a processor recomputes in [`crate::runtime::Processor::on_replay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayScope {
    /// The run.
    pub run_id: String,
    /// The data period's start (`None`: everything the task holds).
    pub from: Option<DateTime<Utc>>,
    /// The data period's end (exclusive; `None`: no end).
    pub to: Option<DateTime<Utc>>,
    /// Compare only; write and emit nothing.
    pub dry_run: bool,
}

/// Amounts per component of a result: the component code, with `:<charge code>`
/// for charges, to the amount summed over its lines (exact, 6 places as published).
pub type ComponentAmounts = BTreeMap<String, Decimal>;

/// A result whose lines got (or, in a dry run, would get) a new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultChange {
    /// The metering point.
    pub gsrn: String,
    /// The period (`YYYY-MM` for settle).
    pub period: String,
    /// Its grid area.
    pub grid_area: String,
    /// The version in force before.
    pub version_before: i64,
    /// The new version (`None` in a dry run).
    pub version_after: Option<i64>,
    /// Total excluding VAT before and after.
    pub total_before: Decimal,
    /// See `total_before`.
    pub total_after: Decimal,
    /// The new result's amounts per component.
    pub components_after: ComponentAmounts,
    /// The amounts of the version in force before, where known: the processor
    /// keeps the last result's sums, not its lines (decision 0080), so the CLI
    /// fills these from the sink's `settlement_line` of `version_before`.
    pub components_before: Option<ComponentAmounts>,
}

impl ResultChange {
    /// Per component: after − before (components in either), when before is known.
    pub fn component_differences(&self) -> Option<ComponentAmounts> {
        let before = self.components_before.as_ref()?;
        let mut out = ComponentAmounts::new();
        for key in before.keys().chain(self.components_after.keys()) {
            let difference = self.components_after.get(key).copied().unwrap_or_default()
                - before.get(key).copied().unwrap_or_default();
            if !difference.is_zero() {
                out.insert(key.clone(), difference);
            }
        }
        Some(out)
    }
}

/// What a processor's replay step found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayOutcome {
    /// Results compared (settle: months of metering points).
    pub results_checked: u64,
    /// Those that differ.
    pub changes: Vec<ResultChange>,
}

/// What a task reports on the result topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayReport {
    /// The run.
    pub run_id: String,
    /// The processor.
    pub processor: String,
    /// The task (partition).
    pub task: i32,
    /// `applied` (with the outcome) or `caught-up`.
    pub kind: ReportKind,
    /// The outcome of the recompute (`applied` only).
    pub outcome: Option<ReplayOutcome>,
    /// The task's input positions: after the rewind (`applied`) or the committed
    /// ones that reached the end (`caught-up`).
    pub positions: TopicOffsets,
}

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    /// The task rewound (unless a dry run) and recomputed.
    Applied,
    /// The task's committed positions reached the end offsets.
    CaughtUp,
}

impl ReplayReport {
    /// The report's key and idempotency key: one per run, task and kind.
    pub fn key(&self) -> String {
        format!(
            "replay:{}:{}:{}",
            self.run_id,
            self.task,
            match self.kind {
                ReportKind::Applied => "applied",
                ReportKind::CaughtUp => "caught-up",
            }
        )
    }
}

/// The summary of a run: per metering point and period, and per component in total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaySummary {
    /// Results compared.
    pub results_checked: u64,
    /// Results with a new version (or that would get one).
    pub changes: Vec<ResultChange>,
    /// Per component: Σ (after − before) over the changes.
    pub difference_per_component: BTreeMap<String, Decimal>,
    /// Σ (total after − total before).
    pub difference_total: Decimal,
}

impl ReplaySummary {
    /// The summary of every task's outcome.
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a ReplayOutcome>) -> Self {
        let mut summary = Self::default();
        for outcome in outcomes {
            summary.results_checked += outcome.results_checked;
            for change in &outcome.changes {
                for (component, difference) in change.component_differences().unwrap_or_default() {
                    *summary
                        .difference_per_component
                        .entry(component)
                        .or_default() += difference;
                }
                summary.difference_total += change.total_after - change.total_before;
                summary.changes.push(change.clone());
            }
        }
        summary
            .changes
            .sort_by(|a, b| (&a.gsrn, &a.period).cmp(&(&b.gsrn, &b.period)));
        summary
    }

    /// The same changes, ignoring the versions (a dry run has none): what a dry run
    /// predicts is compared with what the run did by this.
    pub fn without_versions(&self) -> Self {
        let mut out = self.clone();
        for c in &mut out.changes {
            c.version_after = None;
        }
        out
    }

    /// Human-readable lines: totals first, then one line per result.
    pub fn render(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{} results compared, {} changed, total difference {} DKK excl. VAT",
            self.results_checked,
            self.changes.len(),
            self.difference_total
        )];
        for (component, difference) in &self.difference_per_component {
            lines.push(format!("  {component:<24} {difference:>14}"));
        }
        for c in &self.changes {
            let version = c
                .version_after
                .map_or_else(|| "(dry run)".to_string(), |v| format!("v{v}"));
            lines.push(format!(
                "  {} {} grid area {}: v{} -> {version}: {} -> {} ({})",
                c.gsrn,
                c.period,
                c.grid_area,
                c.version_before,
                c.total_before,
                c.total_after,
                c.total_after - c.total_before
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(gsrn: &str, before: i64, after: i64) -> ResultChange {
        let amounts = |amount| {
            ComponentAmounts::from([
                ("GRID_TARIFF".to_string(), Decimal::new(amount, 2)),
                ("SUBSCRIPTION".to_string(), Decimal::new(2900, 2)),
            ])
        };
        ResultChange {
            gsrn: gsrn.into(),
            period: "2026-03".into(),
            grid_area: "344".into(),
            version_before: 3,
            version_after: Some(4),
            total_before: Decimal::new(before, 2),
            total_after: Decimal::new(after, 2),
            components_after: amounts(after),
            components_before: Some(amounts(before)),
        }
    }

    #[test]
    fn a_summary_adds_the_differences_per_component_and_in_total() {
        let a = ReplayOutcome {
            results_checked: 5,
            changes: vec![change("b", 1000, 1250)],
        };
        let b = ReplayOutcome {
            results_checked: 2,
            changes: vec![change("a", 500, 450)],
        };
        let summary = ReplaySummary::of([&a, &b]);
        assert_eq!(summary.results_checked, 7);
        assert_eq!(summary.changes[0].gsrn, "a", "sorted by metering point");
        assert_eq!(summary.difference_total, Decimal::new(200, 2));
        assert_eq!(
            summary.difference_per_component["GRID_TARIFF"],
            Decimal::new(200, 2)
        );
        assert_eq!(
            summary.difference_per_component.len(),
            1,
            "unchanged components left out"
        );
        assert_eq!(summary.render().len(), 4);
    }

    #[test]
    fn requests_and_reports_round_trip_as_json() {
        let request = ReplayRequest {
            run_id: "r1".into(),
            processor: "settle".into(),
            start: BTreeMap::from([(1, BTreeMap::from([("t".to_string(), 7)]))]),
            end: BTreeMap::from([(1, BTreeMap::from([("t".to_string(), 9)]))]),
            recompute_from: None,
            recompute_to: None,
            dry_run: true,
            requested_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let json = serde_json::to_vec(&request).expect("json");
        assert_eq!(
            serde_json::from_slice::<ReplayRequest>(&json).expect("back"),
            request
        );
        assert!(request.concerns("settle", 1));
        assert!(!request.concerns("settle", 0));
        assert!(!request.concerns("aggregate", 1));
    }
}
