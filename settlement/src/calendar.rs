//! The Danish calendar: local days, hours and billing months in Europe/Copenhagen.
//!
//! Instants are UTC everywhere in afregning; only the *boundaries* of tariff
//! hours, days and billing months are local. DataHub, Energinet's wholesale
//! calculation and the grid companies' price lists all count days and months
//! in Europe/Copenhagen, so a day has 23, 24 or 25 hours (92, 96 or 100
//! quarter-hours) and a month has its calendar number of days even when it
//! contains a DST switch.

use std::fmt;

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Europe::Copenhagen;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The time zone in which tariff hours, days and billing months are defined.
pub const TIME_ZONE: Tz = Copenhagen;

/// Why a period or month cannot be used for settlement.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CalendarError {
    /// A period boundary is not a local midnight, so days cannot be counted the way Energinet counts them.
    #[error("{0} is not midnight in Europe/Copenhagen")]
    NotLocalMidnight(DateTime<Utc>),
    /// The period is empty or runs backwards.
    #[error("period start {start} is not before its end {end}")]
    EmptyPeriod {
        /// Start of the rejected period.
        start: DateTime<Utc>,
        /// End of the rejected period.
        end: DateTime<Utc>,
    },
    /// The month number is not 1..=12 or the year is out of chrono's range.
    #[error("{year}-{month} is not a calendar month")]
    InvalidMonth {
        /// The rejected year.
        year: i32,
        /// The rejected month number.
        month: u32,
    },
}

/// Converts a local wall-clock time to UTC.
///
/// On the autumn DST day the repeated hour is ambiguous; the earlier instant is
/// chosen, as Spark's `to_utc_timestamp` does. In the spring gap there is no
/// such local time; the instant one hour later is used. Neither case occurs at
/// midnight in Denmark, so day and month boundaries are always exact.
pub fn local_to_utc(local: NaiveDateTime) -> DateTime<Utc> {
    match TIME_ZONE.from_local_datetime(&local).earliest() {
        Some(time) => time.with_timezone(&Utc),
        None => match TIME_ZONE
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest()
        {
            Some(time) => time.with_timezone(&Utc),
            // Unreachable for Europe/Copenhagen (gaps are one hour); keep the function total.
            None => Utc.from_utc_datetime(&local),
        },
    }
}

/// The local wall-clock time of an instant.
pub fn utc_to_local(instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&TIME_ZONE).naive_local()
}

/// The UTC instant at which a local day starts (local midnight).
pub fn local_midnight(date: NaiveDate) -> DateTime<Utc> {
    local_to_utc(date.and_time(NaiveTime::MIN))
}

/// UTC bounds `[start, end)` of a local day; the aggregate processor keys its state on these.
pub fn local_day_bounds(date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = date.succ_opt().unwrap_or(date);
    (local_midnight(date), local_midnight(next))
}

/// The local calendar day an instant belongs to.
pub fn local_date(instant: DateTime<Utc>) -> NaiveDate {
    utc_to_local(instant).date()
}

/// The local wall-clock hour (0..=23) of an instant; tariff hours are defined on it.
///
/// On the 25-hour day both 02:00–03:00 hours return 2, which is why the
/// repeated hour gets `Price3` twice in a DataHub price list.
pub fn local_hour(instant: DateTime<Utc>) -> u32 {
    utc_to_local(instant).hour()
}

/// Number of hours in a local day: 23 on the spring DST day, 25 in autumn, else 24.
pub fn hours_in_local_day(date: NaiveDate) -> u32 {
    let (start, end) = local_day_bounds(date);
    u32::try_from((end - start).num_hours()).unwrap_or(24)
}

/// Number of quarter-hours in a local day: 92, 96 or 100.
pub fn quarter_hours_in_local_day(date: NaiveDate) -> u32 {
    hours_in_local_day(date) * 4
}

/// Whether an instant is a local midnight.
pub fn is_local_midnight(instant: DateTime<Utc>) -> bool {
    local_midnight(local_date(instant)) == instant
}

/// The start of the UTC hour containing an instant (spot PT1H prices and hourly tariffs are UTC-hour aligned).
pub fn floor_hour(instant: DateTime<Utc>) -> DateTime<Utc> {
    let seconds = instant.timestamp();
    let floored = seconds - seconds.rem_euclid(3600);
    DateTime::from_timestamp(floored, 0).unwrap_or(instant)
}

/// A billing month: a calendar month in Europe/Copenhagen.
///
/// Every invoice line belongs to exactly one billing month; the month of an
/// instant is decided by its local date, so 2026-01-31T23:30Z is February.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BillingMonth {
    /// Calendar year.
    pub year: i32,
    /// Month number 1..=12.
    pub month: u32,
}

impl BillingMonth {
    /// A billing month, checked so that later arithmetic cannot fail.
    pub fn new(year: i32, month: u32) -> Result<Self, CalendarError> {
        if NaiveDate::from_ymd_opt(year, month, 1).is_none()
            || NaiveDate::from_ymd_opt(year + 1, 1, 1).is_none()
        {
            return Err(CalendarError::InvalidMonth { year, month });
        }
        Ok(Self { year, month })
    }

    /// The billing month that contains an instant.
    pub fn of(instant: DateTime<Utc>) -> Self {
        let date = local_date(instant);
        Self {
            year: date.year(),
            month: date.month(),
        }
    }

    /// First local day of the month.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// The following month.
    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// UTC instant of the month's first local midnight.
    pub fn start(self) -> DateTime<Utc> {
        local_midnight(self.first_day())
    }

    /// UTC instant of the next month's first local midnight (exclusive end).
    pub fn end(self) -> DateTime<Utc> {
        self.next().start()
    }

    /// Number of calendar days; the divisor of a monthly subscription's daily price.
    pub fn days(self) -> u32 {
        let days = self.next().first_day() - self.first_day();
        u32::try_from(days.num_days()).unwrap_or(0)
    }

    /// The month as a settlement period.
    pub fn period(self) -> BillingPeriod {
        BillingPeriod {
            start: self.start(),
            end: self.end(),
        }
    }
}

impl fmt::Display for BillingMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The period a statement covers: `[start, end)` between two local midnights.
///
/// Normally a billing month ([`BillingMonth::period`]). Energinet's scenario
/// tests use periods of a few days, and the daily price of a subscription is
/// its monthly price divided by the number of local days *in this period*
/// (opengeh-wholesale `subscription_calculators.py`), so the period is explicit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawPeriod", into = "RawPeriod")]
pub struct BillingPeriod {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct RawPeriod {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl TryFrom<RawPeriod> for BillingPeriod {
    type Error = CalendarError;
    fn try_from(raw: RawPeriod) -> Result<Self, Self::Error> {
        Self::new(raw.start, raw.end)
    }
}

impl From<BillingPeriod> for RawPeriod {
    fn from(period: BillingPeriod) -> Self {
        Self {
            start: period.start,
            end: period.end,
        }
    }
}

impl BillingPeriod {
    /// A period between two local midnights; anything else is rejected because its days could not be counted.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, CalendarError> {
        if start >= end {
            return Err(CalendarError::EmptyPeriod { start, end });
        }
        for bound in [start, end] {
            if !is_local_midnight(bound) {
                return Err(CalendarError::NotLocalMidnight(bound));
            }
        }
        Ok(Self { start, end })
    }

    /// A period covering whole local days from `first` to `last` inclusive.
    pub fn days_from(first: NaiveDate, last: NaiveDate) -> Result<Self, CalendarError> {
        let (start, _) = local_day_bounds(first);
        let (_, end) = local_day_bounds(last);
        Self::new(start, end)
    }

    /// Inclusive start.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// Exclusive end.
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// Number of local calendar days (wall-clock difference, as Energinet's `get_number_of_days_in_period`).
    pub fn days(&self) -> u32 {
        let days = local_date(self.end) - local_date(self.start);
        u32::try_from(days.num_days()).unwrap_or(0)
    }

    /// Whether an instant falls in `[start, end)`.
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.start <= instant && instant < self.end
    }

    /// The local days of the period with their UTC bounds.
    pub fn local_days(
        &self,
    ) -> impl Iterator<Item = (NaiveDate, DateTime<Utc>, DateTime<Utc>)> + '_ {
        let first = local_date(self.start);
        (0..self.days()).filter_map(move |offset| {
            let date = first.checked_add_days(chrono::Days::new(u64::from(offset)))?;
            let (start, end) = local_day_bounds(date);
            Some((date, start, end))
        })
    }
}

/// The local midnights of a billing period, computed once so that the
/// per-charge-time checks do not convert time zones.
#[derive(Debug, Clone)]
pub(crate) struct DayGrid {
    /// Local midnights from the period start to its end, inclusive.
    midnights: Vec<DateTime<Utc>>,
}

impl DayGrid {
    pub fn new(period: &BillingPeriod) -> Self {
        let mut midnights: Vec<DateTime<Utc>> =
            period.local_days().map(|(_, start, _)| start).collect();
        midnights.push(period.end());
        Self { midnights }
    }

    /// The local days (start, end) that start inside `window`.
    pub fn days_in(
        &self,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        self.midnights
            .windows(2)
            .map(|pair| (pair[0], pair[1]))
            .filter(move |(start, _)| window.0 <= *start && *start < window.1)
    }

    /// Whether an instant is a local midnight.
    pub fn is_midnight(&self, instant: DateTime<Utc>) -> bool {
        match self.midnights.binary_search(&instant) {
            Ok(_) => true,
            Err(i) if i == 0 || i == self.midnights.len() => is_local_midnight(instant),
            Err(_) => false,
        }
    }

    /// The first local midnight after an instant.
    pub fn next_midnight(&self, instant: DateTime<Utc>) -> DateTime<Utc> {
        let i = self.midnights.partition_point(|m| *m <= instant);
        match self.midnights.get(i) {
            Some(next) if i > 0 => *next,
            _ => local_day_bounds(local_date(instant)).1,
        }
    }
}

/// Steps a local wall-clock time by whole days and converts each back to UTC.
///
/// This is how Energinet explodes daily and monthly charges into charge times
/// (`explode_charge_price_information_within_periods.py`): a Spark `sequence`
/// over local times, inclusive of the end, then `to_utc_timestamp`, then
/// dropping times at or after `to`.
pub(crate) fn local_daily_steps(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut times = Vec::new();
    let start_local = utc_to_local(from);
    let end_local = utc_to_local(to);
    let mut local = start_local;
    while local <= end_local {
        let utc = local_to_utc(local);
        if utc < to {
            times.push(utc);
        }
        local += Duration::days(1);
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("valid timestamp")
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    #[test]
    fn dst_days_of_2025_and_2026_have_92_and_100_quarter_hours() {
        // Spring forward: last Sunday of March; fall back: last Sunday of October.
        assert_eq!(quarter_hours_in_local_day(date(2025, 3, 30)), 92);
        assert_eq!(quarter_hours_in_local_day(date(2025, 10, 26)), 100);
        assert_eq!(quarter_hours_in_local_day(date(2026, 3, 29)), 92);
        assert_eq!(quarter_hours_in_local_day(date(2026, 10, 25)), 100);
        assert_eq!(quarter_hours_in_local_day(date(2026, 3, 28)), 96);
        assert_eq!(hours_in_local_day(date(2025, 3, 30)), 23);
        assert_eq!(hours_in_local_day(date(2026, 10, 25)), 25);
    }

    #[test]
    fn local_day_bounds_follow_the_offset_change() {
        assert_eq!(
            local_day_bounds(date(2025, 3, 30)),
            (utc("2025-03-29T23:00:00Z"), utc("2025-03-30T22:00:00Z"))
        );
        assert_eq!(
            local_day_bounds(date(2026, 10, 25)),
            (utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"))
        );
    }

    #[test]
    fn repeated_autumn_hour_is_local_hour_two_twice() {
        assert_eq!(local_hour(utc("2026-10-25T00:00:00Z")), 2);
        assert_eq!(local_hour(utc("2026-10-25T01:00:00Z")), 2);
        assert_eq!(local_hour(utc("2026-10-25T02:00:00Z")), 3);
        // Spring: 01:00Z is 03:00 local, local 02:00 does not exist.
        assert_eq!(local_hour(utc("2026-03-29T00:00:00Z")), 1);
        assert_eq!(local_hour(utc("2026-03-29T01:00:00Z")), 3);
    }

    #[test]
    fn billing_month_is_decided_by_local_date() {
        assert_eq!(
            BillingMonth::of(utc("2026-01-31T23:30:00Z")),
            BillingMonth {
                year: 2026,
                month: 2
            }
        );
        assert_eq!(
            BillingMonth::of(utc("2026-01-31T22:59:59Z")),
            BillingMonth {
                year: 2026,
                month: 1
            }
        );
        let march = BillingMonth::new(2026, 3).expect("month");
        assert_eq!(march.days(), 31);
        assert_eq!(march.start(), utc("2026-02-28T23:00:00Z"));
        assert_eq!(march.end(), utc("2026-03-31T22:00:00Z"));
        assert_eq!(march.period().days(), 31);
        assert_eq!(
            BillingMonth::new(2026, 12).expect("month").next(),
            BillingMonth {
                year: 2027,
                month: 1
            }
        );
        assert!(BillingMonth::new(2026, 13).is_err());
    }

    #[test]
    fn period_rejects_non_midnight_bounds() {
        assert!(
            BillingPeriod::new(utc("2026-01-01T00:00:00Z"), utc("2026-01-31T23:00:00Z")).is_err()
        );
        assert!(
            BillingPeriod::new(utc("2025-12-31T23:00:00Z"), utc("2025-12-31T23:00:00Z")).is_err()
        );
        let period = BillingPeriod::new(utc("2023-01-31T23:00:00Z"), utc("2023-02-03T23:00:00Z"))
            .expect("period");
        assert_eq!(period.days(), 3);
        assert_eq!(period.local_days().count(), 3);
    }

    #[test]
    fn daily_steps_follow_local_midnight_across_dst() {
        let steps = local_daily_steps(utc("2026-03-27T23:00:00Z"), utc("2026-03-30T22:00:00Z"));
        assert_eq!(
            steps,
            vec![
                utc("2026-03-27T23:00:00Z"),
                utc("2026-03-28T23:00:00Z"),
                utc("2026-03-29T22:00:00Z")
            ]
        );
    }

    #[test]
    fn day_grid_agrees_with_the_time_zone_functions() {
        let period = BillingMonth::new(2026, 10).expect("month").period();
        let grid = DayGrid::new(&period);
        let mut t = period.start() - Duration::hours(3);
        while t < period.end() + Duration::hours(3) {
            assert_eq!(grid.is_midnight(t), is_local_midnight(t), "{t}");
            assert_eq!(
                grid.next_midnight(t),
                local_day_bounds(local_date(t)).1,
                "{t}"
            );
            t += Duration::minutes(30);
        }
    }

    #[test]
    fn floor_hour_truncates_to_the_utc_hour() {
        assert_eq!(
            floor_hour(utc("2025-11-04T12:45:00Z")),
            utc("2025-11-04T12:00:00Z")
        );
    }
}
