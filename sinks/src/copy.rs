//! PostgreSQL's binary `COPY` format, written from Rust values.
//!
//! Why binary and why our own framing: `COPY ... FROM STDIN (FORMAT binary)`
//! is the fastest way into PostgreSQL (no per-row parse, no text round trip
//! of timestamps and decimals), and sqlx exposes the raw COPY stream
//! (`PgConnection::copy_in_raw`) but no row encoder. The format is small
//! (<https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4>):
//!
//! ```text
//! header   "PGCOPY\n\xff\r\n\0", flags i32 = 0, extension length i32 = 0
//! tuple    field count i16, then per field: length i32 (-1 = NULL) and the bytes
//! trailer  i16 = -1
//! ```
//!
//! Each field's bytes are the type's binary send format, which is exactly what
//! sqlx's `Encode<Postgres>` implementations write for bind parameters. So the
//! encoder here owns the framing and delegates values to sqlx (numeric,
//! timestamptz, date, integers, text, bytea), which keeps the error-prone part
//! (PostgreSQL's base-10000 numeric) in a well-tested crate. `jsonb` is the one
//! type written by hand (version byte 1, then the JSON text), because sqlx's
//! JSON encoder patches its output after type resolution, which a COPY stream
//! never goes through.

use sqlx::Postgres;
use sqlx::encode::{Encode, IsNull};
use sqlx::postgres::PgArgumentBuffer;

/// The 11-byte signature that opens every binary COPY stream.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Why a value could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode column {column} of a COPY row: {message}")]
pub struct CopyEncodeError {
    /// 0-based column within the row.
    pub column: usize,
    /// sqlx's reason (e.g. a decimal out of PostgreSQL's range).
    pub message: String,
}

/// A binary COPY stream being built, one row at a time.
///
/// Rows must be written completely: [`CopyWriter::row`] declares the field
/// count and the caller then pushes exactly that many fields. A debug
/// assertion checks it, because PostgreSQL would reject the stream anyway,
/// but with a less helpful message.
pub struct CopyWriter {
    buf: PgArgumentBuffer,
    rows: usize,
    expected_fields: usize,
    fields_in_row: usize,
}

impl Default for CopyWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CopyWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyWriter")
            .field("rows", &self.rows)
            .field("bytes", &self.buf.len())
            .finish()
    }
}

impl CopyWriter {
    /// An empty stream with the header written.
    pub fn new() -> Self {
        let mut buf = PgArgumentBuffer::default();
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Self {
            buf,
            rows: 0,
            expected_fields: 0,
            fields_in_row: 0,
        }
    }

    /// Starts a row of `fields` columns.
    pub fn row(&mut self, fields: usize) -> &mut Self {
        debug_assert_eq!(
            self.fields_in_row, self.expected_fields,
            "the previous COPY row is incomplete"
        );
        let count = i16::try_from(fields).expect("a COPY row has at most 32767 columns");
        self.buf.extend_from_slice(&count.to_be_bytes());
        self.rows += 1;
        self.expected_fields = fields;
        self.fields_in_row = 0;
        self
    }

    /// Appends one field in the binary format of its PostgreSQL type; `None`
    /// (for an `Option`) becomes NULL.
    pub fn field<'q, T>(&mut self, value: &T) -> Result<&mut Self, CopyEncodeError>
    where
        T: Encode<'q, Postgres>,
    {
        let column = self.fields_in_row;
        let length_at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        let start = self.buf.len();
        let is_null = value.encode_by_ref(&mut self.buf).map_err(|e| {
            self.buf.truncate(length_at);
            CopyEncodeError {
                column,
                message: e.to_string(),
            }
        })?;
        let length = match is_null {
            IsNull::Yes => {
                self.buf.truncate(start);
                -1i32
            }
            IsNull::No => i32::try_from(self.buf.len() - start).map_err(|_| CopyEncodeError {
                column,
                message: "a field longer than 2 GiB".into(),
            })?,
        };
        self.buf[length_at..start].copy_from_slice(&length.to_be_bytes());
        self.fields_in_row += 1;
        Ok(self)
    }

    /// Appends a NULL field.
    pub fn null(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
        self.fields_in_row += 1;
        self
    }

    /// Appends a `jsonb` field (binary format version 1 followed by the JSON
    /// text), or NULL for `None`.
    pub fn jsonb(&mut self, value: Option<&serde_json::Value>) -> &mut Self {
        match value {
            None => self.null(),
            Some(value) => {
                let text = value.to_string();
                let length = i32::try_from(text.len() + 1).expect("JSON under 2 GiB");
                self.buf.extend_from_slice(&length.to_be_bytes());
                self.buf.push(1);
                self.buf.extend_from_slice(text.as_bytes());
                self.fields_in_row += 1;
                self
            }
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes written so far (header included).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no row was written.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The complete stream, trailer appended, ready for `PgCopyIn::send`.
    pub fn finish(mut self) -> Vec<u8> {
        debug_assert_eq!(
            self.fields_in_row, self.expected_fields,
            "the last COPY row is incomplete"
        );
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        std::mem::take(&mut *self.buf)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};
    use rust_decimal::Decimal;

    use super::*;

    #[test]
    fn an_empty_stream_is_header_and_trailer() {
        let bytes = CopyWriter::new().finish();
        let mut expected = b"PGCOPY\n\xff\r\n\0".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn fields_are_length_prefixed_in_the_types_send_format() {
        let mut writer = CopyWriter::new();
        writer
            .row(5)
            .field(&"740")
            .unwrap()
            .field(&7i64)
            .unwrap()
            .field(&Option::<i32>::None)
            .unwrap()
            .field(&true)
            .unwrap()
            .field(&NaiveDate::from_ymd_opt(2000, 1, 2).unwrap())
            .unwrap();
        let bytes = writer.finish();
        let body = &bytes[19..bytes.len() - 2];
        let expected: Vec<u8> = [
            &[0u8, 5][..],             // 5 fields
            &[0, 0, 0, 3],             // text, 3 bytes
            b"740",                    //
            &[0, 0, 0, 8],             // int8
            &[0, 0, 0, 0, 0, 0, 0, 7], //
            &[0xff, 0xff, 0xff, 0xff], // NULL
            &[0, 0, 0, 1, 1],          // bool true
            &[0, 0, 0, 4, 0, 0, 0, 1], // date: days since 2000-01-01
        ]
        .concat();
        assert_eq!(body, expected);
    }

    #[test]
    fn timestamps_are_microseconds_since_2000_and_decimals_base_10000() {
        let mut writer = CopyWriter::new();
        writer
            .row(2)
            .field(&Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 1).unwrap())
            .unwrap()
            .field(&Decimal::new(12_345, 3)) // 12.345
            .unwrap();
        let bytes = writer.finish();
        let body = &bytes[19..bytes.len() - 2];
        // timestamptz: 1 s = 1,000,000 µs after the PostgreSQL epoch.
        assert_eq!(&body[2..14], &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40]);
        // numeric 12.345: ndigits 2, weight 0, sign +, dscale 3, digits 12 and 3450.
        assert_eq!(
            &body[14..],
            &[0, 0, 0, 12, 0, 2, 0, 0, 0, 0, 0, 3, 0, 12, 0x0d, 0x7a]
        );
    }

    #[test]
    fn jsonb_carries_its_version_byte() {
        let mut writer = CopyWriter::new();
        writer.row(1).jsonb(Some(&serde_json::json!({"a": 1})));
        let bytes = writer.finish();
        assert_eq!(&bytes[21..bytes.len() - 2], b"\0\0\0\x08\x01{\"a\":1}");
    }
}
