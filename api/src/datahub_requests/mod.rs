//! On-demand requests to DataHub for its calculation results, with the answers matched to
//! the request (issue 17, docs/reconciliation.md "Requesting DataHub's results"): when a
//! month does not reconcile because DataHub's results are missing or old, an operator asks
//! for them again (RSM-016 for the energy, RSM-017 for the amounts) from the API or
//! `afregning reconcile request`.
//!
//! [`document`] says what may be asked and writes the CIM document; [`store`] records each
//! request (who, what, when, why, state) in `datahub_request`; [`relay`] publishes pending
//! requests to the outbound topic the connector posts from, and matches what comes back
//! ([`answers`]) to the request by id.

pub mod answers;
pub mod document;
pub mod relay;
pub mod store;
