//! reconcile: our own charges and volumes checked against DataHub's wholesale settlement
//! (BRS-027), to the øre.
//!
//! DataHub's results arrive on the wholesale-results topic (validate maps RSM-019 and
//! RSM-014 there, `validate::wholesale`). [`core::reconcile`] compares them, run in force
//! only, with our side aggregated to DataHub's granularity ([`ours`] builds it from our
//! settlement's per-position details and our readings); every difference becomes a
//! [`core::Discrepancy`]. [`processor::Reconcile`] does it on the broker and publishes
//! each grid area's month's discrepancies; [`run`] runs it. See `docs/reconciliation.md`.

pub mod core;
pub mod ours;
pub mod processor;
pub mod run;

pub use processor::{NAME, Reconcile, ReconcileConfig};

#[cfg(test)]
mod tests;
