//! What the portfolio processor keeps: each metering point's folded state, and which
//! metering points have a process waiting for its day.

use afregning_portfolio::MeteringPoint;

use crate::runtime::typed::{Marks, StoreKey, StoreValue, TypedStore, join_parts, split_parts};

/// The processor's one store.
pub const STATE_STORE: &str = "state";

/// A metering point's state, the fold of every event published for it.
pub const POINTS: TypedStore<PointKey, StoredPoint> = TypedStore::new(STATE_STORE);

/// Metering points with an accepted process not yet in effect: looked at by each tick, so a
/// tick costs the pending processes, not the portfolio.
pub const PENDING: Marks<PointKey> = Marks::new(STATE_STORE, "pending");

/// A metering point (its GSRN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointKey(pub String);

impl StoreKey for PointKey {
    fn encode(&self, out: &mut Vec<u8>) {
        join_parts(&[&self.0], out);
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        match split_parts(bytes)?.as_slice() {
            [gsrn] => Some(Self((*gsrn).to_string())),
            _ => None,
        }
    }
}

/// The folded state as stored: format byte `P`, then the state as JSON (it holds only sealed
/// personal data, like the events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPoint(pub MeteringPoint);

const FORMAT: u8 = b'P';

impl StoreValue for StoredPoint {
    const WHAT: &'static str = "stored portfolio state";

    fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        out.extend(serde_json::to_vec(&self.0).unwrap_or_default());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        match bytes.split_first() {
            Some((&FORMAT, json)) => serde_json::from_slice(json)
                .map(StoredPoint)
                .map_err(|e| format!("format P but not a portfolio state: {e}")),
            Some((other, _)) => Err(format!("unknown format byte {other:#04x}")),
            None => Err("empty value".into()),
        }
    }
}
