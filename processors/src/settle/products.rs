//! The supplier's products as settle sees them: the static catalogue of its
//! settings (`--product-catalogue`, products and assignments) with the products
//! topic on top (decision 0130). A product on the topic replaces the file's
//! product of the same id entirely. The topic is a global table written by the
//! API: keyed by product id (UTF-8), one [`Product`] as JSON; keyed
//! `assignments:{gsrn}`, every product assignment of that metering point
//! (replacing the file's for it); keyed `default-product:`, the default
//! product (replacing the file's `--default-product`). See [`in_force`].
//!
//! Everything here is pure: the merge, the decoding, and which day a change
//! can matter from, so that settle re-settles only the months a product
//! change can touch.

use afregning_settlement::{Product, ProductAssignment, ProductCatalogue};
use chrono::NaiveDate;

/// Global table of the supplier's products (`afregning.settlement.products`).
pub const PRODUCTS_TABLE: &str = "products";

/// A product as the topic carries it, or why the bytes are not one. A product
/// whose id differs from its key, or that has no usable versions, is refused:
/// settle then keeps the file's product of that id (and says so in its log).
pub fn decode(key: &[u8], value: &[u8]) -> Result<Product, String> {
    let product: Product =
        serde_json::from_slice(value).map_err(|e| format!("not a product as JSON: {e}"))?;
    if product.id.as_bytes() != key {
        return Err(format!(
            "the product's id {:?} is not its key {:?}",
            product.id,
            String::from_utf8_lossy(key)
        ));
    }
    ProductCatalogue {
        products: vec![product.clone()],
        assignments: Vec::new(),
    }
    .validate()
    .map_err(|e| e.to_string())?;
    Ok(product)
}

/// The catalogue settle uses: `file`'s products, each replaced by the topic's
/// product of the same id where there is one, then the topic's other products
/// (in key order), and `file`'s assignments.
pub fn merged(file: &ProductCatalogue, topic: Vec<Product>) -> ProductCatalogue {
    let mut products: Vec<Product> = file
        .products
        .iter()
        .map(|p| {
            topic
                .iter()
                .find(|t| t.id == p.id)
                .cloned()
                .unwrap_or_else(|| p.clone())
        })
        .collect();
    for product in topic {
        if !products.iter().any(|p| p.id == product.id) {
            products.push(product);
        }
    }
    ProductCatalogue {
        products,
        assignments: file.assignments.clone(),
    }
}

/// The first local day a change of one product can affect: the earliest
/// version of the product before or after it, `None` when neither exists.
/// Deliberately not the first day whose terms differ: the processor's cached
/// catalogue is shared by its tasks, so "before" may already be "after" for
/// the second task to hear of a change; a month re-settled with unchanged
/// terms emits nothing, so marking from the first version is safe.
pub fn affected_from(old: Option<&Product>, new: Option<&Product>) -> Option<NaiveDate> {
    [old, new]
        .into_iter()
        .flatten()
        .flat_map(|p| p.versions.iter().map(|v| v.valid_from))
        .min()
}

/// Key prefix of a metering point's product assignments on the products topic
/// (`assignments:{gsrn}`); ':' is outside a product id's alphabet as the API
/// writes them, so the two kinds of keys never meet.
pub const ASSIGNMENTS_PREFIX: &str = "assignments:";
/// Key of the default product on the products topic.
pub const DEFAULT_PRODUCT_KEY: &str = "default-product:";

/// The default product as the topic carries it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DefaultProduct {
    /// The product of a metering point no assignment covers.
    pub product_id: String,
}

/// One record of the products topic, by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A product (key: its id).
    Product(Product),
    /// Every assignment of one metering point (key: [`ASSIGNMENTS_PREFIX`] + GSRN);
    /// they replace the file's assignments of that metering point.
    Assignments {
        /// The metering point.
        gsrn: String,
        /// Its periods (empty: none on the topic, the default product applies).
        periods: Vec<ProductAssignment>,
    },
    /// The default product (key: [`DEFAULT_PRODUCT_KEY`]).
    Default(String),
}

/// Any record of the products topic, or why it is not usable (settle then
/// ignores it and says so). Assignments must all be of the key's metering
/// point and must not overlap.
pub fn decode_entry(key: &[u8], value: &[u8]) -> Result<Entry, String> {
    let text = String::from_utf8_lossy(key);
    if let Some(gsrn) = text.strip_prefix(ASSIGNMENTS_PREFIX) {
        let periods: Vec<ProductAssignment> = serde_json::from_slice(value)
            .map_err(|e| format!("not product assignments as JSON: {e}"))?;
        if let Some(other) = periods.iter().find(|a| a.metering_point_id != gsrn) {
            return Err(format!(
                "an assignment of {} under the key of {gsrn}",
                other.metering_point_id
            ));
        }
        let mut check = periods.clone();
        check.sort_by_key(|a| a.valid_from);
        if check
            .iter()
            .any(|a| a.valid_to.is_some_and(|to| to <= a.valid_from))
            || check
                .windows(2)
                .any(|w| w[0].valid_to.is_none_or(|to| to > w[1].valid_from))
        {
            return Err(format!("the assignments of {gsrn} overlap or are empty"));
        }
        return Ok(Entry::Assignments {
            gsrn: gsrn.to_string(),
            periods,
        });
    }
    if text == DEFAULT_PRODUCT_KEY {
        let default: DefaultProduct = serde_json::from_slice(value)
            .map_err(|e| format!("not a default product as JSON: {e}"))?;
        return Ok(Entry::Default(default.product_id));
    }
    decode(key, value).map(Entry::Product)
}

/// The products, assignments and default product in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    /// Products and assignments.
    pub catalogue: ProductCatalogue,
    /// The product of a metering point no assignment covers.
    pub default_product: Option<String>,
}

/// What settle uses: [`merged`] products; the file's assignments except for
/// each metering point the topic has assignments of (the topic's replace
/// them); the topic's default product, else the file's. An assignment or a
/// default naming a product neither has is dropped (and logged by settle):
/// the metering point then has no terms from it.
pub fn in_force(
    file: &ProductCatalogue,
    file_default: Option<&str>,
    entries: Vec<Entry>,
) -> (InForce, Vec<String>) {
    let mut products = Vec::new();
    let mut assigned: std::collections::BTreeMap<String, Vec<ProductAssignment>> =
        std::collections::BTreeMap::new();
    let mut default_product = file_default.map(str::to_string);
    let mut topic_default = None;
    for entry in entries {
        match entry {
            Entry::Product(p) => products.push(p),
            Entry::Assignments { gsrn, periods } => {
                assigned.insert(gsrn, periods);
            }
            Entry::Default(id) => topic_default = Some(id),
        }
    }
    let mut catalogue = merged(file, products);
    let known = |id: &str| catalogue.products.iter().any(|p| p.id == id);
    let mut refused = Vec::new();
    let mut topic_assignments = Vec::new();
    for periods in assigned.values() {
        for a in periods {
            if known(&a.product_id) {
                topic_assignments.push(a.clone());
            } else {
                refused.push(format!(
                    "{} is assigned to unknown product {}",
                    a.metering_point_id, a.product_id
                ));
            }
        }
    }
    if let Some(id) = topic_default {
        if known(&id) {
            default_product = Some(id);
        } else {
            refused.push(format!("the default product {id} is unknown"));
        }
    }
    catalogue
        .assignments
        .retain(|a| !assigned.contains_key(&a.metering_point_id));
    catalogue.assignments.extend(topic_assignments);
    (
        InForce {
            catalogue,
            default_product,
        },
        refused,
    )
}

/// The first local day a change of one metering point's assignments can
/// affect: the earliest start among its periods before and after.
pub fn assignments_affected_from(
    old: &[ProductAssignment],
    new: &[ProductAssignment],
) -> Option<NaiveDate> {
    old.iter().chain(new).map(|a| a.valid_from).min()
}

#[cfg(test)]
mod tests {
    use afregning_settlement::{Margin, ProductAssignment, ProductVersion, VatClass};
    use rust_decimal_macros::dec;

    use super::*;

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).expect("date")
    }

    fn version(from: NaiveDate, margin: rust_decimal::Decimal) -> ProductVersion {
        ProductVersion {
            valid_from: from,
            margin: Margin::Flat { per_kwh: margin },
            subscription_per_month: dec!(19),
            vat_class: VatClass::Vat25,
        }
    }

    fn product(id: &str, versions: Vec<ProductVersion>) -> Product {
        Product {
            id: id.into(),
            name: format!("Product {id}"),
            versions,
        }
    }

    #[test]
    fn the_topic_replaces_the_files_product_and_keeps_its_assignments() {
        let file = ProductCatalogue {
            products: vec![
                product("a", vec![version(day(1, 1), dec!(0.1))]),
                product("b", vec![version(day(1, 1), dec!(0.2))]),
            ],
            assignments: vec![ProductAssignment {
                metering_point_id: "571313100000000001".into(),
                product_id: "a".into(),
                valid_from: day(1, 1),
                valid_to: None,
            }],
        };
        let changed = product(
            "a",
            vec![
                version(day(1, 1), dec!(0.1)),
                version(day(3, 15), dec!(0.3)),
            ],
        );
        let new = product("c", vec![version(day(2, 1), dec!(0.4))]);
        let merged = merged(&file, vec![changed.clone(), new.clone()]);
        assert_eq!(
            merged.products,
            vec![changed, file.products[1].clone(), new]
        );
        assert_eq!(merged.assignments, file.assignments);
        assert_eq!(
            super::merged(&file, Vec::new()),
            file,
            "no topic: the file as it is"
        );
    }

    #[test]
    fn a_change_matters_from_the_first_version_before_or_after_it() {
        let old = product(
            "a",
            vec![version(day(3, 1), dec!(0.2)), version(day(1, 1), dec!(0.1))],
        );
        let mut later = old.clone();
        later.versions.push(version(day(3, 15), dec!(0.3)));
        assert_eq!(affected_from(Some(&old), Some(&later)), Some(day(1, 1)));
        let new = product("b", vec![version(day(2, 1), dec!(0.2))]);
        assert_eq!(affected_from(None, Some(&new)), Some(day(2, 1)));
        assert_eq!(affected_from(Some(&old), None), Some(day(1, 1)));
        assert_eq!(affected_from(None, None), None);
    }

    #[test]
    fn only_a_valid_product_under_its_own_id_decodes() {
        let p = product("a", vec![version(day(1, 1), dec!(0.1))]);
        let json = serde_json::to_vec(&p).expect("json");
        assert_eq!(decode(b"a", &json), Ok(p.clone()));
        assert!(decode(b"b", &json).unwrap_err().contains("not its key"));
        assert!(decode(b"a", b"{").is_err());
        let empty = serde_json::to_vec(&product("a", Vec::new())).expect("json");
        assert!(decode(b"a", &empty).is_err());
    }

    #[test]
    fn the_topics_assignments_replace_the_files_for_their_metering_point() {
        let a = product("a", vec![version(day(1, 1), dec!(0.1))]);
        let b = product("b", vec![version(day(1, 1), dec!(0.2))]);
        let assign = |gsrn: &str, id: &str, from: NaiveDate| ProductAssignment {
            metering_point_id: gsrn.into(),
            product_id: id.into(),
            valid_from: from,
            valid_to: None,
        };
        let file = ProductCatalogue {
            products: vec![a.clone()],
            assignments: vec![assign("1", "a", day(1, 1)), assign("2", "a", day(1, 1))],
        };
        let json = serde_json::to_vec(&vec![assign("2", "b", day(3, 1))]).expect("json");
        let entry = decode_entry(b"assignments:2", &json).expect("assignments");
        let default =
            decode_entry(b"default-product:", br#"{"product_id": "b"}"#).expect("default");
        let unknown = Entry::Assignments {
            gsrn: "3".into(),
            periods: vec![assign("3", "zz", day(1, 1))],
        };
        let (got, refused) = in_force(
            &file,
            Some("a"),
            vec![Entry::Product(b.clone()), entry, default, unknown],
        );
        assert_eq!(got.catalogue.products, vec![a, b]);
        assert_eq!(
            got.catalogue.assignments,
            vec![assign("1", "a", day(1, 1)), assign("2", "b", day(3, 1))]
        );
        assert_eq!(got.default_product.as_deref(), Some("b"));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            decode_entry(b"assignments:9", &json).is_err(),
            "another metering point's"
        );
        let overlapping = serde_json::to_vec(&vec![
            assign("2", "b", day(3, 1)),
            assign("2", "a", day(3, 5)),
        ])
        .expect("json");
        assert!(decode_entry(b"assignments:2", &overlapping).is_err());
        assert_eq!(
            assignments_affected_from(
                &[assign("2", "a", day(1, 1))],
                &[assign("2", "b", day(3, 1))]
            ),
            Some(day(1, 1))
        );
    }
}
