//! Direct codecs of provisional settlements and their month key: written
//! by settle on every change of a metering point's month.

use super::binary::{self as b, ReadError, Reader, Sink};
use super::{DirectCodec, array, at};
use crate::records::{ProvisionalSettlement, RecordError, SettlementLine, SettlementMonthKey};

const PROVISIONAL: &str = "afregning.settlement.ProvisionalSettlement";
const LINE: &str = "afregning.settlement.SettlementLine";
const MONTH_KEY: &str = "afregning.settlement.SettlementMonthKey";

/// Quantities, prices and DKK: `decimal(18, 6)`.
const SCALE: u32 = 6;

impl DirectCodec for SettlementLine {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::enumeration(out, self.component);
        b::string(out, &self.description);
        b::opt_string(out, self.charge_owner_gln.as_ref());
        match self.charge_type {
            None => b::long(out, 0),
            Some(t) => {
                b::long(out, 1);
                b::enumeration(out, t);
            }
        }
        b::opt_string(out, self.charge_code.as_ref());
        b::decimal18(out, self.quantity, SCALE).map_err(at(LINE, "quantity"))?;
        b::string(out, &self.quantity_unit);
        b::decimal18(out, self.unit_price, SCALE).map_err(at(LINE, "unit_price"))?;
        b::decimal18(out, self.amount, SCALE).map_err(at(LINE, "amount"))?;
        b::enumeration(out, self.vat_class);
        b::long(out, self.version);
        b::string(out, &self.idempotency_key);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            component: r.enumeration()?,
            description: r.string()?,
            charge_owner_gln: r.opt_string()?,
            charge_type: if r.present()? {
                Some(r.enumeration()?)
            } else {
                None
            },
            charge_code: r.opt_string()?,
            quantity: r.decimal(SCALE)?,
            quantity_unit: r.string()?,
            unit_price: r.decimal(SCALE)?,
            amount: r.decimal(SCALE)?,
            vat_class: r.enumeration()?,
            version: r.long()?,
            idempotency_key: r.string()?,
        })
    }
}

impl DirectCodec for ProvisionalSettlement {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.gsrn);
        b::date(out, self.month_start).map_err(at(PROVISIONAL, "month_start"))?;
        b::string(out, &self.grid_area);
        b::opt_string(out, self.energy_supplier_gln.as_ref());
        b::long(out, self.version);
        array(out, &self.lines)?;
        b::decimal18(out, self.total_excl_vat, SCALE).map_err(at(PROVISIONAL, "total_excl_vat"))?;
        b::decimal18(out, self.vat_amount, SCALE).map_err(at(PROVISIONAL, "vat_amount"))?;
        b::decimal18(out, self.total_incl_vat, SCALE).map_err(at(PROVISIONAL, "total_incl_vat"))?;
        b::int(out, self.days_settled);
        b::int(out, self.days_in_month);
        b::string(out, &self.idempotency_key);
        b::timestamp(out, &self.computed_at).map_err(at(PROVISIONAL, "computed_at"))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            gsrn: r.string()?,
            month_start: r.date()?,
            grid_area: r.string()?,
            energy_supplier_gln: r.opt_string()?,
            version: r.long()?,
            lines: r.array(SettlementLine::decode)?,
            total_excl_vat: r.decimal(SCALE)?,
            vat_amount: r.decimal(SCALE)?,
            total_incl_vat: r.decimal(SCALE)?,
            days_settled: r.int()?,
            days_in_month: r.int()?,
            idempotency_key: r.string()?,
            computed_at: r.timestamp()?,
        })
    }
}

impl DirectCodec for SettlementMonthKey {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.gsrn);
        b::date(out, self.month_start).map_err(at(MONTH_KEY, "month_start"))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            gsrn: r.string()?,
            month_start: r.date()?,
        })
    }
}
