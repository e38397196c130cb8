//! Exact fixed-point integers for the per-value loops of a day's settlement.
//!
//! A quantity is an `i64` of milli-kWh (DataHub sends 3 decimals), a price an `i64` of
//! nano-DKK (a spot price in DKK/MWh with 6 decimals is 9 decimals in DKK/kWh; a DataHub
//! price has 6), a product an `i128` at 12 decimals. Sums, products and the half-up
//! rounding to 6 decimals are then integer operations, exact by construction.
//!
//! The results must be the Decimals the Decimal path gives, scale included (the scale is
//! stored in the state and printed on the statement), so each sum also carries the scale
//! rust_decimal would give it: `a + b` has the larger scale of the two, except that a
//! zero operand is skipped (`0 + b` is `b`, `a + 0` is `a`), and a non-zero product has
//! the sum of the scales while a zero product is `0` at scale 0.
//!
//! Whatever this cannot represent exactly (more decimals than the fixed scale, a negative
//! quantity, a sum beyond Decimal's 96 bits, a zero that rust_decimal may sign) makes the
//! caller take the Decimal path for that day or line; `fixed_equals_decimal` in the fold's
//! tests holds the two paths equal.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::quantity::QualitySet;
use crate::statement::UnitPrice;

/// Decimals of a fixed quantity (milli-kWh).
pub(crate) const QUANTITY_SCALE: u32 = 3;
/// Decimals of a fixed price (nano-DKK).
pub(crate) const PRICE_SCALE: u32 = 9;
/// Decimals of a fixed product: quantity × price.
const PRODUCT_SCALE: u32 = QUANTITY_SCALE + PRICE_SCALE;
/// Decimals of a rounded amount, as [`crate::rounding::AMOUNT_DECIMALS`].
const AMOUNT_SCALE: u32 = crate::rounding::AMOUNT_DECIMALS;
/// Decimal's mantissa is below 2^96.
const DECIMAL_LIMIT: i128 = 1 << 96;

const fn pow10(n: u32) -> i128 {
    10_i128.pow(n)
}

/// A Decimal as an integer at a fixed scale, with the scale it had (to give it back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Fixed {
    /// The value × 10^(fixed scale).
    pub value: i64,
    /// The Decimal's own scale.
    pub scale: u32,
}

/// `d` at `at` decimals; `None` when it has more decimals or does not fit an `i64`.
#[inline]
pub(crate) fn fixed(d: Decimal, at: u32) -> Option<Fixed> {
    let scale = d.scale();
    if scale > at {
        return None;
    }
    let value = i64::try_from(d.mantissa().checked_mul(pow10(at - scale))?).ok()?;
    Some(Fixed { value, scale })
}

/// A quantity as milli-kWh; `None` also for a negative one (or `-0`), which the fixed
/// path does not take (a difference of prefix sums could then be a signed zero).
#[inline]
pub(crate) fn quantity(d: Decimal) -> Option<Fixed> {
    if d.is_sign_negative() {
        return None;
    }
    fixed(d, QUANTITY_SCALE)
}

/// The scale of `a + b` in rust_decimal, for values `a` and `b` at scales `sa` and `sb`.
#[inline]
pub(crate) fn sum_scale(a: i128, sa: u32, b: i128, sb: u32) -> u32 {
    if a == 0 {
        sb
    } else if b == 0 {
        sa
    } else {
        sa.max(sb)
    }
}

/// The Decimal of `value` (at `at` decimals) with `scale` decimals; `None` if it does
/// not fit or is not a whole number of 10^-scale.
fn decimal(value: i128, at: u32, scale: u32) -> Option<Decimal> {
    let divisor = pow10(at.checked_sub(scale)?);
    if value % divisor != 0 {
        return None;
    }
    Decimal::try_from_i128_with_scale(value / divisor, scale).ok()
}

/// `value / divisor` rounded half away from zero (Java `HALF_UP`).
#[inline]
fn div_half_up(value: i128, divisor: i128) -> i128 {
    // i128 division is a library call; nearly every product fits an i64.
    if let (Ok(v), Ok(d)) = (i64::try_from(value), i64::try_from(divisor)) {
        let (quotient, remainder) = (v / d, v % d);
        let away = remainder.unsigned_abs() * 2 >= d.unsigned_abs();
        return i128::from(if away {
            quotient + v.signum()
        } else {
            quotient
        });
    }
    let (quotient, remainder) = (value / divisor, value % divisor);
    if remainder.abs() * 2 >= divisor {
        quotient + value.signum()
    } else {
        quotient
    }
}

/// How a detail's amount is made from quantity × price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Amount {
    /// Exact (spot, margin).
    Exact,
    /// Rounded half-up to 6 decimals (DataHub charges, [`crate::rounding::line_amount`]).
    Rounded,
}

/// A price as the detail used it and as a fixed value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Price {
    /// The price as given (its scale is what the statement shows).
    pub decimal: Decimal,
    /// The price in nano-DKK.
    pub fixed: Fixed,
}

impl Price {
    /// `d` as a fixed price, `None` when it is not representable.
    #[inline]
    pub fn of(d: Decimal) -> Option<Self> {
        Some(Self {
            decimal: d,
            fixed: fixed(d, PRICE_SCALE)?,
        })
    }
}

/// A sum of values at a fixed scale with the scale rust_decimal would give it, and the
/// sum of magnitudes that bounds every partial sum (below 2^96, nothing overflowed).
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    value: i128,
    magnitude: i128,
    scale: u32,
    negative_term: bool,
}

impl Sum {
    #[inline]
    fn add(&mut self, value: i128, scale: u32) {
        self.scale = sum_scale(self.value, self.scale, value, scale);
        self.value = self.value.wrapping_add(value);
        self.magnitude = self.magnitude.saturating_add(value.abs());
        self.negative_term |= value < 0;
    }

    /// The Decimal, unless it might differ from rust_decimal's (overflow, or a zero
    /// that negative terms may have signed).
    fn decimal(&self, at: u32) -> Option<Decimal> {
        if self.magnitude >= DECIMAL_LIMIT || (self.value == 0 && self.negative_term) {
            return None;
        }
        decimal(self.value, at, self.scale)
    }
}

/// The sums and counts of one line's details over a day, in fixed point: what
/// [`crate::statement::Line::from_details`] computes, without the details.
///
/// Details must be given in the order the line sorts them (by start).
#[derive(Debug, Default)]
pub(crate) struct LineAcc {
    quantity: Sum,
    known: Sum,
    /// Number of details.
    pub details: u32,
    missing_prices: u32,
    missing_positions: u32,
    qualities: QualitySet,
    range: Option<(Price, Price)>,
    first_unpriced: Option<DateTime<Utc>>,
}

/// A line's sums as [`crate::fold::LineSum`] takes them from either path.
#[derive(Debug, Clone)]
pub(crate) struct LineFacts {
    pub quantity: Decimal,
    pub known: Decimal,
    pub details: u32,
    pub missing_prices: u32,
    pub missing_positions: u32,
    pub qualities: QualitySet,
    pub unit_price: UnitPrice,
    pub first_unpriced: Option<DateTime<Utc>>,
}

impl LineAcc {
    /// Adds one detail: its start, quantity (milli-kWh with its Decimal scale), the
    /// positions' qualities and missing count, its price and how the amount is made.
    #[inline]
    pub fn detail(
        &mut self,
        start: DateTime<Utc>,
        quantity: Fixed,
        qualities: QualitySet,
        missing_positions: u32,
        price: Option<Price>,
        amount: Amount,
    ) {
        self.details += 1;
        self.missing_positions += missing_positions;
        self.qualities.extend(qualities);
        self.quantity
            .add(i128::from(quantity.value), quantity.scale);
        let Some(price) = price else {
            self.missing_prices += 1;
            self.first_unpriced = Some(self.first_unpriced.map_or(start, |f| f.min(start)));
            return;
        };
        let product = i128::from(quantity.value) * i128::from(price.fixed.value);
        match amount {
            // rust_decimal: a zero product is 0 at scale 0, else the scales add.
            Amount::Exact if product == 0 => self.known.add(0, 0),
            Amount::Exact => self.known.add(product, quantity.scale + price.fixed.scale),
            Amount::Rounded => {
                let step = pow10(PRODUCT_SCALE - AMOUNT_SCALE);
                let rounded = div_half_up(product, step) * step;
                // A negative product rounded to zero may be a signed zero in rust_decimal;
                // a product beyond 96 bits is not exact in rust_decimal.
                self.known.negative_term |= product < 0;
                if product.abs() >= DECIMAL_LIMIT {
                    self.known.magnitude = i128::MAX;
                }
                self.known.add(rounded, AMOUNT_SCALE);
            }
        }
        // The first lowest and the first highest in detail order, as the line keeps them.
        match &mut self.range {
            None => self.range = Some((price, price)),
            Some((min, _)) if price.fixed.value < min.fixed.value => *min = price,
            Some((_, max)) if price.fixed.value > max.fixed.value => *max = price,
            Some(_) => {}
        }
    }

    /// The line's facts, or `None` when the Decimal path must decide.
    pub fn facts(&self) -> Option<LineFacts> {
        let unit_price = match self.range {
            None => UnitPrice::Missing,
            Some((min, max)) if min.fixed.value == max.fixed.value => {
                UnitPrice::Single { price: min.decimal }
            }
            Some((min, max)) => UnitPrice::Series {
                min: min.decimal,
                max: max.decimal,
            },
        };
        let quantity = self.quantity.decimal(QUANTITY_SCALE)?;
        let known = self.known.decimal(PRODUCT_SCALE)?;
        #[cfg(test)]
        FACTS_GIVEN.with(|n| n.set(n.get() + 1));
        Some(LineFacts {
            quantity,
            known,
            details: self.details,
            missing_prices: self.missing_prices,
            missing_positions: self.missing_positions,
            qualities: self.qualities,
            unit_price,
            first_unpriced: self.first_unpriced,
        })
    }
}

#[cfg(test)]
thread_local! {
    static FACTS_GIVEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many lines this thread summed in fixed point (tests show the path is taken).
#[cfg(test)]
pub(crate) fn facts_given() -> u64 {
    FACTS_GIVEN.with(std::cell::Cell::get)
}

/// A running quantity in milli-kWh with rust_decimal's scale: a run of slots, a window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RunningQuantity {
    /// Milli-kWh.
    pub value: i64,
    /// The Decimal sum's scale.
    pub scale: u32,
}

impl RunningQuantity {
    /// A running sum that starts with `first` (not with zero).
    pub fn starting(first: Fixed) -> Self {
        Self {
            value: first.value,
            scale: first.scale,
        }
    }

    /// `self + q`, `None` on overflow.
    #[inline]
    pub fn plus(self, q: Fixed) -> Option<Self> {
        Some(Self {
            scale: sum_scale(
                i128::from(self.value),
                self.scale,
                i128::from(q.value),
                q.scale,
            ),
            value: self.value.checked_add(q.value)?,
        })
    }

    /// `self − earlier` for two prefix sums of non-negative quantities (rust_decimal's
    /// subtraction keeps the scale rules of addition).
    #[inline]
    pub fn minus(self, earlier: Self) -> Fixed {
        Fixed {
            value: self.value - earlier.value,
            scale: sum_scale(
                i128::from(self.value),
                self.scale,
                i128::from(earlier.value),
                earlier.scale,
            ),
        }
    }

    /// As a detail quantity.
    pub fn fixed(self) -> Fixed {
        Fixed {
            value: self.value,
            scale: self.scale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rounding::line_amount;
    use proptest::prelude::*;

    fn price() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            (any::<i32>(), 0u32..=9).prop_map(|(m, s)| Decimal::new(i64::from(m), s)),
            (-9_223_372_036i64..=9_223_372_036, 0u32..=9).prop_map(|(m, s)| Decimal::new(m, s)),
            // Halves at the rounding boundary: x.yyyyyy5 × 1 kWh.
            (any::<i32>()).prop_map(|m| Decimal::new(i64::from(m) * 10 + 5, 7)),
        ]
    }

    fn quantity_value() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            (0i64..100_000_000, 0u32..=3).prop_map(|(m, s)| Decimal::new(m, s)),
            Just(Decimal::new(i64::MAX, 3)),
            Just(Decimal::ZERO),
            Just(Decimal::new(0, 3)),
        ]
    }

    proptest! {
        #[test]
        fn one_product_equals_rust_decimal(q in quantity_value(), p in price()) {
            let (Some(fq), Some(price)) = (quantity(q), Price::of(p)) else {
                return Ok(());
            };
            for (amount, expected) in [(Amount::Exact, q * p), (Amount::Rounded, line_amount(q, p))] {
                let mut acc = LineAcc::default();
                acc.detail(DateTime::UNIX_EPOCH, fq, QualitySet::EMPTY, 0, Some(price), amount);
                let Some(facts) = acc.facts() else { continue };
                prop_assert_eq!(facts.known.to_string(), (Decimal::ZERO + expected).to_string());
                prop_assert_eq!(facts.quantity.to_string(), (Decimal::ZERO + q).to_string());
            }
        }
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_half_up(5, 10), 1);
        assert_eq!(div_half_up(-5, 10), -1);
        assert_eq!(div_half_up(4, 10), 0);
        assert_eq!(div_half_up(-15, 10), -2);
        assert_eq!(div_half_up(14, 10), 1);
        let big = i128::from(i64::MAX) * 1000 + 500;
        assert_eq!(div_half_up(big, 1000), i128::from(i64::MAX) + 1);
        assert_eq!(div_half_up(-big, 1000), -i128::from(i64::MAX) - 1);
    }

    #[test]
    fn unrepresentable_values_are_refused() {
        assert!(fixed(Decimal::new(1, 4), QUANTITY_SCALE).is_none());
        assert!(quantity(Decimal::new(-1, 3)).is_none());
        assert!(fixed(Decimal::MAX, PRICE_SCALE).is_none());
        assert_eq!(
            fixed(Decimal::new(15, 1), QUANTITY_SCALE),
            Some(Fixed {
                value: 1500,
                scale: 1
            })
        );
    }
}
