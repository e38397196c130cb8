//! Codes from DataHub's code lists.
//!
//! Lists whose meaning processors branch on (quality, metering point type, settlement method,
//! charge type, VAT payer) are enums. Long lists (roles, process types, document types, units,
//! reason codes, …) are small `Copy` newtypes over the list's own `&'static str`, with named
//! constants for the codes this pipeline uses: reading checks membership without allocating.
//!
//! On the wire a code is a bare string; where a field is wrapped (`{"value": "E17"}`) the
//! model declares that. A code outside its list is a schema violation. The empty string is
//! schema-valid (every list is `oneOf` the standard list and a local list whose only entry is
//! `""`) but meaningless, so it is business-invalid.

mod lists;

pub use lists::*;

use serde::Deserializer;

use crate::de::{At, read_str};

/// Reads a bare code string and checks it against its list.
pub(crate) fn read_code<'de, D: Deserializer<'de>, T>(
    de: D,
    at: At<'_>,
    list: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, D::Error> {
    let text = read_str(de)?;
    if let Some(code) = parse(&text) {
        return Ok(code);
    }
    if text.is_empty() {
        Err(at.business(format!("empty code where a {list} code is needed")))
    } else {
        Err(at.schema(format!("`{text}` is not in the code list {list}")))
    }
}

/// A newtype over a code list (see the module docs).
macro_rules! code_list {
    (
        $(#[$meta:meta])*
        $name:ident, $list:literal,
        [ $($code:literal),* $(,)? ],
        { $( $(#[$cmeta:meta])* $const:ident = $value:literal ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(&'static str);

        impl $name {
            /// Every code in the list, sorted.
            pub const ALL: &'static [&'static str] = &[$($code),*];
            /// The list's name in DataHub's code-list schema.
            pub const LIST: &'static str = $list;
            $( $(#[$cmeta])* pub const $const: Self = Self($value); )*

            /// The code if it is in the list.
            pub fn parse(code: &str) -> Option<Self> {
                Self::ALL
                    .binary_search(&code)
                    .ok()
                    .and_then(|i| Self::ALL.get(i))
                    .map(|c| Self(c))
            }

            /// The code as written on the wire.
            pub fn as_str(self) -> &'static str {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.0)
            }
        }

        impl<'de> $crate::de::Read<'de> for $name {
            fn read<D: serde::Deserializer<'de>>(de: D, at: $crate::de::At<'_>) -> Result<Self, D::Error> {
                $crate::codes::read_code(de, at, $list, Self::parse)
            }
        }

        impl $crate::ser::Write for $name {
            fn write(&self, w: &mut $crate::ser::JsonWriter) {
                w.string(self.0);
            }
        }
    };
}

pub(crate) use code_list;

/// An enum over a short code list (see the module docs).
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $list:literal, $(default = $default:ident,)?
        { $( $(#[$vmeta:meta])* $variant:ident = $code:literal ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every variant, in code-list order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];
            /// The list's name in DataHub's code-list schema.
            pub const LIST: &'static str = $list;

            /// The variant for a code.
            pub fn parse(code: &str) -> Option<Self> {
                match code {
                    $( $code => Some(Self::$variant), )*
                    _ => None,
                }
            }

            /// The code as written on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $code, )*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::de::Read<'de> for $name {
            fn read<D: serde::Deserializer<'de>>(de: D, at: $crate::de::At<'_>) -> Result<Self, D::Error> {
                $crate::codes::read_code(de, at, $list, Self::parse)
            }
            $(
                fn absent() -> Option<Self> {
                    Some(Self::$default)
                }
            )?
        }

        impl $crate::ser::Write for $name {
            fn write(&self, w: &mut $crate::ser::JsonWriter) {
                w.string(self.as_str());
            }
            $(
                fn is_absent(&self) -> bool {
                    *self == Self::$default
                }
            )?
        }

        $(
            impl Default for $name {
                fn default() -> Self {
                    Self::$default
                }
            }
        )?
    };
}

code_enum! {
    /// Quality of a point. An absent quality means "as provided" (A04): the model holds
    /// [`Quality::AsProvided`] and the writer leaves A04 out, as DataHub's CIM writers do.
    Quality, "QualityTypeList", default = AsProvided, {
        /// A01, adjusted.
        Adjusted = "A01",
        /// A02, not available: the point carries no quantity.
        NotAvailable = "A02",
        /// A03, estimated.
        Estimated = "A03",
        /// A04, as provided (measured); the default when `quality` is absent.
        AsProvided = "A04",
        /// A05, incomplete.
        Incomplete = "A05",
        /// A06, calculated.
        Calculated = "A06",
    }
}

code_enum! {
    /// Metering point type (`marketEvaluationPoint.type`): E17 consumption, E18 production,
    /// E20 exchange, and the child types D01…D99.
    MeteringPointType, "MeteringPointTypeList", {
        /// D01, VE production.
        VeProduction = "D01",
        /// D02, analysis.
        Analysis = "D02",
        /// D03, not used.
        NotUsed = "D03",
        /// D04, surplus production group 6.
        SurplusProductionGroup6 = "D04",
        /// D05, net production.
        NetProduction = "D05",
        /// D06, supply to grid.
        SupplyToGrid = "D06",
        /// D07, consumption from grid.
        ConsumptionFromGrid = "D07",
        /// D08, wholesale services / information.
        WholesaleServicesInformation = "D08",
        /// D09, own production.
        OwnProduction = "D09",
        /// D10, net from grid.
        NetFromGrid = "D10",
        /// D11, net to grid.
        NetToGrid = "D11",
        /// D12, total consumption.
        TotalConsumption = "D12",
        /// D13, net loss correction.
        NetLossCorrection = "D13",
        /// D14, electrical heating.
        ElectricalHeating = "D14",
        /// D15, net consumption.
        NetConsumption = "D15",
        /// D17, other consumption.
        OtherConsumption = "D17",
        /// D18, other production.
        OtherProduction = "D18",
        /// D19, capacity settlement.
        CapacitySettlement = "D19",
        /// D20, exchange of reactive energy.
        ExchangeReactiveEnergy = "D20",
        /// D21, collective net production.
        CollectiveNetProduction = "D21",
        /// D22, collective net consumption.
        CollectiveNetConsumption = "D22",
        /// D99, internal use.
        InternalUse = "D99",
        /// E17, consumption: the accounting points a supplier bills.
        Consumption = "E17",
        /// E18, production.
        Production = "E18",
        /// E19, combined.
        Combined = "E19",
        /// E20, exchange between grid areas.
        Exchange = "E20",
    }
}

impl MeteringPointType {
    /// True for the child metering point types (D01…D99), which hang under an accounting point.
    pub fn is_child(self) -> bool {
        self.as_str().starts_with('D')
    }

    /// Whether metered quantities of this type may be negative. Metered energy is a
    /// non-negative volume in a direction; only net loss correction (D13) is a signed
    /// correction. (Interpretation: DataHub publishes no rule; see `docs/cim.md`.)
    pub fn allows_negative_quantity(self) -> bool {
        self == Self::NetLossCorrection
    }
}

code_enum! {
    /// Settlement method of an accounting point: flex (D01), profiled (E01), non-profiled (E02).
    SettlementMethod, "SettlementMethodTypeList", {
        /// D01, flex settled.
        Flex = "D01",
        /// E01, profiled.
        Profiled = "E01",
        /// E02, non-profiled (hourly/quarter-hourly).
        NonProfiled = "E02",
        /// E15, non-profiled with special rules.
        NonProfiledSpecial = "E15",
    }
}

code_enum! {
    /// Kind of charge: subscription, fee or tariff.
    ChargeKind, "ChargeTypeList", {
        /// D01, subscription (per month).
        Subscription = "D01",
        /// D02, fee (one-off).
        Fee = "D02",
        /// D03, tariff (per kWh).
        Tariff = "D03",
    }
}

code_enum! {
    /// Who pays VAT on a charge.
    VatPayer, "VATPayerTypeList", {
        /// D01, paid by the issuer.
        Issuer = "D01",
        /// D02, paid by the recipient.
        Recipient = "D02",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_constants_are_in_their_lists() {
        for role in [
            Role::ENERGY_SUPPLIER,
            Role::METERED_DATA_ADMINISTRATOR,
            Role::METERING_POINT_ADMINISTRATOR,
        ] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(
            ProcessType::parse("E23"),
            Some(ProcessType::PERIODIC_METERING)
        );
        assert_eq!(Unit::parse("KWH"), Some(Unit::KWH));
        assert_eq!(Unit::parse("kwh"), None);
        assert_eq!(Quality::parse("A06"), Some(Quality::Calculated));
        assert!(MeteringPointType::ElectricalHeating.is_child());
        assert!(!MeteringPointType::Consumption.is_child());
    }
}
