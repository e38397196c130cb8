//! settle's part of a replay (decision 0090): every month of the task in the
//! replay's period is folded again from its stored days with today's code,
//! configuration and reference data (its fingerprint ignored). A month whose
//! lines come out the same produces nothing; one that differs gets a new
//! provisional version, and if it was final it becomes due again, so the next
//! tick credits the statement in force and issues a new one (decision 0073).
//! A dry run computes the same comparison on a copy and writes nothing.

use afregning_settlement::MonthStatement;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::core::{MonthState, StoredLine, apply_statement};
use super::{MONTHS, Refusal, Settle};
use crate::replay::{ComponentAmounts, ReplayOutcome, ReplayScope, ResultChange};
use crate::runtime::typed::join_parts;
use crate::runtime::{Context, ProcessError};

/// The amounts of `lines` per component (`CODE` or `CODE:charge`).
pub(crate) fn component_amounts(lines: &[StoredLine]) -> ComponentAmounts {
    let mut out = ComponentAmounts::new();
    for line in lines {
        let key = match &line.code {
            Some(code) => format!("{}:{code}", line.component),
            None => line.component.clone(),
        };
        *out.entry(key).or_default() += line.amount;
    }
    out
}

fn total_excl_vat(state: &MonthState) -> Decimal {
    state
        .known_totals
        .map_or(Decimal::ZERO, |t| t[0].round_dp(6))
}

impl Settle {
    /// Recomputes the task's months in `scope` (see the module doc).
    pub(super) fn replay(
        &mut self,
        scope: &ReplayScope,
        ctx: &mut Context<'_>,
    ) -> Result<ReplayOutcome, ProcessError> {
        // Today's configuration and reference data: nothing cached survives.
        self.forget_contexts();
        self.links_cache.clear();
        self.spot_cache.clear();
        let from = scope.from.unwrap_or(DateTime::<Utc>::MIN_UTC);
        let at = ctx.now();
        let mut outcome = ReplayOutcome::default();
        for month in self.months_between(from, scope.to, ctx)? {
            let mut prefix = Vec::new();
            join_parts(&[&month, ""], &mut prefix);
            for (_, state) in MONTHS.scan(ctx, &prefix)? {
                outcome.results_checked += 1;
                let before = state.clone();
                let after = if scope.dry_run {
                    self.probe(state, ctx)?
                } else {
                    self.resettle(state, at, ctx)?
                };
                match after {
                    Ok(after) if after.version != before.version => {
                        outcome.changes.push(ResultChange {
                            gsrn: after.gsrn.clone(),
                            period: after.month.clone(),
                            grid_area: after.grid_area.clone(),
                            version_before: before.version,
                            version_after: (!scope.dry_run).then_some(after.version),
                            total_before: total_excl_vat(&before),
                            total_after: total_excl_vat(&after),
                            components_after: component_amounts(&after.lines),
                            components_before: None,
                        });
                    }
                    Ok(_) => {}
                    Err(reason) => {
                        metrics::counter!("afregning_settle_refused_total").increment(1);
                        tracing::warn!(gsrn = %before.gsrn, month = %before.month, %reason, run = %scope.run_id, "month not recomputed by the replay");
                    }
                }
            }
        }
        tracing::info!(run = %scope.run_id, task = ctx.partition(), checked = outcome.results_checked, changed = outcome.changes.len(), dry_run = scope.dry_run, "replay recomputed");
        Ok(outcome)
    }

    /// Folds the month again and publishes it (a new version only when it differs).
    fn resettle(
        &mut self,
        mut state: MonthState,
        at: DateTime<Utc>,
        ctx: &mut Context<'_>,
    ) -> Result<Result<MonthState, Refusal>, ProcessError> {
        // A fingerprint no context has: `settle` folds the month from its days.
        state.fingerprint = 0;
        state.sums.clear();
        Ok(self.settle(&mut state, &[], at, ctx)?.map(|()| state))
    }

    /// What `resettle` would make of the month, computed on a copy: nothing written.
    fn probe(
        &mut self,
        mut state: MonthState,
        ctx: &Context<'_>,
    ) -> Result<Result<MonthState, Refusal>, ProcessError> {
        let context = match self.context(&state, ctx)? {
            Ok(c) => c,
            Err(reason) => return Ok(Err(reason)),
        };
        let (sums, days) = match self.refold(&state, &context, ctx)? {
            Ok(folded) => folded,
            Err(reason) => return Ok(Err(reason)),
        };
        let statement: MonthStatement = context.statement_of_delta(&state.gsrn, &sums);
        apply_statement(&mut state, &statement, days);
        Ok(Ok(state))
    }
}
