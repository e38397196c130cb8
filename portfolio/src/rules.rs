//! DataHub's date rules, checked before a request is sent so DataHub need not reject it.
//! Every number names its source (NOTES §2.12; `docs/portfolio.md` §Rules).

use chrono::{Duration, Months, NaiveDate};

use crate::calendar::{working_days_before, working_days_between};
use crate::reason::{Rejection, codes};

/// End of supply: notified at the earliest 60 calendar days before the desired day
/// (Forskrift H1 ch. 7).
pub const END_OF_SUPPLY_EARLIEST_CALENDAR_DAYS: i64 = 60;
/// End of supply: notified at the latest 3 working days before the desired day (H1 ch. 7).
pub const END_OF_SUPPLY_LATEST_WORKING_DAYS: u32 = 3;
/// Move-in: reported up to 5 working days after its day (Forsyningstilsynet's 2020 decision on
/// H1; 15 before 2021).
pub const MOVE_IN_LATE_WORKING_DAYS: u32 = 5;
/// Move-in: at the earliest 2 months ahead ("tidligst 2 måneder før", Ørsted; secondary).
pub const MOVE_IN_EARLIEST_MONTHS: u32 = 2;
/// BRS-003/BRS-011: a correction within 60 Danish calendar days of the corrected day (GF BFF
/// `MeteringPointProcessNode.cs`, 2026).
pub const CORRECTION_WINDOW_CALENDAR_DAYS: i64 = 60;

fn wrong_period(text: String) -> Rejection {
    Rejection::new(codes::WRONG_TIME_PERIOD, text)
}

/// BRS-001: a change of supplier takes effect the next day at the earliest (H1 since
/// 2021-01-01, "leverandørskift til næste dag"). No earliest notice is enforced: its value
/// is unverified (NOTES §2.1).
pub fn change_of_supplier(today: NaiveDate, effective: NaiveDate) -> Result<(), Rejection> {
    if effective <= today {
        return Err(wrong_period(format!(
            "Startdato {effective} er ikke korrekt: a change of supplier takes effect the next day ({}) at the earliest",
            today + Duration::days(1)
        )));
    }
    Ok(())
}

/// BRS-002: earliest 60 calendar days, latest 3 working days before the desired day.
pub fn end_of_supply(today: NaiveDate, effective: NaiveDate) -> Result<(), Rejection> {
    if (effective - today).num_days() > END_OF_SUPPLY_EARLIEST_CALENDAR_DAYS {
        return Err(wrong_period(format!(
            "end of supply on {effective} is more than {END_OF_SUPPLY_EARLIEST_CALENDAR_DAYS} calendar days ahead"
        )));
    }
    if working_days_between(today, effective) < END_OF_SUPPLY_LATEST_WORKING_DAYS {
        return Err(wrong_period(format!(
            "end of supply on {effective} must be requested at least {END_OF_SUPPLY_LATEST_WORKING_DAYS} working days ahead"
        )));
    }
    Ok(())
}

/// BRS-009: from 5 working days late to 2 months ahead.
pub fn move_in(today: NaiveDate, effective: NaiveDate) -> Result<(), Rejection> {
    let earliest_day = working_days_before(today, MOVE_IN_LATE_WORKING_DAYS);
    if effective < earliest_day {
        return Err(wrong_period(format!(
            "move-in on {effective} is more than {MOVE_IN_LATE_WORKING_DAYS} working days late (earliest {earliest_day})"
        )));
    }
    let latest_day = today + Months::new(MOVE_IN_EARLIEST_MONTHS);
    if effective > latest_day {
        return Err(wrong_period(format!(
            "move-in on {effective} is more than {MOVE_IN_EARLIEST_MONTHS} months ahead (latest {latest_day})"
        )));
    }
    Ok(())
}

/// BRS-010: the next day at the earliest (velkommen.dk; secondary).
pub fn move_out(today: NaiveDate, effective: NaiveDate) -> Result<(), Rejection> {
    if effective <= today {
        return Err(wrong_period(format!(
            "move-out on {effective} must be after today ({today})"
        )));
    }
    Ok(())
}

/// BRS-003/011: within 60 calendar days of the corrected process's day.
pub fn correction(today: NaiveDate, corrected_day: NaiveDate) -> Result<(), Rejection> {
    if (today - corrected_day).num_days() > CORRECTION_WINDOW_CALENDAR_DAYS {
        return Err(wrong_period(format!(
            "the corrected process took effect on {corrected_day}, more than {CORRECTION_WINDOW_CALENDAR_DAYS} days ago"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, m, day).unwrap()
    }

    #[test]
    fn end_of_supply_window() {
        // Mon 3 March: Thu 6 March is exactly 3 working days ahead; Wed 5 March only 2.
        assert!(end_of_supply(d(3, 3), d(3, 6)).is_ok());
        let err = end_of_supply(d(3, 3), d(3, 5)).unwrap_err();
        assert_eq!(err.reason.code, "E17");
        // 60 calendar days ahead is allowed, 61 not.
        assert!(end_of_supply(d(3, 3), d(3, 3) + Duration::days(60)).is_ok());
        assert!(end_of_supply(d(3, 3), d(3, 3) + Duration::days(61)).is_err());
        // Easter 2025: Wed 16 April → Tue 22 April is only 1 working day.
        assert!(end_of_supply(d(4, 16), d(4, 22)).is_err());
        assert!(end_of_supply(d(4, 16), d(4, 25)).is_ok());
    }

    #[test]
    fn move_in_window() {
        // Tue 22 April 2025: the 5 working days back are 16, 15, 14, 11, 10 April (Easter
        // Thursday to Monday skipped), so 10 April is the earliest day, 9 April too late.
        assert!(move_in(d(4, 22), d(4, 10)).is_ok());
        assert!(move_in(d(4, 22), d(4, 9)).is_err());
        assert!(move_in(d(4, 22), d(6, 22)).is_ok());
        assert!(move_in(d(4, 22), d(6, 23)).is_err());
    }

    #[test]
    fn next_day_rules_and_correction_window() {
        assert!(change_of_supplier(d(3, 3), d(3, 3)).is_err());
        assert!(change_of_supplier(d(3, 3), d(3, 4)).is_ok());
        assert!(move_out(d(3, 3), d(3, 4)).is_ok());
        assert!(move_out(d(3, 3), d(3, 3)).is_err());
        assert!(correction(d(5, 1) + Duration::days(60), d(5, 1)).is_ok());
        assert!(correction(d(5, 1) + Duration::days(61), d(5, 1)).is_err());
    }
}
