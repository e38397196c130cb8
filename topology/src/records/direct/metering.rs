//! Direct codecs of readings, enriched readings, daily aggregates and their
//! keys, plus the pieces enrich splices with: a reading's head (everything
//! before the points) and the fields an enriched reading adds after it.

use chrono::{DateTime, Utc};

use super::binary::{self as b, ReadError, Reader, Sink};
use super::{DirectCodec, array, at};
use crate::records::{
    DailyAggregate, DailyAggregateKey, DatumError, EnrichedReading, HourlyEnergy, MeteringPointKey,
    QualityCount, Reading, ReadingPoint, RecordError, Resolution, SettlementMethod,
    TariffPeriodEnergy,
};

const READING: &str = "afregning.metering.Reading";
const READING_POINT: &str = "afregning.metering.ReadingPoint";
const ENRICHED: &str = "afregning.metering.EnrichedReading";
const DAILY: &str = "afregning.metering.DailyAggregate";
const HOURLY: &str = "afregning.metering.HourlyEnergy";
const TARIFF_PERIOD: &str = "afregning.metering.TariffPeriodEnergy";
const DAILY_KEY: &str = "afregning.metering.DailyAggregateKey";

/// kWh: `decimal(18, 3)`.
const KWH_SCALE: u32 = 3;
/// DKK and DKK per kWh: `decimal(18, 6)`.
const DKK_SCALE: u32 = 6;

impl DirectCodec for ReadingPoint {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::int(out, self.position);
        b::opt_decimal18(out, self.quantity, KWH_SCALE).map_err(at(READING_POINT, "quantity"))?;
        b::enumeration(out, self.quality);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            position: r.int()?,
            quantity: r.opt_decimal(KWH_SCALE)?,
            quality: r.enumeration()?,
        })
    }
}

impl DirectCodec for Reading {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.gsrn);
        b::string(out, &self.metering_point_type);
        b::enumeration(out, self.resolution);
        b::timestamp(out, &self.period_start).map_err(at(READING, "period_start"))?;
        b::timestamp(out, &self.period_end).map_err(at(READING, "period_end"))?;
        b::timestamp(out, &self.registered_at).map_err(at(READING, "registered_at"))?;
        b::string(out, &self.unit);
        b::opt_string(out, self.product.as_ref());
        b::opt_string(out, self.business_reason.as_ref());
        b::string(out, &self.source_message_id);
        b::string(out, &self.transaction_id);
        array(out, &self.points)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        let head = ReadingHead::decode(r)?;
        let points = r.array(ReadingPoint::decode)?;
        Ok(head.with_points(points))
    }
}

/// A reading without its points: what enrich needs to join master data and
/// name the output, read without touching the points.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingHead {
    /// GSRN.
    pub gsrn: String,
    /// DataHub metering point type code.
    pub metering_point_type: String,
    /// Length of one position.
    pub resolution: Resolution,
    /// Start of the period, inclusive.
    pub period_start: DateTime<Utc>,
    /// End of the period, exclusive.
    pub period_end: DateTime<Utc>,
    /// When the grid company registered the values.
    pub registered_at: DateTime<Utc>,
    /// Unit of the quantities.
    pub unit: String,
    /// Product code.
    pub product: Option<String>,
    /// Business reason of the document.
    pub business_reason: Option<String>,
    /// DataHub MessageId of the source document.
    pub source_message_id: String,
    /// Series mRID in the source document.
    pub transaction_id: String,
}

impl ReadingHead {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            gsrn: r.string()?,
            metering_point_type: r.string()?,
            resolution: r.enumeration()?,
            period_start: r.timestamp()?,
            period_end: r.timestamp()?,
            registered_at: r.timestamp()?,
            unit: r.string()?,
            product: r.opt_string()?,
            business_reason: r.opt_string()?,
            source_message_id: r.string()?,
            transaction_id: r.string()?,
        })
    }

    /// The reading with these fields and `points`.
    pub fn with_points(self, points: Vec<ReadingPoint>) -> Reading {
        Reading {
            gsrn: self.gsrn,
            metering_point_type: self.metering_point_type,
            resolution: self.resolution,
            period_start: self.period_start,
            period_end: self.period_end,
            registered_at: self.registered_at,
            unit: self.unit,
            product: self.product,
            business_reason: self.business_reason,
            source_message_id: self.source_message_id,
            transaction_id: self.transaction_id,
            points,
        }
    }
}

impl From<&Reading> for ReadingHead {
    fn from(r: &Reading) -> Self {
        Self {
            gsrn: r.gsrn.clone(),
            metering_point_type: r.metering_point_type.clone(),
            resolution: r.resolution,
            period_start: r.period_start,
            period_end: r.period_end,
            registered_at: r.registered_at,
            unit: r.unit.clone(),
            product: r.product.clone(),
            business_reason: r.business_reason.clone(),
            source_message_id: r.source_message_id.clone(),
            transaction_id: r.transaction_id.clone(),
        }
    }
}

/// Reads a Reading datum's head from the front of `datum` and checks its
/// points as the full reader would (without keeping them), advancing past
/// the whole datum: a reading the full decode refuses is refused here too.
pub fn read_reading_head(datum: &mut &[u8]) -> Result<ReadingHead, DatumError> {
    let mut r = Reader::new(datum);
    let head = ReadingHead::decode(&mut r)
        .and_then(|head| {
            loop {
                let n = r.block()?;
                if n == 0 {
                    return Ok(head);
                }
                for _ in 0..n {
                    ReadingPoint::decode(&mut r)?;
                }
            }
        })
        .map_err(|e| DatumError::Avro(format!("{READING}: {e}")))?;
    *datum = r.rest;
    Ok(head)
}

/// What an enriched reading adds after the reading, in schema order: an
/// EnrichedReading datum is the Reading datum followed by these fields, so
/// enrich copies the reading's bytes and appends this.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichedTail {
    /// Grid area code in the reading's period.
    pub grid_area: String,
    /// Bidding zone, when known.
    pub price_area: Option<String>,
    /// Settlement method in the reading's period.
    pub settlement_method: Option<SettlementMethod>,
    /// Energy supplier in the reading's period.
    pub energy_supplier_gln: Option<String>,
    /// `valid_from` of the master data version joined.
    pub master_data_valid_from: DateTime<Utc>,
}

impl EnrichedTail {
    /// Appends the fields after a Reading datum.
    pub fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        encode_tail(
            out,
            &self.grid_area,
            self.price_area.as_ref(),
            self.settlement_method,
            self.energy_supplier_gln.as_ref(),
            &self.master_data_valid_from,
        )
    }

    /// The enriched reading of `reading` with these fields.
    pub fn into_enriched(self, reading: Reading) -> EnrichedReading {
        EnrichedReading {
            reading,
            grid_area: self.grid_area,
            price_area: self.price_area,
            settlement_method: self.settlement_method,
            energy_supplier_gln: self.energy_supplier_gln,
            master_data_valid_from: self.master_data_valid_from,
        }
    }
}

fn encode_tail<S: Sink>(
    out: &mut S,
    grid_area: &str,
    price_area: Option<&String>,
    settlement_method: Option<SettlementMethod>,
    energy_supplier_gln: Option<&String>,
    master_data_valid_from: &DateTime<Utc>,
) -> Result<(), RecordError> {
    b::string(out, grid_area);
    b::opt_string(out, price_area);
    match settlement_method {
        None => b::long(out, 0),
        Some(m) => {
            b::long(out, 1);
            b::enumeration(out, m);
        }
    }
    b::opt_string(out, energy_supplier_gln);
    b::timestamp(out, master_data_valid_from).map_err(at(ENRICHED, "master_data_valid_from"))
}

impl DirectCodec for EnrichedReading {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        self.reading.encode(out)?;
        encode_tail(
            out,
            &self.grid_area,
            self.price_area.as_ref(),
            self.settlement_method,
            self.energy_supplier_gln.as_ref(),
            &self.master_data_valid_from,
        )
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            reading: Reading::decode(r)?,
            grid_area: r.string()?,
            price_area: r.opt_string()?,
            settlement_method: if r.present()? {
                Some(r.enumeration()?)
            } else {
                None
            },
            energy_supplier_gln: r.opt_string()?,
            master_data_valid_from: r.timestamp()?,
        })
    }
}

impl DirectCodec for HourlyEnergy {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::timestamp(out, &self.hour_start).map_err(at(HOURLY, "hour_start"))?;
        b::decimal18(out, self.kwh, KWH_SCALE).map_err(at(HOURLY, "kwh"))?;
        b::int(out, self.positions);
        b::opt_decimal18(out, self.spot_price_dkk_per_kwh, DKK_SCALE)
            .map_err(at(HOURLY, "spot_price_dkk_per_kwh"))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            hour_start: r.timestamp()?,
            kwh: r.decimal(KWH_SCALE)?,
            positions: r.int()?,
            spot_price_dkk_per_kwh: r.opt_decimal(DKK_SCALE)?,
        })
    }
}

impl DirectCodec for TariffPeriodEnergy {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.tariff_period);
        b::decimal18(out, self.kwh, KWH_SCALE).map_err(at(TARIFF_PERIOD, "kwh"))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            tariff_period: r.string()?,
            kwh: r.decimal(KWH_SCALE)?,
        })
    }
}

impl DirectCodec for QualityCount {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::enumeration(out, self.quality);
        b::int(out, self.positions);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            quality: r.enumeration()?,
            positions: r.int()?,
        })
    }
}

impl DirectCodec for DailyAggregate {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.gsrn);
        b::date(out, self.local_date).map_err(at(DAILY, "local_date"))?;
        b::timestamp(out, &self.day_start).map_err(at(DAILY, "day_start"))?;
        b::timestamp(out, &self.day_end).map_err(at(DAILY, "day_end"))?;
        b::string(out, &self.grid_area);
        b::opt_string(out, self.price_area.as_ref());
        b::enumeration(out, self.resolution);
        array(out, &self.hours)?;
        array(out, &self.tariff_periods)?;
        b::decimal18(out, self.total_kwh, KWH_SCALE).map_err(at(DAILY, "total_kwh"))?;
        b::opt_decimal18(out, self.spot_cost_dkk, DKK_SCALE).map_err(at(DAILY, "spot_cost_dkk"))?;
        b::int(out, self.expected_positions);
        b::int(out, self.received_positions);
        b::boolean(out, self.complete);
        array(out, &self.quality_counts)?;
        b::long(out, self.version);
        b::timestamp(out, &self.computed_at).map_err(at(DAILY, "computed_at"))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            gsrn: r.string()?,
            local_date: r.date()?,
            day_start: r.timestamp()?,
            day_end: r.timestamp()?,
            grid_area: r.string()?,
            price_area: r.opt_string()?,
            resolution: r.enumeration()?,
            hours: r.array(HourlyEnergy::decode)?,
            tariff_periods: r.array(TariffPeriodEnergy::decode)?,
            total_kwh: r.decimal(KWH_SCALE)?,
            spot_cost_dkk: r.opt_decimal(DKK_SCALE)?,
            expected_positions: r.int()?,
            received_positions: r.int()?,
            complete: r.boolean()?,
            quality_counts: r.array(QualityCount::decode)?,
            version: r.long()?,
            computed_at: r.timestamp()?,
        })
    }
}

impl DirectCodec for MeteringPointKey {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.gsrn);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self { gsrn: r.string()? })
    }
}

impl DirectCodec for DailyAggregateKey {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.gsrn);
        b::date(out, self.local_date).map_err(at(DAILY_KEY, "local_date"))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            gsrn: r.string()?,
            local_date: r.date()?,
        })
    }
}
