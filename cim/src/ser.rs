//! Writing CIM JSON: a small indented JSON writer and the [`Write`] trait the models implement.
//!
//! The output looks like DataHub's (System.Text.Json, `Indented = true`: two spaces,
//! `"key": value`), keys in the order the model declares them, which is the order of
//! DataHub's writers and of the JSON schemas.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;

/// An indented JSON writer into a byte buffer; it cannot fail.
pub struct JsonWriter {
    buf: Vec<u8>,
    depth: usize,
    first: bool,
}

impl Default for JsonWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(4096),
            depth: 0,
            first: true,
        }
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn newline(&mut self) {
        self.buf.push(b'\n');
        for _ in 0..self.depth {
            self.buf.extend_from_slice(b"  ");
        }
    }

    /// `{`.
    pub fn begin_object(&mut self) {
        self.buf.push(b'{');
        self.depth += 1;
        self.first = true;
    }

    /// `}`.
    pub fn end_object(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        if !self.first {
            self.newline();
        }
        self.buf.push(b'}');
        self.first = false;
    }

    /// `[`.
    pub fn begin_array(&mut self) {
        self.buf.push(b'[');
        self.depth += 1;
        self.first = true;
    }

    /// `]`.
    pub fn end_array(&mut self) {
        self.end_object_like(b']');
    }

    fn end_object_like(&mut self, close: u8) {
        self.depth = self.depth.saturating_sub(1);
        if !self.first {
            self.newline();
        }
        self.buf.push(close);
        self.first = false;
    }

    /// Starts the next array element.
    pub fn element(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.newline();
        self.first = false;
    }

    /// Starts an object member: `"key": `.
    pub fn key(&mut self, key: &str) {
        self.element();
        self.string(key);
        self.buf.extend_from_slice(b": ");
    }

    /// A JSON string, escaped.
    pub fn string(&mut self, s: &str) {
        self.buf.push(b'"');
        for c in s.chars() {
            match c {
                '"' => self.buf.extend_from_slice(b"\\\""),
                '\\' => self.buf.extend_from_slice(b"\\\\"),
                '\n' => self.buf.extend_from_slice(b"\\n"),
                '\r' => self.buf.extend_from_slice(b"\\r"),
                '\t' => self.buf.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 => {
                    self.buf
                        .extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
                }
                c => {
                    let mut tmp = [0u8; 4];
                    self.buf
                        .extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
            }
        }
        self.buf.push(b'"');
    }

    /// Raw JSON text (numbers, `true`, a value kept byte-for-byte).
    pub fn raw(&mut self, text: &str) {
        self.buf.extend_from_slice(text.as_bytes());
    }
}

/// A model value that knows its CIM JSON form.
pub trait Write {
    /// Writes the value.
    fn write(&self, w: &mut JsonWriter);

    /// True for a value that is left out rather than written (an absent option).
    fn is_absent(&self) -> bool {
        false
    }
}

/// Writes `"key": value` unless the value is absent.
pub(crate) fn member<T: Write + ?Sized>(w: &mut JsonWriter, key: &str, value: &T) {
    if !value.is_absent() {
        w.key(key);
        value.write(w);
    }
}

/// Writes `"key": {"value": value}` unless the value is absent.
pub(crate) fn wrapped_member<T: Write + ?Sized>(w: &mut JsonWriter, key: &str, value: &T) {
    if !value.is_absent() {
        w.key(key);
        wrapped(w, value);
    }
}

/// Writes `{"value": value}`.
pub(crate) fn wrapped<T: Write + ?Sized>(w: &mut JsonWriter, value: &T) {
    w.begin_object();
    w.key("value");
    value.write(w);
    w.end_object();
}

impl<T: Write> Write for Option<T> {
    fn write(&self, w: &mut JsonWriter) {
        if let Some(value) = self {
            value.write(w);
        }
    }
    fn is_absent(&self) -> bool {
        self.is_none()
    }
}

impl<T: Write> Write for Vec<T> {
    fn write(&self, w: &mut JsonWriter) {
        w.begin_array();
        for item in self {
            w.element();
            item.write(w);
        }
        w.end_array();
    }
}

impl Write for String {
    fn write(&self, w: &mut JsonWriter) {
        w.string(self);
    }
}

impl Write for bool {
    fn write(&self, w: &mut JsonWriter) {
        w.raw(if *self { "true" } else { "false" });
    }
}

impl Write for u32 {
    fn write(&self, w: &mut JsonWriter) {
        w.raw(&self.to_string());
    }
}

/// Decimals are written as bare JSON numbers with their scale kept (`1.000` stays `1.000`).
impl Write for Decimal {
    fn write(&self, w: &mut JsonWriter) {
        w.raw(&self.to_string());
    }
}

/// Date-times with seconds (`createdDateTime`, `…_DateAndOrTime.dateTime`): `2024-07-30T07:30:54Z`,
/// with a fraction only when the value has one.
impl Write for DateTime<Utc> {
    fn write(&self, w: &mut JsonWriter) {
        w.string(&self.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    }
}

/// Writes a whole document: `{"<root>": body}` followed by no newline, as DataHub does.
pub(crate) fn document<T: Write>(root: &str, body: &T) -> Vec<u8> {
    let mut w = JsonWriter::new();
    w.begin_object();
    w.key(root);
    body.write(&mut w);
    w.end_object();
    w.into_bytes()
}
