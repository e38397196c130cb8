//! From topic records to table rows: pure functions, so the arithmetic of
//! positions (PT15M, PT1H, local days and months across DST) is tested
//! without a database.

use std::sync::Arc;

use afregning_topology::records::{Reading, Resolution};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Copenhagen;
use rust_decimal::Decimal;

/// One row of `metering_data`.
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
    /// on arrival order.
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
}
