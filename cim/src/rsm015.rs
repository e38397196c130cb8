//! RSM-015 RequestValidatedMeasureData: the supplier asks DataHub for a metering point's
//! validated data over a period (answered with RSM-012 or a reject).
//!
//! Shape: the real JSON schema `rsm-015/Request-validated-measure-data-assembly-model.schema.json`.

use chrono::{DateTime, Utc};

use crate::codes::MessageType;
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::gsrn::Gsrn;
use crate::header::{Header, check_header};

cim_object! {
    /// `RequestValidatedMeasureData_MarketDocument` (type E73), DDQ → DGL.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct RequestValidatedMeasureData {
        flatten header: Header;
        /// `Series[]`: one request per metering point and period.
        "Series" [nonempty] => series: Vec<MeasureDataRequest>,
    }
    check = check_document;
}

cim_object! {
    /// One request for a metering point's data.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct MeasureDataRequest {
        /// `mRID`: the transaction id.
        "mRID" => transaction_id: String,
        /// `end_DateAndOrTime.dateTime`.
        "end_DateAndOrTime.dateTime" => end: Option<DateTime<Utc>>,
        /// `marketEvaluationPoint.mRID`.
        "marketEvaluationPoint.mRID" => metering_point: Gsrn,
        /// `start_DateAndOrTime.dateTime`.
        "start_DateAndOrTime.dateTime" => start: Option<DateTime<Utc>>,
    }
    check = check_request;
}

typed_io!(RequestValidatedMeasureData, RequestValidatedMeasureData);

cim_document!(RequestValidatedMeasureData, series, MeasureDataRequest);

fn check_document(doc: &RequestValidatedMeasureData) -> Result<(), Finding> {
    check_header(
        &doc.header,
        false,
        &[MessageType::REQUEST_VALIDATED_METERED_DATA],
    )
}

fn check_request(r: &MeasureDataRequest) -> Result<(), Finding> {
    crate::common::check_range(r.start, r.end)
}
