//! Personal data in what DataHub sends us, sealed before it reaches a topic (decision 0147).
//!
//! DataHub's RSM-028 (customer master data) carries the customer's CPR or CVR and name. The
//! connector publishes raw documents to the broker and keeps an inbound-message log; both
//! must hold these values only sealed. [`seal_customer_data`] replaces, in any document,
//! every customer identity object (`…Customer_MarketParticipant.mRID`, `…customer_…`) with
//! `sealed:identity:<seal>` and its name (`….name`) with `sealed:name:<seal>` — the same seal,
//! which holds identity and name, in the same form as our outbound placeholders
//! ([`crate::outbound`]), so the portfolio keeps the seal as DataHub's customer data. The
//! contact fields of a customer's address (`UsagePointLocation`: addressee, attention,
//! phones, e-mail) are removed: nothing uses them yet and they cannot be sealed without an
//! identity. Without a keyring nothing is sealed and the caller must not publish. Pure.

use serde_json::{Map, Value};

use crate::outbound::{SEALED_IDENTITY, SEALED_NAME};
use crate::personal::{Cpr, CustomerIdentity, Cvr, Keyring, PersonName, PersonalData, SealError};

/// Why a document with personal data cannot be sealed. No variant holds personal data.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InboundSealError {
    /// No portfolio keyring is configured.
    #[error(
        "it carries customer data (CPR/CVR, names) and there is no portfolio keyring to seal it with"
    )]
    NoKeyring,
    /// The body names customers but is not JSON: it cannot be sealed field by field.
    #[error("it names customers but is not a JSON document: it cannot be sealed")]
    NotJson,
    /// A customer id that is neither a 10-digit CPR (ARR) nor an 8-digit CVR (VAT).
    #[error("{0}: not a CPR (ARR, 10 digits) or CVR (VAT, 8 digits)")]
    BadIdentity(String),
    /// A name without a customer id to seal it with.
    #[error("{0}: a name without its customer id")]
    NameWithoutIdentity(String),
    /// Sealing failed (no active key).
    #[error("sealing: {0}")]
    Seal(#[from] SealError),
}

/// The marker of a customer property in any CIM document.
const CUSTOMER: &str = "ustomer_MarketParticipant.";
/// Contact fields of a customer address, removed.
const CONTACT_FIELDS: [&str; 5] = [
    "name",
    "attn_Names.name",
    "phone1",
    "phone2",
    "electronicAddress",
];

/// Whether `body` may name customers (a customer property or an address): what
/// [`seal_customer_data`] must seal before it is published.
pub fn names_customers(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.contains(CUSTOMER) || text.contains("UsagePointLocation")
}

/// `body` with its customers' personal data sealed, or `None` when it names no customer
/// (then it is published as it is). `Err` when it names customers and cannot be sealed: it
/// must then be neither published nor logged nor dequeued.
pub fn seal_customer_data(
    body: &[u8],
    keyring: Option<&Keyring>,
) -> Result<Option<Vec<u8>>, InboundSealError> {
    if !names_customers(body) {
        return Ok(None);
    }
    let keyring = keyring.ok_or(InboundSealError::NoKeyring)?;
    let mut value: Value = serde_json::from_slice(body).map_err(|_| InboundSealError::NotJson)?;
    seal_value(&mut value, keyring)?;
    serde_json::to_vec(&value)
        .map(Some)
        .map_err(|_| InboundSealError::NotJson)
}

fn seal_value(value: &mut Value, keyring: &Keyring) -> Result<(), InboundSealError> {
    match value {
        Value::Object(map) => {
            seal_customers(map, keyring)?;
            if let Some(Value::Array(locations)) = map.get_mut("UsagePointLocation") {
                for location in locations.iter_mut().filter_map(Value::as_object_mut) {
                    for field in CONTACT_FIELDS {
                        location.remove(field);
                    }
                }
            }
            for v in map.values_mut() {
                seal_value(v, keyring)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                seal_value(v, keyring)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Seals the customers named directly in `map`.
fn seal_customers(map: &mut Map<String, Value>, keyring: &Keyring) -> Result<(), InboundSealError> {
    let prefixes: Vec<String> = map
        .keys()
        .filter(|k| k.contains(CUSTOMER))
        .filter_map(|k| {
            k.strip_suffix(".mRID")
                .or_else(|| k.strip_suffix(".name"))
                .map(str::to_string)
        })
        .collect();
    for prefix in prefixes {
        let (id_key, name_key) = (format!("{prefix}.mRID"), format!("{prefix}.name"));
        let name = map
            .get(&name_key)
            .and_then(Value::as_str)
            .map(str::to_string);
        if name.as_deref().is_some_and(|n| n.starts_with(SEALED_NAME)) {
            continue;
        }
        let Some(id) = map.get_mut(&id_key).and_then(Value::as_object_mut) else {
            if name.is_some() {
                return Err(InboundSealError::NameWithoutIdentity(name_key));
            }
            continue;
        };
        let number = id.get("value").and_then(Value::as_str).unwrap_or_default();
        if number.starts_with(SEALED_IDENTITY) {
            continue;
        }
        let scheme = id.get("codingScheme").and_then(Value::as_str);
        let identity = match scheme {
            Some("ARR") => Cpr::parse(number).map(CustomerIdentity::Cpr),
            Some("VAT") => Cvr::parse(number).map(CustomerIdentity::Cvr),
            _ => None,
        }
        .ok_or_else(|| InboundSealError::BadIdentity(id_key.clone()))?;
        let sealed = keyring.seal(&PersonalData {
            identity,
            name: name.as_deref().and_then(PersonName::new),
        })?;
        id.insert(
            "value".into(),
            Value::from(format!("{SEALED_IDENTITY}{}", sealed.encode())),
        );
        if name.is_some() {
            map.insert(
                name_key,
                Value::from(format!("{SEALED_NAME}{}", sealed.encode())),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::open_placeholders;

    const CPR: &str = "0801741527";
    const NAME: &str = "Jens Testesen";

    /// The derived RSM-028 example of the CIM crate: a CPR with a name, a CVR, an address
    /// with addressee, phone and e-mail.
    fn rsm028() -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../cim/tests/fixtures/rsm028-CharacteristicsOfACustomerAtAnAP.json");
        std::fs::read_to_string(path).expect("the RSM-028 example")
    }

    fn keys() -> Keyring {
        let mut keys = Keyring::default();
        keys.generate("k1").expect("key");
        keys
    }

    #[test]
    fn customers_are_sealed_and_open_again_with_the_keyring() {
        let keys = keys();
        let sealed = seal_customer_data(rsm028().as_bytes(), Some(&keys))
            .expect("sealed")
            .expect("something to seal");
        let text = String::from_utf8(sealed.clone()).expect("utf-8");
        assert!(!text.contains(CPR) && !text.contains(NAME) && !text.contains("12345678"));
        assert!(
            !text.contains("phone1") && !text.contains("jens@"),
            "contact fields removed"
        );
        assert!(text.contains("8000"), "the address stays");
        // The CIM reader reads the sealed document; opening gives the numbers back.
        afregning_cim::parse(&sealed).expect("the sealed document parses");
        let opened = open_placeholders(&text, &keys).expect("opens");
        assert!(opened.contains(CPR) && opened.contains(NAME) && opened.contains("12345678"));
        // Sealing again changes nothing.
        assert_eq!(
            seal_customer_data(&sealed, Some(&keys)).expect("again"),
            Some(sealed)
        );
    }

    #[test]
    fn without_a_keyring_or_with_a_bad_number_nothing_is_sealed() {
        assert_eq!(
            seal_customer_data(rsm028().as_bytes(), None),
            Err(InboundSealError::NoKeyring)
        );
        let bad = rsm028().replace(CPR, "12");
        let err = seal_customer_data(bad.as_bytes(), Some(&keys())).unwrap_err();
        assert!(matches!(err, InboundSealError::BadIdentity(_)));
        assert!(!err.to_string().contains(NAME));
        assert_eq!(
            seal_customer_data(b"not json, customer_MarketParticipant.", Some(&keys())),
            Err(InboundSealError::NotJson)
        );
    }

    #[test]
    fn a_document_without_customers_is_left_alone() {
        let doc = rsm028()
            .replace("firstCustomer_MarketParticipant", "x")
            .replace("secondCustomer_MarketParticipant", "y")
            .replace("UsagePointLocation", "z");
        assert_eq!(seal_customer_data(doc.as_bytes(), None), Ok(None));
    }
}
