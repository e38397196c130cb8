//! Identifiers of the portfolio: market parties, processes and (pseudonymous) customers.

use std::fmt;

use afregning_cim::gsrn::Gsrn;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A market party's GLN (13 digits): who sent, who supplies, who is balance responsible.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Gln(String);

impl Gln {
    /// Parses 13 ASCII digits; anything else is not a GLN DataHub would accept.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 13 && text.bytes().all(|b| b.is_ascii_digit())).then(|| Gln(text.to_owned()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Gln {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Gln::parse(&value).ok_or_else(|| format!("not a 13-digit GLN: {value:?}"))
    }
}

impl From<Gln> for String {
    fn from(gln: Gln) -> Self {
        gln.0
    }
}

impl fmt::Display for Gln {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Gln {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gln({})", self.0)
    }
}

/// A business process instance: for our requests the `mRID` of our activity record, for
/// DataHub-initiated ones DataHub's transaction or process id. Answers are matched by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProcessId(pub String);

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Our customer number: a pseudonym that is **not** personal data, so the fold, the read model
/// and logs can compare and show customers while CPR/CVR and names stay sealed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerKey(pub String);

impl fmt::Display for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serde for [`Gsrn`] as its 18 digits (the CIM crate only serialises it).
pub mod gsrn_serde {
    use super::*;

    /// Writes the 18 digits.
    pub fn serialize<S: Serializer>(gsrn: &Gsrn, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&gsrn.to_string())
    }

    /// Reads 18 digits.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Gsrn, D::Error> {
        let text = String::deserialize(d)?;
        Gsrn::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an 18-digit GSRN: {text:?}")))
    }
}
