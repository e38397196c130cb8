//! A metering point's portfolio state and how an event changes it: the fold.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use afregning_cim::gsrn::Gsrn;

use crate::event::{Change, ChargeLink, Event, MasterData};
use crate::ids::{CustomerKey, Gln, ProcessId, gsrn_serde};
use crate::personal::Sealed;
use crate::process::{Process, ProcessKind, ProcessStatus};
use crate::reason::Reason;
use crate::supply::SupplyTimeline;

/// DataHub's GLN: the actor of cancellations DataHub makes.
pub const DATAHUB_GLN: &str = "5790001330552";

/// Everything we know about one metering point, as the fold of its events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeteringPoint {
    /// The metering point.
    #[serde(with = "gsrn_serde")]
    pub gsrn: Gsrn,
    /// Our GLN: decides whether a process starts or ends *our* supply.
    pub us: Gln,
    /// Events applied so far (the sequence number of the last).
    pub version: u64,
    /// Latest master data (RSM-022).
    pub master_data: Option<MasterData>,
    /// Every process we took part in, by id.
    pub processes: BTreeMap<ProcessId, Process>,
    /// Our supply periods.
    pub supply: SupplyTimeline,
    /// Balance responsible party from each day on.
    pub balance_responsible: BTreeMap<NaiveDate, Gln>,
    /// Charge links as last sent (RSM-031).
    pub charge_links: Vec<ChargeLink>,
    /// Latest sealed personal data per customer.
    pub customers: BTreeMap<CustomerKey, Sealed>,
    /// Customers whose master data DataHub has sent (RSM-028): a move-in completes on it.
    pub customer_data_confirmed: BTreeSet<CustomerKey>,
}

impl MeteringPoint {
    /// The state before any event.
    pub fn new(gsrn: Gsrn, us: Gln) -> Self {
        Self {
            gsrn,
            us,
            version: 0,
            master_data: None,
            processes: BTreeMap::new(),
            supply: SupplyTimeline::default(),
            balance_responsible: BTreeMap::new(),
            charge_links: Vec::new(),
            customers: BTreeMap::new(),
            customer_data_confirmed: BTreeSet::new(),
        }
    }

    /// The state after `events`, in order.
    pub fn fold<'a>(gsrn: Gsrn, us: Gln, events: impl IntoIterator<Item = &'a Event>) -> Self {
        events
            .into_iter()
            .fold(Self::new(gsrn, us), |state, event| state.apply(event))
    }

    /// The grid area, once master data arrived.
    pub fn grid_area(&self) -> Option<&str> {
        self.master_data.as_ref().map(|m| m.grid_area.as_str())
    }

    /// The state after `event`. Infallible: [`crate::decide`] made sure the event fits.
    pub fn apply(mut self, event: &Event) -> Self {
        self.version = event.sequence;
        let id = event.process.clone();
        match &event.change {
            Change::RequestSent { process, personal } | Change::Notified { process, personal } => {
                if let (Some(customer), Some(personal)) = (&process.customer, personal) {
                    self.customers.insert(customer.clone(), personal.clone());
                }
                self.processes.insert(process.id.clone(), process.clone());
            }
            Change::Accepted { datahub_ref } => {
                if let Some(p) = id.and_then(|id| self.processes.get_mut(&id)) {
                    p.status = ProcessStatus::Accepted;
                    p.datahub_ref.clone_from(datahub_ref);
                }
            }
            Change::Rejected { reasons } => {
                self.set_status(
                    id,
                    ProcessStatus::Rejected {
                        reasons: reasons.clone(),
                    },
                );
            }
            Change::Cancelled { by, reason } => {
                self.set_status(
                    id,
                    ProcessStatus::Cancelled {
                        by: by.clone(),
                        reason: reason.clone(),
                    },
                );
            }
            Change::TookEffect { on } => {
                if let Some(id) = id {
                    self.take_effect(&id, *on);
                }
            }
            Change::MasterDataReceived(master) => {
                if let Some(brp) = &master.balance_responsible {
                    self.balance_responsible
                        .insert(master.valid_from, brp.clone());
                }
                self.master_data = Some(master.clone());
            }
            Change::CustomerDataReceived { customer, personal } => {
                self.customers.insert(customer.clone(), personal.clone());
                self.customer_data_confirmed.insert(customer.clone());
                for p in self.processes.values_mut() {
                    if p.status == ProcessStatus::Effective && p.customer.as_ref() == Some(customer)
                    {
                        p.status = ProcessStatus::Completed;
                    }
                }
            }
            Change::ChargeLinksReceived { links } => {
                for link in links {
                    self.charge_links.retain(|l| {
                        !(l.charge_id == link.charge_id
                            && l.owner == link.owner
                            && l.from == link.from)
                    });
                    self.charge_links.push(link.clone());
                }
                self.charge_links
                    .sort_by(|a, b| (&a.charge_id, a.from).cmp(&(&b.charge_id, b.from)));
            }
        }
        self
    }

    fn set_status(&mut self, id: Option<ProcessId>, status: ProcessStatus) {
        if let Some(p) = id.and_then(|id| self.processes.get_mut(&id)) {
            p.status = status;
        }
    }

    /// The timeline effect of a process reaching its day.
    fn take_effect(&mut self, id: &ProcessId, on: NaiveDate) {
        let Some(process) = self.processes.get(id).cloned() else {
            return;
        };
        let ours = process.supplier == self.us;
        let day = if process.kind == ProcessKind::EndOfSupply {
            on
        } else {
            process.effective
        };
        match process.kind {
            kind if kind.starts_supply() => {
                if ours {
                    self.supply.start(day, process.customer.clone(), id);
                } else if self
                    .supply
                    .periods
                    .iter()
                    .any(|p| p.to.is_none_or(|to| to > day))
                {
                    self.supply.end(day, id);
                    self.supersede_pending(day, id);
                }
            }
            ProcessKind::EndOfSupply if ours => self.supply.end(day, id),
            ProcessKind::MoveOut if ours => self.supply.change_customer(day, None, id),
            ProcessKind::CustomerMasterData if ours => {
                self.supply
                    .change_customer(day, process.customer.clone(), id)
            }
            ProcessKind::ChangeOfBalanceResponsible => {
                if let Some(brp) = &process.balance_responsible {
                    self.balance_responsible.insert(day, brp.clone());
                }
            }
            kind if kind.is_correction() => self.correct(&process, id),
            _ => {}
        }
        let awaiting_customer_data = ours
            && process.requested_by_us
            && process.kind == ProcessKind::MoveIn
            && process
                .customer
                .as_ref()
                .is_some_and(|c| !self.customer_data_confirmed.contains(c));
        if let Some(p) = self.processes.get_mut(id) {
            p.took_effect_on = Some(day);
            p.status = if awaiting_customer_data {
                ProcessStatus::Effective
            } else {
                ProcessStatus::Completed
            };
        }
    }

    /// BRS-003/011: undo the corrected start of supply. If it was ours, our periods from its day
    /// are retired (to be credited); if it took the metering point from us, our supply resumes
    /// from its day for the customer we had ("as if the incorrect change had not taken place").
    fn correct(&mut self, correction: &Process, id: &ProcessId) {
        let Some(corrected) = correction
            .corrects
            .as_ref()
            .and_then(|c| self.processes.get(c))
            .cloned()
        else {
            return;
        };
        if corrected.supplier == self.us {
            self.supply.end(corrected.effective, id);
        } else if let Some(previous) = self.supply.period_ending_at(corrected.effective) {
            let customer = previous.customer.clone();
            self.supply.start(corrected.effective, customer, id);
        }
    }

    /// Another supplier took the metering point from `day`: our pending end of supply, move-out,
    /// customer data change and BRP change from that day on are superseded (H1 ch. 7: an end of
    /// supply is stopped by a change of supplier or move-in).
    fn supersede_pending(&mut self, day: NaiveDate, by: &ProcessId) {
        for p in self.processes.values_mut() {
            let superseded = p.supplier == self.us
                && matches!(p.status, ProcessStatus::Sent | ProcessStatus::Accepted)
                && p.effective >= day
                && matches!(
                    p.kind,
                    ProcessKind::EndOfSupply
                        | ProcessKind::MoveOut
                        | ProcessKind::CustomerMasterData
                        | ProcessKind::ChangeOfBalanceResponsible
                );
            if superseded {
                p.status = ProcessStatus::Cancelled {
                    by: DATAHUB_GLN.to_owned(),
                    reason: Reason::new(
                        "D07",
                        format!(
                            "superseded by process {by} taking over the metering point on {day}"
                        ),
                    ),
                };
            }
        }
    }

    /// The invariants every reachable state keeps; `Err` names the first broken one.
    pub fn check(&self) -> Result<(), String> {
        self.supply.check()?;
        for period in &self.supply.periods {
            let Some(p) = self.processes.get(&period.started_by) else {
                return Err(format!("period {period:?} started by an unknown process"));
            };
            if !p.status.took_effect() {
                return Err(format!(
                    "period {period:?} started by {} which is {:?}",
                    p.id, p.status
                ));
            }
        }
        for (id, p) in &self.processes {
            if *id != p.id {
                return Err(format!("process {} stored under {id}", p.id));
            }
            if !p.requested_by_us
                && matches!(
                    p.status,
                    ProcessStatus::Sent | ProcessStatus::Rejected { .. }
                )
            {
                return Err(format!("notified process {id} is {:?}", p.status));
            }
            if p.status.took_effect() != p.took_effect_on.is_some() {
                return Err(format!(
                    "process {id}: status {:?} vs day {:?}",
                    p.status, p.took_effect_on
                ));
            }
            if p.status == ProcessStatus::Effective && p.kind != ProcessKind::MoveIn {
                return Err(format!(
                    "process {id} of kind {:?} waits for customer data",
                    p.kind
                ));
            }
            if p.kind.is_correction() {
                let corrected = p.corrects.as_ref().and_then(|c| self.processes.get(c));
                if !corrected.is_some_and(|c| c.kind.starts_supply()) {
                    return Err(format!(
                        "correction {id} does not correct a start of supply"
                    ));
                }
            }
            if let Some(day) = p.took_effect_on
                && day < p.effective
            {
                return Err(format!(
                    "process {id} took effect on {day} before its day {}",
                    p.effective
                ));
            }
        }
        Ok(())
    }
}
