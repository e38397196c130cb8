//! Settlement as a fold over local days: the form that makes a month incremental.
//!
//! [`MonthContext::prepare`] checks and prepares a metering point's reference data for
//! a billing period once; [`MonthContext::day`] settles one local day into a
//! [`Summary`] (exact sums and counts per line); summaries add and subtract exactly;
//! [`MonthContext::statement`] turns a month's sum into the [`MonthStatement`](crate::MonthStatement)
//! with line-level rounding, VAT and totals. [`crate::settle_month`] is this fold over
//! every day of the period, so the batch engine and the streaming processor share one
//! code path; the processor keeps `Σ (day − empty day)` per month
//! ([`MonthContext::day_delta`]) and patches it per corrected day
//! (docs/decisions/0080-incremental-settlement.md).

mod codec;
mod context;
pub(crate) mod fixed_prices;
mod summary;

pub use codec::DecodeError;
pub use context::{MonthContext, stable_digest};
pub use summary::{LineKey, LineSum, Multiset, Summary};

#[cfg(test)]
mod fixed_tests;
#[cfg(test)]
mod spot_amount_tests;
#[cfg(test)]
mod tests;
