//! The entry point: settle one metering point for one billing period.

use crate::calendar::local_date;
use crate::fold::{MonthContext, Summary};
use crate::input::{InputError, MonthInput};
use crate::quantity::{Position, latest_positions};
use crate::statement::MonthStatement;

/// Settles one metering point for one billing period.
///
/// Pure and deterministic: the result depends only on the input's content, not
/// on the order of any of its lists, and repeated calls give equal statements.
/// Missing positions, prices, charges and products are carried in the
/// statement as issues; only contradictory input is an error.
///
/// It is the fold of [`crate::fold`]: the reference data prepared once, each local day
/// settled on its own, the days' sums added, the lines rounded at the end. The settle
/// processor runs the same code one day at a time.
pub fn settle_month(input: &MonthInput) -> Result<MonthStatement, InputError> {
    let context = MonthContext::prepare(input)?;
    let mut by_day: std::collections::BTreeMap<chrono::NaiveDate, Vec<Position>> =
        std::collections::BTreeMap::new();
    for position in latest_positions(&input.positions)? {
        by_day
            .entry(local_date(position.start))
            .or_default()
            .push(position);
    }
    let mut total = Summary::default();
    for (date, _, _) in input.period.local_days() {
        let positions = by_day.remove(&date).unwrap_or_default();
        total.add(&context.day(date, &positions, true)?);
    }
    // Positions on days outside the period.
    for (date, positions) in by_day {
        total.add(&context.day(date, &positions, true)?);
    }
    Ok(context.statement(&input.metering_point.id, &total))
}

/// The engine before the fold: the whole period in one pass. Kept only as the oracle
/// the fold is tested against.
#[cfg(test)]
pub(crate) mod reference {
    use std::collections::BTreeMap;

    use crate::calendar::DayGrid;
    use crate::charges::{ChargeKey, ChargeLink, ChargeType};
    use crate::components::charges::{
        PreparedCharge, check_links, subscription_or_fee_line, tariff_line,
    };
    use crate::components::spot::spot_line;
    use crate::components::supplier::{
        margin_lines, no_product_issues, sorted_terms, subscription_lines, uncovered,
    };
    use crate::input::{InputError, MonthInput, Scope};
    use crate::quantity::{Quality, Slots};
    use crate::spot::SpotIndex;
    use crate::statement::{Issue, MonthStatement};

    /// The one-pass settlement.
    pub(crate) fn settle_month(input: &MonthInput) -> Result<MonthStatement, InputError> {
        let period = &input.period;
        let slots = Slots::build(period, &input.supply, &input.positions)?;
        let days = DayGrid::new(period);
        let whole = (period.start(), period.end());

        let mut issues = Vec::new();
        let missing: Vec<_> = slots
            .slots
            .iter()
            .filter(|s| s.quality == Quality::Missing)
            .collect();
        if let Some(first) = missing.first() {
            issues.push(Issue::MissingPositions {
                count: u32::try_from(missing.len()).unwrap_or(u32::MAX),
                first: first.start,
            });
        }
        if slots.ignored > 0 {
            issues.push(Issue::IgnoredPositions {
                count: slots.ignored,
            });
        }

        // Charges by key; the same key twice must be the same charge.
        let mut charges: BTreeMap<&ChargeKey, PreparedCharge> = BTreeMap::new();
        for charge in &input.charges {
            if let Some(existing) = charges.get(&charge.key) {
                if &existing.charge != charge {
                    return Err(InputError::DuplicateCharge(charge.key.clone()));
                }
                continue;
            }
            charges.insert(&charge.key, PreparedCharge::new(charge)?);
        }

        // Links grouped by charge, sorted by start.
        let mut links: BTreeMap<&ChargeKey, Vec<&ChargeLink>> = BTreeMap::new();
        for link in &input.charge_links {
            links.entry(&link.key).or_default().push(link);
        }

        let mut lines = Vec::new();
        for (key, charge_links) in &mut links {
            charge_links.sort_by(|a, b| {
                a.from
                    .cmp(&b.from)
                    .then(a.to.cmp(&b.to))
                    .then(a.quantity.cmp(&b.quantity))
            });
            charge_links.dedup();
            check_links(charge_links)?;
            let Some(prepared) = charges.get(key) else {
                issues.push(Issue::UnknownCharge {
                    key: (*key).clone(),
                });
                continue;
            };
            let line = match key.charge_type {
                ChargeType::Tariff => tariff_line(
                    prepared,
                    &prepared.times(period),
                    charge_links,
                    &slots,
                    &days,
                    whole,
                ),
                ChargeType::Subscription | ChargeType::Fee => subscription_or_fee_line(
                    prepared,
                    &prepared.times(period),
                    charge_links,
                    &slots,
                    period,
                    &days,
                    whole,
                ),
            };
            if !line.details.is_empty() {
                lines.push(line);
            }
        }

        if input.scope == Scope::Full {
            let index = SpotIndex::build(&input.spot_prices, period)?;
            lines.push(spot_line(&slots, &index));
            let terms = sorted_terms(&input.product)?;
            lines.extend(margin_lines(&slots, &terms, &days));
            lines.extend(subscription_lines(
                &slots,
                &terms,
                period,
                days.days_in(whole),
            ));
            issues.extend(no_product_issues(uncovered(&slots, &terms).into_iter()));
        }
        lines.retain(|l| !l.details.is_empty());

        let priced = lines
            .into_iter()
            .map(|line| {
                let first = line
                    .details
                    .iter()
                    .find(|d| d.amount.is_none())
                    .map(|d| d.start);
                (line, first)
            })
            .collect();
        Ok(MonthStatement::assemble(
            input.metering_point.id.clone(),
            *period,
            priced,
            issues,
        ))
    }
}
