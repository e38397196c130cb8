//! Metered quantities: positions, qualities, resolutions, and the dense slot
//! series every component reads from.
//!
//! DataHub sends a metering point's time series as positions at PT15M or PT1H
//! (RSM-012), and sends corrections as new documents that replace positions.
//! The engine takes all positions it has been given, keeps the latest version
//! of each, and lays them on a dense grid of *slots* over the supply periods:
//! a slot without a position is missing (quantity 0, quality `missing`),
//! exactly as Energinet's `metering_point_time_series.py` pads its input.

use std::cell::OnceCell;
use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::calendar::BillingPeriod;
use crate::fixed::{self, Fixed, RunningQuantity};
use crate::input::InputError;

/// Resolution of a metering point's time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Resolution {
    /// Quarter-hour positions (DataHub 3 default for new meters).
    #[serde(rename = "PT15M")]
    Pt15m,
    /// Hourly positions.
    #[serde(rename = "PT1H")]
    Pt1h,
}

impl Resolution {
    /// Length of one position.
    pub fn duration(self) -> Duration {
        match self {
            Resolution::Pt15m => Duration::minutes(15),
            Resolution::Pt1h => Duration::hours(1),
        }
    }

    /// Length in seconds, for index arithmetic.
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Pt15m => 900,
            Resolution::Pt1h => 3600,
        }
    }

    /// The ISO 8601 name used by DataHub ("PT15M", "PT1H").
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Pt15m => "PT15M",
            Resolution::Pt1h => "PT1H",
        }
    }
}

/// Quality of a quantity, with Energinet's names.
///
/// CIM RSM-012 codes map as A02 → `Missing`, A03 → `Estimated`,
/// A04 → `Measured`, A06 → `Calculated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// No quantity was received; counted as 0 and flagged.
    Missing,
    /// Estimated by the grid company.
    Estimated,
    /// Measured.
    Measured,
    /// Calculated (e.g. grid loss).
    Calculated,
}

impl Quality {
    /// All qualities in a fixed order, used for deterministic sets.
    pub const ALL: [Quality; 4] = [
        Quality::Missing,
        Quality::Estimated,
        Quality::Measured,
        Quality::Calculated,
    ];

    fn bit(self) -> u8 {
        match self {
            Quality::Missing => 1,
            Quality::Estimated => 2,
            Quality::Measured => 4,
            Quality::Calculated => 8,
        }
    }

    /// Position in [`Quality::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Quality::Missing => 0,
            Quality::Estimated => 1,
            Quality::Measured => 2,
            Quality::Calculated => 3,
        }
    }

    /// Energinet's lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Missing => "missing",
            Quality::Estimated => "estimated",
            Quality::Measured => "measured",
            Quality::Calculated => "calculated",
        }
    }
}

/// The set of qualities a result was built from (Energinet's `quantity_qualities`).
///
/// A bit set, so that merging is cheap and the order is deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct QualitySet(u8);

impl QualitySet {
    /// The empty set.
    pub const EMPTY: QualitySet = QualitySet(0);

    /// Adds a quality.
    pub fn insert(&mut self, quality: Quality) {
        self.0 |= quality.bit();
    }

    /// Adds every quality of another set.
    pub fn extend(&mut self, other: QualitySet) {
        self.0 |= other.0;
    }

    /// Whether a quality is in the set.
    pub fn contains(self, quality: Quality) -> bool {
        self.0 & quality.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The qualities in [`Quality::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Quality> {
        Quality::ALL.into_iter().filter(move |q| self.contains(*q))
    }
}

impl FromIterator<Quality> for QualitySet {
    fn from_iter<I: IntoIterator<Item = Quality>>(iter: I) -> Self {
        let mut set = QualitySet::EMPTY;
        for quality in iter {
            set.insert(quality);
        }
        set
    }
}

impl Serialize for QualitySet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let items: Vec<Quality> = self.iter().collect();
        let mut seq = serializer.serialize_seq(Some(items.len()))?;
        for quality in items {
            seq.serialize_element(&quality)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for QualitySet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SetVisitor;
        impl<'de> Visitor<'de> for SetVisitor {
            type Value = QualitySet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of qualities")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<QualitySet, A::Error> {
                let mut set = QualitySet::EMPTY;
                while let Some(quality) = seq.next_element::<Quality>()? {
                    set.insert(quality);
                }
                Ok(set)
            }
        }
        deserializer.deserialize_seq(SetVisitor)
    }
}

/// One received position of a metering point's time series.
///
/// `version` orders corrections: among positions with the same `start`, the
/// highest version wins (a processor can use the DataHub registration time in
/// milliseconds or the Kafka offset). Feeding every version ever received gives
/// the same statement as feeding only the latest ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Start of the position (UTC).
    pub start: DateTime<Utc>,
    /// Quantity in kWh; `None` when DataHub reported the position as missing.
    pub quantity: Option<Decimal>,
    /// Quality as received.
    pub quality: Quality,
    /// Correction order; higher replaces lower.
    #[serde(default)]
    pub version: u64,
}

impl Position {
    /// Quantity and quality as the engine uses them: a position without quantity is `(0, missing)`.
    pub fn effective(&self) -> (Decimal, Quality) {
        match self.quantity {
            Some(quantity) => (quantity, self.quality),
            None => (Decimal::ZERO, Quality::Missing),
        }
    }
}

/// An interval of the billing period in which the supplier settles the metering
/// point, with the time series resolution valid in it.
///
/// A move-in mid-month, a supplier switch, or a change from PT1H to PT15M
/// metering each start a new supply period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyPeriod {
    /// Inclusive start (UTC).
    pub from: DateTime<Utc>,
    /// Exclusive end; `None` means open-ended.
    pub to: Option<DateTime<Utc>>,
    /// Resolution of the time series in this period.
    pub resolution: Resolution,
}

/// Keeps the latest version of each position, independent of input order.
///
/// Two positions with the same start and version but different content cannot
/// be ordered, so they are an input error rather than a silent pick.
pub fn latest_positions(positions: &[Position]) -> Result<Vec<Position>, InputError> {
    let mut sorted: Vec<&Position> = positions.iter().collect();
    sorted.sort_by(|a, b| a.start.cmp(&b.start).then(a.version.cmp(&b.version)));
    let mut latest: Vec<Position> = Vec::with_capacity(sorted.len());
    for position in sorted {
        match latest.last_mut() {
            Some(last) if last.start == position.start => {
                if last.version == position.version {
                    if last != position {
                        return Err(InputError::ConflictingPositions {
                            start: position.start,
                            version: position.version,
                        });
                    }
                } else {
                    *last = position.clone();
                }
            }
            _ => latest.push(position.clone()),
        }
    }
    Ok(latest)
}

/// Applies a correction to a stored series: each position replaces the stored one with the same start.
///
/// `stored` is kept sorted by start (start from an empty or sorted vector).
/// This is the helper a processor uses to keep "the latest quantity per
/// position"; [`latest_positions`] gives the same result from the full history.
pub fn apply_correction(stored: &mut Vec<Position>, correction: &[Position]) {
    for position in correction {
        match stored.binary_search_by(|p| p.start.cmp(&position.start)) {
            Ok(index) => {
                if stored[index].version <= position.version {
                    stored[index] = position.clone();
                }
            }
            Err(index) => stored.insert(index, position.clone()),
        }
    }
}

/// `DateTime::from_timestamp(t, 0)` for the instants of a slot grid, with the UTC date
/// computed once per UTC day: chrono's date from a day number was the largest single
/// cost of laying out a day's slots.
#[derive(Debug, Default)]
struct UtcInstants {
    /// The last day number (days since 1970-01-01) and its date.
    day: Option<(i64, NaiveDate)>,
}

impl UtcInstants {
    /// The instant `t` seconds after the Unix epoch; `None` where chrono has none.
    fn at(&mut self, t: i64) -> Option<DateTime<Utc>> {
        let (day, second) = (t.div_euclid(86_400), t.rem_euclid(86_400));
        let date = match self.day {
            Some((known, date)) if known == day => date,
            _ => {
                let date = DateTime::from_timestamp(day.checked_mul(86_400)?, 0)?.date_naive();
                self.day = Some((day, date));
                date
            }
        };
        let time = NaiveTime::from_num_seconds_from_midnight_opt(u32::try_from(second).ok()?, 0)?;
        Some(NaiveDateTime::new(date, time).and_utc())
    }
}

/// One slot of the dense series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub start: DateTime<Utc>,
    /// `start + resolution`, precomputed: chrono's date arithmetic dominated the profile.
    pub end: DateTime<Utc>,
    /// `start` as a Unix timestamp, for cheap comparisons.
    pub start_s: i64,
    /// `end` as a Unix timestamp.
    pub end_s: i64,
    pub resolution: Resolution,
    pub quantity: Decimal,
    /// `quantity` in milli-kWh, when [`Slots::fixed`] holds.
    pub milli: Fixed,
    pub quality: Quality,
}

impl Slot {
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }
}

/// A supply period clipped to the billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClippedSupply {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub resolution: Resolution,
    /// Index of the first slot of this period in [`Slots::slots`].
    pub first_slot: usize,
    /// Index of the supply period among the billing period's (sorted by start), so that
    /// pieces of one supply period cut at local midnight can be joined again.
    pub index: usize,
}

/// The dense slot series of one metering point over a billing period.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    pub slots: Vec<Slot>,
    /// `prefix[i]` = Σ quantity of `slots[..i]`, so a window of whole slots is one subtraction.
    /// Summed on first use: the fixed-point path reads `prefix_milli` instead.
    prefix_quantity: OnceCell<Vec<Decimal>>,
    /// `prefix_quantity` in milli-kWh, when [`Self::fixed`] holds.
    prefix_milli: Vec<RunningQuantity>,
    /// Every quantity is non-negative and representable in milli-kWh, and so are the
    /// prefix sums: the fixed-point path ([`crate::fixed`]) may be taken.
    pub fixed: bool,
    /// Running count of each quality (in [`Quality::ALL`] order) over `slots[..i]`.
    prefix_quality: Vec<[u32; 4]>,
    pub supply: Vec<ClippedSupply>,
    /// Positions that were outside every supply period or not on a slot boundary.
    pub ignored: u32,
}

impl Slots {
    /// Lays the latest positions on the slot grid of the supply periods within `period`.
    #[cfg(test)]
    pub fn build(
        period: &BillingPeriod,
        supply: &[SupplyPeriod],
        positions: &[Position],
    ) -> Result<Self, InputError> {
        let clipped = Self::clip_supply(period, supply)?;
        Self::build_window(&clipped, (period.start(), period.end()), positions, false)
    }

    /// The supply periods clipped to `period`, sorted, checked for alignment and overlap.
    pub fn clip_supply(
        period: &BillingPeriod,
        supply: &[SupplyPeriod],
    ) -> Result<Vec<ClippedSupply>, InputError> {
        let mut clipped: Vec<ClippedSupply> = Vec::new();
        for s in supply {
            let from = s.from.max(period.start());
            let to = s.to.unwrap_or(period.end()).min(period.end());
            if from >= to {
                continue;
            }
            if (from.timestamp() - period.start().timestamp()) % s.resolution.seconds() != 0
                || (to.timestamp() - period.start().timestamp()) % s.resolution.seconds() != 0
            {
                return Err(InputError::MisalignedSupplyPeriod { from: s.from });
            }
            clipped.push(ClippedSupply {
                from,
                to,
                resolution: s.resolution,
                first_slot: 0,
                index: 0,
            });
        }
        clipped.sort_by_key(|s| s.from);
        for pair in clipped.windows(2) {
            if pair[1].from < pair[0].to {
                return Err(InputError::OverlappingSupplyPeriods { from: pair[1].from });
            }
        }
        for (index, s) in clipped.iter_mut().enumerate() {
            s.index = index;
        }
        Ok(clipped)
    }

    /// Lays the latest positions on the slot grid of the (already clipped) supply periods
    /// within `window`: a billing period, or one local day of it (the incremental fold
    /// settles day by day). Local midnights are whole UTC hours, so a window boundary
    /// never cuts a slot. Positions outside every slot of the window are ignored.
    ///
    /// `fixed` also lays the quantities out in milli-kWh for the fixed-point path
    /// ([`Self::fixed`] then says whether they all fit).
    pub fn build_window(
        supply: &[ClippedSupply],
        window: (DateTime<Utc>, DateTime<Utc>),
        positions: &[Position],
        fixed: bool,
    ) -> Result<Self, InputError> {
        let mut clipped: Vec<ClippedSupply> = supply
            .iter()
            .filter_map(|s| {
                let from = s.from.max(window.0);
                let to = s.to.min(window.1);
                (from < to).then_some(ClippedSupply { from, to, ..*s })
            })
            .collect();
        let count: i64 = clipped
            .iter()
            .map(|s| (s.to.timestamp() - s.from.timestamp()) / s.resolution.seconds() + 1)
            .sum();
        let mut slots = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut instants = UtcInstants::default();
        for s in &mut clipped {
            s.first_slot = slots.len();
            let step = s.resolution.seconds();
            let (from_s, to_s) = (s.from.timestamp(), s.to.timestamp());
            let mut t = from_s;
            let mut start = s.from;
            while t < to_s {
                let end = instants.at(t + step).unwrap_or(s.to);
                slots.push(Slot {
                    start,
                    end,
                    start_s: t,
                    end_s: t + step,
                    resolution: s.resolution,
                    quantity: Decimal::ZERO,
                    milli: Fixed::default(),
                    quality: Quality::Missing,
                });
                start = end;
                t += step;
            }
        }
        let mut ignored = 0u32;
        let mut fixed = fixed;
        for position in latest_positions(positions)? {
            match Self::index_in(&clipped, position.start) {
                Some(index) => {
                    let (quantity, quality) = position.effective();
                    slots[index].quantity = quantity;
                    if fixed {
                        match fixed::quantity(quantity) {
                            Some(milli) => slots[index].milli = milli,
                            None => fixed = false,
                        }
                    }
                    slots[index].quality = quality;
                }
                None => ignored += 1,
            }
        }
        let mut prefix_quality = Vec::with_capacity(slots.len() + 1);
        let mut prefix_milli = Vec::with_capacity(if fixed { slots.len() + 1 } else { 0 });
        let mut running_milli = Some(RunningQuantity::default());
        let mut counts = [0u32; 4];
        prefix_milli.extend(running_milli.filter(|_| fixed));
        prefix_quality.push(counts);
        for slot in &slots {
            if fixed {
                running_milli = running_milli.and_then(|r| r.plus(slot.milli));
                match running_milli {
                    Some(r) => prefix_milli.push(r),
                    None => fixed = false,
                }
            }
            counts[slot.quality.index()] += 1;
            prefix_quality.push(counts);
        }
        Ok(Self {
            slots,
            prefix_quantity: OnceCell::new(),
            prefix_milli,
            fixed,
            prefix_quality,
            supply: clipped,
            ignored,
        })
    }

    fn index_in(supply: &[ClippedSupply], start: DateTime<Utc>) -> Option<usize> {
        let s = supply.iter().find(|s| s.from <= start && start < s.to)?;
        let offset = start.timestamp() - s.from.timestamp();
        if offset % s.resolution.seconds() != 0 {
            return None;
        }
        usize::try_from(offset / s.resolution.seconds())
            .ok()
            .map(|i| s.first_slot + i)
    }

    /// Indices of the slots overlapping `[from, to)`.
    fn overlapping_range(&self, from: i64, to: i64) -> (usize, usize) {
        let first = self.slots.partition_point(|s| s.end_s <= from);
        let last = self.slots.partition_point(|s| s.start_s < to);
        (first, last.max(first))
    }

    /// Σ quantity, qualities and counts of the slots in `[from, to)`.
    ///
    /// A window made of whole slots (the normal case: four quarters under an
    /// hour, a day's quarters under a day) is answered from prefix sums; a slot
    /// longer than the window (a PT1H position under a PT15M window)
    /// contributes its quantity pro rata (q/4), Energinet's `hour_to_quarter` rule.
    pub fn window(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> WindowSum {
        let (from, to) = (from.timestamp(), to.timestamp());
        let (first, last) = self.overlapping_range(from, to);
        if first == last {
            return WindowSum::default();
        }
        if self.slots[first].start_s >= from && self.slots[last - 1].end_s <= to {
            return self.whole_slots(
                first,
                last,
                self.prefix_quantity()[last] - self.prefix_quantity()[first],
            );
        }
        let mut sum = WindowSum::default();
        for slot in &self.slots[first..last] {
            let overlap = slot.end_s.min(to) - slot.start_s.max(from);
            if overlap <= 0 {
                continue;
            }
            sum.quantity += if overlap == slot.resolution.seconds() {
                slot.quantity
            } else {
                slot.quantity * Decimal::from(overlap) / Decimal::from(slot.resolution.seconds())
            };
            sum.qualities.insert(slot.quality);
            sum.positions += 1;
            if slot.quality == Quality::Missing {
                sum.missing += 1;
            }
        }
        sum
    }

    /// [`Self::window`] in milli-kWh, for a window of whole slots while [`Self::fixed`]
    /// holds; `None` when the Decimal path must sum it (a slot longer than the window
    /// is split pro rata: a division).
    pub fn window_fixed(&self, from: i64, to: i64) -> Option<WindowSum<Fixed>> {
        if !self.fixed {
            return None;
        }
        let (first, last) = self.overlapping_range(from, to);
        if first == last {
            return Some(WindowSum::default());
        }
        if self.slots[first].start_s >= from && self.slots[last - 1].end_s <= to {
            return Some(self.whole_slots(
                first,
                last,
                self.prefix_milli[last].minus(self.prefix_milli[first]),
            ));
        }
        None
    }

    /// `prefix_quantity`, summed on first use.
    fn prefix_quantity(&self) -> &[Decimal] {
        self.prefix_quantity.get_or_init(|| {
            let mut running = Decimal::ZERO;
            std::iter::once(running)
                .chain(self.slots.iter().map(|slot| {
                    running = crate::arith::add(running, slot.quantity);
                    running
                }))
                .collect()
        })
    }

    /// The qualities and counts of `slots[first..last]`, with their quantity.
    fn whole_slots<Q>(&self, first: usize, last: usize, quantity: Q) -> WindowSum<Q> {
        let mut qualities = QualitySet::EMPTY;
        for (k, quality) in Quality::ALL.into_iter().enumerate() {
            if self.prefix_quality[last][k] > self.prefix_quality[first][k] {
                qualities.insert(quality);
            }
        }
        let missing_index = Quality::Missing.index();
        WindowSum {
            quantity,
            qualities,
            positions: u32::try_from(last - first).unwrap_or(u32::MAX),
            missing: self.prefix_quality[last][missing_index]
                - self.prefix_quality[first][missing_index],
        }
    }

    /// Whether an instant is inside a supply period.
    pub fn supplied_at(&self, instant: DateTime<Utc>) -> bool {
        self.supply
            .iter()
            .any(|s| s.from <= instant && instant < s.to)
    }
}

/// Sum of quantities, qualities and missing count of the slots in a window; the
/// quantity a Decimal, or milli-kWh ([`Fixed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WindowSum<Q = Decimal> {
    pub quantity: Q,
    pub qualities: QualitySet,
    pub positions: u32,
    pub missing: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_instants_are_chronos() {
        let mut instants = UtcInstants::default();
        // Across days, the DST changes of 2026, a leap day, year ends, before the epoch.
        for from in [
            -86_400 * 3 - 450,
            1_774_738_800 - 86_400,
            1_792_882_800 - 86_400,
            1_709_164_800 - 86_400,
            1_798_761_600 - 86_400,
        ] {
            for k in 0..3 * 96 {
                let t = from + 900 * k;
                assert_eq!(instants.at(t), DateTime::from_timestamp(t, 0), "{t}");
            }
        }
        assert_eq!(instants.at(i64::MAX), None);
        assert_eq!(instants.at(i64::MIN), None);
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("valid timestamp")
    }

    fn pos(start: &str, q: &str, version: u64) -> Position {
        Position {
            start: utc(start),
            quantity: Some(q.parse().expect("decimal")),
            quality: Quality::Measured,
            version,
        }
    }

    #[test]
    fn latest_version_wins_regardless_of_order() {
        let a = pos("2026-01-01T00:00:00Z", "1", 1);
        let b = pos("2026-01-01T00:00:00Z", "2", 2);
        let forward = latest_positions(&[a.clone(), b.clone()]).expect("ok");
        let backward = latest_positions(&[b.clone(), a.clone()]).expect("ok");
        assert_eq!(forward, vec![b.clone()]);
        assert_eq!(forward, backward);
    }

    #[test]
    fn conflicting_positions_with_equal_version_are_rejected() {
        let a = pos("2026-01-01T00:00:00Z", "1", 1);
        let b = pos("2026-01-01T00:00:00Z", "2", 1);
        assert!(matches!(
            latest_positions(&[a.clone(), b]),
            Err(InputError::ConflictingPositions { .. })
        ));
        assert!(latest_positions(&[a.clone(), a]).is_ok());
    }

    #[test]
    fn apply_correction_replaces_by_start() {
        let mut stored = vec![
            pos("2026-01-01T00:00:00Z", "1", 1),
            pos("2026-01-01T01:00:00Z", "1", 1),
        ];
        apply_correction(
            &mut stored,
            &[
                pos("2026-01-01T01:00:00Z", "5", 2),
                pos("2026-01-01T02:00:00Z", "3", 2),
            ],
        );
        let quantities: Vec<String> = stored
            .iter()
            .map(|p| p.quantity.unwrap_or_default().to_string())
            .collect();
        assert_eq!(quantities, vec!["1", "5", "3"]);
    }

    #[test]
    fn slots_pad_missing_positions_and_count_ignored() {
        let period = BillingPeriod::new(utc("2025-12-31T23:00:00Z"), utc("2026-01-01T23:00:00Z"))
            .expect("period");
        let supply = [SupplyPeriod {
            from: utc("2025-01-01T00:00:00Z"),
            to: None,
            resolution: Resolution::Pt15m,
        }];
        let positions = [
            pos("2026-01-01T00:00:00Z", "0.25", 0),
            pos("2026-01-01T00:05:00Z", "9", 0),
            pos("2027-01-01T00:00:00Z", "9", 0),
        ];
        let slots = Slots::build(&period, &supply, &positions).expect("slots");
        assert_eq!(slots.slots.len(), 96);
        assert_eq!(slots.ignored, 2);
        let hour = slots.window(utc("2026-01-01T00:00:00Z"), utc("2026-01-01T01:00:00Z"));
        assert_eq!(hour.quantity, "0.25".parse::<Decimal>().expect("decimal"));
        assert_eq!(hour.positions, 4);
        assert_eq!(hour.missing, 3);
        assert!(
            hour.qualities.contains(Quality::Missing) && hour.qualities.contains(Quality::Measured)
        );
        assert!(!hour.qualities.contains(Quality::Estimated));
        // The same window summed slot by slot (a window not made of whole slots takes the loop).
        let day = slots.window(utc("2025-12-31T23:00:00Z"), utc("2026-01-01T23:00:00Z"));
        assert_eq!(
            (day.quantity, day.positions, day.missing),
            (hour.quantity, 96, 95)
        );
        let partial = slots.window(utc("2025-12-31T23:00:00Z"), utc("2026-01-01T00:07:30Z"));
        assert_eq!(
            partial.quantity,
            "0.125".parse::<Decimal>().expect("decimal")
        );
        assert_eq!(partial.positions, 5);
    }

    #[test]
    fn hourly_slot_under_quarter_window_is_split_pro_rata() {
        let period = BillingPeriod::new(utc("2025-12-31T23:00:00Z"), utc("2026-01-01T23:00:00Z"))
            .expect("period");
        let supply = [SupplyPeriod {
            from: period.start(),
            to: None,
            resolution: Resolution::Pt1h,
        }];
        let slots = Slots::build(&period, &supply, &[pos("2026-01-01T00:00:00Z", "0.003", 0)])
            .expect("slots");
        let from = utc("2026-01-01T00:15:00Z");
        let to = utc("2026-01-01T00:30:00Z");
        let quarter = slots.window(from, to);
        assert_eq!(
            quarter.quantity,
            "0.00075".parse::<Decimal>().expect("decimal")
        );
    }

    #[test]
    fn overlapping_supply_periods_are_rejected() {
        let period = BillingPeriod::new(utc("2025-12-31T23:00:00Z"), utc("2026-01-01T23:00:00Z"))
            .expect("period");
        let supply = [
            SupplyPeriod {
                from: period.start(),
                to: Some(utc("2026-01-01T12:00:00Z")),
                resolution: Resolution::Pt1h,
            },
            SupplyPeriod {
                from: utc("2026-01-01T11:00:00Z"),
                to: None,
                resolution: Resolution::Pt15m,
            },
        ];
        assert!(matches!(
            Slots::build(&period, &supply, &[]),
            Err(InputError::OverlappingSupplyPeriods { .. })
        ));
    }

    #[test]
    fn quality_set_serializes_in_fixed_order() {
        let set: QualitySet = [Quality::Measured, Quality::Missing].into_iter().collect();
        let json = serde_json::to_string(&set).expect("json");
        assert_eq!(json, r#"["missing","measured"]"#);
        let back: QualitySet = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, set);
    }
}
