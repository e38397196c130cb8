//! The request documents the API and `afregning reconcile request` send, against
//! Energinet's real JSON schemas in `../shared/cim/` (RSM-016, RSM-017; the code lists
//! registered beside them as DataHub does), with the `jsonschema` crate. The check can fail:
//! a document with a code outside the code list is refused.

use afregning_api::datahub_requests::document::{RequestIds, RequestSpec, RequestedData, document};
use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::Value;

const BASE: &str = "file:///C:/Users/Public/Documents/iec.ch/TC57/2020/";

fn shared(path: &str) -> Value {
    let full = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/cim")
        .join(path);
    let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    serde_json::from_slice(bytes).expect("JSON")
}

fn validator(schema: &str) -> jsonschema::Validator {
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
        .expect("local extension types")
        .prepare()
        .expect("registry");
    jsonschema::options()
        .with_registry(&registry)
        .build(&shared(schema))
        .unwrap_or_else(|e| panic!("schema {schema}: {e}"))
}

fn errors(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(text).expect("JSON");
    validator
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn spec(data: RequestedData, reason: &str, version: Option<&str>) -> RequestSpec {
    RequestSpec {
        data,
        business_reason: reason.into(),
        settlement_version: version.map(Into::into),
        grid_area: "344".into(),
        month: NaiveDate::from_ymd_opt(2026, 3, 1).expect("a month"),
        supplier_gln: "5790002000000".into(),
        charge_owner_gln: None,
    }
}

#[test]
fn request_documents_validate_against_energinets_schemas() {
    let created = Utc.with_ymd_and_hms(2026, 5, 12, 8, 0, 0).unwrap();
    let aggregated =
        validator("rsm-016/Request-aggregated-measure-data-assembly-model.schema.json");
    let wholesale = validator("rsm-017/Request-wholesale-settlement-assembly-model.schema.json");
    let mut checked = 0;
    for (data, reason, version, validator) in [
        (
            RequestedData::AggregatedMeasureData,
            "D04",
            None,
            &aggregated,
        ),
        (
            RequestedData::AggregatedMeasureData,
            "D32",
            Some("D02"),
            &aggregated,
        ),
        (RequestedData::WholesaleSettlement, "D05", None, &wholesale),
        (
            RequestedData::WholesaleSettlement,
            "D32",
            Some("D01"),
            &wholesale,
        ),
    ] {
        let mut spec = spec(data, reason, version);
        if data == RequestedData::WholesaleSettlement {
            spec.charge_owner_gln = Some("5790000610976".into());
        }
        let (_, text) = document(&spec, &RequestIds::new(), created);
        let found = errors(validator, &text);
        assert!(found.is_empty(), "{data:?} {reason}: {found:#?}\n{text}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn the_schema_check_can_fail() {
    let created = Utc.with_ymd_and_hms(2026, 5, 12, 8, 0, 0).unwrap();
    let wholesale = validator("rsm-017/Request-wholesale-settlement-assembly-model.schema.json");
    let (_, text) = document(
        &spec(RequestedData::WholesaleSettlement, "D05", None),
        &RequestIds::new(),
        created,
    );
    assert!(errors(&wholesale, &text).is_empty());
    let broken = text.replacen("\"D21\"", "\"X21\"", 1);
    assert_ne!(broken, text);
    assert!(!errors(&wholesale, &broken).is_empty());
}
