//! [`FixedPrices`]: a prepared month's prices in fixed point ([`crate::fixed`]), laid out
//! per charge time and per quarter-hour, so that a day settled without details looks
//! each price up by index instead of searching and converting it per value.

use chrono::{DateTime, Utc};

use crate::components::charges::fixed_prices;
use crate::components::supplier::term_index;
use crate::fixed::Price;
use crate::product::ProductTerm;
use crate::quantity::Resolution;
use crate::spot::SpotIndex;

use super::context::LinkedCharge;

/// Seconds of a quarter-hour, the finest grid of a price.
const QUARTER: i64 = 900;

/// The spot price of one quarter-hour, and whether an hourly MTU gave it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuarterSpot {
    /// The price.
    pub price: Price,
    /// From a PT1H price (it then applies to the hour's four quarters).
    pub hourly: bool,
}

/// A prepared month's prices in fixed point; a part is `None` when one of its prices is
/// not representable, and that part takes the Decimal path.
#[derive(Debug)]
pub(crate) struct FixedPrices {
    /// Unix seconds of the period's start: quarter `k` starts at `base + 900 k`.
    base: i64,
    /// Per linked charge (in the context's order), per price period, per charge time.
    pub charges: Vec<Option<Vec<Vec<Option<Price>>>>>,
    /// Per quarter-hour: the spot price.
    spot: Option<Vec<Option<QuarterSpot>>>,
    /// Per quarter-hour: the product term and its margin rate.
    margin: Option<Vec<Option<(usize, Price)>>>,
}

impl FixedPrices {
    /// The prices of a period starting at `start` with `quarters` quarter-hours.
    pub fn new(
        start: DateTime<Utc>,
        quarters: usize,
        charges: &[LinkedCharge],
        spot: Option<&SpotIndex>,
        terms: &[&ProductTerm],
    ) -> Self {
        let base = start.timestamp();
        let instants = || {
            (0..quarters).filter_map(move |k| {
                let offset = i64::try_from(k).ok()? * QUARTER;
                DateTime::from_timestamp(base + offset, start.timestamp_subsec_nanos())
            })
        };
        let spot = spot.and_then(|index| {
            instants()
                .map(|t| match index.quarter_price(t) {
                    Some(q) => Some(Some(QuarterSpot {
                        price: Price::of(q.price)?,
                        hourly: q.source_resolution == Resolution::Pt1h,
                    })),
                    None => Some(None),
                })
                .collect()
        });
        let margin = instants()
            .map(|t| match term_index(terms, t) {
                Some(i) => Some(Some((i, Price::of(terms[i].margin.at(t))?))),
                None => Some(None),
            })
            .collect();
        Self {
            base,
            charges: charges
                .iter()
                .map(|c| fixed_prices(&c.prepared, &c.times))
                .collect(),
            spot,
            margin,
        }
    }

    /// The index of the quarter-hour starting at `start_s` (Unix seconds).
    fn quarter(&self, start_s: i64) -> Option<usize> {
        let offset = start_s.checked_sub(self.base)?;
        if offset % QUARTER != 0 {
            return None;
        }
        usize::try_from(offset / QUARTER).ok()
    }

    /// The spot price of the quarter-hour starting at `start_s`: `None` when the Decimal
    /// path must settle it, `Some(None)` when it has no price.
    pub fn spot(&self, start_s: i64) -> Option<Option<QuarterSpot>> {
        self.spot.as_ref()?.get(self.quarter(start_s)?).copied()
    }

    /// The product term and margin rate of the quarter-hour starting at `start_s`, with
    /// the same `None` and `Some(None)` as [`Self::spot`].
    pub fn margin(&self, start_s: i64) -> Option<Option<(usize, Price)>> {
        self.margin.as_ref()?.get(self.quarter(start_s)?).copied()
    }
}
