//! The portfolio processor on an in-memory task: a move-in request is one event and one
//! RSM-001 on the outbound topic with no personal data in plaintext; DataHub's confirm
//! accepts it; the tick on its day (and not before) makes it take effect; a rejected
//! command is a dead letter with the rule's code; re-deciding the same batch from the same
//! state gives byte-identical outputs.

use afregning_portfolio::personal::{CustomerIdentity, Keyring, PersonName, PersonalData};
use afregning_portfolio::{CustomerKey, CustomerRef, ProcessDetails, ProcessId, ProcessKind};
use afregning_topology::records::{DeadLetter, OutboundRequest};
use afregning_topology::{Catalogue, TopologySettings};
use chrono::NaiveDate;

use super::*;
use crate::runtime::testing::MemoryTask;
use crate::runtime::typed::{StoreKey, StoreValue};
use crate::shared::Wire;
use crate::testdata::at;

pub(super) const US: &str = "5790001330583";
pub(super) const GSRN: &str = "571313180400000011";
pub(super) const CPR: &str = "0801741527";
pub(super) const COMMANDS: &str = "afregning.portfolio.commands.v1";
pub(super) const EVENTS: &str = "afregning.portfolio.events.v1";
pub(super) const OUTBOUND: &str = "afregning.datahub.outbound-requests.v1";
pub(super) const DEAD: &str = "afregning.ops.dead-letters.v1";

pub(super) fn topics() -> Topics {
    Topics::new(
        Catalogue::new(TopologySettings::default()).expect("catalogue"),
        Wire::local(),
    )
}

pub(super) fn task() -> MemoryTask<Portfolio> {
    let config = PortfolioConfig {
        us: Gln::parse(US).expect("gln"),
        tick_interval: Duration::from_secs(1),
    };
    MemoryTask::new(Portfolio::new(topics(), config), 0)
}

pub(super) fn gsrn() -> afregning_cim::Gsrn {
    afregning_cim::Gsrn::parse(GSRN).expect("gsrn")
}

pub(super) fn record(offset: i64, at_text: &str, command: Command) -> InputRecord {
    let value = CommandRecord {
        metering_point: gsrn(),
        meta: CommandMeta {
            at: at(at_text),
            actor: "operator-1".into(),
            why: "test".into(),
            message_id: None,
        },
        command,
    };
    InputRecord {
        topic: COMMANDS.into(),
        partition: 0,
        offset,
        timestamp: None,
        key: Some(GSRN.as_bytes().to_vec()),
        value: Some(value.to_json()),
        headers: Vec::new(),
    }
}

pub(super) fn move_in(keys: &Keyring, effective: NaiveDate) -> Command {
    let personal = keys
        .seal(&PersonalData {
            identity: CustomerIdentity::Cpr(
                afregning_portfolio::personal::Cpr::parse(CPR).expect("cpr"),
            ),
            name: PersonName::new("Jan Hansen"),
        })
        .expect("seal");
    Command::Request(ProcessDetails {
        process: ProcessId("move-in-1".into()),
        kind: ProcessKind::MoveIn,
        supplier: Gln::parse(US).expect("gln"),
        effective,
        customer: Some(CustomerRef {
            key: CustomerKey("c-1".into()),
            personal: Some(personal),
        }),
        corrects: None,
        balance_responsible: None,
        notified_reason: None,
    })
}

pub(super) fn on(outputs: &[OutputRecord], topic: &str) -> Vec<OutputRecord> {
    outputs
        .iter()
        .filter(|o| o.topic == topic)
        .cloned()
        .collect()
}

pub(super) fn event(output: &OutputRecord) -> Event {
    serde_json::from_slice(output.value.as_deref().expect("value")).expect("event")
}

pub(super) fn keyring() -> Keyring {
    let mut k = Keyring::default();
    k.generate("k1").expect("key");
    k
}

#[test]
fn a_move_in_goes_out_is_confirmed_and_takes_effect_on_its_day() {
    let keys = keyring();
    let mut t = task();
    let day = NaiveDate::from_ymd_opt(2026, 3, 10).expect("day");
    let out = t
        .process(
            &[record(0, "2026-03-03T09:00:00Z", move_in(&keys, day))],
            at("2026-03-03T09:00:00Z"),
        )
        .expect("process");
    let events = on(&out, EVENTS);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key, GSRN.as_bytes());
    assert_eq!(event(&events[0]).sequence, 1);
    assert_eq!(event(&events[0]).change.name(), "request_sent");
    let requests = on(&out, OUTBOUND);
    assert_eq!(requests.len(), 1);
    let request: OutboundRequest = Wire::local()
        .decode(requests[0].value.as_deref().expect("value"))
        .expect("outbound request");
    assert_eq!(
        request.document_type,
        OutboundDocumentType::RequestChangeOfSupplier
    );
    assert_eq!(request.requested_by, "operator-1");
    for o in &out {
        let bytes = o.value.clone().unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(CPR) && !text.contains("Jan Hansen"),
            "plaintext in {}",
            o.topic
        );
    }
    let opened = afregning_portfolio::outbound::open_placeholders(&request.body, &keys)
        .expect("the connector opens it");
    assert!(opened.contains(CPR));

    // DataHub confirms (as validate maps it); nothing takes effect before the day.
    let confirm = Command::Accept {
        process: ProcessId("move-in-1".into()),
        datahub_ref: Some("bp-1".into()),
    };
    let out = t
        .process(
            &[record(1, "2026-03-03T10:00:00Z", confirm)],
            at("2026-03-03T10:00:00Z"),
        )
        .expect("process");
    assert_eq!(event(&on(&out, EVENTS)[0]).change.name(), "accepted");
    assert!(on(&out, OUTBOUND).is_empty());
    // 22:59 UTC on 9 March is still 9 March in Copenhagen.
    assert!(t.tick(at("2026-03-09T22:59:00Z")).expect("tick").is_empty());
    let out = t.tick(at("2026-03-09T23:00:00Z")).expect("tick");
    let took = on(&out, EVENTS);
    assert_eq!(took.len(), 1);
    let took = event(&took[0]);
    assert_eq!((took.sequence, took.change.name()), (3, "took_effect"));
    assert_eq!(took.actor, "afregning");
    // Once in effect, later ticks publish nothing.
    assert!(t.tick(at("2026-03-11T12:00:00Z")).expect("tick").is_empty());

    // Another supplier takes it over from 20 March (RSM-004 as validate maps it): our supply
    // ends at the tick of that day.
    let takeover = Command::Notify(ProcessDetails {
        process: ProcessId("bp-takeover".into()),
        kind: ProcessKind::ChangeOfSupplier,
        supplier: Gln::parse(afregning_cim::DATAHUB_GLN).expect("gln"),
        effective: NaiveDate::from_ymd_opt(2026, 3, 20).expect("day"),
        customer: None,
        corrects: None,
        balance_responsible: None,
        notified_reason: Some("E03".into()),
    });
    let out = t
        .process(
            &[record(2, "2026-03-12T08:00:00Z", takeover)],
            at("2026-03-12T08:00:00Z"),
        )
        .expect("process");
    assert_eq!(event(&on(&out, EVENTS)[0]).change.name(), "notified");
    assert!(
        on(&out, OUTBOUND).is_empty(),
        "nothing to send for a notification"
    );
    assert!(t.tick(at("2026-03-18T12:00:00Z")).expect("tick").is_empty());
    let out = t.tick(at("2026-03-19T23:30:00Z")).expect("tick");
    let ended = event(&on(&out, EVENTS)[0]);
    assert_eq!((ended.sequence, ended.change.name()), (5, "took_effect"));
    let stored = t
        .store()
        .entries(STATE_STORE)
        .expect("store")
        .into_iter()
        .find(|(k, _)| k.as_slice() == PointKey(GSRN.into()).to_key().as_slice())
        .expect("the metering point's state");
    let state = StoredPoint::decode(&stored.1).expect("state").0;
    assert!(
        state
            .supply
            .supplies_on(NaiveDate::from_ymd_opt(2026, 3, 19).expect("day"))
    );
    assert!(
        !state
            .supply
            .supplies_on(NaiveDate::from_ymd_opt(2026, 3, 20).expect("day"))
    );
}

#[test]
fn a_refused_command_is_a_dead_letter_with_the_rules_code_and_changes_nothing() {
    let keys = keyring();
    let mut t = task();
    // A move-in more than 5 working days late is refused (E17) before anything is sent.
    let late = NaiveDate::from_ymd_opt(2026, 2, 2).expect("day");
    let out = t
        .process(
            &[record(0, "2026-03-03T09:00:00Z", move_in(&keys, late))],
            at("2026-03-03T09:00:00Z"),
        )
        .expect("process");
    assert!(on(&out, EVENTS).is_empty() && on(&out, OUTBOUND).is_empty());
    let dead = on(&out, DEAD);
    assert_eq!(dead.len(), 1);
    let letter: DeadLetter = Wire::local()
        .decode(dead[0].value.as_deref().expect("value"))
        .expect("dead letter");
    assert!(letter.reason.contains("E17"), "{}", letter.reason);
    assert!(letter.reason.contains("move-in-1"), "{}", letter.reason);
    assert!(!letter.reason.contains(CPR));
    // An answer to a request nobody sent is refused too.
    let stray = Command::Accept {
        process: ProcessId("unknown".into()),
        datahub_ref: None,
    };
    let out = t
        .process(
            &[record(1, "2026-03-03T09:00:00Z", stray)],
            at("2026-03-03T09:00:00Z"),
        )
        .expect("process");
    assert_eq!(on(&out, DEAD).len(), 1);
    assert!(on(&out, EVENTS).is_empty());
    // A record that is not a command is dead-lettered as undecodable.
    let mut garbage = record(2, "2026-03-03T09:00:00Z", Command::ChargeLinks(Vec::new()));
    garbage.value = Some(b"not json".to_vec());
    let out = t
        .process(&[garbage], at("2026-03-03T09:00:00Z"))
        .expect("process");
    let letter: DeadLetter = Wire::local()
        .decode(on(&out, DEAD)[0].value.as_deref().expect("value"))
        .expect("dead letter");
    assert_eq!(letter.error_class, ErrorClass::Undecodable);
}

#[test]
fn the_same_batch_decided_again_from_the_same_state_gives_the_same_outputs() {
    let keys = keyring();
    let day = NaiveDate::from_ymd_opt(2026, 3, 10).expect("day");
    let batch = [record(0, "2026-03-03T09:00:00Z", move_in(&keys, day))];
    let first = task()
        .process(&batch, at("2026-03-03T09:00:00Z"))
        .expect("process");
    let again = task()
        .process(&batch, at("2026-03-03T09:00:00Z"))
        .expect("process");
    let bytes = |o: &[OutputRecord]| -> Vec<(String, Vec<u8>, Option<Vec<u8>>, String)> {
        o.iter()
            .map(|r| {
                (
                    r.topic.clone(),
                    r.key.clone(),
                    r.value.clone(),
                    r.idempotency_key.clone(),
                )
            })
            .collect()
    };
    assert_eq!(bytes(&first), bytes(&again));
}

/// A move-in for `day` requested on 3 March and confirmed by DataHub (with `reference`).
pub(super) fn accepted_move_in(
    t: &mut MemoryTask<Portfolio>,
    keys: &Keyring,
    day: NaiveDate,
    reference: Option<&str>,
) {
    let confirm = Command::Accept {
        process: ProcessId("move-in-1".into()),
        datahub_ref: reference.map(str::to_string),
    };
    t.process(
        &[
            record(0, "2026-03-03T09:00:00Z", move_in(keys, day)),
            record(1, "2026-03-03T10:00:00Z", confirm),
        ],
        at("2026-03-03T10:00:00Z"),
    )
    .expect("process");
}

#[test]
fn our_cancellation_before_the_day_goes_to_datahub_and_nothing_takes_effect() {
    let keys = keyring();
    let mut t = task();
    let day = NaiveDate::from_ymd_opt(2026, 3, 10).expect("day");
    accepted_move_in(&mut t, &keys, day, Some("bp-1"));
    let cancel = Command::Cancel {
        process: ProcessId("move-in-1".into()),
    };
    let out = t
        .process(
            &[record(2, "2026-03-05T10:00:00Z", cancel)],
            at("2026-03-05T10:00:00Z"),
        )
        .expect("process");
    assert_eq!(event(&on(&out, EVENTS)[0]).change.name(), "cancelled");
    let requests = on(&out, OUTBOUND);
    assert_eq!(requests.len(), 1);
    let request: OutboundRequest = Wire::local()
        .decode(requests[0].value.as_deref().expect("value"))
        .expect("outbound request");
    assert_eq!(
        request.document_type,
        OutboundDocumentType::RequestCancellation
    );
    assert_eq!(request.request_id, "portfolio-move-in-1-cancel");
    assert!(request.body.contains("\"bp-1\""), "names DataHub's process");
    // The day comes: nothing takes effect, nothing is pending.
    assert!(t.tick(at("2026-03-10T12:00:00Z")).expect("tick").is_empty());
    // Too late to cancel after the cut-off: refused, a dead letter, nothing sent.
    let mut t = task();
    accepted_move_in(&mut t, &keys, day, None);
    let late = Command::Cancel {
        process: ProcessId("move-in-1".into()),
    };
    let out = t
        .process(
            &[record(2, "2026-03-10T08:00:00Z", late)],
            at("2026-03-10T08:00:00Z"),
        )
        .expect("process");
    assert!(on(&out, OUTBOUND).is_empty() && on(&out, EVENTS).is_empty());
    assert_eq!(on(&out, DEAD).len(), 1);
}
