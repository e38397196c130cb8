//! What the ERP may receive: each statement once, and a correction only as a
//! credit note and a new, higher version that says what it corrects. Pure, so
//! every rule is tested without Kafka or a database.
//!
//! For one metering point and billing month, given what was already delivered:
//!
//! - a statement id delivered before with the same content is a duplicate
//!   (skipped); with different content it is a *silent change* (refused);
//! - a `STATEMENT` is delivered when no statement of the month is in force,
//!   or when it names the one in force in `corrects_statement_id` (the
//!   correction), and its version is above every delivered statement's;
//! - a `CREDIT_NOTE` is delivered when it names a delivered statement of the
//!   month that no credit note reversed yet, with a higher version.
//!
//! A statement is *in force* from its delivery until a credit note reverses
//! it or a newer statement replaces it.

use std::collections::HashMap;

use afregning_topology::records::{SettlementStatement, StatementKind};
use chrono::NaiveDate;

/// A statement or credit note already delivered to the ERP.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// Statement id.
    pub statement_id: String,
    /// Statement or credit note.
    pub kind: StatementKind,
    /// What it corrects.
    pub corrects_statement_id: Option<String>,
    /// Version.
    pub version: i64,
    /// The statement as published, to compare a redelivery with.
    pub document: serde_json::Value,
}

impl Delivered {
    /// The record of delivering `statement`.
    pub fn of(statement: &SettlementStatement) -> Self {
        Self {
            statement_id: statement.statement_id.clone(),
            kind: statement.kind,
            corrects_statement_id: statement.corrects_statement_id.clone(),
            version: statement.version,
            document: document(statement),
        }
    }
}

/// The JSON document of a statement: what `erp_delivery.document` stores and
/// the file export writes.
pub fn document(statement: &SettlementStatement) -> serde_json::Value {
    serde_json::to_value(statement).expect("a statement serializes to JSON")
}

/// The verdict on one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Publish it.
    Deliver,
    /// Already delivered, identical: skip.
    Duplicate,
    /// Refuse it (dead letter), with the reason.
    Reject(String),
}

/// What was delivered, per metering point and month; updated as a batch is
/// decided, so a credit note and its new statement in one batch see each other.
#[derive(Debug, Clone, Default)]
pub struct DeliveryState {
    by_id: HashMap<String, (String, NaiveDate)>,
    months: HashMap<(String, NaiveDate), Vec<Delivered>>,
}

impl DeliveryState {
    /// Adds a delivered document (loaded from the database).
    pub fn insert(&mut self, gsrn: &str, month: NaiveDate, delivered: Delivered) {
        self.by_id
            .insert(delivered.statement_id.clone(), (gsrn.to_string(), month));
        self.months
            .entry((gsrn.to_string(), month))
            .or_default()
            .push(delivered);
    }

    fn month(&self, gsrn: &str, month: NaiveDate) -> &[Delivered] {
        self.months
            .get(&(gsrn.to_string(), month))
            .map_or(&[], Vec::as_slice)
    }

    /// The statements of a month in force (delivered, neither credited nor replaced).
    pub fn in_force(&self, gsrn: &str, month: NaiveDate) -> Vec<&Delivered> {
        let documents = self.month(gsrn, month);
        documents
            .iter()
            .filter(|d| d.kind == StatementKind::Statement)
            .filter(|d| {
                !documents.iter().any(|other| {
                    other.corrects_statement_id.as_deref() == Some(d.statement_id.as_str())
                })
            })
            .collect()
    }

    /// Decides on `statement` and, when it is delivered, records it.
    pub fn decide(&mut self, statement: &SettlementStatement) -> Decision {
        if let Some((gsrn, month)) = self.by_id.get(&statement.statement_id) {
            let previous = self
                .month(gsrn, *month)
                .iter()
                .find(|d| d.statement_id == statement.statement_id)
                .expect("indexed documents exist");
            return if previous.document == document(statement) {
                Decision::Duplicate
            } else {
                Decision::Reject(format!(
                    "statement {} was already delivered with other content; a correction must be a credit note and a new statement",
                    statement.statement_id
                ))
            };
        }
        let documents = self.month(&statement.gsrn, statement.month_start);
        let verdict = match statement.kind {
            StatementKind::Statement => {
                let highest = documents
                    .iter()
                    .filter(|d| d.kind == StatementKind::Statement)
                    .map(|d| d.version)
                    .max();
                let in_force = self.in_force(&statement.gsrn, statement.month_start);
                if highest.is_some_and(|v| statement.version <= v) {
                    Err(format!(
                        "statement {} has version {}, not above the delivered version {}",
                        statement.statement_id,
                        statement.version,
                        highest.unwrap_or_default()
                    ))
                } else {
                    match in_force.as_slice() {
                        [] => Ok(()),
                        [current]
                            if statement.corrects_statement_id.as_deref()
                                == Some(current.statement_id.as_str()) =>
                        {
                            Ok(())
                        }
                        [current, ..] => Err(format!(
                            "statement {} for {} {} while statement {} is in force and not named as corrected: a correction needs a credit note or corrects_statement_id",
                            statement.statement_id,
                            statement.gsrn,
                            statement.month_start,
                            current.statement_id
                        )),
                    }
                }
            }
            StatementKind::CreditNote => match statement.corrects_statement_id.as_deref() {
                None => Err(format!(
                    "credit note {} does not say which statement it reverses",
                    statement.statement_id
                )),
                Some(target) => match documents.iter().find(|d| d.statement_id == target) {
                    None => Err(format!(
                        "credit note {} reverses {target}, which was not delivered for {} {}",
                        statement.statement_id, statement.gsrn, statement.month_start
                    )),
                    Some(d) if d.kind != StatementKind::Statement => Err(format!(
                        "credit note {} reverses {target}, which is a credit note",
                        statement.statement_id
                    )),
                    Some(_)
                        if documents.iter().any(|other| {
                            other.kind == StatementKind::CreditNote
                                && other.corrects_statement_id.as_deref() == Some(target)
                        }) =>
                    {
                        Err(format!(
                            "credit note {} reverses {target}, which was already credited",
                            statement.statement_id
                        ))
                    }
                    Some(d) if statement.version <= d.version => Err(format!(
                        "credit note {} has version {}, not above the version {} it reverses",
                        statement.statement_id, statement.version, d.version
                    )),
                    Some(_) => Ok(()),
                },
            },
        };
        match verdict {
            Ok(()) => {
                self.insert(
                    &statement.gsrn,
                    statement.month_start,
                    Delivered::of(statement),
                );
                Decision::Deliver
            }
            Err(reason) => Decision::Reject(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use afregning_topology::records::examples;
    use rust_decimal::Decimal;

    use super::*;

    fn statement(version: i64, corrects: Option<String>) -> SettlementStatement {
        let mut s = examples::settlement_statement();
        s.kind = StatementKind::Statement;
        s.statement_id = format!("{}:2026-10:{version}", examples::GSRN);
        s.idempotency_key = s.statement_id.clone();
        s.corrects_statement_id = corrects;
        s.version = version;
        for line in &mut s.lines {
            line.amount = -line.amount;
            line.quantity = -line.quantity;
        }
        s.total_incl_vat = -s.total_incl_vat;
        s
    }

    fn credit_note(of: &SettlementStatement, version: i64) -> SettlementStatement {
        let mut s = examples::settlement_statement();
        s.statement_id = format!("{}:credit", of.statement_id);
        s.idempotency_key = s.statement_id.clone();
        s.corrects_statement_id = Some(of.statement_id.clone());
        s.version = version;
        s
    }

    #[test]
    fn the_first_statement_is_delivered_once() {
        let mut state = DeliveryState::default();
        let v1 = statement(1, None);
        assert_eq!(state.decide(&v1), Decision::Deliver);
        assert_eq!(state.decide(&v1), Decision::Duplicate);
        assert_eq!(state.in_force(&v1.gsrn, v1.month_start).len(), 1);
    }

    #[test]
    fn a_silent_change_is_refused() {
        let mut state = DeliveryState::default();
        let v1 = statement(1, None);
        state.decide(&v1);
        let mut changed = v1.clone();
        changed.total_incl_vat += Decimal::ONE;
        assert!(
            matches!(state.decide(&changed), Decision::Reject(r) if r.contains("other content"))
        );
    }

    #[test]
    fn a_second_statement_without_a_credit_note_or_correction_is_refused() {
        let mut state = DeliveryState::default();
        state.decide(&statement(1, None));
        assert!(
            matches!(state.decide(&statement(2, None)), Decision::Reject(r) if r.contains("in force"))
        );
    }

    #[test]
    fn a_correction_is_a_credit_note_then_a_higher_version() {
        let mut state = DeliveryState::default();
        let v1 = statement(1, None);
        assert_eq!(state.decide(&v1), Decision::Deliver);
        let credit = credit_note(&v1, 2);
        assert_eq!(state.decide(&credit), Decision::Deliver);
        assert!(state.in_force(&v1.gsrn, v1.month_start).is_empty());
        let v2 = statement(2, Some(v1.statement_id.clone()));
        assert_eq!(state.decide(&v2), Decision::Deliver);
        assert_eq!(state.in_force(&v1.gsrn, v1.month_start)[0].version, 2);
        // Crediting the same statement twice, or an older version afterwards, is refused.
        let mut again = credit_note(&v1, 3);
        again.statement_id.push_str(":again");
        assert!(
            matches!(state.decide(&again), Decision::Reject(r) if r.contains("already credited"))
        );
        let mut stale = statement(2, None);
        stale.statement_id.push_str(":b");
        assert!(matches!(state.decide(&stale), Decision::Reject(r) if r.contains("not above")));
    }

    #[test]
    fn a_new_statement_naming_the_one_in_force_is_delivered_before_its_credit_note() {
        let mut state = DeliveryState::default();
        let v1 = statement(1, None);
        state.decide(&v1);
        let v2 = statement(2, Some(v1.statement_id.clone()));
        assert_eq!(state.decide(&v2), Decision::Deliver);
        assert_eq!(state.decide(&credit_note(&v1, 2)), Decision::Deliver);
        let in_force = state.in_force(&v1.gsrn, v1.month_start);
        assert_eq!(in_force.len(), 1);
        assert_eq!(in_force[0].statement_id, v2.statement_id);
    }

    #[test]
    fn a_credit_note_must_reverse_a_delivered_statement() {
        let mut state = DeliveryState::default();
        let v1 = statement(1, None);
        assert!(
            matches!(state.decide(&credit_note(&v1, 2)), Decision::Reject(r) if r.contains("not delivered"))
        );
        state.decide(&v1);
        let mut anonymous = credit_note(&v1, 2);
        anonymous.corrects_statement_id = None;
        assert!(
            matches!(state.decide(&anonymous), Decision::Reject(r) if r.contains("does not say"))
        );
        assert!(
            matches!(state.decide(&credit_note(&v1, 1)), Decision::Reject(r) if r.contains("not above"))
        );
    }
}
