//! The supplier's portfolio: which metering points we supply, for which customer, from when,
//! driven by DataHub's business processes (BRS-001/002/003/009/010/011/015/044, change of
//! BRP) and notifications (RSM-004/022/028/031).
//!
//! Event sourced: [`decide`] turns a command into exactly one [`Event`] (or a [`Rejection`]
//! with a reason code), [`MeteringPoint::apply`] folds events into the state, and the supply
//! periods are part of that fold. Everything is pure except [`read_model`], the PostgreSQL
//! edge, and [`projector`], which feeds it from the events topic. See `docs/portfolio.md`.

pub mod answers;
pub mod calendar;
pub mod command;
pub mod customer_keys;
pub mod decide;
pub mod event;
pub mod ids;
pub mod inbound;
pub mod intake;
pub mod master_data;
pub mod outbound;
pub mod personal;
pub mod process;
pub mod projector;
pub mod read_model;
pub mod reason;
pub mod rules;
pub mod state;
pub mod supply;

pub use command::{Command, CommandMeta, CustomerRef, ProcessDetails};
pub use decide::decide;
pub use event::{Change, ChargeLink, Event, MasterData};
pub use ids::{CustomerKey, Gln, ProcessId};
pub use intake::CommandRecord;
pub use process::{Process, ProcessKind, ProcessStatus};
pub use reason::{Reason, Rejection};
pub use state::MeteringPoint;
pub use supply::{SupplyPeriod, SupplyTimeline};
