//! Day-ahead spot prices from an Energi Data Service–compatible endpoint (or a file) onto the
//! spot-price topic of the catalogue (`afregning_topology::topics::SPOT_PRICES`).
//!
//! Two shapes are read, by their columns: `DayAheadPrices` (`TimeUTC, TimeDK, PriceArea,
//! DayAheadPriceDKK, DayAheadPriceEUR`, quarter-hours from 2025-10-01) and `Elspotprices`
//! (`HourUTC, HourDK, PriceArea, SpotPriceDKK, SpotPriceEUR`, hours). Prices are DKK/MWh, as
//! published; numbers are read from their text (never through a float). The topic is a table
//! keyed by (price area, MTU start): publishing a price twice is harmless, and the poller
//! publishes only prices that are new or changed since its last poll.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use afregning_topology::records::{Resolution, SpotPrice, SpotPriceKey};
use afregning_topology::{Catalogue, Codec, topics};
use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Copenhagen;
use rdkafka::producer::FutureProducer;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::config::KafkaConfig;
use crate::metrics as m;
use crate::{ConnectError, Status};

/// One price as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotRow {
    /// DK1 or DK2.
    pub price_area: String,
    /// MTU start (UTC).
    pub start: DateTime<Utc>,
    /// PT15M (`DayAheadPrices`) or PT1H (`Elspotprices`).
    pub resolution: Resolution,
    /// DKK/MWh.
    pub dkk_per_mwh: Decimal,
    /// EUR/MWh, when given.
    pub eur_per_mwh: Option<Decimal>,
}

impl SpotRow {
    /// MTU end.
    pub fn end(&self) -> DateTime<Utc> {
        match self.resolution {
            Resolution::Pt15m => self.start + chrono::Duration::minutes(15),
            _ => self.start + chrono::Duration::hours(1),
        }
    }
}

/// Why prices could not be read or published.
#[derive(Debug, thiserror::Error)]
pub enum SpotError {
    /// The input is not what Energi Data Service sends.
    #[error("{0}")]
    Format(String),
    /// HTTP failed.
    #[error("fetching prices: {0}")]
    Http(String),
    /// The record could not be encoded or produced.
    #[error("publishing prices: {0}")]
    Publish(String),
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, SpotError> {
    let t = text.trim().trim_end_matches('Z');
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return Ok(Utc.from_utc_datetime(&naive));
        }
    }
    Err(SpotError::Format(format!("`{text}` is not a UTC time")))
}

fn parse_decimal(text: &str, comma: bool) -> Result<Decimal, SpotError> {
    let text = text.trim();
    let text = if comma {
        text.replace('.', "").replace(',', ".")
    } else {
        text.to_string()
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| SpotError::Format(format!("`{text}` is not a number")))
}

/// Column names of the two datasets: (time, area, DKK, EUR, resolution).
const SHAPES: [(&str, &str, &str, &str, Resolution); 2] = [
    (
        "TimeUTC",
        "PriceArea",
        "DayAheadPriceDKK",
        "DayAheadPriceEUR",
        Resolution::Pt15m,
    ),
    (
        "HourUTC",
        "PriceArea",
        "SpotPriceDKK",
        "SpotPriceEUR",
        Resolution::Pt1h,
    ),
];

fn make_row(
    time: &str,
    area: &str,
    dkk: &str,
    eur: Option<&str>,
    resolution: Resolution,
    comma: bool,
) -> Result<SpotRow, SpotError> {
    let eur = match eur.map(str::trim) {
        None | Some("") | Some("null") => None,
        Some(text) => Some(parse_decimal(text, comma)?),
    };
    let dkk = parse_decimal(dkk, comma)?;
    if dkk.scale() > 6 || eur.is_some_and(|e| e.scale() > 6) {
        return Err(SpotError::Format(format!(
            "{area} {time}: more than 6 decimals (the topic keeps 6; refusing to round)"
        )));
    }
    Ok(SpotRow {
        price_area: area.trim().to_string(),
        start: parse_time(time)?,
        resolution,
        dkk_per_mwh: dkk,
        eur_per_mwh: eur,
    })
}

#[derive(Deserialize)]
struct EdsBody<'a> {
    #[serde(borrow)]
    records: Vec<HashMap<&'a str, &'a RawValue>>,
}

/// Reads an Energi Data Service JSON answer.
pub fn parse_eds_json(body: &[u8]) -> Result<Vec<SpotRow>, SpotError> {
    let parsed: EdsBody<'_> = serde_json::from_slice(body)
        .map_err(|e| SpotError::Format(format!("not an EDS answer: {e}")))?;
    let text = |raw: &RawValue| -> String {
        serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_string())
    };
    let mut rows = Vec::with_capacity(parsed.records.len());
    for record in &parsed.records {
        let (time, area, dkk, eur, resolution) = SHAPES
            .iter()
            .find(|s| record.contains_key(s.0))
            .ok_or_else(|| {
            SpotError::Format("a record has neither TimeUTC nor HourUTC".into())
        })?;
        let get = |k: &str| {
            record
                .get(k)
                .map(|raw| text(raw))
                .ok_or_else(|| SpotError::Format(format!("a record has no {k}")))
        };
        rows.push(make_row(
            &get(time)?,
            &get(area)?,
            &get(dkk)?,
            record.get(eur).map(|r| text(r)).as_deref(),
            *resolution,
            false,
        )?);
    }
    Ok(rows)
}

/// Reads a CSV file with the same columns (comma-separated with decimal points, or EDS's
/// download format: semicolon-separated with decimal commas).
pub fn parse_csv(mut reader: impl Read) -> Result<Vec<SpotRow>, SpotError> {
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|e| SpotError::Format(e.to_string()))?;
    let header = text.lines().next().unwrap_or_default();
    let semicolon = header.contains(';');
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(if semicolon { b';' } else { b',' })
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = csv
        .headers()
        .map_err(|e| SpotError::Format(e.to_string()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
    };
    let (time, area, dkk, eur, resolution) =
        SHAPES.iter().find(|s| col(s.0).is_some()).ok_or_else(|| {
            SpotError::Format("the file has neither a TimeUTC nor an HourUTC column".into())
        })?;
    let (time, area, dkk) = match (col(time), col(area), col(dkk)) {
        (Some(t), Some(a), Some(d)) => (t, a, d),
        _ => {
            return Err(SpotError::Format(format!(
                "missing columns: need {time}, {area}, {dkk}"
            )));
        }
    };
    let eur = col(eur);
    let mut rows = Vec::new();
    for (line, record) in csv.records().enumerate() {
        let record = record.map_err(|e| SpotError::Format(format!("line {}: {e}", line + 2)))?;
        let field = |i: usize| record.get(i).unwrap_or_default();
        let row = make_row(
            field(time),
            field(area),
            field(dkk),
            eur.map(field),
            *resolution,
            semicolon,
        )
        .map_err(|e| SpotError::Format(format!("line {}: {e}", line + 2)))?;
        rows.push(row);
    }
    Ok(rows)
}

/// Publishes prices to the spot-price topic.
pub struct SpotPricePublisher {
    producer: FutureProducer,
    codec: Codec,
}

impl std::fmt::Debug for SpotPricePublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpotPricePublisher").finish_non_exhaustive()
    }
}

impl SpotPricePublisher {
    /// A publisher with its own idempotent producer.
    pub fn new(kafka: &KafkaConfig) -> Result<Self, ConnectError> {
        let catalogue = Catalogue::new(kafka.topology.clone())
            .map_err(|e| ConnectError::Config(e.to_string()))?;
        Ok(Self {
            producer: crate::publish::producer_config(kafka).create()?,
            codec: Codec::new(catalogue, &kafka.schema_registry_url),
        })
    }

    /// Produces every row and awaits every acknowledgement; returns how many.
    pub async fn publish(&self, rows: &[SpotRow], source: &str) -> Result<usize, SpotError> {
        let fetched_at = chrono::SubsecRound::trunc_subsecs(Utc::now(), 3);
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let key = SpotPriceKey {
                price_area: row.price_area.clone(),
                start: row.start,
            };
            let value = SpotPrice {
                price_area: row.price_area.clone(),
                start: row.start,
                end: row.end(),
                resolution: row.resolution,
                price_dkk_per_mwh: row.dkk_per_mwh,
                price_eur_per_mwh: row.eur_per_mwh,
                source: source.to_string(),
                fetched_at,
            };
            let record = self
                .codec
                .encode(topics::SPOT_PRICES, &key, &value)
                .await
                .map_err(|e| SpotError::Publish(e.to_string()))?;
            records.push(record);
        }
        let mut deliveries = Vec::with_capacity(records.len());
        for record in &records {
            let delivery = self
                .producer
                .send_result(record.as_future_record())
                .map_err(|(e, _)| SpotError::Publish(e.to_string()))?;
            deliveries.push(delivery);
        }
        for (row, report) in rows.iter().zip(futures::future::join_all(deliveries).await) {
            match report {
                Ok(Ok(_)) => {
                    metrics::counter!(m::SPOT_PRICES_PUBLISHED, "price_area" => row.price_area.clone()).increment(1);
                }
                Ok(Err((e, _))) => return Err(SpotError::Publish(e.to_string())),
                Err(_) => return Err(SpotError::Publish("delivery report lost".into())),
            }
        }
        Ok(records.len())
    }
}

/// The spot-price poller's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpotPricesConfig {
    /// Dataset URL, e.g. `https://api.energidataservice.dk/dataset/DayAheadPrices`
    /// (env `SPOT_PRICES_URL`).
    pub url: String,
    /// Bidding zones. Default DK1 and DK2.
    pub areas: Vec<String>,
    /// Poll interval, ms. Default 900,000 (15 minutes; day-ahead prices appear once a day).
    pub interval_ms: u64,
    /// Local days before today to fetch. Default 1.
    pub lookback_days: u32,
    /// Local days after today to fetch (tomorrow's prices). Default 2.
    pub lookahead_days: u32,
    /// A fixed first local day instead of today − lookback (backfill).
    pub start: Option<NaiveDate>,
    /// A fixed end local day (exclusive) instead of today + lookahead.
    pub end: Option<NaiveDate>,
    /// Fetch and publish once, then exit.
    pub once: bool,
    /// Request timeout, ms. Default 30,000.
    pub request_timeout_ms: u64,
    /// Broker and registry.
    pub kafka: KafkaConfig,
    /// `/health` and `/metrics`. Default `0.0.0.0:9100`.
    pub admin_listen: SocketAddr,
}

impl Default for SpotPricesConfig {
    fn default() -> Self {
        Self {
            url: "https://api.energidataservice.dk/dataset/DayAheadPrices".into(),
            areas: vec!["DK1".into(), "DK2".into()],
            interval_ms: 900_000,
            lookback_days: 1,
            lookahead_days: 2,
            start: None,
            end: None,
            once: false,
            request_timeout_ms: 30_000,
            kafka: KafkaConfig::default(),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9100)),
        }
    }
}

/// Fetches `[start, end)` (local days) for `areas`.
pub async fn fetch(
    http: &reqwest::Client,
    url: &str,
    start: NaiveDate,
    end: NaiveDate,
    areas: &[String],
) -> Result<Vec<SpotRow>, SpotError> {
    let filter = serde_json::json!({ "PriceArea": areas }).to_string();
    let response = http
        .get(url)
        .query(&[
            ("start", start.format("%Y-%m-%d").to_string()),
            ("end", end.format("%Y-%m-%d").to_string()),
            ("filter", filter),
            ("sort", "TimeUTC ASC".to_string()),
            ("limit", "0".to_string()),
        ])
        .send()
        .await
        .map_err(|e| SpotError::Http(e.without_url().to_string()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| SpotError::Http(e.without_url().to_string()))?;
    if !status.is_success() {
        return Err(SpotError::Http(format!(
            "{status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )));
    }
    parse_eds_json(&body)
}

/// The source label of prices fetched from `url`: the dataset name and host.
pub fn source_of(url: &str) -> String {
    let without_scheme = url.split("://").nth(1).unwrap_or(url);
    let host = without_scheme.split('/').next().unwrap_or_default();
    let dataset = url.rsplit('/').next().unwrap_or_default();
    format!("{dataset}@{host}")
}

/// Polls and publishes until `stop` turns true (or once).
pub async fn run(
    config: SpotPricesConfig,
    stop: watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    crate::metrics::install();
    let publisher = SpotPricePublisher::new(&config.kafka)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .build()?;
    let status = Status::default();
    let (admin_addr, admin) = crate::serve_admin(
        config.admin_listen,
        crate::admin_router(status),
        stop.clone(),
    )
    .await?;
    tracing::info!(%admin_addr, url = %config.url, "spot-price poller started");
    let result = poll(&config, &publisher, &http, stop).await;
    admin.abort();
    result
}

async fn poll(
    config: &SpotPricesConfig,
    publisher: &SpotPricePublisher,
    http: &reqwest::Client,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    let source = source_of(&config.url);
    let mut published: HashMap<(String, DateTime<Utc>), (Decimal, Option<Decimal>)> =
        HashMap::new();
    let mut backoff = crate::backoff::Backoff::new(Default::default());
    loop {
        let today = Utc::now().with_timezone(&Copenhagen).date_naive();
        let start = config
            .start
            .unwrap_or_else(|| today - Days::new(u64::from(config.lookback_days)));
        let end = config
            .end
            .unwrap_or_else(|| today + Days::new(u64::from(config.lookahead_days)));
        let wait = match fetch(http, &config.url, start, end, &config.areas).await {
            Ok(rows) => {
                let fresh: Vec<SpotRow> = rows
                    .into_iter()
                    .filter(|r| {
                        published.get(&(r.price_area.clone(), r.start))
                            != Some(&(r.dkk_per_mwh, r.eur_per_mwh))
                    })
                    .collect();
                match publisher.publish(&fresh, &source).await {
                    Ok(n) => {
                        for r in &fresh {
                            published.insert(
                                (r.price_area.clone(), r.start),
                                (r.dkk_per_mwh, r.eur_per_mwh),
                            );
                        }
                        tracing::info!(published = n, %start, %end, "spot prices polled");
                        backoff.reset();
                        if config.once {
                            return Ok(());
                        }
                        Duration::from_millis(config.interval_ms)
                    }
                    Err(error) => {
                        tracing::warn!(%error, "publishing spot prices failed; retrying");
                        backoff.next_wait()
                    }
                }
            }
            Err(error) => {
                metrics::counter!(m::ERRORS, "queue" => "spot-prices", "kind" => "fetch")
                    .increment(1);
                tracing::warn!(%error, "fetching spot prices failed; retrying");
                backoff.next_wait()
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_eds_shapes_are_read_exactly() {
        let body = br#"{"total":2,"records":[
            {"TimeUTC":"2025-11-04T12:00:00","TimeDK":"2025-11-04T13:00:00","PriceArea":"DK1","DayAheadPriceDKK":335.967339,"DayAheadPriceEUR":45.03},
            {"HourUTC":"2025-06-20T11:00:00","HourDK":"2025-06-20T13:00:00","PriceArea":"DK1","SpotPriceDKK":-1.49194,"SpotPriceEUR":null}]}"#;
        let rows = parse_eds_json(body).expect("parses");
        assert_eq!(rows[0].dkk_per_mwh.to_string(), "335.967339");
        assert_eq!(rows[0].resolution, Resolution::Pt15m);
        assert_eq!(rows[0].end() - rows[0].start, chrono::Duration::minutes(15));
        assert_eq!(rows[1].dkk_per_mwh.to_string(), "-1.49194");
        assert_eq!(rows[1].eur_per_mwh, None);
        assert_eq!(rows[1].resolution, Resolution::Pt1h);
    }

    #[test]
    fn csv_files_in_both_dialects() {
        let plain = "TimeUTC,TimeDK,PriceArea,DayAheadPriceDKK,DayAheadPriceEUR\n2025-11-05T00:00:00,2025-11-05T01:00:00,DK2,612.5,82.1\n";
        let rows = parse_csv(plain.as_bytes()).expect("plain");
        assert_eq!(rows[0].dkk_per_mwh, Decimal::from_str("612.5").expect("d"));
        let eds = "HourUTC;HourDK;PriceArea;SpotPriceDKK;SpotPriceEUR\n2025-06-19 22:00;2025-06-20 00:00;DK1;813,181912;109,010002\n";
        let rows = parse_csv(eds.as_bytes()).expect("eds dialect");
        assert_eq!(rows[0].dkk_per_mwh.to_string(), "813.181912");
        assert_eq!(rows[0].resolution, Resolution::Pt1h);
        let bad = "TimeUTC,PriceArea,DayAheadPriceDKK\n2025-11-05T00:00:00,DK2,1.1234567\n";
        assert!(
            parse_csv(bad.as_bytes()).is_err(),
            "7 decimals are refused, not rounded"
        );
        assert!(parse_csv("a,b\n1,2\n".as_bytes()).is_err());
    }

    #[test]
    fn source_names_dataset_and_host() {
        assert_eq!(
            source_of("https://api.energidataservice.dk/dataset/DayAheadPrices"),
            "DayAheadPrices@api.energidataservice.dk"
        );
    }
}
