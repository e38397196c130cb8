//! The scenario generator: metering points, a few days of metered data with corrections,
//! estimates, gaps and late days, master data, charges and links, aggregations and spot
//! prices, bundled into messages as DataHub would queue them. Pure and deterministic: the
//! same [`ScenarioConfig`] gives the same bytes, MessageIds and ground truth.

pub mod documents;
pub mod profiles;
pub mod rates;
pub mod rng;

use std::collections::BTreeMap;
use std::time::Duration;

use afregning_cim::codes::{MeteringPointType, Quality, SettlementMethod};
use afregning_cim::resolution::local_midnight_utc;
use afregning_cim::{DocumentKind, Gsrn, Resolution, TimeInterval};
use bytes::Bytes;
use chrono::{
    DateTime, Datelike, Days, Duration as ChronoDuration, Months, NaiveDate, Timelike, Utc,
};
use chrono_tz::Europe::Copenhagen;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::faults::{FaultConfig, InjectedFault, corrupt};
use crate::ground_truth::{
    ChargeTruth, DayReading, GroundTruth, LinkTruth, MessageTruth, MeteringPointTruth,
    PricePointTruth, TruthPoint,
};
use crate::queues::Queue;
use crate::spot_prices::{self, PRICE_AREAS};
use documents::{AggregateSpec, SeriesSpec};
use profiles::Profile;
use rates::{ChargeDef, GridAreaDef};
use rng::Rng;

/// What to generate. Every field has a default; JSON files with unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScenarioConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of metering points we supply.
    pub metering_points: u32,
    /// First local day of metered data.
    pub first_day: NaiveDate,
    /// Number of local days.
    pub days: u32,
    /// Our GLN (receiver of every document).
    pub supplier_gln: String,
    /// Grid areas to spread metering points over (of `344`, `740`, `791`); the first gets
    /// twice the weight of each other.
    pub grid_areas: Vec<String>,
    /// Share of metering points read hourly (the rest quarter-hourly).
    pub pt1h_share: f64,
    /// Share of business load profiles (the rest households).
    pub business_share: f64,
    /// Share of flex-settled (D01) metering points (the rest E02).
    pub flex_share: f64,
    /// Share of metering-point days corrected by a later series.
    pub correction_share: f64,
    /// Share of metering-point days with a run of estimated quantities (A03).
    pub estimated_share: f64,
    /// Share of metering-point days with a run of missing quantities (A02, no quantity).
    pub missing_share: f64,
    /// Share of metering-point days delivered late (after the other days).
    pub late_share: f64,
    /// Series per RSM-012 bundle (DataHub: up to 2,000).
    pub bundle_series: u32,
    /// Activity records per RSM-022 and RSM-031 bundle.
    pub bundle_records: u32,
    /// Delay before day `n`'s bundles become visible: `n × day_release_ms`.
    pub day_release_ms: u64,
    /// Extra delay of late days and corrections after the last day.
    pub late_release_ms: u64,
    /// Whether to queue RSM-014 aggregations (per grid area and day).
    pub aggregations: bool,
    /// Whether to queue master data, charges and links (off for pure volume runs).
    pub master_data: bool,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            metering_points: 500,
            first_day: NaiveDate::from_ymd_opt(2025, 11, 4).unwrap_or_default(),
            days: 3,
            supplier_gln: "5799999933318".into(),
            grid_areas: vec!["344".into(), "740".into(), "791".into()],
            pt1h_share: 0.15,
            business_share: 0.2,
            flex_share: 0.3,
            correction_share: 0.05,
            estimated_share: 0.05,
            missing_share: 0.02,
            late_share: 0.03,
            bundle_series: 2000,
            bundle_records: 2000,
            day_release_ms: 0,
            late_release_ms: 0,
            aggregations: true,
            master_data: true,
        }
    }
}

/// Why a scenario cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// A setting is out of range.
    #[error("invalid scenario setting: {0}")]
    Config(String),
    /// A charge has no rate for a day of the scenario.
    #[error("charge {code} of {owner} has no rate on {day} (rates cover {coverage})")]
    NoRate {
        /// Owner GLN.
        owner: String,
        /// Charge code.
        code: String,
        /// The day.
        day: NaiveDate,
        /// What the rates cover.
        coverage: String,
    },
}

/// A message as generated, before it is put on a queue.
#[derive(Debug, Clone)]
pub struct ScenarioMessage {
    /// MessageId.
    pub id: String,
    /// Queue.
    pub queue: Queue,
    /// Document type (`None` for an injected non-document).
    pub kind: Option<DocumentKind>,
    /// The body.
    pub body: Bytes,
    /// Top-level transactions.
    pub transactions: usize,
    /// When it becomes visible, after the simulator starts.
    pub release_after: Duration,
    /// An injected content fault.
    pub fault: Option<InjectedFault>,
}

/// A generated scenario: the ground truth and the queued messages, in queue order.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// What the scenario contains.
    pub truth: GroundTruth,
    /// The messages.
    pub messages: Vec<ScenarioMessage>,
}

struct Mp {
    truth: MeteringPointTruth,
    annual: f64,
    area: usize,
}

struct DaySeries {
    mp: usize,
    day: u32,
    interval: TimeInterval,
    initial: Vec<TruthPoint>,
    initial_id: String,
    initial_registered: DateTime<Utc>,
    correction: Option<(Vec<TruthPoint>, String, DateTime<Utc>)>,
    late: bool,
}

fn kwh(value: f64) -> Decimal {
    Decimal::new((value * 1000.0).round() as i64, 3)
}

fn day_interval(day: NaiveDate) -> Result<TimeInterval, ScenarioError> {
    let start = local_midnight_utc(day);
    let end = local_midnight_utc(day + Days::new(1));
    match (start, end) {
        (Some(start), Some(end)) => Ok(TimeInterval { start, end }),
        _ => Err(ScenarioError::Config(format!(
            "{day} has no local midnight"
        ))),
    }
}

fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn check_share(name: &str, value: f64) -> Result<(), ScenarioError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ScenarioError::Config(format!(
            "{name} must be in 0..=1, got {value}"
        )))
    }
}

impl ScenarioConfig {
    fn validate(&self) -> Result<Vec<GridAreaDef>, ScenarioError> {
        if self.metering_points == 0 || self.metering_points > 10_000_000 {
            return Err(ScenarioError::Config(
                "metering_points must be 1..=10,000,000".into(),
            ));
        }
        if self.days == 0 || self.days > 366 {
            return Err(ScenarioError::Config("days must be 1..=366".into()));
        }
        if self.bundle_series == 0 || self.bundle_records == 0 {
            return Err(ScenarioError::Config(
                "bundle sizes must be at least 1".into(),
            ));
        }
        if afregning_cim::gs1_check_digit(self.supplier_gln.as_bytes()).is_none()
            || self.supplier_gln.len() != 13
        {
            return Err(ScenarioError::Config(
                "supplier_gln must be 13 digits".into(),
            ));
        }
        for (name, value) in [
            ("pt1h_share", self.pt1h_share),
            ("business_share", self.business_share),
            ("flex_share", self.flex_share),
            ("correction_share", self.correction_share),
            ("estimated_share", self.estimated_share),
            ("missing_share", self.missing_share),
            ("late_share", self.late_share),
        ] {
            check_share(name, value)?;
        }
        let known = rates::grid_areas();
        let mut areas = Vec::new();
        for code in &self.grid_areas {
            let def = known.iter().find(|a| a.code == code).ok_or_else(|| {
                ScenarioError::Config(format!("unknown grid area {code} (known: 344, 740, 791)"))
            })?;
            areas.push(def.clone());
        }
        if areas.is_empty() {
            return Err(ScenarioError::Config("at least one grid area".into()));
        }
        Ok(areas)
    }

    /// The last local day (inclusive).
    pub fn last_day(&self) -> NaiveDate {
        self.first_day + Days::new(u64::from(self.days.saturating_sub(1)))
    }
}

/// Generates a scenario and the content faults `faults` asks for.
pub fn generate(config: &ScenarioConfig, faults: &FaultConfig) -> Result<Scenario, ScenarioError> {
    let areas = config.validate()?;
    let seed = config.seed;
    let supplier = config.supplier_gln.as_str();
    let supply_day = month_start(config.first_day);
    let supply_start = day_interval(supply_day)?.start;
    let mut ids = Rng::derive(seed, 3, 0, 0);

    // Metering points.
    let weights: Vec<u64> = (0..areas.len())
        .map(|i| if i == 0 { 2 } else { 1 })
        .collect();
    let total_weight: u64 = weights.iter().sum();
    let mut mps = Vec::with_capacity(config.metering_points as usize);
    for i in 0..config.metering_points {
        let mut rng = Rng::derive(seed, 1, u64::from(i), 0);
        let mut pick = rng.range(0, total_weight);
        let mut area = 0;
        for (index, w) in weights.iter().enumerate() {
            if pick < *w {
                area = index;
                break;
            }
            pick -= w;
        }
        let def = &areas[area];
        let gsrn = Gsrn::with_check_digit(&format!("571313{}{:08}", def.code, i + 1))
            .ok_or_else(|| ScenarioError::Config("GSRN out of range".into()))?;
        let profile = if rng.chance(config.business_share) {
            Profile::Business
        } else {
            Profile::Household
        };
        let resolution = if rng.chance(config.pt1h_share) {
            Resolution::Hour
        } else {
            Resolution::QuarterHour
        };
        let settlement_method = if rng.chance(config.flex_share) {
            SettlementMethod::Flex
        } else {
            SettlementMethod::NonProfiled
        };
        let annual = profile.annual_kwh(&mut rng);
        mps.push(Mp {
            truth: MeteringPointTruth {
                gsrn,
                grid_area: def.code.to_string(),
                price_area: def.price_area.to_string(),
                grid_owner_gln: def.company.gln.to_string(),
                metering_point_type: MeteringPointType::Consumption,
                settlement_method,
                resolution,
                profile,
                supply_start,
            },
            annual,
            area,
        });
    }

    // Metered data, day by day.
    let mut series = Vec::with_capacity(mps.len() * config.days as usize);
    for d in 0..config.days {
        let day = config.first_day + Days::new(u64::from(d));
        let interval = day_interval(day)?;
        for (i, mp) in mps.iter().enumerate() {
            let mut rng = Rng::derive(seed, 2, i as u64, u64::from(d));
            series.push(day_series(config, mp, i, d, interval, &mut rng));
        }
    }

    let mut messages = Vec::new();
    let mut readings: Vec<DayReading> = Vec::with_capacity(series.len());
    let mut day_messages: BTreeMap<(usize, u32), Vec<String>> = BTreeMap::new();

    // On-time bundles per day, then late days, then corrections.
    let day_release =
        |d: u32| Duration::from_millis(config.day_release_ms.saturating_mul(u64::from(d)));
    let after_days = day_release(config.days) + Duration::from_millis(config.late_release_ms);
    for d in 0..config.days {
        let list: Vec<&DaySeries> = series.iter().filter(|s| s.day == d && !s.late).collect();
        bundle_series(
            config,
            &mps,
            &list,
            false,
            day_release(d),
            &mut ids,
            &mut messages,
            &mut day_messages,
        );
    }
    let late: Vec<&DaySeries> = series.iter().filter(|s| s.late).collect();
    bundle_series(
        config,
        &mps,
        &late,
        false,
        after_days,
        &mut ids,
        &mut messages,
        &mut day_messages,
    );
    let corrected: Vec<&DaySeries> = series.iter().filter(|s| s.correction.is_some()).collect();
    bundle_series(
        config,
        &mps,
        &corrected,
        true,
        after_days + Duration::from_millis(config.late_release_ms),
        &mut ids,
        &mut messages,
        &mut day_messages,
    );

    for s in &series {
        let mp = &mps[s.mp];
        let (points, registered) = match &s.correction {
            Some((points, _, registered)) => (points.clone(), *registered),
            None => (s.initial.clone(), s.initial_registered),
        };
        readings.push(DayReading {
            gsrn: mp.truth.gsrn,
            day: config.first_day + Days::new(u64::from(s.day)),
            resolution: mp.truth.resolution,
            start: s.interval.start,
            end: s.interval.end,
            points,
            versions: if s.correction.is_some() { 2 } else { 1 },
            late: s.late,
            registered,
            message_ids: day_messages.remove(&(s.mp, s.day)).unwrap_or_default(),
        });
    }
    readings.sort_by_key(|a| (a.gsrn, a.day));

    // Charges, links, master data.
    let last_day = config.last_day();
    let price_from = supply_day;
    let price_to = month_start(last_day) + Months::new(1);
    let mut charge_defs: Vec<ChargeDef> = rates::energinet_charges();
    for def in &areas {
        charge_defs.push(def.company.tariff.clone());
        charge_defs.push(def.company.subscription.clone());
    }
    let mut charges = Vec::new();
    let mut periods = Vec::new();
    for def in &charge_defs {
        let (truth, by_month) = charge_truth(def, price_from, price_to)?;
        charges.push(truth);
        periods.push(by_month);
    }
    let mut links = Vec::new();
    for mp in &mps {
        let company = &areas[mp.area].company;
        for def in rates::energinet_charges()
            .iter()
            .chain([&company.tariff, &company.subscription])
        {
            links.push(LinkTruth {
                gsrn: mp.truth.gsrn,
                owner_gln: def.owner_gln.to_string(),
                kind: def.kind,
                code: def.code.to_string(),
                factor: 1,
                valid_from: supply_start,
                valid_to: None,
            });
        }
    }
    let published = supply_start - ChronoDuration::days(1);
    if config.master_data {
        let rec = config.bundle_records as usize;
        for group in mps.chunks(rec) {
            let id = ids.guid();
            let points: Vec<(&MeteringPointTruth, String, Decimal)> = group
                .iter()
                .map(|m| (&m.truth, ids.guid(), Decimal::from(m.annual.round() as i64)))
                .collect();
            let body = documents::rsm022(&id, supplier, published, &points);
            messages.push(message(
                id,
                Queue::MasterData,
                DocumentKind::AccountingPointCharacteristics,
                body,
                group.len(),
                Duration::ZERO,
            ));
        }
        let id = ids.guid();
        let info: Vec<(String, &ChargeTruth)> = charges.iter().map(|c| (ids.guid(), c)).collect();
        let body = documents::rsm034_information(&id, supplier, published, &info);
        messages.push(message(
            id,
            Queue::Charges,
            DocumentKind::NotifyPriceList,
            body,
            info.len(),
            Duration::ZERO,
        ));
        let id = ids.guid();
        let prices: Vec<(String, &ChargeTruth, Vec<(TimeInterval, Vec<Decimal>)>)> = charges
            .iter()
            .zip(periods)
            .map(|(c, p)| (ids.guid(), c, p))
            .collect();
        let body = documents::rsm034_prices(&id, supplier, published, &prices);
        messages.push(message(
            id,
            Queue::Charges,
            DocumentKind::NotifyPriceList,
            body,
            prices.len(),
            Duration::ZERO,
        ));
        let per_mp = links.len() / mps.len().max(1);
        for group in links.chunks(rec * per_mp.max(1)) {
            let id = ids.guid();
            let records: Vec<(String, Gsrn, Vec<&LinkTruth>)> = group
                .chunks(per_mp.max(1))
                .map(|l| (ids.guid(), l[0].gsrn, l.iter().collect()))
                .collect();
            let body = documents::rsm031(&id, supplier, published, &records);
            let n = records.len();
            messages.push(message(
                id,
                Queue::Charges,
                DocumentKind::NotifyBillingMasterData,
                body,
                n,
                Duration::ZERO,
            ));
        }
    }

    // Aggregations per day: hourly sums per grid area and settlement method.
    if config.aggregations {
        for d in 0..config.days {
            let day = config.first_day + Days::new(u64::from(d));
            let interval = day_interval(day)?;
            let hours = Resolution::Hour
                .positions(interval.start, interval.end)
                .map_err(|e| ScenarioError::Config(e.0))? as usize;
            let mut sums: BTreeMap<(String, &'static str), Vec<Decimal>> = BTreeMap::new();
            for r in readings.iter().filter(|r| r.day == day) {
                let Some(mp) = mps.iter().find(|m| m.truth.gsrn == r.gsrn) else {
                    continue;
                };
                let key = (
                    mp.truth.grid_area.clone(),
                    mp.truth.settlement_method.as_str(),
                );
                let entry = sums
                    .entry(key)
                    .or_insert_with(|| vec![Decimal::ZERO; hours]);
                for p in &r.points {
                    let hour = match r.resolution {
                        Resolution::QuarterHour => (p.position as usize - 1) / 4,
                        _ => p.position as usize - 1,
                    };
                    if let (Some(slot), Some(q)) = (entry.get_mut(hour), p.quantity) {
                        *slot += q;
                    }
                }
            }
            let specs: Vec<AggregateSpec> = sums
                .into_iter()
                .map(|((area, method), hours)| AggregateSpec {
                    transaction_id: ids.guid(),
                    grid_area: area,
                    settlement_method: SettlementMethod::parse(method)
                        .unwrap_or(SettlementMethod::NonProfiled),
                    interval,
                    hours,
                })
                .collect();
            if specs.is_empty() {
                continue;
            }
            let id = ids.guid();
            let body = documents::rsm014(
                &id,
                supplier,
                interval.end + ChronoDuration::hours(6),
                &specs,
            );
            let n = specs.len();
            messages.push(message(
                id,
                Queue::Aggregations,
                DocumentKind::NotifyAggregatedMeasureData,
                body,
                n,
                day_release(d),
            ));
        }
    }

    inject_faults(config, faults, &mut messages, &mut ids)?;

    let from = day_interval(config.first_day)?.start;
    let to = day_interval(last_day)?.end;
    let mut spot = Vec::new();
    for area in PRICE_AREAS {
        spot.extend(spot_prices::prices(seed, area, from, to));
    }

    let truth = GroundTruth {
        seed,
        supplier_gln: supplier.to_string(),
        first_day: config.first_day,
        days: config.days,
        metering_points: mps.into_iter().map(|m| m.truth).collect(),
        readings,
        charges,
        links,
        spot_prices: spot,
        messages: messages
            .iter()
            .map(|m| MessageTruth {
                message_id: m.id.clone(),
                queue: m.queue,
                kind: m.kind,
                transactions: m.transactions,
                bytes: m.body.len(),
                fault: m.fault,
            })
            .collect(),
    };
    Ok(Scenario { truth, messages })
}

fn message(
    id: String,
    queue: Queue,
    kind: DocumentKind,
    body: Vec<u8>,
    transactions: usize,
    release_after: Duration,
) -> ScenarioMessage {
    ScenarioMessage {
        id,
        queue,
        kind: Some(kind),
        body: Bytes::from(body),
        transactions,
        release_after,
        fault: None,
    }
}

/// The quantities of one metering point on one day, initial and (maybe) corrected.
fn day_series(
    config: &ScenarioConfig,
    mp: &Mp,
    mp_index: usize,
    d: u32,
    interval: TimeInterval,
    rng: &mut Rng,
) -> DaySeries {
    let resolution = mp.truth.resolution;
    let count = resolution
        .positions(interval.start, interval.end)
        .unwrap_or(0);
    let quarters_per_position = if resolution == Resolution::Hour { 4 } else { 1 };
    let actual: Vec<Decimal> = (1..=count)
        .map(|p| {
            let start = resolution
                .position_start(interval.start, p)
                .unwrap_or(interval.start);
            let sum: f64 = (0..quarters_per_position)
                .map(|q| {
                    mp.truth.profile.quarter_kwh(
                        mp.annual,
                        start + ChronoDuration::minutes(15 * q),
                        rng,
                    )
                })
                .sum();
            kwh(sum)
        })
        .collect();
    let corrected = rng.chance(config.correction_share);
    let estimated = rng.chance(config.estimated_share);
    let missing = rng.chance(config.missing_share);
    let late = rng.chance(config.late_share);
    let mut initial: Vec<TruthPoint> = actual
        .iter()
        .enumerate()
        .map(|(i, q)| TruthPoint {
            position: i as u32 + 1,
            quantity: Some(*q),
            quality: Quality::AsProvided,
        })
        .collect();
    let n = initial.len() as u64;
    if estimated && n > 0 {
        let len = rng.range(4, 13).min(n);
        let start = rng.range(0, n - len + 1) as usize;
        for p in initial.iter_mut().skip(start).take(len as usize) {
            p.quality = Quality::Estimated;
            let factor = Decimal::from_f64_retain(rng.between(0.7, 1.3)).unwrap_or(Decimal::ONE);
            p.quantity = p.quantity.map(|q| (q * factor).round_dp(3));
        }
    }
    if missing && n > 0 {
        let len = rng.range(2, 9).min(n);
        let start = rng.range(0, n - len + 1) as usize;
        for p in initial.iter_mut().skip(start).take(len as usize) {
            p.quality = Quality::NotAvailable;
            p.quantity = None;
        }
    }
    let day_end = interval.end;
    let initial_registered = day_end
        + ChronoDuration::hours(2)
        + if late {
            ChronoDuration::days(2)
        } else {
            ChronoDuration::zero()
        };
    let correction = corrected.then(|| {
        let mut points: Vec<TruthPoint> = actual
            .iter()
            .enumerate()
            .map(|(i, q)| TruthPoint {
                position: i as u32 + 1,
                quantity: Some(*q),
                quality: Quality::AsProvided,
            })
            .collect();
        for _ in 0..3 {
            if n == 0 {
                break;
            }
            let i = rng.range(0, n) as usize;
            let factor = Decimal::from_f64_retain(rng.between(0.85, 1.15)).unwrap_or(Decimal::ONE);
            points[i].quantity = points[i].quantity.map(|q| (q * factor).round_dp(3));
        }
        let registered = day_end + ChronoDuration::days(5);
        (
            points,
            Rng::derive(config.seed, 4, mp_index as u64, u64::from(d)).guid(),
            registered,
        )
    });
    DaySeries {
        mp: mp_index,
        day: d,
        interval,
        initial,
        initial_id: Rng::derive(config.seed, 5, mp_index as u64, u64::from(d)).guid(),
        initial_registered,
        correction,
        late,
    }
}

/// The generator's quantities of `truth` on `day` for a metering point that became ours
/// after the scenario was generated (a confirmed move-in or change of supplier,
/// [`crate::lifecycle`]): complete and final (no estimates, gaps, corrections or delay),
/// reproducible from the seed, the GSRN and the day. `annual` is its yearly consumption.
pub(crate) fn supplied_day(
    seed: u64,
    truth: &MeteringPointTruth,
    annual: f64,
    day: NaiveDate,
) -> Result<(TimeInterval, Vec<TruthPoint>), ScenarioError> {
    let config = ScenarioConfig {
        seed,
        correction_share: 0.0,
        estimated_share: 0.0,
        missing_share: 0.0,
        late_share: 0.0,
        ..ScenarioConfig::default()
    };
    let interval = day_interval(day)?;
    let mp = Mp {
        truth: truth.clone(),
        annual,
        area: 0,
    };
    let index = gsrn_number(truth.gsrn);
    let days = (day - NaiveDate::default()).num_days().unsigned_abs();
    let mut rng = Rng::derive(seed, 6, index, days);
    let series = day_series(&config, &mp, index as usize, 0, interval, &mut rng);
    Ok((interval, series.initial))
}

/// A GSRN's digits as a number (a stream index for [`Rng::derive`]).
pub(crate) fn gsrn_number(gsrn: Gsrn) -> u64 {
    gsrn.to_string().parse().unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn bundle_series(
    config: &ScenarioConfig,
    mps: &[Mp],
    list: &[&DaySeries],
    corrections: bool,
    release_after: Duration,
    ids: &mut Rng,
    messages: &mut Vec<ScenarioMessage>,
    day_messages: &mut BTreeMap<(usize, u32), Vec<String>>,
) {
    for group in list.chunks(config.bundle_series as usize) {
        let id = ids.guid();
        let specs: Vec<SeriesSpec<'_>> = group
            .iter()
            .map(|s| {
                let (points, transaction_id, registered) = match (&s.correction, corrections) {
                    (Some((points, tid, reg)), true) => (points.as_slice(), tid.clone(), *reg),
                    _ => (
                        s.initial.as_slice(),
                        s.initial_id.clone(),
                        s.initial_registered,
                    ),
                };
                SeriesSpec {
                    transaction_id,
                    gsrn: mps[s.mp].truth.gsrn,
                    resolution: mps[s.mp].truth.resolution,
                    interval: s.interval,
                    registered,
                    points,
                }
            })
            .collect();
        let created = specs.iter().map(|s| s.registered).max().unwrap_or_default()
            + ChronoDuration::minutes(10);
        let body = documents::rsm012(&id, &config.supplier_gln, created, &specs);
        for s in group {
            day_messages
                .entry((s.mp, s.day))
                .or_default()
                .push(id.clone());
        }
        messages.push(message(
            id,
            Queue::Timeseries,
            DocumentKind::NotifyValidatedMeasureData,
            body,
            group.len(),
            release_after,
        ));
    }
}

/// The price points of a charge over `[from, to)` local months, and the same grouped per
/// month as RSM-034 price series.
#[allow(clippy::type_complexity)]
fn charge_truth(
    def: &ChargeDef,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(ChargeTruth, Vec<(TimeInterval, Vec<Decimal>)>), ScenarioError> {
    let no_rate = |day: NaiveDate| ScenarioError::NoRate {
        owner: def.owner_gln.to_string(),
        code: def.code.to_string(),
        day,
        coverage: def
            .coverage()
            .map(|(a, b)| format!("{a} to {b}"))
            .unwrap_or_else(|| "nothing".into()),
    };
    let mut prices = Vec::new();
    let mut by_month = Vec::new();
    let mut month = from;
    while month < to {
        let next = month + Months::new(1);
        let interval = TimeInterval {
            start: day_interval(month)?.start,
            end: day_interval(next)?.start,
        };
        let mut points = Vec::new();
        match def.resolution {
            Resolution::Month => {
                let price = def.price(month, 0).ok_or_else(|| no_rate(month))?;
                points.push(price);
                prices.push(PricePointTruth {
                    time: interval.start,
                    price,
                });
            }
            Resolution::Day => {
                let mut day = month;
                while day < next {
                    let price = def.price(day, 0).ok_or_else(|| no_rate(day))?;
                    points.push(price);
                    prices.push(PricePointTruth {
                        time: day_interval(day)?.start,
                        price,
                    });
                    day = day + Days::new(1);
                }
            }
            Resolution::Hour | Resolution::QuarterHour => {
                let mut t = interval.start;
                while t < interval.end {
                    let local = t.with_timezone(&Copenhagen);
                    let price = def
                        .price(local.date_naive(), local.hour())
                        .ok_or_else(|| no_rate(local.date_naive()))?;
                    points.push(price);
                    prices.push(PricePointTruth { time: t, price });
                    t += ChronoDuration::hours(1);
                }
            }
        }
        by_month.push((interval, points));
        month = next;
    }
    let valid_from = day_interval(from)?.start;
    let valid_to = day_interval(to)?.start;
    Ok((
        ChargeTruth {
            owner_gln: def.owner_gln.to_string(),
            kind: def.kind,
            code: def.code.to_string(),
            name: def.name.to_string(),
            resolution: def.resolution,
            tax: def.tax,
            vat_class: "D02".into(),
            valid_from,
            valid_to,
            prices,
            source: def.source.to_string(),
        },
        by_month,
    ))
}

/// Extra faulty messages: for each content fault with a rate > 0, `max(1, rate × messages)`
/// of them, spread over the queues and inserted among the scenario's messages.
fn inject_faults(
    config: &ScenarioConfig,
    faults: &FaultConfig,
    messages: &mut Vec<ScenarioMessage>,
    ids: &mut Rng,
) -> Result<(), ScenarioError> {
    let base_count = messages.len();
    let mut rng = Rng::derive(config.seed, 6, 0, 0);
    let mut n_queue = 0usize;
    for (fault, rate) in [
        (InjectedFault::MalformedJson, faults.malformed_json_rate),
        (
            InjectedFault::UnknownDocumentType,
            faults.unknown_document_type_rate,
        ),
        (InjectedFault::SchemaInvalid, faults.schema_invalid_rate),
    ] {
        if rate <= 0.0 {
            continue;
        }
        let count = ((rate * base_count as f64).round() as usize).max(1);
        for _ in 0..count {
            let queue = Queue::ALL[n_queue % Queue::ALL.len()];
            n_queue += 1;
            let id = ids.guid();
            // A small valid document of the codec's writer, then broken.
            let day = day_interval(config.first_day)?;
            let points: Vec<TruthPoint> = (1..=24)
                .map(|p| TruthPoint {
                    position: p,
                    quantity: Some(Decimal::new(i64::from(p) * 125, 3)),
                    quality: Quality::AsProvided,
                })
                .collect();
            let gsrn = Gsrn::with_check_digit("57131399999999999")
                .ok_or_else(|| ScenarioError::Config("fault GSRN".into()))?;
            let valid = documents::rsm012(
                &id,
                &config.supplier_gln,
                day.end,
                &[SeriesSpec {
                    transaction_id: ids.guid(),
                    gsrn,
                    resolution: Resolution::Hour,
                    interval: day,
                    registered: day.end,
                    points: &points,
                }],
            );
            let body = corrupt(&valid, fault);
            let positions: Vec<usize> = messages
                .iter()
                .enumerate()
                .filter(|(_, m)| m.queue == queue)
                .map(|(i, _)| i + 1)
                .collect();
            let at = if positions.is_empty() {
                messages.len()
            } else {
                positions[rng.range(0, positions.len() as u64) as usize]
            };
            let release_after = messages
                .get(at.saturating_sub(1))
                .map_or(Duration::ZERO, |m| m.release_after);
            messages.insert(
                at.min(messages.len()),
                ScenarioMessage {
                    id,
                    queue,
                    kind: None,
                    body: Bytes::from(body),
                    transactions: 1,
                    release_after,
                    fault: Some(fault),
                },
            );
        }
    }
    Ok(())
}
