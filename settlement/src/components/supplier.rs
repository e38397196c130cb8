//! The supplier's own components from the product terms.
//!
//! - **Margin**: Σ kWh × margin. Consecutive positions of one local day at the
//!   same rate of the same term form one detail (Σq × rate is exact), so a flat
//!   margin is one detail per term and day; amounts are exact and the line is
//!   rounded once, like spot.
//! - **Subscription**: the monthly price becomes a daily price with the same
//!   rule as DataHub subscriptions, `round6(monthly / days in period)`, charged
//!   for each supplied local day on the product.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::calendar::{BillingPeriod, DayGrid};
use crate::charges::VatClass;
use crate::fixed::{Amount, LineAcc, LineFacts, Price, RunningQuantity};
use crate::fold::LineKey;
use crate::fold::fixed_prices::FixedPrices;
use crate::input::InputError;
use crate::product::ProductTerm;
use crate::quantity::{Quality, QualitySet, Slots};
use crate::rounding::{daily_price, line_amount};
use crate::statement::{Component, Detail, Issue, Line, LineSource, PriceSource, Unit};

/// Sorts terms and rejects overlaps.
pub(crate) fn sorted_terms(terms: &[ProductTerm]) -> Result<Vec<&ProductTerm>, InputError> {
    let mut sorted: Vec<&ProductTerm> = terms.iter().collect();
    sorted.sort_by(|a, b| a.from.cmp(&b.from).then(a.to.cmp(&b.to)));
    for pair in sorted.windows(2) {
        if pair[1].from < pair[0].to {
            return Err(InputError::OverlappingProductTerms { from: pair[1].from });
        }
    }
    Ok(sorted)
}

pub(crate) fn term_index(terms: &[&ProductTerm], time: DateTime<Utc>) -> Option<usize> {
    let i = terms.partition_point(|t| t.to <= time);
    terms.get(i).filter(|t| t.from <= time).map(|_| i)
}

fn term_at<'t>(terms: &[&'t ProductTerm], time: DateTime<Utc>) -> Option<&'t ProductTerm> {
    term_index(terms, time).map(|i| terms[i])
}

struct Run {
    product_id: Option<String>,
    vat_class: VatClass,
    detail: Detail,
}

/// Margin lines, one per product (plus one without product for uncovered supplied time).
///
/// A run never crosses a local midnight, so that every detail belongs to one day and a
/// month is the sum of its days (the fold); Σq × rate is exact either way.
pub(crate) fn margin_lines(slots: &Slots, terms: &[&ProductTerm], days: &DayGrid) -> Vec<Line> {
    let mut runs: Vec<Run> = Vec::new();
    let mut last_term: Option<usize> = None;
    for slot in &slots.slots {
        let index = term_index(terms, slot.start);
        let term = index.map(|i| terms[i]);
        let rate = term.map(|t| t.margin.at(slot.start));
        let missing = u32::from(slot.quality == Quality::Missing);
        let extend = !runs.is_empty()
            && last_term == index
            && !days.is_midnight(slot.start)
            && runs
                .last()
                .is_some_and(|r| r.detail.price == rate && r.detail.end == slot.start);
        last_term = index;
        if extend {
            if let Some(run) = runs.last_mut() {
                let d = &mut run.detail;
                d.end = slot.end();
                d.quantity += slot.quantity;
                d.qualities.insert(slot.quality);
                d.positions += 1;
                d.missing_positions += missing;
            }
        } else {
            let mut qualities = QualitySet::EMPTY;
            qualities.insert(slot.quality);
            runs.push(Run {
                product_id: term.map(|t| t.product_id.clone()),
                vat_class: term.map_or(VatClass::Vat25, |t| t.vat_class),
                detail: Detail {
                    start: slot.start,
                    end: slot.end(),
                    quantity: slot.quantity,
                    qualities,
                    positions: 1,
                    missing_positions: missing,
                    price: rate,
                    price_source: term.zip(rate).map(|(t, price)| PriceSource {
                        time: t.from,
                        price,
                    }),
                    amount: None,
                },
            });
        }
    }
    // Σq × rate once per run: exact, and one multiplication instead of one per position.
    for run in &mut runs {
        run.detail.amount = run.detail.price.map(|rate| run.detail.quantity * rate);
    }
    group_lines(runs, Component::SupplierMargin, Unit::Kwh, |product_id| {
        LineSource::Margin { product_id }
    })
}

/// A run of [`margin_lines`] in fixed point.
struct FixedRun {
    term: Option<usize>,
    rate: Option<Price>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    quantity: RunningQuantity,
    qualities: QualitySet,
    missing: u32,
}

/// [`margin_lines`]' sums in fixed point, without details: the same runs, each one
/// detail of its product's line; `None` when the Decimal path must compute them.
pub(crate) fn margin_sums(
    slots: &Slots,
    prices: &FixedPrices,
    terms: &[&ProductTerm],
    days: &DayGrid,
) -> Option<Vec<(LineKey, LineFacts)>> {
    if !slots.fixed {
        return None;
    }
    let mut groups: Vec<(Option<usize>, LineAcc)> = Vec::new();
    let mut flush = |run: FixedRun| {
        // Lines are per product and VAT class; terms of one product share a line.
        let same_line = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(a), Some(b)) => {
                terms[a].product_id == terms[b].product_id
                    && terms[a].vat_class == terms[b].vat_class
            }
            (a, b) => a == b,
        };
        let at = match groups.iter().position(|(t, _)| same_line(*t, run.term)) {
            Some(at) => at,
            None => {
                groups.push((run.term, LineAcc::default()));
                groups.len() - 1
            }
        };
        groups[at].1.detail(
            run.start,
            run.quantity.fixed(),
            run.qualities,
            run.missing,
            run.rate,
            Amount::Exact,
        );
    };
    let mut current: Option<FixedRun> = None;
    // The next local midnight after the previous slot's start: a slot starts at a
    // midnight only if it starts there, or after it (past a gap in supply).
    let mut next_midnight = i64::MIN;
    for slot in &slots.slots {
        let at_midnight = slot.start_s >= next_midnight
            && (slot.start_s == next_midnight || days.is_midnight(slot.start));
        if slot.start_s >= next_midnight {
            next_midnight = days.next_midnight(slot.start).timestamp();
        }
        let (term, rate) = match prices.margin(slot.start_s)? {
            Some((term, rate)) => (Some(term), Some(rate)),
            None => (None, None),
        };
        let missing = u32::from(slot.quality == Quality::Missing);
        if let Some(run) = current.as_mut().filter(|r| {
            r.term == term
                && !at_midnight
                && r.rate.map(|p| p.fixed.value) == rate.map(|p| p.fixed.value)
                && r.end == slot.start
        }) {
            run.end = slot.end();
            run.quantity = run.quantity.plus(slot.milli)?;
            run.qualities.insert(slot.quality);
            run.missing += missing;
            continue;
        }
        let mut qualities = QualitySet::EMPTY;
        qualities.insert(slot.quality);
        let next = FixedRun {
            term,
            rate,
            start: slot.start,
            end: slot.end(),
            quantity: RunningQuantity::starting(slot.milli),
            qualities,
            missing,
        };
        if let Some(run) = current.replace(next) {
            flush(run);
        }
    }
    if let Some(run) = current {
        flush(run);
    }
    groups
        .into_iter()
        .map(|(term, acc)| {
            let term = term.map(|i| terms[i]);
            let key = LineKey {
                component: Component::SupplierMargin,
                source: LineSource::Margin {
                    product_id: term.map(|t| t.product_id.clone()),
                },
                vat_class: term.map_or(VatClass::Vat25, |t| t.vat_class),
                unit: Unit::Kwh,
            };
            Some((key, acc.facts()?))
        })
        .collect()
}

/// Supplier subscription lines, one per product, for the local days of `days`
/// (the period's, or one of them).
pub(crate) fn subscription_lines(
    slots: &Slots,
    terms: &[&ProductTerm],
    period: &BillingPeriod,
    local_days: impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)>,
) -> Vec<Line> {
    let days = period.days();
    let mut runs: Vec<Run> = Vec::new();
    for (start, end) in local_days {
        let Some(term) = term_at(terms, start) else {
            continue;
        };
        if !slots.supplied_at(start) {
            continue;
        }
        let price = daily_price(term.subscription_per_month, days);
        runs.push(Run {
            product_id: Some(term.product_id.clone()),
            vat_class: term.vat_class,
            detail: Detail {
                start,
                end,
                quantity: Decimal::ONE,
                qualities: QualitySet::EMPTY,
                positions: 0,
                missing_positions: 0,
                price,
                price_source: Some(PriceSource {
                    time: term.from,
                    price: term.subscription_per_month,
                }),
                amount: price.map(|p| line_amount(Decimal::ONE, p)),
            },
        });
    }
    group_lines(
        runs,
        Component::SupplierSubscription,
        Unit::Pieces,
        |product_id| LineSource::ProductSubscription {
            product_id: product_id.unwrap_or_default(),
        },
    )
}

fn group_lines(
    runs: Vec<Run>,
    component: Component,
    unit: Unit,
    source: impl Fn(Option<String>) -> LineSource,
) -> Vec<Line> {
    let mut keys: Vec<(Option<String>, VatClass)> = runs
        .iter()
        .map(|r| (r.product_id.clone(), r.vat_class))
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(product_id, vat_class)| {
            let details: Vec<Detail> = runs
                .iter()
                .filter(|r| r.product_id == product_id && r.vat_class == vat_class)
                .map(|r| r.detail.clone())
                .collect();
            Line::from_details(component, source(product_id), vat_class, unit, details)
        })
        .collect()
}

/// Supplied intervals not covered by any product term, each with the index of its
/// supply period (pieces of one supply period cut at local midnight are joined again
/// by the fold; pieces of two adjacent supply periods are not, as in one pass).
pub(crate) fn uncovered(slots: &Slots, terms: &[&ProductTerm]) -> Vec<Uncovered> {
    let mut pieces = Vec::new();
    for supply in &slots.supply {
        let (from, to) = (supply.from, supply.to);
        let mut cursor = from;
        for term in terms.iter().filter(|t| t.to > from && t.from < to) {
            if term.from > cursor {
                pieces.push((supply.index, cursor, term.from));
            }
            cursor = cursor.max(term.to);
        }
        if cursor < to {
            pieces.push((supply.index, cursor, to));
        }
    }
    pieces
}

/// A supplied interval without product: (supply period index, from, to).
pub(crate) type Uncovered = (usize, DateTime<Utc>, DateTime<Utc>);

/// The issues of uncovered pieces, joining pieces of one supply period that touch.
pub(crate) fn no_product_issues(pieces: impl Iterator<Item = Uncovered>) -> Vec<Issue> {
    let mut joined: Vec<Uncovered> = Vec::new();
    for piece in pieces {
        match joined.last_mut() {
            Some(last) if last.0 == piece.0 && last.2 == piece.1 => last.2 = piece.2,
            _ => joined.push(piece),
        }
    }
    joined
        .into_iter()
        .map(|(_, from, to)| Issue::NoProduct { from, to })
        .collect()
}
