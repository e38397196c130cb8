//! Each error class, with the document, the JSON path and the reason, on small edits of the
//! real RSM-012 example (`../shared/cim/rsm-012/ValidMeteredDataForMeteringPoint.json`).

mod common;

use afregning_cim::{CimError, ErrorClass, parse};
use common::shared;

fn example() -> String {
    String::from_utf8(shared("rsm-012/ValidMeteredDataForMeteringPoint.json")).expect("utf-8")
}

fn reject(text: &str) -> CimError {
    match parse(text.as_bytes()) {
        Ok(_) => panic!("expected a rejection of:\n{text}"),
        Err(e) => e,
    }
}

const SERIES: &str = "$.NotifyValidatedMeasureData_MarketDocument.Series[0]";

#[test]
fn class_names_are_stable() {
    assert_eq!(ErrorClass::MalformedJson.as_str(), "malformed-json");
    assert_eq!(ErrorClass::SchemaViolation.as_str(), "schema-violation");
    assert_eq!(
        ErrorClass::UnknownDocumentType.as_str(),
        "unknown-document-type"
    );
    assert_eq!(ErrorClass::BusinessInvalid.as_str(), "business-invalid");
}

#[test]
fn lenient_where_datahub_is_bom_order_whitespace() {
    let text = example();
    assert!(parse(text.as_bytes()).is_ok());
    let no_bom = text.trim_start_matches('\u{feff}');
    assert!(parse(no_bom.as_bytes()).is_ok());
    let compact: serde_json::Value = serde_json::from_str(no_bom).expect("json");
    // serde_json's map sorts keys: a different key order, no whitespace.
    assert!(parse(compact.to_string().as_bytes()).is_ok());
}

#[test]
fn malformed_json() {
    let text = example();
    let e = reject(&text[..text.len() / 2]);
    assert_eq!(e.class, ErrorClass::MalformedJson);
    let e = reject(&format!("{text} x"));
    assert_eq!(e.class, ErrorClass::MalformedJson);
    let e = reject(&text.replacen("\"quantity\": 242", "\"quantity\": 24 2", 1));
    assert_eq!(e.class, ErrorClass::MalformedJson);
    assert_eq!(e.path, format!("{SERIES}.Period.Point[0]"));
    assert_eq!(reject("").class, ErrorClass::MalformedJson);
}

/// A document that is not UTF-8 throughout is read as bytes (a valid one as text): the bad
/// string is reported where it is, with serde_json's position, and the rest of the document
/// reads the same either way.
#[test]
fn invalid_utf8_is_malformed_json_at_its_string() {
    let text = example();
    let mut bytes = text
        .replacen("\"C1875000\"", "\"C187500\u{1}\"", 1)
        .into_bytes();
    let at = bytes.iter().position(|&b| b == 1).expect("the marker");
    bytes[at] = 0xff;
    let e = parse(&bytes).expect_err("not UTF-8");
    assert_eq!(e.class, ErrorClass::MalformedJson);
    assert_eq!(
        e.path,
        format!("{SERIES}['originalTransactionIDReference_Series.mRID']")
    );
    assert!(e.reason.contains("invalid unicode code point"), "{e}");
    assert!(e.reason.contains("line 38 column 63"), "{e}");
}

#[test]
fn unknown_document_type() {
    let e = reject(&example().replace(
        "NotifyValidatedMeasureData_MarketDocument",
        "NotifySomething_MarketDocument",
    ));
    assert_eq!(e.class, ErrorClass::UnknownDocumentType);
    assert_eq!(e.document, None);
    assert!(e.reason.contains("NotifySomething_MarketDocument"));
    assert_eq!(reject("{}").class, ErrorClass::UnknownDocumentType);
    let e = afregning_cim::rsm001::read(example().as_bytes()).expect_err("not an RSM-001");
    assert_eq!(e.class, ErrorClass::UnknownDocumentType);
}

#[test]
fn schema_violations_name_the_path() {
    let cases = [
        (
            example().replacen("\"value\": \"A03\"", "\"value\": \"A09\"", 1),
            format!("{SERIES}.Period.Point[0].quality.value"),
        ),
        (
            example().replacen("\"quantity\": 242", "\"quantity\": \"242\"", 1),
            format!("{SERIES}.Period.Point[0].quantity"),
        ),
        (
            example().replacen("\"value\": 1\n", "\"value\": 0\n", 1),
            format!("{SERIES}.Period.Point[0].position.value"),
        ),
        (
            example().replacen("\"product\"", "\"produkt\"", 1),
            format!("{SERIES}.produkt"),
        ),
        (
            example().replacen(
                "\"registration_DateAndOrTime.dateTime\": \"2022-12-17T07:30:00Z\",",
                "",
                1,
            ),
            SERIES.to_owned(),
        ),
        (
            example().replacen("\"2024-06-28T22:00Z\"", "\"2024-06-28T22:00:00Z\"", 1),
            format!("{SERIES}.Period.timeInterval.start.value"),
        ),
        (
            example().replacen("\"resolution\": \"PT1H\"", "\"resolution\": \"hourly\"", 1),
            format!("{SERIES}.Period.resolution"),
        ),
        (
            example().replacen(
                "\"mRID\": \"111131835\",",
                "\"mRID\": \"111131835\", \"mRID\": \"2\",",
                1,
            ),
            "$.NotifyValidatedMeasureData_MarketDocument.mRID".to_owned(),
        ),
    ];
    for (text, path) in cases {
        let e = reject(&text);
        assert_eq!(
            (e.class, e.path.as_str()),
            (ErrorClass::SchemaViolation, path.as_str()),
            "{}",
            e.reason
        );
        assert_eq!(e.document.as_deref(), Some("NotifyValidatedMeasureData"));
    }
    let e = reject(&example().replacen(
        "\"registration_DateAndOrTime.dateTime\": \"2022-12-17T07:30:00Z\",",
        "",
        1,
    ));
    assert!(
        e.reason.contains("registration_DateAndOrTime.dateTime"),
        "{}",
        e.reason
    );
}

#[test]
fn business_invalid() {
    let cases = [
        // Position outside the 24-hour period.
        (
            example().replacen("\"value\": 6\n", "\"value\": 25\n", 1),
            format!("{SERIES}.Period.Point[5].position"),
            "outside the period",
        ),
        // Duplicate position.
        (
            example().replacen("\"value\": 6\n", "\"value\": 2\n", 1),
            format!("{SERIES}.Period.Point[5].position"),
            "duplicate position 2",
        ),
        // Negative quantity on a production metering point.
        (
            example().replacen("\"quantity\": 222", "\"quantity\": -222", 1),
            format!("{SERIES}.Period.Point[2].quantity"),
            "negative quantity",
        ),
        // A valid ISO duration that is not a supported resolution.
        (
            example().replacen("\"PT1H\"", "\"PT5M\"", 1),
            format!("{SERIES}.Period.resolution"),
            "not supported",
        ),
        // A period that is not a whole number of hours.
        (
            example().replacen("\"2024-06-29T22:00Z\"", "\"2024-06-29T22:30Z\"", 1),
            format!("{SERIES}.Period.timeInterval"),
            "grid",
        ),
        // End before start.
        (
            example().replacen("\"2024-06-29T22:00Z\"", "\"2024-06-27T22:00Z\"", 1),
            format!("{SERIES}.Period.timeInterval"),
            "not after",
        ),
        // Not a GSRN.
        (
            example().replacen("571313000000002000", "57131300000000200", 1),
            format!("{SERIES}['marketEvaluationPoint.mRID']"),
            "not a GSRN",
        ),
        // Empty code (allowed by the schema's local extension list).
        (
            example().replacen("\"value\": \"E18\"", "\"value\": \"\"", 1),
            format!("{SERIES}['marketEvaluationPoint.type'].value"),
            "empty code",
        ),
        // Wrong document type code for RSM-012.
        (
            example().replacen("\"E66\"", "\"E31\"", 1),
            "$.NotifyValidatedMeasureData_MarketDocument.type.value".to_owned(),
            "E31",
        ),
        // A time without zone.
        (
            example().replacen("\"2024-07-30T07:30:54Z\"", "\"2024-07-30T07:30:54\"", 1),
            "$.NotifyValidatedMeasureData_MarketDocument.createdDateTime".to_owned(),
            "time zone",
        ),
    ];
    for (text, path, reason) in cases {
        let e = reject(&text);
        assert_eq!(
            (e.class, e.path.as_str()),
            (ErrorClass::BusinessInvalid, path.as_str()),
            "{}",
            e.reason
        );
        assert!(
            e.reason.contains(reason),
            "{} does not mention {reason}",
            e.reason
        );
    }
}

#[test]
fn display_is_the_validate_line_body() {
    let e = reject(&example().replacen("\"value\": 6\n", "\"value\": 25\n", 1));
    assert_eq!(
        e.to_string(),
        format!(
            "business-invalid {SERIES}.Period.Point[5].position: {}",
            e.reason
        )
    );
}

#[test]
fn code_lists_match_the_schema() {
    // Every code list the codec checks against equals the enum in DataHub's code-list schema.
    let lists: serde_json::Value = {
        let bytes = shared("codelists/urn-entsoe-eu-wgedi-codelists.schema.json");
        serde_json::from_slice(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes)).expect("json")
    };
    let standard = |name: &str| -> Vec<String> {
        let mut codes: Vec<String> = lists["definitions"][format!("Standard{name}")]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("list {name}"))
            .iter()
            .map(|c| c.as_str().expect("code").to_owned())
            .collect();
        codes.sort();
        codes
    };
    use afregning_cim::codes::*;
    macro_rules! same_list {
        ($($t:ty),*) => {$(
            let ours: Vec<String> = <$t>::ALL.iter().map(|c| c.to_string()).collect();
            assert_eq!(ours, standard(<$t>::LIST), "{}", <$t>::LIST);
        )*};
    }
    same_list!(
        Role,
        ProcessType,
        MessageType,
        CodingScheme,
        ReasonCode,
        ProcessVariant,
        BusinessSector,
        Currency,
        EnergyProduct,
        Unit,
        AssetType,
        MeteringMethod,
        PhysicalStatus,
        MpConnectionType,
        DisconnectionMethod
    );
    macro_rules! same_enum {
        ($($t:ty),*) => {$(
            let mut ours: Vec<String> = <$t>::ALL.iter().map(|c| c.as_str().to_owned()).collect();
            ours.sort();
            assert_eq!(ours, standard(<$t>::LIST), "{}", <$t>::LIST);
        )*};
    }
    same_enum!(
        Quality,
        MeteringPointType,
        SettlementMethod,
        ChargeKind,
        VatPayer
    );
}
