//! The RSM-012 model; the `cim_object!` table is also its reader and writer.

use chrono::{DateTime, Utc};

use crate::codes::{MeteringPointType, Unit};
use crate::common::{AreaId, TimeInterval};
use crate::de::cim_object;
use crate::document::cim_document;
use crate::gsrn::Gsrn;
use crate::header::Header;
use crate::resolution::Resolution;
use crate::series::Point;

use super::check::{check_document, check_period, check_series};

cim_object! {
    /// `NotifyValidatedMeasureData_MarketDocument`: a bundle of validated time series.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct NotifyValidatedMeasureData {
        flatten header: Header;
        /// `Series[]`: one per metering point and period (schema: optional, may be empty).
        "Series" [default] => series: Vec<Series>,
    }
    check = check_document;
}

cim_object! {
    /// One time series: a metering point's quantities for one period.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Series {
        /// `mRID`: the transaction id (DataHub makes a new one per receiver when forwarding).
        "mRID" => transaction_id: String,
        /// `marketEvaluationPoint.mRID`: the metering point.
        "marketEvaluationPoint.mRID" => metering_point: Gsrn,
        /// `marketEvaluationPoint.type`: E17 consumption, E18 production, E20 exchange, D01…D99 child types.
        "marketEvaluationPoint.type" [wrapped] => metering_point_type: MeteringPointType,
        /// `originalTransactionIDReference_Series.mRID`: set by grid companies, left out by DataHub.
        "originalTransactionIDReference_Series.mRID" => original_transaction_id: Option<String>,
        /// `product`: 8716867000030 (active energy) when present.
        "product" => product: Option<String>,
        /// `quantity_Measure_Unit.name`: KWH for energy.
        "quantity_Measure_Unit.name" [wrapped] => unit: Unit,
        /// `registration_DateAndOrTime.dateTime`: when the grid company registered the values;
        /// a later registration for the same metering point and period is a correction.
        "registration_DateAndOrTime.dateTime" => registered: DateTime<Utc>,
        /// `in_Domain.mRID`: receiving grid area of an exchange metering point.
        "in_Domain.mRID" => in_area: Option<AreaId>,
        /// `out_Domain.mRID`: delivering grid area of an exchange metering point.
        "out_Domain.mRID" => out_area: Option<AreaId>,
        /// `Period`: exactly one per series.
        "Period" => period: Period,
    }
    check = check_series;
}

cim_object! {
    /// The period of a series and its points.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct Period {
        /// `resolution`.
        "resolution" => resolution: Resolution,
        /// `timeInterval`: UTC, end exclusive.
        "timeInterval" => interval: TimeInterval,
        /// `Point[]`: at least one; may be sparse (gaps are allowed).
        "Point" [nonempty] => points: Vec<Point>,
    }
    check = check_period;
}

impl NotifyValidatedMeasureData {
    /// Total number of points over all series.
    pub fn point_count(&self) -> usize {
        self.series.iter().map(|s| s.period.points.len()).sum()
    }
}

impl Period {
    /// The number of positions the period has in its resolution (92/96/100 quarter-hours for a
    /// Danish day), or `None` if the period does not fit the resolution.
    pub fn position_count(&self) -> Option<u32> {
        self.resolution
            .positions(self.interval.start, self.interval.end)
            .ok()
    }

    /// UTC start of a position.
    pub fn position_start(&self, position: u32) -> Option<DateTime<Utc>> {
        self.resolution
            .position_start(self.interval.start, position)
    }
}

cim_document!(
    NotifyValidatedMeasureData,
    series,
    Series,
    points = NotifyValidatedMeasureData::point_count
);
