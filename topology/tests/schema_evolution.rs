//! Schema evolution: for every value schema, the next version must be
//! BACKWARD compatible, proven by registering both in the real registry.
//!
//! The next version is `schemas/avro/evolution/<full name>.avsc` when someone
//! has drafted it (so a real change is tested before it ships); otherwise the
//! typical change, the catalogue schema plus one optional field. The test also
//! shows the registry refusing the typical mistake (a field without a default),
//! so it can fail.

use std::path::PathBuf;

use afregning_testkit::TestEnv;
use afregning_topology::catalogue::Catalogue;
use afregning_topology::schemas::SchemaFile;
use afregning_topology::settings::TopologySettings;
use apache_avro::Schema;
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, is_compatible_schema, post_schema,
};
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

fn evolution_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/avro/evolution")
}

/// The drafted next version, or the catalogue schema plus an optional field.
fn next_version(file: SchemaFile) -> (String, &'static str) {
    let drafted = evolution_dir().join(file.file_name());
    if let Ok(text) = std::fs::read_to_string(&drafted) {
        return (text, "drafted");
    }
    let mut schema: serde_json::Value = serde_json::from_str(file.text()).unwrap();
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": "evolution_probe",
            "type": ["null", "string"],
            "default": null,
            "doc": "A field a future version might add."
        }));
    (schema.to_string(), "generated")
}

fn with_required_field(file: SchemaFile) -> String {
    let mut schema: serde_json::Value = serde_json::from_str(file.text()).unwrap();
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": "required_without_default",
            "type": "string",
            "doc": "Old records have no value for it: not BACKWARD compatible."
        }));
    schema.to_string()
}

fn avro(text: String) -> SuppliedSchema {
    SuppliedSchema::new(None, SchemaType::Avro, text)
}

#[test]
fn drafted_next_versions_belong_to_a_value_schema_and_parse() {
    let Ok(entries) = std::fs::read_dir(evolution_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".avsc") {
            continue;
        }
        let file = SchemaFile::ALL
            .iter()
            .find(|f| f.file_name() == name)
            .unwrap_or_else(|| panic!("evolution/{name} drafts no catalogue schema"));
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let next = Schema::parse_str(&text).unwrap_or_else(|e| panic!("evolution/{name}: {e}"));
        file.backward_compatible(&next)
            .unwrap_or_else(|e| panic!("evolution/{name} is not BACKWARD compatible: {e}"));
    }
}

#[tokio::test]
async fn every_value_schema_evolves_backward_compatibly() {
    let env = TestEnv::start("topology_evolution")
        .await
        .expect("test environment");
    let catalogue = Catalogue::new(TopologySettings::with_prefix(&env.namespace)).unwrap();
    let registry = SrSettings::new(env.registry_url.clone());
    let mut seen = std::collections::BTreeSet::new();
    for subject in catalogue.subjects().into_iter().filter(|s| !s.is_key) {
        if !seen.insert(subject.schema) {
            continue; // one evolution test per schema, on its first topic
        }
        let file = subject.schema;
        let v1 = post_schema(
            &registry,
            subject.subject.clone(),
            avro(file.registry_text().into()),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: v1 registers: {e}", subject.subject));

        let bad = with_required_field(file);
        assert!(
            !is_compatible_schema(&registry, subject.subject.clone(), avro(bad.clone()))
                .await
                .unwrap(),
            "{}: a required field without default must be refused",
            subject.subject
        );
        assert!(
            post_schema(&registry, subject.subject.clone(), avro(bad))
                .await
                .is_err()
        );

        let (next, origin) = next_version(file);
        file.backward_compatible(&Schema::parse_str(&next).unwrap())
            .unwrap_or_else(|e| panic!("{} ({origin} next version): {e}", file.full_name()));
        assert!(
            is_compatible_schema(&registry, subject.subject.clone(), avro(next.clone()))
                .await
                .unwrap(),
            "{}: the {origin} next version is not BACKWARD compatible",
            subject.subject
        );
        let v2 = post_schema(&registry, subject.subject.clone(), avro(next))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{}: the {origin} next version registers: {e}",
                    subject.subject
                )
            });
        assert_ne!(
            v1.id, v2.id,
            "{}: the next version is a new schema",
            subject.subject
        );
    }
    let values: std::collections::BTreeSet<SchemaFile> = catalogue
        .topics()
        .iter()
        .filter_map(|t| t.value.schema())
        .collect();
    assert_eq!(seen, values, "every value schema had its evolution test");
    env.cleanup().await.expect("cleanup");
}
