//! Business process instances: what kind, who started it, for which date, and where it is.
//!
//! DataHub 3 models a process as `Pending → Sleeping → Active → Terminated(Succeeded | Failed |
//! Canceled | Rejected)` (GF `MeteringPointProcessNode.cs`, NOTES §3); from the supplier's
//! side that is [`ProcessStatus`].

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::{CustomerKey, Gln, ProcessId};
use crate::reason::Reason;

/// The DataHub business processes a supplier takes part in. The BRS numbers are the official
/// ones (Energinet EDI guide BRS v3.7.1a; NOTES §0), not the ones that circulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProcessKind {
    /// BRS-001 change of supplier (business reason E03).
    ChangeOfSupplier,
    /// BRS-002 end of supply (E20); cancellation is part of it.
    EndOfSupply,
    /// BRS-003 managing an incorrect change of supplier (rollback, D07).
    IncorrectChangeOfSupplier,
    /// BRS-009 move-in (E65).
    MoveIn,
    /// BRS-010 move-out (E66).
    MoveOut,
    /// BRS-011 incorrect move (D33).
    IncorrectMove,
    /// BRS-015 customer master data from the supplier (E34).
    CustomerMasterData,
    /// BRS-044 forced change of supplier on a metering point (DH2 `MANCHGSUP`).
    ForcedChangeOfSupplier,
    /// Change of balance responsible party (E56; BRS number not found, NOTES §2.5).
    ChangeOfBalanceResponsible,
}

impl ProcessKind {
    /// Every kind, for generators and tables.
    pub const ALL: [ProcessKind; 9] = [
        ProcessKind::ChangeOfSupplier,
        ProcessKind::EndOfSupply,
        ProcessKind::IncorrectChangeOfSupplier,
        ProcessKind::MoveIn,
        ProcessKind::MoveOut,
        ProcessKind::IncorrectMove,
        ProcessKind::CustomerMasterData,
        ProcessKind::ForcedChangeOfSupplier,
        ProcessKind::ChangeOfBalanceResponsible,
    ];

    /// The BRS name people search for ("BRS-001"); `None` where no number was found.
    pub fn brs(self) -> Option<&'static str> {
        Some(match self {
            ProcessKind::ChangeOfSupplier => "BRS-001",
            ProcessKind::EndOfSupply => "BRS-002",
            ProcessKind::IncorrectChangeOfSupplier => "BRS-003",
            ProcessKind::MoveIn => "BRS-009",
            ProcessKind::MoveOut => "BRS-010",
            ProcessKind::IncorrectMove => "BRS-011",
            ProcessKind::CustomerMasterData => "BRS-015",
            ProcessKind::ForcedChangeOfSupplier => "BRS-044",
            ProcessKind::ChangeOfBalanceResponsible => return None,
        })
    }

    /// The CIM business reason (`process.processType`) DataHub uses for it.
    pub fn business_reason(self) -> &'static str {
        match self {
            ProcessKind::ChangeOfSupplier => "E03",
            ProcessKind::EndOfSupply => "E20",
            ProcessKind::IncorrectChangeOfSupplier => "D07",
            ProcessKind::MoveIn => "E65",
            ProcessKind::MoveOut => "E66",
            ProcessKind::IncorrectMove => "D33",
            ProcessKind::CustomerMasterData => "E34",
            ProcessKind::ForcedChangeOfSupplier => "D13",
            ProcessKind::ChangeOfBalanceResponsible => "E56",
        }
    }

    /// Processes that make their supplier the supplier of the metering point from their date.
    pub fn starts_supply(self) -> bool {
        matches!(
            self,
            ProcessKind::ChangeOfSupplier
                | ProcessKind::MoveIn
                | ProcessKind::ForcedChangeOfSupplier
        )
    }

    /// Corrections that undo an earlier start of supply (BRS-003, BRS-011).
    pub fn is_correction(self) -> bool {
        matches!(
            self,
            ProcessKind::IncorrectChangeOfSupplier | ProcessKind::IncorrectMove
        )
    }

    /// Processes the current supplier may cancel before their cut-off (BRS-001 cancel, BRS-002
    /// cancel, and by the same DH3 `CancelWorkflow` a pending move).
    pub fn cancellable(self) -> bool {
        matches!(
            self,
            ProcessKind::ChangeOfSupplier
                | ProcessKind::EndOfSupply
                | ProcessKind::MoveIn
                | ProcessKind::MoveOut
        )
    }

    /// The stable name used in the read model and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessKind::ChangeOfSupplier => "change_of_supplier",
            ProcessKind::EndOfSupply => "end_of_supply",
            ProcessKind::IncorrectChangeOfSupplier => "incorrect_change_of_supplier",
            ProcessKind::MoveIn => "move_in",
            ProcessKind::MoveOut => "move_out",
            ProcessKind::IncorrectMove => "incorrect_move",
            ProcessKind::CustomerMasterData => "customer_master_data",
            ProcessKind::ForcedChangeOfSupplier => "forced_change_of_supplier",
            ProcessKind::ChangeOfBalanceResponsible => "change_of_balance_responsible",
        }
    }
}

/// Where a process is, seen from the supplier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ProcessStatus {
    /// Our request is sent; DataHub has not answered.
    Sent,
    /// Confirmed (or notified by DataHub) and waiting for its date: cancellable if its kind is.
    Accepted,
    /// DataHub refused our request; the reasons are kept verbatim. Terminal.
    Rejected {
        /// DataHub's `Reason[]`.
        reasons: Vec<Reason>,
    },
    /// Cancelled before it took effect, by us or by DataHub (superseded). Terminal.
    Cancelled {
        /// Who cancelled: our GLN, or DataHub's.
        by: String,
        /// Why.
        reason: Reason,
    },
    /// In effect, but the move-in still waits for customer master data (DH3 keeps such a
    /// move "Sleeping" after its cut-off, NOTES §2.6).
    Effective,
    /// In effect and nothing outstanding. Terminal.
    Completed,
}

impl ProcessStatus {
    /// No command changes a terminal process any more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ProcessStatus::Rejected { .. }
                | ProcessStatus::Cancelled { .. }
                | ProcessStatus::Completed
        )
    }

    /// True once the process has changed the timeline.
    pub fn took_effect(&self) -> bool {
        matches!(self, ProcessStatus::Effective | ProcessStatus::Completed)
    }

    /// The stable name used in the read model.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProcessStatus::Sent => "sent",
            ProcessStatus::Accepted => "accepted",
            ProcessStatus::Rejected { .. } => "rejected",
            ProcessStatus::Cancelled { .. } => "cancelled",
            ProcessStatus::Effective => "effective",
            ProcessStatus::Completed => "completed",
        }
    }
}

/// One process on one metering point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Its id (ours for our requests, DataHub's otherwise).
    pub id: ProcessId,
    /// Which business process.
    pub kind: ProcessKind,
    /// The supplier acting in it: the new supplier of a start of supply, the supplier ending,
    /// moving out, correcting or sending customer data.
    pub supplier: Gln,
    /// The requested effective date (a Danish calendar day; effect at its local midnight).
    pub effective: NaiveDate,
    /// The date it actually took effect: an end of supply takes effect when the metering point
    /// is disconnected, never before the requested date (H1 ch. 7).
    pub took_effect_on: Option<NaiveDate>,
    /// The customer it concerns (move-in, change of supplier, customer master data).
    pub customer: Option<CustomerKey>,
    /// The process a correction (BRS-003/011) undoes.
    pub corrects: Option<ProcessId>,
    /// The new balance responsible party of a change of BRP.
    pub balance_responsible: Option<Gln>,
    /// DataHub's reason code of a notification (RSM-004 E01/E03/D46…), kept for the history.
    pub notified_reason: Option<String>,
    /// DataHub's process reference (`businessProcessReference`), once known.
    pub datahub_ref: Option<String>,
    /// True when we started it with a request; false when DataHub told us about it.
    pub requested_by_us: bool,
    /// Where it is.
    pub status: ProcessStatus,
}
