//! Why a request was refused: DataHub's reason codes, kept with their text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A reason code and its text, as DataHub sends it in `Reason[]` of a reject (e.g. E17
/// "Startdato … er ikke korrekt") or as we refuse a command locally before sending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The code: a CIM reason code (E17, D02, …) or one of [`codes`]' local ones.
    pub code: String,
    /// Human-readable text, kept verbatim.
    pub text: String,
}

impl Reason {
    /// A reason from a code and a text.
    pub fn new(code: &str, text: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            text: text.into(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.text)
    }
}

/// A command the state machine refuses; nothing is recorded and the reason goes back to the
/// caller (the CLI, the API or the dead letter of an inbound message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("refused: {reason}")]
pub struct Rejection {
    /// Why.
    pub reason: Reason,
}

impl Rejection {
    /// A refusal with a code and text.
    pub fn new(code: &str, text: impl Into<String>) -> Self {
        Self {
            reason: Reason::new(code, text),
        }
    }
}

/// The reason codes we use. DataHub's codes (CIM `ReasonCodeList`, MR error converters; see
/// `shared/lifecycle/NOTES.md` §2.1) where DataHub would answer the same; `AFR-*` for refusals
/// that are about our own bookkeeping (an answer to a request we never sent, …).
pub mod codes {
    /// "…not received within the correct time period (either too soon or too late)".
    pub const WRONG_TIME_PERIOD: &str = "E17";
    /// "…already the active energy supplier".
    pub const ALREADY_SUPPLIER: &str = "D02";
    /// "There is already another market transaction that takes precedence on date …".
    pub const PRECEDING_TRANSACTION: &str = "D07";
    /// "Supplier is not the current supplier" (end of supply, move-out by someone else).
    pub const NOT_CURRENT_SUPPLIER: &str = "D08";
    /// "No ongoing switch for the metering point" (cancel/rollback of nothing).
    pub const NO_ONGOING_SWITCH: &str = "E47";
    /// A command that refers to a process we do not know.
    pub const UNKNOWN_PROCESS: &str = "AFR-UNKNOWN-PROCESS";
    /// A command that does not fit the process's current state (e.g. accept after reject).
    pub const INVALID_TRANSITION: &str = "AFR-INVALID-TRANSITION";
    /// A process id used twice.
    pub const DUPLICATE_PROCESS: &str = "AFR-DUPLICATE-PROCESS";
    /// A request missing a field its process needs (customer on a move-in, …).
    pub const MISSING_FIELD: &str = "AFR-MISSING-FIELD";
    /// DataHub's data (RSM-022/028/031) for a metering point with no process in our
    /// portfolio.
    pub const NOT_IN_PORTFOLIO: &str = "AFR-NOT-IN-PORTFOLIO";
}
