//! The transitions: a command against the current state gives exactly one event, or a
//! refusal with a reason code and text. Pure: no clock, no I/O (the command carries its time).

use chrono::NaiveDate;

use afregning_settlement::calendar::local_date;

use crate::command::{Command, CommandMeta, ProcessDetails};
use crate::event::{Change, Event};
use crate::ids::ProcessId;
use crate::process::{Process, ProcessKind, ProcessStatus};
use crate::reason::{Reason, Rejection, codes};
use crate::rules;
use crate::state::MeteringPoint;

/// Decides `command` against `state`: the one event it causes, or why not.
pub fn decide(
    state: &MeteringPoint,
    meta: &CommandMeta,
    command: &Command,
) -> Result<Event, Rejection> {
    let today = local_date(meta.at);
    let (process, change) = match command {
        Command::Request(details) => {
            check_request(state, today, details)?;
            let (process, personal) = new_process(details, true, ProcessStatus::Sent);
            (
                Some(details.process.clone()),
                Change::RequestSent { process, personal },
            )
        }
        Command::Notify(details) => {
            check_notification(state, details)?;
            let (process, personal) = new_process(details, false, ProcessStatus::Accepted);
            (
                Some(details.process.clone()),
                Change::Notified { process, personal },
            )
        }
        Command::Accept {
            process,
            datahub_ref,
        } => {
            expect_status(state, process, &[ProcessStatus::Sent])?;
            (
                Some(process.clone()),
                Change::Accepted {
                    datahub_ref: datahub_ref.clone(),
                },
            )
        }
        Command::Reject { process, reasons } => {
            expect_status(state, process, &[ProcessStatus::Sent])?;
            if reasons.is_empty() {
                return Err(Rejection::new(
                    codes::MISSING_FIELD,
                    "a reject without reasons",
                ));
            }
            (
                Some(process.clone()),
                Change::Rejected {
                    reasons: reasons.clone(),
                },
            )
        }
        Command::Cancel { process } => {
            let p = expect_status(
                state,
                process,
                &[ProcessStatus::Sent, ProcessStatus::Accepted],
            )?;
            check_cancel(state, today, p)?;
            let change = Change::Cancelled {
                by: state.us.to_string(),
                reason: Reason::new("A01", format!("cancelled by the supplier: {}", meta.why)),
            };
            (Some(process.clone()), change)
        }
        Command::CancelledByDataHub { process, reason } => {
            expect_status(
                state,
                process,
                &[ProcessStatus::Sent, ProcessStatus::Accepted],
            )?;
            let change = Change::Cancelled {
                by: crate::state::DATAHUB_GLN.to_owned(),
                reason: reason.clone(),
            };
            (Some(process.clone()), change)
        }
        Command::TakeEffect {
            process,
            disconnected_on,
        } => {
            let p = expect_status(state, process, &[ProcessStatus::Accepted])?;
            let on = check_take_effect(state, today, p, *disconnected_on)?;
            (Some(process.clone()), Change::TookEffect { on })
        }
        Command::MasterData(master) => {
            in_portfolio(state, "master data")?;
            (None, Change::MasterDataReceived(master.clone()))
        }
        Command::CustomerData {
            customer,
            process,
            personal,
        } => {
            in_portfolio(state, "customer data")?;
            let customer = match customer {
                Some(key) => key.clone(),
                None => customer_of(state, process.as_ref())?,
            };
            (
                None,
                Change::CustomerDataReceived {
                    customer,
                    personal: personal.clone(),
                },
            )
        }
        Command::ChargeLinks(links) => {
            in_portfolio(state, "charge links")?;
            (
                None,
                Change::ChargeLinksReceived {
                    links: links.clone(),
                },
            )
        }
    };
    Ok(Event {
        metering_point: state.gsrn,
        sequence: state.version + 1,
        recorded_at: meta.at,
        actor: meta.actor.clone(),
        why: meta.why.clone(),
        process,
        message_id: meta.message_id.clone(),
        change,
    })
}

/// DataHub's data (RSM-022/028/031) is kept for metering points of our portfolio only: those
/// with a process of ours or one DataHub told us of.
fn in_portfolio(state: &MeteringPoint, what: &str) -> Result<(), Rejection> {
    if state.processes.is_empty() {
        return Err(Rejection::new(
            codes::NOT_IN_PORTFOLIO,
            format!("{what} for a metering point without any process in our portfolio"),
        ));
    }
    Ok(())
}

/// The customer of the process DataHub's RSM-028 names (our process id or DataHub's
/// reference), else of the latest process that starts our supply with a customer.
fn customer_of(
    state: &MeteringPoint,
    process: Option<&ProcessId>,
) -> Result<crate::ids::CustomerKey, Rejection> {
    let named = process.and_then(|id| {
        state.processes.get(id).or_else(|| {
            state
                .processes
                .values()
                .find(|p| p.datahub_ref.as_deref() == Some(id.0.as_str()))
        })
    });
    let found = match (process, named) {
        (Some(id), None) => {
            return Err(Rejection::new(
                codes::UNKNOWN_PROCESS,
                format!("customer data for process {id}, which is not known"),
            ));
        }
        (_, Some(p)) => Some(p),
        (None, None) => state
            .processes
            .values()
            .filter(|p| p.kind.starts_supply() && p.customer.is_some())
            .max_by_key(|p| p.effective),
    };
    found.and_then(|p| p.customer.clone()).ok_or_else(|| {
        Rejection::new(
            codes::MISSING_FIELD,
            "customer data for a process without a customer",
        )
    })
}

fn new_process(
    details: &ProcessDetails,
    requested_by_us: bool,
    status: ProcessStatus,
) -> (Process, Option<crate::personal::Sealed>) {
    let process = Process {
        id: details.process.clone(),
        kind: details.kind,
        supplier: details.supplier.clone(),
        effective: details.effective,
        took_effect_on: None,
        customer: details.customer.as_ref().map(|c| c.key.clone()),
        corrects: details.corrects.clone(),
        balance_responsible: details.balance_responsible.clone(),
        notified_reason: details.notified_reason.clone(),
        datahub_ref: None,
        requested_by_us,
        status,
    };
    (
        process,
        details.customer.as_ref().and_then(|c| c.personal.clone()),
    )
}

fn find<'a>(state: &'a MeteringPoint, id: &ProcessId) -> Result<&'a Process, Rejection> {
    state.processes.get(id).ok_or_else(|| {
        Rejection::new(
            codes::UNKNOWN_PROCESS,
            format!("no process {id} on {}", state.gsrn),
        )
    })
}

fn expect_status<'a>(
    state: &'a MeteringPoint,
    id: &ProcessId,
    allowed: &[ProcessStatus],
) -> Result<&'a Process, Rejection> {
    let p = find(state, id)?;
    if !allowed.contains(&p.status) {
        return Err(Rejection::new(
            codes::INVALID_TRANSITION,
            format!("process {id} is {}", p.status.as_str()),
        ));
    }
    Ok(p)
}

fn require<T>(field: &Option<T>, what: &str, kind: ProcessKind) -> Result<(), Rejection> {
    if field.is_none() {
        return Err(Rejection::new(
            codes::MISSING_FIELD,
            format!("{kind:?} needs {what}"),
        ));
    }
    Ok(())
}

fn check_request(
    state: &MeteringPoint,
    today: NaiveDate,
    d: &ProcessDetails,
) -> Result<(), Rejection> {
    if state.processes.contains_key(&d.process) {
        return Err(Rejection::new(
            codes::DUPLICATE_PROCESS,
            format!("process {} exists", d.process),
        ));
    }
    if d.supplier != state.us {
        return Err(Rejection::new(
            "D02",
            format!(
                "the energy supplier {} in the request is not the sender {}",
                d.supplier, state.us
            ),
        ));
    }
    let must_supply = |what: &str| -> Result<(), Rejection> {
        if state.supply.supplies_on(d.effective) {
            Ok(())
        } else {
            Err(Rejection::new(
                codes::NOT_CURRENT_SUPPLIER,
                format!(
                    "{what} on {}: we do not supply {} that day",
                    d.effective, state.gsrn
                ),
            ))
        }
    };
    match d.kind {
        ProcessKind::ChangeOfSupplier | ProcessKind::MoveIn => {
            require(&d.customer, "a customer", d.kind)?;
            if d.kind == ProcessKind::ChangeOfSupplier {
                rules::change_of_supplier(today, d.effective)?;
            } else {
                rules::move_in(today, d.effective)?;
            }
            if state.supply.supplies_on(d.effective) && d.kind == ProcessKind::ChangeOfSupplier {
                return Err(Rejection::new(
                    codes::ALREADY_SUPPLIER,
                    format!(
                        "we are already the energy supplier of {} on {}",
                        state.gsrn, d.effective
                    ),
                ));
            }
            if let Some(p) = pending_ours(state, |k| k.starts_supply()) {
                return Err(Rejection::new(
                    codes::PRECEDING_TRANSACTION,
                    format!(
                        "process {} ({:?}) for {} is still pending",
                        p.id, p.kind, p.effective
                    ),
                ));
            }
        }
        ProcessKind::EndOfSupply => {
            must_supply("end of supply")?;
            rules::end_of_supply(today, d.effective)?;
            if let Some(p) = pending_ours(state, |k| k == ProcessKind::EndOfSupply) {
                return Err(Rejection::new(
                    "D39",
                    format!("end of supply {} is already ongoing", p.id),
                ));
            }
        }
        ProcessKind::MoveOut => {
            must_supply("move-out")?;
            rules::move_out(today, d.effective)?;
            if state
                .supply
                .period_on(d.effective)
                .is_some_and(|p| p.customer.is_none())
            {
                return Err(Rejection::new(
                    "D29",
                    format!("no customer on {} to move out", d.effective),
                ));
            }
        }
        ProcessKind::IncorrectChangeOfSupplier | ProcessKind::IncorrectMove => {
            check_correction(state, today, d)?
        }
        ProcessKind::CustomerMasterData => {
            require(&d.customer, "a customer", d.kind)?;
            must_supply("customer master data")?;
        }
        ProcessKind::ChangeOfBalanceResponsible => {
            require(
                &d.balance_responsible,
                "a balance responsible party",
                d.kind,
            )?;
            must_supply("change of balance responsible")?;
            if d.effective < today {
                return Err(Rejection::new(
                    codes::WRONG_TIME_PERIOD,
                    format!(
                        "change of balance responsible on {} is in the past",
                        d.effective
                    ),
                ));
            }
        }
        ProcessKind::ForcedChangeOfSupplier => {
            return Err(Rejection::new(
                codes::INVALID_TRANSITION,
                "a forced change of supplier (BRS-044) is DataHub's; it arrives as a notification",
            ));
        }
    }
    Ok(())
}

/// Our process of a kind matching `kind` that has neither ended nor taken effect.
fn pending_ours(state: &MeteringPoint, kind: impl Fn(ProcessKind) -> bool) -> Option<&Process> {
    state.processes.values().find(|p| {
        p.supplier == state.us
            && kind(p.kind)
            && matches!(p.status, ProcessStatus::Sent | ProcessStatus::Accepted)
    })
}

/// BRS-003/011: only on a start of supply that took effect, is of the right kind, involves us,
/// lies within 60 days, and has not been corrected (or had a correction attempted) before.
fn check_correction(
    state: &MeteringPoint,
    today: NaiveDate,
    d: &ProcessDetails,
) -> Result<(), Rejection> {
    let corrected = correctable(state, d)?;
    rules::correction(today, corrected.effective)?;
    let involves_us = corrected.supplier == state.us
        || state.supply.period_ending_at(corrected.effective).is_some();
    if !involves_us {
        return Err(Rejection::new(
            codes::NOT_CURRENT_SUPPLIER,
            format!(
                "process {} neither started nor ended our supply",
                corrected.id
            ),
        ));
    }
    Ok(())
}

/// The corrected process of a BRS-003/011 request or notification, if it may be corrected.
fn correctable<'a>(state: &'a MeteringPoint, d: &ProcessDetails) -> Result<&'a Process, Rejection> {
    let Some(id) = &d.corrects else {
        return Err(Rejection::new(
            codes::MISSING_FIELD,
            format!("{:?} needs the corrected process", d.kind),
        ));
    };
    let corrected = find(state, id)?;
    let right_kind = match d.kind {
        ProcessKind::IncorrectChangeOfSupplier => {
            matches!(
                corrected.kind,
                ProcessKind::ChangeOfSupplier | ProcessKind::ForcedChangeOfSupplier
            )
        }
        _ => corrected.kind == ProcessKind::MoveIn,
    };
    if !right_kind || !corrected.status.took_effect() {
        return Err(Rejection::new(
            codes::NO_ONGOING_SWITCH,
            format!(
                "process {id} ({:?}, {}) cannot be corrected by {:?}",
                corrected.kind,
                corrected.status.as_str(),
                d.kind
            ),
        ));
    }
    if d.effective != corrected.effective {
        return Err(Rejection::new(
            codes::WRONG_TIME_PERIOD,
            format!(
                "a correction takes effect on the corrected day {}, not {}",
                corrected.effective, d.effective
            ),
        ));
    }
    let earlier = state
        .processes
        .values()
        .find(|p| p.kind.is_correction() && p.corrects.as_ref() == Some(id));
    if let Some(earlier) = earlier {
        return Err(Rejection::new(
            codes::PRECEDING_TRANSACTION,
            format!(
                "process {id} already has the correction {} (a rollback is offered once)",
                earlier.id
            ),
        ));
    }
    Ok(corrected)
}

fn check_notification(state: &MeteringPoint, d: &ProcessDetails) -> Result<(), Rejection> {
    if state.processes.contains_key(&d.process) {
        return Err(Rejection::new(
            codes::DUPLICATE_PROCESS,
            format!("process {} exists", d.process),
        ));
    }
    match d.kind {
        ProcessKind::ChangeOfBalanceResponsible => require(
            &d.balance_responsible,
            "a balance responsible party",
            d.kind,
        ),
        kind if kind.is_correction() => correctable(state, d).map(|_| ()),
        _ => Ok(()),
    }
}

fn check_cancel(state: &MeteringPoint, today: NaiveDate, p: &Process) -> Result<(), Rejection> {
    if !p.requested_by_us || !p.kind.cancellable() {
        return Err(Rejection::new(
            codes::INVALID_TRANSITION,
            format!(
                "process {} ({:?}) cannot be cancelled by {}",
                p.id, p.kind, state.us
            ),
        ));
    }
    // An end of supply can be cancelled until it actually takes effect; the others only
    // before their day (the cut-off).
    if p.kind != ProcessKind::EndOfSupply && today >= p.effective {
        return Err(Rejection::new(
            codes::WRONG_TIME_PERIOD,
            format!(
                "process {} reached its cut-off {}; too late to cancel",
                p.id, p.effective
            ),
        ));
    }
    Ok(())
}

fn check_take_effect(
    state: &MeteringPoint,
    today: NaiveDate,
    p: &Process,
    disconnected_on: Option<NaiveDate>,
) -> Result<NaiveDate, Rejection> {
    let on = match (p.kind, disconnected_on) {
        (ProcessKind::EndOfSupply, Some(day)) => day,
        (_, None) => p.effective,
        (kind, Some(_)) => {
            return Err(Rejection::new(
                codes::INVALID_TRANSITION,
                format!("only an end of supply has a disconnection day, not {kind:?}"),
            ));
        }
    };
    if on < p.effective || on > today {
        return Err(Rejection::new(
            codes::WRONG_TIME_PERIOD,
            format!(
                "process {} cannot take effect on {on}: its day is {} and today is {today}",
                p.id, p.effective
            ),
        ));
    }
    if p.kind.is_correction() {
        let corrected = p.corrects.as_ref().and_then(|c| state.processes.get(c));
        if !corrected.is_some_and(|c| c.status.took_effect()) {
            return Err(Rejection::new(
                codes::NO_ONGOING_SWITCH,
                format!("process {} corrects nothing in effect", p.id),
            ));
        }
    }
    Ok(on)
}
