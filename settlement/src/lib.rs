//! Pure settlement arithmetic for a Danish electricity bill: tariff periods, DST, rounding, components.
//!
//! Every amount afregning puts on an invoice comes from this crate. It is pure
//! (no I/O, no async, no clock), so that the stream processors, the
//! conformance runner and any batch recomputation call the same code.
//!
//! - [`settle_month`] settles one metering point for one billing period:
//!   [`MonthInput`] in, [`MonthStatement`] out (lines per component, each with
//!   its details, VAT per class and totals).
//! - [`calendar`], [`tariff_period`] and [`aggregate`] are the helpers of the
//!   aggregate processor (local days, DST, bands, daily aggregates).
//! - [`rounding`] holds the rounding rules; [`rounding::line_amount`] is the
//!   one function every DataHub charge amount goes through.
//!
//! The rules, their sources and what is unverified are in `docs/settlement.md`.

pub mod aggregate;
mod arith;
pub mod calendar;
pub mod charges;
pub mod components;
pub(crate) mod fixed;
pub mod fold;
pub mod input;
pub mod product;
pub mod quantity;
pub mod rounding;
mod settle;
pub mod spot;
pub mod statement;
pub mod tariff_period;

pub use aggregate::{DailyAggregate, aggregate_day};
pub use calendar::{BillingMonth, BillingPeriod};
pub use charges::{
    Charge, ChargeKey, ChargeLink, ChargePeriod, ChargePricePoint, ChargeResolution, ChargeType,
    VatClass,
};
pub use input::{InputError, MeteringPoint, MonthInput, Scope};
pub use product::{
    Margin, Product, ProductAssignment, ProductCatalogue, ProductTerm, ProductVersion,
};
pub use quantity::{Position, Quality, QualitySet, Resolution, SupplyPeriod};
pub use settle::settle_month;
pub use spot::{PriceArea, SpotPrice};
pub use statement::{
    Component, Detail, Issue, Line, LineSource, MonthStatement, Totals, UnitPrice, VatSubtotal,
};
pub use tariff_period::{TariffPeriod, TimeBands, tariff_period};
