//! The header every CIM document carries beside its transactions.

use chrono::{DateTime, Utc};
use serde::de::{self, MapAccess};

use crate::codes::{BusinessSector, MessageType, ProcessType, ReasonCode, Role};
use crate::common::PartyId;
use crate::de::{At, Finding, Flatten, Seed, WrappedSeed};
use crate::ser::{JsonWriter, member, wrapped_member};

/// One side of a message: who, in which role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Participant {
    /// `…_MarketParticipant.mRID`: the GLN.
    pub id: PartyId,
    /// `…_MarketParticipant.marketRole.type`.
    pub role: Role,
}

/// The document header: what processors route and deduplicate on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Header {
    /// `mRID`: the message id (DataHub's `MessageId`, also the peek/dequeue id).
    pub message_id: String,
    /// `businessSector.type`: 23 (electricity) when present.
    pub business_sector: Option<BusinessSector>,
    /// `createdDateTime`.
    pub created: DateTime<Utc>,
    /// `process.processType`: the business reason (E23 periodic metering, D04 balance fixing, …).
    pub process_type: ProcessType,
    /// `reason.code`: A01 accepted / A02 rejected, in confirm and reject documents only.
    pub reason_code: Option<ReasonCode>,
    /// `receiver_MarketParticipant.*`.
    pub receiver: Participant,
    /// `sender_MarketParticipant.*`.
    pub sender: Participant,
    /// `type`: the document type code (E66 for RSM-012, …).
    pub document_type: MessageType,
}

/// Collects header properties while the document object is read.
#[derive(Default)]
pub(crate) struct HeaderBuilder {
    message_id: Option<String>,
    business_sector: Option<BusinessSector>,
    created: Option<DateTime<Utc>>,
    process_type: Option<ProcessType>,
    reason_code: Option<ReasonCode>,
    receiver_id: Option<PartyId>,
    receiver_role: Option<Role>,
    sender_id: Option<PartyId>,
    sender_role: Option<Role>,
    document_type: Option<MessageType>,
}

fn put<'de, A: MapAccess<'de>, T, S: de::DeserializeSeed<'de, Value = T>>(
    slot: &mut Option<T>,
    key: &str,
    map: &mut A,
    at: At<'_>,
    seed: S,
) -> Result<bool, A::Error> {
    if slot.is_some() {
        return Err(at.schema(format!("duplicate property `{key}`")));
    }
    *slot = Some(map.next_value_seed(seed).map_err(|e| at.note(e))?);
    Ok(true)
}

impl<'de> Flatten<'de> for Header {
    type Builder = HeaderBuilder;

    fn take<A: MapAccess<'de>>(
        b: &mut HeaderBuilder,
        key: &str,
        map: &mut A,
        at: At<'_>,
    ) -> Result<bool, A::Error> {
        match key {
            "mRID" => put(&mut b.message_id, key, map, at, Seed::new(at)),
            "businessSector.type" => {
                put(&mut b.business_sector, key, map, at, WrappedSeed::new(at))
            }
            "createdDateTime" => put(&mut b.created, key, map, at, Seed::new(at)),
            "process.processType" => put(&mut b.process_type, key, map, at, WrappedSeed::new(at)),
            "reason.code" => put(&mut b.reason_code, key, map, at, WrappedSeed::new(at)),
            "receiver_MarketParticipant.mRID" => {
                put(&mut b.receiver_id, key, map, at, Seed::new(at))
            }
            "receiver_MarketParticipant.marketRole.type" => {
                put(&mut b.receiver_role, key, map, at, WrappedSeed::new(at))
            }
            "sender_MarketParticipant.mRID" => put(&mut b.sender_id, key, map, at, Seed::new(at)),
            "sender_MarketParticipant.marketRole.type" => {
                put(&mut b.sender_role, key, map, at, WrappedSeed::new(at))
            }
            "type" => put(&mut b.document_type, key, map, at, WrappedSeed::new(at)),
            _ => Ok(false),
        }
    }

    fn finish<E: de::Error>(b: HeaderBuilder, at: At<'_>) -> Result<Self, E> {
        fn need<T, E: de::Error>(v: Option<T>, key: &str, at: At<'_>) -> Result<T, E> {
            v.ok_or_else(|| at.schema(format!("missing required property `{key}`")))
        }
        Ok(Header {
            message_id: need(b.message_id, "mRID", at)?,
            business_sector: b.business_sector,
            created: need(b.created, "createdDateTime", at)?,
            process_type: need(b.process_type, "process.processType", at)?,
            reason_code: b.reason_code,
            receiver: Participant {
                id: need(b.receiver_id, "receiver_MarketParticipant.mRID", at)?,
                role: need(
                    b.receiver_role,
                    "receiver_MarketParticipant.marketRole.type",
                    at,
                )?,
            },
            sender: Participant {
                id: need(b.sender_id, "sender_MarketParticipant.mRID", at)?,
                role: need(
                    b.sender_role,
                    "sender_MarketParticipant.marketRole.type",
                    at,
                )?,
            },
            document_type: need(b.document_type, "type", at)?,
        })
    }

    fn write_flat(&self, w: &mut JsonWriter) {
        member(w, "mRID", &self.message_id);
        wrapped_member(w, "businessSector.type", &self.business_sector);
        member(w, "createdDateTime", &self.created);
        wrapped_member(w, "process.processType", &self.process_type);
        wrapped_member(w, "reason.code", &self.reason_code);
        member(w, "receiver_MarketParticipant.mRID", &self.receiver.id);
        wrapped_member(
            w,
            "receiver_MarketParticipant.marketRole.type",
            &self.receiver.role,
        );
        member(w, "sender_MarketParticipant.mRID", &self.sender.id);
        wrapped_member(
            w,
            "sender_MarketParticipant.marketRole.type",
            &self.sender.role,
        );
        wrapped_member(w, "type", &self.document_type);
    }
}

/// Header rules that depend on the document: `reason.code` exists only in confirm/reject
/// documents (schema: `additionalProperties: false`), and `type` must be the document's code.
pub(crate) fn check_header(
    header: &Header,
    allows_reason: bool,
    expected_type: &[MessageType],
) -> Result<(), Finding> {
    if !allows_reason && header.reason_code.is_some() {
        return Err(Finding::schema(
            key_path("reason.code"),
            "unknown property `reason.code` in this document",
        ));
    }
    if !expected_type.is_empty() && !expected_type.contains(&header.document_type) {
        let expected: Vec<&str> = expected_type.iter().map(|t| t.as_str()).collect();
        return Err(Finding::business(
            format!("{}.value", key_path("type")),
            format!(
                "document type code `{}` does not fit this document (expected {})",
                header.document_type,
                expected.join(" or ")
            ),
        ));
    }
    Ok(())
}

/// `.key` or `['dotted.key']`, relative.
pub(crate) fn key_path(key: &str) -> String {
    let mut out = String::new();
    crate::de::push_key(&mut out, key);
    out
}
