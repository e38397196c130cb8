//! Every document the codec writes validates against Energinet's real JSON schema in
//! `../shared/cim/` (with the code-list schemas registered side by side, as DataHub does),
//! using the `jsonschema` crate. As a check on the validator set-up itself, the real valid
//! examples pass and the real invalid examples fail.

mod common;

use std::collections::HashMap;

use afregning_cim::{Document, DocumentKind, Shape, write};
use common::{samples, shared};
use serde_json::Value;

const BASE: &str = "file:///C:/Users/Public/Documents/iec.ch/TC57/2020/";

fn schema_path(kind: DocumentKind) -> Option<&'static str> {
    Some(match kind {
        DocumentKind::NotifyValidatedMeasureData => {
            "rsm-012/Notify-Validated-measure-data-assembly-model.schema.json"
        }
        DocumentKind::NotifyAggregatedMeasureData => {
            "rsm-014/Notify-Aggregated-Measure-Data-assembly-model.schema.json"
        }
        DocumentKind::NotifyWholesaleServices => {
            "rsm-019/Notify-wholesale-services-assembly-model.schema.json"
        }
        DocumentKind::RequestChangeOfSupplier => {
            "rsm-001-change-of-supplier/Request-Change-of-Supplier-assembly-model.schema.json"
        }
        DocumentKind::ConfirmRequestChangeOfSupplier => {
            "rsm-001-change-of-supplier/Confirm-request-Change-of-Supplier-assembly-model.schema.json"
        }
        DocumentKind::RejectRequestChangeOfSupplier => {
            "rsm-001-change-of-supplier/Reject-request-Change-of-Supplier-assembly-model.schema.json"
        }
        DocumentKind::RequestValidatedMeasureData => {
            "rsm-015/Request-validated-measure-data-assembly-model.schema.json"
        }
        DocumentKind::RejectRequestValidatedMeasureData => {
            "rsm-015/Reject-request-validated-measure-data-assembly-model.schema.json"
        }
        DocumentKind::RequestAggregatedMeasureData => {
            "rsm-016/Request-aggregated-measure-data-assembly-model.schema.json"
        }
        DocumentKind::RejectRequestAggregatedMeasureData => {
            "rsm-016/Reject-request-aggregated-measure-data-assembly-model.schema.json"
        }
        DocumentKind::RequestWholesaleSettlement => {
            "rsm-017/Request-wholesale-settlement-assembly-model.schema.json"
        }
        DocumentKind::RejectRequestWholesaleSettlement => {
            "rsm-017/Reject-request-wholesale-settlement-assembly-model.schema.json"
        }
        _ => return None,
    })
}

fn json(bytes: &[u8]) -> Value {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    serde_json::from_slice(bytes).expect("JSON")
}

struct Schemas {
    validators: HashMap<&'static str, jsonschema::Validator>,
}

impl Schemas {
    fn load() -> Self {
        let registry = jsonschema::Registry::new()
            .add(
                format!("{BASE}urn-entsoe-eu-wgedi-codelists.schema.json"),
                json(&shared(
                    "codelists/urn-entsoe-eu-wgedi-codelists.schema.json",
                )),
            )
            .expect("code lists")
            .add(
                format!("{BASE}urn-entsoe-eu-local-extension-types.schema.json"),
                json(&shared(
                    "codelists/urn-entsoe-eu-local-extension-types.schema.json",
                )),
            )
            .expect("local extension types")
            .prepare()
            .expect("registry");
        let mut validators = HashMap::new();
        for kind in DocumentKind::ALL {
            if let Some(path) = schema_path(*kind) {
                let schema = json(&shared(path));
                let validator = jsonschema::options()
                    .with_registry(&registry)
                    .build(&schema)
                    .unwrap_or_else(|e| panic!("schema {path}: {e}"));
                validators.insert(path, validator);
            }
        }
        Self { validators }
    }

    fn errors(&self, kind: DocumentKind, bytes: &[u8]) -> Vec<String> {
        let path = schema_path(kind).expect("a schema");
        let validator = self.validators.get(path).expect("validator");
        validator
            .iter_errors(&json(bytes))
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }
}

#[test]
fn every_kind_with_a_json_schema_is_declared_so() {
    for kind in DocumentKind::ALL {
        assert_eq!(
            schema_path(*kind).is_some(),
            kind.shape() == Shape::JsonSchema,
            "{kind}"
        );
    }
}

#[test]
fn written_documents_validate_against_the_real_schemas() {
    let schemas = Schemas::load();
    let mut checked = Vec::new();
    for doc in samples() {
        let kind = doc.kind();
        if schema_path(kind).is_none() {
            continue;
        }
        let bytes = write(&doc);
        let errors = schemas.errors(kind, &bytes);
        assert!(
            errors.is_empty(),
            "{kind}: {errors:#?}\n{}",
            String::from_utf8_lossy(&bytes)
        );
        checked.push(kind);
    }
    for kind in DocumentKind::ALL
        .iter()
        .filter(|k| schema_path(**k).is_some())
    {
        assert!(checked.contains(kind), "no sample written for {kind}");
    }
}

#[test]
fn the_validator_accepts_the_real_valid_examples_and_rejects_the_invalid_ones() {
    let schemas = Schemas::load();
    for (kind, path, valid) in [
        (
            DocumentKind::NotifyValidatedMeasureData,
            "rsm-012/ValidMeteredDataForMeteringPoint.json",
            true,
        ),
        (
            DocumentKind::NotifyValidatedMeasureData,
            "rsm-012/InvalidMeteredDataForMeteringPoint.json",
            false,
        ),
        (
            DocumentKind::RequestChangeOfSupplier,
            "rsm-001-change-of-supplier/Request Change of Supplier.json",
            true,
        ),
        (
            DocumentKind::RequestChangeOfSupplier,
            "rsm-001-change-of-supplier/Invalid Request Change of Supplier.json",
            false,
        ),
        (
            DocumentKind::RequestWholesaleSettlement,
            "rsm-017/RequestWholesaleSettlement2ChargeTypes.json",
            true,
        ),
    ] {
        let errors = schemas.errors(kind, &shared(path));
        assert_eq!(errors.is_empty(), valid, "{path}: {errors:?}");
    }
}

#[test]
fn a_broken_write_would_be_caught() {
    // The schema test can fail: an RSM-012 with a quality outside the code list is rejected.
    let schemas = Schemas::load();
    let doc = samples().into_iter().next().expect("sample");
    assert!(matches!(doc, Document::NotifyValidatedMeasureData(_)));
    let text = String::from_utf8(write(&doc))
        .expect("utf-8")
        .replacen("\"A03\"", "\"A09\"", 1);
    assert!(
        !schemas
            .errors(DocumentKind::NotifyValidatedMeasureData, text.as_bytes())
            .is_empty()
    );
}
