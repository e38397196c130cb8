//! The supplier's product catalogue: margin per kWh, supplier subscription,
//! versions by validity date, and which metering point is on which product.
//!
//! These are contract terms, not DataHub data. The catalogue is plain data
//! (serde), so it can live in a file or a table; reading it is the caller's
//! job. [`ProductCatalogue::terms_for`] resolves it into the [`ProductTerm`]s
//! a statement needs.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::calendar::{BillingPeriod, local_hour, local_midnight};
use crate::charges::VatClass;
use crate::tariff_period::{TariffPeriod, TimeBands};

/// The supplier's margin (tillæg) per kWh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Margin {
    /// The same margin every hour.
    Flat {
        /// DKK/kWh excluding VAT.
        per_kwh: Decimal,
    },
    /// A margin per local wall-clock hour (index 0 = 00:00–01:00).
    ByLocalHour {
        /// DKK/kWh excluding VAT, 24 entries.
        per_kwh: Box<[Decimal; 24]>,
    },
    /// A margin per C-customer tariff band ([`TimeBands::C_CUSTOMER_2023`]).
    ByTariffPeriod {
        /// DKK/kWh in lavlast.
        lavlast: Decimal,
        /// DKK/kWh in højlast.
        hojlast: Decimal,
        /// DKK/kWh in spidslast.
        spidslast: Decimal,
    },
}

impl Margin {
    /// The margin for the position starting at an instant.
    pub fn at(&self, instant: DateTime<Utc>) -> Decimal {
        match self {
            Margin::Flat { per_kwh } => *per_kwh,
            Margin::ByLocalHour { per_kwh } => per_kwh[local_hour(instant) as usize % 24],
            Margin::ByTariffPeriod {
                lavlast,
                hojlast,
                spidslast,
            } => match TimeBands::C_CUSTOMER_2023.period_at(instant) {
                TariffPeriod::Lavlast => *lavlast,
                TariffPeriod::Hojlast => *hojlast,
                TariffPeriod::Spidslast => *spidslast,
            },
        }
    }
}

/// One version of a product's terms, valid from a local date until the next version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductVersion {
    /// First local day the version applies.
    pub valid_from: NaiveDate,
    /// Margin per kWh.
    pub margin: Margin,
    /// Supplier subscription, DKK per month excluding VAT.
    pub subscription_per_month: Decimal,
    /// VAT class of the supplier's lines.
    #[serde(default = "default_vat")]
    pub vat_class: VatClass,
}

fn default_vat() -> VatClass {
    VatClass::Vat25
}

/// A product the supplier sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Stable identifier.
    pub id: String,
    /// Name shown on the invoice.
    pub name: String,
    /// Versions; each applies from its `valid_from` until the next one.
    pub versions: Vec<ProductVersion>,
}

/// A metering point on a product for a range of local days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductAssignment {
    /// Metering point (GSRN).
    pub metering_point_id: String,
    /// Product id.
    pub product_id: String,
    /// First local day.
    pub valid_from: NaiveDate,
    /// First local day no longer on the product; `None` is open-ended.
    pub valid_to: Option<NaiveDate>,
}

/// The whole catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProductCatalogue {
    /// Products.
    pub products: Vec<Product>,
    /// Which metering point is on which product when.
    pub assignments: Vec<ProductAssignment>,
}

/// Why a catalogue is unusable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CatalogueError {
    /// Two products share an id.
    #[error("product {0} is defined twice")]
    DuplicateProduct(String),
    /// A product has no version, or two versions start on the same day.
    #[error("product {0} has no versions or two versions with the same valid_from")]
    BadVersions(String),
    /// An assignment names a product that does not exist.
    #[error("metering point {metering_point_id} is assigned to unknown product {product_id}")]
    UnknownProduct {
        /// The metering point.
        metering_point_id: String,
        /// The missing product.
        product_id: String,
    },
    /// Two assignments of one metering point overlap.
    #[error("metering point {0} has overlapping product assignments")]
    OverlappingAssignments(String),
    /// An assignment ends before it starts.
    #[error("metering point {0} has an assignment that ends before it starts")]
    EmptyAssignment(String),
}

/// Resolved terms for one interval of a billing period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductTerm {
    /// Product id.
    pub product_id: String,
    /// Product name.
    pub product_name: String,
    /// `valid_from` of the version these terms come from (explains which version applied).
    pub version_valid_from: NaiveDate,
    /// Inclusive start (UTC).
    pub from: DateTime<Utc>,
    /// Exclusive end (UTC).
    pub to: DateTime<Utc>,
    /// Margin per kWh.
    pub margin: Margin,
    /// Supplier subscription per month.
    pub subscription_per_month: Decimal,
    /// VAT class.
    pub vat_class: VatClass,
}

impl ProductCatalogue {
    /// Checks the invariants [`ProductCatalogue::terms_for`] relies on.
    pub fn validate(&self) -> Result<(), CatalogueError> {
        let mut ids: Vec<&str> = self.products.iter().map(|p| p.id.as_str()).collect();
        ids.sort_unstable();
        if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(CatalogueError::DuplicateProduct(pair[0].to_string()));
        }
        for product in &self.products {
            let mut days: Vec<NaiveDate> = product.versions.iter().map(|v| v.valid_from).collect();
            days.sort_unstable();
            if days.is_empty() || days.windows(2).any(|w| w[0] == w[1]) {
                return Err(CatalogueError::BadVersions(product.id.clone()));
            }
        }
        let mut assignments: Vec<&ProductAssignment> = self.assignments.iter().collect();
        assignments.sort_by(|a, b| {
            a.metering_point_id
                .cmp(&b.metering_point_id)
                .then(a.valid_from.cmp(&b.valid_from))
        });
        for a in &assignments {
            if !self.products.iter().any(|p| p.id == a.product_id) {
                return Err(CatalogueError::UnknownProduct {
                    metering_point_id: a.metering_point_id.clone(),
                    product_id: a.product_id.clone(),
                });
            }
            if a.valid_to.is_some_and(|to| to <= a.valid_from) {
                return Err(CatalogueError::EmptyAssignment(a.metering_point_id.clone()));
            }
        }
        for pair in assignments.windows(2) {
            if pair[0].metering_point_id == pair[1].metering_point_id
                && pair[0].valid_to.is_none_or(|to| to > pair[1].valid_from)
            {
                return Err(CatalogueError::OverlappingAssignments(
                    pair[0].metering_point_id.clone(),
                ));
            }
        }
        Ok(())
    }

    /// The terms that apply to a metering point within a billing period, in time order.
    ///
    /// Intervals of the period without an assignment, or before a product's first
    /// version, get no term; the statement then flags the margin as missing.
    pub fn terms_for(&self, metering_point_id: &str, period: &BillingPeriod) -> Vec<ProductTerm> {
        let mut terms = Vec::new();
        let mut assignments: Vec<&ProductAssignment> = self
            .assignments
            .iter()
            .filter(|a| a.metering_point_id == metering_point_id)
            .collect();
        assignments.sort_by_key(|a| a.valid_from);
        for assignment in assignments {
            let Some(product) = self.products.iter().find(|p| p.id == assignment.product_id) else {
                continue;
            };
            let a_from = local_midnight(assignment.valid_from).max(period.start());
            let a_to = assignment
                .valid_to
                .map(local_midnight)
                .unwrap_or(period.end())
                .min(period.end());
            if a_from >= a_to {
                continue;
            }
            let mut versions: Vec<&ProductVersion> = product.versions.iter().collect();
            versions.sort_by_key(|v| v.valid_from);
            for (i, version) in versions.iter().enumerate() {
                let v_from = local_midnight(version.valid_from);
                let v_to = versions
                    .get(i + 1)
                    .map(|next| local_midnight(next.valid_from));
                let from = v_from.max(a_from);
                let to = v_to.map_or(a_to, |t| t.min(a_to));
                if from < to {
                    terms.push(ProductTerm {
                        product_id: product.id.clone(),
                        product_name: product.name.clone(),
                        version_valid_from: version.valid_from,
                        from,
                        to,
                        margin: version.margin.clone(),
                        subscription_per_month: version.subscription_per_month,
                        vat_class: version.vat_class,
                    });
                }
            }
        }
        terms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::BillingMonth;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    fn day(y: i32, m: u32, dd: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, dd).expect("date")
    }

    fn catalogue() -> ProductCatalogue {
        ProductCatalogue {
            products: vec![Product {
                id: "spot-plus".into(),
                name: "Spot Plus".into(),
                versions: vec![
                    ProductVersion {
                        valid_from: day(2025, 1, 1),
                        margin: Margin::Flat { per_kwh: d("0.11") },
                        subscription_per_month: d("19"),
                        vat_class: VatClass::Vat25,
                    },
                    ProductVersion {
                        valid_from: day(2026, 1, 15),
                        margin: Margin::Flat { per_kwh: d("0.09") },
                        subscription_per_month: d("25"),
                        vat_class: VatClass::Vat25,
                    },
                ],
            }],
            assignments: vec![ProductAssignment {
                metering_point_id: "571313100000000001".into(),
                product_id: "spot-plus".into(),
                valid_from: day(2026, 1, 10),
                valid_to: None,
            }],
        }
    }

    #[test]
    fn versions_and_assignments_split_the_month() {
        let c = catalogue();
        c.validate().expect("valid");
        let period = BillingMonth::new(2026, 1).expect("month").period();
        let terms = c.terms_for("571313100000000001", &period);
        assert_eq!(terms.len(), 2);
        assert_eq!(terms[0].from, local_midnight(day(2026, 1, 10)));
        assert_eq!(terms[0].to, local_midnight(day(2026, 1, 15)));
        assert_eq!(terms[0].margin, Margin::Flat { per_kwh: d("0.11") });
        assert_eq!(terms[1].to, period.end());
        assert_eq!(terms[1].subscription_per_month, d("25"));
        assert!(c.terms_for("other", &period).is_empty());
    }

    #[test]
    fn overlapping_assignments_are_rejected() {
        let mut c = catalogue();
        c.assignments.push(ProductAssignment {
            metering_point_id: "571313100000000001".into(),
            product_id: "spot-plus".into(),
            valid_from: day(2026, 2, 1),
            valid_to: None,
        });
        assert_eq!(
            c.validate(),
            Err(CatalogueError::OverlappingAssignments(
                "571313100000000001".into()
            ))
        );
    }

    #[test]
    fn margin_by_tariff_period_follows_local_bands() {
        let m = Margin::ByTariffPeriod {
            lavlast: d("0.01"),
            hojlast: d("0.02"),
            spidslast: d("0.03"),
        };
        let t: DateTime<Utc> = "2026-01-15T16:30:00Z".parse().expect("t");
        assert_eq!(m.at(t), d("0.03"));
    }

    #[test]
    fn catalogue_round_trips_through_json() {
        let c = catalogue();
        let json = serde_json::to_string(&c).expect("json");
        let back: ProductCatalogue = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, c);
    }
}
