//! RSM-027 RequestChangeCustomerCharacteristics: the supplier sends DataHub the customer master
//! data of a metering point it supplies (BRS-015, process E34; lifecycle NOTES §2.9): first and
//! second customer (CPR with ARR, CVR with VAT, and name), protected name, electrical heating,
//! and the customer's addresses (`UsagePointLocation`, D01 legal / D04 technical). DataHub
//! answers with a confirm or reject ([`crate::answer`]) and sends RSM-028.
//!
//! Shape: **derived** from the XSD `rsm-027-customer-characteristics/urn-ediel-org-structure-requestchangecustomercharacteristics-0-1.xsd`
//! and DataHub's XML example with the CIM JSON conventions (see `docs/cim.md`); the example,
//! translated, is `cim/tests/fixtures/rsm027-RequestChangeCustomerCharacteristics.json`. The
//! addresses are RSM-028's ([`crate::rsm028::CustomerLocation`]; the two XSDs define them
//! alike); what we send is held to the XSD's address types and lengths here.
//! The XSD spells `eletricalHeating_DateAndOrTime.dateTime` (sic); so does this model.

use chrono::{DateTime, Utc};

use crate::codes::MessageType;
use crate::common::PartyId;
use crate::de::{Finding, cim_object};
use crate::document::{cim_document, typed_io};
use crate::gsrn::Gsrn;
use crate::header::{Header, check_header};
use crate::rsm028::CustomerLocation;

cim_object! {
    /// `RequestChangeCustomerCharacteristics_MarketDocument` (type D15), DDQ → DDZ. Derived shape.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct RequestChangeCustomerCharacteristics {
        flatten header: Header;
        /// `MktActivityRecord[]`: one per metering point.
        "MktActivityRecord" [nonempty] => records: Vec<CustomerCharacteristics>,
    }
    check = check_document;
}

cim_object! {
    /// One metering point's customer data, valid from `start`.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct CustomerCharacteristics {
        /// `mRID`: this transaction's id; DataHub's answer refers back to it.
        "mRID" => transaction_id: String,
        /// `businessProcessReference_MktActivityRecord.mRID`.
        "businessProcessReference_MktActivityRecord.mRID" => business_process_id: Option<String>,
        /// `start_DateAndOrTime.dateTime`: from when the data applies.
        "start_DateAndOrTime.dateTime" => start: Option<DateTime<Utc>>,
        /// `MarketEvaluationPoint`.
        "MarketEvaluationPoint" => metering_point: CustomerMeteringPoint,
    }
}

cim_object! {
    /// The metering point and its customers (`MarketEvaluationPoint`).
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct CustomerMeteringPoint {
        /// `mRID`: the GSRN.
        "mRID" => gsrn: Gsrn,
        /// `serviceCategory.ElectricalHeating`.
        "serviceCategory.ElectricalHeating" => electrical_heating: Option<bool>,
        /// `eletricalHeating_DateAndOrTime.dateTime` (the XSD's spelling): from when.
        "eletricalHeating_DateAndOrTime.dateTime" => electrical_heating_from: Option<DateTime<Utc>>,
        /// `firstCustomer_MarketParticipant.mRID`: CPR (ARR) or CVR (VAT).
        "firstCustomer_MarketParticipant.mRID" => first_customer_id: Option<PartyId>,
        /// `firstCustomer_MarketParticipant.name`.
        "firstCustomer_MarketParticipant.name" => first_customer_name: Option<String>,
        /// `secondCustomer_MarketParticipant.mRID`.
        "secondCustomer_MarketParticipant.mRID" => second_customer_id: Option<PartyId>,
        /// `secondCustomer_MarketParticipant.name`.
        "secondCustomer_MarketParticipant.name" => second_customer_name: Option<String>,
        /// `protectedName`: name and address protection.
        "protectedName" => protected_name: Option<bool>,
        /// `UsagePointLocation[]`: the customer's addresses.
        "UsagePointLocation" [default] => locations: Vec<CustomerLocation>,
    }
    check = check_locations;
}

typed_io!(
    RequestChangeCustomerCharacteristics,
    RequestChangeCustomerCharacteristics
);

cim_document!(
    RequestChangeCustomerCharacteristics,
    records,
    CustomerCharacteristics
);

fn check_document(doc: &RequestChangeCustomerCharacteristics) -> Result<(), Finding> {
    check_header(
        &doc.header,
        false,
        &[MessageType::REQUEST_CHANGE_CUSTOMER_CHARACTERISTICS],
    )
}

/// The XSD's restrictions on what we send, which RSM-028's reader leaves to the connector:
/// the address type code list (D01, D04), phone numbers of at most 15 characters, e-mail
/// addresses of at most 70.
fn check_locations(point: &CustomerMeteringPoint) -> Result<(), Finding> {
    for (i, l) in point.locations.iter().enumerate() {
        let at = |rest: &str| format!(".UsagePointLocation[{i}]{rest}");
        if !matches!(l.address_type.as_str(), "D01" | "D04") {
            return Err(Finding::schema(
                at(".type.value"),
                format!("address type `{}` is not D01 or D04", l.address_type),
            ));
        }
        for (key, phone) in [("phone1", &l.phone1), ("phone2", &l.phone2)] {
            if phone
                .as_ref()
                .is_some_and(|p| p.number.chars().count() > 15)
            {
                return Err(Finding::schema(
                    at(&format!(".{key}.ituPhone.value")),
                    "a phone number has at most 15 characters",
                ));
            }
        }
        if l.email
            .as_ref()
            .is_some_and(|e| e.address.chars().count() > 70)
        {
            return Err(Finding::schema(
                at(".electronicAddress.email1.value"),
                "an e-mail address has at most 70 characters",
            ));
        }
    }
    Ok(())
}
