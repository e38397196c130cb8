//! DataHub's answer to a supplier's request for its calculation results: RSM-016
//! (`RequestAggregatedMeasureData`, BRS-026) is answered with an RSM-014 and RSM-017
//! (`RequestWholesaleSettlement`, BRS-028) with an RSM-019, computed from the ground truth
//! for the series' grid area and month with Energinet's arithmetic ([`crate::wholesale`]),
//! every series naming the request series in `originalTransactionIDReference_Series.mRID`;
//! a request for a grid area or month without results is answered with the request's reject
//! document (reason E0H, no data), naming it the same way. Both go on the Aggregations queue,
//! where DataHub puts them.

use afregning_cim::answer::{RejectSeries, RejectedSeries};
use afregning_cim::codes::{MessageType, ProcessType, ProcessVariant, ReasonCode, Role};
use afregning_cim::wholesale::CalculationType;
use afregning_cim::{Document, DocumentKind, Reason};
use afregning_settlement::calendar::local_date;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::Shared;
use crate::events::EnqueueReason;
use crate::queues::{Message, Queue};
use crate::scenario::documents::header;
use crate::wholesale::{Perturbations, WholesaleRun, rsm014, rsm019, wholesale_run};

/// The calculation a request names: D03, D04, D05, or D32 with its round (the first when
/// none is given).
fn calculation(process: ProcessType, round: Option<ProcessVariant>) -> Option<CalculationType> {
    Some(
        match (process.as_str(), round.map(ProcessVariant::as_str)) {
            ("D03", _) => CalculationType::Aggregation,
            ("D04", _) => CalculationType::BalanceFixing,
            ("D05", _) => CalculationType::WholesaleFixing,
            ("D32", Some("D02")) => CalculationType::SecondCorrection,
            ("D32", Some("D03")) => CalculationType::ThirdCorrection,
            ("D32", _) => CalculationType::FirstCorrection,
            _ => return None,
        },
    )
}

/// The run for one grid area's month, or `None` when the truth has nothing there.
fn run_for(
    shared: &Shared,
    start: DateTime<Utc>,
    grid_area: Option<&str>,
    calculation: CalculationType,
) -> Option<WholesaleRun> {
    let mut run = wholesale_run(
        &shared.truth,
        local_date(start),
        calculation,
        1,
        &Perturbations::default(),
    )?;
    if let Some(area) = grid_area {
        run.amounts.retain(|a| a.scope.grid_area == area);
        run.monthly.retain(|m| m.scope.grid_area == area);
        run.totals.retain(|t| t.scope.grid_area == area);
        run.energy.retain(|e| e.scope.grid_area == area);
    }
    Some(run)
}

/// Every series of `bytes` (an RSM-014 or RSM-019) made to answer `original`.
fn answering(bytes: &[u8], original: &str) -> Option<(Vec<u8>, usize)> {
    let mut document = afregning_cim::parse(bytes).ok()?;
    let series = match &mut document {
        Document::NotifyAggregatedMeasureData(doc) => {
            for s in &mut doc.series {
                s.original_transaction_id = Some(original.to_string());
            }
            doc.series.len()
        }
        Document::NotifyWholesaleServices(doc) => {
            for s in &mut doc.series {
                s.original_transaction_id = Some(original.to_string());
            }
            doc.series.len()
        }
        _ => return None,
    };
    (series > 0).then(|| (afregning_cim::write(&document), series))
}

/// One request series: what it asks for.
struct Ask {
    original: String,
    start: DateTime<Utc>,
    grid_area: Option<String>,
    round: Option<ProcessVariant>,
    wholesale: bool,
}

/// The series of an RSM-016 or RSM-017 (their series share these fields' names).
macro_rules! asks {
    ($doc:expr, $wholesale:expr) => {
        $doc.series
            .iter()
            .map(|s| Ask {
                original: s.transaction_id.clone(),
                start: s.start,
                grid_area: s.grid_area.as_ref().map(|a| a.value.clone()),
                round: s.settlement_version,
                wholesale: $wholesale,
            })
            .collect::<Vec<Ask>>()
    };
}

/// Answers each series of a request document (called once the request is accepted).
pub(crate) fn answer(shared: &Shared, request: &Document) {
    let process = request.header().process_type;
    let asks = match request {
        Document::RequestAggregatedMeasureData(doc) => asks!(doc, false),
        Document::RequestWholesaleSettlement(doc) => asks!(doc, true),
        _ => return,
    };
    let supplier = shared.config.scenario.supplier_gln.clone();
    for Ask {
        original,
        start,
        grid_area: area,
        round,
        wholesale,
    } in asks
    {
        let id = shared.guid();
        let now = Utc::now();
        let results = calculation(process, round)
            .and_then(|c| run_for(shared, start, area.as_deref(), c))
            .and_then(|run| {
                let bytes = if wholesale {
                    rsm019(&run, &id, now)
                } else {
                    rsm014(&run, &id, now)
                };
                answering(&bytes, &original)
            });
        let (body, kind, transactions) = match results {
            Some((body, series)) => (
                body,
                if wholesale {
                    DocumentKind::NotifyWholesaleServices
                } else {
                    DocumentKind::NotifyAggregatedMeasureData
                },
                series,
            ),
            None => {
                let reject = RejectSeries {
                    header: header(
                        &id,
                        MessageType::ACKNOWLEDGEMENT,
                        process,
                        if wholesale {
                            Role::METERING_POINT_ADMINISTRATOR
                        } else {
                            Role::METERED_DATA_ADMINISTRATOR
                        },
                        &supplier,
                        now,
                        Some(ReasonCode::REJECTED),
                    ),
                    series: vec![RejectedSeries {
                        transaction_id: shared.guid(),
                        metering_point: None,
                        original_transaction_id: Some(original.clone()),
                        reasons: vec![Reason {
                            code: ReasonCode::parse("E0H").unwrap_or(ReasonCode::REJECTED),
                            text: Some("No data available for the requested period".into()),
                        }],
                    }],
                };
                let (document, kind) = if wholesale {
                    (
                        Document::RejectRequestWholesaleSettlement(reject),
                        DocumentKind::RejectRequestWholesaleSettlement,
                    )
                } else {
                    (
                        Document::RejectRequestAggregatedMeasureData(reject),
                        DocumentKind::RejectRequestAggregatedMeasureData,
                    )
                };
                (afregning_cim::write(&document), kind, 1)
            }
        };
        shared.enqueue(
            Message {
                id,
                queue: Queue::Aggregations,
                body: Bytes::from(body),
                kind: Some(kind),
                transactions,
                visible_at: std::time::Instant::now(),
                fault: None,
            },
            EnqueueReason::Answer,
        );
    }
}
