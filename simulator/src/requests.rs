//! Outbound documents (`POST /v1.0/cim/{documenttype}`): validated with the CIM reader,
//! answered 202 or 400 with an error document, and — for a supplier switch (RSM-001) — answered
//! on the MasterData queue with a confirm or reject (the date rules with their reject codes,
//! E10, E16) and, after a confirm, DataHub's RSM-022/028/031 and the supplied days' metered
//! data ([`crate::lifecycle`]); an end of supply (RSM-005) is confirmed or rejected by
//! BRS-002's window; a cancellation (RSM-024) is answered with RSM-025; a request for results
//! (RSM-016, RSM-017) is answered on the Aggregations queue ([`crate::result_requests`]).
//!
//! DataHub's synchronous error document is not public; the simulator answers
//! `{"error": {"code", "message", "target"}}`, with DataHub's codes where the notes name one
//! (`00002` sender id does not match the token's actor, `00003` wrong sender role) and its own
//! otherwise (`00101` a message id already received, `schema-violation` etc. for a document
//! the reader refuses). A repeated message id is refused, never processed twice: that is what
//! makes a connector's retry after a lost answer safe.

use afregning_cim::codes::{ReasonCode, Role};
use afregning_cim::{Document, DocumentKind, Gsrn};
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use chrono::Utc;

use crate::events::{EnqueueReason, EventKind};
use crate::queues::{Message, Queue};
use crate::scenario::documents::{self, SwitchAnswer};
use crate::{Shared, lock};

/// The document kind a `POST /v1.0/cim/{documenttype}` segment accepts.
pub fn kind_of_segment(segment: &str) -> Option<DocumentKind> {
    Some(match segment.to_ascii_lowercase().as_str() {
        "requestchangeofsupplier" => DocumentKind::RequestChangeOfSupplier,
        "requestendofsupply" => DocumentKind::RequestEndOfSupply,
        "requestcancellation" => DocumentKind::RequestCancellation,
        "requestvalidatedmeasurements" | "requestvalidatedmeasuredata" => {
            DocumentKind::RequestValidatedMeasureData
        }
        "requestaggregatedmeasuredata" => DocumentKind::RequestAggregatedMeasureData,
        "requestwholesalesettlement" => DocumentKind::RequestWholesaleSettlement,
        _ => return None,
    })
}

fn error(code: &str, message: &str, target: &str) -> Response {
    let body =
        serde_json::json!({ "error": { "code": code, "message": message, "target": target } });
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header(header::CONTENT_TYPE, crate::server::JSON)
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

pub(crate) fn handle(shared: &Shared, segment: &str, body: &[u8]) -> Response {
    let Some(expected) = kind_of_segment(segment) else {
        shared.events.record(EventKind::Received {
            document_type: segment.to_string(),
            status: 404,
            message_id: None,
        });
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("unknown document type"))
            .unwrap_or_default();
    };
    let (response, message_id) = answer(shared, expected, body);
    shared.events.record(EventKind::Received {
        document_type: segment.to_string(),
        status: response.status().as_u16(),
        message_id,
    });
    response
}

/// The checks every posted document passes before it is acted on: it reads as a CIM
/// document of the `expected` kind, the sender is the scenario's supplier in its role, and its
/// message id is new (recorded now). `Err` is the 400 answer and the message id, if any.
pub(crate) fn admit(
    shared: &Shared,
    expected: DocumentKind,
    body: &[u8],
) -> Result<Document, Box<(Response, Option<String>)>> {
    let document = match afregning_cim::parse(body) {
        Ok(document) => document,
        Err(e) => {
            return Err(Box::new((
                error(e.class.as_str(), &e.reason, &e.path),
                None,
            )));
        }
    };
    let header = document.header();
    let id = Some(header.message_id.clone());
    if document.kind() != expected {
        let message = format!("the body is a {}, not a {}", document.kind(), expected);
        return Err(Box::new((
            error("unexpected-document-type", &message, "$"),
            id,
        )));
    }
    let supplier = &shared.config.scenario.supplier_gln;
    if &header.sender.id.value != supplier {
        let message = "Sender id does not match id of current authenticated user";
        return Err(Box::new((
            error("00002", message, "sender_MarketParticipant.mRID"),
            id,
        )));
    }
    if header.sender.role != Role::ENERGY_SUPPLIER {
        let message = "Sender role does not match the role of the current authenticated user";
        return Err(Box::new((
            error("00003", message, "sender_MarketParticipant.marketRole.type"),
            id,
        )));
    }
    if !lock(&shared.received).insert(header.message_id.clone()) {
        let message = format!(
            "Message id '{}' has already been received",
            header.message_id
        );
        return Err(Box::new((error("00101", &message, "mRID"), id)));
    }
    Ok(document)
}

fn answer(shared: &Shared, expected: DocumentKind, body: &[u8]) -> (Response, Option<String>) {
    let document = match admit(shared, expected, body) {
        Ok(document) => document,
        Err(refused) => return *refused,
    };
    let header = document.header().clone();
    let id = Some(header.message_id.clone());
    if matches!(
        document,
        Document::RequestAggregatedMeasureData(_) | Document::RequestWholesaleSettlement(_)
    ) {
        crate::result_requests::answer(shared, &document);
    }
    if let Document::RequestEndOfSupply(request) = &document {
        for record in &request.records {
            let effective = afregning_settlement::calendar::local_date(record.end);
            match crate::lifecycle::judge_end(shared, effective) {
                Some((code, text)) => crate::lifecycle::reject_end_of_supply(
                    shared,
                    &record.transaction_id,
                    record.metering_point,
                    &code,
                    &text,
                ),
                None => {
                    confirm_end_of_supply(shared, &record.transaction_id, record.metering_point)
                }
            }
        }
    }
    if let Document::RequestChangeOfSupplier(request) = &document {
        for record in &request.records {
            switch(shared, header.process_type, record);
        }
    }
    if let Document::RequestCancellation(request) = &document {
        crate::lifecycle::answer_cancellation(shared, request);
    }
    (accepted(shared), id)
}

/// DataHub's 202 for a document it took, with its `CorrelationId`.
pub(crate) fn accepted(shared: &Shared) -> Response {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header("CorrelationId", shared.guid())
        .body(Body::empty())
        .unwrap_or_default()
}

/// DataHub confirms an end of supply (RSM-005) on the MasterData queue. The simulator does
/// not check BRS-002's dates, nor end the supply on the day.
fn confirm_end_of_supply(shared: &Shared, original: &str, gsrn: Gsrn) {
    let id = shared.guid();
    let transaction_id = shared.guid();
    let body = documents::rsm005_confirm(
        &id,
        &shared.config.scenario.supplier_gln,
        Utc::now(),
        &transaction_id,
        gsrn,
        original,
    );
    shared.enqueue(
        Message {
            id,
            queue: Queue::MasterData,
            body: Bytes::from(body),
            kind: Some(DocumentKind::ConfirmRequestEndOfSupply),
            transactions: 1,
            visible_at: std::time::Instant::now(),
            fault: None,
        },
        EnqueueReason::Answer,
    );
}

fn switch(
    shared: &Shared,
    process: afregning_cim::codes::ProcessType,
    record: &afregning_cim::rsm001::SupplierChange,
) {
    let (original, gsrn) = (record.transaction_id.as_str(), record.metering_point);
    let supplier = shared.config.scenario.supplier_gln.clone();
    let code = |c: &str| ReasonCode::parse(c).unwrap_or(ReasonCode::REJECTED);
    let transaction_id = shared.guid();
    let injected = lock(&shared.switch_rejects).pop_front();
    let effective = afregning_settlement::calendar::local_date(record.start);
    let reject = |gsrn: Option<Gsrn>, reason: &str, text: String| SwitchAnswer::Reject {
        transaction_id: transaction_id.clone(),
        gsrn,
        original: original.to_string(),
        code: code(reason),
        text,
    };
    let answer = if let Some((reason, text)) = injected {
        reject(Some(gsrn), &reason, text)
    } else if !gsrn.has_valid_check_digit() {
        reject(None, "E10", "Metering point not identifiable".into())
    } else if let Some((reason, text)) = crate::lifecycle::judge_start(shared, process, effective) {
        reject(Some(gsrn), &reason, text)
    } else if !lock(&shared.supplied).insert(gsrn) {
        reject(
            Some(gsrn),
            "E16",
            "The energy supplier already supplies the metering point".into(),
        )
    } else {
        SwitchAnswer::Confirm {
            transaction_id: transaction_id.clone(),
            gsrn,
            original: original.to_string(),
        }
    };
    let confirmed = matches!(answer, SwitchAnswer::Confirm { .. });
    let id = shared.guid();
    let now = Utc::now();
    let body = documents::rsm001_answer(&id, &supplier, now, process, &answer);
    let kind = if confirmed {
        DocumentKind::ConfirmRequestChangeOfSupplier
    } else {
        DocumentKind::RejectRequestChangeOfSupplier
    };
    shared.enqueue(
        Message {
            id,
            queue: Queue::MasterData,
            body: Bytes::from(body),
            kind: Some(kind),
            transactions: 1,
            visible_at: std::time::Instant::now(),
            fault: None,
        },
        EnqueueReason::Answer,
    );
    if confirmed {
        crate::lifecycle::started(shared, process, record, &transaction_id);
    }
}
