//! Building blocks shared by several documents: party and area ids, reasons, time intervals.

use chrono::{DateTime, Utc};
use serde::Deserializer;

use crate::codes::{CodingScheme, ReasonCode};
use crate::de::{At, Finding, Read, cim_object};
use crate::scalar::Minute;
use crate::ser::{JsonWriter, Write};

fn longer_than(value: &str, max: usize) -> Result<(), Finding> {
    if value.chars().count() > max {
        Err(Finding::schema(
            ".value",
            format!("`{value}` is longer than {max} characters"),
        ))
    } else {
        Ok(())
    }
}

cim_object! {
    /// A market participant id (`PartyID_String`): a GLN with coding scheme A10, or an EIC (A01).
    /// Kept as text: DataHub's own example documents use placeholders such as `Owner1`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
    pub struct PartyId {
        /// `codingScheme`: A10 for a GLN.
        "codingScheme" => coding_scheme: CodingScheme,
        /// The id, at most 16 characters.
        "value" => value: String,
    }
    check = check_party;
}

fn check_party(p: &PartyId) -> Result<(), Finding> {
    longer_than(&p.value, 16)
}

impl PartyId {
    /// A GLN (coding scheme A10).
    pub fn gln(value: impl Into<String>) -> Self {
        Self {
            coding_scheme: CodingScheme::GS1,
            value: value.into(),
        }
    }
}

cim_object! {
    /// An area id (`AreaID_String`): a grid area (`NDK`, e.g. `804`) or a bidding zone (EIC, A01).
    #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
    pub struct AreaId {
        /// `codingScheme`: NDK for a Danish grid area, A01 for an EIC.
        "codingScheme" => coding_scheme: CodingScheme,
        /// The id, at most 18 characters.
        "value" => value: String,
    }
    check = check_area;
}

fn check_area(a: &AreaId) -> Result<(), Finding> {
    longer_than(&a.value, 18)
}

impl AreaId {
    /// A Danish grid area (coding scheme NDK).
    pub fn grid_area(value: impl Into<String>) -> Self {
        Self {
            coding_scheme: CodingScheme::DANISH_GRID_AREA,
            value: value.into(),
        }
    }
}

cim_object! {
    /// Why DataHub rejected a transaction (`Reason[]` in reject documents).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Reason {
        /// `code`: the validation error code.
        "code" [wrapped] => code: ReasonCode,
        /// `text`: DataHub's explanation, when given.
        "text" => text: Option<String>,
    }
}

/// A period `timeInterval`: `{"start": {"value": "…Z"}, "end": {"value": "…Z"}}`, UTC, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct TimeInterval {
    /// First instant of the period.
    pub start: DateTime<Utc>,
    /// First instant after the period.
    pub end: DateTime<Utc>,
}

cim_object! {
    struct WireInterval {
        "start" [wrapped] => start: Minute,
        "end" [wrapped] => end: Minute,
    }
}

impl<'de> Read<'de> for TimeInterval {
    fn read<D: Deserializer<'de>>(de: D, at: At<'_>) -> Result<Self, D::Error> {
        let wire = WireInterval::read(de, at)?;
        Ok(TimeInterval {
            start: wire.start.0,
            end: wire.end.0,
        })
    }
}

impl Write for TimeInterval {
    fn write(&self, w: &mut JsonWriter) {
        WireInterval {
            start: Minute(self.start),
            end: Minute(self.end),
        }
        .write(w);
    }
}

/// A requested period must end after it starts (when both ends are given).
pub(crate) fn check_range(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<(), Finding> {
    match (start, end) {
        (Some(start), Some(end)) if end <= start => Err(Finding::business(
            "['end_DateAndOrTime.dateTime']",
            format!("end {end} is not after start {start}"),
        )),
        _ => Ok(()),
    }
}
