//! Building the documents DataHub sends, only through the CIM codec's models and writers.

use afregning_cim::answer::{Confirmation, ConfirmedRecord, RejectedRecord, Rejection};
use afregning_cim::codes::{
    BusinessSector, ChargeKind, EnergyProduct, MessageType, MeteringMethod, MeteringPointType,
    PhysicalStatus, ProcessType, ReasonCode, Role, SettlementMethod, Unit, VatPayer,
};
use afregning_cim::rsm012::{NotifyValidatedMeasureData, Period, Series};
use afregning_cim::rsm014::{AggregatedPeriod, AggregatedSeries, NotifyAggregatedMeasureData};
use afregning_cim::rsm022::{
    AccountingPointCharacteristics, AccountingPointRecord, MeteringPoint, ProductSeries,
};
use afregning_cim::rsm031::{
    ChargeLink, ChargeLinkGroup, ChargeLinkRecord, NotifyBillingMasterData,
};
use afregning_cim::rsm034::{
    Charge, ChargeGroup, NotifyPriceList, PriceListRecord, PricePeriod, PricePoint,
};
use afregning_cim::{
    AreaId, DATAHUB_GLN, Document, Gsrn, Header, Participant, PartyId, Point, Reason, Resolution,
    TimeInterval,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::ground_truth::{ChargeTruth, LinkTruth, MeteringPointTruth, TruthPoint};

/// The header of a document DataHub sends us.
pub fn header(
    message_id: &str,
    document_type: MessageType,
    process: ProcessType,
    datahub_role: Role,
    supplier_gln: &str,
    created: DateTime<Utc>,
    reason: Option<ReasonCode>,
) -> Header {
    Header {
        message_id: message_id.to_string(),
        business_sector: Some(BusinessSector::ELECTRICITY),
        created,
        process_type: process,
        reason_code: reason,
        receiver: Participant {
            id: PartyId::gln(supplier_gln),
            role: Role::ENERGY_SUPPLIER,
        },
        sender: Participant {
            id: PartyId::gln(DATAHUB_GLN),
            role: datahub_role,
        },
        document_type,
    }
}

/// One metered-data series.
pub struct SeriesSpec<'a> {
    /// Transaction id.
    pub transaction_id: String,
    /// Metering point.
    pub gsrn: Gsrn,
    /// Resolution.
    pub resolution: Resolution,
    /// Period.
    pub interval: TimeInterval,
    /// Registration time.
    pub registered: DateTime<Utc>,
    /// Points.
    pub points: &'a [TruthPoint],
}

/// RSM-012 with the given series.
pub fn rsm012(
    message_id: &str,
    supplier: &str,
    created: DateTime<Utc>,
    series: &[SeriesSpec<'_>],
) -> Vec<u8> {
    let doc = NotifyValidatedMeasureData {
        header: header(
            message_id,
            MessageType::VALIDATED_METERED_DATA,
            ProcessType::PERIODIC_METERING,
            Role::METERED_DATA_ADMINISTRATOR,
            supplier,
            created,
            None,
        ),
        series: series
            .iter()
            .map(|s| Series {
                transaction_id: s.transaction_id.clone(),
                metering_point: s.gsrn,
                metering_point_type: MeteringPointType::Consumption,
                original_transaction_id: None,
                product: Some(EnergyProduct::ACTIVE_ENERGY.as_str().to_string()),
                unit: Unit::KWH,
                registered: s.registered,
                in_area: None,
                out_area: None,
                period: Period {
                    resolution: s.resolution,
                    interval: s.interval,
                    points: s
                        .points
                        .iter()
                        .map(|p| Point {
                            position: p.position,
                            quality: p.quality,
                            quantity: p.quantity,
                        })
                        .collect(),
                },
            })
            .collect(),
    };
    afregning_cim::rsm012::write(&doc)
}

/// RSM-022 master data for metering points.
pub fn rsm022(
    message_id: &str,
    supplier: &str,
    created: DateTime<Utc>,
    points: &[(&MeteringPointTruth, String, Decimal)],
) -> Vec<u8> {
    let doc = AccountingPointCharacteristics {
        header: header(
            message_id,
            MessageType::MASTER_DATA_METERING_POINT,
            ProcessType::CHANGE_OF_SUPPLIER,
            Role::METERING_POINT_ADMINISTRATOR,
            supplier,
            created,
            None,
        ),
        records: points
            .iter()
            .map(|(mp, transaction_id, annual)| AccountingPointRecord {
                transaction_id: transaction_id.clone(),
                business_process_id: None,
                original_transaction_id: None,
                validity_start: mp.supply_start,
                snapshot: None,
                metering_point: MeteringPoint {
                    gsrn: mp.gsrn,
                    responsible: Some(PartyId::gln(mp.grid_owner_gln.clone())),
                    metering_point_type: Some(mp.metering_point_type),
                    settlement_method: Some(mp.settlement_method),
                    metering_method: Some(MeteringMethod::PHYSICAL),
                    connection_state: Some(PhysicalStatus::CONNECTED),
                    read_cycle: Some(mp.resolution),
                    net_settlement_group: None,
                    next_reading_date: None,
                    grid_area: Some(AreaId::grid_area(mp.grid_area.clone())),
                    in_grid_area: None,
                    out_grid_area: None,
                    linked: None,
                    physical_connection_capacity: None,
                    connection_type: None,
                    disconnection_method: None,
                    asset_type: None,
                    production_obligation: None,
                    contracted_connection_capacity: None,
                    rated_current: None,
                    meter_id: None,
                    products: vec![ProductSeries {
                        product: Some(EnergyProduct::ACTIVE_ENERGY),
                        estimated_annual_volume: Some(*annual),
                        unit: Some(Unit::KWH),
                    }],
                    energy_supplier: Some(PartyId::gln(supplier)),
                    supply_start: Some(mp.supply_start),
                    description: None,
                    geo_info_reference: None,
                    address: None,
                    actual_address: None,
                    parent: None,
                    children: Vec::new(),
                },
            })
            .collect(),
    };
    afregning_cim::rsm022::write(&doc)
}

/// RSM-034 charge information (process D18): one record per charge.
pub fn rsm034_information(
    message_id: &str,
    supplier: &str,
    created: DateTime<Utc>,
    charges: &[(String, &ChargeTruth)],
) -> Vec<u8> {
    let doc = NotifyPriceList {
        header: header(
            message_id,
            MessageType::NOTIFY_CHARGE_INFORMATION,
            ProcessType::UPDATE_CHARGE_MASTER_DATA,
            Role::METERING_POINT_ADMINISTRATOR,
            supplier,
            created,
            None,
        ),
        records: charges
            .iter()
            .map(|(transaction_id, c)| PriceListRecord {
                transaction_id: transaction_id.clone(),
                business_process_id: None,
                original_transaction_id: None,
                snapshot: None,
                charge_group: ChargeGroup {
                    charges: vec![Charge {
                        code: c.code.clone(),
                        vat_payer: Some(VatPayer::Recipient),
                        owner: Some(PartyId::gln(c.owner_gln.clone())),
                        equation: None,
                        description: Some(c.name.clone()),
                        effective: Some(c.valid_from),
                        name: Some(c.name.clone()),
                        price_resolution: Some(c.resolution),
                        tax: Some(c.tax),
                        termination: None,
                        transparent_invoicing: Some(true),
                        kind: Some(c.kind),
                        prices: Vec::new(),
                    }],
                },
            })
            .collect(),
    };
    afregning_cim::rsm034::write(&doc)
}

/// RSM-034 prices (process D08): one record per charge, one price series per period.
pub fn rsm034_prices(
    message_id: &str,
    supplier: &str,
    created: DateTime<Utc>,
    charges: &[(String, &ChargeTruth, Vec<(TimeInterval, Vec<Decimal>)>)],
) -> Vec<u8> {
    let doc = NotifyPriceList {
        header: header(
            message_id,
            MessageType::NOTIFY_CHARGE_INFORMATION,
            ProcessType::UPDATE_CHARGE_PRICES,
            Role::METERING_POINT_ADMINISTRATOR,
            supplier,
            created,
            None,
        ),
        records: charges
            .iter()
            .map(|(transaction_id, c, periods)| PriceListRecord {
                transaction_id: transaction_id.clone(),
                business_process_id: None,
                original_transaction_id: None,
                snapshot: None,
                charge_group: ChargeGroup {
                    charges: vec![Charge {
                        code: c.code.clone(),
                        vat_payer: None,
                        owner: Some(PartyId::gln(c.owner_gln.clone())),
                        equation: None,
                        description: None,
                        effective: Some(c.valid_from),
                        name: None,
                        price_resolution: None,
                        tax: None,
                        termination: None,
                        transparent_invoicing: None,
                        kind: Some(c.kind),
                        prices: periods
                            .iter()
                            .map(|(interval, prices)| PricePeriod {
                                resolution: c.resolution,
                                interval: Some(*interval),
                                points: prices
                                    .iter()
                                    .enumerate()
                                    .map(|(i, price)| PricePoint {
                                        position: u32::try_from(i + 1).unwrap_or(u32::MAX),
                                        price: *price,
                                    })
                                    .collect(),
                            })
                            .collect(),
                    }],
                },
            })
            .collect(),
    };
    afregning_cim::rsm034::write(&doc)
}

/// RSM-031 charge links: one record per metering point.
pub fn rsm031(
    message_id: &str,
    supplier: &str,
    created: DateTime<Utc>,
    records: &[(String, Gsrn, Vec<&LinkTruth>)],
) -> Vec<u8> {
    let doc = NotifyBillingMasterData {
        header: header(
            message_id,
            MessageType::NOTIFY_MASTER_DATA_CHARGE,
            ProcessType::UPDATE_MASTER_DATA_SETTLEMENT,
            Role::METERING_POINT_ADMINISTRATOR,
            supplier,
            created,
            None,
        ),
        records: records
            .iter()
            .map(|(transaction_id, gsrn, links)| ChargeLinkRecord {
                transaction_id: transaction_id.clone(),
                business_process_id: None,
                original_transaction_id: None,
                metering_point: *gsrn,
                charge_group: ChargeLinkGroup {
                    links: links
                        .iter()
                        .map(|l| ChargeLink {
                            owner: PartyId::gln(l.owner_gln.clone()),
                            kind: l.kind,
                            code: l.code.clone(),
                            factor: Some(l.factor.to_string()),
                            effective: Some(l.valid_from),
                            termination: l.valid_to,
                        })
                        .collect(),
                },
            })
            .collect(),
    };
    afregning_cim::rsm031::write(&doc)
}

/// One aggregated series of RSM-014.
pub struct AggregateSpec {
    /// Transaction id.
    pub transaction_id: String,
    /// Grid area.
    pub grid_area: String,
    /// Settlement method.
    pub settlement_method: SettlementMethod,
    /// The day (PT1H).
    pub interval: TimeInterval,
    /// Hourly sums.
    pub hours: Vec<Decimal>,
}

/// RSM-014 balance-fixing aggregations.
pub fn rsm014(
    message_id: &str,
    supplier: &str,
    created: DateTime<Utc>,
    series: &[AggregateSpec],
) -> Vec<u8> {
    let doc = NotifyAggregatedMeasureData {
        header: header(
            message_id,
            MessageType::AGGREGATED_METERED_DATA,
            ProcessType::BALANCE_FIXING,
            Role::METERED_DATA_ADMINISTRATOR,
            supplier,
            created,
            None,
        ),
        series: series
            .iter()
            .map(|s| AggregatedSeries {
                transaction_id: s.transaction_id.clone(),
                version: Some("1".into()),
                grid_area: Some(AreaId::grid_area(s.grid_area.clone())),
                balance_responsible: None,
                energy_supplier: Some(PartyId::gln(supplier)),
                settlement_method: Some(s.settlement_method),
                original_transaction_id: None,
                metering_point_type: MeteringPointType::Consumption,
                product: Some(EnergyProduct::ACTIVE_ENERGY.as_str().to_string()),
                unit: Unit::KWH,
                settlement_version: None,
                asset_type: None,
                bidding_zone: None,
                in_area: None,
                out_area: None,
                registered: None,
                period: AggregatedPeriod {
                    resolution: Resolution::Hour,
                    interval: s.interval,
                    points: s
                        .hours
                        .iter()
                        .enumerate()
                        .map(|(i, q)| Point {
                            position: u32::try_from(i + 1).unwrap_or(u32::MAX),
                            quality: afregning_cim::codes::Quality::AsProvided,
                            quantity: Some(*q),
                        })
                        .collect(),
                },
            })
            .collect(),
    };
    afregning_cim::rsm014::write(&doc)
}

/// The answer to a supplier-switch request record: confirmed, or rejected with a reason.
pub enum SwitchAnswer {
    /// Confirmed.
    Confirm {
        /// DataHub's transaction id.
        transaction_id: String,
        /// The metering point.
        gsrn: Gsrn,
        /// Our request record's `mRID`.
        original: String,
    },
    /// Rejected.
    Reject {
        /// DataHub's transaction id.
        transaction_id: String,
        /// The metering point, when identifiable.
        gsrn: Option<Gsrn>,
        /// Our request record's `mRID`.
        original: String,
        /// Reason code.
        code: ReasonCode,
        /// Reason text.
        text: String,
    },
}

/// The RSM-001 confirm or reject document for one answer.
pub fn rsm001_answer(
    message_id: &str,
    supplier: &str,
    created: DateTime<Utc>,
    process: ProcessType,
    answer: &SwitchAnswer,
) -> Vec<u8> {
    let doc = match answer {
        SwitchAnswer::Confirm {
            transaction_id,
            gsrn,
            original,
        } => Document::ConfirmRequestChangeOfSupplier(Confirmation {
            header: header(
                message_id,
                MessageType::CONFIRMATION_OF_START_OF_SUPPLY,
                process,
                Role::METERING_POINT_ADMINISTRATOR,
                supplier,
                created,
                Some(ReasonCode::ACCEPTED),
            ),
            records: vec![ConfirmedRecord {
                transaction_id: transaction_id.clone(),
                business_process_id: Some(format!("bp-{transaction_id}")),
                metering_point: *gsrn,
                original_transaction_id: Some(original.clone()),
            }],
        }),
        SwitchAnswer::Reject {
            transaction_id,
            gsrn,
            original,
            code,
            text,
        } => Document::RejectRequestChangeOfSupplier(Rejection {
            header: header(
                message_id,
                MessageType::CONFIRMATION_OF_START_OF_SUPPLY,
                process,
                Role::METERING_POINT_ADMINISTRATOR,
                supplier,
                created,
                Some(ReasonCode::REJECTED),
            ),
            records: vec![RejectedRecord {
                transaction_id: transaction_id.clone(),
                business_process_id: None,
                metering_point: *gsrn,
                original_transaction_id: Some(original.clone()),
                reasons: vec![Reason {
                    code: *code,
                    text: Some(text.clone()),
                }],
            }],
        }),
    };
    afregning_cim::write(&doc)
}

/// The RSM-005 confirm of an end of supply. The document type code of DataHub's RSM-005
/// answers is not public (XSD only); the simulator uses RSM-001's 414, which the reader
/// accepts for any answer **[UNVERIFIED]**.
pub fn rsm005_confirm(
    message_id: &str,
    supplier: &str,
    created: DateTime<Utc>,
    transaction_id: &str,
    gsrn: Gsrn,
    original: &str,
) -> Vec<u8> {
    afregning_cim::write(&Document::ConfirmRequestEndOfSupply(Confirmation {
        header: header(
            message_id,
            MessageType::CONFIRMATION_OF_START_OF_SUPPLY,
            ProcessType::END_OF_SUPPLY,
            Role::METERING_POINT_ADMINISTRATOR,
            supplier,
            created,
            Some(ReasonCode::ACCEPTED),
        ),
        records: vec![ConfirmedRecord {
            transaction_id: transaction_id.to_string(),
            business_process_id: Some(format!("bp-{transaction_id}")),
            metering_point: gsrn,
            original_transaction_id: Some(original.to_string()),
        }],
    }))
}

/// Whether a charge kind is a tariff (per kWh).
pub fn is_tariff(kind: ChargeKind) -> bool {
    kind == ChargeKind::Tariff
}
