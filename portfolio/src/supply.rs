//! Our supply periods on one metering point, derived from the processes that took effect.
//!
//! A period is a half-open range of Danish calendar days `[from, to)`; `to = None` is open.
//! Corrections retire periods instead of deleting them (as Energinet's electricity-market
//! model does with `RetiredById/RetiredAt`, NOTES §3b), so settlement can credit exactly what
//! was billed for a retired period.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ids::{CustomerKey, ProcessId};

/// A stretch of days on which we supply the metering point, for one customer (or none: after
/// a move-out the supplier stays on the metering point without a customer, EM TC-19).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyPeriod {
    /// First supplied day.
    pub from: NaiveDate,
    /// First day no longer supplied; `None` while open.
    pub to: Option<NaiveDate>,
    /// The customer billed for it.
    pub customer: Option<CustomerKey>,
    /// The process that started this period.
    pub started_by: ProcessId,
}

impl SupplyPeriod {
    /// True when `day` lies in the period.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from <= day && self.to.is_none_or(|to| day < to)
    }
}

/// A period taken out of the timeline by a later process (a correction, or a start of supply
/// that replaced a period planned for the future). Settlement credits what was billed for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredPeriod {
    /// The period as it was.
    pub period: SupplyPeriod,
    /// The process that retired it.
    pub retired_by: ProcessId,
}

/// Our supply periods on one metering point: sorted, non-overlapping, non-empty, at most the
/// last one open ([`SupplyTimeline::check`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyTimeline {
    /// Periods in force.
    pub periods: Vec<SupplyPeriod>,
    /// Periods retired, oldest first.
    pub retired: Vec<RetiredPeriod>,
}

impl SupplyTimeline {
    /// True when we supply on `day`.
    pub fn supplies_on(&self, day: NaiveDate) -> bool {
        self.period_on(day).is_some()
    }

    /// The period in force on `day`.
    pub fn period_on(&self, day: NaiveDate) -> Option<&SupplyPeriod> {
        self.periods.iter().find(|p| p.contains(day))
    }

    /// The period that ended exactly at `day` (the one a correction gives back).
    pub fn period_ending_at(&self, day: NaiveDate) -> Option<&SupplyPeriod> {
        self.periods.iter().find(|p| p.to == Some(day))
    }

    /// We supply from `day` on for `customer`: whatever covered `day` ends there, later plans
    /// are retired.
    pub fn start(&mut self, day: NaiveDate, customer: Option<CustomerKey>, by: &ProcessId) {
        self.cut(day, by);
        self.periods.push(SupplyPeriod {
            from: day,
            to: None,
            customer,
            started_by: by.clone(),
        });
    }

    /// We no longer supply from `day` on.
    pub fn end(&mut self, day: NaiveDate, by: &ProcessId) {
        self.cut(day, by);
    }

    /// The customer changes from `day` on, within the period covering `day` (no period: no
    /// change, there is nothing we supply).
    pub fn change_customer(
        &mut self,
        day: NaiveDate,
        customer: Option<CustomerKey>,
        by: &ProcessId,
    ) {
        let Some(index) = self.periods.iter().position(|p| p.contains(day)) else {
            return;
        };
        let old = self.periods[index].clone();
        if old.customer == customer {
            return;
        }
        let new = SupplyPeriod {
            from: day,
            to: old.to,
            customer,
            started_by: by.clone(),
        };
        if old.from == day {
            self.retired.push(RetiredPeriod {
                period: old,
                retired_by: by.clone(),
            });
            self.periods[index] = new;
        } else {
            self.periods[index].to = Some(day);
            self.periods.insert(index + 1, new);
        }
    }

    /// Ends what covers `day` at `day` and retires everything from `day` on.
    fn cut(&mut self, day: NaiveDate, by: &ProcessId) {
        let mut kept = Vec::with_capacity(self.periods.len());
        for mut period in std::mem::take(&mut self.periods) {
            if period.from >= day {
                self.retired.push(RetiredPeriod {
                    period,
                    retired_by: by.clone(),
                });
            } else {
                if period.contains(day) {
                    period.to = Some(day);
                }
                kept.push(period);
            }
        }
        self.periods = kept;
    }

    /// The timeline's own invariants; `Err` names the first broken one.
    pub fn check(&self) -> Result<(), String> {
        for (i, p) in self.periods.iter().enumerate() {
            if p.to.is_some_and(|to| to <= p.from) {
                return Err(format!("empty or reversed period {p:?}"));
            }
            if let Some(next) = self.periods.get(i + 1) {
                match p.to {
                    None => return Err(format!("open period {p:?} is not the last")),
                    Some(to) if to > next.from => {
                        return Err(format!("period {p:?} overlaps {next:?}"));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, m, day).unwrap()
    }

    fn pid(s: &str) -> ProcessId {
        ProcessId(s.into())
    }

    #[test]
    fn start_end_and_customer_change_keep_periods_disjoint() {
        let mut t = SupplyTimeline::default();
        t.start(d(3, 1), Some(CustomerKey("a".into())), &pid("p1"));
        t.change_customer(d(3, 10), None, &pid("p2"));
        t.end(d(4, 1), &pid("p3"));
        assert_eq!(t.periods.len(), 2);
        assert_eq!(t.periods[0].to, Some(d(3, 10)));
        assert_eq!(t.periods[1].customer, None);
        assert_eq!(t.periods[1].to, Some(d(4, 1)));
        assert!(t.supplies_on(d(3, 31)) && !t.supplies_on(d(4, 1)));
        t.check().unwrap();
    }

    #[test]
    fn ending_before_a_period_starts_retires_it() {
        let mut t = SupplyTimeline::default();
        t.start(d(5, 1), None, &pid("p1"));
        t.end(d(5, 1), &pid("rollback"));
        assert!(t.periods.is_empty());
        assert_eq!(t.retired.len(), 1);
        assert_eq!(t.retired[0].retired_by, pid("rollback"));
    }
}
