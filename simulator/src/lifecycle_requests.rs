//! DataHub's answers to the supplier's lifecycle requests beyond a start or end of supply:
//! a move-out (RSM-005 with process type E66, BRS-010), a correction (RSM-003
//! `RequestReallocateChangeOfSupplier`, BRS-003 D07 / BRS-011 D33) and customer master data
//! (RSM-027 `RequestChangeCustomerCharacteristics`, BRS-015 E34). Each record is confirmed on
//! the MasterData queue (`businessProcessReference` `bp-<transaction>`, our transaction as
//! `originalTransactionIDReference`), or rejected with the reason code the test asked for
//! ([`SimulatorHandle::reject_next_lifecycle_request`]). The confirm and reject of RSM-003 and
//! RSM-027 carry the names the codec infers (`Confirm…`/`Reject…` of the request; no XSD of
//! them is public); a move-out is answered like an end of supply (RSM-005).
//!
//! The simulator checks what it checks for every posted document ([`crate::requests::admit`]:
//! the CIM reader, so a customer id still sealed, longer than a `PartyID_String`, is refused
//! 400; the sender and its role; a repeated message id), but none of the processes' own rules, and it changes
//! nothing on DataHub's side: the move-out, the rollback and the customer data are only
//! answered.

use afregning_cim::answer::{Confirmation, ConfirmedRecord, RejectedRecord, Rejection};
use afregning_cim::codes::{MessageType, ProcessType, ReasonCode, Role};
use afregning_cim::{Document, DocumentKind, Gsrn, Header, Reason};
use axum::response::Response;
use bytes::Bytes;
use chrono::Utc;

use crate::events::{EnqueueReason, EventKind};
use crate::queues::{Message, Queue};
use crate::scenario::documents;
use crate::{Shared, SimulatorHandle, lock};

impl SimulatorHandle {
    /// DataHub rejects the next move-out, correction or customer data request it receives
    /// with `reason` and `text` (one record), whatever its content. Later ones are confirmed.
    pub fn reject_next_lifecycle_request(&self, reason: &str, text: &str) {
        lock(&self.shared.lifecycle_rejects).push_back((reason.to_string(), text.to_string()));
    }
}

/// The response to `POST /v1.0/cim/{segment}` when this module answers it: RSM-003 and
/// RSM-027 always, RSM-005 when its process type is E66 (move-out). `None` leaves the
/// document to [`crate::requests`].
pub(crate) fn handle(shared: &Shared, segment: &str, body: &[u8]) -> Option<Response> {
    let expected = match segment.to_ascii_lowercase().as_str() {
        "requestreallocatechangeofsupplier" => DocumentKind::RequestReallocateChangeOfSupplier,
        "requestchangecustomercharacteristics" => {
            DocumentKind::RequestChangeCustomerCharacteristics
        }
        "requestendofsupply" => match afregning_cim::parse(body) {
            Ok(Document::RequestEndOfSupply(doc))
                if doc.header.process_type == ProcessType::MOVE_OUT =>
            {
                DocumentKind::RequestEndOfSupply
            }
            _ => return None,
        },
        _ => return None,
    };
    let (response, message_id) = answer(shared, expected, body);
    shared.events.record(EventKind::Received {
        document_type: segment.to_string(),
        status: response.status().as_u16(),
        message_id,
    });
    Some(response)
}

fn answer(shared: &Shared, expected: DocumentKind, body: &[u8]) -> (Response, Option<String>) {
    let document = match crate::requests::admit(shared, expected, body) {
        Ok(document) => document,
        Err(refused) => return *refused,
    };
    let header = document.header().clone();
    let id = Some(header.message_id.clone());
    let records: Vec<(String, Gsrn)> = match &document {
        Document::RequestEndOfSupply(d) => d
            .records
            .iter()
            .map(|r| (r.transaction_id.clone(), r.metering_point))
            .collect(),
        Document::RequestReallocateChangeOfSupplier(d) => d
            .records
            .iter()
            .map(|r| (r.transaction_id.clone(), r.metering_point))
            .collect(),
        Document::RequestChangeCustomerCharacteristics(d) => d
            .records
            .iter()
            .map(|r| (r.transaction_id.clone(), r.metering_point.gsrn))
            .collect(),
        _ => Vec::new(),
    };
    for (original, gsrn) in records {
        respond(shared, expected, &header, &original, gsrn);
    }
    (crate::requests::accepted(shared), id)
}

/// The confirm (or the injected reject) of one record, on the MasterData queue.
fn respond(shared: &Shared, request: DocumentKind, to: &Header, original: &str, gsrn: Gsrn) {
    let id = shared.guid();
    let transaction_id = shared.guid();
    let injected = lock(&shared.lifecycle_rejects).pop_front();
    let header = |reason| {
        documents::header(
            &id,
            MessageType::CONFIRMATION_OF_START_OF_SUPPLY,
            to.process_type,
            Role::METERING_POINT_ADMINISTRATOR,
            &shared.config.scenario.supplier_gln,
            Utc::now(),
            Some(reason),
        )
    };
    let document = match injected {
        None => {
            let confirmation = Confirmation {
                header: header(ReasonCode::ACCEPTED),
                records: vec![ConfirmedRecord {
                    business_process_id: Some(format!("bp-{transaction_id}")),
                    transaction_id,
                    metering_point: gsrn,
                    original_transaction_id: Some(original.to_string()),
                }],
            };
            match request {
                DocumentKind::RequestReallocateChangeOfSupplier => {
                    Document::ConfirmRequestReallocateChangeOfSupplier(confirmation)
                }
                DocumentKind::RequestChangeCustomerCharacteristics => {
                    Document::ConfirmRequestChangeCustomerCharacteristics(confirmation)
                }
                _ => Document::ConfirmRequestEndOfSupply(confirmation),
            }
        }
        Some((code, text)) => {
            let rejection = Rejection {
                header: header(ReasonCode::REJECTED),
                records: vec![RejectedRecord {
                    transaction_id,
                    business_process_id: None,
                    metering_point: Some(gsrn),
                    original_transaction_id: Some(original.to_string()),
                    reasons: vec![Reason {
                        code: ReasonCode::parse(&code).unwrap_or(ReasonCode::REJECTED),
                        text: Some(text),
                    }],
                }],
            };
            match request {
                DocumentKind::RequestReallocateChangeOfSupplier => {
                    Document::RejectRequestReallocateChangeOfSupplier(rejection)
                }
                DocumentKind::RequestChangeCustomerCharacteristics => {
                    Document::RejectRequestChangeCustomerCharacteristics(rejection)
                }
                _ => Document::RejectRequestEndOfSupply(rejection),
            }
        }
    };
    shared.enqueue(
        Message {
            id,
            queue: Queue::MasterData,
            kind: Some(document.kind()),
            body: Bytes::from(afregning_cim::write(&document)),
            transactions: 1,
            visible_at: std::time::Instant::now(),
            fault: None,
        },
        EnqueueReason::Answer,
    );
}
