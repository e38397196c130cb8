//! Lossless split of a bundle into one document per transaction, and the join back.
//!
//! The local Kafka broker delivers records up to about 1 MB, while DataHub bundles up to
//! 2,000 series (about 15 MB) in one RSM-012. [`split`] cuts a bundle into parts, one per
//! top-level transaction (`Series[]` or `MktActivityRecord[]` element): each part is a complete
//! document of the same type with the original header properties (their JSON text kept
//! byte-for-byte) and exactly one transaction, whose JSON text is also kept byte-for-byte.
//! [`join`] reassembles parts into a document equal, as a JSON value, to the original.
//!
//! Splitting checks only the envelope (JSON syntax, a known root, an object body); the
//! transactions are validated when each part is parsed.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::de::KeySeed;
use crate::document::DocumentKind;
use crate::error::{CimError, ErrorClass};
use crate::ser::JsonWriter;

/// One part of a split bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundlePart {
    /// 0-based position of the part's transaction in the original bundle.
    pub index: usize,
    /// Number of parts the bundle was split into.
    pub count: usize,
    /// The document type (same for every part).
    pub kind: DocumentKind,
    /// The transaction's `mRID` (the raw topic's key carries it next to the message id);
    /// `None` for a document without transactions or a transaction without a string `mRID`.
    pub transaction_id: Option<String>,
    /// A complete document: the original header and one transaction.
    pub bytes: Vec<u8>,
}

/// The properties of a JSON object in document order, values kept as raw text.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> de::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key_seed(KeySeed)? {
                    let value: &'de RawValue = map.next_value()?;
                    out.push((key, value));
                }
                Ok(Members(out))
            }
        }
        de.deserialize_map(V)
    }
}

/// A document cut open: root, header members (everything but the transactions), transactions.
struct Opened<'a> {
    kind: DocumentKind,
    root: Cow<'a, str>,
    header: Vec<(Cow<'a, str>, &'a RawValue)>,
    transactions: Option<Vec<&'a RawValue>>,
}

fn json_error(document: Option<&str>, path: &str, error: &serde_json::Error) -> CimError {
    let class = match error.classify() {
        serde_json::error::Category::Data => ErrorClass::SchemaViolation,
        _ => ErrorClass::MalformedJson,
    };
    CimError::new(class, document, path, error.to_string())
}

fn open(bytes: &[u8]) -> Result<Opened<'_>, CimError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let top: Members<'_> = serde_json::from_slice(bytes).map_err(|e| json_error(None, "$", &e))?;
    let mut top = top.0.into_iter();
    let Some((root, body)) = top.next() else {
        return Err(CimError::new(
            ErrorClass::UnknownDocumentType,
            None,
            "$",
            "empty object: no `<Name>_MarketDocument` property",
        ));
    };
    let Some(kind) = DocumentKind::from_root(&root) else {
        return Err(CimError::new(
            ErrorClass::UnknownDocumentType,
            None,
            "$",
            format!("`{root}` is not a document type this codec reads"),
        ));
    };
    let name = Some(kind.name());
    if let Some((extra, _)) = top.next() {
        return Err(CimError::new(
            ErrorClass::SchemaViolation,
            name,
            "$",
            format!("unknown property `{extra}`: a document has one root property"),
        ));
    }
    let mut root_path = String::from("$");
    crate::de::push_key(&mut root_path, &root);
    let members: Members<'_> =
        serde_json::from_str(body.get()).map_err(|e| json_error(name, &root_path, &e))?;
    let mut header = Vec::new();
    let mut transactions = None;
    for (key, value) in members.0 {
        if key == kind.transactions_key() {
            if transactions.is_some() {
                return Err(CimError::new(
                    ErrorClass::SchemaViolation,
                    name,
                    root_path.clone(),
                    format!("duplicate property `{key}`"),
                ));
            }
            let items: Vec<&RawValue> = serde_json::from_str(value.get()).map_err(|e| {
                let mut path = root_path.clone();
                crate::de::push_key(&mut path, &key);
                json_error(name, &path, &e)
            })?;
            transactions = Some(items);
        } else {
            header.push((key, value));
        }
    }
    Ok(Opened {
        kind,
        root,
        header,
        transactions,
    })
}

/// The `mRID` string of a raw transaction object.
fn transaction_id(raw: &RawValue) -> Option<String> {
    let members: Members<'_> = serde_json::from_str(raw.get()).ok()?;
    let (_, value) = members.0.into_iter().find(|(k, _)| k == "mRID")?;
    serde_json::from_str::<String>(value.get()).ok()
}

fn assemble<'a>(
    root: &str,
    header: &[(Cow<'a, str>, &'a RawValue)],
    tx_key: &str,
    transactions: Option<&[&'a RawValue]>,
) -> Vec<u8> {
    let mut w = JsonWriter::new();
    w.begin_object();
    w.key(root);
    w.begin_object();
    for (key, value) in header {
        w.key(key);
        w.raw(value.get());
    }
    if let Some(items) = transactions {
        w.key(tx_key);
        w.begin_array();
        for item in items {
            w.element();
            w.raw(item.get());
        }
        w.end_array();
    }
    w.end_object();
    w.end_object();
    w.into_bytes()
}

/// Splits a document into one part per top-level transaction. A document without
/// transactions becomes a single part holding the document unchanged.
pub fn split(bytes: &[u8]) -> Result<Vec<BundlePart>, CimError> {
    let opened = open(bytes)?;
    let kind = opened.kind;
    let items = opened.transactions.unwrap_or_default();
    if items.is_empty() {
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        return Ok(vec![BundlePart {
            index: 0,
            count: 1,
            kind,
            transaction_id: None,
            bytes: body.to_vec(),
        }]);
    }
    let count = items.len();
    Ok(items
        .iter()
        .enumerate()
        .map(|(index, item)| BundlePart {
            index,
            count,
            kind,
            transaction_id: transaction_id(item),
            bytes: assemble(
                &opened.root,
                &opened.header,
                kind.transactions_key(),
                Some(std::slice::from_ref(item)),
            ),
        })
        .collect())
}

/// Joins parts (in index order) into one document. Every part must be of the same document
/// type with the same header; otherwise the parts do not belong together (business-invalid).
pub fn join<B: AsRef<[u8]>>(parts: &[B]) -> Result<Vec<u8>, CimError> {
    let opened: Vec<Opened<'_>> = parts
        .iter()
        .map(|p| open(p.as_ref()))
        .collect::<Result<_, _>>()?;
    let Some(first) = opened.first() else {
        return Err(CimError::new(
            ErrorClass::BusinessInvalid,
            None,
            "$",
            "no parts to join",
        ));
    };
    let mut items = Vec::new();
    let mut any = false;
    for (i, part) in opened.iter().enumerate() {
        let same_header = part.header.len() == first.header.len()
            && part
                .header
                .iter()
                .zip(&first.header)
                .all(|((k1, v1), (k2, v2))| k1 == k2 && v1.get() == v2.get());
        if part.kind != first.kind || !same_header {
            return Err(CimError::new(
                ErrorClass::BusinessInvalid,
                Some(first.kind.name()),
                "$",
                format!("part {i} does not belong to the same document as part 0"),
            ));
        }
        if let Some(tx) = &part.transactions {
            any = true;
            items.extend_from_slice(tx);
        }
    }
    Ok(assemble(
        &first.root,
        &first.header,
        first.kind.transactions_key(),
        any.then_some(items.as_slice()),
    ))
}

/// Joins [`BundlePart`]s after checking that they are exactly the parts `0..count` of one split.
pub fn join_parts(parts: &[BundlePart]) -> Result<Vec<u8>, CimError> {
    let count = parts.first().map_or(0, |p| p.count);
    let mut ordered: Vec<&BundlePart> = parts.iter().collect();
    ordered.sort_by_key(|p| p.index);
    let complete = ordered.len() == count
        && ordered
            .iter()
            .enumerate()
            .all(|(i, p)| p.index == i && p.count == count);
    if !complete {
        return Err(CimError::new(
            ErrorClass::BusinessInvalid,
            parts.first().map(|p| p.kind.name()),
            "$",
            format!(
                "expected parts 0..{count} exactly once, got {} parts",
                parts.len()
            ),
        ));
    }
    let bytes: Vec<&[u8]> = ordered.iter().map(|p| p.bytes.as_slice()).collect();
    join(&bytes)
}
