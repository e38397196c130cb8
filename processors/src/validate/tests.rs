use afregning_topology::records::{DeadLetter, ErrorClass, MeteringPoint, Reading, Resolution};
use afregning_topology::{Catalogue, TopologySettings};

use super::*;
use crate::runtime::OutputRecord;
use crate::runtime::testing::MemoryTask;
use crate::shared::Wire;
use crate::testdata::{Series, at, flat_points, raw_record, rsm012, rsm022};

const RAW: &str = "afregning.datahub.timeseries-raw.v1";
const MD_RAW: &str = "afregning.datahub.masterdata-raw.v1";

fn task() -> MemoryTask<Validate> {
    let topics = Topics::new(
        Catalogue::new(TopologySettings::default()).expect("catalogue"),
        Wire::local(),
    );
    MemoryTask::new(Validate::new(topics, ValidateConfig::default()), 0)
}

fn day_doc(message_id: &str, gsrn: &str) -> Vec<u8> {
    rsm012(
        message_id,
        &[Series {
            gsrn,
            transaction: "tx-1",
            registered: "2025-03-31T06:00:00Z",
            start: "2025-03-29T23:00Z",
            end: "2025-03-30T22:00Z",
            resolution: "PT15M",
            points: flat_points(92, "0.250"),
        }],
    )
}

fn dead(outputs: &[OutputRecord]) -> DeadLetter {
    assert_eq!(outputs.len(), 1, "one dead letter");
    assert_eq!(outputs[0].topic, "afregning.ops.dead-letters.v1");
    Wire::local()
        .decode::<DeadLetter>(outputs[0].value.as_deref().expect("value"))
        .expect("dead letter")
}

/// The one dead letter of `outputs`, checked to be `Invalid` for `reason`.
fn invalid_because(outputs: &[OutputRecord], reason: &str) -> DeadLetter {
    let dl = dead(outputs);
    assert_eq!(dl.error_class, ErrorClass::Invalid);
    assert!(dl.reason.contains(reason), "{}", dl.reason);
    dl
}

#[test]
fn a_dst_day_series_becomes_one_reading_with_all_92_positions() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    let out = t
        .process(
            &[raw_record(
                RAW,
                0,
                "M1",
                0,
                day_doc("M1", "571313180400000028"),
                now,
            )],
            now,
        )
        .expect("ok");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "afregning.metering.readings.v1");
    assert_eq!(out[0].idempotency_key, "M1:0:0");
    // Readings are partitioned by GSRN (docs/topology.md worked example: partition 8).
    assert_eq!(out[0].partition, Some(8));
    let reading: Reading = Wire::local()
        .decode(out[0].value.as_deref().expect("v"))
        .expect("decodes");
    assert_eq!(reading.gsrn, "571313180400000028");
    assert_eq!(reading.resolution, Resolution::Pt15m);
    assert_eq!(reading.points.len(), 92);
    assert_eq!(
        reading.points[91].quantity.expect("q").to_string(),
        "0.250",
        "DataHub's precision is kept"
    );
    assert_eq!(reading.source_message_id, "M1");
}

#[test]
fn a_repeated_message_and_part_is_emitted_once_but_another_part_is_not_a_duplicate() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    let doc = day_doc("M1", "571313180400000028");
    let first = t
        .process(&[raw_record(RAW, 0, "M1", 0, doc.clone(), now)], now)
        .expect("ok");
    assert_eq!(first.len(), 1);
    // The same bundle re-peeked (connector crashed before dequeue): skipped, in a later batch...
    assert!(
        t.process(&[raw_record(RAW, 1, "M1", 0, doc.clone(), now)], now)
            .expect("ok")
            .is_empty()
    );
    // ...and within one batch.
    let batch = t
        .process(
            &[
                raw_record(RAW, 2, "M2", 0, doc.clone(), now),
                raw_record(RAW, 3, "M2", 0, doc.clone(), now),
            ],
            now,
        )
        .expect("ok");
    assert_eq!(batch.len(), 1);
    // Part 1 of M1 is another series.
    assert_eq!(
        t.process(&[raw_record(RAW, 4, "M1", 1, doc, now)], now)
            .expect("ok")
            .len(),
        1
    );
}

#[test]
fn dedupe_entries_expire_after_the_retention_window() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    let doc = day_doc("M1", "571313180400000028");
    t.process(&[raw_record(RAW, 0, "M1", 0, doc.clone(), now)], now)
        .expect("ok");
    t.tick(now + chrono::Duration::days(6)).expect("tick");
    assert!(
        t.process(&[raw_record(RAW, 1, "M1", 0, doc.clone(), now)], now)
            .expect("ok")
            .is_empty(),
        "still inside the window"
    );
    t.tick(now + chrono::Duration::days(8)).expect("tick");
    assert_eq!(
        t.process(&[raw_record(RAW, 2, "M1", 0, doc, now)], now)
            .expect("ok")
            .len(),
        1,
        "forgotten after 7 days"
    );
}

#[test]
fn malformed_json_is_dead_lettered_as_undecodable_with_the_raw_payload() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    let out = t
        .process(
            &[raw_record(RAW, 5, "M9", 0, b"{\"Notify".to_vec(), now)],
            now,
        )
        .expect("ok");
    let dl = dead(&out);
    assert_eq!(dl.error_class, ErrorClass::Undecodable);
    assert!(dl.reason.starts_with("malformed-json"), "{}", dl.reason);
    assert_eq!(dl.payload.as_deref(), Some(&b"{\"Notify"[..]));
    assert_eq!(dl.source_offset, 5);
    assert_eq!(dl.source_message_id.as_deref(), Some("M9"));
    assert_eq!(dl.component, "validate");
    assert_eq!(
        out[0].idempotency_key,
        format!("dead-letter:validate:{RAW}/0/5")
    );
}

#[test]
fn an_unknown_document_type_is_dead_lettered_with_its_reason() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    let out = t
        .process(
            &[raw_record(
                RAW,
                0,
                "M9",
                0,
                br#"{"Foo_MarketDocument": {}}"#.to_vec(),
                now,
            )],
            now,
        )
        .expect("ok");
    let dl = dead(&out);
    assert_eq!(dl.error_class, ErrorClass::Invalid);
    assert!(dl.reason.contains("unknown-document-type"), "{}", dl.reason);
}

#[test]
fn a_business_invalid_series_names_the_path() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    let doc = rsm012(
        "M3",
        &[Series {
            gsrn: "571313180400000028",
            transaction: "tx",
            registered: "2025-03-31T06:00:00Z",
            start: "2025-03-29T23:00Z",
            end: "2025-03-30T22:00Z",
            resolution: "PT15M",
            points: vec![(93, Some("1"), None)],
        }],
    );
    let dl = dead(
        &t.process(&[raw_record(RAW, 0, "M3", 0, doc, now)], now)
            .expect("ok"),
    );
    assert!(dl.reason.starts_with("business-invalid"), "{}", dl.reason);
    assert!(dl.reason.contains("Point[0]"), "{}", dl.reason);
}

#[test]
fn a_quantity_finer_than_the_typed_schema_is_refused_not_rounded() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    let doc = rsm012(
        "M4",
        &[Series {
            gsrn: "571313180400000028",
            transaction: "tx",
            registered: "2025-03-31T06:00:00Z",
            start: "2025-03-29T23:00Z",
            end: "2025-03-30T22:00Z",
            resolution: "PT1H",
            points: vec![(1, Some("1.2345"), None)],
        }],
    );
    invalid_because(
        &t.process(&[raw_record(RAW, 0, "M4", 0, doc, now)], now)
            .expect("ok"),
        "does not fit the typed schema",
    );
}

#[test]
fn a_tombstone_on_a_raw_topic_is_dead_lettered() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    let mut record = raw_record(RAW, 0, "M5", 0, Vec::new(), now);
    record.value = None;
    let dl = dead(&t.process(&[record], now).expect("ok"));
    assert_eq!(dl.error_class, ErrorClass::Undecodable);
}

fn rsm031_fixture() -> Vec<u8> {
    let doc = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../cim/tests/fixtures/rsm031-NotifyBillingMasterData.json"
    ))
    .expect("fixture");
    // Energinet's example names its receiver `TestRecipient1111`, longer than the
    // 16 characters the schema allows; give it a GLN so the document parses.
    let doc = String::from_utf8(doc)
        .expect("utf-8")
        .replace("TestRecipient1111", "5790001330583")
        .into_bytes();
    // ...and its metering points `MeteringPoint1`..`MeteringPoint10`, which are not
    // GSRNs (replaced from 10 down so `MeteringPoint1` does not eat `MeteringPoint10`).
    (1..=10)
        .rev()
        .fold(String::from_utf8(doc).expect("utf-8"), |d, i| {
            d.replace(
                &format!("MeteringPoint{i}"),
                &format!("5713131804000000{i:02}"),
            )
        })
        .into_bytes()
}

fn shared(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../shared/cim/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("shared document")
}

#[test]
fn energinets_charge_link_document_becomes_one_link_record_per_linked_charge() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    let doc = rsm031_fixture();
    let parsed = match afregning_cim::parse(&doc).expect("parses") {
        afregning_cim::Document::NotifyBillingMasterData(d) => d,
        other => panic!("{:?}", other.kind()),
    };
    let expected: usize = parsed
        .records
        .iter()
        .map(|r| r.charge_group.links.len())
        .sum();
    let out = t
        .process(
            &[raw_record(
                "afregning.datahub.charges-raw.v1",
                0,
                "M6",
                0,
                doc,
                now,
            )],
            now,
        )
        .expect("ok");
    assert_eq!(out.len(), expected);
    assert!(expected >= 10);
    for o in &out {
        assert_eq!(o.topic, "afregning.charges.links.v1");
        let link: afregning_topology::records::ChargeLink = Wire::local()
            .decode(o.value.as_deref().expect("value"))
            .expect("decodes");
        assert!(link.gsrn.starts_with("5713131804000000"));
        assert!(link.quantity >= 1);
    }
}

#[test]
fn energinets_charge_documents_become_charge_and_price_records() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    let info = shared(
        "rsm-034-notify-price-list/ExpectedOutputChargeCimJsonSerializerChargeInformation.blob",
    );
    let out = t
        .process(
            &[raw_record(
                "afregning.datahub.charges-raw.v1",
                0,
                "C1",
                0,
                info,
                now,
            )],
            now,
        )
        .expect("ok");
    assert_eq!(
        out.len(),
        10,
        "one charge per record of Energinet's example"
    );
    assert!(
        out.iter()
            .all(|o| o.topic == "afregning.charges.information.v1")
    );
    let first: afregning_topology::records::Charge = Wire::local()
        .decode(out[0].value.as_deref().expect("value"))
        .expect("decodes");
    assert_eq!(first.charge_code, "ChargeId1");
    assert_eq!(first.resolution, Resolution::P1m);
    assert!(first.tax_indicator);
    assert!(first.valid_to.is_some());

    let prices =
        shared("rsm-034-notify-price-list/ExpectedOutputChargeCimJsonSerializerChargePrices.blob");
    let out = t
        .process(
            &[raw_record(
                "afregning.datahub.charges-raw.v1",
                1,
                "C2",
                0,
                prices,
                now,
            )],
            now,
        )
        .expect("ok");
    assert!(!out.is_empty());
    assert!(out.iter().all(|o| o.topic == "afregning.charges.prices.v1"));
    let hourly = out
        .iter()
        .map(|o| {
            Wire::local()
                .decode::<afregning_topology::records::ChargePrice>(o.value.as_deref().expect("v"))
                .expect("decodes")
        })
        .find(|p| p.resolution == Resolution::Pt1h)
        .expect("an hourly tariff");
    assert_eq!(hourly.points.len(), 24);
    assert_eq!(hourly.points[23].price, rust_decimal::Decimal::from(24));
}

#[test]
fn a_document_type_without_a_typed_topic_is_dead_lettered_not_dropped() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    // A supplier-switch request is outbound: DataHub never sends it to us.
    let doc = shared("rsm-001-change-of-supplier/Request Change of Supplier.json");
    let dl = dead(
        &t.process(
            &[raw_record(
                "afregning.datahub.masterdata-raw.v1",
                0,
                "M6",
                0,
                doc,
                now,
            )],
            now,
        )
        .expect("ok"),
    );
    assert_eq!(dl.error_class, ErrorClass::Invalid);
    assert!(
        dl.reason.contains("unsupported document type"),
        "{}",
        dl.reason
    );
}

/// DataHub's reject of one of our RSM-016/RSM-017 requests, built as the
/// simulator builds it (`simulator/src/result_requests.rs`).
fn datahub_reject(message_id: &str, wholesale: bool) -> Vec<u8> {
    use afregning_cim::answer::{RejectSeries, RejectedSeries};
    use afregning_cim::codes::{MessageType, ProcessType, ReasonCode, Role};
    let reject = RejectSeries {
        header: afregning_simulator::scenario::documents::header(
            message_id,
            MessageType::ACKNOWLEDGEMENT,
            ProcessType::WHOLESALE_FIXING,
            if wholesale {
                Role::METERING_POINT_ADMINISTRATOR
            } else {
                Role::METERED_DATA_ADMINISTRATOR
            },
            "5790001330583",
            at("2026-04-10T08:00:00Z"),
            Some(ReasonCode::REJECTED),
        ),
        series: vec![RejectedSeries {
            transaction_id: format!("{message_id}-series"),
            metering_point: None,
            original_transaction_id: Some("our-request-series".into()),
            reasons: vec![afregning_cim::Reason {
                code: ReasonCode::parse("E0H").expect("E0H"),
                text: Some("No data available for the requested period".into()),
            }],
        }],
    };
    afregning_cim::write(&if wholesale {
        afregning_cim::Document::RejectRequestWholesaleSettlement(reject)
    } else {
        afregning_cim::Document::RejectRequestAggregatedMeasureData(reject)
    })
}

#[test]
fn datahubs_rejects_of_our_requests_are_left_to_the_relay_but_unknown_types_still_dead_letter() {
    let mut t = task();
    let aggregations = Topics::new(
        Catalogue::new(TopologySettings::default()).expect("catalogue"),
        Wire::local(),
    )
    .name(afregning_topology::topics::AGGREGATIONS_RAW);
    let now = at("2026-04-10T08:00:01Z");
    for (offset, (id, wholesale, kind)) in [
        (
            "R17",
            true,
            afregning_cim::DocumentKind::RejectRequestWholesaleSettlement,
        ),
        (
            "R16",
            false,
            afregning_cim::DocumentKind::RejectRequestAggregatedMeasureData,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let doc = datahub_reject(id, wholesale);
        assert_eq!(
            afregning_cim::parse(&doc).expect("a valid reject").kind(),
            kind
        );
        let validated = super::core::validate(Some(&doc), &RawMeta::default()).expect("known");
        assert_eq!(validated.handled_elsewhere, Some(kind));
        assert!(validated.records.is_empty());
        assert_eq!(validated.message_id.as_deref(), Some(id));
        let out = t
            .process(
                &[raw_record(&aggregations, offset as i64, id, 0, doc, now)],
                now,
            )
            .expect("ok");
        assert!(
            out.is_empty(),
            "{kind:?}: neither typed nor dead-lettered, got {:?}",
            out.iter().map(|o| &o.topic).collect::<Vec<_>>()
        );
    }
    // Our own request on the same topic is a type validate has no use for: dead-lettered.
    let request = shared("rsm-017/RequestWholesaleSettlement.json");
    invalid_because(
        &t.process(&[raw_record(&aggregations, 2, "Q1", 0, request, now)], now)
            .expect("ok"),
        "unsupported document type",
    );
}

#[test]
fn master_data_becomes_a_metering_point_period_keyed_by_gsrn_and_validity() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    let doc = rsm022(
        "MD1",
        "571313180400000028",
        "740",
        "2025-02-28T23:00:00Z",
        "PT15M",
        "5790000432752",
    );
    let out = t
        .process(&[raw_record(MD_RAW, 0, "MD1", 0, doc, now)], now)
        .expect("ok");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "afregning.metering.metering-points.v1");
    assert_eq!(
        out[0].partition,
        Some(8),
        "co-partitioned with the readings by GSRN"
    );
    let mp: MeteringPoint = Wire::local()
        .decode(out[0].value.as_deref().expect("v"))
        .expect("decodes");
    assert_eq!(mp.grid_area, "740");
    assert_eq!(mp.resolution, Resolution::Pt15m);
    assert_eq!(mp.valid_from, at("2025-02-28T23:00:00Z"));
    assert_eq!(mp.energy_supplier_gln.as_deref(), Some("5790000432752"));
}

#[test]
fn reprocessing_the_same_batch_on_fresh_state_gives_identical_outputs() {
    let now = at("2025-03-31T07:00:00Z");
    let records = vec![
        raw_record(RAW, 0, "M1", 0, day_doc("M1", "571313180400000028"), now),
        raw_record(RAW, 1, "M2", 0, b"garbage".to_vec(), now),
    ];
    let a = task().process(&records, now).expect("ok");
    let b = task()
        .process(&records, now + chrono::Duration::hours(1))
        .expect("ok");
    assert_eq!(
        a, b,
        "outputs are a function of input and state, not of the clock"
    );
}

#[test]
fn master_data_in_a_process_also_becomes_a_portfolio_command_keyed_by_gsrn() {
    let mut t = task();
    let now = at("2025-03-31T07:00:00Z");
    let gsrn = "571313180400000028";
    let mut doc: serde_json::Value = serde_json::from_slice(&rsm022(
        "MD2",
        gsrn,
        "740",
        "2025-02-28T23:00:00Z",
        "PT15M",
        "5790000432752",
    ))
    .expect("json");
    doc["AccountingPointCharacteristics_MarketDocument"]["MktActivityRecord"][0]["originalTransactionIDReference_MktActivityRecord.mRID"] =
        "move-in-1".into();
    let bytes = serde_json::to_vec(&doc).expect("json");
    let out = t
        .process(&[raw_record(MD_RAW, 0, "MD2", 0, bytes, now)], now)
        .expect("ok");
    let topics: Vec<&str> = out.iter().map(|o| o.topic.as_str()).collect();
    assert_eq!(
        topics,
        [
            "afregning.metering.metering-points.v1",
            "afregning.portfolio.commands.v1"
        ]
    );
    assert_eq!(out[1].key, gsrn.as_bytes());
    let command =
        afregning_portfolio::CommandRecord::from_json(out[1].value.as_deref().expect("v"))
            .expect("a command");
    let afregning_portfolio::Command::MasterData(master) = command.command else {
        panic!("{:?}", command.command);
    };
    assert_eq!(
        (master.grid_area.as_str(), master.valid_from.to_string()),
        ("740", "2025-03-01".to_string())
    );
}

/// The CIM crate's derived RSM-028 example with `first_customer` as the first customer's id.
fn rsm028(first_customer: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cim/tests/fixtures/rsm028-CharacteristicsOfACustomerAtAnAP.json");
    std::fs::read_to_string(path)
        .expect("the RSM-028 example")
        .replace("0801741527", first_customer)
        .into_bytes()
}

#[test]
fn sealed_customer_data_becomes_a_command_and_unsealed_is_dead_lettered_without_the_cpr() {
    let now = at("2025-03-31T07:00:00Z");
    let mut keys = afregning_portfolio::personal::Keyring::default();
    keys.generate("k1").expect("key");
    let sealed =
        afregning_portfolio::inbound::seal_customer_data(&rsm028("0801741527"), Some(&keys))
            .expect("sealed")
            .expect("customers");
    let out = task()
        .process(&[raw_record(MD_RAW, 0, "C1", 0, sealed, now)], now)
        .expect("ok");
    assert_eq!(out.len(), 1);
    let command =
        afregning_portfolio::CommandRecord::from_json(out[0].value.as_deref().expect("v"))
            .expect("a command");
    assert!(matches!(
        command.command,
        afregning_portfolio::Command::CustomerData { customer: None, .. }
    ));
    let out = task()
        .process(
            &[raw_record(MD_RAW, 0, "C2", 0, rsm028("0801741527"), now)],
            now,
        )
        .expect("ok");
    let dl = invalid_because(&out, "not sealed");
    assert!(!dl.reason.contains("0801741527"));
}
