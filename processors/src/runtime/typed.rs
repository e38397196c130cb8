//! Typed state: store handles with typed keys and versioned values, and the
//! "mark now, recompute at the tick" pattern as one facility.
//!
//! The runtime stores bytes ([`Context::get`]); processors think in keys and values.
//! A [`TypedStore`] names a store once with its key and value types:
//!
//! - a [`StoreKey`] encodes so that byte order is key order (text parts joined by
//!   `0x1f`, dates as `YYYY-MM-DD`), so prefix scans are range scans of the key's
//!   leading parts;
//! - a [`StoreValue`] starts with a format byte it checks on read, so a value written
//!   by another build is an error that names the format, never a misread.
//!
//! [`Marks`] keeps "recompute this at the next tick" markers in the same store, inside
//! the batch's atomic write like all state, so a crash between a change and the tick
//! loses no mark.

use std::marker::PhantomData;

use chrono::{Datelike, NaiveDate};

use super::{Context, ProcessError};

/// Separator of key parts: below every character a key part may hold.
pub const KEY_SEP: u8 = 0x1f;

/// A key whose byte encoding sorts as the key does.
pub trait StoreKey: Sized {
    /// Appends the key's bytes.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads a key from its bytes; `None` when they are not this key's.
    fn decode(bytes: &[u8]) -> Option<Self>;

    /// The key's bytes.
    fn to_key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        self.encode(&mut out);
        out
    }
}

/// A value with a format byte, so that stores can change format safely.
pub trait StoreValue: Sized {
    /// What the value is, for errors ("stored month").
    const WHAT: &'static str;
    /// The value's bytes, format byte first.
    fn encode(&self) -> Vec<u8>;
    /// Reads the value; an error names what is wrong.
    fn decode(bytes: &[u8]) -> Result<Self, String>;
}

/// Text key parts joined by [`KEY_SEP`]. Parts must not contain bytes at or below the
/// separator (GSRNs, month and date texts, codes never do).
pub fn join_parts(parts: &[&str], out: &mut Vec<u8>) {
    for (i, part) in parts.iter().enumerate() {
        debug_assert!(part.bytes().all(|b| b > KEY_SEP), "key part {part:?}");
        if i > 0 {
            out.push(KEY_SEP);
        }
        out.extend_from_slice(part.as_bytes());
    }
}

/// The parts of a key written by [`join_parts`].
pub fn split_parts(bytes: &[u8]) -> Option<Vec<&str>> {
    bytes
        .split(|b| *b == KEY_SEP)
        .map(|p| std::str::from_utf8(p).ok())
        .collect()
}

/// A date as a key part (`YYYY-MM-DD`: sorts as dates do for years 1000 to 9999).
///
/// Written from the date's numbers for the years 0–9999 (chrono's formatter cost about 300
/// instructions a key, and every day key of aggregate and settle takes one); chrono writes
/// the other years, which it signs.
pub fn date_part(date: NaiveDate) -> String {
    let mut out = String::with_capacity(10);
    if !push_year_month(&mut out, date.year(), date.month()) {
        return date.format("%Y-%m-%d").to_string();
    }
    out.push('-');
    push_two_digits(&mut out, date.day());
    out
}

/// Appends `YYYY-MM` as chrono's `%Y-%m` writes it, for the years 0–9999 (`false`, with
/// nothing written, for the others).
pub fn push_year_month(out: &mut String, year: i32, month: u32) -> bool {
    let Ok(year) = u32::try_from(year) else {
        return false;
    };
    if year > 9999 {
        return false;
    }
    push_two_digits(out, year / 100);
    push_two_digits(out, year % 100);
    out.push('-');
    push_two_digits(out, month);
    true
}

/// Appends `n` (below 100) as two digits.
fn push_two_digits(out: &mut String, n: u32) {
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// A date from its key part.
pub fn parse_date_part(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A named store with its key and value types.
#[derive(Debug)]
pub struct TypedStore<K, V> {
    name: &'static str,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for TypedStore<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for TypedStore<K, V> {}

impl<K: StoreKey, V: StoreValue> TypedStore<K, V> {
    /// The handle of store `name` (declared by the processor's `stores()`).
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            _types: PhantomData,
        }
    }

    /// The store's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value under `key`, this batch's writes included.
    pub fn get(&self, ctx: &Context<'_>, key: &K) -> Result<Option<V>, ProcessError> {
        ctx.get(self.name, &key.to_key())?
            .map(|bytes| {
                V::decode(&bytes).map_err(|e| ProcessError::failed(format!("{}: {e}", V::WHAT)))
            })
            .transpose()
    }

    /// Writes `value` under `key`.
    pub fn put(&self, ctx: &mut Context<'_>, key: &K, value: &V) -> Result<(), ProcessError> {
        ctx.put(self.name, &key.to_key(), &value.encode())?;
        Ok(())
    }

    /// Deletes `key`.
    pub fn delete(&self, ctx: &mut Context<'_>, key: &K) -> Result<(), ProcessError> {
        ctx.delete(self.name, &key.to_key())?;
        Ok(())
    }

    /// Every entry whose key starts with `prefix` (a key's leading parts, encoded), in
    /// key order. Entries whose key is not a `K` (markers sharing the store) are skipped.
    pub fn scan(&self, ctx: &Context<'_>, prefix: &[u8]) -> Result<Vec<(K, V)>, ProcessError> {
        let mut out = Vec::new();
        for (key, bytes) in ctx.scan_prefix(self.name, prefix)? {
            let Some(key) = K::decode(&key) else {
                continue;
            };
            let value =
                V::decode(&bytes).map_err(|e| ProcessError::failed(format!("{}: {e}", V::WHAT)))?;
            out.push((key, value));
        }
        Ok(out)
    }
}

/// Markers of keys to recompute at the next tick, kept in a processor's store under a
/// prefix of their own (`~name␟key`).
#[derive(Debug, Clone, Copy)]
pub struct Marks<K> {
    store: &'static str,
    prefix: &'static str,
    _key: PhantomData<fn() -> K>,
}

impl<K: StoreKey> Marks<K> {
    /// Marks under `~prefix␟` in `store`. The prefix starts with `~`, which sorts after
    /// every digit and letter, so marks never interleave with data keys.
    pub const fn new(store: &'static str, prefix: &'static str) -> Self {
        Self {
            store,
            prefix,
            _key: PhantomData,
        }
    }

    fn marker_prefix(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + 2);
        out.push(b'~');
        out.extend_from_slice(self.prefix.as_bytes());
        out.push(KEY_SEP);
        out
    }

    /// Marks `key` (idempotent).
    pub fn mark(&self, ctx: &mut Context<'_>, key: &K) -> Result<(), ProcessError> {
        let mut marker = self.marker_prefix();
        key.encode(&mut marker);
        ctx.put(self.store, &marker, b"")?;
        Ok(())
    }

    /// Removes a mark.
    pub fn unmark(&self, ctx: &mut Context<'_>, key: &K) -> Result<(), ProcessError> {
        let mut marker = self.marker_prefix();
        key.encode(&mut marker);
        ctx.delete(self.store, &marker)?;
        Ok(())
    }

    /// The marked keys whose encoding starts with `prefix`, in key order, without
    /// removing them.
    pub fn list(&self, ctx: &Context<'_>, prefix: &[u8]) -> Result<Vec<K>, ProcessError> {
        let mut scan = self.marker_prefix();
        let base = scan.len();
        scan.extend_from_slice(prefix);
        Ok(ctx
            .scan_prefix(self.store, &scan)?
            .into_iter()
            .filter_map(|(k, _)| K::decode(&k[base..]))
            .collect())
    }

    /// Every marked key, removed from the store in the same batch: what a tick
    /// recomputes.
    pub fn take(&self, ctx: &mut Context<'_>) -> Result<Vec<K>, ProcessError> {
        let prefix = self.marker_prefix();
        let mut keys = Vec::new();
        for (marker, _) in ctx.scan_prefix(self.store, &prefix)? {
            ctx.delete(self.store, &marker)?;
            if let Some(key) = K::decode(&marker[prefix.len()..]) {
                keys.push(key);
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Key(String, NaiveDate);

    impl StoreKey for Key {
        fn encode(&self, out: &mut Vec<u8>) {
            join_parts(&[&self.0, &date_part(self.1)], out);
        }
        fn decode(bytes: &[u8]) -> Option<Self> {
            match split_parts(bytes)?.as_slice() {
                [a, d] => Some(Key((*a).to_string(), parse_date_part(d)?)),
                _ => None,
            }
        }
    }

    #[test]
    fn date_parts_are_what_chrono_writes() {
        let mut date = NaiveDate::from_ymd_opt(-2, 1, 1).unwrap();
        let mut checked = 0;
        while date < NaiveDate::from_ymd_opt(3, 1, 1).unwrap() {
            assert_eq!(date_part(date), date.format("%Y-%m-%d").to_string());
            date = date.succ_opt().unwrap();
            checked += 1;
        }
        for (y, m, d) in [
            (999, 12, 31),
            (1000, 1, 1),
            (2024, 2, 29),
            (2026, 3, 29),
            (2026, 10, 25),
            (9999, 12, 31),
            (10000, 1, 1),
            (-1, 6, 15),
            (-10000, 1, 1),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(date_part(date), date.format("%Y-%m-%d").to_string());
            assert_eq!(parse_date_part(&date_part(date)), Some(date));
            checked += 1;
        }
        let mut day = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        while day.year() < 2030 {
            assert_eq!(date_part(day), day.format("%Y-%m-%d").to_string());
            day = day.succ_opt().unwrap();
        }
        assert!(checked > 1_000);
    }

    #[test]
    fn key_bytes_sort_as_keys_do_and_decode_back() {
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let mut keys = vec![
            Key("571313100000000002".into(), date(2026, 1, 2)),
            Key("571313100000000001".into(), date(2026, 12, 31)),
            Key("571313100000000001".into(), date(2026, 2, 1)),
            Key("57131310000000000".into(), date(2027, 1, 1)),
        ];
        let mut by_bytes: Vec<Vec<u8>> = keys.iter().map(StoreKey::to_key).collect();
        by_bytes.sort();
        keys.sort();
        let decoded: Vec<Key> = by_bytes.iter().map(|b| Key::decode(b).unwrap()).collect();
        assert_eq!(decoded, keys);
    }
}
