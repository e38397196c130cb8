//! The handlers, one module per resource, and the request-id middleware.

pub mod assignments;
pub mod billing;
pub mod completeness;
pub mod customers;
pub mod dead_letters;
pub mod explain;
pub mod health;
pub mod metering_data;
pub mod metering_points;
pub mod operations;
pub mod portfolio;
pub mod portfolio_requests;
pub mod products;
pub mod rates;
pub mod reconciliation;
pub mod replay;
pub mod request_id;
pub mod settlements;

use afregning_cim::Gsrn;
use chrono::NaiveDate;

use crate::ApiError;

/// A GSRN from a path: 18 digits, or a 400 that says so. The check digit is
/// not enforced, as in the pipeline (DataHub's own test GSRNs fail it).
pub(crate) fn parse_gsrn(text: &str) -> Result<String, ApiError> {
    Gsrn::parse(text)
        .map(|gsrn| gsrn.to_string())
        .ok_or_else(|| ApiError::BadRequest(format!("`{text}` is not a GSRN (18 digits)")))
}

/// A billing month from a path, `YYYY-MM`, as the first day of that month
/// (the sinks key months by their first local day).
pub(crate) fn parse_month(text: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 7)
        .ok_or_else(|| ApiError::BadRequest(format!("`{text}` is not a month (YYYY-MM)")))
}

/// A local day from a path, `YYYY-MM-DD`.
pub(crate) fn parse_date(text: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("`{text}` is not a date (YYYY-MM-DD)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_exactly_year_and_month() {
        assert_eq!(
            parse_month("2026-02").unwrap(),
            NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()
        );
        assert!(parse_month("2026-13").is_err());
        assert!(parse_month("2026-2").is_err());
        assert!(parse_month("2026-02-01").is_err());
    }

    #[test]
    fn gsrns_are_18_digits() {
        assert_eq!(
            parse_gsrn("571313180400012345").unwrap(),
            "571313180400012345"
        );
        assert!(parse_gsrn("57131318040001234").is_err());
        assert!(parse_gsrn("57131318040001234x").is_err());
    }

    #[test]
    fn dates_are_iso() {
        assert!(parse_date("2026-03-29").is_ok());
        assert!(parse_date("2026-02-30").is_err());
    }
}
