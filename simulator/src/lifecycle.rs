//! DataHub's side of a supplier's lifecycle (lifecycle NOTES §2.1, §2.2): the date rules it
//! answers with, what it sends after a confirmed start of supply, what it answers to a
//! cancellation, and the metered data of the days we supply.
//!
//! - **Date rules.** A move-in (E65), change of supplier (E03) or end of supply (E20) is judged
//!   on the scenario clock's Danish day with the portfolio's own rules
//!   ([`afregning_portfolio::rules`], one source for both sides: what we check before sending
//!   is what DataHub refuses with E17); a refusal is an RSM-001/RSM-005 reject with the rule's
//!   code and text.
//! - **After a confirm** (BRS-001 step 3): RSM-022 master data, RSM-028 customer data (the
//!   customer the request named: on the simulated HTTP side the connector has opened our
//!   sealed placeholders, so these are real numbers; the connector seals them again before
//!   publishing, decision 0147) and RSM-031 charge links (Energinet's and the grid company's
//!   charges), each naming DataHub's process and our transaction, visible from the
//!   effective day.
//! - **Metered data of the supplied days.** From the effective day, each complete Danish day
//!   (its end passed on the scenario clock) gets its PT15M RSM-012 from the scenario's
//!   generator ([`crate::scenario::supplied_day`]), until another supplier takes the metering
//!   point ([`end_supply`], RSM-004). Released when a queue is peeked. The metering point,
//!   its links and every day sent join the ground truth ([`Lifecycle::extend`]), so the
//!   expected-settlement helpers see what was delivered.
//! - **Cancellation.** Our RSM-024 is answered with an RSM-025 `NotifyCancellation` naming
//!   DataHub's process and our cancellation's transaction.

use std::collections::BTreeMap;

use afregning_cim::codes::{
    MessageType, MeteringPointType, ProcessType, ReasonCode, Role, SettlementMethod,
};
use afregning_cim::rsm001::SupplierChange;
use afregning_cim::rsm024::RequestCancellation;
use afregning_cim::rsm025::{CancelledProcess, NotifyCancellation};
use afregning_cim::rsm028::{
    CharacteristicsOfACustomerAtAnAP, CustomerId, CustomerPoint, CustomerRecord,
};
use afregning_cim::{Document, DocumentKind, Gsrn, Reason, Resolution, answer};
use afregning_settlement::calendar::{local_date, local_midnight};
use bytes::Bytes;
use chrono::{DateTime, Days, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::events::EnqueueReason;
use crate::ground_truth::{DayReading, GroundTruth, LinkTruth, MeteringPointTruth};
use crate::queues::{Message, Queue};
use crate::scenario::documents::{self, SeriesSpec, header};
use crate::scenario::profiles::Profile;
use crate::scenario::rates;
use crate::scenario::rng::Rng;
use crate::{Shared, lock};

/// One supply of ours that began after the scenario was generated.
#[derive(Debug, Clone)]
struct Supply {
    truth: MeteringPointTruth,
    annual: f64,
    /// The first day whose readings are not sent yet.
    next: NaiveDate,
    /// The first day no longer ours (another supplier's takeover), if known.
    until: Option<NaiveDate>,
}

/// What the lifecycle added to the scenario.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    supplies: BTreeMap<Gsrn, Supply>,
    metering_points: Vec<MeteringPointTruth>,
    links: Vec<LinkTruth>,
    readings: Vec<DayReading>,
}

impl Lifecycle {
    /// `truth` with the metering points, links and delivered days of the lifecycle's supplies.
    pub(crate) fn extend(&self, truth: &GroundTruth) -> GroundTruth {
        let mut truth = truth.clone();
        truth
            .metering_points
            .extend(self.metering_points.iter().cloned());
        truth.links.extend(self.links.iter().cloned());
        truth.readings.extend(self.readings.iter().cloned());
        truth.readings.sort_by_key(|r| (r.gsrn, r.day));
        truth
    }

    /// Whether anything was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.metering_points.is_empty()
    }
}

/// The rule a start of supply on `effective` breaks on the scenario clock's day: code and text.
pub(crate) fn judge_start(
    shared: &Shared,
    process: ProcessType,
    effective: NaiveDate,
) -> Option<(String, String)> {
    let today = local_date(shared.scenario_now());
    let judged = if process == ProcessType::CHANGE_OF_SUPPLIER {
        afregning_portfolio::rules::change_of_supplier(today, effective)
    } else {
        afregning_portfolio::rules::move_in(today, effective)
    };
    judged
        .err()
        .map(|r| (r.reason.code.clone(), r.reason.text.clone()))
}

/// The rule an end of supply on `effective` breaks (BRS-002's window), code and text.
pub(crate) fn judge_end(shared: &Shared, effective: NaiveDate) -> Option<(String, String)> {
    let today = local_date(shared.scenario_now());
    afregning_portfolio::rules::end_of_supply(today, effective)
        .err()
        .map(|r| (r.reason.code.clone(), r.reason.text.clone()))
}

fn enqueue(
    shared: &Shared,
    id: String,
    queue: Queue,
    kind: DocumentKind,
    body: Vec<u8>,
    visible_at: DateTime<Utc>,
    reason: EnqueueReason,
) {
    shared.enqueue(
        Message {
            id,
            queue,
            body: Bytes::from(body),
            kind: Some(kind),
            transactions: 1,
            visible_at: shared.instant_of(visible_at),
            fault: None,
        },
        reason,
    );
}

/// DataHub rejects our end of supply (RSM-005) for `original` with `code` and `text`.
pub(crate) fn reject_end_of_supply(
    shared: &Shared,
    original: &str,
    gsrn: Gsrn,
    code: &str,
    text: &str,
) {
    let id = shared.guid();
    let body = afregning_cim::write(&Document::RejectRequestEndOfSupply(answer::Rejection {
        header: header(
            &id,
            MessageType::CONFIRMATION_OF_START_OF_SUPPLY,
            ProcessType::END_OF_SUPPLY,
            Role::METERING_POINT_ADMINISTRATOR,
            &shared.config.scenario.supplier_gln,
            Utc::now(),
            Some(ReasonCode::REJECTED),
        ),
        records: vec![answer::RejectedRecord {
            transaction_id: shared.guid(),
            business_process_id: None,
            metering_point: Some(gsrn),
            original_transaction_id: Some(original.to_string()),
            reasons: vec![Reason {
                code: ReasonCode::parse(code).unwrap_or(ReasonCode::REJECTED),
                text: Some(text.to_string()),
            }],
        }],
    }));
    enqueue(
        shared,
        id,
        Queue::MasterData,
        DocumentKind::RejectRequestEndOfSupply,
        body,
        Utc::now(),
        EnqueueReason::Answer,
    );
}

/// The master data DataHub keeps for a metering point new to the scenario: a household in
/// one of the scenario's grid areas (chosen by the GSRN), quarter-hourly, non-profiled.
fn metering_point(shared: &Shared, gsrn: Gsrn, start: DateTime<Utc>) -> Option<MeteringPointTruth> {
    let areas = rates::grid_areas();
    let configured: Vec<&rates::GridAreaDef> = areas
        .iter()
        .filter(|a| {
            shared
                .config
                .scenario
                .grid_areas
                .iter()
                .any(|c| c == a.code)
        })
        .collect();
    let pick =
        (gsrn.to_string().bytes().map(u64::from).sum::<u64>() as usize) % configured.len().max(1);
    let area = configured.get(pick).copied().or_else(|| areas.first())?;
    Some(MeteringPointTruth {
        gsrn,
        grid_area: area.code.to_string(),
        price_area: area.price_area.to_string(),
        grid_owner_gln: area.company.gln.to_string(),
        metering_point_type: MeteringPointType::Consumption,
        settlement_method: SettlementMethod::NonProfiled,
        resolution: Resolution::QuarterHour,
        profile: Profile::Household,
        supply_start: start,
    })
}

/// After DataHub confirmed our start of supply `record` (answer transaction `confirmed`):
/// RSM-022, RSM-028 and RSM-031 for the effective day, and the supply whose days get
/// metered data.
pub(crate) fn started(
    shared: &Shared,
    process: ProcessType,
    record: &SupplierChange,
    confirmed: &str,
) {
    let supplier = shared.config.scenario.supplier_gln.clone();
    let gsrn = record.metering_point;
    let start = record.start;
    let Some(truth) = metering_point(shared, gsrn, start) else {
        return;
    };
    let business = format!("bp-{confirmed}");
    let original = record.transaction_id.clone();
    let refer = |business_id: &mut Option<String>, original_id: &mut Option<String>| {
        *business_id = Some(business.clone());
        *original_id = Some(original.clone());
    };
    let mut rng = Rng::derive(
        shared.config.scenario.seed,
        7,
        crate::scenario::gsrn_number(gsrn),
        0,
    );
    let annual = truth.profile.annual_kwh(&mut rng);

    // RSM-022, naming the process.
    let id = shared.guid();
    let body = documents::rsm022(
        &id,
        &supplier,
        start,
        &[(&truth, shared.guid(), Decimal::from(annual.round() as i64))],
    );
    if let Ok(mut doc) = afregning_cim::rsm022::read(&body) {
        doc.header.process_type = process;
        for r in &mut doc.records {
            refer(&mut r.business_process_id, &mut r.original_transaction_id);
        }
        let body = afregning_cim::rsm022::write(&doc);
        enqueue(
            shared,
            id,
            Queue::MasterData,
            DocumentKind::AccountingPointCharacteristics,
            body,
            start,
            EnqueueReason::SwitchMasterData,
        );
    }

    // RSM-028: the customer the request named.
    if let Some(customer) = &record.customer_id {
        let id = shared.guid();
        let doc = CharacteristicsOfACustomerAtAnAP {
            header: header(
                &id,
                MessageType::CUSTOMER_MASTER_DATA,
                process,
                Role::METERING_POINT_ADMINISTRATOR,
                &supplier,
                Utc::now(),
                None,
            ),
            records: vec![CustomerRecord {
                transaction_id: shared.guid(),
                business_process_id: Some(business.clone()),
                original_transaction_id: Some(original.clone()),
                validity_start: start,
                snapshot: None,
                metering_point: CustomerPoint {
                    gsrn,
                    electrical_heating: Some(false),
                    electrical_heating_from: None,
                    first_customer_id: Some(CustomerId {
                        coding_scheme: customer.coding_scheme,
                        value: customer.value.clone(),
                    }),
                    first_customer_name: record.customer_name.clone(),
                    second_customer_id: None,
                    second_customer_name: None,
                    protected_name: Some(false),
                    has_energy_supplier: Some(true),
                    supply_start: Some(start),
                    locations: Vec::new(),
                },
            }],
        };
        let body = afregning_cim::rsm028::write(&doc);
        enqueue(
            shared,
            id,
            Queue::MasterData,
            DocumentKind::CharacteristicsOfACustomerAtAnAP,
            body,
            start,
            EnqueueReason::SwitchMasterData,
        );
    }

    // RSM-031: the charges of the grid area, linked from the effective day.
    let company = rates::grid_areas()
        .into_iter()
        .find(|a| a.code == truth.grid_area)
        .map(|a| a.company);
    let links: Vec<LinkTruth> = rates::energinet_charges()
        .into_iter()
        .chain(company.into_iter().flat_map(|c| [c.tariff, c.subscription]))
        .map(|def| LinkTruth {
            gsrn,
            owner_gln: def.owner_gln.to_string(),
            kind: def.kind,
            code: def.code.to_string(),
            factor: 1,
            valid_from: start,
            valid_to: None,
        })
        .collect();
    let id = shared.guid();
    let body = documents::rsm031(
        &id,
        &supplier,
        start,
        &[(shared.guid(), gsrn, links.iter().collect())],
    );
    if let Ok(mut doc) = afregning_cim::rsm031::read(&body) {
        for r in &mut doc.records {
            refer(&mut r.business_process_id, &mut r.original_transaction_id);
        }
        let body = afregning_cim::rsm031::write(&doc);
        enqueue(
            shared,
            id,
            Queue::Charges,
            DocumentKind::NotifyBillingMasterData,
            body,
            start,
            EnqueueReason::SwitchMasterData,
        );
    }

    let mut lifecycle = lock(&shared.lifecycle);
    lifecycle.metering_points.retain(|m| m.gsrn != gsrn);
    lifecycle.metering_points.push(truth.clone());
    lifecycle.links.retain(|l| l.gsrn != gsrn);
    lifecycle.links.extend(links);
    lifecycle.supplies.insert(
        gsrn,
        Supply {
            truth,
            annual,
            next: local_date(start),
            until: None,
        },
    );
}

/// Another supplier takes `gsrn` from `day`: no metered data for that day or later.
pub(crate) fn end_supply(shared: &Shared, gsrn: Gsrn, day: NaiveDate) {
    if let Some(supply) = lock(&shared.lifecycle).supplies.get_mut(&gsrn) {
        supply.until = Some(supply.until.map_or(day, |d| d.min(day)));
    }
}

/// Sends the metered data of every supplied day that is complete on the scenario clock.
pub(crate) fn release_readings(shared: &Shared) {
    let now = shared.scenario_now();
    let mut lifecycle = lock(&shared.lifecycle);
    let mut sent = Vec::new();
    for supply in lifecycle.supplies.values_mut() {
        loop {
            let day = supply.next;
            if supply.until.is_some_and(|until| day >= until)
                || local_midnight(day + Days::new(1)) > now
            {
                break;
            }
            let Ok((interval, points)) = crate::scenario::supplied_day(
                shared.config.scenario.seed,
                &supply.truth,
                supply.annual,
                day,
            ) else {
                break;
            };
            supply.next = day + Days::new(1);
            let id = shared.guid();
            let registered = interval.end + chrono::Duration::hours(2);
            let body = documents::rsm012(
                &id,
                &shared.config.scenario.supplier_gln,
                registered,
                &[SeriesSpec {
                    transaction_id: shared.guid(),
                    gsrn: supply.truth.gsrn,
                    resolution: supply.truth.resolution,
                    interval,
                    registered,
                    points: &points,
                }],
            );
            shared.enqueue(
                Message {
                    id: id.clone(),
                    queue: Queue::Timeseries,
                    body: Bytes::from(body),
                    kind: Some(DocumentKind::NotifyValidatedMeasureData),
                    transactions: 1,
                    visible_at: std::time::Instant::now(),
                    fault: None,
                },
                EnqueueReason::Scenario,
            );
            sent.push(DayReading {
                gsrn: supply.truth.gsrn,
                day,
                resolution: supply.truth.resolution,
                start: interval.start,
                end: interval.end,
                points,
                versions: 1,
                late: false,
                registered,
                message_ids: vec![id],
            });
        }
    }
    lifecycle.readings.extend(sent);
}

/// DataHub answers our RSM-024 with an RSM-025 per record: the process is cancelled.
pub(crate) fn answer_cancellation(shared: &Shared, request: &RequestCancellation) {
    let id = shared.guid();
    let doc = NotifyCancellation {
        header: header(
            &id,
            MessageType::NOTIFY_CANCELLATION,
            request.header.process_type,
            Role::METERING_POINT_ADMINISTRATOR,
            &shared.config.scenario.supplier_gln,
            Utc::now(),
            None,
        ),
        records: request
            .records
            .iter()
            .map(|r| CancelledProcess {
                transaction_id: shared.guid(),
                business_process_id: r.business_process_id.clone(),
                original_transaction_id: Some(r.transaction_id.clone()),
                metering_point: r.metering_point,
            })
            .collect(),
    };
    let body = afregning_cim::rsm025::write(&doc);
    enqueue(
        shared,
        id,
        Queue::MasterData,
        DocumentKind::NotifyCancellation,
        body,
        Utc::now(),
        EnqueueReason::Answer,
    );
}
