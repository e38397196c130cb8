//! GSRN: the 18-digit GS1 number that identifies a Danish metering point.

use std::fmt;
use std::str::FromStr;

use serde::Deserializer;

use crate::codes::CodingScheme;
use crate::de::{At, Read, cim_object};
use crate::ser::{JsonWriter, Write};

/// A metering point id: exactly 18 ASCII digits (GS1 Global Service Relation Number).
///
/// Processors key state by metering point, so the id is a small `Copy` value rather than a
/// string. The check digit is *not* enforced: DataHub's own test documents use GSRNs whose
/// last digit is wrong (`579999993331812345`), so a bad check digit is not a reason to
/// dead-letter; [`Gsrn::has_valid_check_digit`] is there for callers that want to warn.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gsrn(u64);

impl Gsrn {
    /// Parses 18 ASCII digits.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        u64::from_str(text).ok().map(Gsrn)
    }

    /// True when the 18th digit is the GS1 mod-10 check digit of the first 17.
    pub fn has_valid_check_digit(self) -> bool {
        let text = self.to_string();
        let digits = text.as_bytes();
        let Some((last, body)) = digits.split_last() else {
            return false;
        };
        gs1_check_digit(body) == Some(last - b'0')
    }

    /// A GSRN from 17 digits plus the computed check digit (for generators and tests).
    pub fn with_check_digit(first17: &str) -> Option<Self> {
        if first17.len() != 17 {
            return None;
        }
        let check = gs1_check_digit(first17.as_bytes())?;
        Self::parse(&format!("{first17}{check}"))
    }
}

/// The GS1 mod-10 check digit of ASCII digits (GLN bodies of 12, GSRN bodies of 17 digits):
/// from the right, weights 3, 1, 3, …; `None` if a byte is not a digit.
pub fn gs1_check_digit(body: &[u8]) -> Option<u8> {
    let mut sum: u32 = 0;
    for (i, b) in body.iter().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = u32::from(b - b'0');
        sum += if i % 2 == 0 { 3 * d } else { d };
    }
    u8::try_from((10 - sum % 10) % 10).ok()
}

impl fmt::Display for Gsrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:018}", self.0)
    }
}

impl fmt::Debug for Gsrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gsrn({self})")
    }
}

impl serde::Serialize for Gsrn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

cim_object! {
    /// `MeasurementPointID_String` as it appears on the wire.
    struct MeasurementPointId {
        "codingScheme" => coding_scheme: Option<CodingScheme>,
        "value" => value: String,
    }
}

/// Reads `{"codingScheme": "A10", "value": "<18 digits>"}`. A value longer than the schema's
/// 35 characters is a schema violation; a schema-valid value that is not 18 digits, or a
/// coding scheme other than A10, is business-invalid (DataHub 3 assigns GSRNs only).
impl<'de> Read<'de> for Gsrn {
    fn read<D: Deserializer<'de>>(de: D, at: At<'_>) -> Result<Self, D::Error> {
        read_gsrn(de, at, true)
    }
}

/// Reads a GSRN object; `require_scheme` is false for the RSM-022 references (parent, child,
/// linked metering point) whose only real example omits the coding scheme.
pub(crate) fn read_gsrn<'de, D: Deserializer<'de>>(
    de: D,
    at: At<'_>,
    require_scheme: bool,
) -> Result<Gsrn, D::Error> {
    let id = MeasurementPointId::read(de, at)?;
    match id.coding_scheme {
        None if require_scheme => return Err(at.schema("missing required property `codingScheme`")),
        Some(scheme) if scheme != CodingScheme::GS1 => {
            return Err(at.business(format!(
                "metering point id uses coding scheme `{scheme}`, expected A10 (GS1)"
            )));
        }
        _ => {}
    }
    if id.value.chars().count() > 35 {
        return Err(at.schema("metering point id is longer than 35 characters"));
    }
    Gsrn::parse(&id.value).ok_or_else(|| {
        at.business(format!(
            "metering point id `{}` is not a GSRN (18 digits)",
            id.value
        ))
    })
}

impl Write for Gsrn {
    fn write(&self, w: &mut JsonWriter) {
        w.begin_object();
        w.key("codingScheme");
        w.string(CodingScheme::GS1.as_str());
        w.key("value");
        w.string(&self.to_string());
        w.end_object();
    }
}

/// A reference to another metering point in RSM-022 (parent, child, linked): the coding
/// scheme may be missing when read, and is always written.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
#[serde(transparent)]
pub struct GsrnRef(pub Gsrn);

impl<'de> Read<'de> for GsrnRef {
    fn read<D: Deserializer<'de>>(de: D, at: At<'_>) -> Result<Self, D::Error> {
        read_gsrn(de, at, false).map(GsrnRef)
    }
}

impl Write for GsrnRef {
    fn write(&self, w: &mut JsonWriter) {
        self.0.write(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_eighteen_digits() {
        assert_eq!(
            Gsrn::parse("571313000000002000").map(|g| g.to_string()),
            Some("571313000000002000".to_owned())
        );
        assert_eq!(
            Gsrn::parse("000000000000000001").map(|g| g.to_string()),
            Some("000000000000000001".to_owned())
        );
        for bad in [
            "57131300000000200",
            "5713130000000020001",
            "57131300000000200x",
            "+71313000000002000",
            "",
        ] {
            assert!(Gsrn::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn check_digit_matches_gs1_and_the_real_examples() {
        // The RSM-012 examples' GSRN is valid, the RSM-001/015/022 examples' is not.
        assert!(Gsrn::parse("571313000000002000").is_some_and(Gsrn::has_valid_check_digit));
        assert!(!Gsrn::parse("579999993331812345").is_some_and(Gsrn::has_valid_check_digit));
        assert_eq!(
            Gsrn::with_check_digit("57999999333181234").map(|g| g.to_string()),
            Some("579999993331812342".to_owned())
        );
        // GLNs use the same algorithm: DataHub's own GLN 5790001330552 is valid.
        assert_eq!(gs1_check_digit(b"579000133055"), Some(2));
        assert_eq!(gs1_check_digit(b"57900013305x"), None);
    }
}
