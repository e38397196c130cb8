//! DataHub's answers to our requests, found in what it sends on the Aggregations queue:
//! RSM-014 and RSM-019 series that name our request series in
//! `originalTransactionIDReference_Series.mRID`, and the RSM-016/RSM-017 reject documents
//! that name it the same way. Pure: bytes in, answers out.

use std::collections::BTreeMap;

use afregning_cim::Document;

/// One document's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The request series' mRID it names.
    pub original_transaction_id: String,
    /// The answering document's MessageId.
    pub message_id: String,
    /// The mRIDs of its series that answer the request.
    pub series_ids: Vec<String>,
    /// A reject's reasons (`code: text; ...`); `None` for results.
    pub refusal: Option<String>,
}

/// The answers in a raw CIM document (none when it answers no request or does not parse:
/// validate dead-letters what does not parse, and unsolicited results name no request).
pub fn answers(bytes: &[u8]) -> Vec<Answer> {
    let Ok(document) = afregning_cim::parse(bytes) else {
        return Vec::new();
    };
    let message_id = document.header().message_id.clone();
    let mut found: BTreeMap<String, (Vec<String>, Option<String>)> = BTreeMap::new();
    let mut add = |original: Option<&String>, series: &str, refusal: Option<String>| {
        if let Some(original) = original {
            let entry = found.entry(original.clone()).or_default();
            entry.0.push(series.to_string());
            if let Some(r) = refusal {
                entry.1 = Some(match entry.1.take() {
                    Some(before) => format!("{before}; {r}"),
                    None => r,
                });
            }
        }
    };
    match &document {
        Document::NotifyAggregatedMeasureData(doc) => {
            for s in &doc.series {
                add(s.original_transaction_id.as_ref(), &s.transaction_id, None);
            }
        }
        Document::NotifyWholesaleServices(doc) => {
            for s in &doc.series {
                add(s.original_transaction_id.as_ref(), &s.transaction_id, None);
            }
        }
        Document::RejectRequestAggregatedMeasureData(doc)
        | Document::RejectRequestWholesaleSettlement(doc) => {
            for s in &doc.series {
                let reasons = s
                    .reasons
                    .iter()
                    .map(|r| match &r.text {
                        Some(text) => format!("{}: {text}", r.code.as_str()),
                        None => r.code.as_str().to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                add(
                    s.original_transaction_id.as_ref(),
                    &s.transaction_id,
                    Some(reasons),
                );
            }
        }
        _ => {}
    }
    found
        .into_iter()
        .map(|(original_transaction_id, (series_ids, refusal))| Answer {
            original_transaction_id,
            message_id: message_id.clone(),
            series_ids,
            refusal,
        })
        .collect()
}
