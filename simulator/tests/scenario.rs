//! The scenario generator: reproducible from its seed, every document readable by the strict
//! CIM reader (and RSM-012 valid against Energinet's real JSON schema), the ground truth equal
//! to what the documents say after corrections, DST days of the right length, real rates.
#![allow(clippy::type_complexity)]

use std::collections::HashMap;
use std::path::PathBuf;

use afregning_cim::codes::{ChargeKind, Quality};
use afregning_cim::{Document, ErrorClass, Gsrn, Resolution};
use afregning_simulator::Queue;
use afregning_simulator::faults::{FaultConfig, InjectedFault};
use afregning_simulator::scenario::{ScenarioConfig, generate};
use afregning_simulator::spot_prices::SpotOrigin;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

fn shared(path: &str) -> serde_json::Value {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/cim")
        .join(path);
    let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    serde_json::from_slice(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes)).expect("json")
}

fn rsm012_validator() -> jsonschema::Validator {
    const BASE: &str = "file:///C:/Users/Public/Documents/iec.ch/TC57/2020/";
    let registry = jsonschema::Registry::new()
        .add(
            format!("{BASE}urn-entsoe-eu-wgedi-codelists.schema.json"),
            shared("codelists/urn-entsoe-eu-wgedi-codelists.schema.json"),
        )
        .expect("code lists")
        .add(
            format!("{BASE}urn-entsoe-eu-local-extension-types.schema.json"),
            shared("codelists/urn-entsoe-eu-local-extension-types.schema.json"),
        )
        .expect("local types")
        .prepare()
        .expect("registry");
    jsonschema::options()
        .with_registry(&registry)
        .build(&shared(
            "rsm-012/Notify-Validated-measure-data-assembly-model.schema.json",
        ))
        .expect("schema")
}

fn config(first_day: NaiveDate, metering_points: u32) -> ScenarioConfig {
    ScenarioConfig {
        metering_points,
        first_day,
        days: 3,
        bundle_series: 40,
        bundle_records: 30,
        correction_share: 0.2,
        estimated_share: 0.2,
        missing_share: 0.1,
        late_share: 0.1,
        ..ScenarioConfig::default()
    }
}

#[test]
fn the_same_seed_gives_the_same_scenario_and_another_seed_another() {
    let c = config(NaiveDate::from_ymd_opt(2025, 11, 4).expect("date"), 60);
    let a = generate(&c, &FaultConfig::every_fault(0.05)).expect("a");
    let b = generate(&c, &FaultConfig::every_fault(0.05)).expect("b");
    assert_eq!(a.messages.len(), b.messages.len());
    for (x, y) in a.messages.iter().zip(&b.messages) {
        assert_eq!((&x.id, &x.body), (&y.id, &y.body));
    }
    assert_eq!(
        serde_json::to_string(&a.truth).expect("json"),
        serde_json::to_string(&b.truth).expect("json")
    );
    let other = generate(&ScenarioConfig { seed: 2, ..c }, &FaultConfig::none()).expect("other");
    assert_ne!(other.messages[0].body, a.messages[0].body);
}

#[test]
fn every_document_is_read_by_the_strict_reader_and_rsm012_validates_against_the_schema() {
    let validator = rsm012_validator();
    // 2025-10-25..27 includes the fall-back day 2025-10-26.
    let c = config(NaiveDate::from_ymd_opt(2025, 10, 25).expect("date"), 80);
    let scenario = generate(&c, &FaultConfig::every_fault(0.05)).expect("scenario");
    let mut kinds = HashMap::new();
    let mut faults = HashMap::new();
    for m in &scenario.messages {
        let parsed = afregning_cim::parse(&m.body);
        match m.fault {
            None => {
                let doc = parsed.unwrap_or_else(|e| panic!("{}: {e}", m.id));
                assert_eq!(Some(doc.kind()), m.kind);
                assert_eq!(
                    doc.header().message_id,
                    m.id,
                    "the document's mRID is the MessageId"
                );
                assert_eq!(Queue::of_kind(doc.kind()), m.queue);
                if let Document::NotifyValidatedMeasureData(_) = doc {
                    let value: serde_json::Value = serde_json::from_slice(&m.body).expect("json");
                    let errors: Vec<String> = validator
                        .iter_errors(&value)
                        .map(|e| e.to_string())
                        .collect();
                    assert!(errors.is_empty(), "{}: {errors:?}", m.id);
                }
                *kinds.entry(doc.kind().name()).or_insert(0) += 1;
            }
            Some(fault) => {
                let class = parsed.expect_err("a fault message is refused").class;
                let expected = match fault {
                    InjectedFault::MalformedJson => ErrorClass::MalformedJson,
                    InjectedFault::UnknownDocumentType => ErrorClass::UnknownDocumentType,
                    InjectedFault::SchemaInvalid => ErrorClass::SchemaViolation,
                };
                assert_eq!(class, expected, "{fault:?}");
                *faults.entry(format!("{fault:?}")).or_insert(0) += 1;
            }
        }
    }
    for kind in [
        "NotifyValidatedMeasureData",
        "AccountingPointCharacteristics",
        "NotifyPriceList",
        "NotifyBillingMasterData",
        "NotifyAggregatedMeasureData",
    ] {
        assert!(kinds.contains_key(kind), "no {kind}: {kinds:?}");
    }
    assert_eq!(
        faults.len(),
        3,
        "every content fault is injected: {faults:?}"
    );
    // The check bites: the schema refuses an unknown header property.
    let first = scenario
        .messages
        .iter()
        .find(|m| m.fault.is_none() && m.queue == Queue::Timeseries)
        .expect("an RSM-012");
    let mut value: serde_json::Value = serde_json::from_slice(&first.body).expect("json");
    value["NotifyValidatedMeasureData_MarketDocument"]["INVALID.mRID"] = serde_json::json!("x");
    assert!(validator.iter_errors(&value).next().is_some());
}

#[test]
fn the_ground_truth_is_what_the_documents_say_after_corrections() {
    let c = config(NaiveDate::from_ymd_opt(2025, 10, 25).expect("date"), 80);
    let scenario = generate(&c, &FaultConfig::none()).expect("scenario");
    let truth = &scenario.truth;
    // Replay every RSM-012 series; the latest registration per metering point and day wins.
    let mut latest: HashMap<(Gsrn, DateTime<Utc>), (DateTime<Utc>, Vec<afregning_cim::Point>)> =
        HashMap::new();
    let mut series_count = 0;
    for m in &scenario.messages {
        let Ok(Document::NotifyValidatedMeasureData(doc)) = afregning_cim::parse(&m.body) else {
            continue;
        };
        for s in doc.series {
            series_count += 1;
            let key = (s.metering_point, s.period.interval.start);
            let newer = latest.get(&key).is_none_or(|(reg, _)| s.registered > *reg);
            if newer {
                latest.insert(key, (s.registered, s.period.points.clone()));
            }
        }
    }
    assert_eq!(latest.len(), 80 * 3);
    let corrected = truth.readings.iter().filter(|r| r.versions == 2).count();
    assert_eq!(series_count, 80 * 3 + corrected);
    assert!(
        corrected > 20,
        "about 20 % of 240 days are corrected: {corrected}"
    );
    assert!(truth.readings.iter().any(|r| r.late));
    assert!(
        truth
            .readings
            .iter()
            .any(|r| r.points.iter().any(|p| p.quality == Quality::Estimated))
    );
    assert!(
        truth
            .readings
            .iter()
            .any(|r| r.points.iter().any(|p| p.quantity.is_none()))
    );
    for r in &truth.readings {
        let (_, points) = &latest[&(r.gsrn, r.start)];
        assert_eq!(points.len(), r.points.len());
        for (p, t) in points.iter().zip(&r.points) {
            assert_eq!(
                (p.position, p.quantity, p.quality),
                (t.position, t.quantity, t.quality),
                "{} {}",
                r.gsrn,
                r.day
            );
        }
        // DST: the fall-back day has 100 quarters / 25 hours.
        let expected = match (
            r.day == NaiveDate::from_ymd_opt(2025, 10, 26).expect("d"),
            r.resolution,
        ) {
            (true, Resolution::QuarterHour) => 100,
            (true, _) => 25,
            (false, Resolution::QuarterHour) => 96,
            (false, _) => 24,
        };
        assert_eq!(r.points.len(), expected);
        assert!(r.gsrn.has_valid_check_digit());
        assert!(truth.metering_point(r.gsrn).is_some());
        assert!(std::ptr::eq(
            truth.reading(r.gsrn, r.day).expect("lookup"),
            r
        ));
    }
    // Master data and links for every metering point.
    for mp in &truth.metering_points {
        assert_eq!(
            truth.links_of(mp.gsrn).count(),
            6,
            "grid tariff and subscription, 40000, 41000, 41004, EA-001"
        );
    }
    let areas: std::collections::BTreeSet<&str> = truth
        .metering_points
        .iter()
        .map(|m| m.grid_area.as_str())
        .collect();
    assert_eq!(areas.len(), 3);
}

#[test]
fn charges_carry_the_real_rates_and_spot_prices_say_which_are_real() {
    let c = config(NaiveDate::from_ymd_opt(2025, 11, 4).expect("date"), 30);
    let scenario = generate(&c, &FaultConfig::none()).expect("scenario");
    let truth = &scenario.truth;
    let d = |s: &str| s.parse::<Decimal>().expect("decimal");
    let at = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .expect("t")
            .with_timezone(&Utc)
    };
    let radius = truth
        .charge("5790000705689", ChargeKind::Tariff, "DT_C_01")
        .expect("DT_C_01");
    assert_eq!(
        radius.prices.len(),
        30 * 24,
        "November 2025, one price per UTC hour"
    );
    let price_at = |t: DateTime<Utc>| radius.prices.iter().find(|p| p.time == t).map(|p| p.price);
    assert_eq!(
        price_at(at("2025-11-05T16:00:00Z")),
        Some(d("0.8788")),
        "17-18 local: peak"
    );
    assert_eq!(
        price_at(at("2025-11-05T04:00:00Z")),
        Some(d("0.0976")),
        "05-06 local: low"
    );
    let tax = truth
        .charge("5790000432752", ChargeKind::Tariff, "EA-001")
        .expect("EA-001");
    assert!(tax.tax && tax.prices.iter().all(|p| p.price == d("0.72")));
    let sub = truth
        .charge("5790000432752", ChargeKind::Subscription, "41004")
        .expect("41004");
    assert_eq!(sub.prices.len(), 1);
    assert_eq!(sub.prices[0].price, d("15.166666"));
    // Spot: DK1 2025-11-05 is the real sample, DK2 is synthetic, PT15M throughout.
    let dk1_real = truth
        .spot_prices
        .iter()
        .filter(|p| p.price_area == "DK1" && p.origin == SpotOrigin::RealDayAheadDkk)
        .count();
    assert!(dk1_real >= 96, "{dk1_real}");
    assert!(
        truth
            .spot_prices
            .iter()
            .all(|p| p.resolution == Resolution::QuarterHour)
    );
    assert_eq!(truth.spot_prices.len(), 2 * 3 * 96);
    // Out of the rates' coverage the generator refuses rather than inventing prices.
    let early = ScenarioConfig {
        first_day: NaiveDate::from_ymd_opt(2025, 5, 1).expect("d"),
        ..c
    };
    assert!(generate(&early, &FaultConfig::none()).is_err());
}
