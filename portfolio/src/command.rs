//! Commands: what we want (requests, cancellations) and what DataHub tells us (answers,
//! notifications, master data). [`crate::decide`] turns each into one event or a refusal.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{ChargeLink, MasterData};
use crate::ids::{CustomerKey, Gln, ProcessId};
use crate::personal::Sealed;
use crate::process::ProcessKind;
use crate::reason::Reason;

/// Who asks, when, why and in which message: copied into the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandMeta {
    /// When the command is decided; deadlines are counted from its Danish calendar day.
    pub at: DateTime<Utc>,
    /// Who: operator name, `system`, or the sender's GLN.
    pub actor: String,
    /// Why, in words.
    pub why: String,
    /// The message that brought or will carry it.
    pub message_id: Option<String>,
}

/// A customer as the domain sees it: our pseudonymous number plus the sealed personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRef {
    /// Our customer number.
    pub key: CustomerKey,
    /// CPR/CVR and name, sealed at the edge.
    pub personal: Option<Sealed>,
}

/// The fields of a process we request or DataHub notifies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessDetails {
    /// Its id.
    pub process: ProcessId,
    /// Which business process.
    pub kind: ProcessKind,
    /// The acting supplier (for our requests: us).
    pub supplier: Gln,
    /// Requested effective day.
    pub effective: NaiveDate,
    /// The customer, where the process has one.
    pub customer: Option<CustomerRef>,
    /// The process a correction undoes.
    pub corrects: Option<ProcessId>,
    /// The new balance responsible party of a change of BRP.
    pub balance_responsible: Option<Gln>,
    /// DataHub's reason code on a notification (RSM-004 E01, E03, D46 …).
    pub notified_reason: Option<String>,
}

/// Everything that can happen to a metering point's portfolio state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body", rename_all = "snake_case")]
pub enum Command {
    /// We send a request to DataHub.
    Request(ProcessDetails),
    /// DataHub confirmed our request.
    Accept {
        /// Our request.
        process: ProcessId,
        /// DataHub's process reference.
        datahub_ref: Option<String>,
    },
    /// DataHub rejected our request.
    Reject {
        /// Our request.
        process: ProcessId,
        /// The reasons, verbatim.
        reasons: Vec<Reason>,
    },
    /// We cancel our pending request (BRS-001/002 cancellation).
    Cancel {
        /// Our request.
        process: ProcessId,
    },
    /// DataHub cancelled a pending process (superseded by another process, …).
    CancelledByDataHub {
        /// The process.
        process: ProcessId,
        /// DataHub's reason.
        reason: Reason,
    },
    /// DataHub tells us of a process we did not request.
    Notify(ProcessDetails),
    /// The process's day came. `disconnected_on` is the actual cut-off of an end of supply
    /// (the day the grid company disconnected, never before the requested day).
    TakeEffect {
        /// The process.
        process: ProcessId,
        /// Only for end of supply.
        disconnected_on: Option<NaiveDate>,
    },
    /// RSM-022 arrived.
    MasterData(MasterData),
    /// RSM-028 arrived.
    CustomerData {
        /// Our customer number; `None` when DataHub's RSM-028 brings it (validate does not
        /// know our numbers): then it is the customer of `process`.
        customer: Option<CustomerKey>,
        /// The process the data belongs to: our process id (DataHub's
        /// `originalTransactionIDReference`) or DataHub's process reference.
        #[serde(default)]
        process: Option<ProcessId>,
        /// Sealed data.
        personal: Sealed,
    },
    /// RSM-031 arrived.
    ChargeLinks(Vec<ChargeLink>),
}
