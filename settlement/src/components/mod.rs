//! One module per invoice component. Each turns the prepared input into [`Line`](crate::Line)s.
//!
//! - [`charges`]: DataHub tariffs (D03), subscriptions (D01) and fees (D02),
//!   following Energinet's wholesale calculation rule for rule.
//! - [`spot`]: kWh × day-ahead price per MTU.
//! - [`supplier`]: the supplier's margin and subscription from the product catalogue.

pub mod charges;
pub mod spot;
pub mod supplier;
