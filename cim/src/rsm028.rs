//! RSM-028 CharacteristicsOfACustomerAtAnAP: DataHub sends the supplier the customer master
//! data of a metering point (type E21 "Master data, Consumer"; after a confirmed change of
//! supplier or move-in, E03/E65, or a customer change, E34; lifecycle NOTES §1, §2.1): first
//! and second customer (CPR with coding scheme ARR, CVR with VAT, and name), protected name,
//! electrical heating, whether the metering point has a supplier, supply start and the
//! customer's addresses.
//!
//! Shape: **derived** from the XSD `rsm-028-customer-characteristics/urn-ediel-org-structure-characteristicsofacustomeratanap-0-1.xsd`
//! with the CIM JSON conventions (no JSON schema or example is public; see `docs/cim.md`).
//!
//! **Personal data is sealed before it reaches a topic** (decision 0147): the connector
//! replaces each customer's number with `sealed:identity:<seal>` and the name with
//! `sealed:name:<seal>` before publishing. The reader therefore accepts, in place of a
//! number of at most 16 characters, a value that starts with [`SEALED`], and no length limit
//! on the contact fields the connector removes or seals.

use chrono::{DateTime, Utc};

use crate::codes::{CodingScheme, MessageType};
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::gsrn::Gsrn;
use crate::header::{Header, check_header};
use crate::rsm022::Address;

/// The prefix of a value the connector sealed (`sealed:identity:…`, `sealed:name:…`).
pub const SEALED: &str = "sealed:";

cim_object! {
    /// `CharacteristicsOfACustomerAtAnAP_MarketDocument` (type E21), DDZ → DDQ. Derived shape.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct CharacteristicsOfACustomerAtAnAP {
        flatten header: Header;
        /// `MktActivityRecord[]`: one per metering point.
        "MktActivityRecord" [nonempty] => records: Vec<CustomerRecord>,
    }
    check = check_document;
}

cim_object! {
    /// One metering point's customer data, valid from `validity_start`.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct CustomerRecord {
        /// `mRID`: the transaction id.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`: DataHub's process.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `originalTransactionIDReference_MktActivityRecord.mRID`: our request's transaction.
        "originalTransactionIDReference_MktActivityRecord.mRID" => original_transaction_id: Option<String>,
        /// `validityStart_DateAndOrTime.dateTime`: from when the data applies.
        "validityStart_DateAndOrTime.dateTime" => validity_start: DateTime<Utc>,
        /// `snapshot_DateAndOrTime.dateTime`.
        "snapshot_DateAndOrTime.dateTime" => snapshot: Option<DateTime<Utc>>,
        /// `MarketEvaluationPoint`.
        "MarketEvaluationPoint" => metering_point: CustomerPoint,
    }
}

cim_object! {
    /// The metering point and its customers (`MarketEvaluationPoint`).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct CustomerPoint {
        /// `mRID`: the GSRN.
        "mRID" => gsrn: Gsrn,
        /// `serviceCategory.ElectricalHeating`.
        "serviceCategory.ElectricalHeating" => electrical_heating: Option<bool>,
        /// `eletricalHeating_DateAndOrTime.dateTime` (the XSD's spelling): from when.
        "eletricalHeating_DateAndOrTime.dateTime" => electrical_heating_from: Option<DateTime<Utc>>,
        /// `firstCustomer_MarketParticipant.mRID`: CPR (ARR) or CVR (VAT).
        "firstCustomer_MarketParticipant.mRID" => first_customer_id: Option<CustomerId>,
        /// `firstCustomer_MarketParticipant.name`.
        "firstCustomer_MarketParticipant.name" => first_customer_name: Option<String>,
        /// `secondCustomer_MarketParticipant.mRID`.
        "secondCustomer_MarketParticipant.mRID" => second_customer_id: Option<CustomerId>,
        /// `secondCustomer_MarketParticipant.name`.
        "secondCustomer_MarketParticipant.name" => second_customer_name: Option<String>,
        /// `protectedName`: the customer's name and address are protected.
        "protectedName" => protected_name: Option<bool>,
        /// `hasEnergySupplier`.
        "hasEnergySupplier" => has_energy_supplier: Option<bool>,
        /// `supplyStart_DateAndOrTime.dateTime`.
        "supplyStart_DateAndOrTime.dateTime" => supply_start: Option<DateTime<Utc>>,
        /// `UsagePointLocation[]`: the customer's addresses.
        "UsagePointLocation" [default] => locations: Vec<CustomerLocation>,
    }
}

cim_object! {
    /// A customer's CPR (coding scheme ARR) or CVR (VAT), or its sealed form.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct CustomerId {
        /// `codingScheme`: ARR or VAT.
        "codingScheme" => coding_scheme: CodingScheme,
        /// The number (at most 16 characters), or `sealed:identity:<seal>`.
        "value" => value: String,
    }
    check = check_customer_id;
}

cim_object! {
    /// A customer address (`UsagePointLocation`).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct CustomerLocation {
        /// `type.value`: `AddressTypeList` (D01 legal, D04 technical, …).
        "type" [wrapped] => address_type: String,
        /// `geoInfoReference`: the DAR address id.
        "geoInfoReference" => geo_info_reference: Option<String>,
        /// `mainAddress`.
        "mainAddress" => address: Option<Address>,
        /// `name`: the addressee.
        "name" => name: Option<String>,
        /// `attn_Names.name`: for the attention of.
        "attn_Names.name" => attention: Option<String>,
        /// `phone1.ituPhone.value`.
        "phone1" => phone1: Option<ItuPhone>,
        /// `phone2.ituPhone.value`.
        "phone2" => phone2: Option<ItuPhone>,
        /// `electronicAddress.email1.value`.
        "electronicAddress" => email: Option<EmailAddress>,
        /// `protectedAddress`.
        "protectedAddress" => protected_address: Option<bool>,
    }
}

cim_object! {
    /// `TelephoneNumber`.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct ItuPhone {
        /// `ituPhone.value`.
        "ituPhone" [wrapped] => number: String,
    }
}

cim_object! {
    /// `ElectronicAddress`.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct EmailAddress {
        /// `email1.value`.
        "email1" [wrapped] => address: String,
    }
}

typed_io!(
    CharacteristicsOfACustomerAtAnAP,
    CharacteristicsOfACustomerAtAnAP
);

cim_document!(CharacteristicsOfACustomerAtAnAP, records, CustomerRecord);

fn check_document(doc: &CharacteristicsOfACustomerAtAnAP) -> Result<(), Finding> {
    check_header(&doc.header, false, &[MessageType::CUSTOMER_MASTER_DATA])
}

fn check_customer_id(id: &CustomerId) -> Result<(), Finding> {
    if id.coding_scheme != CodingScheme::CPR && id.coding_scheme != CodingScheme::CVR {
        return Err(Finding::schema(
            ".codingScheme",
            format!(
                "a customer is identified by ARR (CPR) or VAT (CVR), not {}",
                id.coding_scheme.as_str()
            ),
        ));
    }
    if !id.value.starts_with(SEALED) && id.value.chars().count() > 16 {
        // Never echo the value: it is a CPR or CVR.
        return Err(Finding::schema(
            ".value",
            "a customer id has at most 16 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Document;

    const XSD: &str = "../../shared/cim/rsm-028-customer-characteristics/urn-ediel-org-structure-characteristicsofacustomeratanap-0-1.xsd";

    /// The derived example (`cim/tests/fixtures/`) with the first customer's id and the
    /// names replaced.
    fn sample(first_id: &str, name: &str) -> String {
        include_str!("../tests/fixtures/rsm028-CharacteristicsOfACustomerAtAnAP.json")
            .replace("0801741527", first_id)
            .replace("Jens Testesen", name)
    }

    #[test]
    fn reads_writes_and_reads_back_the_same_model() {
        let doc = crate::parse(sample("0801741527", "Jens Testesen").as_bytes()).expect("parses");
        let Document::CharacteristicsOfACustomerAtAnAP(model) = &doc else {
            panic!("{:?}", doc.kind());
        };
        let point = &model.records[0].metering_point;
        assert_eq!(
            point.first_customer_id.as_ref().map(|c| c.coding_scheme),
            Some(CodingScheme::CPR)
        );
        assert_eq!(point.first_customer_name.as_deref(), Some("Jens Testesen"));
        assert_eq!(point.electrical_heating, Some(false));
        let back = crate::parse(&crate::write(&doc)).expect("reads back");
        assert_eq!(back, doc);
    }

    #[test]
    fn a_sealed_customer_is_read_a_long_number_or_another_scheme_is_not() {
        let sealed = sample("sealed:identity:v1.k1.00.ff", "sealed:name:v1.k1.00.ff");
        crate::parse(sealed.as_bytes()).expect("sealed values are read");
        let long = crate::parse(sample("01234567890123456", "x").as_bytes()).unwrap_err();
        assert!(long.reason.contains("at most 16"), "{}", long.reason);
        assert!(!long.reason.contains("01234567890123456"), "no echo");
        let gln = sample("0801741527", "x").replace("\"ARR\"", "\"A10\"");
        assert!(crate::parse(gln.as_bytes()).is_err());
    }

    #[test]
    fn every_property_written_is_an_element_of_the_xsd() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(XSD);
        let xsd = std::fs::read_to_string(path).expect("the RSM-028 XSD");
        let doc = crate::parse(sample("0801741527", "Jens").as_bytes()).expect("parses");
        let json: serde_json::Value = serde_json::from_slice(&crate::write(&doc)).expect("json");
        crate::rsm025::tests::assert_keys_in_xsd(&json, &xsd);
    }
}
