//! Compatibility levels and the Avro compatibility check, kept pure so the
//! rules can be tested without a database.

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;

use crate::RegistryError;

/// Confluent's compatibility levels. `Backward` is the default, as in Confluent's
/// registry: consumers using the new schema can read data written with the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// New schema reads data written with the latest schema.
    #[default]
    Backward,
    /// New schema reads data written with every earlier schema.
    BackwardTransitive,
    /// The latest schema reads data written with the new one.
    Forward,
    /// Every earlier schema reads data written with the new one.
    ForwardTransitive,
    /// Backward and forward against the latest.
    Full,
    /// Backward and forward against every earlier schema.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Confluent's spelling (`BACKWARD`, `FULL_TRANSITIVE`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Parses Confluent's spelling, case-insensitively.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        Ok(match text.to_ascii_uppercase().as_str() {
            "NONE" => CompatibilityLevel::None,
            "BACKWARD" => CompatibilityLevel::Backward,
            "BACKWARD_TRANSITIVE" => CompatibilityLevel::BackwardTransitive,
            "FORWARD" => CompatibilityLevel::Forward,
            "FORWARD_TRANSITIVE" => CompatibilityLevel::ForwardTransitive,
            "FULL" => CompatibilityLevel::Full,
            "FULL_TRANSITIVE" => CompatibilityLevel::FullTransitive,
            _ => return Err(RegistryError::InvalidCompatibilityLevel(text.to_string())),
        })
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }
}

/// Parses an Avro schema, mapping a parse failure to Confluent's 42201.
pub fn parse_avro(text: &str) -> Result<Schema, RegistryError> {
    Schema::parse_str(text).map_err(|e| RegistryError::InvalidSchema(e.to_string()))
}

/// The identity of a schema's text: the JSON re-serialised with sorted keys and
/// no whitespace. Formatting and key order do not make a new schema; a changed
/// doc string or default does (unlike Avro's Parsing Canonical Form, which
/// drops both and would merge schemas that differ in meaning for evolution).
pub fn normalize(text: &str) -> Result<String, RegistryError> {
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| RegistryError::InvalidSchema(e.to_string()))?;
    // Sorted explicitly: another crate in the build (the API's OpenAPI stack) turns on
    // serde_json's `preserve_order`, and then a Map keeps the text's key order.
    value.sort_all_objects();
    serde_json::to_string(&value).map_err(|e| RegistryError::InvalidSchema(e.to_string()))
}

/// Checks `candidate` against `existing` (oldest first) under `level`. Returns
/// the reasons it is incompatible; empty means compatible.
pub fn check(level: CompatibilityLevel, candidate: &Schema, existing: &[Schema]) -> Vec<String> {
    let against: &[Schema] = match (level, existing.split_last()) {
        (CompatibilityLevel::None, _) | (_, None) => return Vec::new(),
        (level, Some((latest, _))) if !level.transitive() => std::slice::from_ref(latest),
        _ => existing,
    };
    let backward = matches!(
        level,
        CompatibilityLevel::Backward
            | CompatibilityLevel::BackwardTransitive
            | CompatibilityLevel::Full
            | CompatibilityLevel::FullTransitive
    );
    let forward = matches!(
        level,
        CompatibilityLevel::Forward
            | CompatibilityLevel::ForwardTransitive
            | CompatibilityLevel::Full
            | CompatibilityLevel::FullTransitive
    );
    let mut reasons = Vec::new();
    for old in against {
        if backward && let Err(e) = SchemaCompatibility::can_read(old, candidate) {
            reasons.push(format!(
                "the new schema cannot read data written with an earlier one: {e}"
            ));
        }
        if forward && let Err(e) = SchemaCompatibility::can_read(candidate, old) {
            reasons.push(format!(
                "an earlier schema cannot read data written with the new one: {e}"
            ));
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(text: &str) -> Schema {
        parse_avro(text).expect("valid schema")
    }

    const V1: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;
    const V2_WITH_DEFAULT: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":""}]}"#;
    const V2_WITHOUT_DEFAULT: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}"#;
    const V1_DROPPED_A: &str = r#"{"type":"record","name":"R","fields":[]}"#;

    #[test]
    fn adding_a_field_with_a_default_is_backward_compatible() {
        assert!(
            check(
                CompatibilityLevel::Backward,
                &schema(V2_WITH_DEFAULT),
                &[schema(V1)]
            )
            .is_empty()
        );
    }

    #[test]
    fn adding_a_field_without_a_default_is_not_backward_compatible() {
        let reasons = check(
            CompatibilityLevel::Backward,
            &schema(V2_WITHOUT_DEFAULT),
            &[schema(V1)],
        );
        assert_eq!(reasons.len(), 1, "{reasons:?}");
    }

    #[test]
    fn removing_a_field_is_backward_but_not_forward_compatible() {
        assert!(
            check(
                CompatibilityLevel::Backward,
                &schema(V1_DROPPED_A),
                &[schema(V1)]
            )
            .is_empty()
        );
        assert!(
            !check(
                CompatibilityLevel::Forward,
                &schema(V1_DROPPED_A),
                &[schema(V1)]
            )
            .is_empty()
        );
        assert!(
            !check(
                CompatibilityLevel::Full,
                &schema(V1_DROPPED_A),
                &[schema(V1)]
            )
            .is_empty()
        );
    }

    #[test]
    fn transitive_levels_check_every_earlier_version() {
        // v1 -> v2 (adds b with default) -> v3 (drops b's default): v3 reads v2
        // data (b present) but not v1 data (b absent, no default).
        let v3 = schema(V2_WITHOUT_DEFAULT);
        let history = [schema(V1), schema(V2_WITH_DEFAULT)];
        assert!(check(CompatibilityLevel::Backward, &v3, &history).is_empty());
        assert!(!check(CompatibilityLevel::BackwardTransitive, &v3, &history).is_empty());
    }

    #[test]
    fn none_accepts_anything() {
        assert!(
            check(
                CompatibilityLevel::None,
                &schema(r#""string""#),
                &[schema(V1)]
            )
            .is_empty()
        );
    }

    #[test]
    fn normalisation_ignores_formatting_and_key_order_but_not_docs() {
        let a = normalize(r#"{"type":"record","name":"R","fields":[]}"#).expect("json");
        let b = normalize("{ \"name\" : \"R\",\n \"fields\": [], \"type\": \"record\" }")
            .expect("json");
        let c = normalize(r#"{"type":"record","name":"R","doc":"x","fields":[]}"#).expect("json");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn levels_round_trip_and_reject_unknown() {
        for level in [
            CompatibilityLevel::None,
            CompatibilityLevel::Backward,
            CompatibilityLevel::BackwardTransitive,
            CompatibilityLevel::Forward,
            CompatibilityLevel::ForwardTransitive,
            CompatibilityLevel::Full,
            CompatibilityLevel::FullTransitive,
        ] {
            assert_eq!(
                CompatibilityLevel::parse(level.as_str()).expect("known"),
                level
            );
        }
        assert!(CompatibilityLevel::parse("SIDEWAYS").is_err());
    }
}
