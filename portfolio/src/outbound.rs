//! The CIM requests we send for our processes, and how personal data crosses the broker.
//!
//! A [`crate::Change::RequestSent`] event becomes one document: RSM-001
//! `RequestChangeOfSupplier` for a change of supplier (E03) or move-in (E65), RSM-005
//! `RequestEndOfSupply` for an end of supply (E20) or move-out (E66), RSM-003
//! `RequestReallocateChangeOfSupplier` for a correction (BRS-003 D07, BRS-011 D33) naming
//! DataHub's reference of the process it undoes, RSM-027
//! `RequestChangeCustomerCharacteristics` for customer master data (BRS-015, E34); our
//! cancellation of a pending request becomes an RSM-024 `RequestCancellation`. The record's
//! `mRID` is our process id, so DataHub's answer names it ([`crate::answers`]). A change of
//! balance responsible party (E56) has no known document: the processor refuses it with
//! that reason rather than recording a request nobody sends.
//!
//! **Personal data never crosses the broker in plaintext.** The customer's CPR/CVR and name
//! are written as *sealed placeholders* (`sealed:identity:<seal>`, `sealed:name:<seal>`,
//! the seal as in the event); the connector, which posts the document to DataHub, replaces
//! them with [`open_placeholders`] just before sending (decision 0145). Pure.

use chrono::{DateTime, Utc};
use serde_json::Value;

use afregning_cim::codes::{BusinessSector, CodingScheme, MessageType, ProcessType, Role};
use afregning_cim::rsm001::{RequestChangeOfSupplier, SupplierChange};
use afregning_cim::rsm003::{Reallocation, RequestReallocateChangeOfSupplier};
use afregning_cim::rsm005::{RequestEndOfSupply, SupplyEnd};
use afregning_cim::rsm024::{Cancellation, RequestCancellation};
use afregning_cim::rsm027::{
    CustomerCharacteristics, CustomerMeteringPoint, RequestChangeCustomerCharacteristics,
};
use afregning_cim::{DATAHUB_GLN, DocumentKind, Gsrn, Header, Participant, PartyId};
use afregning_settlement::calendar::local_midnight;

use crate::ids::Gln;
use crate::personal::{CustomerIdentity, Keyring, SealError, Sealed};
use crate::process::{Process, ProcessKind};

/// Prefix of a sealed customer identity (CPR or CVR) in an outbound document.
pub const SEALED_IDENTITY: &str = "sealed:identity:";
/// Prefix of a sealed customer name in an outbound document.
pub const SEALED_NAME: &str = "sealed:name:";

/// A request document ready for the outbound topic (placeholders still sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDocument {
    /// Which document (RSM-001, RSM-005 or RSM-024).
    pub kind: DocumentKind,
    /// Its (single) record's transaction `mRID`: our process id, or `<process id>-cancel`.
    pub transaction_id: String,
    /// The CIM JSON.
    pub body: String,
}

/// The document for our request `process` on `metering_point`, sent by `us` under
/// `message_id` at `created`, with the customer's `personal` data as placeholders; a
/// correction names `corrected`, the process it undoes. `Err` when we send no document for
/// it (a change of balance responsible party: no DataHub document for it is known), or when
/// the correction cannot name DataHub's process.
pub fn request_document(
    metering_point: Gsrn,
    process: &Process,
    personal: Option<&Sealed>,
    corrected: Option<&Process>,
    us: &Gln,
    message_id: &str,
    created: DateTime<Utc>,
) -> Result<RequestDocument, String> {
    let (process_type, kind, document_type) = match process.kind {
        ProcessKind::ChangeOfSupplier => (
            ProcessType::CHANGE_OF_SUPPLIER,
            DocumentKind::RequestChangeOfSupplier,
            MessageType::REQUEST_CHANGE_OF_SUPPLIER,
        ),
        ProcessKind::MoveIn => (
            ProcessType::MOVE_IN,
            DocumentKind::RequestChangeOfSupplier,
            MessageType::REQUEST_CHANGE_OF_SUPPLIER,
        ),
        ProcessKind::EndOfSupply => (
            ProcessType::END_OF_SUPPLY,
            DocumentKind::RequestEndOfSupply,
            MessageType::CONTRACT_TERMINATION,
        ),
        ProcessKind::MoveOut => (
            ProcessType::MOVE_OUT,
            DocumentKind::RequestEndOfSupply,
            MessageType::CONTRACT_TERMINATION,
        ),
        ProcessKind::IncorrectChangeOfSupplier => (
            ProcessType::ROLLBACK_CHANGE_OF_SUPPLIER,
            DocumentKind::RequestReallocateChangeOfSupplier,
            MessageType::REQUEST_REALLOCATE_CHANGE_OF_SUPPLIER,
        ),
        ProcessKind::IncorrectMove => (
            ProcessType::INCORRECT_MOVE,
            DocumentKind::RequestReallocateChangeOfSupplier,
            MessageType::REQUEST_REALLOCATE_CHANGE_OF_SUPPLIER,
        ),
        ProcessKind::CustomerMasterData => (
            ProcessType::UPDATE_CUSTOMER_MASTER_DATA,
            DocumentKind::RequestChangeCustomerCharacteristics,
            MessageType::REQUEST_CHANGE_CUSTOMER_CHARACTERISTICS,
        ),
        ProcessKind::ChangeOfBalanceResponsible => {
            return Err(
                "afregning does not send change of balance responsible party (E56) requests: \
                 no DataHub document for it is known (lifecycle NOTES §2.5)"
                    .to_string(),
            );
        }
        ProcessKind::ForcedChangeOfSupplier => {
            return Err(
                "a forced change of supplier (BRS-044) is DataHub's; we send no request for it"
                    .to_string(),
            );
        }
    };
    let header = header(us, message_id, created, process_type, document_type);
    let day_start = local_midnight(process.effective);
    let transaction_id = process.id.0.clone();
    let customer_id = |p: &Sealed| PartyId {
        coding_scheme: CodingScheme::CPR,
        value: format!("{SEALED_IDENTITY}{}", p.encode()),
    };
    let customer_name = |p: &Sealed| format!("{SEALED_NAME}{}", p.encode());
    let body = match kind {
        DocumentKind::RequestEndOfSupply => afregning_cim::rsm005::write(&RequestEndOfSupply {
            header,
            records: vec![SupplyEnd {
                transaction_id,
                business_process_id: None,
                metering_point,
                balance_responsible: None,
                shipper: None,
                energy_supplier: Some(PartyId::gln(us.as_str())),
                end: day_start,
            }],
        }),
        DocumentKind::RequestReallocateChangeOfSupplier => {
            afregning_cim::rsm003::write(&RequestReallocateChangeOfSupplier {
                header,
                records: vec![Reallocation {
                    transaction_id,
                    business_process_id: Some(datahub_reference(process, corrected)?),
                    metering_point,
                    start: day_start,
                }],
            })
        }
        DocumentKind::RequestChangeCustomerCharacteristics => {
            let personal = personal.ok_or_else(|| {
                format!(
                    "customer master data {} carries no sealed customer data",
                    process.id
                )
            })?;
            afregning_cim::rsm027::write(&RequestChangeCustomerCharacteristics {
                header,
                records: vec![CustomerCharacteristics {
                    transaction_id,
                    business_process_id: None,
                    start: Some(day_start),
                    metering_point: CustomerMeteringPoint {
                        gsrn: metering_point,
                        electrical_heating: None,
                        electrical_heating_from: None,
                        first_customer_id: Some(customer_id(personal)),
                        first_customer_name: Some(customer_name(personal)),
                        second_customer_id: None,
                        second_customer_name: None,
                        protected_name: None,
                        locations: Vec::new(),
                    },
                }],
            })
        }
        _ => afregning_cim::rsm001::write(&RequestChangeOfSupplier {
            header,
            records: vec![SupplierChange {
                transaction_id,
                business_process_id: None,
                balance_responsible: process
                    .balance_responsible
                    .as_ref()
                    .map(|b| PartyId::gln(b.as_str())),
                customer_id: personal.map(customer_id),
                customer_name: personal.map(customer_name),
                energy_supplier: PartyId::gln(us.as_str()),
                metering_point,
                shipper: None,
                start: day_start,
            }],
        }),
    };
    Ok(RequestDocument {
        kind,
        transaction_id: process.id.0.clone(),
        body: String::from_utf8(body)
            .map_err(|e| format!("the CIM writer wrote non-UTF-8: {e}"))?,
    })
}

/// DataHub's reference of the process a correction undoes: the one its confirm gave, or,
/// for a process DataHub told us about (RSM-004), its id, which is DataHub's.
fn datahub_reference(process: &Process, corrected: Option<&Process>) -> Result<String, String> {
    let corrected = corrected.ok_or_else(|| {
        format!(
            "correction {} names no process we know to correct",
            process.id
        )
    })?;
    match (&corrected.datahub_ref, corrected.requested_by_us) {
        (Some(reference), _) => Ok(reference.clone()),
        (None, false) => Ok(corrected.id.0.clone()),
        (None, true) => Err(format!(
            "correction {}: DataHub never gave a process reference for {}",
            process.id, corrected.id
        )),
    }
}

/// The header of a document from us (DDQ) to DataHub (DDZ).
fn header(
    us: &Gln,
    message_id: &str,
    created: DateTime<Utc>,
    process_type: ProcessType,
    document_type: MessageType,
) -> Header {
    Header {
        message_id: message_id.to_string(),
        business_sector: Some(BusinessSector::ELECTRICITY),
        created,
        process_type,
        reason_code: None,
        sender: Participant {
            id: PartyId::gln(us.as_str()),
            role: Role::ENERGY_SUPPLIER,
        },
        receiver: Participant {
            id: PartyId::gln(DATAHUB_GLN),
            role: Role::METERING_POINT_ADMINISTRATOR,
        },
        document_type,
    }
}

/// The RSM-024 `RequestCancellation` of our pending `process` on `metering_point`: it names
/// DataHub's process reference (when the confirm gave one) and our original transaction (the
/// process id). Its transaction `mRID` is `<process id>-cancel`, so a re-sent cancellation
/// repeats its id and DataHub refuses the duplicate.
pub fn cancellation_document(
    metering_point: Gsrn,
    process: &Process,
    us: &Gln,
    message_id: &str,
    created: DateTime<Utc>,
) -> Result<RequestDocument, String> {
    let process_type = match process.kind {
        ProcessKind::ChangeOfSupplier => ProcessType::CHANGE_OF_SUPPLIER,
        ProcessKind::MoveIn => ProcessType::MOVE_IN,
        ProcessKind::EndOfSupply => ProcessType::END_OF_SUPPLY,
        ProcessKind::MoveOut => ProcessType::MOVE_OUT,
        other => {
            return Err(format!(
                "afregning does not cancel {} ({other:?}) processes at DataHub",
                other.brs().unwrap_or("these")
            ));
        }
    };
    let body = afregning_cim::rsm024::write(&RequestCancellation {
        header: header(
            us,
            message_id,
            created,
            process_type,
            MessageType::REQUEST_CANCELLATION,
        ),
        records: vec![Cancellation {
            transaction_id: cancellation_id(&process.id),
            business_process_id: process.datahub_ref.clone(),
            metering_point,
            original_transaction_id: Some(process.id.0.clone()),
        }],
    });
    Ok(RequestDocument {
        kind: DocumentKind::RequestCancellation,
        transaction_id: cancellation_id(&process.id),
        body: String::from_utf8(body)
            .map_err(|e| format!("the CIM writer wrote non-UTF-8: {e}"))?,
    })
}

/// The transaction id of our RSM-024 cancelling `process` (`<process id>-cancel`): DataHub's
/// RSM-025 naming it confirms our own cancellation ([`crate::answers::CANCELLATION_SUFFIX`]).
pub fn cancellation_id(process: &crate::ids::ProcessId) -> String {
    format!("{process}{}", crate::answers::CANCELLATION_SUFFIX)
}

/// `body` with every sealed placeholder opened with `keyring`: the identity object gets its
/// coding scheme (ARR for a CPR, VAT for a CVR) and number, the name its text. A document
/// without placeholders comes back unchanged. `Err` when a seal cannot be opened (unknown or
/// erased key, tampered text): the document must not be sent half-filled.
pub fn open_placeholders(body: &str, keyring: &Keyring) -> Result<String, SealError> {
    if !body.contains("sealed:") {
        return Ok(body.to_string());
    }
    let mut value: Value = serde_json::from_str(body).map_err(|_| SealError::Malformed)?;
    open_value(&mut value, keyring)?;
    Ok(value.to_string())
}

/// The key ids of the sealed placeholders in `body`: the customers' keys a sender must fetch
/// from the key store before [`open_placeholders`] (decision 0148). Malformed ones are left to
/// `open_placeholders` to refuse.
pub fn placeholder_key_ids(body: &str) -> Vec<String> {
    let mut ids: Vec<String> = [SEALED_IDENTITY, SEALED_NAME]
        .iter()
        .flat_map(|prefix| body.split(prefix).skip(1))
        .filter_map(|rest| {
            let seal = rest.split('"').next()?;
            Sealed::decode(seal).ok().map(|s| s.key_id().to_string())
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn open_value(value: &mut Value, keyring: &Keyring) -> Result<(), SealError> {
    match value {
        Value::Object(map) => {
            let identity = map
                .get("value")
                .and_then(Value::as_str)
                .and_then(|v| v.strip_prefix(SEALED_IDENTITY))
                .map(str::to_string);
            if let Some(seal) = identity {
                let data = keyring.open(&Sealed::decode(&seal)?)?;
                let (scheme, number) = match &data.identity {
                    CustomerIdentity::Cpr(cpr) => (CodingScheme::CPR, cpr.expose().to_string()),
                    CustomerIdentity::Cvr(cvr) => (CodingScheme::CVR, cvr.expose().to_string()),
                };
                map.insert("codingScheme".into(), Value::from(scheme.as_str()));
                map.insert("value".into(), Value::from(number));
                return Ok(());
            }
            let names: Vec<(String, String)> = map
                .iter()
                .filter_map(|(k, v)| {
                    let seal = v.as_str()?.strip_prefix(SEALED_NAME)?;
                    Some((k.clone(), seal.to_string()))
                })
                .collect();
            for (key, seal) in names {
                let data = keyring.open(&Sealed::decode(&seal)?)?;
                match data.name {
                    Some(name) => map.insert(key, Value::from(name.expose())),
                    // No name known: the property is left out, not sent empty.
                    None => map.remove(&key),
                };
            }
            for v in map.values_mut() {
                open_value(v, keyring)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                open_value(v, keyring)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CustomerKey, ProcessId};
    use crate::personal::{Cpr, Cvr, PersonName, PersonalData};
    use crate::process::ProcessStatus;
    use afregning_cim::Document;
    use chrono::{NaiveDate, TimeZone};

    pub(super) const US: &str = "5790001330583";
    pub(super) const CPR: &str = "0801741527";

    fn keyring() -> Keyring {
        let mut k = Keyring::default();
        k.generate("k1").unwrap();
        k
    }

    pub(super) fn process(kind: ProcessKind) -> Process {
        Process {
            id: ProcessId("p-42".into()),
            kind,
            supplier: Gln::parse(US).unwrap(),
            effective: NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
            took_effect_on: None,
            customer: Some(CustomerKey("c1".into())),
            corrects: None,
            balance_responsible: None,
            notified_reason: None,
            datahub_ref: None,
            requested_by_us: true,
            status: ProcessStatus::Sent,
        }
    }

    pub(super) fn gsrn() -> Gsrn {
        Gsrn::parse("571313180400000011").unwrap()
    }

    pub(super) fn created() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 20, 9, 0, 0).unwrap()
    }

    #[test]
    fn a_move_in_is_an_rsm001_without_plaintext_until_the_connector_opens_it() {
        let keys = keyring();
        let personal = keys
            .seal(&PersonalData {
                identity: crate::personal::CustomerIdentity::Cpr(Cpr::parse(CPR).unwrap()),
                name: PersonName::new("Jan Hansen"),
            })
            .unwrap();
        let us = Gln::parse(US).unwrap();
        let doc = request_document(
            gsrn(),
            &process(ProcessKind::MoveIn),
            Some(&personal),
            None,
            &us,
            "m-1",
            created(),
        )
        .unwrap();
        assert_eq!(doc.kind, DocumentKind::RequestChangeOfSupplier);
        assert!(
            !doc.body.contains(CPR) && !doc.body.contains("Jan Hansen"),
            "{}",
            doc.body
        );
        assert_eq!(placeholder_key_ids(&doc.body), [personal.key_id()]);
        assert!(placeholder_key_ids("{}").is_empty());
        let opened = open_placeholders(&doc.body, &keys).unwrap();
        assert!(!opened.contains("sealed:"));
        let Document::RequestChangeOfSupplier(request) =
            afregning_cim::parse(opened.as_bytes()).unwrap()
        else {
            panic!("not an RSM-001");
        };
        assert_eq!(request.header.process_type, ProcessType::MOVE_IN);
        assert_eq!(request.header.message_id, "m-1");
        let record = &request.records[0];
        assert_eq!(record.transaction_id, "p-42");
        assert_eq!(record.metering_point, gsrn());
        let customer = record.customer_id.as_ref().unwrap();
        assert_eq!(
            (customer.coding_scheme, customer.value.as_str()),
            (CodingScheme::CPR, CPR)
        );
        assert_eq!(record.customer_name.as_deref(), Some("Jan Hansen"));
        // Midnight of 29 March 2026 in Copenhagen (the DST day) is 23:00 UTC the day before.
        assert_eq!(
            record.start,
            Utc.with_ymd_and_hms(2026, 3, 28, 23, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_company_gets_the_vat_scheme_and_a_missing_name_is_left_out() {
        let keys = keyring();
        let personal = keys
            .seal(&PersonalData {
                identity: crate::personal::CustomerIdentity::Cvr(Cvr::parse("12345678").unwrap()),
                name: None,
            })
            .unwrap();
        let us = Gln::parse(US).unwrap();
        let doc = request_document(
            gsrn(),
            &process(ProcessKind::ChangeOfSupplier),
            Some(&personal),
            None,
            &us,
            "m-2",
            created(),
        )
        .unwrap();
        let opened = open_placeholders(&doc.body, &keys).unwrap();
        let Document::RequestChangeOfSupplier(request) =
            afregning_cim::parse(opened.as_bytes()).unwrap()
        else {
            panic!("not an RSM-001");
        };
        let record = &request.records[0];
        assert_eq!(request.header.process_type, ProcessType::CHANGE_OF_SUPPLIER);
        assert_eq!(
            record.customer_id.as_ref().unwrap().coding_scheme,
            CodingScheme::CVR
        );
        assert_eq!(record.customer_name, None);
    }

    #[test]
    fn an_end_of_supply_is_an_rsm005_and_an_erased_key_stops_the_document() {
        let keys = keyring();
        let us = Gln::parse(US).unwrap();
        let mut eos = process(ProcessKind::EndOfSupply);
        eos.customer = None;
        let doc = request_document(gsrn(), &eos, None, None, &us, "m-3", created()).unwrap();
        assert_eq!(doc.kind, DocumentKind::RequestEndOfSupply);
        assert_eq!(
            open_placeholders(&doc.body, &keys).unwrap(),
            doc.body,
            "nothing to open"
        );
        let Document::RequestEndOfSupply(request) =
            afregning_cim::parse(doc.body.as_bytes()).unwrap()
        else {
            panic!("not an RSM-005");
        };
        assert_eq!(request.records[0].transaction_id, "p-42");

        let personal = keys
            .seal(&PersonalData {
                identity: crate::personal::CustomerIdentity::Cpr(Cpr::parse(CPR).unwrap()),
                name: None,
            })
            .unwrap();
        let doc = request_document(
            gsrn(),
            &process(ProcessKind::MoveIn),
            Some(&personal),
            None,
            &us,
            "m-4",
            created(),
        )
        .unwrap();
        let mut erased = keyring();
        erased.erase("k1");
        assert!(open_placeholders(&doc.body, &erased).is_err());
        let refused = request_document(
            gsrn(),
            &process(ProcessKind::ChangeOfBalanceResponsible),
            None,
            None,
            &us,
            "m-5",
            created(),
        );
        assert!(
            refused
                .unwrap_err()
                .contains("no DataHub document for it is known")
        );
    }
}

#[cfg(test)]
mod cancellation_tests {
    use super::*;
    use crate::ids::ProcessId;
    use crate::process::ProcessStatus;
    use afregning_cim::Document;
    use chrono::{NaiveDate, TimeZone};

    #[test]
    fn a_cancellation_names_datahubs_process_and_our_transaction() {
        let us = Gln::parse("5790001330583").expect("gln");
        let gsrn = Gsrn::parse("571313180400000011").expect("gsrn");
        let process = Process {
            id: ProcessId("eos-1".into()),
            kind: ProcessKind::EndOfSupply,
            supplier: us.clone(),
            effective: NaiveDate::from_ymd_opt(2026, 4, 15).expect("day"),
            took_effect_on: None,
            customer: None,
            corrects: None,
            balance_responsible: None,
            notified_reason: None,
            datahub_ref: Some("bp-77".into()),
            requested_by_us: true,
            status: ProcessStatus::Accepted,
        };
        let created = Utc.with_ymd_and_hms(2026, 4, 7, 9, 0, 0).unwrap();
        let doc = cancellation_document(gsrn, &process, &us, "eos-1-cancel", created).expect("doc");
        assert_eq!(doc.kind, DocumentKind::RequestCancellation);
        let Document::RequestCancellation(parsed) =
            afregning_cim::parse(doc.body.as_bytes()).expect("the CIM reader reads it")
        else {
            panic!("not an RSM-024");
        };
        assert_eq!(
            parsed.header.document_type,
            MessageType::REQUEST_CANCELLATION
        );
        assert_eq!(parsed.header.process_type, ProcessType::END_OF_SUPPLY);
        let record = &parsed.records[0];
        assert_eq!(record.transaction_id, "eos-1-cancel");
        assert_eq!(record.business_process_id.as_deref(), Some("bp-77"));
        assert_eq!(record.original_transaction_id.as_deref(), Some("eos-1"));
        assert_eq!(record.metering_point, gsrn);
        let customer_data = Process {
            kind: ProcessKind::CustomerMasterData,
            ..process
        };
        assert!(cancellation_document(gsrn, &customer_data, &us, "x", created).is_err());
    }
}

#[cfg(test)]
mod lifecycle_tests {
    use super::*;
    use crate::ids::ProcessId;
    use crate::personal::{Cpr, Cvr, PersonName, PersonalData};
    use crate::process::ProcessStatus;
    use afregning_cim::Document;
    use chrono::{NaiveDate, TimeZone};

    use super::tests::{CPR, US, created, gsrn};

    fn us() -> Gln {
        Gln::parse(US).expect("gln")
    }

    fn process(id: &str, kind: ProcessKind) -> Process {
        Process {
            id: ProcessId(id.into()),
            effective: NaiveDate::from_ymd_opt(2026, 4, 1).expect("day"),
            ..super::tests::process(kind)
        }
    }

    #[test]
    fn a_move_out_is_an_rsm005_with_process_type_e66() {
        let mut move_out = process("out-1", ProcessKind::MoveOut);
        move_out.customer = None;
        let doc = request_document(gsrn(), &move_out, None, None, &us(), "out-1", created())
            .expect("a document");
        assert_eq!(doc.kind, DocumentKind::RequestEndOfSupply);
        let Document::RequestEndOfSupply(parsed) =
            afregning_cim::parse(doc.body.as_bytes()).expect("the CIM reader reads it")
        else {
            panic!("not an RSM-005");
        };
        assert_eq!(parsed.header.process_type, ProcessType::MOVE_OUT);
        assert_eq!(parsed.header.process_type.as_str(), "E66");
        assert_eq!(parsed.records[0].transaction_id, "out-1");
        // Midnight of 1 April 2026 in Copenhagen (summer time).
        assert_eq!(
            parsed.records[0].end,
            Utc.with_ymd_and_hms(2026, 3, 31, 22, 0, 0).unwrap()
        );
        let cancel = cancellation_document(gsrn(), &move_out, &us(), "c", created())
            .expect("a move-out can be cancelled");
        assert!(cancel.body.contains("\"E66\""));
    }

    #[test]
    fn a_rollback_is_an_rsm003_naming_datahubs_process() {
        let rollback = Process {
            corrects: Some(ProcessId("bp-takeover".into())),
            customer: None,
            ..process("rb-1", ProcessKind::IncorrectChangeOfSupplier)
        };
        // A takeover DataHub notified: its id is DataHub's reference.
        let notified = Process {
            requested_by_us: false,
            status: ProcessStatus::Completed,
            ..process("bp-takeover", ProcessKind::ChangeOfSupplier)
        };
        let doc = request_document(
            gsrn(),
            &rollback,
            None,
            Some(&notified),
            &us(),
            "rb-1",
            created(),
        )
        .expect("a document");
        assert_eq!(doc.kind, DocumentKind::RequestReallocateChangeOfSupplier);
        let Document::RequestReallocateChangeOfSupplier(parsed) =
            afregning_cim::parse(doc.body.as_bytes()).expect("the CIM reader reads it")
        else {
            panic!("not an RSM-003");
        };
        assert_eq!(parsed.header.process_type.as_str(), "D07");
        assert_eq!(parsed.header.document_type.as_str(), "D01");
        let record = &parsed.records[0];
        assert_eq!(record.transaction_id, "rb-1");
        assert_eq!(record.business_process_id.as_deref(), Some("bp-takeover"));
        assert_eq!(record.metering_point, gsrn());

        // Our own move-in, confirmed with DataHub's reference, corrected by BRS-011 (D33).
        let move_in = Process {
            datahub_ref: Some("bp-77".into()),
            status: ProcessStatus::Effective,
            ..process("in-1", ProcessKind::MoveIn)
        };
        let incorrect_move = Process {
            kind: ProcessKind::IncorrectMove,
            corrects: Some(ProcessId("in-1".into())),
            ..rollback.clone()
        };
        let doc = request_document(
            gsrn(),
            &incorrect_move,
            None,
            Some(&move_in),
            &us(),
            "rb-2",
            created(),
        )
        .expect("a document");
        let Document::RequestReallocateChangeOfSupplier(parsed) =
            afregning_cim::parse(doc.body.as_bytes()).expect("reads")
        else {
            panic!("not an RSM-003");
        };
        assert_eq!(parsed.header.process_type.as_str(), "D33");
        assert_eq!(
            parsed.records[0].business_process_id.as_deref(),
            Some("bp-77")
        );
        // Our request DataHub never gave a reference for cannot be named.
        let unconfirmed = Process {
            datahub_ref: None,
            ..move_in
        };
        let refused = request_document(
            gsrn(),
            &incorrect_move,
            None,
            Some(&unconfirmed),
            &us(),
            "rb-3",
            created(),
        );
        assert!(
            refused
                .unwrap_err()
                .contains("never gave a process reference")
        );
    }

    #[test]
    fn customer_data_is_an_rsm027_sealed_until_the_connector_opens_it() {
        let mut keys = Keyring::default();
        keys.generate("k1").expect("key");
        let seal = |identity, name: &str| {
            keys.seal(&PersonalData {
                identity,
                name: PersonName::new(name),
            })
            .expect("seal")
        };
        let personal = seal(
            crate::personal::CustomerIdentity::Cpr(Cpr::parse(CPR).expect("cpr")),
            "Jan Hansen",
        );
        let data = process("cd-1", ProcessKind::CustomerMasterData);
        let doc = request_document(
            gsrn(),
            &data,
            Some(&personal),
            None,
            &us(),
            "cd-1",
            created(),
        )
        .expect("a document");
        assert_eq!(doc.kind, DocumentKind::RequestChangeCustomerCharacteristics);
        assert!(!doc.body.contains(CPR) && !doc.body.contains("Jan Hansen"));
        // Sealed, the customer id is longer than a PartyID_String: DataHub would refuse it.
        assert!(afregning_cim::parse(doc.body.as_bytes()).is_err());
        let opened = open_placeholders(&doc.body, &keys).expect("opened");
        let Document::RequestChangeCustomerCharacteristics(parsed) =
            afregning_cim::parse(opened.as_bytes()).expect("the CIM reader reads it")
        else {
            panic!("not an RSM-027");
        };
        assert_eq!(parsed.header.process_type.as_str(), "E34");
        assert_eq!(parsed.header.document_type.as_str(), "D15");
        let record = &parsed.records[0];
        assert_eq!(record.transaction_id, "cd-1");
        let mp = &record.metering_point;
        assert_eq!(mp.gsrn, gsrn());
        let id = mp.first_customer_id.as_ref().expect("customer");
        assert_eq!(
            (id.coding_scheme, id.value.as_str()),
            (CodingScheme::CPR, CPR)
        );
        assert_eq!(mp.first_customer_name.as_deref(), Some("Jan Hansen"));

        let company = seal(
            crate::personal::CustomerIdentity::Cvr(Cvr::parse("12345678").expect("cvr")),
            "Firma ApS",
        );
        let doc = request_document(
            gsrn(),
            &data,
            Some(&company),
            None,
            &us(),
            "cd-2",
            created(),
        )
        .expect("a document");
        let opened = open_placeholders(&doc.body, &keys).expect("opened");
        assert!(opened.contains("\"VAT\"") && opened.contains("12345678"));
        let without = request_document(gsrn(), &data, None, None, &us(), "cd-3", created());
        assert!(without.unwrap_err().contains("no sealed customer data"));
    }
}
