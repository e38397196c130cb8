//! RSM-012 NotifyValidatedMeasureData: validated metered data, the volume path.
//!
//! Shape: the real JSON schema `rsm-012/Notify-Validated-measure-data-assembly-model.schema.json`.
//! A document is a bundle of up to 2,000 `Series`, one per metering point and period.

mod check;
mod model;

pub use model::{NotifyValidatedMeasureData, Period, Series};

pub use crate::series::Point;

crate::document::typed_io!(NotifyValidatedMeasureData, NotifyValidatedMeasureData);
