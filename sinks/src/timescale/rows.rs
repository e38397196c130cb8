//! From topic records to table rows: pure functions, so the arithmetic of
//! positions (PT15M, PT1H, local days and months across DST) is tested
//! without a database.

use std::sync::Arc;

use afregning_topology::records::{Reading, Resolution};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Copenhagen;
use rust_decimal::Decimal;

/// One position's value, as the `metering_data` view shows it: the Rust
/// statement of the view's rules (position starts, which registration wins),
/// which the tests hold the view to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeteringRow {
    /// GSRN, shared by the rows of one reading.
    pub gsrn: Arc<str>,
    /// Start of the position.
    pub ts: DateTime<Utc>,
    /// Resolution code (`PT15M`, ...).
    pub resolution: &'static str,
    /// kWh; `None` when DataHub sent no quantity (missing data stays explicit).
    pub quantity: Option<Decimal>,
    /// Quality code (`A04`, ...).
    pub quality: &'static str,
    /// When the grid company registered the values: a later registration
    /// replaces an earlier one.
    pub registered_at: DateTime<Utc>,
    /// DataHub MessageId of the document.
    pub source_message_id: Arc<str>,
    /// When afregning received it.
    pub received_at: DateTime<Utc>,
}

impl MeteringRow {
    /// Whether this row replaces `other` for the same key: the later
    /// registration wins, ties broken by MessageId so the answer never depends
    /// on arrival order (the view's `ORDER BY ... registered_at DESC,
    /// source_message_id DESC`).
    pub fn supersedes(&self, other: &MeteringRow) -> bool {
        (self.registered_at, &*self.source_message_id)
            > (other.registered_at, &*other.source_message_id)
    }
}

/// A reading that cannot be turned into rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reading of {gsrn} from message {message_id}: {problem}")]
pub struct RowError {
    /// GSRN.
    pub gsrn: String,
    /// DataHub MessageId.
    pub message_id: String,
    /// What is wrong.
    pub problem: String,
}

/// The start of position `position` (1-based) of a series starting at
/// `period_start`. Days and months are Danish calendar days and months, so a
/// P1D series crossing the end of daylight saving time has 25-hour positions.
pub fn position_start(
    resolution: Resolution,
    period_start: DateTime<Utc>,
    position: i32,
) -> Option<DateTime<Utc>> {
    if position < 1 {
        return None;
    }
    let steps = i64::from(position - 1);
    match resolution {
        Resolution::Pt15m => Some(period_start + Duration::minutes(15 * steps)),
        Resolution::Pt1h => Some(period_start + Duration::hours(steps)),
        Resolution::P1d => {
            let first = period_start.with_timezone(&Copenhagen).date_naive();
            local_midnight(first.checked_add_days(chrono::Days::new(steps as u64))?)
        }
        Resolution::P1m => {
            let local = period_start.with_timezone(&Copenhagen).date_naive();
            let first = NaiveDate::from_ymd_opt(local.year(), local.month(), 1)?;
            local_midnight(first.checked_add_months(Months::new(u32::try_from(steps).ok()?))?)
        }
    }
}

fn local_midnight(date: NaiveDate) -> Option<DateTime<Utc>> {
    // Danish midnight always exists (DST changes at 02:00/03:00).
    Copenhagen
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// The rows of one reading: one per position, quantity or not.
pub fn metering_rows(
    reading: &Reading,
    received_at: DateTime<Utc>,
) -> Result<Vec<MeteringRow>, RowError> {
    let gsrn: Arc<str> = Arc::from(reading.gsrn.as_str());
    let message_id: Arc<str> = Arc::from(reading.source_message_id.as_str());
    let error = |problem: String| RowError {
        gsrn: reading.gsrn.clone(),
        message_id: reading.source_message_id.clone(),
        problem,
    };
    reading
        .points
        .iter()
        .map(|point| {
            let ts = position_start(reading.resolution, reading.period_start, point.position)
                .ok_or_else(|| error(format!("position {} has no start time", point.position)))?;
            if ts >= reading.period_end {
                return Err(error(format!(
                    "position {} starts at {ts}, after the period ends at {}",
                    point.position, reading.period_end
                )));
            }
            Ok(MeteringRow {
                gsrn: gsrn.clone(),
                ts,
                resolution: reading.resolution.code(),
                quantity: point.quantity,
                quality: point.quality.code(),
                registered_at: reading.registered_at,
                source_message_id: message_id.clone(),
                received_at,
            })
        })
        .collect()
}

/// One row of `metering_series`: a reading as DataHub sent it, its
/// positions in arrays (decision 0151). Immutable once stored: a correction
/// is another row, and the `metering_data` view picks the latest
/// registration per position ([`MeteringRow::supersedes`]'s order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRow {
    /// GSRN.
    pub gsrn: Arc<str>,
    /// Resolution code (`PT15M`, ...).
    pub resolution: &'static str,
    /// Start of the series' period.
    pub period_start: DateTime<Utc>,
    /// End of the series' period.
    pub period_end: DateTime<Utc>,
    /// DataHub MessageId of the document.
    pub source_message_id: Arc<str>,
    /// When the grid company registered the values.
    pub registered_at: DateTime<Utc>,
    /// When afregning received it.
    pub received_at: DateTime<Utc>,
    /// Element `n - 1` is position `n`'s quantity in kWh; `None` where
    /// DataHub sent none or the series has no position `n`.
    pub quantities: Vec<Option<Decimal>>,
    /// Element `n - 1` is the digit of position `n`'s quality code (4 for
    /// A04); `None` where the series has no position `n`.
    pub qualities: Vec<Option<i16>>,
}

impl SeriesRow {
    /// The positions the series carries (its values).
    pub fn values(&self) -> usize {
        self.qualities.iter().flatten().count()
    }

    /// The primary key of `metering_series`.
    pub fn key(&self) -> (Arc<str>, &'static str, DateTime<Utc>, Arc<str>) {
        (
            self.gsrn.clone(),
            self.resolution,
            self.period_start,
            self.source_message_id.clone(),
        )
    }
}

/// The digit of a quality code: `metering_series.qualities` stores 4 for
/// A04 and the view prefixes `A0` again. Every code of DataHub's list is
/// `A0` and one digit, which the test below holds for the whole list.
fn quality_digit(code: &str) -> Option<i16> {
    match code.as_bytes() {
        [b'A', b'0', digit @ b'1'..=b'9'] => Some(i16::from(digit - b'0')),
        _ => None,
    }
}

/// A reading as one `metering_series` row, with the same checks as
/// [`metering_rows`]: every position has a start inside the period. Of two
/// points with the same position the first is kept, as the per-position rows
/// keep the first of two equal registrations.
pub fn series_row(reading: &Reading, received_at: DateTime<Utc>) -> Result<SeriesRow, RowError> {
    let rows = metering_rows(reading, received_at)?;
    let error = |problem: String| RowError {
        gsrn: reading.gsrn.clone(),
        message_id: reading.source_message_id.clone(),
        problem,
    };
    let last = reading.points.iter().map(|p| p.position).max().unwrap_or(0);
    let length = usize::try_from(last).unwrap_or(0);
    let mut quantities = vec![None; length];
    let mut qualities: Vec<Option<i16>> = vec![None; length];
    for (point, row) in reading.points.iter().zip(&rows) {
        let index =
            usize::try_from(point.position - 1).expect("metering_rows checked position >= 1");
        if qualities[index].is_some() {
            continue;
        }
        let digit = quality_digit(row.quality)
            .ok_or_else(|| error(format!("quality {} is not an A0n code", row.quality)))?;
        qualities[index] = Some(digit);
        quantities[index] = row.quantity;
    }
    Ok(SeriesRow {
        gsrn: Arc::from(reading.gsrn.as_str()),
        resolution: reading.resolution.code(),
        period_start: reading.period_start,
        period_end: reading.period_end,
        source_message_id: Arc::from(reading.source_message_id.as_str()),
        registered_at: reading.registered_at,
        received_at,
        quantities,
        qualities,
    })
}

#[cfg(test)]
mod tests {
    use afregning_topology::records::examples;

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn quarter_hours_and_hours_count_from_the_period_start() {
        let start = utc(2026, 10, 24, 22, 0);
        assert_eq!(position_start(Resolution::Pt15m, start, 1), Some(start));
        assert_eq!(
            position_start(Resolution::Pt15m, start, 96),
            Some(utc(2026, 10, 25, 21, 45))
        );
        // The DST day of 25 October 2026 has 100 quarter hours; position 100
        // starts at 22:45 UTC, 23:45 local.
        assert_eq!(
            position_start(Resolution::Pt15m, start, 100),
            Some(utc(2026, 10, 25, 22, 45))
        );
        assert_eq!(
            position_start(Resolution::Pt1h, start, 25),
            Some(utc(2026, 10, 25, 22, 0))
        );
        assert_eq!(position_start(Resolution::Pt1h, start, 0), None);
    }

    #[test]
    fn days_and_months_are_danish_calendar_days_and_months() {
        // Local 24 and 25 October 2026 start at 22:00 UTC (CEST); DST ends
        // on the 25th, so 26 October starts at 23:00 UTC (CET).
        let start = utc(2026, 10, 23, 22, 0);
        assert_eq!(
            position_start(Resolution::P1d, start, 2),
            Some(utc(2026, 10, 24, 22, 0))
        );
        assert_eq!(
            position_start(Resolution::P1d, start, 3),
            Some(utc(2026, 10, 25, 23, 0))
        );
        let month = utc(2026, 9, 30, 22, 0); // 1 October local
        assert_eq!(
            position_start(Resolution::P1m, month, 2),
            Some(utc(2026, 10, 31, 23, 0))
        );
        assert_eq!(
            position_start(Resolution::P1m, month, 4),
            Some(utc(2026, 12, 31, 23, 0))
        );
    }

    #[test]
    fn a_reading_becomes_one_row_per_position_with_missing_quantities_kept() {
        let reading = examples::reading();
        let received = utc(2026, 10, 16, 3, 13);
        let rows = metering_rows(&reading, received).unwrap();
        assert_eq!(rows.len(), 24);
        assert_eq!(rows[0].ts, reading.period_start);
        assert_eq!(rows[23].ts, utc(2026, 10, 15, 21, 0));
        assert_eq!(rows[5].quantity, None);
        assert_eq!(rows[5].quality, "A02");
        assert_eq!(rows[6].quality, "A03");
        assert_eq!(rows[0].resolution, "PT1H");
        assert_eq!(&*rows[0].gsrn, examples::GSRN);
        assert_eq!(&*rows[0].source_message_id, examples::MESSAGE_ID);
        assert!(rows.iter().all(|r| r.received_at == received));
    }

    #[test]
    fn a_position_beyond_the_period_is_refused() {
        let mut reading = examples::reading();
        reading.points[23].position = 25;
        let error = metering_rows(&reading, utc(2026, 10, 16, 0, 0)).unwrap_err();
        assert!(error.problem.contains("after the period ends"), "{error}");
    }

    #[test]
    fn a_later_registration_supersedes_and_ties_break_by_message_id() {
        let reading = examples::reading();
        let rows = metering_rows(&reading, utc(2026, 10, 16, 0, 0)).unwrap();
        let mut later = rows[0].clone();
        later.registered_at += Duration::hours(1);
        assert!(later.supersedes(&rows[0]));
        assert!(!rows[0].supersedes(&later));
        assert!(!rows[0].supersedes(&rows[0]), "a replay supersedes nothing");
        let mut other_message = rows[0].clone();
        other_message.source_message_id = Arc::from("ffff");
        assert!(other_message.supersedes(&rows[0]));
    }

    #[test]
    fn a_reading_becomes_one_series_row_with_positions_as_array_elements() {
        let reading = examples::reading();
        let received = utc(2026, 10, 16, 3, 13);
        let series = series_row(&reading, received).unwrap();
        let rows = metering_rows(&reading, received).unwrap();
        assert_eq!(series.values(), 24);
        assert_eq!(series.quantities.len(), 24);
        for (n, row) in rows.iter().enumerate() {
            assert_eq!(series.quantities[n], row.quantity);
            assert_eq!(
                series.qualities[n].map(|d| format!("A0{d}")).as_deref(),
                Some(row.quality)
            );
        }
        assert_eq!(series.quantities[5], None, "missing quantity kept as NULL");
        assert_eq!(series.qualities[5], Some(2));
        assert_eq!(series.period_start, reading.period_start);
        assert_eq!(series.period_end, reading.period_end);
    }

    #[test]
    fn a_gap_in_the_positions_is_an_absent_element_and_bad_positions_are_refused() {
        let mut reading = examples::reading();
        reading.points.remove(3); // position 4
        let series = series_row(&reading, utc(2026, 10, 16, 0, 0)).unwrap();
        assert_eq!(series.values(), 23);
        assert_eq!(series.qualities[3], None);
        assert_eq!(series.quantities[3], None);
        reading.points[0].position = 0;
        assert!(series_row(&reading, utc(2026, 10, 16, 0, 0)).is_err());
    }

    #[test]
    fn every_quality_code_is_a0_and_a_digit() {
        use afregning_topology::records::Quality;
        for quality in [
            Quality::Adjusted,
            Quality::NotAvailable,
            Quality::Estimated,
            Quality::AsProvided,
            Quality::Incomplete,
            Quality::Calculated,
        ] {
            let digit = quality_digit(quality.code()).unwrap();
            assert_eq!(format!("A0{digit}"), quality.code());
        }
        assert_eq!(quality_digit("B01"), None);
        assert_eq!(quality_digit("A0"), None);
    }
}
