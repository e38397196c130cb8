//! What a test or the simulator's operator makes DataHub do to a supplier's portfolio: reject
//! the next switch with a given reason (a rule of DataHub's our checks did not catch), or
//! notify that another supplier takes one of our metering points: RSM-004
//! `GenericNotification` (E44) for their change of supplier (process type E03) or a
//! customer's move-in (E01, stop of supply) (lifecycle NOTES §1, §2.1, §2.6). The document
//! goes on the MasterData queue at once, and the simulator no longer counts the metering point
//! as ours.

use afregning_cim::Gsrn;
use afregning_cim::codes::{MessageType, ProcessType, Role};
use afregning_cim::rsm004::{GenericNotification, Notification};
use afregning_settlement::calendar::local_midnight;
use bytes::Bytes;
use chrono::{NaiveDate, Utc};

use crate::events::EnqueueReason;
use crate::queues::{Message, Queue};
use crate::scenario::documents::header;
use crate::{SimulatorHandle, lock};

/// How another supplier took the metering point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// Their change of supplier (BRS-001, E03).
    ChangeOfSupplier,
    /// Their customer's move-in (BRS-009), notified as a stop of supply (E01).
    MoveIn,
}

impl SimulatorHandle {
    /// DataHub rejects the next supplier switch (RSM-001) it receives with `reason` and
    /// `text` (e.g. E17 "Startdato … er ikke korrekt"), whatever its content: a rule of
    /// DataHub's our own checks did not catch. Later switches are judged as usual.
    pub fn reject_next_switch(&self, reason: &str, text: &str) {
        lock(&self.shared.switch_rejects).push_back((reason.to_string(), text.to_string()));
    }

    /// Another supplier takes `gsrn` from the start of `day` (a Danish calendar day): an
    /// RSM-004 to us on the MasterData queue now. Returns its MessageId.
    pub fn notify_takeover(&self, gsrn: Gsrn, day: NaiveDate, how: Takeover) -> String {
        let shared = &self.shared;
        let supplier = shared.config.scenario.supplier_gln.clone();
        let id = shared.guid();
        let transaction = shared.guid();
        let process = match how {
            Takeover::ChangeOfSupplier => ProcessType::CHANGE_OF_SUPPLIER,
            Takeover::MoveIn => ProcessType::MOVE,
        };
        let document = GenericNotification {
            header: header(
                &id,
                MessageType::SUPPLIER_CONTRACT_TERMINATION,
                process,
                Role::METERING_POINT_ADMINISTRATOR,
                &supplier,
                Utc::now(),
                None,
            ),
            records: vec![Notification {
                transaction_id: transaction.clone(),
                business_process_id: Some(format!("bp-{transaction}")),
                original_transaction_id: None,
                validity_start: local_midnight(day),
                metering_point: gsrn,
            }],
        };
        lock(&shared.supplied).remove(&gsrn);
        crate::lifecycle::end_supply(shared, gsrn, day);
        shared.enqueue(
            Message {
                id: id.clone(),
                queue: Queue::MasterData,
                body: Bytes::from(afregning_cim::rsm004::write(&document)),
                kind: Some(afregning_cim::DocumentKind::GenericNotification),
                transactions: 1,
                visible_at: std::time::Instant::now(),
                fault: None,
            },
            EnqueueReason::Notification,
        );
        id
    }
}
