//! Rounding rules, in one place so that every amount is rounded the same way.
//!
//! Energinet computes `amount = quantity × price` and casts it to
//! `DECIMAL(18,6)`, which rounds half away from zero (Java `HALF_UP`):
//! 44.280 × 7.654321 = 338.93333388 is stored as 338.933334. A monthly
//! subscription's daily price is `round(monthly / days, 6)`. Invoice totals
//! are rounded to øre only at the statement.

use rust_decimal::{Decimal, RoundingStrategy};

/// Decimals of every amount and unit price (DKK), as Energinet's `DECIMAL(18,6)`.
pub const AMOUNT_DECIMALS: u32 = 6;

/// Decimals of an invoice total (øre).
pub const INVOICE_DECIMALS: u32 = 2;

/// Rounds half away from zero to `decimals` and fixes the scale, so that equal
/// amounts also serialize equally ("20.000000", never "20").
pub fn round_half_up(value: Decimal, decimals: u32) -> Decimal {
    let mut rounded =
        value.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(decimals);
    rounded
}

/// An amount rounded to 6 decimals half-up: Energinet's rule for every line.
pub fn round_amount(value: Decimal) -> Decimal {
    round_half_up(value, AMOUNT_DECIMALS)
}

/// `quantity × price` rounded to 6 decimals: the amount of one charge line.
///
/// The conformance runner aggregates quantities across metering points and calls
/// this same function, which is exactly what Energinet's engine does.
pub fn line_amount(quantity: Decimal, price: Decimal) -> Decimal {
    round_amount(quantity * price)
}

/// Daily price of a monthly subscription: `round(monthly / days, 6)`.
///
/// Returns `None` for a zero-day period, which cannot be priced.
pub fn daily_price(monthly_price: Decimal, days: u32) -> Option<Decimal> {
    if days == 0 {
        return None;
    }
    Some(round_amount(monthly_price / Decimal::from(days)))
}

/// An invoice total rounded to øre.
pub fn round_ore(value: Decimal) -> Decimal {
    round_half_up(value, INVOICE_DECIMALS)
}

/// Converts a spot price from DKK/MWh (Energi Data Service) to DKK/kWh exactly.
pub fn dkk_per_mwh_to_dkk_per_kwh(dkk_per_mwh: Decimal) -> Decimal {
    dkk_per_mwh / Decimal::ONE_THOUSAND
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    #[test]
    fn rounds_half_away_from_zero_like_energinets_decimal_cast() {
        assert_eq!(
            line_amount(d("44.280"), d("7.654321")).to_string(),
            "338.933334"
        );
        assert_eq!(round_amount(d("0.0000005")).to_string(), "0.000001");
        assert_eq!(round_amount(d("-0.0000005")).to_string(), "-0.000001");
        assert_eq!(round_amount(d("0.00000049")).to_string(), "0.000000");
        assert_eq!(round_amount(d("20")).to_string(), "20.000000");
    }

    #[test]
    fn daily_price_matches_the_worked_subscriptions() {
        assert_eq!(daily_price(d("36.773011"), 31), Some(d("1.186226")));
        assert_eq!(daily_price(d("15.583333"), 31), Some(d("0.502688")));
        assert_eq!(daily_price(d("0.908602"), 3), Some(d("0.302867")));
        assert_eq!(daily_price(d("1"), 0), None);
    }

    #[test]
    fn ore_rounding_and_spot_conversion() {
        assert_eq!(round_ore(d("62.107911")).to_string(), "62.11");
        assert_eq!(round_ore(d("0.005")).to_string(), "0.01");
        assert_eq!(dkk_per_mwh_to_dkk_per_kwh(d("-1.49194")), d("-0.00149194"));
        assert_eq!(
            dkk_per_mwh_to_dkk_per_kwh(d("813.181912")),
            d("0.813181912")
        );
    }
}
