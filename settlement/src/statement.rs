//! The result of settling one metering point for one billing period: lines
//! per component with the details that explain them, VAT per class, and
//! totals.
//!
//! A line's amount is `None` when any of its details could not be priced; it
//! is never silently zero. The statement's totals are `None` until every line
//! has an amount and no position is missing; the `known_*` totals show what
//! could be computed so far.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::arith;
use crate::calendar::BillingPeriod;
use crate::charges::{ChargeKey, ChargeResolution, ENERGINET_GLN, VatClass};
use crate::quantity::QualitySet;
use crate::rounding::{round_amount, round_ore};

/// What a line is, for grouping on the invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// kWh × day-ahead price per MTU.
    SpotEnergy,
    /// kWh × the supplier's margin.
    SupplierMargin,
    /// The supplier's own subscription.
    SupplierSubscription,
    /// A grid company's tariff (nettarif).
    GridTariff,
    /// A grid company's subscription (netabonnement).
    GridSubscription,
    /// A grid company's fee.
    GridFee,
    /// Energinet's non-tax tariffs (transmissions nettarif 40000, systemtarif 41000).
    EnerginetTariff,
    /// Energinet's subscription (systemabonnement 41004).
    EnerginetSubscription,
    /// A fee owned by Energinet.
    EnerginetFee,
    /// A tax tariff (elafgift, EA-001).
    ElectricityTax,
}

impl Component {
    /// The component of a DataHub charge: tax tariffs are elafgift; otherwise by owner and type.
    pub fn of_charge(key: &ChargeKey, tax: bool) -> Self {
        use crate::charges::ChargeType::*;
        if tax {
            return Component::ElectricityTax;
        }
        let energinet = key.owner == ENERGINET_GLN;
        match (key.charge_type, energinet) {
            (Tariff, false) => Component::GridTariff,
            (Subscription, false) => Component::GridSubscription,
            (Fee, false) => Component::GridFee,
            (Tariff, true) => Component::EnerginetTariff,
            (Subscription, true) => Component::EnerginetSubscription,
            (Fee, true) => Component::EnerginetFee,
        }
    }
}

/// Where a line's prices come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LineSource {
    /// The day-ahead price series of the metering point's price area.
    Spot,
    /// A product's margin; `None` for supplied time without a product.
    Margin {
        /// Product id.
        product_id: Option<String>,
    },
    /// A product's subscription.
    ProductSubscription {
        /// Product id.
        product_id: String,
    },
    /// A DataHub charge.
    Charge {
        /// Charge identity.
        key: ChargeKey,
        /// Price resolution.
        resolution: ChargeResolution,
        /// Tax indicator.
        tax: bool,
    },
}

/// Unit of a line's quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// kWh (tariffs, spot, margin).
    Kwh,
    /// Pieces per day (subscriptions: pieces × days; fees: pieces).
    Pieces,
}

/// The unit price of a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum UnitPrice {
    /// Every detail has this price.
    Single {
        /// The price.
        price: Decimal,
    },
    /// Prices vary over the details (a price series); see the details.
    Series {
        /// Lowest price.
        min: Decimal,
        /// Highest price.
        max: Decimal,
    },
    /// No detail has a price.
    Missing,
}

/// The price a detail used, as it was given (a tariff's hourly point, a subscription's monthly
/// point, a spot MTU), so that an amount can be traced back to its input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceSource {
    /// Time of the price point or start of the MTU.
    pub time: DateTime<Utc>,
    /// The price as given.
    pub price: Decimal,
}

/// One charge time (tariff hour or day, subscription day, spot MTU) of a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    /// Start of the charge time.
    pub start: DateTime<Utc>,
    /// End of the charge time.
    pub end: DateTime<Utc>,
    /// kWh, or pieces for subscriptions and fees.
    pub quantity: Decimal,
    /// Qualities of the positions summed (empty for subscriptions and fees).
    pub qualities: QualitySet,
    /// Positions summed into the quantity.
    pub positions: u32,
    /// Of which missing.
    pub missing_positions: u32,
    /// Unit price applied (for a subscription: the daily price).
    pub price: Option<Decimal>,
    /// The input price it came from.
    pub price_source: Option<PriceSource>,
    /// `quantity × price`; rounded to 6 decimals for DataHub charges, exact for spot and margin.
    pub amount: Option<Decimal>,
}

/// One line of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Invoice grouping.
    pub component: Component,
    /// Price source (charge identity, product, spot).
    pub source: LineSource,
    /// VAT class.
    pub vat_class: VatClass,
    /// Unit of `quantity`.
    pub unit: Unit,
    /// Σ detail quantities.
    pub quantity: Decimal,
    /// The unit price or a summary of the price series.
    pub unit_price: UnitPrice,
    /// Σ detail amounts rounded to 6 decimals; `None` if any detail has no price.
    pub amount: Option<Decimal>,
    /// Σ of the amounts that could be computed (equals `amount` when complete).
    pub known_amount: Decimal,
    /// Details without a price.
    pub missing_prices: u32,
    /// Positions that were missing in the details.
    pub missing_positions: u32,
    /// Qualities of all positions used.
    pub qualities: QualitySet,
    /// The charge times the amount is made of.
    pub details: Vec<Detail>,
}

impl Line {
    /// Builds a line from its details, computing quantity, unit price, amount and flags.
    pub fn from_details(
        component: Component,
        source: LineSource,
        vat_class: VatClass,
        unit: Unit,
        details: Vec<Detail>,
    ) -> Self {
        let mut quantity = Decimal::ZERO;
        let mut known = Decimal::ZERO;
        let mut missing_prices = 0u32;
        let mut missing_positions = 0u32;
        let mut qualities = QualitySet::EMPTY;
        let mut range: Option<(Decimal, Decimal)> = None;
        for d in &details {
            quantity = arith::add(quantity, d.quantity);
            missing_positions += d.missing_positions;
            qualities.extend(d.qualities);
            match d.amount {
                Some(amount) => known = arith::add(known, amount),
                None => missing_prices += 1,
            }
            if let Some(price) = d.price {
                range = Some(match range {
                    None => (price, price),
                    Some((min, max)) => (
                        if arith::cmp(price, min).is_lt() {
                            price
                        } else {
                            min
                        },
                        if arith::cmp(price, max).is_gt() {
                            price
                        } else {
                            max
                        },
                    ),
                });
            }
        }
        let unit_price = match range {
            None => UnitPrice::Missing,
            Some((min, max)) if arith::cmp(min, max).is_eq() => UnitPrice::Single { price: min },
            Some((min, max)) => UnitPrice::Series { min, max },
        };
        let known_amount = round_amount(known);
        Self {
            component,
            source,
            vat_class,
            unit,
            quantity,
            unit_price,
            amount: (missing_prices == 0).then_some(known_amount),
            known_amount,
            missing_prices,
            missing_positions,
            qualities,
            details,
        }
    }
}

/// Something the statement could not settle, listed so that nothing missing is silent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Issue {
    /// Positions of the supply periods that were not received (counted as 0).
    MissingPositions {
        /// How many.
        count: u32,
        /// The first one.
        first: DateTime<Utc>,
    },
    /// Details of a line without a price.
    MissingPrices {
        /// The line's source.
        source: LineSource,
        /// How many details.
        count: u32,
        /// The first one.
        first: DateTime<Utc>,
    },
    /// A charge link whose charge was not given.
    UnknownCharge {
        /// The linked charge.
        key: ChargeKey,
    },
    /// Supplied time without a product (no margin or subscription can be charged).
    NoProduct {
        /// Start of the uncovered interval.
        from: DateTime<Utc>,
        /// End of the uncovered interval.
        to: DateTime<Utc>,
    },
    /// Positions outside every supply period or not on the resolution's grid.
    IgnoredPositions {
        /// How many.
        count: u32,
    },
}

impl Issue {
    /// Whether the issue keeps the statement from being invoiced.
    ///
    /// Positions outside the supply periods are reported but do not block: a
    /// processor may well hold positions from before a move-in.
    pub fn blocks_invoice(&self) -> bool {
        !matches!(self, Issue::IgnoredPositions { .. })
    }
}

/// VAT of one VAT class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatSubtotal {
    /// The class.
    pub vat_class: VatClass,
    /// Its rate.
    pub rate: Decimal,
    /// Σ known line amounts of the class.
    pub basis: Decimal,
    /// `round6(basis × rate)`.
    pub vat: Decimal,
}

/// Statement totals in DKK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Σ line amounts.
    pub excl_vat: Decimal,
    /// Σ VAT.
    pub vat: Decimal,
    /// `excl_vat + vat`.
    pub incl_vat: Decimal,
}

/// The settled statement of one metering point for one billing period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthStatement {
    /// The metering point.
    pub metering_point_id: String,
    /// The period.
    pub period: BillingPeriod,
    /// Lines in component order, then by source.
    pub lines: Vec<Line>,
    /// VAT per class, over known amounts.
    pub vat: Vec<VatSubtotal>,
    /// Totals of what could be computed, 6 decimals.
    pub known_totals: Totals,
    /// Totals, 6 decimals; `None` until the statement is complete.
    pub totals: Option<Totals>,
    /// Invoice totals rounded to øre (`incl_vat = excl_vat + vat` after rounding each); `None` until complete.
    pub invoice_totals: Option<Totals>,
    /// No issue that blocks invoicing: no missing position, price, charge or product.
    pub complete: bool,
    /// Everything that keeps the statement from being complete.
    pub issues: Vec<Issue>,
}

impl MonthStatement {
    /// The statement of `lines`, each with the start of its first detail without a
    /// price (the fold keeps it even when it keeps no details).
    pub(crate) fn assemble(
        metering_point_id: String,
        period: BillingPeriod,
        mut priced: Vec<(Line, Option<DateTime<Utc>>)>,
        mut issues: Vec<Issue>,
    ) -> Self {
        priced.sort_by(|(a, _), (b, _)| {
            a.component
                .cmp(&b.component)
                .then_with(|| a.source.cmp(&b.source))
        });
        for (line, first_unpriced) in &priced {
            if line.missing_prices > 0
                && let Some(first) = first_unpriced
            {
                issues.push(Issue::MissingPrices {
                    source: line.source.clone(),
                    count: line.missing_prices,
                    first: *first,
                });
            }
        }
        let lines: Vec<Line> = priced.into_iter().map(|(line, _)| line).collect();
        let mut vat = Vec::new();
        for class in [VatClass::NoVat, VatClass::Vat25] {
            let lines_of_class: Vec<&Line> =
                lines.iter().filter(|l| l.vat_class == class).collect();
            if lines_of_class.is_empty() {
                continue;
            }
            let basis: Decimal = round_amount(lines_of_class.iter().map(|l| l.known_amount).sum());
            vat.push(VatSubtotal {
                vat_class: class,
                rate: class.rate(),
                basis,
                vat: round_amount(basis * class.rate()),
            });
        }
        let excl_vat = round_amount(lines.iter().map(|l| l.known_amount).sum());
        let vat_sum = round_amount(vat.iter().map(|v| v.vat).sum());
        let known_totals = Totals {
            excl_vat,
            vat: vat_sum,
            incl_vat: round_amount(excl_vat + vat_sum),
        };
        let complete = !issues.iter().any(Issue::blocks_invoice);
        let totals = complete.then(|| known_totals.clone());
        let invoice_totals = complete.then(|| {
            let excl = round_ore(known_totals.excl_vat);
            let vat = round_ore(known_totals.vat);
            Totals {
                excl_vat: excl,
                vat,
                incl_vat: excl + vat,
            }
        });
        Self {
            metering_point_id,
            period,
            lines,
            vat,
            known_totals,
            totals,
            invoice_totals,
            complete,
            issues,
        }
    }

    /// The line of a DataHub charge, if present.
    pub fn charge_line(&self, key: &ChargeKey) -> Option<&Line> {
        self.lines
            .iter()
            .find(|l| matches!(&l.source, LineSource::Charge { key: k, .. } if k == key))
    }

    /// The lines of a component.
    pub fn lines_of(&self, component: Component) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(move |l| l.component == component)
    }
}
