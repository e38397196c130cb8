//! Settlement follows the portfolio (issue 16, decision 0140): which days of a month we
//! supply a metering point, from its portfolio events.
//!
//! The portfolio's event log (`TopicId::PortfolioEvents`, key = GSRN) is a global table
//! that keeps every record ([`crate::runtime::GlobalTableSpec::log`]); a metering point's
//! timeline is the portfolio crate's own fold of its events ([`MeteringPoint::fold`]), so
//! settle and the portfolio can never disagree on a day. Everything here is pure: decoding,
//! the fold, and the month's supplied days. A metering point without events keeps the
//! master-data rule (supply from `valid_from`, open ended).

use afregning_cim::gsrn::Gsrn;
use afregning_portfolio::{Event, Gln, MeteringPoint, SupplyTimeline};
use afregning_settlement::calendar::local_midnight;
use afregning_settlement::{BillingMonth, Resolution, SupplyPeriod};
use chrono::{DateTime, NaiveDate, Utc};

use crate::runtime::typed::KEY_SEP;

/// Global table of the portfolio's events (every record kept, keyed `GSRN␟position`).
pub const PORTFOLIO_TABLE: &str = "portfolio";

/// Supplied days of a month, `[from, to)` in Danish days, clipped to the month.
pub type Days = (NaiveDate, NaiveDate);

/// The table prefix of one metering point's events.
pub fn prefix(gsrn: &str) -> Vec<u8> {
    let mut out = gsrn.as_bytes().to_vec();
    out.push(KEY_SEP);
    out
}

/// The metering point an entry of the table belongs to (the record key before the
/// separator), `None` when the key is not a GSRN's.
pub fn gsrn_of(key: &[u8]) -> Option<String> {
    let end = key.iter().position(|b| *b == KEY_SEP).unwrap_or(key.len());
    let text = std::str::from_utf8(&key[..end]).ok()?;
    Gsrn::parse(text).map(|_| text.to_string())
}

/// The events of one metering point as the table holds them: decoded, in sequence order, a
/// repeated sequence (a producer's retry) kept once. Values that are not events, or are
/// another metering point's, are counted and left out.
pub fn events(gsrn: &str, values: impl IntoIterator<Item = Vec<u8>>) -> (Vec<Event>, usize) {
    let mut refused = 0;
    let mut events: Vec<Event> = Vec::new();
    for value in values {
        match serde_json::from_slice::<Event>(&value) {
            Ok(event) if event.metering_point.to_string() == gsrn => events.push(event),
            _ => refused += 1,
        }
    }
    events.sort_by_key(|e| e.sequence);
    events.dedup_by_key(|e| e.sequence);
    (events, refused)
}

/// Our supply timeline of `gsrn` as the fold of its events, `us` being our GLN; `None` when
/// there are no events (or `gsrn`/`us` are not a GSRN and a GLN): settle then keeps the
/// master-data rule.
pub fn timeline(gsrn: &str, us: Option<&str>, events: &[Event]) -> Option<SupplyTimeline> {
    if events.is_empty() {
        return None;
    }
    let gsrn = Gsrn::parse(gsrn)?;
    let us = Gln::parse(us?)?;
    Some(MeteringPoint::fold(gsrn, us, events).supply)
}

/// The days of `month` the timeline's periods in force cover, clipped to the month, with
/// touching periods joined (a customer change splits a period; the month is still one
/// supply). Retired periods are not supplied: what was billed for them is credited.
pub fn month_days(timeline: &SupplyTimeline, month: BillingMonth) -> Vec<Days> {
    let (first, end) = (
        month.first_day(),
        month.first_day() + chrono::Months::new(1),
    );
    let mut out: Vec<Days> = Vec::new();
    for p in &timeline.periods {
        let from = p.from.max(first);
        let to = p.to.unwrap_or(end).min(end);
        if from >= to {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.1 == from => last.1 = to,
            _ => out.push((from, to)),
        }
    }
    out
}

/// The engine's supply periods of a month's supplied days; a period running to the month's
/// end stays open, as the master-data rule's does.
pub fn engine_supply(
    days: &[Days],
    month: BillingMonth,
    resolution: Resolution,
) -> Vec<SupplyPeriod> {
    let end = month.first_day() + chrono::Months::new(1);
    days.iter()
        .map(|(from, to)| SupplyPeriod {
            from: local_midnight(*from),
            to: (*to < end).then(|| local_midnight(*to)),
            resolution,
        })
        .collect()
}

/// The instant our supply in the month ends, when the portfolio ends it inside the month
/// (end of supply, move-out to another supplier, a takeover): the partial month's final
/// statement is due from then (plus grace), not from the month's end. The month's start when
/// no day is supplied (every period retired: only a credit remains to issue). `None` for a
/// supply to the month's end, or without portfolio events.
pub fn supply_end(days: Option<&[Days]>, month: BillingMonth) -> Option<DateTime<Utc>> {
    let days = days?;
    match days.last() {
        None => Some(month.start()),
        Some((_, to)) => Some(local_midnight(*to)).filter(|end| *end < month.end()),
    }
}
