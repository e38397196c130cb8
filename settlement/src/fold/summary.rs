//! [`Summary`]: what a stretch of local days contributes to a statement, as sums and
//! counts that can be added and subtracted exactly.
//!
//! Every line of a statement is a fold over its details (Σ quantity, Σ exact amount,
//! counts, the qualities seen, the lowest and highest price), and every detail belongs
//! to exactly one local day. So a day's summary is a small value, a month's is the sum
//! of its days' summaries, and a corrected day is `month − old day + new day`. To keep
//! subtraction exact, the "or" of qualities is a count per quality, and the lowest and
//! highest price and the first unpriced or missing instant are multisets (a count per
//! value; a negative count is allowed in a difference and cancels in a total).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::arith;
use crate::charges::VatClass;
use crate::components::supplier::Uncovered;
use crate::fixed::LineFacts;
use crate::quantity::{Quality, QualitySet};
use crate::statement::{Component, Detail, Line, LineSource, Unit, UnitPrice};

/// A multiset with signed counts: adds and subtracts exactly, drops values at zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multiset<T: Ord>(pub(crate) BTreeMap<T, i64>);

impl<T: Ord> Default for Multiset<T> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<T: Ord + Clone> Multiset<T> {
    /// Adds `count` of `value` (negative to remove).
    pub(crate) fn add(&mut self, value: T, count: i64) {
        if count == 0 {
            return;
        }
        let entry = self.0.entry(value.clone()).or_insert(0);
        *entry += count;
        if *entry == 0 {
            self.0.remove(&value);
        }
    }

    fn merge(&mut self, other: &Self, sign: i64) {
        for (value, count) in &other.0 {
            self.add(value.clone(), count * sign);
        }
    }

    /// Whether nothing is counted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The lowest value counted above zero in `a + b`, read without building the sum.
    pub(crate) fn first_of<'a>(a: &'a Self, b: Option<&'a Self>) -> Option<&'a T> {
        Self::present_in(a, b).next()
    }

    /// The highest value counted above zero in `a + b`.
    pub(crate) fn last_of<'a>(a: &'a Self, b: Option<&'a Self>) -> Option<&'a T> {
        join_descending(&a.0, b.map(|m| &m.0))
            .find(|(_, x, y)| count(*x) + count(*y) > 0)
            .map(|(value, _, _)| value)
    }

    /// The values counted above zero in `a + b`, ascending.
    pub(crate) fn present_in<'a>(
        a: &'a Self,
        b: Option<&'a Self>,
    ) -> impl Iterator<Item = &'a T> + 'a {
        join(&a.0, b.map(|m| &m.0))
            .filter(|(_, x, y)| count(*x) + count(*y) > 0)
            .map(|(value, _, _)| value)
    }
}

/// A multiset's count of a value it may not hold.
fn count(c: Option<&i64>) -> i64 {
    c.copied().unwrap_or(0)
}

/// Two sorted maps walked together, each key once with its value in either: the sum
/// of two summaries read without building it.
struct Join<A: Iterator, B: Iterator> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
    descending: bool,
}

/// [`Join`] in ascending key order.
fn join<'a, K: Ord, V>(
    a: &'a BTreeMap<K, V>,
    b: Option<&'a BTreeMap<K, V>>,
) -> Join<impl Iterator<Item = (&'a K, &'a V)>, impl Iterator<Item = (&'a K, &'a V)>> {
    Join::new(a.iter(), b.into_iter().flatten(), false)
}

/// [`Join`] in descending key order.
fn join_descending<'a, K: Ord, V>(
    a: &'a BTreeMap<K, V>,
    b: Option<&'a BTreeMap<K, V>>,
) -> Join<impl Iterator<Item = (&'a K, &'a V)>, impl Iterator<Item = (&'a K, &'a V)>> {
    Join::new(
        a.iter().rev(),
        b.into_iter().flat_map(|m| m.iter().rev()),
        true,
    )
}

impl<A: Iterator, B: Iterator> Join<A, B> {
    fn new(a: A, b: B, descending: bool) -> Self {
        Self {
            a: a.peekable(),
            b: b.peekable(),
            descending,
        }
    }
}

impl<'a, K: Ord + 'a, V: 'a, A, B> Iterator for Join<A, B>
where
    A: Iterator<Item = (&'a K, &'a V)>,
    B: Iterator<Item = (&'a K, &'a V)>,
{
    type Item = (&'a K, Option<&'a V>, Option<&'a V>);

    fn next(&mut self) -> Option<Self::Item> {
        let order = match (self.a.peek(), self.b.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((x, _)), Some((y, _))) if self.descending => y.cmp(x),
            (Some((x, _)), Some((y, _))) => x.cmp(y),
        };
        match order {
            Ordering::Less => self.a.next().map(|(k, v)| (k, Some(v), None)),
            Ordering::Greater => self.b.next().map(|(k, v)| (k, None, Some(v))),
            Ordering::Equal => {
                let (k, v) = self.a.next()?;
                Some((k, Some(v), self.b.next().map(|(_, w)| w)))
            }
        }
    }
}

/// What identifies a line of a statement, in statement order (component, then source).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineKey {
    /// Invoice grouping.
    pub component: Component,
    /// Price source.
    pub source: LineSource,
    /// VAT class.
    pub vat_class: VatClass,
    /// Unit of the quantity.
    pub unit: Unit,
}

/// The sums and counts of one line over some days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineSum {
    /// Σ detail quantities.
    pub(crate) quantity: Decimal,
    /// Σ detail amounts that could be computed, exact (rounded only at the line).
    pub(crate) known: Decimal,
    /// Number of details: a line exists while it has any.
    pub(crate) details: i64,
    /// Details without a price.
    pub(crate) missing_prices: i64,
    /// Positions missing in the details.
    pub(crate) missing_positions: i64,
    /// Per quality (in [`Quality::ALL`] order): days whose details contain it.
    pub(crate) qualities: [i64; 4],
    /// The lowest price of each day.
    pub(crate) min_price: Multiset<Decimal>,
    /// The highest price of each day.
    pub(crate) max_price: Multiset<Decimal>,
    /// The first unpriced detail of each day.
    pub(crate) first_unpriced: Multiset<DateTime<Utc>>,
    /// The details themselves, only when explaining (a full settlement, not a state).
    pub(crate) explain: Vec<Detail>,
}

impl LineSum {
    /// The sums of a line computed by a component over one day.
    pub(crate) fn of_day(line: Line, explain: bool) -> Self {
        let mut known = Decimal::ZERO;
        let mut first_unpriced: Option<DateTime<Utc>> = None;
        for d in &line.details {
            match d.amount {
                Some(amount) => known = arith::add(known, amount),
                None => {
                    first_unpriced = Some(first_unpriced.map_or(d.start, |f| f.min(d.start)));
                }
            }
        }
        let mut sum = Self::of_facts(&LineFacts {
            quantity: line.quantity,
            known,
            details: u32::try_from(line.details.len()).unwrap_or(u32::MAX),
            missing_prices: line.missing_prices,
            missing_positions: line.missing_positions,
            qualities: line.qualities,
            unit_price: line.unit_price,
            first_unpriced,
        });
        if explain {
            sum.explain = line.details;
        }
        sum
    }

    /// The sums of a line over one day from its facts (the fixed-point path gives them
    /// without details).
    pub(crate) fn of_facts(facts: &LineFacts) -> Self {
        let mut sum = Self {
            quantity: facts.quantity,
            known: facts.known,
            details: i64::from(facts.details),
            missing_prices: i64::from(facts.missing_prices),
            missing_positions: i64::from(facts.missing_positions),
            ..Self::default()
        };
        for quality in facts.qualities.iter() {
            sum.qualities[quality.index()] = 1;
        }
        match facts.unit_price {
            UnitPrice::Single { price } => {
                sum.min_price.add(price, 1);
                sum.max_price.add(price, 1);
            }
            UnitPrice::Series { min, max } => {
                sum.min_price.add(min, 1);
                sum.max_price.add(max, 1);
            }
            UnitPrice::Missing => {}
        }
        if let Some(first) = facts.first_unpriced {
            sum.first_unpriced.add(first, 1);
        }
        sum
    }

    fn merge(&mut self, other: &Self, sign: i64) {
        if sign > 0 {
            self.quantity = arith::add(self.quantity, other.quantity);
            self.known = arith::add(self.known, other.known);
            self.explain.extend(other.explain.iter().cloned());
        } else {
            self.quantity -= other.quantity;
            self.known -= other.known;
        }
        self.details += sign * other.details;
        self.missing_prices += sign * other.missing_prices;
        self.missing_positions += sign * other.missing_positions;
        for (mine, theirs) in self.qualities.iter_mut().zip(other.qualities) {
            *mine += sign * theirs;
        }
        self.min_price.merge(&other.min_price, sign);
        self.max_price.merge(&other.max_price, sign);
        self.first_unpriced.merge(&other.first_unpriced, sign);
    }

    /// Whether the sum counts nothing at all (what is left after subtracting all it held).
    fn is_zero(&self) -> bool {
        self.details == 0
            && self.quantity.is_zero()
            && self.known.is_zero()
            && self.missing_prices == 0
            && self.missing_positions == 0
            && self.qualities == [0; 4]
            && self.min_price.is_empty()
            && self.max_price.is_empty()
            && self.first_unpriced.is_empty()
            && self.explain.is_empty()
    }

    /// The line these sums make, and the start of its first unpriced detail; `None` while
    /// it has no details (no line on the statement).
    pub(crate) fn line(&self, key: &LineKey) -> Option<(Line, Option<DateTime<Utc>>)> {
        Self::line_of(key, Some(self), None)
    }

    /// [`Self::line`] of `first + second` (a line's sums in two summaries), without
    /// building the sum. The totals are added as [`Summary::add`] would add them: the
    /// first's as they are (zero when it has no such line), the second's onto them, so
    /// every Decimal has the same value and scale.
    pub(crate) fn line_of(
        key: &LineKey,
        first: Option<&Self>,
        second: Option<&Self>,
    ) -> Option<(Line, Option<DateTime<Utc>>)> {
        let empty = Self::default();
        let mut total = LineTotals::of(first.unwrap_or(&empty));
        if let Some(second) = second {
            total.add(second);
        }
        if total.details <= 0 {
            return None;
        }
        // The multisets of the sum: `first`'s (or nothing's), with `second`'s.
        let (a, b) = match (first, second) {
            (Some(a), b) => (a, b),
            (None, b) => (b.unwrap_or(&empty), None),
        };
        let unit_price = match (
            Multiset::first_of(&a.min_price, b.map(|s| &s.min_price)),
            Multiset::last_of(&a.max_price, b.map(|s| &s.max_price)),
        ) {
            (Some(min), Some(max)) if arith::cmp(*min, *max).is_eq() => {
                UnitPrice::Single { price: *min }
            }
            (Some(min), Some(max)) => UnitPrice::Series {
                min: *min,
                max: *max,
            },
            _ => UnitPrice::Missing,
        };
        let known_amount = crate::rounding::round_amount(total.known);
        let qualities: QualitySet = Quality::ALL
            .into_iter()
            .filter(|q| total.qualities[q.index()] > 0)
            .collect();
        let mut details: Vec<Detail> = a
            .explain
            .iter()
            .chain(b.iter().flat_map(|s| &s.explain))
            .cloned()
            .collect();
        details.sort_by_key(|d| d.start);
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        let line = Line {
            component: key.component,
            source: key.source.clone(),
            vat_class: key.vat_class,
            unit: key.unit,
            quantity: total.quantity,
            unit_price,
            amount: (total.missing_prices == 0).then_some(known_amount),
            known_amount,
            missing_prices: count(total.missing_prices),
            missing_positions: count(total.missing_positions),
            qualities,
            details,
        };
        let first_unpriced = Multiset::first_of(&a.first_unpriced, b.map(|s| &s.first_unpriced));
        Some((line, first_unpriced.copied()))
    }
}

/// A [`LineSum`]'s totals (everything but its multisets and details), for reading
/// several summaries as their sum.
struct LineTotals {
    quantity: Decimal,
    known: Decimal,
    details: i64,
    missing_prices: i64,
    missing_positions: i64,
    qualities: [i64; 4],
}

impl LineTotals {
    fn of(sum: &LineSum) -> Self {
        Self {
            quantity: sum.quantity,
            known: sum.known,
            details: sum.details,
            missing_prices: sum.missing_prices,
            missing_positions: sum.missing_positions,
            qualities: sum.qualities,
        }
    }

    /// As [`LineSum::merge`] with a positive sign.
    fn add(&mut self, other: &LineSum) {
        self.quantity = arith::add(self.quantity, other.quantity);
        self.known = arith::add(self.known, other.known);
        self.details += other.details;
        self.missing_prices += other.missing_prices;
        self.missing_positions += other.missing_positions;
        for (mine, theirs) in self.qualities.iter_mut().zip(other.qualities) {
            *mine += theirs;
        }
    }
}

/// What some local days contribute to a statement: line sums and the issues that come
/// from positions and supply. A month's is the sum of its days'; the issues that come
/// from reference data alone (unknown charges) belong to the [`MonthContext`](super::MonthContext).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Line sums by line.
    pub(crate) lines: BTreeMap<LineKey, LineSum>,
    /// Missing slots of the supply periods.
    pub(crate) missing_positions: i64,
    /// The first missing slot of each day.
    pub(crate) first_missing: Multiset<DateTime<Utc>>,
    /// Positions outside every supply period or off the resolution's grid.
    pub(crate) ignored: i64,
    /// Supplied time without a product, cut at local midnight.
    pub(crate) no_product: Multiset<Uncovered>,
}

impl Summary {
    /// Adds another summary (a day into a month).
    pub fn add(&mut self, other: &Summary) {
        self.merge(other, 1);
    }

    /// Subtracts another summary (a day's old contribution before its new one is added).
    ///
    /// Exact: `a + b − b == a` for every field. Details kept for explaining cannot be
    /// subtracted; a summary that explains is built by adding only.
    pub fn sub(&mut self, other: &Summary) {
        self.merge(other, -1);
    }

    fn merge(&mut self, other: &Summary, sign: i64) {
        for (key, sum) in &other.lines {
            // The key is cloned only for a line new to this summary (keys own strings).
            match self.lines.get_mut(key) {
                Some(mine) => {
                    mine.merge(sum, sign);
                    if mine.is_zero() {
                        self.lines.remove(key);
                    }
                }
                None => {
                    let mut mine = LineSum::default();
                    mine.merge(sum, sign);
                    if !mine.is_zero() {
                        self.lines.insert(key.clone(), mine);
                    }
                }
            }
        }
        self.missing_positions += sign * other.missing_positions;
        self.first_missing.merge(&other.first_missing, sign);
        self.ignored += sign * other.ignored;
        self.no_product.merge(&other.no_product, sign);
    }

    /// Adds a component's line for one day (nothing when it has no details).
    pub(crate) fn push_line(&mut self, line: Line, explain: bool) {
        if line.details.is_empty() {
            return;
        }
        let key = LineKey {
            component: line.component,
            source: line.source.clone(),
            vat_class: line.vat_class,
            unit: line.unit,
        };
        self.push_sum(key, &LineSum::of_day(line, explain));
    }

    /// Adds a line's facts for one day from the fixed-point path.
    pub(crate) fn push_facts(&mut self, key: LineKey, facts: &LineFacts) {
        self.push_sum(key, &LineSum::of_facts(facts));
    }

    /// Adds a line's sums for one day (nothing when it has no details).
    pub(crate) fn push_sum(&mut self, key: LineKey, sum: &LineSum) {
        if sum.details == 0 {
            return;
        }
        self.lines.entry(key).or_default().merge(sum, 1);
    }

    /// Each line of `first + second` with its sums in either, in statement order.
    pub(crate) fn lines_of<'a>(
        first: &'a Summary,
        second: Option<&'a Summary>,
    ) -> impl Iterator<Item = (&'a LineKey, Option<&'a LineSum>, Option<&'a LineSum>)> {
        join(&first.lines, second.map(|s| &s.lines))
    }

    /// Whether the summary holds nothing (a day whose readings changed nothing).
    pub fn is_empty(&self) -> bool {
        self == &Summary::default()
    }
}
