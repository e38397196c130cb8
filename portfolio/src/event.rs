//! The portfolio's events: immutable facts, one per accepted command, keyed by metering point.
//!
//! Each event says who (`actor`), when (`recorded_at`), why (`why`), in which process and from
//! which message. Personal data appears only as [`Sealed`] values.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use afregning_cim::gsrn::Gsrn;

use crate::ids::{CustomerKey, Gln, ProcessId, gsrn_serde};
use crate::personal::Sealed;
use crate::process::Process;
use crate::reason::Reason;

/// One fact about one metering point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The metering point (the topic key).
    #[serde(with = "gsrn_serde")]
    pub metering_point: Gsrn,
    /// 1-based position in the metering point's stream: folding needs them in order, and a
    /// gap or repeat is detectable.
    pub sequence: u64,
    /// When we recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Who caused it: an operator, our system, or DataHub's GLN.
    pub actor: String,
    /// Why, in words (the operator's note, or the message type that brought it).
    pub why: String,
    /// The process it belongs to, if any.
    pub process: Option<ProcessId>,
    /// The inbound or outbound message id (`mRID` of the document), if any.
    pub message_id: Option<String>,
    /// What changed.
    pub change: Change,
}

/// What an event changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// We sent a request (RSM-001, RSM-005, RSM-003, RSM-027, …); the process starts `Sent`.
    RequestSent {
        /// The new process.
        process: Process,
        /// The customer's personal data as sent, sealed.
        personal: Option<Sealed>,
    },
    /// DataHub confirmed our request (RSM-001/005 … `reason.code` A01).
    Accepted {
        /// DataHub's process reference.
        datahub_ref: Option<String>,
    },
    /// DataHub rejected our request (A02) with its reasons.
    Rejected {
        /// `Reason[]`, verbatim.
        reasons: Vec<Reason>,
    },
    /// The process was cancelled before it took effect.
    Cancelled {
        /// Our GLN, or DataHub's.
        by: String,
        /// Why.
        reason: Reason,
    },
    /// DataHub told us of a process we did not request (RSM-004 another supplier takes over,
    /// BRS-044 forced change, the other side's BRS-003/011, an imported DH2 transaction); it
    /// starts `Accepted`.
    Notified {
        /// The new process.
        process: Process,
        /// Personal data in the notification, sealed.
        personal: Option<Sealed>,
    },
    /// The process's date came (for an end of supply: the metering point was disconnected on
    /// `on`), and the timeline changed.
    TookEffect {
        /// The day it took effect.
        on: NaiveDate,
    },
    /// Metering point master data (RSM-022).
    MasterDataReceived(MasterData),
    /// Customer master data (RSM-028) for one of our customers.
    CustomerDataReceived {
        /// Our customer number for the person or company.
        customer: CustomerKey,
        /// The data, sealed.
        personal: Sealed,
    },
    /// Charge links (RSM-031).
    ChargeLinksReceived {
        /// The links as sent.
        links: Vec<ChargeLink>,
    },
}

impl Change {
    /// The stable name used in the read model's history.
    pub fn name(&self) -> &'static str {
        match self {
            Change::RequestSent { .. } => "request_sent",
            Change::Accepted { .. } => "accepted",
            Change::Rejected { .. } => "rejected",
            Change::Cancelled { .. } => "cancelled",
            Change::Notified { .. } => "notified",
            Change::TookEffect { .. } => "took_effect",
            Change::MasterDataReceived(_) => "master_data_received",
            Change::CustomerDataReceived { .. } => "customer_data_received",
            Change::ChargeLinksReceived { .. } => "charge_links_received",
        }
    }

    /// The customer and the sealed personal data this change carries, if any: what the read
    /// model records so erasure can find every key a customer's data was sealed under.
    pub fn sealed_customer_data(&self) -> Option<(&CustomerKey, &Sealed)> {
        match self {
            Change::RequestSent { process, personal } | Change::Notified { process, personal } => {
                process.customer.as_ref().zip(personal.as_ref())
            }
            Change::CustomerDataReceived { customer, personal } => Some((customer, personal)),
            _ => None,
        }
    }
}

/// The metering point master data the portfolio needs (RSM-022 `AccountingPointCharacteristics`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterData {
    /// From which day it is valid.
    pub valid_from: NaiveDate,
    /// Grid area code (e.g. `344`): portfolio queries are per grid area.
    pub grid_area: String,
    /// Metering point type (E17 consumption, E18 production, …).
    pub metering_point_type: Option<String>,
    /// Settlement method (D01 flex, E02 non-profiled).
    pub settlement_method: Option<String>,
    /// The balance responsible party on the metering point.
    pub balance_responsible: Option<Gln>,
}

/// One charge link (RSM-031): which charge applies to the metering point from when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeLink {
    /// Charge code, e.g. `40000`.
    pub charge_id: String,
    /// Charge owner GLN.
    pub owner: Gln,
    /// D01 subscription, D02 fee, D03 tariff.
    pub charge_type: String,
    /// First day.
    pub from: NaiveDate,
    /// First day no longer linked.
    pub to: Option<NaiveDate>,
}
