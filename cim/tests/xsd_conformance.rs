//! The documents whose JSON shape is derived from an XSD (no JSON schema is public) are
//! checked against that XSD: every key the writer puts out is an element the XSD declares at
//! that place, every element the XSD requires (`minOccurs="1"`) is there, and each value has
//! the JSON form `docs/cim.md`'s conventions give its XSD type (a complex type is an object,
//! or an array when `maxOccurs="unbounded"`; a type with attributes is an object of the
//! attributes and `value`; a named simple type is `{"value": …}`; `xs:boolean` a boolean,
//! other built-in types a string). The XSDs are read as text: they are flat, generated files.

mod common;

use std::collections::HashMap;

use afregning_cim::{Document, DocumentKind, write};
use common::{samples, shared};
use serde_json::Value;

/// One `<xs:element>` of a complex type's sequence.
#[derive(Debug)]
struct Element {
    name: String,
    type_name: String,
    required: bool,
    many: bool,
}

/// What the XSD says about a named type.
#[derive(Debug)]
enum XsdType {
    /// A sequence of elements.
    Sequence(Vec<Element>),
    /// Simple content with attributes (`codingScheme`, `unit`).
    WithAttributes(Vec<String>),
    /// A named simple type: wrapped in `{"value": …}`.
    Simple,
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(&tag[start..end])
}

/// The named types of an XSD and its root element's type.
fn read_xsd(text: &str) -> (String, HashMap<String, XsdType>) {
    let mut types = HashMap::new();
    for (open, close) in [
        ("<xs:complexType name=\"", "</xs:complexType>"),
        ("<xs:simpleType name=\"", "</xs:simpleType>"),
    ] {
        let mut rest = text;
        while let Some(start) = rest.find(open) {
            let block_end = rest[start..].find(close).expect("closed") + start;
            let block = &rest[start..block_end];
            let name = attribute(block, "name").expect("a name").to_owned();
            let kind = if open.contains("simpleType") {
                XsdType::Simple
            } else if block.contains("<xs:simpleContent>") {
                XsdType::WithAttributes(
                    block
                        .split("<xs:attribute ")
                        .skip(1)
                        .filter_map(|a| attribute(&format!(" {a}"), "name").map(str::to_owned))
                        .collect(),
                )
            } else {
                XsdType::Sequence(
                    block
                        .split("<xs:element ")
                        .skip(1)
                        .map(|e| {
                            let tag = format!(" {}", &e[..e.find('>').expect("tag end")]);
                            Element {
                                name: attribute(&tag, "name").expect("name").to_owned(),
                                type_name: attribute(&tag, "type").expect("type").to_owned(),
                                required: attribute(&tag, "minOccurs") == Some("1"),
                                many: attribute(&tag, "maxOccurs") == Some("unbounded"),
                            }
                        })
                        .collect(),
                )
            };
            types.insert(name, kind);
            rest = &rest[block_end..];
        }
    }
    let root = text
        .find("<xs:element name=\"")
        .map(|i| &text[i..])
        .and_then(|t| attribute(t, "type"))
        .expect("a root element")
        .trim_start_matches("cim:")
        .to_owned();
    (root, types)
}

/// Every deviation of `value` (at `path`) from the XSD type `type_name`.
fn check(
    types: &HashMap<String, XsdType>,
    type_name: &str,
    value: &Value,
    path: &str,
    out: &mut Vec<String>,
) {
    let Some(local) = type_name.strip_prefix("cim:") else {
        let ok = match type_name {
            "xs:boolean" => value.is_boolean(),
            _ => value.is_string(),
        };
        if !ok {
            out.push(format!(
                "{path}: {value} is not the JSON form of {type_name}"
            ));
        }
        return;
    };
    match types.get(local) {
        None => out.push(format!("{path}: the XSD has no type {local}")),
        Some(XsdType::Simple) => match value.as_object() {
            Some(o) if o.len() == 1 && o.contains_key("value") => {}
            _ => out.push(format!("{path}: {local} is written {{\"value\": …}}")),
        },
        Some(XsdType::WithAttributes(attributes)) => match value.as_object() {
            Some(o) => {
                for key in o.keys() {
                    if key != "value" && !attributes.contains(key) {
                        out.push(format!("{path}.{key}: not an attribute of {local}"));
                    }
                }
                for a in attributes {
                    if !o.contains_key(a) {
                        out.push(format!("{path}: attribute {a} missing"));
                    }
                }
            }
            None => out.push(format!("{path}: {local} is an object")),
        },
        Some(XsdType::Sequence(elements)) => {
            let Some(o) = value.as_object() else {
                out.push(format!("{path}: {local} is an object"));
                return;
            };
            for (key, v) in o {
                let here = format!("{path}['{key}']");
                let Some(e) = elements.iter().find(|e| &e.name == key) else {
                    out.push(format!("{here}: {local} declares no such element"));
                    continue;
                };
                if e.many {
                    match v.as_array() {
                        Some(items) => {
                            for (i, item) in items.iter().enumerate() {
                                check(types, &e.type_name, item, &format!("{here}[{i}]"), out);
                            }
                        }
                        None => out.push(format!("{here}: maxOccurs unbounded is an array")),
                    }
                } else {
                    check(types, &e.type_name, v, &here, out);
                }
            }
            for e in elements.iter().filter(|e| e.required) {
                if !o.contains_key(&e.name) {
                    out.push(format!("{path}: required element {} missing", e.name));
                }
            }
        }
    }
}

fn xsd_of(kind: DocumentKind) -> Option<&'static str> {
    Some(match kind {
        DocumentKind::RequestReallocateChangeOfSupplier => {
            "rsm-003-reallocate-change-of-supplier/urn-ediel-org-structure-requestreallocatechangeofsupplier-0-1.xsd"
        }
        DocumentKind::RequestChangeCustomerCharacteristics => {
            "rsm-027-customer-characteristics/urn-ediel-org-structure-requestchangecustomercharacteristics-0-1.xsd"
        }
        DocumentKind::RequestEndOfSupply => {
            "rsm-005-end-of-supply/urn-ediel-org-structure-requestendofsupply-0-1.xsd"
        }
        _ => return None,
    })
}

fn deviations(doc: &Document) -> Vec<String> {
    let path = xsd_of(doc.kind()).expect("an XSD");
    let text = String::from_utf8(shared(path)).expect("utf-8");
    let (root, types) = read_xsd(&text);
    let json: Value = serde_json::from_slice(&write(doc)).expect("JSON");
    let body = json.get(doc.kind().root()).expect("the root property");
    let mut out = Vec::new();
    check(&types, &format!("cim:{root}"), body, "$", &mut out);
    out
}

#[test]
fn written_rsm003_rsm005_and_rsm027_conform_to_their_xsds() {
    let mut checked = Vec::new();
    for doc in samples() {
        if xsd_of(doc.kind()).is_none() {
            continue;
        }
        let found = deviations(&doc);
        assert!(found.is_empty(), "{}: {found:#?}", doc.kind());
        checked.push(doc.kind());
    }
    for kind in [
        DocumentKind::RequestReallocateChangeOfSupplier,
        DocumentKind::RequestChangeCustomerCharacteristics,
        DocumentKind::RequestEndOfSupply,
    ] {
        assert!(checked.contains(&kind), "no sample of {kind}");
    }
}

#[test]
fn the_xsd_check_catches_an_undeclared_or_missing_element() {
    let doc = samples()
        .into_iter()
        .find(|d| d.kind() == DocumentKind::RequestReallocateChangeOfSupplier)
        .expect("an RSM-003 sample");
    let text = String::from_utf8(write(&doc)).expect("utf-8");
    let (root, types) =
        read_xsd(&String::from_utf8(shared(xsd_of(doc.kind()).expect("xsd"))).expect("utf-8"));
    for broken in [
        text.replace("start_DateAndOrTime.dateTime", "end_DateAndOrTime.dateTime"),
        text.replace("\"createdDateTime\"", "\"created\""),
    ] {
        let json: Value = serde_json::from_str(&broken).expect("JSON");
        let mut out = Vec::new();
        check(
            &types,
            &format!("cim:{root}"),
            &json[doc.kind().root()],
            "$",
            &mut out,
        );
        assert_eq!(out.len(), 2, "one undeclared, one missing: {out:?}");
    }
}
