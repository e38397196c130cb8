//! DataHub's data about a metering point of ours as portfolio commands: RSM-022 master data
//! → [`Command::MasterData`], RSM-028 customer data (sealed by the connector, decision 0147)
//! → [`Command::CustomerData`], RSM-031 charge links → [`Command::ChargeLinks`]. Pure.
//!
//! DataHub sends them as steps of a business process (BRS-001/009: after the confirm, NOTES
//! §2.1 step 3), naming it by `businessProcessReference` and, for ours, our transaction. Only
//! such records are mapped: the scenario's and a DH2-era stock of master data without a
//! process stay with enrich and settle, which read RSM-022/031 for every metering point. The
//! portfolio refuses data for a metering point without a process of its own
//! ([`crate::decide`]), so what arrives here for a stranger is a dead letter, not state.
//! RSM-028 names the customer only by its sealed CPR/CVR: its customer number is the one of
//! the process it names (our request's), resolved by `decide`.

use afregning_cim::Document;
use afregning_cim::rsm022::AccountingPointCharacteristics;
use afregning_cim::rsm028::CharacteristicsOfACustomerAtAnAP;
use afregning_cim::rsm031::NotifyBillingMasterData;
use afregning_settlement::calendar::local_date;

use crate::answers::meta;
use crate::command::Command;
use crate::event::{ChargeLink, MasterData};
use crate::ids::{Gln, ProcessId};
use crate::intake::CommandRecord;
use crate::outbound::SEALED_IDENTITY;
use crate::personal::Sealed;

/// The commands of a master-data document (RSM-022, RSM-028, RSM-031), `None` for another
/// document. `Err` says why a record cannot be mapped (validate dead-letters the document).
pub fn commands(document: &Document) -> Option<Result<Vec<CommandRecord>, String>> {
    Some(match document {
        Document::AccountingPointCharacteristics(doc) => master_data(doc),
        Document::CharacteristicsOfACustomerAtAnAP(doc) => customer_data(doc),
        Document::NotifyBillingMasterData(doc) => charge_links(doc),
        _ => return None,
    })
}

/// Whether a record belongs to a business process (see the module docs).
fn in_process(business: &Option<String>, original: &Option<String>) -> bool {
    business.is_some() || original.is_some()
}

/// Our process id where DataHub names our transaction, else DataHub's process reference.
fn process_of(business: &Option<String>, original: &Option<String>) -> Option<ProcessId> {
    original.clone().or_else(|| business.clone()).map(ProcessId)
}

fn master_data(doc: &AccountingPointCharacteristics) -> Result<Vec<CommandRecord>, String> {
    doc.records
        .iter()
        .filter(|r| in_process(&r.business_process_id, &r.original_transaction_id))
        .map(|r| {
            let point = &r.metering_point;
            let grid_area = point.grid_area.as_ref().ok_or_else(|| {
                format!(
                    "RSM-022 record {} for {} has no grid area",
                    r.transaction_id, point.gsrn
                )
            })?;
            Ok(CommandRecord {
                metering_point: point.gsrn,
                meta: meta(&doc.header, "DataHub's master data (RSM-022)"),
                command: Command::MasterData(MasterData {
                    valid_from: local_date(r.validity_start),
                    grid_area: grid_area.value.clone(),
                    metering_point_type: point.metering_point_type.map(|t| t.as_str().into()),
                    settlement_method: point.settlement_method.map(|m| m.as_str().into()),
                    balance_responsible: None,
                }),
            })
        })
        .collect()
}

fn customer_data(doc: &CharacteristicsOfACustomerAtAnAP) -> Result<Vec<CommandRecord>, String> {
    doc.records
        .iter()
        .map(|r| {
            let point = &r.metering_point;
            let id = point.first_customer_id.as_ref().ok_or_else(|| {
                format!(
                    "RSM-028 record {} for {} names no first customer",
                    r.transaction_id, point.gsrn
                )
            })?;
            // Never echo the value: unsealed, it would be a CPR or CVR.
            let seal = id.value.strip_prefix(SEALED_IDENTITY).ok_or_else(|| {
                format!(
                    "RSM-028 record {} for {}: the first customer's id is not sealed (the connector seals it before publishing, decision 0147)",
                    r.transaction_id, point.gsrn
                )
            })?;
            let personal = Sealed::decode(seal).map_err(|e| {
                format!(
                    "RSM-028 record {} for {}: the sealed customer id: {e}",
                    r.transaction_id, point.gsrn
                )
            })?;
            Ok(CommandRecord {
                metering_point: point.gsrn,
                meta: meta(&doc.header, "DataHub's customer data (RSM-028)"),
                command: Command::CustomerData {
                    customer: None,
                    process: process_of(&r.business_process_id, &r.original_transaction_id),
                    personal,
                },
            })
        })
        .collect()
}

fn charge_links(doc: &NotifyBillingMasterData) -> Result<Vec<CommandRecord>, String> {
    doc.records
        .iter()
        .filter(|r| in_process(&r.business_process_id, &r.original_transaction_id))
        .map(|r| {
            let links = r
                .charge_group
                .links
                .iter()
                .map(|l| {
                    let owner = Gln::parse(&l.owner.value).ok_or_else(|| {
                        format!(
                            "RSM-031 record {}: charge {} has owner {:?}, not a GLN",
                            r.transaction_id, l.code, l.owner.value
                        )
                    })?;
                    let from = l.effective.ok_or_else(|| {
                        format!(
                            "RSM-031 record {}: charge {} has no effectiveDate",
                            r.transaction_id, l.code
                        )
                    })?;
                    Ok(ChargeLink {
                        charge_id: l.code.clone(),
                        owner,
                        charge_type: l.kind.as_str().into(),
                        from: local_date(from),
                        to: l.termination.map(local_date),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(CommandRecord {
                metering_point: r.metering_point,
                meta: meta(&doc.header, "DataHub's charge links (RSM-031)"),
                command: Command::ChargeLinks(links),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::seal_customer_data;
    use crate::personal::Keyring;

    const CPR: &str = "0801741527";

    /// The derived RSM-028 example of the CIM crate.
    fn rsm028(first: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../cim/tests/fixtures/rsm028-CharacteristicsOfACustomerAtAnAP.json");
        std::fs::read_to_string(path)
            .expect("the RSM-028 example")
            .replace("0801741527", first)
    }

    #[test]
    fn sealed_customer_data_becomes_customer_data_of_the_named_process() {
        let mut keys = Keyring::default();
        keys.generate("k1").expect("key");
        let sealed = seal_customer_data(rsm028(CPR).as_bytes(), Some(&keys))
            .expect("sealed")
            .expect("customers");
        let document = afregning_cim::parse(&sealed).expect("parses");
        let records = commands(&document).expect("master data").expect("mapped");
        let Command::CustomerData {
            customer,
            process,
            personal,
        } = &records[0].command
        else {
            panic!("{:?}", records[0].command);
        };
        assert_eq!(*customer, None);
        assert_eq!(process.as_ref().map(|p| p.0.as_str()), Some("move-in-1"));
        let opened = keys.open(personal).expect("opens");
        assert_eq!(
            opened.name.map(|n| n.expose().to_string()).as_deref(),
            Some("Jens Testesen")
        );
    }

    #[test]
    fn unsealed_customer_data_is_refused_without_echoing_the_number() {
        let document = afregning_cim::parse(rsm028(CPR).as_bytes()).expect("parses");
        let err = commands(&document).expect("master data").unwrap_err();
        assert!(err.contains("not sealed") && !err.contains(CPR), "{err}");
    }

    #[test]
    fn master_data_and_links_outside_a_process_are_not_mapped() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../cim/tests/fixtures/rsm022-AccountingPointCharacteristics.json");
        let bytes = std::fs::read(path).expect("the RSM-022 fixture");
        let document = afregning_cim::parse(&bytes).expect("parses");
        let Document::AccountingPointCharacteristics(doc) = &document else {
            panic!("RSM-022");
        };
        let mapped = commands(&document).expect("master data").expect("mapped");
        let in_process = doc
            .records
            .iter()
            .filter(|r| r.business_process_id.is_some() || r.original_transaction_id.is_some())
            .count();
        assert!(in_process > 0, "the fixture names a process");
        assert_eq!(mapped.len(), in_process);
        for record in &mapped {
            let Command::MasterData(master) = &record.command else {
                panic!("{:?}", record.command);
            };
            assert!(!master.grid_area.is_empty());
        }
    }
}
