//! The Avro schemas of `schemas/avro/`, compiled into the binary.
//!
//! The `.avsc` files are the source of truth: Java and Python consumers use
//! them as they are, and the Rust record types in [`crate::records`] are checked
//! against them field by field (see `records/avro.rs`). Embedding them with
//! `include_str!` means a binary always registers and encodes with exactly the
//! schemas it was built with; there is no path to misconfigure at run time.

use std::collections::HashMap;
use std::sync::OnceLock;

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;

/// Named types of one schema file by full name (`afregning.common.Resolution`),
/// so a field that refers to a type defined earlier in the file can be followed.
pub type Names = HashMap<String, Schema>;

macro_rules! schema_files {
    ($($(#[$meta:meta])* $variant:ident => $full:literal),+ $(,)?) => {
        /// One `.avsc` file of `schemas/avro/`, named by the full name of the
        /// record it defines. Keys and values are separate files because Kafka
        /// keys and values are registered under separate subjects.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum SchemaFile {
            $($(#[$meta])* $variant),+
        }

        impl SchemaFile {
            /// Every schema file, in declaration order.
            pub const ALL: &'static [SchemaFile] = &[$(SchemaFile::$variant),+];

            /// Full Avro name of the record the file defines, e.g. `afregning.metering.Reading`.
            pub fn full_name(self) -> &'static str {
                match self {
                    $(SchemaFile::$variant => $full),+
                }
            }

            /// The file's text exactly as committed.
            pub fn text(self) -> &'static str {
                match self {
                    $(SchemaFile::$variant => include_str!(concat!("../../schemas/avro/", $full, ".avsc"))),+
                }
            }
        }
    };
}

schema_files! {
    /// Key of the raw DataHub topics.
    DataHubMessageKey => "afregning.datahub.DataHubMessageKey",
    /// Key of readings and enriched readings.
    MeteringPointKey => "afregning.metering.MeteringPointKey",
    /// Key of the metering point table.
    MeteringPointPeriodKey => "afregning.metering.MeteringPointPeriodKey",
    /// Key of the charge information table.
    ChargePeriodKey => "afregning.charges.ChargePeriodKey",
    /// Key of the charge price table.
    ChargePriceKey => "afregning.charges.ChargePriceKey",
    /// Key of the charge link table.
    ChargeLinkKey => "afregning.charges.ChargeLinkKey",
    /// Key of the spot price table.
    SpotPriceKey => "afregning.market.SpotPriceKey",
    /// Key of wholesale results.
    WholesaleResultKey => "afregning.wholesale.WholesaleResultKey",
    /// Key of daily aggregates.
    DailyAggregateKey => "afregning.metering.DailyAggregateKey",
    /// Key of provisional settlements and statements.
    SettlementMonthKey => "afregning.settlement.SettlementMonthKey",
    /// Key of dead letters.
    DeadLetterKey => "afregning.ops.DeadLetterKey",
    /// Key of outbound requests and responses.
    OutboundRequestKey => "afregning.datahub.OutboundRequestKey",
    /// Value of the readings topic.
    Reading => "afregning.metering.Reading",
    /// Value of the metering point table.
    MeteringPoint => "afregning.metering.MeteringPoint",
    /// Value of the charge information table.
    Charge => "afregning.charges.Charge",
    /// Value of the charge price table.
    ChargePrice => "afregning.charges.ChargePrice",
    /// Value of the charge link table.
    ChargeLink => "afregning.charges.ChargeLink",
    /// Value of the spot price table.
    SpotPrice => "afregning.market.SpotPrice",
    /// Value of the wholesale results topic.
    WholesaleResult => "afregning.wholesale.WholesaleResult",
    /// Value of the enriched readings topic.
    EnrichedReading => "afregning.metering.EnrichedReading",
    /// Value of the daily aggregates topic.
    DailyAggregate => "afregning.metering.DailyAggregate",
    /// Value of the provisional settlement topic.
    ProvisionalSettlement => "afregning.settlement.ProvisionalSettlement",
    /// Value of the final statements topic.
    SettlementStatement => "afregning.settlement.SettlementStatement",
    /// Value of the dead letter topic.
    DeadLetter => "afregning.ops.DeadLetter",
    /// Value of the outbound requests topic.
    OutboundRequest => "afregning.datahub.OutboundRequest",
    /// Value of the outbound responses topic.
    OutboundResponse => "afregning.datahub.OutboundResponse",
    // Added later: appended, so the ids `Wire::local` gives the others (declaration order)
    // stay as the golden files have them.
    /// Key of reconciliations with DataHub's wholesale results.
    ReconciliationKey => "afregning.wholesale.ReconciliationKey",
    /// Value of the discrepancies topic: one part of a reconciliation.
    Reconciliation => "afregning.wholesale.Reconciliation",
}

/// A schema file parsed once: the schema, its named types and the compact text
/// sent to the registry.
#[derive(Debug)]
pub struct ParsedSchema {
    /// The parsed schema.
    pub schema: Schema,
    /// Named types defined in the file, by full name.
    pub names: Names,
    /// The file's JSON without whitespace (key order kept): the exact text
    /// registered and looked up, so `apply`, `verify` and the codec agree on
    /// what "this schema" is.
    pub registry_text: String,
}

/// Why a schema file is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schemas/avro/{file}.avsc: {problem}")]
pub struct SchemaFileError {
    /// The file's full name.
    pub file: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl SchemaFile {
    /// The file's name inside `schemas/avro/`.
    pub fn file_name(self) -> String {
        format!("{}.avsc", self.full_name())
    }

    /// The parsed schema. Panics only if a committed `.avsc` does not parse,
    /// which the unit tests rule out for every file.
    pub fn parsed(self) -> &'static ParsedSchema {
        static PARSED: OnceLock<Vec<ParsedSchema>> = OnceLock::new();
        let all = PARSED.get_or_init(|| {
            SchemaFile::ALL
                .iter()
                .map(|file| match parse(file.text()) {
                    Ok(parsed) => parsed,
                    Err(problem) => panic!("schemas/avro/{}: {problem}", file.file_name()),
                })
                .collect()
        });
        &all[self as usize]
    }

    /// The parsed Avro schema.
    pub fn schema(self) -> &'static Schema {
        &self.parsed().schema
    }

    /// The compact text sent to the registry.
    pub fn registry_text(self) -> &'static str {
        &self.parsed().registry_text
    }

    /// Checks the project's rules for a schema file: it parses, defines the
    /// record its name says, in a namespace, with a doc string on the record and
    /// on every field of every record in it, and decimals with explicit
    /// precision and scale.
    pub fn check(self) -> Result<(), SchemaFileError> {
        let error = |problem: String| SchemaFileError {
            file: self.full_name(),
            problem,
        };
        let parsed = parse(self.text()).map_err(error)?;
        let Schema::Record(record) = &parsed.schema else {
            return Err(error("the top-level schema is not a record".into()));
        };
        if record.name.fullname(None) != self.full_name() {
            return Err(error(format!(
                "defines {} but the file is named {}",
                record.name.fullname(None),
                self.full_name()
            )));
        }
        let json: serde_json::Value =
            serde_json::from_str(self.text()).map_err(|e| error(e.to_string()))?;
        check_json(&json, "").map_err(error)
    }

    /// Whether `newer` may be registered after this file's schema under
    /// Confluent's BACKWARD rule: a consumer using `newer` can read every record
    /// written with this one. Returns the reason when it cannot.
    pub fn backward_compatible(self, newer: &Schema) -> Result<(), String> {
        SchemaCompatibility::can_read(self.schema(), newer)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Parses a schema text and collects its named types.
pub(crate) fn parse(text: &str) -> Result<ParsedSchema, String> {
    let schema = Schema::parse_str(text).map_err(|e| format!("does not parse: {e}"))?;
    let mut names = Names::new();
    collect_names(&schema, &mut names);
    Ok(ParsedSchema {
        schema,
        names,
        registry_text: minify(text),
    })
}

/// The JSON text without whitespace outside strings; key order as written, so
/// the text is the same whatever `serde_json` features the build unifies.
pub(crate) fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

fn collect_names(schema: &Schema, names: &mut Names) {
    match schema {
        Schema::Record(record) => {
            names.insert(record.name.fullname(None), schema.clone());
            for field in &record.fields {
                collect_names(&field.schema, names);
            }
        }
        Schema::Enum(e) => {
            names.insert(e.name.fullname(None), schema.clone());
        }
        Schema::Fixed(f) => {
            names.insert(f.name.fullname(None), schema.clone());
        }
        Schema::Array(array) => collect_names(&array.items, names),
        Schema::Map(map) => collect_names(&map.types, names),
        Schema::Union(union) => {
            for variant in union.variants() {
                collect_names(variant, names);
            }
        }
        _ => {}
    }
}

/// Walks the schema's JSON: every named type has a namespace (its own or
/// inherited) and a doc, every field a doc, every decimal a precision and scale,
/// every timestamp is `timestamp-millis`.
fn check_json(json: &serde_json::Value, namespace: &str) -> Result<(), String> {
    match json {
        serde_json::Value::Array(variants) => {
            for variant in variants {
                check_json(variant, namespace)?;
            }
            Ok(())
        }
        serde_json::Value::Object(object) => {
            let kind = object.get("type").and_then(|t| t.as_str()).unwrap_or("");
            let logical = object.get("logicalType").and_then(|t| t.as_str());
            match logical {
                Some("decimal")
                    if kind != "bytes"
                        || object.get("precision").is_none()
                        || object.get("scale").is_none() =>
                {
                    return Err("a decimal must be bytes with explicit precision and scale".into());
                }
                Some("timestamp-micros" | "local-timestamp-millis" | "local-timestamp-micros") => {
                    return Err("times are timestamp-millis (UTC) in this project".into());
                }
                _ => {}
            }
            let mut namespace = namespace.to_string();
            if matches!(kind, "record" | "enum" | "fixed") {
                let name = object.get("name").and_then(|n| n.as_str()).unwrap_or("?");
                if let Some(ns) = object.get("namespace").and_then(|n| n.as_str()) {
                    namespace = ns.to_string();
                }
                if namespace.is_empty() && !name.contains('.') {
                    return Err(format!("type {name} has no namespace"));
                }
                if object
                    .get("doc")
                    .and_then(|d| d.as_str())
                    .is_none_or(str::is_empty)
                {
                    return Err(format!("type {name} has no doc"));
                }
            }
            if kind == "record" {
                let fields = object
                    .get("fields")
                    .and_then(|f| f.as_array())
                    .ok_or("a record without fields")?;
                for field in fields {
                    let name = field.get("name").and_then(|n| n.as_str()).unwrap_or("?");
                    if field
                        .get("doc")
                        .and_then(|d| d.as_str())
                        .is_none_or(str::is_empty)
                    {
                        return Err(format!("field {name} has no doc"));
                    }
                    if let Some(typ) = field.get("type") {
                        check_json(typ, &namespace).map_err(|e| format!("field {name}: {e}"))?;
                    }
                }
            }
            if let (true, Some(items)) = (kind == "array", object.get("items")) {
                check_json(items, &namespace)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    #[test]
    fn every_schema_file_follows_the_rules() {
        for file in SchemaFile::ALL {
            file.check().unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn every_avsc_in_the_directory_is_in_the_catalogue_and_back() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/avro");
        let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
            .expect("schemas/avro exists")
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".avsc"))
            .collect();
        let known: BTreeSet<String> = SchemaFile::ALL.iter().map(|f| f.file_name()).collect();
        assert_eq!(
            on_disk, known,
            "an .avsc file is not in SchemaFile (or SchemaFile names a missing file)"
        );
    }

    #[test]
    fn the_rule_checker_catches_missing_docs_and_bare_decimals() {
        let no_doc = r#"{"type":"record","name":"X","namespace":"a","doc":"d","fields":[{"name":"f","type":"string"}]}"#;
        assert!(check_json(&serde_json::from_str(no_doc).unwrap(), "").is_err());
        let bare = r#"{"type":"record","name":"X","namespace":"a","doc":"d","fields":[{"name":"f","doc":"d","type":{"type":"bytes","logicalType":"decimal"}}]}"#;
        assert!(check_json(&serde_json::from_str(bare).unwrap(), "").is_err());
        let micros = r#"{"type":"record","name":"X","namespace":"a","doc":"d","fields":[{"name":"f","doc":"d","type":{"type":"long","logicalType":"timestamp-micros"}}]}"#;
        assert!(check_json(&serde_json::from_str(micros).unwrap(), "").is_err());
        let fine = r#"{"type":"record","name":"X","namespace":"a","doc":"d","fields":[{"name":"f","doc":"d","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":6}}]}"#;
        assert!(check_json(&serde_json::from_str(fine).unwrap(), "").is_ok());
    }

    #[test]
    fn minify_keeps_whitespace_inside_strings() {
        assert_eq!(
            minify("{ \"a b\" : \"c \\\" d\" }"),
            "{\"a b\":\"c \\\" d\"}"
        );
    }

    #[test]
    fn registry_text_is_the_file_without_whitespace() {
        let text = SchemaFile::Reading.registry_text();
        assert!(!text.contains('\n'));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(text).unwrap(),
            serde_json::from_str::<serde_json::Value>(SchemaFile::Reading.text()).unwrap()
        );
    }

    #[test]
    fn named_types_are_collected_for_references() {
        let names = &SchemaFile::DailyAggregate.parsed().names;
        assert!(names.contains_key("afregning.common.Quality"));
        assert!(names.contains_key("afregning.metering.HourlyEnergy"));
    }
}
