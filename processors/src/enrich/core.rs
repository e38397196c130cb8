//! The pure core of enrich: which master data period a reading belongs to,
//! whether we supply the metering point then, and the enriched record.
//!
//! Both decisions need only the reading's head (no points), so the processor
//! reads the head, and splices the reading's bytes with the [`EnrichedTail`]
//! instead of decoding and re-encoding every point.

use std::collections::BTreeMap;

use afregning_topology::records::direct::{EnrichedTail, ReadingHead};
use afregning_topology::records::{EnrichedReading, ErrorClass, MeteringPoint, Reading};

use crate::shared::dead_letter::Rejection;

/// What enrich needs to know beyond the data: who we are and which bidding
/// zone each grid area is in (RSM-022 carries no price area).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichRules {
    /// Our GLN; a period naming another supplier is not ours to settle.
    /// `None` accepts any supplier (a test or a single-tenant archive).
    pub supplier_gln: Option<String>,
    /// Grid area code → `DK1`/`DK2`.
    pub price_areas: BTreeMap<String, String>,
}

impl Default for EnrichRules {
    fn default() -> Self {
        Self {
            supplier_gln: None,
            price_areas: default_price_areas(),
        }
    }
}

/// The grid areas the simulator and the demo use (344 and 740 east of the
/// Great Belt, 791 west). A deployment configures its own.
pub fn default_price_areas() -> BTreeMap<String, String> {
    [("344", "DK2"), ("740", "DK2"), ("791", "DK1")]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The master data period valid at the reading's start: the latest
/// `valid_from` not after it whose `valid_to` (if any) is after it.
/// `periods` may be in any order.
pub fn master_data_for<'a>(
    periods: &'a [MeteringPoint],
    reading: &ReadingHead,
) -> Option<&'a MeteringPoint> {
    periods
        .iter()
        .filter(|p| p.valid_from <= reading.period_start)
        .filter(|p| p.valid_to.is_none_or(|to| to > reading.period_start))
        .max_by_key(|p| p.valid_from)
}

/// The enriched reading, or why it must be dead-lettered: [`enrichment`]
/// applied to a whole reading (the reference the splice is tested against).
pub fn enrich(
    reading: &Reading,
    master: &MeteringPoint,
    rules: &EnrichRules,
) -> Result<EnrichedReading, Rejection> {
    enrichment(&ReadingHead::from(reading), master, rules)
        .map(|tail| tail.into_enriched(reading.clone()))
}

/// The fields enrich adds to a reading, or why it must be dead-lettered.
pub fn enrichment(
    reading: &ReadingHead,
    master: &MeteringPoint,
    rules: &EnrichRules,
) -> Result<EnrichedTail, Rejection> {
    if let (Some(ours), Some(theirs)) = (&rules.supplier_gln, &master.energy_supplier_gln)
        && ours != theirs
    {
        return Err(Rejection::new(
            ErrorClass::Invalid,
            format!(
                "metering point {} is supplied by {theirs} from {}, not by us ({ours})",
                reading.gsrn, master.valid_from
            ),
        ));
    }
    if let Some(start) = master.supply_start
        && reading.period_end <= start
    {
        return Err(Rejection::new(
            ErrorClass::Invalid,
            format!(
                "reading of {} for {} to {} is before our supply starts ({start})",
                reading.gsrn, reading.period_start, reading.period_end
            ),
        ));
    }
    if let Some(end) = master.supply_end
        && reading.period_start >= end
    {
        return Err(Rejection::new(
            ErrorClass::Invalid,
            format!(
                "reading of {} for {} is after our supply ended ({end})",
                reading.gsrn, reading.period_start
            ),
        ));
    }
    let price_area = master
        .price_area
        .clone()
        .or_else(|| rules.price_areas.get(&master.grid_area).cloned())
        .ok_or_else(|| {
            Rejection::new(
                ErrorClass::MissingReferenceData,
                format!(
                    "grid area {} of metering point {} has no price area (configure enrich's price_areas)",
                    master.grid_area, reading.gsrn
                ),
            )
        })?;
    Ok(EnrichedTail {
        grid_area: master.grid_area.clone(),
        price_area: Some(price_area),
        settlement_method: master.settlement_method,
        energy_supplier_gln: master.energy_supplier_gln.clone(),
        master_data_valid_from: master.valid_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use afregning_topology::records::examples;
    use chrono::Duration;

    fn master(valid_from_days: i64, grid_area: &str) -> MeteringPoint {
        let mut m = examples::metering_point();
        m.valid_from = examples::reading().period_start + Duration::days(valid_from_days);
        m.valid_to = None;
        m.grid_area = grid_area.into();
        m.price_area = None;
        m.energy_supplier_gln = Some("5799999933318".into());
        m.supply_start = None;
        m.supply_end = None;
        m
    }

    fn rules() -> EnrichRules {
        EnrichRules {
            supplier_gln: Some("5799999933318".into()),
            ..EnrichRules::default()
        }
    }

    #[test]
    fn the_latest_period_starting_before_the_reading_applies() {
        let reading = examples::reading();
        let periods = vec![master(-30, "344"), master(-1, "791"), master(1, "740")];
        let chosen = master_data_for(&periods, &(&reading).into()).expect("a period");
        assert_eq!(chosen.grid_area, "791");
        let enriched = enrich(&reading, chosen, &rules()).expect("enriches");
        assert_eq!(enriched.price_area.as_deref(), Some("DK1"));
        assert_eq!(enriched.grid_area, "791");
        assert_eq!(enriched.reading, reading);
        assert!(master_data_for(&[master(1, "740")], &(&reading).into()).is_none());
    }

    #[test]
    fn another_suppliers_period_and_an_unknown_grid_area_are_rejected_with_reasons() {
        let reading = examples::reading();
        let mut theirs = master(-1, "344");
        theirs.energy_supplier_gln = Some("5790000000005".into());
        let rejection = enrich(&reading, &theirs, &rules()).unwrap_err();
        assert_eq!(rejection.class, ErrorClass::Invalid);
        assert!(
            rejection.reason.contains("not by us"),
            "{}",
            rejection.reason
        );
        let unknown = master(-1, "999");
        let rejection = enrich(&reading, &unknown, &rules()).unwrap_err();
        assert_eq!(rejection.class, ErrorClass::MissingReferenceData);
        assert!(rejection.reason.contains("999"));
    }

    #[test]
    fn readings_outside_our_supply_are_rejected() {
        let reading = examples::reading();
        let mut later = master(-1, "344");
        later.supply_start = Some(reading.period_end);
        assert!(enrich(&reading, &later, &rules()).is_err());
        let mut ended = master(-1, "344");
        ended.supply_end = Some(reading.period_start);
        assert!(enrich(&reading, &ended, &rules()).is_err());
    }
}
