//! RSM-012 business rules (run while reading, so findings carry the exact path).

use crate::codes::MessageType;
use crate::de::Finding;
use crate::header::check_header;
use crate::series::{check_positions, check_sign};

use super::model::{NotifyValidatedMeasureData, Period, Series};

pub(super) fn check_document(doc: &NotifyValidatedMeasureData) -> Result<(), Finding> {
    check_header(&doc.header, false, &[MessageType::VALIDATED_METERED_DATA])
}

pub(super) fn check_series(series: &Series) -> Result<(), Finding> {
    let allowed = series.metering_point_type.allows_negative_quantity();
    for (i, point) in series.period.points.iter().enumerate() {
        check_sign(
            point.quantity,
            allowed,
            || format!(".Period.Point[{i}].quantity"),
            || format!("for metering point type {}", series.metering_point_type),
        )?;
    }
    Ok(())
}

pub(super) fn check_period(period: &Period) -> Result<(), Finding> {
    check_positions(
        period.resolution,
        &period.interval,
        ".Point",
        period
            .points
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.position)),
    )
    .map(|_| ())
}
