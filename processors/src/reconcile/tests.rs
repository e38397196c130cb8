//! reconcile's core on hand-made results (run precedence, DataHub's rounding of the group)
//! and on a simulated month: the simulator's RSM-019 and RSM-014, computed from its ground
//! truth with Energinet's arithmetic, go through validate's real mapping and are compared
//! with our settlement of the same truth by the pure settlement engine. No perturbation
//! gives no discrepancy; each injected perturbation gives exactly its own discrepancies.

use std::collections::BTreeSet;

use afregning_cim::Gsrn;
use afregning_cim::wholesale::CalculationType;
use afregning_settlement::calendar::{local_date, local_day_bounds};
use afregning_settlement::{BillingMonth, settle_month};
use afregning_simulator::FaultConfig;
use afregning_simulator::expected::month_input;
use afregning_simulator::ground_truth::GroundTruth;
use afregning_simulator::scenario::{ScenarioConfig, generate};
use afregning_simulator::wholesale::{Perturbations, PriceChange, rsm014, rsm019, wholesale_run};
use afregning_topology::records::{
    ChargeType, Resolution, WholesaleResult, WholesaleResultKind, WholesaleResultPoint,
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::core::{
    AmountKey, Discrepancy, Level, Measure, OurChargePosition, OurSide, Scope, in_force, reconcile,
};
use super::ours::{MeteringPointGroup, charge_positions, energy_positions};
use crate::validate::core::{RawMeta, Typed, validate};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

fn hourly_series(
    reason: &str,
    correction: Option<&str>,
    version: &str,
    price: &str,
) -> WholesaleResult {
    WholesaleResult {
        kind: WholesaleResultKind::WholesaleServices,
        business_reason: reason.into(),
        calculation_version: Some(version.into()),
        settlement_version: correction.map(str::to_string),
        grid_area: "804".into(),
        energy_supplier_gln: Some("5790001662233".into()),
        balance_responsible_gln: None,
        metering_point_type: Some("E17".into()),
        settlement_method: Some("D01".into()),
        charge_owner_gln: Some("8500000000502".into()),
        charge_type: Some(ChargeType::Tariff),
        charge_code: Some("Tariff-804".into()),
        unit: "KWH".into(),
        currency: Some("DKK".into()),
        resolution: Resolution::Pt1h,
        period_start: at("2023-01-31T23:00:00Z"),
        period_end: at("2023-02-28T23:00:00Z"),
        points: vec![WholesaleResultPoint {
            position: 1,
            quantity: Some(dec("44.280")),
            price: Some(dec(price)),
            amount: Some(afregning_settlement::rounding::line_amount(
                dec("44.280"),
                dec(price),
            )),
            quality: None,
        }],
        source_message_id: format!("m-{reason}-{version}"),
        transaction_id: format!("t-{reason}-{version}"),
    }
}

fn scope_804() -> Scope {
    Scope {
        grid_area: "804".into(),
        energy_supplier: "5790001662233".into(),
        month_start: at("2023-01-31T23:00:00Z"),
        month_end: at("2023-02-28T23:00:00Z"),
        grid_area_owner: "8500000000502".into(),
    }
}

fn our_hour(gsrn: &str, quantity: &str, price: &str) -> OurChargePosition {
    OurChargePosition {
        gsrn: gsrn.into(),
        grid_area: "804".into(),
        key: AmountKey {
            charge_owner: "8500000000502".into(),
            charge_code: "Tariff-804".into(),
            charge_type: "D03".into(),
            resolution: "PT1H".into(),
            metering_point_type: "E17".into(),
            settlement_method: Some("D01".into()),
            time: at("2023-01-31T23:00:00Z"),
        },
        is_tax: false,
        quantity: dec(quantity),
        price: Some(dec(price)),
    }
}

#[test]
fn a_later_correction_run_is_in_force_and_the_earlier_runs_stay_in_the_input() {
    let runs = vec![
        hourly_series("D32", Some("D01"), "7", "7.654321"),
        hourly_series("D05", None, "9", "1.000000"),
        hourly_series("D32", Some("D02"), "8", "7.654322"),
    ];
    let force = in_force(&runs);
    assert_eq!(force.len(), 1);
    assert_eq!(force[0].settlement_version.as_deref(), Some("D02"));
    // A run DataHub could not have sent (D32 without its round) is never in force.
    let odd = vec![hourly_series("D32", None, "99", "5")];
    assert!(in_force(&odd).is_empty());
}

#[test]
fn the_group_is_priced_once_as_datahub_does_so_per_point_rounding_is_not_a_difference() {
    // Energinet's scenario: 44.280 kWh × 7.654321 = 338.93333388 → 338.933334. Split over two
    // metering points, per-point rounding would give 153.092 + 185.841 (…) ≠ the group's.
    let ours = OurSide {
        charges: vec![
            our_hour("571313100000000001", "20.000", "7.654321"),
            our_hour("571313100000000002", "24.280", "7.654321"),
        ],
        energy: vec![],
    };
    let results = vec![hourly_series("D05", None, "1", "7.654321")];
    assert_eq!(results[0].points[0].amount, Some(dec("338.933334")));
    let found = reconcile(&results, &ours, &scope_804());
    // No monthly or total series were sent: only our side has them, so they are reported.
    assert!(
        found.iter().all(|d| d.level != Level::AmountPerCharge),
        "{found:#?}"
    );
}

#[test]
fn a_price_that_differs_is_reported_with_both_prices_the_amount_and_the_metering_points() {
    let ours = OurSide {
        charges: vec![
            our_hour("571313100000000001", "20.000", "7.654321"),
            our_hour("571313100000000002", "24.280", "7.654321"),
        ],
        energy: vec![],
    };
    let results = vec![hourly_series("D05", None, "1", "7.654400")];
    let found: Vec<Discrepancy> = reconcile(&results, &ours, &scope_804())
        .into_iter()
        .filter(|d| d.level == Level::AmountPerCharge)
        .collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    let price = &found[0];
    assert_eq!(price.measure, Measure::Price);
    assert_eq!(
        (price.datahub, price.ours),
        (Some(dec("7.654400")), Some(dec("7.654321")))
    );
    let amount = &found[1];
    assert_eq!(amount.measure, Measure::Amount);
    // 44.280 × 7.6544 = 338.936832 against 338.933334.
    assert_eq!(amount.difference, dec("0.003498"));
    assert_eq!(
        amount.metering_points,
        vec![
            "571313100000000001".to_string(),
            "571313100000000002".to_string()
        ]
    );
    assert_eq!(amount.calculation.as_deref(), Some("D05 v1"));
}

// ---- A simulated month -------------------------------------------------------------------

const SUPPLIER_FIRST_DAY: (i32, u32) = (2026, 3);

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(SUPPLIER_FIRST_DAY.0, SUPPLIER_FIRST_DAY.1, 1).expect("date")
}

fn truth() -> GroundTruth {
    let config = ScenarioConfig {
        metering_points: 8,
        first_day: first_day(),
        days: 31,
        grid_areas: vec!["344".into(), "791".into()],
        pt1h_share: 0.4,
        correction_share: 0.05,
        estimated_share: 0.05,
        missing_share: 0.002,
        late_share: 0.0,
        aggregations: false,
        ..ScenarioConfig::default()
    };
    generate(&config, &FaultConfig::none())
        .expect("scenario")
        .truth
}

/// Our side from our own settlement of the truth; `skip` leaves one metering point's
/// readings of one local day out (as if we never received them).
fn our_side(truth: &GroundTruth, skip: Option<(Gsrn, NaiveDate)>) -> OurSide {
    let month = BillingMonth::new(SUPPLIER_FIRST_DAY.0, SUPPLIER_FIRST_DAY.1).expect("month");
    let mut side = OurSide::default();
    for mp in &truth.metering_points {
        let mut input = month_input(truth, mp, month, Vec::new());
        if let Some((gsrn, day)) = skip
            && gsrn == mp.gsrn
        {
            input.positions.retain(|p| local_date(p.start) != day);
        }
        let statement = settle_month(&input).expect("settled");
        let group = MeteringPointGroup {
            gsrn: mp.gsrn.to_string(),
            grid_area: mp.grid_area.clone(),
            metering_point_type: mp.metering_point_type.as_str().to_string(),
            settlement_method: Some(mp.settlement_method.as_str().to_string()),
        };
        side.charges.extend(charge_positions(&statement, &group));
        let resolution = match mp.resolution {
            afregning_cim::Resolution::QuarterHour => Resolution::Pt15m,
            _ => Resolution::Pt1h,
        };
        side.energy
            .extend(energy_positions(&input.positions, resolution, &group));
    }
    side
}

/// DataHub's documents for a run, through validate's real mapping.
fn datahub_records(
    truth: &GroundTruth,
    calculation: CalculationType,
    version: u64,
    perturbations: &Perturbations,
) -> Vec<WholesaleResult> {
    let run = wholesale_run(truth, first_day(), calculation, version, perturbations).expect("run");
    let created = at("2026-04-20T06:00:00Z");
    let mut out = Vec::new();
    for (id, body) in [
        (
            format!("W-{version}"),
            rsm019(&run, &format!("W-{version}"), created),
        ),
        (
            format!("A-{version}"),
            rsm014(&run, &format!("A-{version}"), created),
        ),
    ] {
        let validated = validate(
            Some(&body),
            &RawMeta {
                message_id: Some(id),
                ..RawMeta::default()
            },
        )
        .unwrap_or_else(|r| panic!("validate refused the simulator's document: {}", r.reason));
        for (_, typed) in validated.records {
            let Typed::WholesaleResult(_, value) = typed else {
                panic!("validate made something else of a wholesale document");
            };
            out.push(value);
        }
    }
    out
}

fn month_scope(truth: &GroundTruth, grid_area: &str) -> Scope {
    let month = BillingMonth::new(SUPPLIER_FIRST_DAY.0, SUPPLIER_FIRST_DAY.1).expect("month");
    Scope {
        grid_area: grid_area.into(),
        energy_supplier: truth.supplier_gln.clone(),
        month_start: month.start(),
        month_end: month.end(),
        grid_area_owner: truth
            .metering_points
            .iter()
            .find(|m| m.grid_area == grid_area)
            .expect("a point in the area")
            .grid_owner_gln
            .clone(),
    }
}

fn all_discrepancies(
    truth: &GroundTruth,
    results: &[WholesaleResult],
    ours: &OurSide,
) -> Vec<Discrepancy> {
    let areas: BTreeSet<&str> = truth
        .metering_points
        .iter()
        .map(|m| m.grid_area.as_str())
        .collect();
    areas
        .into_iter()
        .flat_map(|a| reconcile(results, ours, &month_scope(truth, a)))
        .collect()
}

#[test]
fn a_simulated_month_without_perturbation_reconciles_with_zero_discrepancies() {
    let truth = truth();
    let results = datahub_records(
        &truth,
        CalculationType::WholesaleFixing,
        1,
        &Perturbations::default(),
    );
    assert!(results.len() > 20, "{} series", results.len());
    let found = all_discrepancies(&truth, &results, &our_side(&truth, None));
    assert!(
        found.is_empty(),
        "{} discrepancies, first {:#?}",
        found.len(),
        found.first()
    );
}

fn sum_where(found: &[Discrepancy], keep: impl Fn(&Discrepancy) -> bool) -> Decimal {
    found.iter().filter(|d| keep(d)).map(|d| d.difference).sum()
}

#[test]
fn a_metering_point_only_datahub_settles_shows_as_exactly_its_own_volumes_and_amounts() {
    let truth = truth();
    let copied = truth.metering_points[0].clone();
    let extra = Gsrn::with_check_digit("57131319999999999").expect("gsrn");
    let perturbed = Perturbations {
        extra_metering_point: Some((copied.gsrn, extra)),
        ..Perturbations::default()
    };
    let results = datahub_records(&truth, CalculationType::WholesaleFixing, 1, &perturbed);
    let ours = our_side(&truth, None);
    let found = all_discrepancies(&truth, &results, &ours);
    assert!(!found.is_empty());

    // Had we settled the copy too, nothing would differ: DataHub's extra is exactly it.
    let mut with_copy = ours.clone();
    let copy_of = |gsrn: &str| gsrn == copied.gsrn.to_string();
    with_copy
        .charges
        .extend(ours.charges.iter().filter(|c| copy_of(&c.gsrn)).map(|c| {
            let mut c = c.clone();
            c.gsrn = extra.to_string();
            c
        }));
    with_copy
        .energy
        .extend(ours.energy.iter().filter(|e| copy_of(&e.gsrn)).map(|e| {
            let mut e = e.clone();
            e.gsrn = extra.to_string();
            e
        }));
    assert!(all_discrepancies(&truth, &results, &with_copy).is_empty());

    // What is listed: no prices, and per level exactly the copy's volume and money.
    assert!(
        found.iter().all(|d| d.measure != Measure::Price),
        "{found:#?}"
    );
    let copy_kwh: Decimal = ours
        .energy
        .iter()
        .filter(|e| copy_of(&e.gsrn))
        .filter_map(|e| e.quantity)
        .sum();
    assert_eq!(sum_where(&found, |d| d.level == Level::Energy), copy_kwh);
    let charges: BTreeSet<(String, String)> = ours
        .charges
        .iter()
        .filter(|c| copy_of(&c.gsrn))
        .map(|c| (c.key.charge_owner.clone(), c.key.charge_code.clone()))
        .collect();
    for (owner, code) in &charges {
        let of = |d: &Discrepancy| {
            d.charge_owner.as_ref() == Some(owner) && d.charge_code.as_ref() == Some(code)
        };
        let copy_quantity: Decimal = ours
            .charges
            .iter()
            .filter(|c| {
                copy_of(&c.gsrn) && &c.key.charge_code == code && &c.key.charge_owner == owner
            })
            .map(|c| c.quantity)
            .sum();
        assert_eq!(
            sum_where(&found, |d| of(d)
                && d.level == Level::AmountPerCharge
                && d.measure == Measure::Quantity),
            copy_quantity,
            "{owner} {code}"
        );
        assert_eq!(
            sum_where(&found, |d| of(d)
                && d.level == Level::MonthlyAmountPerCharge),
            sum_where(&found, |d| of(d)
                && d.level == Level::AmountPerCharge
                && d.measure == Measure::Amount),
            "{owner} {code}"
        );
    }
    assert_eq!(
        sum_where(&found, |d| d.level == Level::SupplierTotal),
        sum_where(&found, |d| d.level == Level::MonthlyAmountPerCharge),
    );
    // Only the copy's grid area, and never the copy on our side.
    let area_points: BTreeSet<String> = truth
        .metering_points
        .iter()
        .filter(|m| m.grid_area == copied.grid_area)
        .map(|m| m.gsrn.to_string())
        .collect();
    for d in &found {
        assert!(
            d.metering_points.iter().all(|g| area_points.contains(g)),
            "{d:#?}"
        );
    }
}

#[test]
fn one_charge_priced_differently_on_one_day_gives_exactly_that_day_and_its_sums() {
    let truth = truth();
    let day = NaiveDate::from_ymd_opt(2026, 3, 10).expect("date");
    let (start, _) = local_day_bounds(day);
    let system_tariff = truth
        .charges
        .iter()
        .find(|c| c.code == "41000")
        .expect("Energinet's system tariff");
    let old_price = system_tariff
        .prices
        .iter()
        .filter(|p| p.time <= start)
        .max_by_key(|p| p.time)
        .expect("a price")
        .price;
    let new_price = old_price + dec("0.012345");
    let perturbed = Perturbations {
        price_change: Some(PriceChange {
            owner: system_tariff.owner_gln.clone(),
            code: "41000".into(),
            day,
            price: new_price,
        }),
        ..Perturbations::default()
    };
    let ours = our_side(&truth, None);
    let results = datahub_records(&truth, CalculationType::WholesaleFixing, 1, &perturbed);
    let found = all_discrepancies(&truth, &results, &ours);

    // The positions: one per grid area and settlement method with the charge, that day.
    let groups: BTreeSet<(String, Option<String>)> = truth
        .metering_points
        .iter()
        .map(|m| {
            (
                m.grid_area.clone(),
                Some(m.settlement_method.as_str().to_string()),
            )
        })
        .collect();
    let areas: BTreeSet<&String> = groups.iter().map(|(a, _)| a).collect();
    let positions: Vec<&Discrepancy> = found
        .iter()
        .filter(|d| d.level == Level::AmountPerCharge)
        .collect();
    assert_eq!(positions.len(), 2 * groups.len(), "{positions:#?}");
    let mut expected_total = Decimal::ZERO;
    for d in &positions {
        assert_eq!(d.charge_code.as_deref(), Some("41000"));
        assert_eq!(d.time, start);
        assert_eq!(d.resolution, "P1D");
        match d.measure {
            Measure::Price => assert_eq!((d.datahub, d.ours), (Some(new_price), Some(old_price))),
            Measure::Amount => {
                // Our group's quantity that day, priced both ways, exactly.
                let quantity: Decimal = ours
                    .charges
                    .iter()
                    .filter(|c| {
                        c.key.charge_code == "41000"
                            && c.key.time == start
                            && c.key.settlement_method == d.settlement_method
                            && d.metering_points.contains(&c.gsrn)
                    })
                    .map(|c| c.quantity)
                    .sum();
                let expected = afregning_settlement::rounding::line_amount(quantity, new_price)
                    - afregning_settlement::rounding::line_amount(quantity, old_price);
                assert_eq!(d.difference, expected);
                expected_total += expected;
            }
            Measure::Quantity => panic!("no quantity differs: {d:#?}"),
        }
    }
    // Then the month of the charge, Energinet's total and ours in each area: the same money.
    let monthly: Vec<&Discrepancy> = found
        .iter()
        .filter(|d| d.level == Level::MonthlyAmountPerCharge)
        .collect();
    let owner_totals: Vec<&Discrepancy> = found
        .iter()
        .filter(|d| d.level == Level::TotalPerOwner)
        .collect();
    let supplier: Vec<&Discrepancy> = found
        .iter()
        .filter(|d| d.level == Level::SupplierTotal)
        .collect();
    assert_eq!(
        (monthly.len(), owner_totals.len(), supplier.len()),
        (areas.len(), areas.len(), areas.len())
    );
    assert!(
        owner_totals
            .iter()
            .all(|d| d.charge_owner.as_deref() == Some(system_tariff.owner_gln.as_str()))
    );
    for level in [&monthly, &owner_totals, &supplier] {
        assert_eq!(
            level.iter().map(|d| d.difference).sum::<Decimal>(),
            expected_total
        );
    }
    assert_eq!(
        found.len(),
        positions.len() + 3 * areas.len(),
        "nothing else"
    );
    assert!(found.iter().all(|d| d.level != Level::Energy));
}

#[test]
fn a_day_of_our_readings_missing_shows_as_that_days_energy_and_charges_only() {
    let truth = truth();
    let mp = &truth.metering_points[1];
    let day = NaiveDate::from_ymd_opt(2026, 3, 29).expect("the spring DST day");
    let (start, end) = local_day_bounds(day);
    let results = datahub_records(
        &truth,
        CalculationType::WholesaleFixing,
        1,
        &Perturbations::default(),
    );
    let found = all_discrepancies(&truth, &results, &our_side(&truth, Some((mp.gsrn, day))));
    assert!(!found.is_empty());
    let day_kwh = truth.reading(mp.gsrn, day).expect("the day").total_kwh();
    assert_eq!(sum_where(&found, |d| d.level == Level::Energy), day_kwh);
    for d in &found {
        assert_ne!(d.measure, Measure::Price, "{d:#?}");
        match d.level {
            Level::Energy | Level::AmountPerCharge => {
                assert!(d.time >= start && d.time < end, "{d:#?}");
                assert_eq!(
                    d.settlement_method.as_deref(),
                    Some(mp.settlement_method.as_str())
                );
            }
            _ => assert_eq!(d.time, month_scope(&truth, &mp.grid_area).month_start),
        }
    }
    // The hours of the 23-hour day that had energy, each once.
    let hours = found.iter().filter(|d| d.level == Level::Energy).count();
    assert!(hours > 0 && hours <= 23, "{hours}");
}

#[test]
fn a_correction_run_supersedes_the_wholesale_fixing_and_both_stay_in_the_history() {
    let truth = truth();
    let ours = our_side(&truth, None);
    let wrong = Perturbations {
        price_change: Some(PriceChange {
            owner: "5790000432752".into(),
            code: "40000".into(),
            day: NaiveDate::from_ymd_opt(2026, 3, 3).expect("date"),
            price: dec("0.5"),
        }),
        ..Perturbations::default()
    };
    let fixing = datahub_records(&truth, CalculationType::WholesaleFixing, 1, &wrong);
    let before = all_discrepancies(&truth, &fixing, &ours);
    assert!(!before.is_empty());
    assert!(
        before
            .iter()
            .all(|d| d.calculation.as_deref().is_none_or(|c| c == "D05 v1"))
    );

    let correction = datahub_records(
        &truth,
        CalculationType::FirstCorrection,
        2,
        &Perturbations::default(),
    );
    let history: Vec<WholesaleResult> = fixing.iter().chain(&correction).cloned().collect();
    assert_eq!(history.len(), fixing.len() + correction.len());
    assert!(all_discrepancies(&truth, &history, &ours).is_empty());
    // A second correction that brings the error back is in force over the first.
    let again = datahub_records(&truth, CalculationType::SecondCorrection, 3, &wrong);
    let history: Vec<WholesaleResult> = history.into_iter().chain(again).collect();
    let after = all_discrepancies(&truth, &history, &ours);
    assert_eq!(after.len(), before.len());
    assert!(
        after
            .iter()
            .all(|d| d.calculation.as_deref().is_none_or(|c| c == "D32-D02 v3"))
    );
}

fn shuffle<T>(items: &mut [T], rng: &mut afregning_simulator::scenario::rng::Rng) {
    for i in (1..items.len()).rev() {
        let j = usize::try_from(rng.range(0, i as u64 + 1)).expect("index");
        items.swap(i, j);
    }
}

#[test]
fn the_outcome_does_not_depend_on_the_order_results_and_positions_arrive_in() {
    let truth = truth();
    let ours = our_side(&truth, Some((truth.metering_points[2].gsrn, first_day())));
    let mut results = datahub_records(
        &truth,
        CalculationType::WholesaleFixing,
        1,
        &Perturbations::default(),
    );
    results.extend(datahub_records(
        &truth,
        CalculationType::FirstCorrection,
        2,
        &Perturbations {
            extra_metering_point: Some((
                truth.metering_points[3].gsrn,
                Gsrn::with_check_digit("57131319999999999").expect("gsrn"),
            )),
            ..Perturbations::default()
        },
    ));
    let expected = all_discrepancies(&truth, &results, &ours);
    assert!(!expected.is_empty());
    for seed in 0..4 {
        let mut rng = afregning_simulator::scenario::rng::Rng::new(seed);
        let mut results = results.clone();
        let mut ours = ours.clone();
        shuffle(&mut results, &mut rng);
        shuffle(&mut ours.charges, &mut rng);
        shuffle(&mut ours.energy, &mut rng);
        assert_eq!(
            all_discrepancies(&truth, &results, &ours),
            expected,
            "seed {seed}"
        );
    }
}
