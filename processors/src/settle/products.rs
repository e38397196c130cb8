//! The supplier's products as settle sees them: the static catalogue of its
//! settings (`--product-catalogue`, products and assignments) with the products
//! topic on top (decision 0130). A product on the topic replaces the file's
//! product of the same id entirely; assignments and the default product stay
//! the file's. The topic is a global table keyed by product id (UTF-8) whose
//! values are one [`Product`] as JSON, written by the API.
//!
//! Everything here is pure: the merge, the decoding, and which day a change
//! can matter from, so that settle re-settles only the months a product
//! change can touch.

use afregning_settlement::{Product, ProductCatalogue};
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
}
