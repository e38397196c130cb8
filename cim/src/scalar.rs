//! Scalars: exact decimals from bare JSON numbers, and CIM's two timestamp forms.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::Decimal;

use serde::Deserializer;
use serde::de::{self, Visitor};
use serde_json::value::RawValue;

use crate::de::fast::NUMBER_TEXT;
use crate::de::{At, Read, read_str};
use crate::error::ErrorClass;
use crate::ser::{JsonWriter, Write};

/// Quantities and amounts keep DataHub's exact text: the number is taken from the input as
/// written (`1.000` keeps scale 3) and never passes through a float.
impl<'de> Read<'de> for Decimal {
    fn read<D: Deserializer<'de>>(de: D, at: At<'_>) -> Result<Self, D::Error> {
        let text = number_text(de)?;
        parse_decimal(text).map_err(|(class, reason)| at.fail(class, reason))
    }
}

/// The text of the next value as written, for a number read exactly: the fast reader hands it
/// over when asked by name ([`NUMBER_TEXT`]) and only for a number; serde_json, which does not
/// know the name, hands itself over and its raw value is taken (any value: the caller checks).
fn number_text<'de, D: Deserializer<'de>>(de: D) -> Result<&'de str, D::Error> {
    struct Text;
    impl<'de> Visitor<'de> for Text {
        type Value = &'de str;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<&'de str, D::Error> {
            let raw: &'de RawValue = serde::Deserialize::deserialize(de)?;
            Ok(raw.get())
        }
        fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<&'de str, E> {
            Ok(text)
        }
    }
    de.deserialize_newtype_struct(NUMBER_TEXT, Text)
}

/// Parses the text of a JSON number exactly.
pub(crate) fn parse_decimal(text: &str) -> Result<Decimal, (ErrorClass, String)> {
    let first = text.as_bytes().first().copied().unwrap_or(b' ');
    if !(first == b'-' || first.is_ascii_digit()) {
        return Err((
            ErrorClass::SchemaViolation,
            format!("expected a number, found {}", shorten(text)),
        ));
    }
    if let Some(plain) = plain_decimal(text) {
        return Ok(plain);
    }
    let parsed = if let Some((base, _)) = text.split_once(['e', 'E']) {
        // The mantissa must itself be exact (from_scientific would round it).
        Decimal::from_str_exact(base).and_then(|_| Decimal::from_scientific(text))
    } else {
        Decimal::from_str_exact(text)
    };
    parsed.map_err(|_| {
        (
            ErrorClass::BusinessInvalid,
            format!(
                "the number {} cannot be held exactly (at most 28 significant digits)",
                shorten(text)
            ),
        )
    })
}

/// The form DataHub writes quantities and prices in, `-?digits(.digits)?` with at most 18
/// digits, built straight from its digits: the same value, scale and sign as
/// `Decimal::from_str_exact` gives (`plain_decimals_equal_the_exact_parse` holds it to that),
/// at a fraction of the cost. `None` for anything else, a negative zero included.
fn plain_decimal(text: &str) -> Option<Decimal> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut mantissa = 0i64;
    let mut count = 0u32;
    let mut fraction: Option<u32> = None;
    for byte in digits.bytes() {
        match byte {
            b'0'..=b'9' => {
                count += 1;
                if count > 18 {
                    return None;
                }
                mantissa = mantissa * 10 + i64::from(byte - b'0');
                if let Some(scale) = fraction.as_mut() {
                    *scale += 1;
                }
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            _ => return None,
        }
    }
    let scale = fraction.unwrap_or(0);
    if fraction == Some(0) || (negative && mantissa == 0) {
        return None;
    }
    Some(Decimal::new(
        if negative { -mantissa } else { mantissa },
        scale,
    ))
}

fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// `createdDateTime` and `…_DateAndOrTime.dateTime`: ISO 8601 with seconds and a zone,
/// normally UTC (`2024-07-30T07:30:54Z`). The schema pattern also allows a missing zone;
/// such a time is ambiguous, so it is business-invalid here.
impl<'de> Read<'de> for DateTime<Utc> {
    fn read<D: Deserializer<'de>>(de: D, at: At<'_>) -> Result<Self, D::Error> {
        let text = read_str(de)?;
        parse_date_time(&text).map_err(|(class, reason)| at.fail(class, reason))
    }
}

/// Parses an ISO 8601 date-time with seconds (see the `Read` impl for `DateTime<Utc>`).
pub(crate) fn parse_date_time(text: &str) -> Result<DateTime<Utc>, (ErrorClass, String)> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() >= 19 && bytes.get(10) == Some(&b'T');
    if shaped && let Ok(parsed) = DateTime::parse_from_rfc3339(text) {
        return Ok(parsed.with_timezone(&Utc));
    }
    if shaped && NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok() {
        return Err((
            ErrorClass::BusinessInvalid,
            format!("date-time `{text}` has no time zone, so it is ambiguous (expected …Z)"),
        ));
    }
    Err((
        ErrorClass::SchemaViolation,
        format!(
            "`{}` is not an ISO 8601 date-time with seconds (YYYY-MM-DDThh:mm:ssZ)",
            shorten(text)
        ),
    ))
}

/// Parses `YYYY-MM-DDThh:mmZ`, the minute-precision UTC form of period boundaries.
pub(crate) fn parse_minute(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 17
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        u32::from_str(part).ok()
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)?;
    let time = NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, 0)?;
    Some(date.and_time(time).and_utc())
}

/// Formats a period boundary as `YYYY-MM-DDThh:mmZ`.
pub(crate) fn format_minute(time: &DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%MZ").to_string()
}

/// A period boundary inside `timeInterval`: `{"value": "YYYY-MM-DDThh:mmZ"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Minute(pub(crate) DateTime<Utc>);

impl<'de> Read<'de> for Minute {
    fn read<D: Deserializer<'de>>(de: D, at: At<'_>) -> Result<Self, D::Error> {
        let text = read_str(de)?;
        match parse_minute(&text) {
            Some(time) => Ok(Minute(time)),
            None => Err(at.schema(format!(
                "`{}` is not a UTC minute timestamp (YYYY-MM-DDThh:mmZ)",
                shorten(&text)
            ))),
        }
    }
}

impl Write for Minute {
    fn write(&self, w: &mut JsonWriter) {
        w.string(&format_minute(&self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale_and_reject_what_they_cannot_hold() {
        let d = parse_decimal("1.000").expect("decimal");
        assert_eq!(d.to_string(), "1.000");
        assert_eq!(
            parse_decimal("-0.125").expect("decimal").to_string(),
            "-0.125"
        );
        assert_eq!(parse_decimal("1.5e2").expect("decimal"), Decimal::from(150));
        assert_eq!(
            parse_decimal("\"1\"").map_err(|e| e.0),
            Err(ErrorClass::SchemaViolation)
        );
        assert_eq!(
            parse_decimal("123456789012345678901234567890123").map_err(|e| e.0),
            Err(ErrorClass::BusinessInvalid)
        );
    }

    proptest::proptest! {
        /// The shortcut for plain decimals builds exactly what `from_str_exact` builds: the
        /// same 16 bytes (mantissa, scale, sign), not only an equal value.
        #[test]
        fn plain_decimals_equal_the_exact_parse(
            text in "-?[0-9]{1,20}(\\.[0-9]{0,20})?",
        ) {
            if let Some(plain) = plain_decimal(&text) {
                let exact = Decimal::from_str_exact(&text).expect("a plain decimal is exact");
                proptest::prop_assert_eq!(plain.serialize(), exact.serialize(), "{}", text);
            } else {
                let digits = text.bytes().filter(u8::is_ascii_digit).count();
                let negative_zero = text.starts_with('-') && text.bytes().all(|b| !b.is_ascii_digit() || b == b'0');
                proptest::prop_assert!(digits > 18 || text.ends_with('.') || negative_zero, "{}", text);
            }
        }
    }

    #[test]
    fn date_times_need_seconds_and_a_zone() {
        let t = parse_date_time("2024-07-30T07:30:54Z").expect("time");
        assert_eq!(t.to_rfc3339(), "2024-07-30T07:30:54+00:00");
        let t = parse_date_time("2024-07-30T09:30:54+02:00").expect("time");
        assert_eq!(t.to_rfc3339(), "2024-07-30T07:30:54+00:00");
        assert_eq!(
            parse_date_time("2024-07-30T07:30:54").map_err(|e| e.0),
            Err(ErrorClass::BusinessInvalid)
        );
        assert_eq!(
            parse_date_time("2024-07-30T07:30Z").map_err(|e| e.0),
            Err(ErrorClass::SchemaViolation)
        );
    }

    #[test]
    fn minute_timestamps_are_strict() {
        let t = parse_minute("2024-06-28T22:00Z").expect("minute");
        assert_eq!(format_minute(&t), "2024-06-28T22:00Z");
        for bad in [
            "2024-06-28T22:00:00Z",
            "2024-06-28T22:00",
            "2024-02-30T22:00Z",
            "2024-06-28 22:00Z",
            "2024-06-28T24:00Z",
            "+024-06-28T22:00Z",
        ] {
            assert!(parse_minute(bad).is_none(), "{bad}");
        }
    }
}
