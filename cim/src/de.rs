//! Strict, path-aware reading on top of serde_json's streaming deserializer.
//!
//! Every model type implements [`Read`]: it pulls its value straight from the token stream
//! (no intermediate `serde_json::Value`), rejects unknown and duplicate keys, and reports the
//! first problem as a [`CimError`] with the JSON path where it happened. The path is a linked
//! list of stack frames, rendered to a string only when something fails, so the happy path
//! costs nothing for it. See `docs/decisions/0010-streaming-reader.md`.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{CimError, ErrorClass};

pub(crate) mod fast;

/// Where a value sits in the document, as a chain of stack frames.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    /// `$`.
    Root,
    /// `parent.key`.
    Key(&'a Path<'a>, &'a str),
    /// `parent[index]`.
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// `$.A.B[3]['dotted.key']`.
    pub(crate) fn render(&self) -> String {
        let mut frames = Vec::new();
        let mut cur = self;
        loop {
            match cur {
                Path::Root => break,
                Path::Key(parent, _) | Path::Index(parent, _) => {
                    frames.push(cur);
                    cur = parent;
                }
            }
        }
        let mut out = String::from("$");
        for frame in frames.iter().rev() {
            match frame {
                Path::Root => {}
                Path::Key(_, key) => push_key(&mut out, key),
                Path::Index(_, index) => {
                    out.push('[');
                    out.push_str(&index.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

/// Appends `.key`, or `['key']` when the key is not a plain identifier (CIM's dotted names).
pub(crate) fn push_key(out: &mut String, key: &str) {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        out.push('.');
        out.push_str(key);
    } else {
        out.push_str("['");
        for c in key.chars() {
            if c == '\'' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push_str("']");
    }
}

/// State shared by one parse: the document name once known, and the first failure.
#[derive(Default)]
pub(crate) struct Ctx {
    document: Cell<Option<&'static str>>,
    failure: RefCell<Option<CimError>>,
    foreign_at: RefCell<Option<String>>,
}

impl Ctx {
    pub(crate) fn set_document(&self, name: &'static str) {
        self.document.set(Some(name));
    }

    pub(crate) fn document(&self) -> Option<&'static str> {
        self.document.get()
    }

    /// Turns the outcome of a top-level read into the codec's error: our own finding if we
    /// made one, otherwise serde_json's (syntax → malformed JSON, type mismatch → schema).
    pub(crate) fn finish<T>(&self, result: Result<T, serde_json::Error>) -> Result<T, CimError> {
        match result {
            Ok(value) => Ok(value),
            Err(error) => {
                if let Some(failure) = self.failure.borrow_mut().take() {
                    return Err(failure);
                }
                let path = self
                    .foreign_at
                    .borrow_mut()
                    .take()
                    .unwrap_or_else(|| "$".to_owned());
                let class = match error.classify() {
                    serde_json::error::Category::Data => ErrorClass::SchemaViolation,
                    _ => ErrorClass::MalformedJson,
                };
                Err(CimError::new(
                    class,
                    self.document(),
                    path,
                    error.to_string(),
                ))
            }
        }
    }
}

/// A position in the document during a read: the shared context plus the current path.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) path: &'a Path<'a>,
}

impl<'a> At<'a> {
    /// The same context at another path.
    pub(crate) fn with<'b>(self, path: &'b Path<'b>) -> At<'b>
    where
        'a: 'b,
    {
        At {
            ctx: self.ctx,
            path,
        }
    }

    /// Records a finding (the first one wins) and returns the serde error that unwinds the read.
    pub(crate) fn fail<E: de::Error>(self, class: ErrorClass, reason: impl Into<String>) -> E {
        self.fail_at(class, self.path.render(), reason)
    }

    /// Like [`At::fail`] with an explicit path string (for checks that run after a value was read).
    pub(crate) fn fail_at<E: de::Error>(
        self,
        class: ErrorClass,
        path: String,
        reason: impl Into<String>,
    ) -> E {
        let mut failure = self.ctx.failure.borrow_mut();
        if failure.is_none() {
            *failure = Some(CimError::new(class, self.ctx.document(), path, reason));
        }
        E::custom("document rejected")
    }

    /// A schema violation at this path.
    pub(crate) fn schema<E: de::Error>(self, reason: impl Into<String>) -> E {
        self.fail(ErrorClass::SchemaViolation, reason)
    }

    /// A business-invalid finding at this path.
    pub(crate) fn business<E: de::Error>(self, reason: impl Into<String>) -> E {
        self.fail(ErrorClass::BusinessInvalid, reason)
    }

    /// Remembers where serde_json's own error (syntax, type mismatch) surfaced first.
    pub(crate) fn note<E>(self, error: E) -> E {
        if self.ctx.failure.borrow().is_none() {
            let mut at = self.ctx.foreign_at.borrow_mut();
            if at.is_none() {
                *at = Some(self.path.render());
            }
        }
        error
    }
}

/// A value that can be read strictly from CIM JSON.
pub(crate) trait Read<'de>: Sized {
    /// Reads the value at `at`.
    fn read<D: Deserializer<'de>>(de: D, at: At<'_>) -> Result<Self, D::Error>;

    /// The value of a property that is absent; `None` means the property is required.
    fn absent() -> Option<Self> {
        None
    }
}

/// The value read for a property, or its [`Read::absent`] value when it was not there.
pub(crate) fn or_absent<'de, T: Read<'de>>(value: Option<T>) -> Option<T> {
    value.or_else(T::absent)
}

/// Adapts [`Read`] to serde's seed API.
pub(crate) struct Seed<'a, T> {
    at: At<'a>,
    marker: PhantomData<fn() -> T>,
}

impl<'a, T> Seed<'a, T> {
    pub(crate) fn new(at: At<'a>) -> Self {
        Self {
            at,
            marker: PhantomData,
        }
    }
}

impl<'de, T: Read<'de>> DeserializeSeed<'de> for Seed<'_, T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<T, D::Error> {
        T::read(de, self.at)
    }
}

/// Reads `{"value": T}`, the CIM wrapping of coded and typed simple values.
pub(crate) struct WrappedSeed<'a, T>(Seed<'a, T>);

impl<'a, T> WrappedSeed<'a, T> {
    pub(crate) fn new(at: At<'a>) -> Self {
        Self(Seed::new(at))
    }
}

impl<'de, T: Read<'de>> DeserializeSeed<'de> for WrappedSeed<'_, T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<T, D::Error> {
        read_wrapped(de, self.0.at)
    }
}

/// The one property of a wrapped value, `{"value": …}`.
pub(crate) const WRAPPED_KEY: &str = "value";

/// Reads `{"value": T}` at `at`.
///
/// The fast reader, asked by name ([`fast::WRAPPED_VALUE`]), reads the braces and the key
/// itself and hands over only the value, as the single element of a sequence; serde_json,
/// which does not know the name, hands itself over and the object is read as any other.
pub(crate) fn read_wrapped<'de, D: Deserializer<'de>, T: Read<'de>>(
    de: D,
    at: At<'_>,
) -> Result<T, D::Error> {
    struct V<'a, T>(At<'a>, PhantomData<fn() -> T>);
    impl<'de, T: Read<'de>> Visitor<'de> for V<'_, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object {\"value\": …}")
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<T, D::Error> {
            de.deserialize_map(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
            let path = Path::Key(self.0.path, WRAPPED_KEY);
            let here = self.0.with(&path);
            match seq.next_element_seed(Seed::<T>::new(here))? {
                Some(value) => Ok(value),
                None => Err(de::Error::custom("a wrapped value without its value")),
            }
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            let at = self.0;
            let mut value = None;
            while let Some(key) = map.next_key_seed(KeySeed)? {
                let path = Path::Key(at.path, &key);
                let here = at.with(&path);
                if &*key != WRAPPED_KEY {
                    return Err(here.schema(format!(
                        "unknown property `{key}`: a wrapped value has only `value`"
                    )));
                }
                if value.is_some() {
                    return Err(here.schema("duplicate property `value`"));
                }
                value = Some(
                    map.next_value_seed(Seed::<T>::new(here))
                        .map_err(|e| here.note(e))?,
                );
            }
            match value {
                Some(value) => Ok(value),
                None => Err(at.schema("missing required property `value`")),
            }
        }
    }
    de.deserialize_newtype_struct(fast::WRAPPED_VALUE, V(at, PhantomData))
}

/// Reads an object key, borrowing it from the input when it has no escapes.
pub(crate) struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(CowStr)
    }
}

struct CowStr;

impl<'de> Visitor<'de> for CowStr {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Reads a string value (borrowed when possible).
pub(crate) fn read_str<'de, D: Deserializer<'de>>(de: D) -> Result<Cow<'de, str>, D::Error> {
    de.deserialize_str(CowStr)
}

impl<'de> Read<'de> for String {
    fn read<D: Deserializer<'de>>(de: D, _at: At<'_>) -> Result<Self, D::Error> {
        read_str(de).map(Cow::into_owned)
    }
}

impl<'de> Read<'de> for u32 {
    fn read<D: Deserializer<'de>>(de: D, _at: At<'_>) -> Result<Self, D::Error> {
        <u32 as de::Deserialize>::deserialize(de)
    }
}

impl<'de> Read<'de> for bool {
    fn read<D: Deserializer<'de>>(de: D, _at: At<'_>) -> Result<Self, D::Error> {
        <bool as de::Deserialize>::deserialize(de)
    }
}

impl<'de, T: Read<'de>> Read<'de> for Option<T> {
    fn read<D: Deserializer<'de>>(de: D, at: At<'_>) -> Result<Self, D::Error> {
        T::read(de, at).map(Some)
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
}

impl<'de, T: Read<'de>> Read<'de> for Vec<T> {
    fn read<D: Deserializer<'de>>(de: D, at: At<'_>) -> Result<Self, D::Error> {
        struct V<'a, T>(At<'a>, PhantomData<fn() -> T>);
        impl<'de, T: Read<'de>> Visitor<'de> for V<'_, T> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let at = self.0;
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                loop {
                    let path = Path::Index(at.path, out.len());
                    let here = at.with(&path);
                    match seq
                        .next_element_seed(Seed::<T>::new(here))
                        .map_err(|e| here.note(e))?
                    {
                        Some(item) => out.push(item),
                        None => return Ok(out),
                    }
                }
            }
        }
        de.deserialize_seq(V(at, PhantomData))
    }
}

/// Declares a CIM object: the model struct, its strict reader and its writer, from one
/// table of `"json key" => field: Type` lines, so the three can never disagree.
///
/// Flags after the key: `[wrapped]` the value sits in `{"value": …}`; `[default]` an absent
/// array reads as empty and an empty one is not written; `[nonempty]` the array must have an
/// element (JSON schema `minItems: 1`). `check = f` runs `f(&value) -> Result<(), Finding>`
/// after a successful read (business rules that need the whole object).
macro_rules! cim_object {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(flatten $flat:ident : $flty:ty;)?
            $(
                $(#[$fmeta:meta])*
                $key:literal $([$flag:ident])? => $field:ident : $ty:ty
            ),* $(,)?
        }
        $(check = $check:path;)?
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $(
                /// The document header: message id, parties, process, time.
                pub $flat: $flty,
            )?
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl<'de> $crate::de::Read<'de> for $name {
            fn read<D: serde::Deserializer<'de>>(
                de: D,
                at: $crate::de::At<'_>,
            ) -> Result<Self, D::Error> {
                struct V<'a>($crate::de::At<'a>);
                impl<'de> serde::de::Visitor<'de> for V<'_> {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("an object (", stringify!($name), ")"))
                    }
                    #[allow(unused_mut)]
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        let at = self.0;
                        $( let mut $flat = <$flty as $crate::de::Flatten<'de>>::Builder::default(); )?
                        $( let mut $field: Option<$ty> = None; )*
                        while let Some(key) = map.next_key_seed($crate::de::KeySeed)? {
                            let path = $crate::de::Path::Key(at.path, &key);
                            let here = at.with(&path);
                            match &*key {
                                $(
                                    $key => {
                                        if $field.is_some() {
                                            return Err(here.schema(concat!("duplicate property `", $key, "`")));
                                        }
                                        $field = Some(
                                            map.next_value_seed(
                                                $crate::de::cim_object!(@seed $($flag)? ; $ty ; here)
                                            ).map_err(|e| here.note(e))?,
                                        );
                                    }
                                )*
                                other => {
                                    $(
                                        if <$flty as $crate::de::Flatten<'de>>::take(&mut $flat, other, &mut map, here)? {
                                            continue;
                                        }
                                    )?
                                    return Err(here.schema(format!(
                                        concat!("unknown property `{}` in ", stringify!($name)),
                                        other
                                    )));
                                }
                            }
                        }
                        let value = $name {
                            $( $flat: <$flty as $crate::de::Flatten<'de>>::finish($flat, at)?, )?
                            $( $field: $crate::de::cim_object!(@finish $($flag)? ; $ty ; $field ; at ; $key), )*
                        };
                        $(
                            if let Err(finding) = $check(&value) {
                                return Err(finding.raise(at));
                            }
                        )?
                        Ok(value)
                    }
                }
                de.deserialize_map(V(at))
            }
        }

        impl $crate::ser::Write for $name {
            fn write(&self, w: &mut $crate::ser::JsonWriter) {
                w.begin_object();
                $( $crate::de::Flatten::write_flat(&self.$flat, w); )?
                $( $crate::de::cim_object!(@write $($flag)? ; $key ; &self.$field ; w); )*
                w.end_object();
            }
        }
    };

    (@seed ; $ty:ty ; $at:expr) => { $crate::de::Seed::<$ty>::new($at) };
    (@seed default ; $ty:ty ; $at:expr) => { $crate::de::Seed::<$ty>::new($at) };
    (@seed nonempty ; $ty:ty ; $at:expr) => { $crate::de::Seed::<$ty>::new($at) };
    (@seed wrapped ; $ty:ty ; $at:expr) => { $crate::de::WrappedSeed::<$ty>::new($at) };

    (@finish default ; $ty:ty ; $v:ident ; $at:ident ; $key:literal) => { $v.unwrap_or_default() };
    (@finish nonempty ; $ty:ty ; $v:ident ; $at:ident ; $key:literal) => {{
        let v = $crate::de::cim_object!(@finish ; $ty ; $v ; $at ; $key);
        if v.is_empty() {
            let path = $crate::de::Path::Key($at.path, $key);
            return Err($at.with(&path).schema("must have at least one element"));
        }
        v
    }};
    (@finish $($flag:ident)? ; $ty:ty ; $v:ident ; $at:ident ; $key:literal) => {
        match $crate::de::or_absent($v) {
            Some(v) => v,
            None => return Err($at.schema(concat!("missing required property `", $key, "`"))),
        }
    };

    (@write ; $key:literal ; $v:expr ; $w:ident) => { $crate::ser::member($w, $key, $v) };
    (@write nonempty ; $key:literal ; $v:expr ; $w:ident) => { $crate::ser::member($w, $key, $v) };
    (@write default ; $key:literal ; $v:expr ; $w:ident) => {
        if !$v.is_empty() { $crate::ser::member($w, $key, $v) }
    };
    (@write wrapped ; $key:literal ; $v:expr ; $w:ident) => { $crate::ser::wrapped_member($w, $key, $v) };
}

pub(crate) use cim_object;

/// Properties read into the enclosing object (the document header sits beside `Series`).
pub(crate) trait Flatten<'de>: Sized {
    /// Collects the properties while the enclosing object is read.
    type Builder: Default;
    /// Takes `key` if it belongs to this type; `Ok(false)` leaves it to the caller.
    fn take<A: MapAccess<'de>>(
        builder: &mut Self::Builder,
        key: &str,
        map: &mut A,
        at: At<'_>,
    ) -> Result<bool, A::Error>;
    /// Checks that required properties were there; `at` is the enclosing object.
    fn finish<E: de::Error>(builder: Self::Builder, at: At<'_>) -> Result<Self, E>;
    /// Writes the properties into the enclosing object.
    fn write_flat(&self, w: &mut crate::ser::JsonWriter);
}

/// A business-rule finding from a `check` function: a path relative to the checked object
/// (e.g. `.Point[7].position`) and the reason.
#[derive(Debug)]
pub(crate) struct Finding {
    pub(crate) class: ErrorClass,
    pub(crate) relative_path: String,
    pub(crate) reason: String,
}

impl Finding {
    /// A business-invalid finding at `relative_path` below the checked object.
    pub(crate) fn business(relative_path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::BusinessInvalid,
            relative_path: relative_path.into(),
            reason: reason.into(),
        }
    }

    /// A schema violation at `relative_path` below the checked object.
    pub(crate) fn schema(relative_path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::SchemaViolation,
            relative_path: relative_path.into(),
            reason: reason.into(),
        }
    }

    /// Records the finding against the object at `at`.
    pub(crate) fn raise<E: de::Error>(self, at: At<'_>) -> E {
        let mut path = at.path.render();
        path.push_str(&self.relative_path);
        at.fail_at(self.class, path, self.reason)
    }
}

/// Reads a whole document with a fresh context: strips a UTF-8 BOM, requires that nothing
/// but whitespace follows the value, and maps every failure to a [`CimError`].
///
/// A document that is UTF-8 throughout (checked once, in bulk) is first read by the fast
/// reader ([`fast`]); when that gives up, and for every document that is rejected, the strict
/// serde_json reader reads it again, so errors are always the strict reader's. A document that
/// is not UTF-8 is read as bytes by the strict reader, which reports the first bad string with
/// its position, as it always has.
pub(crate) fn read_document<'de, T: Read<'de>>(bytes: &'de [u8]) -> Result<T, CimError> {
    match read_document_fast(bytes) {
        Some(value) => Ok(value),
        None => read_document_strict(bytes),
    }
}

/// [`read_document`] on the strict reader alone: what the fast reader is held to.
pub(crate) fn read_document_strict<'de, T: Read<'de>>(bytes: &'de [u8]) -> Result<T, CimError> {
    let bytes = strip_bom(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => read_from(serde_json::Deserializer::from_str(text)),
        Err(_) => read_from(serde_json::Deserializer::from_slice(bytes)),
    }
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// [`read_fast`] on raw bytes (BOM stripped, UTF-8 required).
pub(crate) fn read_document_fast<'de, T: Read<'de>>(bytes: &'de [u8]) -> Option<T> {
    read_fast(std::str::from_utf8(strip_bom(bytes)).ok()?)
}

/// The fast reader's attempt at a whole document: `None` when it gave up or the document was
/// rejected (the strict reader then says why).
fn read_fast<'de, T: Read<'de>>(text: &'de str) -> Option<T> {
    let ctx = Ctx::default();
    let root = Path::Root;
    let at = At {
        ctx: &ctx,
        path: &root,
    };
    let mut reader = fast::FastReader::new(text);
    let value = T::read(&mut reader, at).ok()?;
    reader.end().ok()?;
    Some(value)
}

fn read_from<'de, T: Read<'de>, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
) -> Result<T, CimError> {
    let ctx = Ctx::default();
    let root = Path::Root;
    let at = At {
        ctx: &ctx,
        path: &root,
    };
    let result = T::read(&mut de, at).and_then(|value| de.end().map(|()| value));
    ctx.finish(result)
}
