//! Avro binary primitives, written and read without `apache_avro::Value`.
//!
//! Why by hand: the generic path builds a `Value` tree per record (a boxed
//! union, an allocated decimal and enum symbol per quarter-hour value) and
//! resolves the schema on every call. These functions write exactly the bytes
//! apache-avro writes (zigzag varints, length-prefixed strings and bytes,
//! union and enum indexes, array blocks ending in 0) and read them with the
//! same checks, so the two paths are interchangeable byte for byte.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rust_decimal::Decimal;

use crate::records::avro::{AvroEnum, checked_mantissa};

/// Where encoded bytes go: a buffer, or nowhere when only the range checks
/// matter (validate's schema check).
pub trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A sink that keeps nothing: encoding into it runs only the checks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl Sink for Discard {
    #[inline]
    fn put(&mut self, _: &[u8]) {}
}

/// Bytes of an Avro `decimal` with precision 18, as apache-avro writes the
/// generic writer's value: 8 bytes of big-endian two's complement.
pub const DECIMAL18_LEN: usize = 8;

/// Writes a zigzag varint `long`.
#[inline]
pub fn long<S: Sink>(out: &mut S, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut buf = [0u8; 10];
    let mut i = 0;
    while z > 0x7F {
        buf[i] = 0x80 | (z & 0x7F) as u8;
        z >>= 7;
        i += 1;
    }
    buf[i] = z as u8;
    out.put(&buf[..=i]);
}

/// Writes an `int` (the same varint as a long).
#[inline]
pub fn int<S: Sink>(out: &mut S, n: i32) {
    long(out, i64::from(n));
}

/// Writes a `boolean`.
#[inline]
pub fn boolean<S: Sink>(out: &mut S, b: bool) {
    out.put(&[u8::from(b)]);
}

/// Writes a `string` (or `bytes`): length, then the bytes.
#[inline]
pub fn bytes<S: Sink>(out: &mut S, b: &[u8]) {
    long(out, b.len() as i64);
    out.put(b);
}

/// Writes a `string`.
#[inline]
pub fn string<S: Sink>(out: &mut S, s: &str) {
    bytes(out, s.as_bytes());
}

/// Writes an optional string as the union `["null", "string"]`.
#[inline]
pub fn opt_string<S: Sink>(out: &mut S, s: Option<&String>) {
    match s {
        None => long(out, 0),
        Some(s) => {
            long(out, 1);
            string(out, s);
        }
    }
}

/// Writes an enum's index; Rust's variants are the schema's symbols in
/// order (a test in `records` proves it for every schema).
#[inline]
pub fn enumeration<S: Sink, E: AvroEnum>(out: &mut S, e: E) {
    int(out, e.index() as i32);
}

/// Writes a `timestamp-millis`; refuses sub-millisecond instants with the
/// generic writer's words.
#[inline]
pub fn timestamp<S: Sink>(out: &mut S, t: &DateTime<Utc>) -> Result<(), String> {
    if !t.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        return Err(format!(
            "{t} has sub-millisecond precision; timestamp-millis would drop it"
        ));
    }
    long(out, t.timestamp_millis());
    Ok(())
}

const UNIX_EPOCH_DATE: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

/// Writes a `date` (days since 1970-01-01).
#[inline]
pub fn date<S: Sink>(out: &mut S, d: NaiveDate) -> Result<(), String> {
    let days = d.signed_duration_since(UNIX_EPOCH_DATE).num_days();
    let days = i32::try_from(days).map_err(|_| format!("{d} is out of range for an Avro date"))?;
    int(out, days);
    Ok(())
}

/// Writes a `bytes` decimal of precision 18 at `scale`, range-checked and
/// rescaled exactly as the generic writer does.
#[inline]
pub fn decimal18<S: Sink>(out: &mut S, value: Decimal, scale: u32) -> Result<(), String> {
    let mantissa = checked_mantissa(value, 18, scale)?;
    let full = mantissa.to_be_bytes();
    long(out, DECIMAL18_LEN as i64);
    out.put(&full[16 - DECIMAL18_LEN..]);
    Ok(())
}

/// Writes an optional decimal as the union `["null", decimal]`.
#[inline]
pub fn opt_decimal18<S: Sink>(
    out: &mut S,
    value: Option<Decimal>,
    scale: u32,
) -> Result<(), String> {
    match value {
        None => {
            long(out, 0);
            Ok(())
        }
        Some(v) => {
            long(out, 1);
            decimal18(out, v, scale)
        }
    }
}

/// Writes the block header of a non-empty array (its length); an empty
/// array is only the terminating 0 that [`array_end`] writes.
#[inline]
pub fn array_start<S: Sink>(out: &mut S, len: usize) {
    if len > 0 {
        long(out, len as i64);
    }
}

/// Ends an array.
#[inline]
pub fn array_end<S: Sink>(out: &mut S) {
    out.put(&[0]);
}

/// The signed value of a zigzag-encoded varint.
#[inline]
fn zigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Why bytes could not be read: malformed Avro, or a value the Rust type
/// cannot hold (as the generic reader refuses it).
pub type ReadError = String;

/// Reads Avro binary from the front of a slice, with the checks
/// apache-avro's decoder makes.
#[derive(Debug)]
pub struct Reader<'a> {
    /// What is left to read.
    pub rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader of `bytes`.
    pub fn new(rest: &'a [u8]) -> Self {
        Self { rest }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        match self.rest.split_at_checked(n) {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(head)
            }
            None => Err(format!(
                "unexpected end: {n} bytes wanted, {} left",
                self.rest.len()
            )),
        }
    }

    /// Reads a zigzag varint `long` (at most 10 bytes, as apache-avro).
    ///
    /// Most varints of a reading are one byte (positions below 64, union and enum
    /// indexes, decimal lengths): those are read without the loop.
    #[inline]
    pub fn long(&mut self) -> Result<i64, ReadError> {
        if let Some((&b, tail)) = self.rest.split_first()
            && b & 0x80 == 0
        {
            self.rest = tail;
            return Ok(zigzag(u64::from(b)));
        }
        self.long_from_bytes()
    }

    /// [`Self::long`] of a varint of any length.
    #[cold]
    fn long_from_bytes(&mut self) -> Result<i64, ReadError> {
        let mut z = 0u64;
        for j in 0..10 {
            let (&b, tail) = self
                .rest
                .split_first()
                .ok_or_else(|| "unexpected end in a varint".to_string())?;
            self.rest = tail;
            z |= u64::from(b & 0x7F) << (j * 7);
            if b & 0x80 == 0 {
                return Ok(zigzag(z));
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    /// Reads an `int`.
    #[inline]
    pub fn int(&mut self) -> Result<i32, ReadError> {
        let n = self.long()?;
        i32::try_from(n).map_err(|_| format!("int {n} out of range"))
    }

    /// Reads a `boolean` (0 or 1).
    #[inline]
    pub fn boolean(&mut self) -> Result<bool, ReadError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("boolean byte {b}")),
        }
    }

    /// Reads a length-prefixed `bytes`.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], ReadError> {
        let len = self.long()?;
        let len = usize::try_from(len).map_err(|_| format!("negative length {len}"))?;
        self.take(len)
    }

    /// Reads a `string`.
    #[inline]
    pub fn string(&mut self) -> Result<String, ReadError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|e| format!("string is not UTF-8: {e}"))
    }

    /// Reads the index of a `["null", T]` union: `false` for null.
    #[inline]
    pub fn present(&mut self) -> Result<bool, ReadError> {
        match self.long()? {
            0 => Ok(false),
            1 => Ok(true),
            i => Err(format!("union index {i} of a 2-variant union")),
        }
    }

    /// Reads an optional string.
    #[inline]
    pub fn opt_string(&mut self) -> Result<Option<String>, ReadError> {
        if self.present()? {
            self.string().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Reads an enum by index.
    #[inline]
    pub fn enumeration<E: AvroEnum>(&mut self) -> Result<E, ReadError> {
        let i = self.int()?;
        usize::try_from(i)
            .ok()
            .and_then(E::from_index)
            .ok_or_else(|| format!("index {i} is not a symbol of {}", E::AVRO_NAME))
    }

    /// Reads a `timestamp-millis`.
    #[inline]
    pub fn timestamp(&mut self) -> Result<DateTime<Utc>, ReadError> {
        let ms = self.long()?;
        DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| format!("timestamp {ms} ms is out of range"))
    }

    /// Reads a `date`.
    #[inline]
    pub fn date(&mut self) -> Result<NaiveDate, ReadError> {
        let days = self.int()?;
        UNIX_EPOCH_DATE
            .checked_add_signed(TimeDelta::days(i64::from(days)))
            .ok_or_else(|| format!("date {days} days after 1970-01-01 is out of range"))
    }

    /// Reads a `bytes` decimal at `scale`: any length up to 16 bytes (Java
    /// and Python writers send the minimal length), as the generic reader.
    #[inline]
    pub fn decimal(&mut self, scale: u32) -> Result<Decimal, ReadError> {
        let b = self.bytes()?;
        if b.len() > 16 {
            return Err(format!(
                "a decimal of {} bytes does not fit 128 bits",
                b.len()
            ));
        }
        // Zero is one byte (0x00) in every writer; apache-avro refuses an empty
        // decimal when it sign-extends it, and so does this reader.
        let Some(first) = b.first() else {
            return Err("a decimal of 0 bytes".into());
        };
        let fill = if first & 0x80 != 0 { 0xFF } else { 0x00 };
        if b.len() <= 8 && scale <= Decimal::MAX_SCALE {
            // Every quantity and amount of a reading: a 64-bit mantissa always fits.
            let mut full = [fill; 8];
            full[8 - b.len()..].copy_from_slice(b);
            return Ok(Decimal::new(i64::from_be_bytes(full), scale));
        }
        let mut full = [fill; 16];
        full[16 - b.len()..].copy_from_slice(b);
        let mantissa = i128::from_be_bytes(full);
        Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|e| e.to_string())
    }

    /// Reads an optional decimal.
    #[inline]
    pub fn opt_decimal(&mut self, scale: u32) -> Result<Option<Decimal>, ReadError> {
        if self.present()? {
            self.decimal(scale).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Reads the item count of the next array block; 0 ends the array. A
    /// negative count is followed by the block's byte size, which is skipped.
    #[inline]
    pub fn block(&mut self) -> Result<usize, ReadError> {
        let n = self.long()?;
        let n = if n < 0 {
            self.long()?;
            n.checked_neg()
                .ok_or_else(|| "block count overflows".to_string())?
        } else {
            n
        };
        usize::try_from(n).map_err(|_| format!("block count {n}"))
    }

    /// Reads a whole array of items with `item`.
    pub fn array<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, ReadError>,
    ) -> Result<Vec<T>, ReadError> {
        let mut out = Vec::new();
        loop {
            let n = self.block()?;
            if n == 0 {
                return Ok(out);
            }
            // Each item takes at least one byte: a count beyond what is left is malformed,
            // and must not allocate.
            if n > self.rest.len() {
                return Err(format!(
                    "array block of {n} items in {} bytes",
                    self.rest.len()
                ));
            }
            out.reserve(n);
            for _ in 0..n {
                out.push(item(self)?);
            }
        }
    }
}
