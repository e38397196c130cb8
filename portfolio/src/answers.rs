//! DataHub's answers and notifications as portfolio commands: what validate publishes on the
//! commands topic for the `portfolio` processor. Pure.
//!
//! - RSM-001/RSM-005 confirm → [`Command::Accept`], reject → [`Command::Reject`] with the
//!   reasons verbatim; likewise the confirm and reject of RSM-003 (corrections) and RSM-027
//!   (customer data), whose names are inferred from that pattern (no XSD of them is public;
//!   `afregning_cim::Shape::InferredAnswer`). DataHub names our request by its transaction id
//!   (`originalTransactionIDReference_MktActivityRecord.mRID`), which is our process id
//!   ([`crate::outbound`] sends it as the record's `mRID`): that is the correlation.
//! - RSM-004 `GenericNotification` (E44) → [`Command::Notify`]: another supplier's change of
//!   supplier (process type E03) or a move-in that stops our supply (E01, "information om
//!   stop af leverance") takes the metering point on `validityStart` (NOTES §1, §2.1, §2.6).
//!   The notification does not name the new supplier; the process records DataHub's GLN as
//!   the acting party, which is what ends *our* supply, and the process type as DataHub's
//!   reason.
//! - RSM-025 `NotifyCancellation` → [`Command::CancelledByDataHub`] of the process it names;
//!   the one that answers our own RSM-024 maps to nothing (the cancellation is recorded).
//! - RSM-028 customer data: see [`crate::master_data`] (which also maps RSM-022/031).
//!
//! A document that cannot be keyed by a metering point or whose process is not one we map is
//! an error with the reason: validate dead-letters it, nothing is dropped in silence.

use afregning_cim::answer::{Confirmation, Rejection as CimRejection};
use afregning_cim::codes::ProcessType;
use afregning_cim::rsm004::GenericNotification;
use afregning_cim::rsm025::NotifyCancellation;
use afregning_cim::{DATAHUB_GLN, Document, Header};
use afregning_settlement::calendar::local_date;

use crate::command::{Command, CommandMeta, ProcessDetails};
use crate::ids::{Gln, ProcessId};
use crate::intake::CommandRecord;
use crate::process::ProcessKind;
use crate::reason::Reason;

/// The commands a DataHub document carries for the portfolio, or `None` when it carries
/// none (not an answer or notification of a portfolio process). `Err` says why a portfolio
/// document cannot be mapped.
pub fn commands(document: &Document) -> Option<Result<Vec<CommandRecord>, String>> {
    Some(match document {
        Document::ConfirmRequestChangeOfSupplier(doc)
        | Document::ConfirmRequestEndOfSupply(doc)
        | Document::ConfirmRequestReallocateChangeOfSupplier(doc)
        | Document::ConfirmRequestChangeCustomerCharacteristics(doc) => Ok(confirmations(doc)),
        Document::RejectRequestChangeOfSupplier(doc)
        | Document::RejectRequestEndOfSupply(doc)
        | Document::RejectRequestReallocateChangeOfSupplier(doc)
        | Document::RejectRequestChangeCustomerCharacteristics(doc) => rejections(doc),
        Document::GenericNotification(doc) => notifications(doc),
        Document::NotifyCancellation(doc) => Ok(cancellations(doc)),
        Document::CharacteristicsOfACustomerAtAnAP(_) => {
            return crate::master_data::commands(document);
        }
        _ => return None,
    })
}

/// Who, when and which message: DataHub, at the document's creation.
pub(crate) fn meta(header: &Header, why: &str) -> CommandMeta {
    CommandMeta {
        at: header.created,
        actor: header.sender.id.value.clone(),
        why: why.to_string(),
        message_id: Some(header.message_id.clone()),
    }
}

fn confirmations(doc: &Confirmation) -> Vec<CommandRecord> {
    let why = format!("DataHub confirmed ({})", doc.header.document_type.as_str());
    doc.records
        .iter()
        .map(|r| CommandRecord {
            metering_point: r.metering_point,
            meta: meta(&doc.header, &why),
            command: Command::Accept {
                process: ProcessId(
                    r.original_transaction_id
                        .clone()
                        .unwrap_or_else(|| r.transaction_id.clone()),
                ),
                datahub_ref: r.business_process_id.clone(),
            },
        })
        .collect()
}

fn rejections(doc: &CimRejection) -> Result<Vec<CommandRecord>, String> {
    let why = format!("DataHub rejected ({})", doc.header.document_type.as_str());
    doc.records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let metering_point = r.metering_point.ok_or_else(|| {
                format!(
                    "reject record {i} ({}) names no metering point: it cannot be matched to a process",
                    r.transaction_id
                )
            })?;
            let original = r.original_transaction_id.clone().ok_or_else(|| {
                format!(
                    "reject record {i} ({}) names no original transaction: it cannot be matched to a process",
                    r.transaction_id
                )
            })?;
            Ok(CommandRecord {
                metering_point,
                meta: meta(&doc.header, &why),
                command: Command::Reject {
                    process: ProcessId(original),
                    reasons: r
                        .reasons
                        .iter()
                        .map(|reason| {
                            Reason::new(
                                reason.code.as_str(),
                                reason.text.clone().unwrap_or_default(),
                            )
                        })
                        .collect(),
                },
            })
        })
        .collect()
}

/// The suffix of our RSM-024's transaction id (`<process id>-cancel`,
/// [`crate::outbound::cancellation_id`]): DataHub's RSM-025 naming it confirms our own
/// cancellation.
pub const CANCELLATION_SUFFIX: &str = "-cancel";

/// RSM-025: a process DataHub cancelled becomes [`Command::CancelledByDataHub`]; the record
/// that answers our own RSM-024 (its original transaction is our `<process>-cancel`) needs
/// nothing, the cancellation was recorded when we sent it.
fn cancellations(doc: &NotifyCancellation) -> Vec<CommandRecord> {
    doc.records
        .iter()
        .filter(|r| {
            !r.original_transaction_id
                .as_deref()
                .is_some_and(|o| o.ends_with(CANCELLATION_SUFFIX))
        })
        .filter_map(|r| {
            let process = r
                .original_transaction_id
                .clone()
                .or_else(|| r.business_process_id.clone())?;
            Some(CommandRecord {
                metering_point: r.metering_point,
                meta: meta(&doc.header, "DataHub cancelled the process (RSM-025)"),
                command: Command::CancelledByDataHub {
                    process: ProcessId(process),
                    reason: Reason::new(
                        doc.header.document_type.as_str(),
                        "DataHub notified the cancellation (RSM-025)",
                    ),
                },
            })
        })
        .collect()
}

fn notifications(doc: &GenericNotification) -> Result<Vec<CommandRecord>, String> {
    let kind = match doc.header.process_type {
        ProcessType::CHANGE_OF_SUPPLIER => ProcessKind::ChangeOfSupplier,
        ProcessType::MOVE => ProcessKind::MoveIn,
        other => {
            return Err(format!(
                "an RSM-004 notification of process type {} is not mapped to the portfolio (only E03 change of supplier and E01 stop of supply on a move-in)",
                other.as_str()
            ));
        }
    };
    let datahub = Gln::parse(DATAHUB_GLN).ok_or("DataHub's GLN does not parse")?;
    let reason = Some(doc.header.process_type.as_str().to_string());
    Ok(doc
        .records
        .iter()
        .map(|r| CommandRecord {
            metering_point: r.metering_point,
            meta: meta(&doc.header, "DataHub notified (RSM-004)"),
            command: Command::Notify(ProcessDetails {
                process: ProcessId(
                    r.business_process_id
                        .clone()
                        .unwrap_or_else(|| r.transaction_id.clone()),
                ),
                kind,
                supplier: datahub.clone(),
                effective: local_date(r.validity_start),
                customer: None,
                corrects: None,
                balance_responsible: None,
                notified_reason: reason.clone(),
            }),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL_REJECT: &str =
        "../../shared/lifecycle/examples/rsm001-RejectRequestChangeOfSupplier.json";

    #[test]
    fn energinets_reject_example_becomes_a_reject_of_our_transaction_with_its_reason() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(REAL_REJECT);
        let bytes = std::fs::read(&path).expect("the real RSM-001 reject example");
        let document = afregning_cim::parse(&bytes).expect("it parses");
        let records = commands(&document).expect("a portfolio answer").unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.metering_point.to_string(), "579999993331812345");
        assert_eq!(r.meta.message_id.as_deref(), Some("45678912"));
        assert_eq!(r.meta.actor, "5790001330552");
        assert_eq!(
            r.command,
            Command::Reject {
                process: ProcessId("25814796".into()),
                reasons: vec![Reason::new(
                    "E17",
                    "Startdato 2010-07-09T22:00:00Z er ikke korrekt"
                )],
            }
        );
    }

    /// Energinet's reject example turned into the confirm of `name` (type 414 → A01, no
    /// reasons, DataHub's process reference `bp-9`).
    fn confirm_of(reject: &str, name: &str) -> String {
        let start = reject.find("\"Reason\"").expect("reasons");
        let end = reject[start..].find(']').expect("end of reasons") + start + 1;
        format!(
            "{}\"businessProcessReference_MktActivityRecord.mRID\": \"bp-9\"{}",
            &reject[..start],
            &reject[end..]
        )
        .replace(&format!("Reject{name}"), &format!("Confirm{name}"))
        .replace("\"A02\"", "\"A01\"")
    }

    /// RSM-001's confirm, and the answers to RSM-003 (corrections) and RSM-027 (customer
    /// data), whose names follow RSM-001's: a reject rejects our transaction with its reason,
    /// a confirm accepts it with DataHub's process reference.
    #[test]
    fn confirms_and_rejects_of_rsm001_003_and_027_name_our_transaction() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(REAL_REJECT);
        let reject = std::fs::read_to_string(path).expect("the real RSM-001 reject example");
        for name in [
            "RequestChangeOfSupplier",
            "RequestReallocateChangeOfSupplier",
            "RequestChangeCustomerCharacteristics",
        ] {
            let text = reject.replace("RequestChangeOfSupplier", name);
            let document = afregning_cim::parse(text.as_bytes()).expect("the reject parses");
            let records = commands(&document).expect("a portfolio answer").unwrap();
            let Command::Reject { process, reasons } = &records[0].command else {
                panic!("{name}: {:?}", records[0].command);
            };
            assert_eq!(
                (process.0.as_str(), reasons[0].code.as_str()),
                ("25814796", "E17")
            );
            let confirm = confirm_of(&text, name);
            let document = afregning_cim::parse(confirm.as_bytes()).expect("the confirm parses");
            let records = commands(&document).expect("a portfolio answer").unwrap();
            assert_eq!(
                records[0].command,
                Command::Accept {
                    process: ProcessId("25814796".into()),
                    datahub_ref: Some("bp-9".into()),
                },
                "{name}"
            );
        }
    }

    fn notification(process_type: &str) -> Document {
        let text = format!(
            r#"{{"GenericNotification_MarketDocument": {{"mRID": "g1", "type": {{"value": "E44"}},
            "process.processType": {{"value": "{process_type}"}}, "businessSector.type": {{"value": "23"}},
            "sender_MarketParticipant.mRID": {{"codingScheme": "A10", "value": "{DATAHUB_GLN}"}},
            "sender_MarketParticipant.marketRole.type": {{"value": "DDZ"}},
            "receiver_MarketParticipant.mRID": {{"codingScheme": "A10", "value": "5790001330583"}},
            "receiver_MarketParticipant.marketRole.type": {{"value": "DDQ"}},
            "createdDateTime": "2026-03-02T07:30:54Z",
            "MktActivityRecord": [{{"mRID": "r1", "businessProcessReference_MktActivityRecord.mRID": "bp-1",
            "validityStart_DateAndOrTime.dateTime": "2026-03-14T23:00:00Z",
            "marketEvaluationPoint.mRID": {{"codingScheme": "A10", "value": "571313180400000011"}}}}]}}}}"#
        );
        afregning_cim::parse(text.as_bytes()).expect("generic notification")
    }

    /// RSM-025 for `original`: the RSM-004 sample with the cancellation's root, type and
    /// record (no validity start, an original transaction).
    fn cancellation(original: &str) -> Document {
        let written = afregning_cim::write(&notification("E20"));
        let mut json: serde_json::Value = serde_json::from_slice(&written).expect("json");
        let mut doc = json["GenericNotification_MarketDocument"].take();
        doc["type"]["value"] = "E78".into();
        let record = doc["MktActivityRecord"][0]
            .as_object_mut()
            .expect("a record");
        record.remove("validityStart_DateAndOrTime.dateTime");
        record.insert(
            "originalTransactionIDReference_MktActivityRecord.mRID".into(),
            original.into(),
        );
        let text = serde_json::json!({ "NotifyCancellation_MarketDocument": doc }).to_string();
        afregning_cim::parse(text.as_bytes()).expect("notify cancellation")
    }

    #[test]
    fn rsm025_cancels_the_named_process_and_confirms_our_own_cancellation_silently() {
        let records = commands(&cancellation("end-1"))
            .expect("portfolio")
            .unwrap();
        assert_eq!(
            records[0].command,
            Command::CancelledByDataHub {
                process: ProcessId("end-1".into()),
                reason: Reason::new("E78", "DataHub notified the cancellation (RSM-025)"),
            }
        );
        let ours = commands(&cancellation("end-1-cancel"))
            .expect("portfolio")
            .unwrap();
        assert!(ours.is_empty(), "{ours:?}");
    }

    #[test]
    fn an_rsm004_takeover_notifies_a_process_on_its_danish_day() {
        let records = commands(&notification("E03")).expect("portfolio").unwrap();
        let Command::Notify(details) = &records[0].command else {
            panic!("{:?}", records[0].command);
        };
        assert_eq!(details.kind, ProcessKind::ChangeOfSupplier);
        assert_eq!(details.process, ProcessId("bp-1".into()));
        // 23:00 UTC on 14 March is midnight of 15 March in Copenhagen.
        assert_eq!(details.effective.to_string(), "2026-03-15");
        assert_eq!(details.supplier.as_str(), DATAHUB_GLN);
        assert_eq!(details.notified_reason.as_deref(), Some("E03"));
        let move_in = commands(&notification("E01")).expect("portfolio").unwrap();
        let Command::Notify(details) = &move_in[0].command else {
            panic!("{:?}", move_in[0].command);
        };
        assert_eq!(details.kind, ProcessKind::MoveIn);
        let unmapped = commands(&notification("E20")).expect("portfolio");
        assert!(
            unmapped
                .unwrap_err()
                .contains("process type E20 is not mapped")
        );
    }
}
