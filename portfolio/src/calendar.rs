//! Danish working days: the unit in which DataHub's deadlines are counted ("latest 3 working
//! days before", "up to 5 working days late").
//!
//! A working day is Monday–Friday that is neither a Danish public holiday (Store Bededag only
//! until 2023) nor one of the days the Danish electricity market treats as closed (24 and 31
//! December, Constitution Day 5 June). The Easter-based holidays are computed (anonymous Gregorian algorithm), so no network or table
//! is needed. Sources and confidence: `docs/portfolio.md` §Rules.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// Easter Sunday of `year` (Gregorian, anonymous algorithm of Meeus/Jones/Butcher): every
/// moving Danish holiday is an offset from it.
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
        .expect("the Easter algorithm yields a valid March or April date")
}

/// Last year Store Bededag (fourth Friday after Easter) was a public holiday: the act
/// abolishing it (lov nr. 207 af 28/02/2023) took effect for 2024.
const LAST_YEAR_WITH_STORE_BEDEDAG: i32 = 2023;

/// True when `date` is a Danish public holiday or a day the market treats as closed
/// (24 Dec, 31 Dec, 5 June).
pub fn is_holiday(date: NaiveDate) -> bool {
    let (month, day) = (date.month(), date.day());
    if matches!(
        (month, day),
        (1, 1) | (6, 5) | (12, 24) | (12, 25) | (12, 26) | (12, 31)
    ) {
        return true;
    }
    let easter = easter_sunday(date.year());
    let offset = (date - easter).num_days();
    match offset {
        // Maundy Thursday, Good Friday, Easter Sunday, Easter Monday.
        -3 | -2 | 0 | 1 => true,
        // Store Bededag (abolished from 2024).
        26 => date.year() <= LAST_YEAR_WITH_STORE_BEDEDAG,
        // Ascension Day, Whit Sunday, Whit Monday.
        39 | 49 | 50 => true,
        _ => false,
    }
}

/// True for Monday–Friday that is not a holiday.
pub fn is_working_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_holiday(date)
}

/// Working days strictly after `from` up to and including `to` (0 when `to <= from`): "the
/// request came N working days before the date" counts the days in between this way.
pub fn working_days_between(from: NaiveDate, to: NaiveDate) -> u32 {
    let mut count = 0;
    let mut day = from;
    while day < to {
        day += Duration::days(1);
        if is_working_day(day) {
            count += 1;
        }
    }
    count
}

/// The date `n` working days before `date` (skipping weekends and holidays).
pub fn working_days_before(date: NaiveDate, n: u32) -> NaiveDate {
    let mut day = date;
    let mut left = n;
    while left > 0 {
        day -= Duration::days(1);
        if is_working_day(day) {
            left -= 1;
        }
    }
    day
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn easter_matches_published_dates() {
        // Published Easter Sundays (e.g. kalender.dk / the Church of Denmark's calendar).
        assert_eq!(easter_sunday(2024), d(2024, 3, 31));
        assert_eq!(easter_sunday(2025), d(2025, 4, 20));
        assert_eq!(easter_sunday(2026), d(2026, 4, 5));
        assert_eq!(easter_sunday(2027), d(2027, 3, 28));
        assert_eq!(easter_sunday(2019), d(2019, 4, 21));
        assert_eq!(easter_sunday(2038), d(2038, 4, 25));
    }

    #[test]
    fn holidays_of_2025() {
        for holiday in [
            d(2025, 1, 1),
            d(2025, 4, 17),
            d(2025, 4, 18),
            d(2025, 4, 20),
            d(2025, 4, 21),
            d(2025, 5, 29),
            d(2025, 6, 8),
            d(2025, 6, 9),
            d(2025, 6, 5),
            d(2025, 12, 24),
            d(2025, 12, 25),
            d(2025, 12, 26),
            d(2025, 12, 31),
        ] {
            assert!(is_holiday(holiday), "{holiday}");
        }
        // Store Bededag 2025 would have been 16 May: abolished, so a working Friday.
        assert!(is_working_day(d(2025, 5, 16)));
        // ... but a holiday in 2023 (5 May).
        assert!(is_holiday(d(2023, 5, 5)));
        assert!(!is_holiday(d(2025, 4, 22)));
    }

    #[test]
    fn working_days_skip_weekends_and_easter() {
        // Wed 16 April 2025 → Tue 22 April 2025: Thu 17, Fri 18 (holidays), Sat, Sun, Mon 21
        // (Easter Monday) leave only Tue 22.
        assert_eq!(working_days_between(d(2025, 4, 16), d(2025, 4, 22)), 1);
        assert_eq!(working_days_before(d(2025, 4, 22), 1), d(2025, 4, 16));
        assert_eq!(working_days_before(d(2025, 4, 22), 3), d(2025, 4, 14));
        // An ordinary week: Mon → Fri is 4 working days after Monday.
        assert_eq!(working_days_between(d(2025, 3, 3), d(2025, 3, 7)), 4);
        assert_eq!(working_days_between(d(2025, 3, 7), d(2025, 3, 3)), 0);
    }
}
