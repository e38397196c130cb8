//! Fast paths for the two Decimal operations that dominate the profile of a
//! month's settlement: adding and comparing. When both numbers have the same
//! scale (the quantities and amounts of one line nearly always do) they are
//! i128 operations on the mantissas. Aligning different scales in i128 was
//! measured to cost more than rust_decimal's own routines, so those fall back.
//!
//! Both fall back to `rust_decimal` whenever the fast path does not apply, and
//! give exactly the same value as `a + b` and `a.cmp(&b)`.

use std::cmp::Ordering;

use rust_decimal::Decimal;

/// `a + b`; for equal scales an i128 addition of the mantissas.
#[inline]
pub(crate) fn add(a: Decimal, b: Decimal) -> Decimal {
    if a.scale() == b.scale()
        && let Some(sum) = a.mantissa().checked_add(b.mantissa())
        && let Ok(result) = Decimal::try_from_i128_with_scale(sum, a.scale())
    {
        return result;
    }
    a + b
}

/// `a.cmp(&b)`; for equal scales a comparison of the mantissas.
#[inline]
pub(crate) fn cmp(a: Decimal, b: Decimal) -> Ordering {
    if a.scale() == b.scale() {
        a.mantissa().cmp(&b.mantissa())
    } else {
        a.cmp(&b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decimal() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            (any::<i64>(), 0u32..12).prop_map(|(m, s)| Decimal::new(m, s)),
            (any::<i64>(), any::<u32>(), 0u32..=28).prop_map(|(hi, lo, s)| {
                Decimal::from_i128_with_scale((i128::from(hi) << 32) | i128::from(lo), s)
            }),
        ]
    }

    proptest! {
        #[test]
        fn fast_paths_equal_rust_decimal(a in decimal(), b in decimal(), same_scale in any::<bool>()) {
            let b = if same_scale { Decimal::from_i128_with_scale(b.mantissa(), a.scale()) } else { b };
            let fast = add(a, b);
            let slow = a + b;
            prop_assert_eq!(fast, slow);
            prop_assert_eq!(fast.scale(), slow.scale());
            prop_assert_eq!(cmp(a, b), a.cmp(&b));
        }
    }

    #[test]
    fn overflow_falls_back() {
        let max = Decimal::MAX;
        assert_eq!(add(max, Decimal::NEGATIVE_ONE), max + Decimal::NEGATIVE_ONE);
        assert_eq!(add(Decimal::new(-5, 2), Decimal::new(5, 2)), Decimal::ZERO);
    }
}
