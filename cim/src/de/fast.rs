//! A first, fast attempt at reading a document, on our own tokenizer.
//!
//! serde_json spends about two thirds of a parse on work a CIM document does not need: it
//! skips DataHub's indentation one byte at a time (a third of the parse of an indented
//! RSM-012 series) and reads every key through its general string machinery. This module is
//! a serde [`Deserializer`] over the same UTF-8 text that does only what the model's
//! [`Read`](super::Read) impls ask for, and gives up ([`GaveUp`]) on anything else: an
//! escape in a string, a number that is not a plain integer where one is read, a value of
//! another type, any syntax error.
//!
//! It never reports an error of its own. [`read_document`](super::read_document) runs the
//! strict serde_json reader whenever this attempt gives up or the model rejects the
//! document, so every error, its class, path and text, is exactly what the strict reader
//! says. A document this reader accepts is one the strict reader accepts with the same
//! value: the same `Read` impls and business checks run on the same tokens, and the
//! tokenizer accepts only JSON the strict reader accepts (`tests::fast_reader_*` hold it to
//! that on DataHub's real documents and on random damage). See
//! `docs/decisions/0152-fast-first-cim-reader.md`.

use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The name under which [`number_text`](super::number_text) asks a deserializer for the text
/// of a JSON number as written; serde_json, which does not know it, hands itself to the
/// visitor, which reads its raw value instead.
pub(crate) const NUMBER_TEXT: &str = "$afregning_cim::number_text";

/// The name under which [`read_wrapped`](super::read_wrapped) asks for a wrapped value,
/// `{"value": …}`: this reader takes the braces and the key and hands the visitor the value
/// alone, as the one element of a sequence (a third of a time series point's cost went to
/// reading its wrapped position as an object of its own); serde_json, which does not know the
/// name, hands itself to the visitor, which reads the object.
pub(crate) const WRAPPED_VALUE: &str = "$afregning_cim::wrapped_value";

/// The fast attempt gave up; the strict reader decides. Carries nothing, so giving up
/// allocates nothing.
#[derive(Debug)]
pub(crate) struct GaveUp;

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the fast reader gave up")
    }
}

impl std::error::Error for GaveUp {}

impl de::Error for GaveUp {
    fn custom<T: fmt::Display>(_: T) -> Self {
        GaveUp
    }
}

/// The tokenizer: a position in the document's text.
pub(crate) struct FastReader<'de> {
    text: &'de str,
    pos: usize,
}

impl<'de> FastReader<'de> {
    /// A reader at the start of `text`.
    pub(crate) fn new(text: &'de str) -> Self {
        Self { text, pos: 0 }
    }

    /// Succeeds when only whitespace is left, as serde_json's `end` requires.
    pub(crate) fn end(&mut self) -> Result<(), GaveUp> {
        match self.peek_token() {
            None => Ok(()),
            Some(_) => Err(GaveUp),
        }
    }

    fn bytes(&self) -> &'de [u8] {
        self.text.as_bytes()
    }

    /// The next byte that is not JSON whitespace, not consumed.
    #[inline]
    fn peek_token(&mut self) -> Option<u8> {
        let byte = *self.bytes().get(self.pos)?;
        if byte > b' ' {
            return Some(byte);
        }
        self.skip_whitespace()
    }

    /// Skips whitespace. DataHub indents every line, so a run is mostly a line break and
    /// then spaces: after any whitespace byte the spaces that follow are skipped eight at a
    /// time, and the byte after them decides (a `\r`, `\t` or a run's tail of fewer than
    /// eight bytes goes round again).
    #[inline]
    fn skip_whitespace(&mut self) -> Option<u8> {
        let bytes = self.bytes();
        loop {
            let byte = *bytes.get(self.pos)?;
            if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(byte);
            }
            self.pos += 1;
            while let Some(word) = word_at(bytes, self.pos) {
                let differs = word ^ repeat(b' ');
                if differs != 0 {
                    self.pos += first_flagged(differs);
                    break;
                }
                self.pos += 8;
            }
        }
    }

    /// Consumes `byte` as the next token.
    fn expect(&mut self, byte: u8) -> Result<(), GaveUp> {
        if self.peek_token() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(GaveUp)
        }
    }

    /// A string with neither escapes nor control characters, borrowed; the opening quote is
    /// the next token.
    fn string(&mut self) -> Result<&'de str, GaveUp> {
        self.expect(b'"')?;
        let bytes = self.bytes();
        let start = self.pos;
        while let Some(word) = word_at(bytes, self.pos) {
            let special = zero_bytes(word ^ repeat(b'"'))
                | zero_bytes(word ^ repeat(b'\\'))
                | (word.wrapping_sub(repeat(0x20)) & !word & repeat(0x80));
            if special != 0 {
                self.pos += first_flagged(special);
                break;
            }
            self.pos += 8;
        }
        loop {
            let byte = *bytes.get(self.pos).ok_or(GaveUp)?;
            if byte == b'"' {
                let text = self.text.get(start..self.pos).ok_or(GaveUp)?;
                self.pos += 1;
                return Ok(text);
            }
            if byte == b'\\' || byte < 0x20 {
                return Err(GaveUp);
            }
            self.pos += 1;
        }
    }

    /// Digits from the current position; at least one.
    fn digits(&mut self) -> Result<(), GaveUp> {
        let bytes = self.bytes();
        let start = self.pos;
        while bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        if self.pos == start {
            Err(GaveUp)
        } else {
            Ok(())
        }
    }

    /// The text of a number in JSON's grammar, `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`,
    /// exactly as written.
    fn number(&mut self) -> Result<&'de str, GaveUp> {
        let first = self.peek_token().ok_or(GaveUp)?;
        let bytes = self.bytes();
        let start = self.pos;
        if first == b'-' {
            self.pos += 1;
        }
        match bytes.get(self.pos) {
            Some(b'0') => {
                self.pos += 1;
                if bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    return Err(GaveUp);
                }
            }
            Some(b'1'..=b'9') => self.digits()?,
            _ => return Err(GaveUp),
        }
        if bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            self.digits()?;
        }
        if matches!(bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits()?;
        }
        self.text.get(start..self.pos).ok_or(GaveUp)
    }

    /// A non-negative integer that fits `u64`; anything with a sign, fraction or exponent
    /// gives up (serde_json would read those as other number types).
    fn unsigned(&mut self) -> Result<u64, GaveUp> {
        let text = self.number()?;
        let mut value = 0u64;
        for byte in text.bytes() {
            if !byte.is_ascii_digit() {
                return Err(GaveUp);
            }
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(byte - b'0')))
                .ok_or(GaveUp)?;
        }
        Ok(value)
    }

    /// `true` or `false`.
    fn boolean(&mut self) -> Result<bool, GaveUp> {
        let rest = self.text.get(self.pos..).ok_or(GaveUp)?;
        let (value, len) = if rest.starts_with("true") {
            (true, 4)
        } else if rest.starts_with("false") {
            (false, 5)
        } else {
            return Err(GaveUp);
        };
        self.pos += len;
        Ok(value)
    }
}

/// The eight bytes at `pos` as a little-endian word (the first byte lowest), if there are eight.
#[inline]
fn word_at(bytes: &[u8], pos: usize) -> Option<u64> {
    let chunk = bytes.get(pos..pos.checked_add(8)?)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    Some(u64::from_le_bytes(word))
}

/// `byte` in each of a word's eight bytes.
const fn repeat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The high bit set in the lowest byte of `word` that is zero, and maybe in bytes above it
/// (a borrow can flag those), never below: so the lowest flag is exact.
#[inline]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(repeat(0x01)) & !word & repeat(0x80)
}

/// The index of the lowest byte with a flag (a non-zero bit) in a non-zero `word`.
#[inline]
fn first_flagged(word: u64) -> usize {
    (word.trailing_zeros() / 8) as usize
}

impl<'de> Deserializer<'de> for &mut FastReader<'de> {
    type Error = GaveUp;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, GaveUp> {
        Err(GaveUp)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        visitor.visit_borrowed_str(self.string()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.deserialize_str(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        visitor.visit_u64(self.unsigned()?)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.peek_token().ok_or(GaveUp)?;
        visitor.visit_bool(self.boolean()?)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, GaveUp> {
        match name {
            NUMBER_TEXT => visitor.visit_borrowed_str(self.number()?),
            WRAPPED_VALUE => {
                self.expect(b'{')?;
                if self.string()? != super::WRAPPED_KEY {
                    return Err(GaveUp);
                }
                self.expect(b':')?;
                let value = visitor.visit_seq(WrappedElement {
                    reader: &mut *self,
                    taken: false,
                })?;
                self.expect(b'}')?;
                Ok(value)
            }
            _ => Err(GaveUp),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.expect(b'{')?;
        let mut access = Members {
            reader: self,
            first: true,
            closed: false,
        };
        let value = visitor.visit_map(&mut access)?;
        if access.closed {
            Ok(value)
        } else {
            Err(GaveUp)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.expect(b'[')?;
        let mut access = Elements {
            reader: self,
            first: true,
            closed: false,
        };
        let value = visitor.visit_seq(&mut access)?;
        if access.closed {
            Ok(value)
        } else {
            Err(GaveUp)
        }
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u64 u128 f32 f64 char bytes byte_buf option unit
        unit_struct tuple tuple_struct struct enum identifier ignored_any
    }
}

/// The members of an object, after its `{`.
struct Members<'a, 'de> {
    reader: &'a mut FastReader<'de>,
    first: bool,
    closed: bool,
}

impl<'de> MapAccess<'de> for &mut Members<'_, 'de> {
    type Error = GaveUp;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, GaveUp> {
        if self.closed {
            return Err(GaveUp);
        }
        match self.reader.peek_token() {
            Some(b'}') => {
                self.reader.pos += 1;
                self.closed = true;
                return Ok(None);
            }
            Some(b',') if !self.first => self.reader.pos += 1,
            Some(b'"') if self.first => {}
            _ => return Err(GaveUp),
        }
        self.first = false;
        let key = self.reader.string()?;
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, GaveUp> {
        self.reader.expect(b':')?;
        seed.deserialize(&mut *self.reader)
    }
}

/// The value of `{"value": …}` after its key, as a sequence of one element.
struct WrappedElement<'a, 'de> {
    reader: &'a mut FastReader<'de>,
    taken: bool,
}

impl<'de> SeqAccess<'de> for WrappedElement<'_, 'de> {
    type Error = GaveUp;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, GaveUp> {
        if self.taken {
            return Ok(None);
        }
        self.taken = true;
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

/// The elements of an array, after its `[`.
struct Elements<'a, 'de> {
    reader: &'a mut FastReader<'de>,
    first: bool,
    closed: bool,
}

impl<'de> SeqAccess<'de> for &mut Elements<'_, 'de> {
    type Error = GaveUp;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, GaveUp> {
        if self.closed {
            return Err(GaveUp);
        }
        match self.reader.peek_token() {
            Some(b']') => {
                self.reader.pos += 1;
                self.closed = true;
                return Ok(None);
            }
            Some(b',') if !self.first => {
                self.reader.pos += 1;
                if self.reader.peek_token() == Some(b']') {
                    return Err(GaveUp);
                }
            }
            Some(_) if self.first => {}
            _ => return Err(GaveUp),
        }
        self.first = false;
        seed.deserialize(&mut *self.reader).map(Some)
    }
}
