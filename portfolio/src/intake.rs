//! What the `portfolio` processor (`processors/src/portfolio/`) needs besides
//! [`crate::decide`]: commands as records on the commands topic, and the processes whose day
//! has come. Pure.
//!
//! Every change of a metering point's portfolio goes through one writer: the operator's
//! requests (CLI, API) and DataHub's answers and notifications (mapped by validate,
//! [`crate::answers`]) are [`CommandRecord`]s on the commands topic (`TopicId::PortfolioCommands`), keyed by
//! metering point; the processor decides each against the state it keeps and publishes the
//! event. Two writers deciding on the same stale state cannot happen (decision 0145).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use afregning_cim::gsrn::Gsrn;

use crate::command::{Command, CommandMeta};
use crate::ids::{ProcessId, gsrn_serde};
use crate::process::ProcessStatus;
use crate::state::MeteringPoint;

/// One command for one metering point: the value of a record on the commands topic, whose
/// key is the GSRN as 18 ASCII digits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// The metering point (also the record key).
    #[serde(with = "gsrn_serde")]
    pub metering_point: Gsrn,
    /// Who, when, why and which message.
    pub meta: CommandMeta,
    /// What.
    pub command: Command,
}

impl CommandRecord {
    /// The record value (JSON).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a record value; the error says what is wrong, for the dead letter.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes)
            .map_err(|e| format!("not a portfolio command record (JSON): {e}"))
    }
}

/// The processes of `state` that take effect by `today` (a Danish calendar day): accepted,
/// not yet in effect, their day reached. An end of supply takes effect on its requested
/// day: DataHub's notice of a later disconnection is not mapped yet (docs/portfolio.md).
pub fn due(state: &MeteringPoint, today: NaiveDate) -> Vec<ProcessId> {
    let mut due: Vec<(&NaiveDate, &ProcessId)> = state
        .processes
        .values()
        .filter(|p| p.status == ProcessStatus::Accepted && p.effective <= today)
        .map(|p| (&p.effective, &p.id))
        .collect();
    // A rollback after what it rolls back; otherwise by day, then id: deterministic.
    due.sort_by_key(|(day, id)| {
        let correction = state
            .processes
            .get(*id)
            .is_some_and(|p| p.corrects.is_some());
        (correction, **day, (*id).clone())
    });
    due.into_iter().map(|(_, id)| id.clone()).collect()
}

/// True when some process still waits for its day: the processor keeps such metering points
/// marked and looks at them at each tick.
pub fn has_pending(state: &MeteringPoint) -> bool {
    state
        .processes
        .values()
        .any(|p| p.status == ProcessStatus::Accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{CustomerRef, ProcessDetails};
    use crate::decide;
    use crate::ids::{CustomerKey, Gln};
    use crate::process::ProcessKind;
    use chrono::{TimeZone, Utc};

    const US: &str = "5790001330583";

    fn meta(day: u32) -> CommandMeta {
        CommandMeta {
            at: Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap(),
            actor: "test".into(),
            why: "test".into(),
            message_id: None,
        }
    }

    fn gsrn() -> Gsrn {
        Gsrn::parse("571313180400000011").unwrap()
    }

    fn move_in(id: &str, effective: NaiveDate) -> Command {
        Command::Request(ProcessDetails {
            process: ProcessId(id.into()),
            kind: ProcessKind::MoveIn,
            supplier: Gln::parse(US).unwrap(),
            effective,
            customer: Some(CustomerRef {
                key: CustomerKey("c1".into()),
                personal: None,
            }),
            corrects: None,
            balance_responsible: None,
            notified_reason: None,
        })
    }

    fn run(state: MeteringPoint, day: u32, command: Command) -> MeteringPoint {
        let event = decide(&state, &meta(day), &command).unwrap();
        state.apply(&event)
    }

    #[test]
    fn a_command_record_round_trips_through_json() {
        let record = CommandRecord {
            metering_point: gsrn(),
            meta: meta(3),
            command: move_in("p1", NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()),
        };
        let back = CommandRecord::from_json(&record.to_json()).unwrap();
        assert_eq!(back, record);
        let charge_links = CommandRecord {
            command: Command::ChargeLinks(Vec::new()),
            ..record
        };
        assert_eq!(
            CommandRecord::from_json(&charge_links.to_json()).unwrap(),
            charge_links
        );
        assert!(
            CommandRecord::from_json(b"{\"metering_point\":1}")
                .unwrap_err()
                .contains("not a portfolio command record")
        );
    }

    #[test]
    fn an_accepted_process_is_due_on_its_day_and_not_before() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        let state = MeteringPoint::new(gsrn(), Gln::parse(US).unwrap());
        let state = run(state, 3, move_in("p1", day(10)));
        assert!(due(&state, day(10)).is_empty(), "sent, not accepted");
        assert!(!has_pending(&state));
        let state = run(
            state,
            3,
            Command::Accept {
                process: ProcessId("p1".into()),
                datahub_ref: None,
            },
        );
        assert!(has_pending(&state));
        assert!(due(&state, day(9)).is_empty());
        assert_eq!(due(&state, day(10)), vec![ProcessId("p1".into())]);
        assert_eq!(due(&state, day(12)), vec![ProcessId("p1".into())]);
        let state = run(
            state,
            10,
            Command::TakeEffect {
                process: ProcessId("p1".into()),
                disconnected_on: None,
            },
        );
        assert!(due(&state, day(12)).is_empty());
        assert!(!has_pending(&state));
        assert!(state.supply.supplies_on(day(10)));
    }
}
