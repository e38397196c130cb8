//! settle's edge to the portfolio's global table: the supplied days of a month (folded once
//! per metering point and cached), and which months to re-settle when an event arrives. The
//! logic is [`super::supply`]'s; here only the reads and marks.

use std::sync::Arc;

use afregning_portfolio::SupplyTimeline;

use super::core::{MonthState, parse_month};
use super::supply::{self, Days, PORTFOLIO_TABLE};
use super::{MONTHS, Settle, month_key};
use crate::runtime::{Context, GlobalChange, ProcessError};

/// Bound of the timeline cache (derived data: dropping it is always safe).
const MAX_TIMELINES: usize = 500_000;

/// A metering point's timeline as folded for one GLN of ours (`None`: no events).
pub(super) type CachedTimeline = (Option<String>, Option<Arc<SupplyTimeline>>);

impl Settle {
    /// The metering point's timeline, from the cache or folded from its events; our GLN is
    /// the supplier the enriched readings name (enrich passes only ours).
    fn timeline(
        &mut self,
        ctx: &Context<'_>,
        gsrn: &str,
        us: Option<&str>,
    ) -> Result<Option<Arc<SupplyTimeline>>, ProcessError> {
        if let Some((cached_us, timeline)) = self.timelines.get(gsrn)
            && cached_us.as_deref() == us
        {
            return Ok(timeline.clone());
        }
        let entries = ctx.global_scan_prefix(PORTFOLIO_TABLE, &supply::prefix(gsrn))?;
        let (events, refused) = supply::events(gsrn, entries.into_iter().map(|(_, v)| v));
        if refused > 0 {
            metrics::counter!("afregning_settle_portfolio_events_refused_total")
                .increment(refused as u64);
            tracing::warn!(%gsrn, refused, "portfolio events that do not decode are not used");
        }
        let timeline = supply::timeline(gsrn, us, &events).map(Arc::new);
        if timeline.is_none() && !events.is_empty() {
            tracing::warn!(%gsrn, us = ?us, "portfolio events without our GLN: the master data's supply applies");
        }
        if self.timelines.len() >= MAX_TIMELINES {
            self.timelines.clear();
        }
        self.timelines
            .insert(gsrn.to_string(), (us.map(str::to_string), timeline.clone()));
        Ok(timeline)
    }

    /// The month's supplied days from the portfolio, `None` without portfolio events.
    pub(super) fn portfolio_supply(
        &mut self,
        state: &MonthState,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<Days>>, ProcessError> {
        let Some(month) = parse_month(&state.month) else {
            return Ok(None);
        };
        let timeline = self.timeline(ctx, &state.gsrn, state.supplier_gln.as_deref())?;
        Ok(timeline.map(|t| supply::month_days(&t, month)))
    }

    /// A portfolio event arrived: the metering point's timeline is folded again at its next
    /// settlement, and every month this task holds for it is marked to re-settle (a month
    /// whose result does not change emits nothing).
    pub(super) fn portfolio_changed(
        &mut self,
        change: &GlobalChange,
        ctx: &mut Context<'_>,
    ) -> Result<(), ProcessError> {
        let Some(gsrn) = supply::gsrn_of(&change.key) else {
            metrics::counter!("afregning_settle_portfolio_events_refused_total").increment(1);
            return Ok(());
        };
        self.timelines.remove(&gsrn);
        self.resolved.remove(&gsrn);
        for month in self.months_between(chrono::DateTime::<chrono::Utc>::MIN_UTC, None, ctx)? {
            if MONTHS.get(ctx, &month_key(&month, &gsrn))?.is_some() {
                self.mark(ctx, &month, &gsrn)?;
            }
        }
        Ok(())
    }
}
