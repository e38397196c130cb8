//! validate's mapping of RSM-019 and RSM-014 on documents written by the CIM codec (no
//! instance of either is public; the codec's writers are checked against Energinet's JSON
//! schemas in `cim/tests/schemas.rs`).

use afregning_cim::codes::ProcessVariant;
use afregning_cim::wholesale::CalculationType;
use afregning_simulator::FaultConfig;
use afregning_simulator::scenario::{ScenarioConfig, generate};
use afregning_simulator::wholesale::{Perturbations, rsm014, rsm019, wholesale_run};
use afregning_topology::records::{ErrorClass, Resolution, WholesaleResultKind};

use super::super::core::{RawMeta, Typed, validate};

fn run(calculation: CalculationType) -> afregning_simulator::wholesale::WholesaleRun {
    let config = ScenarioConfig {
        metering_points: 3,
        first_day: chrono::NaiveDate::from_ymd_opt(2026, 2, 1).expect("date"),
        days: 28,
        aggregations: false,
        ..ScenarioConfig::default()
    };
    let truth = generate(&config, &FaultConfig::none())
        .expect("scenario")
        .truth;
    wholesale_run(
        &truth,
        config.first_day,
        calculation,
        4,
        &Perturbations::default(),
    )
    .expect("run")
}

fn records(body: &[u8]) -> Vec<afregning_topology::records::WholesaleResult> {
    validate(Some(body), &RawMeta::default())
        .unwrap_or_else(|r| panic!("{}", r.reason))
        .records
        .into_iter()
        .map(|(_, t)| match t {
            Typed::WholesaleResult(k, v) => {
                assert_eq!(k.grid_area, v.grid_area);
                assert_eq!(k.transaction_id, v.transaction_id);
                v
            }
            other => panic!("not a wholesale result: {other:?}"),
        })
        .collect()
}

#[test]
fn rsm019_becomes_one_record_per_series_with_amounts_and_the_run() {
    let run = run(CalculationType::SecondCorrection);
    let body = rsm019(&run, "MSG-19", chrono::Utc::now());
    let out = records(&body);
    let expected = run.monthly.len() + run.totals.len();
    let per_month: Vec<_> = out
        .iter()
        .filter(|r| r.resolution == Resolution::P1m)
        .collect();
    assert_eq!(per_month.len(), expected);
    assert!(
        out.iter()
            .all(|r| r.kind == WholesaleResultKind::WholesaleServices
                && r.business_reason == "D32"
                && r.settlement_version.as_deref()
                    == Some(ProcessVariant::SECOND_CORRECTION.as_str())
                && r.calculation_version.as_deref() == Some("4")
                && r.source_message_id == "MSG-19")
    );
    // Every amount of the run is on the topic, position for position.
    let on_topic: rust_decimal::Decimal = out
        .iter()
        .filter(|r| r.resolution != Resolution::P1m)
        .flat_map(|r| r.points.iter().filter_map(|p| p.amount))
        .sum();
    let computed: rust_decimal::Decimal = run.amounts.iter().filter_map(|a| a.amount).sum();
    assert_eq!(on_topic, computed);
    assert!(computed > rust_decimal::Decimal::ZERO);
    // The supplier's total has neither charge nor owner.
    assert!(out.iter().any(|r| r.resolution == Resolution::P1m
        && r.charge_code.is_none()
        && r.charge_owner_gln.is_none()));
}

#[test]
fn rsm014_becomes_energy_per_grid_area_and_settlement_method() {
    let run = run(CalculationType::WholesaleFixing);
    let out = records(&rsm014(&run, "MSG-14", chrono::Utc::now()));
    assert!(!out.is_empty());
    assert!(
        out.iter()
            .all(|r| r.kind == WholesaleResultKind::AggregatedMeasureData
                && r.business_reason == "D05"
                && r.metering_point_type.as_deref() == Some("E17")
                && r.settlement_method.is_some()
                && r.resolution == Resolution::Pt1h)
    );
    let kwh: rust_decimal::Decimal = out
        .iter()
        .flat_map(|r| r.points.iter().filter_map(|p| p.quantity))
        .sum();
    let truth: rust_decimal::Decimal = run.energy.iter().map(|e| e.quantity).sum();
    assert_eq!(kwh, truth);
}

#[test]
fn a_correction_without_its_round_is_refused_with_the_reason() {
    let run = run(CalculationType::FirstCorrection);
    let body = rsm019(&run, "MSG-X", chrono::Utc::now());
    // Take the correction round out of every series: DataHub's D32 always carries it.
    let mut doc: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let series = doc["NotifyWholesaleServices_MarketDocument"]["Series"]
        .as_array_mut()
        .expect("series");
    for s in series.iter_mut() {
        let removed = s
            .as_object_mut()
            .and_then(|o| o.remove("settlement_Series.version"));
        assert!(
            removed.is_some(),
            "every series of a correction names its round"
        );
    }
    let stripped = serde_json::to_vec(&doc).expect("json");
    let rejection = validate(Some(&stripped), &RawMeta::default())
        .expect_err("a D32 series without its round is refused");
    assert_eq!(rejection.class, ErrorClass::Invalid);
    assert!(
        rejection.reason.contains("settlement version"),
        "{}",
        rejection.reason
    );
}
