//! Spot prices onto the spot-price topic: polled once from the simulator's Energi Data
//! Service–compatible endpoint (every quarter-hour of two days in both bidding zones, the
//! simulator's real and synthetic prices exactly), and imported from a CSV file with EDS's
//! columns (what `afregning prices import` does).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use afregning_connect::config::KafkaConfig;
use afregning_connect::spot_prices::{SpotPricePublisher, SpotPricesConfig, parse_csv};
use afregning_simulator::{ScenarioConfig, Simulator, SimulatorConfig};
use afregning_topology::records::{Resolution, SpotPrice};
use afregning_topology::{Codec, topics};
use chrono::{NaiveDate, TimeZone, Utc};
use common::{harness, read_topics};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spot_prices_are_polled_and_imported_onto_the_topic() {
    let h = harness("connect_spot").await;
    let sim = Simulator::new(SimulatorConfig {
        scenario: ScenarioConfig {
            metering_points: 1,
            days: 1,
            ..ScenarioConfig::default()
        },
        ..SimulatorConfig::default()
    })
    .expect("scenario")
    .serve("127.0.0.1:0".parse().expect("addr"))
    .await
    .expect("simulator");
    let kafka = KafkaConfig {
        bootstrap_servers: h.env.bootstrap_servers.clone(),
        schema_registry_url: h.env.registry_url.clone(),
        topology: h.settings.clone(),
        ..KafkaConfig::default()
    };
    let config = SpotPricesConfig {
        url: sim.spot_prices_url(),
        start: NaiveDate::from_ymd_opt(2025, 11, 4),
        end: NaiveDate::from_ymd_opt(2025, 11, 6),
        once: true,
        kafka: kafka.clone(),
        admin_listen: "127.0.0.1:0".parse().expect("addr"),
        ..SpotPricesConfig::default()
    };
    let (_stop, stop_rx) = watch::channel(false);
    tokio::time::timeout(
        Duration::from_secs(60),
        afregning_connect::spot_prices::run(config, stop_rx),
    )
    .await
    .expect("in time")
    .expect("polled");

    // A file in EDS's hourly download format, before the quarter-hour switch.
    let csv = "HourUTC;HourDK;PriceArea;SpotPriceDKK;SpotPriceEUR\n2025-06-20 11:00;2025-06-20 13:00;DK1;-1,49194;-0,2\n2025-06-20 12:00;2025-06-20 14:00;DK1;10,5;1,41\n";
    let rows = parse_csv(csv.as_bytes()).expect("csv");
    let publisher = SpotPricePublisher::new(&kafka).expect("publisher");
    assert_eq!(
        publisher
            .publish(&rows, "file:test.csv")
            .await
            .expect("publish"),
        2
    );
    drop(publisher);

    let codec = Codec::new(h.catalogue.clone(), &h.env.registry_url);
    let topic = codec.topic_name(topics::SPOT_PRICES).to_string();
    let expected = 2 * 2 * 96 + 2;
    let records = read_topics(
        &h.env.bootstrap_servers,
        &h.env.group("spot"),
        vec![topic],
        Duration::from_secs(60),
        move |r| r.len() >= expected,
    )
    .await;
    assert_eq!(records.len(), expected);
    let mut prices = BTreeMap::new();
    for r in &records {
        let price: SpotPrice = codec
            .decode_value(topics::SPOT_PRICES, Some(&r.payload))
            .await
            .expect("decode")
            .expect("value");
        prices.insert((price.price_area.clone(), price.start), price);
    }
    let from = Utc
        .with_ymd_and_hms(2025, 11, 3, 23, 0, 0)
        .single()
        .expect("t");
    let to = Utc
        .with_ymd_and_hms(2025, 11, 5, 23, 0, 0)
        .single()
        .expect("t");
    for area in ["DK1", "DK2"] {
        for truth in afregning_simulator::spot_prices::prices(1, area, from, to) {
            let got = &prices[&(area.to_string(), truth.start)];
            assert_eq!(
                got.price_dkk_per_mwh, truth.dkk_per_mwh,
                "{area} {}",
                truth.start
            );
            assert_eq!(got.price_eur_per_mwh, Some(truth.eur_per_mwh));
            assert_eq!(got.resolution, Resolution::Pt15m);
            assert_eq!(got.end - got.start, chrono::Duration::minutes(15));
            assert!(got.source.starts_with("DayAheadPrices@127.0.0.1"));
        }
    }
    let negative = &prices[&(
        "DK1".to_string(),
        Utc.with_ymd_and_hms(2025, 6, 20, 11, 0, 0)
            .single()
            .expect("t"),
    )];
    assert_eq!(
        negative.price_dkk_per_mwh,
        "-1.49194"
            .parse::<rust_decimal::Decimal>()
            .expect("decimal")
    );
    assert_eq!(
        (negative.resolution, negative.source.as_str()),
        (Resolution::Pt1h, "file:test.csv")
    );
    drop(codec);
    sim.shutdown().await;
    h.cleanup().await;
}
