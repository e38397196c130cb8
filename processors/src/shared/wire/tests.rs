//! The wire's tests: round trips, enrich's splice, and records of other
//! writer schemas (resolved, refused, or unknown without a registry).

use super::*;

#[test]
fn every_record_type_round_trips_through_the_local_wire() {
    let wire = Wire::local();
    let reading = examples::reading();
    let bytes = wire.encode(&reading).expect("encodes");
    assert_eq!(bytes[0], 0);
    assert_eq!(wire.decode::<Reading>(&bytes).expect("decodes"), reading);
    let enriched = examples::enriched_reading();
    assert_eq!(
        wire.decode::<EnrichedReading>(&wire.encode(&enriched).expect("e"))
            .expect("d"),
        enriched
    );
    assert_eq!(
        wire.decode::<afregning_topology::records::DailyAggregate>(
            &wire.encode(&examples::daily_aggregate()).expect("e")
        )
        .expect("d"),
        examples::daily_aggregate()
    );
}

/// What enrich adds to `enriched`'s reading.
fn tail_of(enriched: &EnrichedReading) -> EnrichedTail {
    EnrichedTail {
        grid_area: enriched.grid_area.clone(),
        price_area: enriched.price_area.clone(),
        settlement_method: enriched.settlement_method,
        energy_supplier_gln: enriched.energy_supplier_gln.clone(),
        master_data_valid_from: enriched.master_data_valid_from,
    }
}

#[test]
fn a_spliced_enriched_reading_is_the_encoded_one() {
    let wire = Wire::local();
    let enriched = examples::enriched_reading();
    let reading = wire.encode(&enriched.reading).expect("encodes");
    let head = wire.decode_reading_head(&reading).expect("head");
    assert_eq!(head, ReadingHead::from(&enriched.reading));
    let tail = tail_of(&enriched);
    assert_eq!(
        wire.splice_enriched(&reading, &tail).expect("splices"),
        wire.encode(&enriched).expect("encodes")
    );
    // Only a reading is spliced: an enriched reading's datum is not one.
    let other = wire.encode(&enriched).expect("encodes");
    assert!(matches!(
        wire.splice_enriched(&other, &tail),
        Err(WireError::Avro(m)) if m.contains("not afregning.metering.Reading")
    ));
    assert!(matches!(
        wire.decode_reading_head(&other),
        Err(WireError::Avro(m)) if m.contains("not afregning.metering.Reading")
    ));
    let mut trailing = reading.clone();
    trailing.push(0);
    assert!(matches!(
        wire.decode_reading_head(&trailing),
        Err(WireError::Framing(_))
    ));
}

/// The Reading schema with a new optional field in the middle, as an
/// upstream producer's compatible version 2 would have it.
fn reading_v2() -> Schema {
    let mut json: serde_json::Value =
        serde_json::from_str(SchemaFile::Reading.registry_text()).expect("json");
    let fields = json["fields"].as_array_mut().expect("fields");
    fields.insert(
        2,
        serde_json::json!({"name": "meter_note", "type": ["null", "string"], "default": null, "doc": "new in v2"}),
    );
    Schema::parse_str(&json.to_string()).expect("v2 parses")
}

/// `reading` written with [`reading_v2`] under writer schema id `id`.
fn v2_bytes(reading: &Reading, id: u32) -> Vec<u8> {
    let apache_avro::types::Value::Record(mut fields) = reading.to_avro().expect("avro") else {
        panic!("a record");
    };
    fields.insert(
        2,
        (
            "meter_note".to_string(),
            apache_avro::types::Value::Union(
                1,
                Box::new(apache_avro::types::Value::String("swapped".into())),
            ),
        ),
    );
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    #[allow(deprecated)]
    out.extend(
        apache_avro::to_avro_datum(&reading_v2(), apache_avro::types::Value::Record(fields))
            .expect("v2 datum"),
    );
    out
}

#[test]
fn records_of_a_compatible_writer_schema_decode_like_this_builds() {
    let wire = Wire::local();
    wire.writers.remember(9001, Ok(Arc::new(reading_v2())));
    let enriched = examples::enriched_reading();
    let v2 = v2_bytes(&enriched.reading, 9001);
    assert_eq!(
        wire.unknown_ids([&v2[..]]),
        Vec::<u32>::new(),
        "already known"
    );
    // The same typed record as this build's own bytes give.
    assert_eq!(
        wire.decode::<Reading>(&v2).expect("resolves"),
        enriched.reading
    );
    assert_eq!(
        wire.decode_reading_head(&v2).expect("head"),
        ReadingHead::from(&enriched.reading)
    );
    // enrich's splice of a v2 reading is the enriched reading this build encodes.
    let tail = tail_of(&enriched);
    assert_eq!(
        wire.splice_enriched(&v2, &tail).expect("splices"),
        wire.encode(&enriched).expect("encodes")
    );
    // A writer id the registry has no schema for is a reason, not a retry.
    wire.writers.remember(9002, Err("no such id".into()));
    let missing = v2_bytes(&enriched.reading, 9002);
    let error = wire.decode::<Reading>(&missing).expect_err("unresolvable");
    assert!(!error.is_retriable());
    assert!(
        error.to_string().contains(
            "writer schema id 9002 cannot be resolved to afregning.metering.Reading: no such id"
        ),
        "{error}"
    );
}

#[test]
fn a_writer_without_a_field_the_reader_needs_is_refused() {
    // The writer dropped `gsrn`, which this build's Reading has no default for.
    let mut json: serde_json::Value =
        serde_json::from_str(SchemaFile::Reading.registry_text()).expect("json");
    json["fields"].as_array_mut().expect("fields").remove(0);
    let dropped = Schema::parse_str(&json.to_string()).expect("parses");
    let wire = Wire::local();
    wire.writers.remember(9003, Ok(Arc::new(dropped)));
    let apache_avro::types::Value::Record(mut fields) =
        examples::reading().to_avro().expect("avro")
    else {
        panic!("a record");
    };
    fields.remove(0);
    let mut bytes = vec![0, 0, 0, 0x23, 0x2b];
    #[allow(deprecated)]
    bytes.extend(
        apache_avro::to_avro_datum(
            &json_schema(&json),
            apache_avro::types::Value::Record(fields),
        )
        .expect("datum"),
    );
    let error = wire
        .decode::<Reading>(&bytes)
        .expect_err("gsrn has no default");
    assert!(!error.is_retriable());
    assert!(
        error
            .to_string()
            .contains("cannot be read as afregning.metering.Reading"),
        "{error}"
    );
}

fn json_schema(json: &serde_json::Value) -> Schema {
    Schema::parse_str(&json.to_string()).expect("parses")
}

#[test]
fn bytes_of_another_schema_or_framing_are_refused() {
    let wire = Wire::local();
    let bytes = wire.encode(&examples::reading()).expect("encodes");
    assert!(matches!(
        wire.decode::<EnrichedReading>(&bytes),
        Err(WireError::Avro(m)) if m.contains("written as afregning.metering.Reading, not afregning.metering.EnrichedReading")
    ));
    // An id this build does not know, without a registry to ask.
    let mut unknown = bytes.clone();
    unknown[1..5].copy_from_slice(&4242u32.to_be_bytes());
    assert!(matches!(
        wire.decode::<Reading>(&unknown),
        Err(WireError::UnknownSchema { id: 4242, .. })
    ));
    assert!(wire.unknown_ids([&unknown[..], &bytes[..], b"{}"]) == vec![4242]);
    assert!(matches!(
        wire.decode::<Reading>(&[1, 0, 0, 0, 1]),
        Err(WireError::Framing(_))
    ));
    assert!(matches!(
        wire.decode::<Reading>(&[0, 0]),
        Err(WireError::Framing(_))
    ));
    let mut trailing = bytes.clone();
    trailing.push(7);
    assert!(wire.decode::<Reading>(&trailing).is_err());
}
