//! Direct codecs of spot prices, charge prices, charge links and their keys:
//! read per quarter hour by aggregate and settle, and per metering point when
//! settle looks its links up or hears of a changed one.

use super::binary::{self as b, ReadError, Reader, Sink};
use super::{DirectCodec, array, at};
use crate::records::{
    ChargeLink, ChargeLinkKey, ChargePrice, ChargePriceKey, ChargePricePoint, RecordError,
    SpotPrice, SpotPriceKey,
};

const SPOT_PRICE: &str = "afregning.market.SpotPrice";
const SPOT_PRICE_KEY: &str = "afregning.market.SpotPriceKey";
const CHARGE_PRICE: &str = "afregning.charges.ChargePrice";
const CHARGE_PRICE_POINT: &str = "afregning.charges.ChargePricePoint";
const CHARGE_PRICE_KEY: &str = "afregning.charges.ChargePriceKey";
const CHARGE_LINK: &str = "afregning.charges.ChargeLink";
const CHARGE_LINK_KEY: &str = "afregning.charges.ChargeLinkKey";

/// Prices: `decimal(18, 6)`.
const PRICE_SCALE: u32 = 6;

impl DirectCodec for SpotPrice {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.price_area);
        b::timestamp(out, &self.start).map_err(at(SPOT_PRICE, "start"))?;
        b::timestamp(out, &self.end).map_err(at(SPOT_PRICE, "end"))?;
        b::enumeration(out, self.resolution);
        b::decimal18(out, self.price_dkk_per_mwh, PRICE_SCALE)
            .map_err(at(SPOT_PRICE, "price_dkk_per_mwh"))?;
        b::opt_decimal18(out, self.price_eur_per_mwh, PRICE_SCALE)
            .map_err(at(SPOT_PRICE, "price_eur_per_mwh"))?;
        b::string(out, &self.source);
        b::timestamp(out, &self.fetched_at).map_err(at(SPOT_PRICE, "fetched_at"))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            price_area: r.string()?,
            start: r.timestamp()?,
            end: r.timestamp()?,
            resolution: r.enumeration()?,
            price_dkk_per_mwh: r.decimal(PRICE_SCALE)?,
            price_eur_per_mwh: r.opt_decimal(PRICE_SCALE)?,
            source: r.string()?,
            fetched_at: r.timestamp()?,
        })
    }
}

impl DirectCodec for SpotPriceKey {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.price_area);
        b::timestamp(out, &self.start).map_err(at(SPOT_PRICE_KEY, "start"))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            price_area: r.string()?,
            start: r.timestamp()?,
        })
    }
}

impl DirectCodec for ChargePricePoint {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::int(out, self.position);
        b::decimal18(out, self.price, PRICE_SCALE).map_err(at(CHARGE_PRICE_POINT, "price"))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            position: r.int()?,
            price: r.decimal(PRICE_SCALE)?,
        })
    }
}

impl DirectCodec for ChargePrice {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.owner_gln);
        b::enumeration(out, self.charge_type);
        b::string(out, &self.charge_code);
        b::enumeration(out, self.resolution);
        b::timestamp(out, &self.period_start).map_err(at(CHARGE_PRICE, "period_start"))?;
        b::timestamp(out, &self.period_end).map_err(at(CHARGE_PRICE, "period_end"))?;
        array(out, &self.points)?;
        b::string(out, &self.source_message_id);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            owner_gln: r.string()?,
            charge_type: r.enumeration()?,
            charge_code: r.string()?,
            resolution: r.enumeration()?,
            period_start: r.timestamp()?,
            period_end: r.timestamp()?,
            points: r.array(ChargePricePoint::decode)?,
            source_message_id: r.string()?,
        })
    }
}

impl DirectCodec for ChargePriceKey {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.owner_gln);
        b::enumeration(out, self.charge_type);
        b::string(out, &self.charge_code);
        b::timestamp(out, &self.period_start).map_err(at(CHARGE_PRICE_KEY, "period_start"))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            owner_gln: r.string()?,
            charge_type: r.enumeration()?,
            charge_code: r.string()?,
            period_start: r.timestamp()?,
        })
    }
}

impl DirectCodec for ChargeLinkKey {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.gsrn);
        b::string(out, &self.owner_gln);
        b::enumeration(out, self.charge_type);
        b::string(out, &self.charge_code);
        b::timestamp(out, &self.valid_from).map_err(at(CHARGE_LINK_KEY, "valid_from"))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            gsrn: r.string()?,
            owner_gln: r.string()?,
            charge_type: r.enumeration()?,
            charge_code: r.string()?,
            valid_from: r.timestamp()?,
        })
    }
}

impl DirectCodec for ChargeLink {
    fn encode<S: Sink>(&self, out: &mut S) -> Result<(), RecordError> {
        b::string(out, &self.gsrn);
        b::string(out, &self.owner_gln);
        b::enumeration(out, self.charge_type);
        b::string(out, &self.charge_code);
        b::int(out, self.quantity);
        b::timestamp(out, &self.valid_from).map_err(at(CHARGE_LINK, "valid_from"))?;
        // valid_to: the union ["null", timestamp-millis].
        match &self.valid_to {
            None => b::long(out, 0),
            Some(to) => {
                b::long(out, 1);
                b::timestamp(out, to).map_err(at(CHARGE_LINK, "valid_to"))?;
            }
        }
        b::string(out, &self.source_message_id);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, ReadError> {
        Ok(Self {
            gsrn: r.string()?,
            owner_gln: r.string()?,
            charge_type: r.enumeration()?,
            charge_code: r.string()?,
            quantity: r.int()?,
            valid_from: r.timestamp()?,
            valid_to: if r.present()? {
                Some(r.timestamp()?)
            } else {
                None
            },
            source_message_id: r.string()?,
        })
    }
}
