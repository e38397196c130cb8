//! The portfolio processor's requests beyond a start or end of supply, on an in-memory task:
//! customer master data (BRS-015) goes out as RSM-027 with the customer sealed, a move-out
//! (BRS-010) as RSM-005 with process type E66, an incorrect move (BRS-011) and the rollback
//! of another supplier's change of supplier (BRS-003) as RSM-003 naming DataHub's process;
//! each is one event, and DataHub's confirm accepts it. A request the rules refuse, and a
//! change of balance responsible party (no DataHub document is known for it), is a dead
//! letter with its reason, and nothing is sent.

use afregning_portfolio::personal::{Cpr, CustomerIdentity, Keyring, PersonName, PersonalData};
use afregning_portfolio::{CustomerKey, CustomerRef, ProcessDetails, ProcessId, ProcessKind};
use afregning_topology::records::{DeadLetter, OutboundRequest};
use chrono::NaiveDate;

use super::tests::{
    CPR, DEAD, EVENTS, OUTBOUND, US, accepted_move_in, event, keyring, on, record, task,
};
use super::*;
use crate::runtime::testing::MemoryTask;
use crate::shared::Wire;
use crate::testdata::at;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).expect("day")
}

fn request(id: &str, kind: ProcessKind, effective: NaiveDate) -> ProcessDetails {
    ProcessDetails {
        process: ProcessId(id.into()),
        kind,
        supplier: Gln::parse(US).expect("gln"),
        effective,
        customer: None,
        corrects: None,
        balance_responsible: None,
        notified_reason: None,
    }
}

fn customer(keys: &Keyring) -> CustomerRef {
    CustomerRef {
        key: CustomerKey("c-2".into()),
        personal: Some(
            keys.seal(&PersonalData {
                identity: CustomerIdentity::Cpr(Cpr::parse(CPR).expect("cpr")),
                name: PersonName::new("Jan Hansen"),
            })
            .expect("seal"),
        ),
    }
}

/// Decides one command at `when`: the event's change (if any) and the outbound request.
fn decide_one(
    t: &mut MemoryTask<Portfolio>,
    offset: i64,
    when: &str,
    command: Command,
) -> (Option<Event>, Option<OutboundRequest>, Vec<DeadLetter>) {
    let out = t
        .process(&[record(offset, when, command)], at(when))
        .expect("process");
    for o in &out {
        let text = String::from_utf8_lossy(o.value.as_deref().unwrap_or_default()).into_owned();
        assert!(
            !text.contains(CPR) && !text.contains("Jan Hansen"),
            "plaintext on {}",
            o.topic
        );
    }
    let decode = |o: &OutputRecord| o.value.as_deref().expect("value").to_vec();
    (
        on(&out, EVENTS).first().map(event),
        on(&out, OUTBOUND)
            .first()
            .map(|o| Wire::local().decode(&decode(o)).expect("outbound request")),
        on(&out, DEAD)
            .iter()
            .map(|o| Wire::local().decode(&decode(o)).expect("dead letter"))
            .collect(),
    )
}

/// Our move-in of 10 March, confirmed as `bp-1`, in effect.
fn supplied_from_the_10th(keys: &Keyring) -> MemoryTask<Portfolio> {
    let mut t = task();
    accepted_move_in(&mut t, keys, day(10), Some("bp-1"));
    let took = t.tick(at("2026-03-09T23:00:00Z")).expect("tick");
    assert_eq!(event(&on(&took, EVENTS)[0]).change.name(), "took_effect");
    t
}

#[test]
fn customer_data_move_out_and_an_incorrect_move_go_out_as_rsm027_rsm005_and_rsm003() {
    let keys = keyring();
    let mut t = supplied_from_the_10th(&keys);

    // BRS-015: RSM-027 with the customer sealed; the connector opens it.
    let data = Command::Request(ProcessDetails {
        customer: Some(customer(&keys)),
        ..request("data-1", ProcessKind::CustomerMasterData, day(12))
    });
    let (sent, doc, dead) = decide_one(&mut t, 2, "2026-03-11T09:00:00Z", data);
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(sent.expect("event").change.name(), "request_sent");
    let doc = doc.expect("a document");
    assert_eq!(
        doc.document_type,
        OutboundDocumentType::RequestChangeCustomerCharacteristics
    );
    assert_eq!(doc.request_id, "portfolio-data-1");
    let opened = afregning_portfolio::outbound::open_placeholders(&doc.body, &keys)
        .expect("the connector opens it");
    let afregning_cim::Document::RequestChangeCustomerCharacteristics(parsed) =
        afregning_cim::parse(opened.as_bytes()).expect("a valid RSM-027 once opened")
    else {
        panic!("not an RSM-027");
    };
    let mp = &parsed.records[0].metering_point;
    assert_eq!(
        mp.first_customer_id.as_ref().map(|c| c.value.as_str()),
        Some(CPR)
    );
    let (accepted, doc, _) = decide_one(
        &mut t,
        3,
        "2026-03-11T10:00:00Z",
        Command::Accept {
            process: ProcessId("data-1".into()),
            datahub_ref: Some("bp-2".into()),
        },
    );
    assert_eq!(accepted.expect("event").change.name(), "accepted");
    assert!(doc.is_none(), "an answer sends nothing");

    // BRS-010: RSM-005 with process type E66.
    let move_out = Command::Request(request("out-1", ProcessKind::MoveOut, day(20)));
    let (sent, doc, _) = decide_one(&mut t, 4, "2026-03-12T09:00:00Z", move_out);
    assert_eq!(sent.expect("event").change.name(), "request_sent");
    let doc = doc.expect("a document");
    assert_eq!(doc.document_type, OutboundDocumentType::RequestEndOfSupply);
    let afregning_cim::Document::RequestEndOfSupply(parsed) =
        afregning_cim::parse(doc.body.as_bytes()).expect("a valid RSM-005")
    else {
        panic!("not an RSM-005");
    };
    assert_eq!(parsed.header.process_type.as_str(), "E66");
    assert_eq!(parsed.records[0].transaction_id, "out-1");

    // BRS-011: the move-in was wrong; RSM-003 (D33) names DataHub's bp-1.
    let incorrect = Command::Request(ProcessDetails {
        corrects: Some(ProcessId("move-in-1".into())),
        ..request("rb-1", ProcessKind::IncorrectMove, day(10))
    });
    let (sent, doc, _) = decide_one(&mut t, 5, "2026-03-12T10:00:00Z", incorrect);
    assert_eq!(sent.expect("event").change.name(), "request_sent");
    let doc = doc.expect("a document");
    assert_eq!(
        doc.document_type,
        OutboundDocumentType::RequestReallocateChangeOfSupplier
    );
    let afregning_cim::Document::RequestReallocateChangeOfSupplier(parsed) =
        afregning_cim::parse(doc.body.as_bytes()).expect("a valid RSM-003")
    else {
        panic!("not an RSM-003");
    };
    assert_eq!(parsed.header.process_type.as_str(), "D33");
    assert_eq!(
        parsed.records[0].business_process_id.as_deref(),
        Some("bp-1")
    );
}

#[test]
fn the_rollback_of_a_takeover_goes_out_as_rsm003_and_resumes_our_supply() {
    let keys = keyring();
    let mut t = supplied_from_the_10th(&keys);
    let takeover = Command::Notify(ProcessDetails {
        supplier: Gln::parse(afregning_cim::DATAHUB_GLN).expect("gln"),
        notified_reason: Some("E03".into()),
        ..request("bp-takeover", ProcessKind::ChangeOfSupplier, day(20))
    });
    decide_one(&mut t, 2, "2026-03-12T08:00:00Z", takeover);
    t.tick(at("2026-03-19T23:30:00Z")).expect("tick");

    let rollback = Command::Request(ProcessDetails {
        corrects: Some(ProcessId("bp-takeover".into())),
        ..request("rb-3", ProcessKind::IncorrectChangeOfSupplier, day(20))
    });
    let (sent, doc, dead) = decide_one(&mut t, 3, "2026-03-23T09:00:00Z", rollback);
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(sent.expect("event").change.name(), "request_sent");
    let doc = doc.expect("a document");
    let afregning_cim::Document::RequestReallocateChangeOfSupplier(parsed) =
        afregning_cim::parse(doc.body.as_bytes()).expect("a valid RSM-003")
    else {
        panic!("not an RSM-003");
    };
    assert_eq!(parsed.header.process_type.as_str(), "D07");
    // The notified takeover's id is DataHub's reference.
    assert_eq!(
        parsed.records[0].business_process_id.as_deref(),
        Some("bp-takeover")
    );
    let (accepted, _, _) = decide_one(
        &mut t,
        4,
        "2026-03-23T10:00:00Z",
        Command::Accept {
            process: ProcessId("rb-3".into()),
            datahub_ref: Some("bp-9".into()),
        },
    );
    assert_eq!(accepted.expect("event").change.name(), "accepted");
    let out = t.tick(at("2026-03-23T12:00:00Z")).expect("tick");
    let took = event(&on(&out, EVENTS)[0]);
    assert_eq!(
        (
            took.process.as_ref().map(|p| p.0.as_str()),
            took.change.name()
        ),
        (Some("rb-3"), "took_effect")
    );
}

#[test]
fn refused_lifecycle_requests_are_dead_letters_and_nothing_is_sent() {
    let keys = keyring();
    let mut t = supplied_from_the_10th(&keys);
    let refusals = [
        // Customer data for a day we do not supply: D08.
        (
            Command::Request(ProcessDetails {
                customer: Some(customer(&keys)),
                ..request("data-early", ProcessKind::CustomerMasterData, day(5))
            }),
            "D08",
        ),
        // A rollback more than 60 days after the corrected day: E17.
        (
            Command::Request(ProcessDetails {
                corrects: Some(ProcessId("move-in-1".into())),
                ..request("rb-late", ProcessKind::IncorrectMove, day(10))
            }),
            "E17",
        ),
        // A change of balance responsible party: no DataHub document is known.
        (
            Command::Request(ProcessDetails {
                balance_responsible: Some(Gln::parse("5790000000005").expect("gln")),
                ..request("brp-1", ProcessKind::ChangeOfBalanceResponsible, day(30))
            }),
            "no DataHub document for it is known",
        ),
    ];
    for (i, (command, code)) in refusals.into_iter().enumerate() {
        let when = if code == "E17" {
            "2026-05-20T09:00:00Z"
        } else {
            "2026-03-12T09:00:00Z"
        };
        let (sent, doc, dead) = decide_one(&mut t, 2 + i as i64, when, command);
        assert!(sent.is_none() && doc.is_none(), "{code}: nothing happens");
        assert_eq!(dead.len(), 1, "{code}");
        assert!(dead[0].reason.contains(code), "{code}: {}", dead[0].reason);
    }
}
