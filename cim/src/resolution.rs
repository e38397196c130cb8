//! Resolution of a period, and the time of each position in it.
//!
//! PT15M and PT1H are fixed UTC durations, so a spring-forward day has 92/23 positions and a
//! fall-back day 100/25. P1D and P1M step from Danish local midnight to Danish local midnight
//! (Europe/Copenhagen), as DataHub's period factory does: 2024-03-30T23:00Z + P1D =
//! 2024-03-31T22:00Z.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Europe::Copenhagen;
use serde::Deserializer;

use crate::de::{At, Read, read_str};
use crate::ser::{JsonWriter, Write};

/// The resolutions a DDQ receives time series in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    /// `PT15M`: quarter-hourly metered data (the norm since 2023).
    QuarterHour,
    /// `PT1H`: hourly metered data, hourly prices.
    Hour,
    /// `P1D`: daily prices and sums.
    Day,
    /// `P1M`: monthly prices (subscriptions, fees) and monthly sums.
    Month,
}

/// Why a period cannot be laid out in a resolution (business-invalid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PeriodError(pub String);

impl Resolution {
    /// Every resolution, for generators and tests.
    pub const ALL: [Resolution; 4] = [Self::QuarterHour, Self::Hour, Self::Day, Self::Month];

    /// Parses the ISO 8601 duration DataHub writes.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "PT15M" => Some(Self::QuarterHour),
            "PT1H" => Some(Self::Hour),
            "P1D" => Some(Self::Day),
            "P1M" => Some(Self::Month),
            _ => None,
        }
    }

    /// The ISO 8601 duration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QuarterHour => "PT15M",
            Self::Hour => "PT1H",
            Self::Day => "P1D",
            Self::Month => "P1M",
        }
    }

    fn fixed_minutes(self) -> Option<i64> {
        match self {
            Self::QuarterHour => Some(15),
            Self::Hour => Some(60),
            Self::Day | Self::Month => None,
        }
    }

    /// The number of positions in `[start, end)`, or why the period does not fit the
    /// resolution (end not after start, a boundary off the grid, a partial last step).
    pub fn positions(self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<u32, PeriodError> {
        if end <= start {
            return Err(PeriodError(format!(
                "period end {end} is not after its start {start}"
            )));
        }
        let count: i64 = match self.fixed_minutes() {
            Some(step) => {
                for (name, t) in [("start", start), ("end", end)] {
                    if t.second() != 0 || t.nanosecond() != 0 || i64::from(t.minute()) % step != 0 {
                        return Err(PeriodError(format!(
                            "period {name} {t} is not on the {} grid",
                            self.as_str()
                        )));
                    }
                }
                (end - start).num_minutes() / step
            }
            None => {
                let first = local_midnight_date(start, self).ok_or_else(|| {
                    PeriodError(format!(
                        "period start {start} is not a Danish local midnight{}",
                        self.month_suffix()
                    ))
                })?;
                let last = local_midnight_date(end, self).ok_or_else(|| {
                    PeriodError(format!(
                        "period end {end} is not a Danish local midnight{}",
                        self.month_suffix()
                    ))
                })?;
                if self == Self::Day {
                    (last - first).num_days()
                } else {
                    i64::from(last.year() - first.year()) * 12 + i64::from(last.month())
                        - i64::from(first.month())
                }
            }
        };
        u32::try_from(count)
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| PeriodError(format!("period has an unusable length ({count} steps)")))
    }

    fn month_suffix(self) -> &'static str {
        if self == Self::Month {
            " on the first of a month"
        } else {
            ""
        }
    }

    /// The UTC start of 1-based `position` in a period that starts at `start`; `None` for
    /// position 0 or a time outside chrono's range.
    pub fn position_start(self, start: DateTime<Utc>, position: u32) -> Option<DateTime<Utc>> {
        let steps = position.checked_sub(1)?;
        match self.fixed_minutes() {
            Some(step) => start.checked_add_signed(Duration::minutes(step * i64::from(steps))),
            None => {
                let local = start.with_timezone(&Copenhagen).date_naive();
                let date = if self == Self::Day {
                    local.checked_add_signed(Duration::days(i64::from(steps)))?
                } else {
                    local.checked_add_months(Months::new(steps))?
                };
                local_midnight_utc(date)
            }
        }
    }

    /// The UTC end of 1-based `position` (the start of the next one).
    pub fn position_end(self, start: DateTime<Utc>, position: u32) -> Option<DateTime<Utc>> {
        self.position_start(start, position.checked_add(1)?)
    }
}

/// The Danish local date of `t` when `t` is a Danish local midnight (and, for months, the
/// first of the month).
fn local_midnight_date(t: DateTime<Utc>, resolution: Resolution) -> Option<NaiveDate> {
    let local = t.with_timezone(&Copenhagen);
    let midnight = local.hour() == 0 && local.minute() == 0 && local.second() == 0;
    let first_of_month = resolution != Resolution::Month || local.day() == 1;
    (midnight && first_of_month && t.nanosecond() == 0).then(|| local.date_naive())
}

/// UTC instant of Danish local midnight starting `date` (never ambiguous: DST switches at 02:00).
pub fn local_midnight_utc(date: NaiveDate) -> Option<DateTime<Utc>> {
    Copenhagen
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Resolution {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `resolution` is a bare ISO 8601 duration. One that does not match the schema's duration
/// pattern is a schema violation; a valid duration other than the four is business-invalid.
impl<'de> Read<'de> for Resolution {
    fn read<D: Deserializer<'de>>(de: D, at: At<'_>) -> Result<Self, D::Error> {
        let text = read_str(de)?;
        if let Some(resolution) = Self::parse(&text) {
            return Ok(resolution);
        }
        if is_iso_duration(&text) {
            Err(at.business(format!(
                "resolution `{text}` is not supported (expected PT15M, PT1H, P1D or P1M)"
            )))
        } else {
            Err(at.schema(format!("`{text}` is not an ISO 8601 duration")))
        }
    }
}

impl Write for Resolution {
    fn write(&self, w: &mut JsonWriter) {
        w.string(self.as_str());
    }
}

/// Any ISO 8601 duration the schemas' pattern allows, kept as written (RSM-017 requests).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct IsoDuration(String);

impl IsoDuration {
    /// The duration if it matches the schema pattern.
    pub fn parse(text: &str) -> Option<Self> {
        is_iso_duration(text).then(|| Self(text.to_owned()))
    }

    /// The duration as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Resolution> for IsoDuration {
    fn from(r: Resolution) -> Self {
        Self(r.as_str().to_owned())
    }
}

impl<'de> Read<'de> for IsoDuration {
    fn read<D: Deserializer<'de>>(de: D, at: At<'_>) -> Result<Self, D::Error> {
        let text = read_str(de)?;
        Self::parse(&text).ok_or_else(|| at.schema(format!("`{text}` is not an ISO 8601 duration")))
    }
}

impl Write for IsoDuration {
    fn write(&self, w: &mut JsonWriter) {
        w.string(&self.0);
    }
}

/// The schema's duration pattern `^-?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+[DW])?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$`.
fn is_iso_duration(text: &str) -> bool {
    let rest = text.strip_prefix('-').unwrap_or(text);
    let Some(rest) = rest.strip_prefix('P') else {
        return false;
    };
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let starts_ok = rest.starts_with(|c: char| c.is_ascii_digit())
        || (date.is_empty() && time.is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit())));
    starts_ok
        && units_in_order(date, &["Y", "M", "DW"], false)
        && time.is_none_or(|t| units_in_order(t, &["H", "M", "S"], true))
}

fn units_in_order(mut text: &str, units: &[&str], fraction_on_last: bool) -> bool {
    let mut next = 0;
    while !text.is_empty() {
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let mut len = digits;
        if fraction_on_last && text.as_bytes().get(len) == Some(&b'.') {
            let frac = text
                .bytes()
                .skip(len + 1)
                .take_while(u8::is_ascii_digit)
                .count();
            if frac == 0 {
                return false;
            }
            len += 1 + frac;
            if text.as_bytes().get(len) != Some(&b'S') {
                return false;
            }
        }
        let Some(unit) = text.get(len..len + 1) else {
            return false;
        };
        if digits == 0 {
            return false;
        }
        match units.iter().skip(next).position(|u| u.contains(unit)) {
            Some(offset) => next += offset + 1,
            None => return false,
        }
        text = text.get(len + 1..).unwrap_or("");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        crate::scalar::parse_minute(s).expect("minute timestamp")
    }

    #[test]
    fn dst_days_have_23_and_25_hours() {
        let spring = (t("2024-03-30T23:00Z"), t("2024-03-31T22:00Z"));
        let autumn = (t("2021-10-30T22:00Z"), t("2021-10-31T23:00Z"));
        assert_eq!(Resolution::Hour.positions(spring.0, spring.1), Ok(23));
        assert_eq!(
            Resolution::QuarterHour.positions(spring.0, spring.1),
            Ok(92)
        );
        assert_eq!(Resolution::Hour.positions(autumn.0, autumn.1), Ok(25));
        assert_eq!(
            Resolution::QuarterHour.positions(autumn.0, autumn.1),
            Ok(100)
        );
        assert_eq!(Resolution::Day.positions(spring.0, spring.1), Ok(1));
        assert_eq!(Resolution::Day.positions(autumn.0, autumn.1), Ok(1));
    }

    #[test]
    fn daily_and_monthly_steps_follow_danish_midnight() {
        let start = t("2024-03-30T23:00Z");
        assert_eq!(
            Resolution::Day.position_start(start, 2),
            Some(t("2024-03-31T22:00Z"))
        );
        assert_eq!(
            Resolution::Day.position_end(start, 1),
            Some(t("2024-03-31T22:00Z"))
        );
        let jan = t("2023-12-31T23:00Z");
        assert_eq!(
            Resolution::Month.position_start(jan, 4),
            Some(t("2024-03-31T22:00Z"))
        );
        assert_eq!(
            Resolution::Month.positions(jan, t("2024-12-31T23:00Z")),
            Ok(12)
        );
        assert!(
            Resolution::Month
                .positions(t("2024-01-14T23:00Z"), t("2024-02-29T23:00Z"))
                .is_err()
        );
        assert!(
            Resolution::Day
                .positions(t("2024-03-30T22:00Z"), t("2024-03-31T22:00Z"))
                .is_err()
        );
        assert_eq!(
            Resolution::QuarterHour.position_start(t("2024-03-30T23:00Z"), 92),
            Some(t("2024-03-31T21:45Z"))
        );
        assert_eq!(Resolution::Hour.position_start(start, 0), None);
    }

    #[test]
    fn periods_must_be_whole_steps() {
        assert!(
            Resolution::Hour
                .positions(t("2024-06-28T22:00Z"), t("2024-06-28T22:30Z"))
                .is_err()
        );
        assert!(
            Resolution::QuarterHour
                .positions(t("2024-06-28T22:05Z"), t("2024-06-28T23:00Z"))
                .is_err()
        );
        assert!(
            Resolution::Hour
                .positions(t("2024-06-28T22:00Z"), t("2024-06-28T22:00Z"))
                .is_err()
        );
    }

    #[test]
    fn duration_pattern_matches_the_schema() {
        for ok in [
            "PT15M", "P1Y", "P1Y2M", "PT1M", "-P1D", "P1W", "PT1.5S", "P1DT2H", "P1DT",
        ] {
            assert!(is_iso_duration(ok), "{ok}");
        }
        for bad in ["P", "PT", "15M", "P1H", "PT1D", "P1M1Y", "PT1.S", ""] {
            assert!(!is_iso_duration(bad), "{bad}");
        }
    }
}
