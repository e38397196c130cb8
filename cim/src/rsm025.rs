//! RSM-025 NotifyCancellation: DataHub tells the supplier that a process was cancelled (type
//! E78 "Cancellation of notification"), the answer to our RSM-024 `RequestCancellation` or a
//! process DataHub stopped itself (lifecycle NOTES §1). The record names the process by
//! DataHub's `businessProcessReference` and, for ours, our original transaction.
//!
//! Shape: **derived** from the XSD `rsm-025-notify-cancellation/urn-ediel-org-structure-notifycancellation-0-1.xsd`
//! with the CIM JSON conventions (no JSON schema or example is public; see `docs/cim.md`).

use crate::codes::MessageType;
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::gsrn::Gsrn;
use crate::header::{Header, check_header};

cim_object! {
    /// `NotifyCancellation_MarketDocument` (type E78), DDZ → DDQ. Derived shape.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct NotifyCancellation {
        flatten header: Header;
        /// `MktActivityRecord[]`: one cancelled process each.
        "MktActivityRecord" [nonempty] => records: Vec<CancelledProcess>,
    }
    check = check_document;
}

cim_object! {
    /// One cancelled process.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct CancelledProcess {
        /// `mRID`: this transaction's id.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`: DataHub's process.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `originalTransactionIDReference_MktActivityRecord.mRID`: the transaction that
        /// started it (our request's, when the process is ours).
        "originalTransactionIDReference_MktActivityRecord.mRID" => original_transaction_id: Option<String>,
        /// `marketEvaluationPoint.mRID`.
        "marketEvaluationPoint.mRID" => metering_point: Gsrn,
    }
}

typed_io!(NotifyCancellation, NotifyCancellation);

cim_document!(NotifyCancellation, records, CancelledProcess);

fn check_document(doc: &NotifyCancellation) -> Result<(), Finding> {
    check_header(&doc.header, false, &[MessageType::NOTIFY_CANCELLATION])
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::Document;

    const XSD: &str = "../../shared/cim/rsm-025-notify-cancellation/urn-ediel-org-structure-notifycancellation-0-1.xsd";

    /// Every property of `json` (at any depth, `value` and `codingScheme` excepted: the CIM
    /// JSON conventions' text and attribute) is an element name of `xsd`, dotted names
    /// included: the derived shape invents nothing.
    pub(crate) fn assert_keys_in_xsd(json: &serde_json::Value, xsd: &str) {
        match json {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    if key != "value" && key != "codingScheme" {
                        assert!(
                            xsd.contains(&format!("name=\"{key}\"")),
                            "`{key}` is not an element of the XSD"
                        );
                    }
                    assert_keys_in_xsd(value, xsd);
                }
            }
            serde_json::Value::Array(items) => {
                items.iter().for_each(|v| assert_keys_in_xsd(v, xsd))
            }
            _ => {}
        }
    }

    fn sample() -> String {
        r#"{"NotifyCancellation_MarketDocument": {"mRID": "n1", "type": {"value": "E78"},
        "process.processType": {"value": "E65"}, "businessSector.type": {"value": "23"},
        "sender_MarketParticipant.mRID": {"codingScheme": "A10", "value": "5790001330552"},
        "sender_MarketParticipant.marketRole.type": {"value": "DDZ"},
        "receiver_MarketParticipant.mRID": {"codingScheme": "A10", "value": "5790001330583"},
        "receiver_MarketParticipant.marketRole.type": {"value": "DDQ"},
        "createdDateTime": "2026-03-02T07:30:54Z",
        "MktActivityRecord": [{"mRID": "t1", "businessProcessReference_MktActivityRecord.mRID": "bp-1",
        "originalTransactionIDReference_MktActivityRecord.mRID": "end-1",
        "marketEvaluationPoint.mRID": {"codingScheme": "A10", "value": "571313180400000011"}}]}}"#
            .to_string()
    }

    #[test]
    fn reads_writes_and_reads_back_the_same_model() {
        let doc = crate::parse(sample().as_bytes()).expect("parses");
        let Document::NotifyCancellation(model) = &doc else {
            panic!("{:?}", doc.kind());
        };
        assert_eq!(
            model.records[0].original_transaction_id.as_deref(),
            Some("end-1")
        );
        assert_eq!(crate::parse(&crate::write(&doc)).expect("reads back"), doc);
    }

    #[test]
    fn every_property_written_is_an_element_of_the_xsd() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(XSD);
        let xsd = std::fs::read_to_string(path).expect("the RSM-025 XSD");
        let doc = crate::parse(sample().as_bytes()).expect("parses");
        let json: serde_json::Value = serde_json::from_slice(&crate::write(&doc)).expect("json");
        assert_keys_in_xsd(&json, &xsd);
    }

    #[test]
    fn another_document_type_code_is_refused() {
        let wrong = sample().replace("\"E78\"", "\"E67\"");
        assert!(crate::parse(wrong.as_bytes()).is_err());
    }
}
