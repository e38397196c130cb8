//! The API's input limits, in one place so the handlers, the OpenAPI
//! document and docs/api.md agree: what a caller may ask in one request, so
//! that no request can make the API or its database do unbounded work.

use chrono::NaiveDate;

use crate::ApiError;

/// Largest request body (bytes): product changes and resolutions are small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Default page size of a listing.
pub const DEFAULT_PAGE_SIZE: i64 = 100;

/// Largest page size of a listing.
pub const MAX_PAGE_SIZE: i64 = 1000;

/// Longest period of metering data at the metering point's own resolution
/// (days): 31 days of quarter-hours is 2,976 values.
pub const MAX_PERIOD_DAYS_AT_RESOLUTION: i64 = 31;

/// Longest period of metering data summed per hour, day or month (days).
pub const MAX_PERIOD_DAYS_AGGREGATED: i64 = 366;

/// A page size from a query: default when absent, 422 outside 1..=[`MAX_PAGE_SIZE`].
pub fn page_size(asked: Option<i64>) -> Result<i64, ApiError> {
    let size = asked.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(ApiError::Unprocessable(format!(
            "page size must be between 1 and {MAX_PAGE_SIZE}, not {size}"
        )));
    }
    Ok(size)
}

/// A grid area: exactly three digits (DataHub's `MeteringGridArea` code), else 400.
pub fn grid_area(text: &str) -> Result<String, ApiError> {
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_string())
    } else {
        Err(ApiError::BadRequest(format!(
            "`{text}` is not a grid area (3 digits)"
        )))
    }
}

/// A period of local days `[from, to)`: `to` after `from` and at most `max_days` long, else 422.
pub fn period(from: NaiveDate, to: NaiveDate, max_days: i64) -> Result<(), ApiError> {
    let days = (to - from).num_days();
    if days <= 0 {
        return Err(ApiError::Unprocessable(format!(
            "the period must end after it starts ({from} .. {to})"
        )));
    }
    if days > max_days {
        return Err(ApiError::Unprocessable(format!(
            "the period has {days} days; at most {max_days} at this resolution"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_areas_are_three_digits() {
        assert!(grid_area("344").is_ok());
        assert!(grid_area("34").is_err());
        assert!(grid_area("3444").is_err());
        assert!(grid_area("34a").is_err());
    }

    #[test]
    fn page_sizes_and_periods_are_bounded() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE_SIZE);
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(MAX_PAGE_SIZE + 1)).is_err());
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        assert!(period(day(1), day(1), 31).is_err());
        assert!(period(day(2), day(1), 31).is_err());
        assert!(period(day(1), day(31), 31).is_ok());
        assert!(period(day(1), day(31), 7).is_err());
    }
}
