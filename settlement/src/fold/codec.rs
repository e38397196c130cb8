//! A compact, versioned binary form of [`Summary`], for the settle processor's state.
//!
//! Zigzag varints for counts, a scale byte and a varint mantissa for decimals, seconds
//! and nanoseconds for instants. A month's kept sums are a few hundred bytes where
//! JSON took kilobytes, and so are the changelog records that carry them. The first
//! byte is the format version; a reader refuses a version it does not know.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::charges::{ChargeKey, ChargeResolution, ChargeType, VatClass};
use crate::statement::{Component, LineSource, Unit};

use super::summary::{LineKey, LineSum, Multiset, Summary};

const FORMAT: u8 = 1;

/// Why bytes are not a summary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the value does.
    #[error("summary bytes end early")]
    Truncated,
    /// A format version this build does not read.
    #[error("summary format {0} is not known to this build")]
    Format(u8),
    /// A tag or value out of range.
    #[error("summary bytes hold an invalid {0}")]
    Invalid(&'static str),
}

const COMPONENTS: [Component; 10] = [
    Component::SpotEnergy,
    Component::SupplierMargin,
    Component::SupplierSubscription,
    Component::GridTariff,
    Component::GridSubscription,
    Component::GridFee,
    Component::EnerginetTariff,
    Component::EnerginetSubscription,
    Component::EnerginetFee,
    Component::ElectricityTax,
];
const CHARGE_TYPES: [ChargeType; 3] = [
    ChargeType::Subscription,
    ChargeType::Fee,
    ChargeType::Tariff,
];
const RESOLUTIONS: [ChargeResolution; 4] = [
    ChargeResolution::Pt15m,
    ChargeResolution::Pt1h,
    ChargeResolution::P1d,
    ChargeResolution::P1m,
];
const VAT_CLASSES: [VatClass; 2] = [VatClass::NoVat, VatClass::Vat25];
const UNITS: [Unit; 2] = [Unit::Kwh, Unit::Pieces];

fn index_of<T: PartialEq>(all: &[T], value: &T) -> u8 {
    all.iter()
        .position(|v| v == value)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(u8::MAX)
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn varint(&mut self, mut v: u128) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }
    fn int(&mut self, v: i128) {
        self.varint(((v << 1) ^ (v >> 127)) as u128);
    }
    fn count(&mut self, v: i64) {
        self.int(i128::from(v));
    }
    fn len(&mut self, n: usize) {
        self.varint(n as u128);
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn decimal(&mut self, d: Decimal) {
        self.u8(u8::try_from(d.scale()).unwrap_or(0));
        self.int(d.mantissa());
    }
    fn time(&mut self, t: DateTime<Utc>) {
        self.int(i128::from(t.timestamp()));
        self.varint(u128::from(t.timestamp_subsec_nanos()));
    }
    fn multiset<T: Ord>(&mut self, set: &Multiset<T>, mut item: impl FnMut(&mut Self, &T)) {
        self.len(set.0.len());
        for (value, count) in &set.0 {
            item(self, value);
            self.count(*count);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, DecodeError> {
        let (first, rest) = self.0.split_first().ok_or(DecodeError::Truncated)?;
        self.0 = rest;
        Ok(*first)
    }
    fn varint(&mut self) -> Result<u128, DecodeError> {
        let mut value = 0u128;
        for shift in (0..128).step_by(7) {
            let byte = self.u8()?;
            value |= u128::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Invalid("varint"))
    }
    fn int(&mut self) -> Result<i128, DecodeError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i128) ^ -((v & 1) as i128))
    }
    fn count(&mut self) -> Result<i64, DecodeError> {
        i64::try_from(self.int()?).map_err(|_| DecodeError::Invalid("count"))
    }
    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = usize::try_from(self.varint()?).map_err(|_| DecodeError::Invalid("length"))?;
        if n > self.0.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.len()?;
        let (bytes, rest) = self.0.split_at(n);
        self.0 = rest;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Invalid("string"))
    }
    fn decimal(&mut self) -> Result<Decimal, DecodeError> {
        let scale = u32::from(self.u8()?);
        Decimal::try_from_i128_with_scale(self.int()?, scale)
            .map_err(|_| DecodeError::Invalid("decimal"))
    }
    fn time(&mut self) -> Result<DateTime<Utc>, DecodeError> {
        let seconds = i64::try_from(self.int()?).map_err(|_| DecodeError::Invalid("time"))?;
        let nanos = u32::try_from(self.varint()?).map_err(|_| DecodeError::Invalid("time"))?;
        DateTime::from_timestamp(seconds, nanos).ok_or(DecodeError::Invalid("time"))
    }
    fn pick<T: Copy>(&mut self, all: &[T], what: &'static str) -> Result<T, DecodeError> {
        all.get(usize::from(self.u8()?))
            .copied()
            .ok_or(DecodeError::Invalid(what))
    }
    fn multiset<T: Ord + Clone>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Multiset<T>, DecodeError> {
        let n = self.varint()?;
        let mut set = Multiset::default();
        for _ in 0..n {
            let value = item(self)?;
            let count = self.count()?;
            set.add(value, count);
        }
        Ok(set)
    }
}

fn write_key(w: &mut Writer, key: &LineKey) {
    w.u8(index_of(&COMPONENTS, &key.component));
    match &key.source {
        LineSource::Spot => w.u8(0),
        LineSource::Margin { product_id } => {
            w.u8(1);
            match product_id {
                None => w.u8(0),
                Some(id) => {
                    w.u8(1);
                    w.str(id);
                }
            }
        }
        LineSource::ProductSubscription { product_id } => {
            w.u8(2);
            w.str(product_id);
        }
        LineSource::Charge {
            key,
            resolution,
            tax,
        } => {
            w.u8(3);
            w.str(&key.code);
            w.str(&key.owner);
            w.u8(index_of(&CHARGE_TYPES, &key.charge_type));
            w.u8(index_of(&RESOLUTIONS, resolution));
            w.u8(u8::from(*tax));
        }
    }
    w.u8(index_of(&VAT_CLASSES, &key.vat_class));
    w.u8(index_of(&UNITS, &key.unit));
}

fn read_key(r: &mut Reader<'_>) -> Result<LineKey, DecodeError> {
    let component = r.pick(&COMPONENTS, "component")?;
    let source = match r.u8()? {
        0 => LineSource::Spot,
        1 => LineSource::Margin {
            product_id: match r.u8()? {
                0 => None,
                _ => Some(r.str()?),
            },
        },
        2 => LineSource::ProductSubscription {
            product_id: r.str()?,
        },
        3 => {
            let code = r.str()?;
            let owner = r.str()?;
            let charge_type = r.pick(&CHARGE_TYPES, "charge type")?;
            LineSource::Charge {
                key: ChargeKey {
                    code,
                    owner,
                    charge_type,
                },
                resolution: r.pick(&RESOLUTIONS, "resolution")?,
                tax: r.u8()? != 0,
            }
        }
        _ => return Err(DecodeError::Invalid("line source")),
    };
    Ok(LineKey {
        component,
        source,
        vat_class: r.pick(&VAT_CLASSES, "VAT class")?,
        unit: r.pick(&UNITS, "unit")?,
    })
}

impl Summary {
    /// The compact binary form (details kept for explaining are not part of it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64 + 48 * self.lines.len()));
        w.u8(FORMAT);
        w.len(self.lines.len());
        for (key, sum) in &self.lines {
            write_key(&mut w, key);
            w.decimal(sum.quantity);
            w.decimal(sum.known);
            w.count(sum.details);
            w.count(sum.missing_prices);
            w.count(sum.missing_positions);
            for q in sum.qualities {
                w.count(q);
            }
            w.multiset(&sum.min_price, |w, d| w.decimal(*d));
            w.multiset(&sum.max_price, |w, d| w.decimal(*d));
            w.multiset(&sum.first_unpriced, |w, t| w.time(*t));
        }
        w.count(self.missing_positions);
        w.multiset(&self.first_missing, |w, t| w.time(*t));
        w.count(self.ignored);
        w.multiset(&self.no_product, |w, (index, from, to)| {
            w.len(*index);
            w.time(*from);
            w.time(*to);
        });
        w.0
    }

    /// Reads the form [`Self::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader(bytes);
        let format = r.u8()?;
        if format != FORMAT {
            return Err(DecodeError::Format(format));
        }
        let mut summary = Summary::default();
        let lines = r.varint()?;
        for _ in 0..lines {
            let key = read_key(&mut r)?;
            let quantity = r.decimal()?;
            let known = r.decimal()?;
            let details = r.count()?;
            let missing_prices = r.count()?;
            let missing_positions = r.count()?;
            let mut qualities = [0i64; 4];
            for q in &mut qualities {
                *q = r.count()?;
            }
            let sum = LineSum {
                quantity,
                known,
                details,
                missing_prices,
                missing_positions,
                qualities,
                min_price: r.multiset(|r| r.decimal())?,
                max_price: r.multiset(|r| r.decimal())?,
                first_unpriced: r.multiset(|r| r.time())?,
                explain: Vec::new(),
            };
            summary.lines.insert(key, sum);
        }
        summary.missing_positions = r.count()?;
        summary.first_missing = r.multiset(|r| r.time())?;
        summary.ignored = r.count()?;
        summary.no_product = r.multiset(|r| {
            let index = usize::try_from(r.varint()?).map_err(|_| DecodeError::Invalid("index"))?;
            Ok((index, r.time()?, r.time()?))
        })?;
        if !r.0.is_empty() {
            return Err(DecodeError::Invalid("trailing bytes"));
        }
        Ok(summary)
    }
}
