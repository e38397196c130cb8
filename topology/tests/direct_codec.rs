//! The direct Avro codecs against the generic `Value` path, on random
//! records: the same bytes, the same refusals, the same records read back,
//! and the same verdict on corrupted bytes. Why a property test: the direct
//! codec is hand-written per schema, and only random records (odd decimal
//! scales, negative values, empty arrays, every enum symbol, absent optional
//! fields) show that it did not drift from the schema-driven writer.

use std::fmt::Debug;

use afregning_topology::records::direct::{
    self, DirectCodec, Discard, EnrichedTail, Reader, ReadingHead, read_reading_head,
};
use afregning_topology::records::{
    AvroEnum, AvroRecord, ChargeLink, ChargeLinkKey, ChargePrice, ChargePriceKey, ChargePricePoint,
    DailyAggregate, DailyAggregateKey, DatumError, EnrichedReading, HourlyEnergy, MeteringPointKey,
    ProvisionalSettlement, QualityCount, Reading, ReadingPoint, SettlementLine, SettlementMonthKey,
    SpotPrice, SpotPriceKey, TariffPeriodEnergy,
};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[0-9A-Za-z]{0,18}",
        1 => "\\PC{0,8}",
    ]
}

/// Instants from year 1 to 9999; now and then with sub-millisecond nanos,
/// which timestamp-millis refuses.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let ms = -62_135_596_800_000i64..253_402_300_799_999;
    prop_oneof![
        30 => ms.clone().prop_map(|ms| DateTime::from_timestamp_millis(ms).expect("in range")),
        1 => (ms, 1u32..1_000_000).prop_map(|(ms, ns)| {
            DateTime::from_timestamp_millis(ms).expect("in range") + TimeDelta::nanoseconds(i64::from(ns))
        }),
    ]
}

fn day() -> impl Strategy<Value = NaiveDate> {
    (1i32..3_652_059).prop_map(|d| NaiveDate::from_num_days_from_ce_opt(d).expect("in range"))
}

/// Decimals for a `decimal(18, scale)` field: mostly values that fit, written
/// at the schema's scale, a smaller one or a larger one with trailing zeros
/// (which the writer rescales); now and then anything rust_decimal holds
/// (too many decimals or digits, which the writer refuses).
fn decimal(scale: u32) -> impl Strategy<Value = Decimal> {
    let fits = (
        -999_999_999_999_999_999i128..=999_999_999_999_999_999,
        0u32..=scale + 4,
    )
        .prop_map(move |(m, written)| {
            if written <= scale {
                Decimal::from_i128_with_scale(m / 10i128.pow(scale - written), written)
            } else {
                Decimal::from_i128_with_scale(m * 10i128.pow(written - scale), written)
            }
        });
    let small =
        (-2_000i128..2_000, 0u32..=scale).prop_map(|(m, s)| Decimal::from_i128_with_scale(m, s));
    let any = (any::<i64>(), any::<u32>(), 0u32..=28).prop_map(|(hi, lo, s)| {
        let m = (i128::from(hi) << 32) | i128::from(lo);
        Decimal::from_i128_with_scale(m, s)
    });
    prop_oneof![10 => fits, 5 => small, 1 => any]
}

fn symbol<E: AvroEnum + Debug>() -> impl Strategy<Value = E> {
    (0..E::SYMBOLS.len()).prop_map(|i| E::from_index(i).expect("a symbol"))
}

fn items<T: Debug>(item: impl Strategy<Value = T>) -> impl Strategy<Value = Vec<T>> {
    prop::collection::vec(item, 0..6)
}

fn reading_point() -> impl Strategy<Value = ReadingPoint> {
    (any::<i32>(), prop::option::of(decimal(3)), symbol()).prop_map(
        |(position, quantity, quality)| ReadingPoint {
            position,
            quantity,
            quality,
        },
    )
}

prop_compose! {
    fn reading()(
        gsrn in text(), metering_point_type in text(), resolution in symbol(),
        period_start in instant(), period_end in instant(), registered_at in instant(),
        unit in text(), product in prop::option::of(text()),
        business_reason in prop::option::of(text()), source_message_id in text(),
        transaction_id in text(), points in items(reading_point()),
    ) -> Reading {
        Reading {
            gsrn, metering_point_type, resolution, period_start, period_end, registered_at,
            unit, product, business_reason, source_message_id, transaction_id, points,
        }
    }
}

prop_compose! {
    fn tail()(
        grid_area in text(), price_area in prop::option::of(text()),
        settlement_method in prop::option::of(symbol()),
        energy_supplier_gln in prop::option::of(text()), master_data_valid_from in instant(),
    ) -> EnrichedTail {
        EnrichedTail { grid_area, price_area, settlement_method, energy_supplier_gln, master_data_valid_from }
    }
}

fn enriched() -> impl Strategy<Value = EnrichedReading> {
    (reading(), tail()).prop_map(|(r, t)| t.into_enriched(r))
}

prop_compose! {
    fn daily()(
        head in (text(), day(), instant(), instant(), text(), prop::option::of(text()), symbol()),
        hours in items((instant(), decimal(3), any::<i32>(), prop::option::of(decimal(6))).prop_map(
            |(hour_start, kwh, positions, spot_price_dkk_per_kwh)| HourlyEnergy { hour_start, kwh, positions, spot_price_dkk_per_kwh })),
        tariff_periods in items((text(), decimal(3)).prop_map(|(tariff_period, kwh)| TariffPeriodEnergy { tariff_period, kwh })),
        total_kwh in decimal(3), spot_cost_dkk in prop::option::of(decimal(6)),
        counts in (any::<i32>(), any::<i32>(), any::<bool>()),
        quality_counts in items((symbol(), any::<i32>()).prop_map(|(quality, positions)| QualityCount { quality, positions })),
        version in any::<i64>(), computed_at in instant(),
    ) -> DailyAggregate {
        let (gsrn, local_date, day_start, day_end, grid_area, price_area, resolution) = head;
        DailyAggregate {
            gsrn, local_date, day_start, day_end, grid_area, price_area, resolution, hours,
            tariff_periods, total_kwh, spot_cost_dkk, expected_positions: counts.0,
            received_positions: counts.1, complete: counts.2, quality_counts, version, computed_at,
        }
    }
}

prop_compose! {
    fn line()(
        head in (symbol(), text(), prop::option::of(text()), prop::option::of(symbol()), prop::option::of(text())),
        money in (decimal(6), text(), decimal(6), decimal(6)),
        vat_class in symbol(), version in any::<i64>(), idempotency_key in text(),
    ) -> SettlementLine {
        let (component, description, charge_owner_gln, charge_type, charge_code) = head;
        let (quantity, quantity_unit, unit_price, amount) = money;
        SettlementLine {
            component, description, charge_owner_gln, charge_type, charge_code, quantity,
            quantity_unit, unit_price, amount, vat_class, version, idempotency_key,
        }
    }
}

prop_compose! {
    fn provisional()(
        gsrn in text(), month_start in day(), grid_area in text(),
        energy_supplier_gln in prop::option::of(text()), version in any::<i64>(),
        lines in items(line()), totals in (decimal(6), decimal(6), decimal(6)),
        days_settled in any::<i32>(), days_in_month in any::<i32>(),
        idempotency_key in text(), computed_at in instant(),
    ) -> ProvisionalSettlement {
        ProvisionalSettlement {
            gsrn, month_start, grid_area, energy_supplier_gln, version, lines,
            total_excl_vat: totals.0, vat_amount: totals.1, total_incl_vat: totals.2,
            days_settled, days_in_month, idempotency_key, computed_at,
        }
    }
}

prop_compose! {
    fn spot_price()(
        price_area in text(), start in instant(), end in instant(), resolution in symbol(),
        price_dkk_per_mwh in decimal(6), price_eur_per_mwh in prop::option::of(decimal(6)),
        source in text(), fetched_at in instant(),
    ) -> SpotPrice {
        SpotPrice { price_area, start, end, resolution, price_dkk_per_mwh, price_eur_per_mwh, source, fetched_at }
    }
}

prop_compose! {
    fn charge_price()(
        owner_gln in text(), charge_type in symbol(), charge_code in text(), resolution in symbol(),
        period_start in instant(), period_end in instant(),
        points in items((any::<i32>(), decimal(6)).prop_map(|(position, price)| ChargePricePoint { position, price })),
        source_message_id in text(),
    ) -> ChargePrice {
        ChargePrice { owner_gln, charge_type, charge_code, resolution, period_start, period_end, points, source_message_id }
    }
}

prop_compose! {
    fn charge_link()(
        gsrn in text(), owner_gln in text(), charge_type in symbol(), charge_code in text(),
        quantity in any::<i32>(), valid_from in instant(), valid_to in prop::option::of(instant()),
        source_message_id in text(),
    ) -> ChargeLink {
        ChargeLink { gsrn, owner_gln, charge_type, charge_code, quantity, valid_from, valid_to, source_message_id }
    }
}

prop_compose! {
    fn charge_link_key()(
        gsrn in text(), owner_gln in text(), charge_type in symbol(), charge_code in text(),
        valid_from in instant(),
    ) -> ChargeLinkKey {
        ChargeLinkKey { gsrn, owner_gln, charge_type, charge_code, valid_from }
    }
}

fn keys() -> impl Strategy<
    Value = (
        MeteringPointKey,
        DailyAggregateKey,
        SpotPriceKey,
        ChargePriceKey,
        SettlementMonthKey,
    ),
> {
    (
        text(),
        day(),
        (text(), instant()),
        (text(), symbol(), text(), instant()),
        day(),
    )
        .prop_map(
            |(
                gsrn,
                date,
                (price_area, start),
                (owner_gln, charge_type, charge_code, period_start),
                month_start,
            )| {
                (
                    MeteringPointKey { gsrn: gsrn.clone() },
                    DailyAggregateKey {
                        gsrn: gsrn.clone(),
                        local_date: date,
                    },
                    SpotPriceKey { price_area, start },
                    ChargePriceKey {
                        owner_gln,
                        charge_type,
                        charge_code,
                        period_start,
                    },
                    SettlementMonthKey { gsrn, month_start },
                )
            },
        )
}

/// Both writers agree (bytes, or the refusal), both readers read the
/// generic bytes into equal records, and the dispatching entry points of
/// [`AvroRecord`] (with their debug cross-check) agree too. Returns the
/// generic bytes when the record was written.
fn same<T>(record: &T) -> Result<Option<Vec<u8>>, TestCaseError>
where
    T: AvroRecord + DirectCodec + PartialEq + Debug,
{
    let mut generic = Vec::new();
    let generic_result = direct::generic_write(record, &mut generic);
    let mut fast = Vec::new();
    let fast_result = record.encode(&mut fast);
    let mut dispatched = Vec::new();
    let dispatched_result = record.write_datum(&mut dispatched);
    match (generic_result, fast_result) {
        (Ok(()), Ok(())) => {
            prop_assert_eq!(&fast, &generic);
            prop_assert_eq!(&dispatched, &generic);
            prop_assert_eq!(dispatched_result, Ok(()));
            prop_assert_eq!(record.check_schema(), Ok(()));
            let mut rest = generic.as_slice();
            let from_generic =
                direct::generic_read::<T>(&mut rest).expect("generic reads its own bytes");
            prop_assert!(rest.is_empty());
            let mut r = Reader::new(&generic);
            let from_direct = T::decode(&mut r).map_err(TestCaseError::fail)?;
            prop_assert!(r.rest.is_empty());
            prop_assert_eq!(&from_direct, &from_generic);
            // Decimal's `==` ignores the scale; the Debug text shows it.
            prop_assert_eq!(format!("{from_direct:?}"), format!("{from_generic:?}"));
            prop_assert_eq!(&from_direct, record);
            let mut rest = generic.as_slice();
            prop_assert_eq!(&T::read_datum(&mut rest).expect("dispatch reads"), record);
            Ok(Some(generic))
        }
        (Err(DatumError::Record(g)), Err(d)) => {
            prop_assert_eq!(&d, &g);
            prop_assert!(dispatched.is_empty(), "nothing written on a refusal");
            prop_assert_eq!(dispatched_result, Err(DatumError::Record(g.clone())));
            prop_assert_eq!(record.check_schema(), Err(g.clone()));
            prop_assert_eq!(record.encode(&mut Discard), Err(g));
            Ok(None)
        }
        (g, d) => Err(TestCaseError::fail(format!("generic {g:?}, direct {d:?}"))),
    }
}

/// Corrupted bytes: both readers accept (the same record, stopping at the
/// same byte) or both refuse.
fn same_verdict<T>(bytes: &[u8]) -> Result<(), TestCaseError>
where
    T: AvroRecord + DirectCodec + PartialEq + Debug,
{
    let mut generic_rest = bytes;
    let generic = direct::generic_read::<T>(&mut generic_rest);
    let mut r = Reader::new(bytes);
    let fast = T::decode(&mut r);
    match (generic, fast) {
        (Ok(g), Ok(d)) => {
            prop_assert_eq!(g, d);
            prop_assert_eq!(generic_rest.len(), r.rest.len());
        }
        (Err(_), Err(_)) => {}
        (g, d) => return Err(TestCaseError::fail(format!("generic {g:?}, direct {d:?}"))),
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Corruption {
    Truncate(prop::sample::Index),
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Corruption::Truncate),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Corruption::Set(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Corruption::Insert(i, b)),
    ]
}

fn corrupt(mut bytes: Vec<u8>, c: &Corruption) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    match c {
        Corruption::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Corruption::Set(i, b) => {
            let i = i.index(bytes.len());
            bytes[i] = *b;
        }
        Corruption::Insert(i, b) => {
            let i = i.index(bytes.len());
            bytes.insert(i, *b);
        }
    }
    bytes
}

fn check<T>(record: &T, c: &Corruption) -> Result<(), TestCaseError>
where
    T: AvroRecord + DirectCodec + PartialEq + Debug,
{
    if let Some(bytes) = same(record)? {
        same_verdict::<T>(&corrupt(bytes, c))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn readings(r in reading(), c in corruption()) {
        check(&r, &c)?;
    }

    #[test]
    fn enriched_readings(e in enriched(), c in corruption()) {
        check(&e, &c)?;
    }

    #[test]
    fn daily_aggregates(d in daily(), c in corruption()) {
        check(&d, &c)?;
    }

    #[test]
    fn provisional_settlements(p in provisional(), c in corruption()) {
        check(&p, &c)?;
    }

    #[test]
    fn spot_prices(p in spot_price(), c in corruption()) {
        check(&p, &c)?;
    }

    #[test]
    fn charge_prices(p in charge_price(), c in corruption()) {
        check(&p, &c)?;
    }

    #[test]
    fn charge_links(l in charge_link(), k in charge_link_key(), c in corruption()) {
        check(&l, &c)?;
        check(&k, &c)?;
    }

    #[test]
    fn keys_agree(k in keys(), c in corruption()) {
        check(&k.0, &c)?;
        check(&k.1, &c)?;
        check(&k.2, &c)?;
        check(&k.3, &c)?;
        check(&k.4, &c)?;
    }

    /// enrich's splice: the reading's datum followed by the tail is the
    /// enriched reading's datum, and the head reader agrees with the full one.
    #[test]
    fn spliced_enriched_readings_are_the_generic_encoding(r in reading(), t in tail(), c in corruption()) {
        let mut reading_datum = Vec::new();
        if direct::generic_write(&r, &mut reading_datum).is_err() {
            return Ok(());
        }
        let mut rest = reading_datum.as_slice();
        prop_assert_eq!(read_reading_head(&mut rest).expect("head"), ReadingHead::from(&r));
        prop_assert!(rest.is_empty());
        let mut spliced = reading_datum.clone();
        let tail_result = t.encode(&mut spliced);
        let enriched = t.clone().into_enriched(r);
        let mut generic = Vec::new();
        match (direct::generic_write(&enriched, &mut generic), tail_result) {
            (Ok(()), Ok(())) => prop_assert_eq!(spliced, generic),
            (Err(DatumError::Record(g)), Err(d)) => prop_assert_eq!(g, d),
            (g, d) => return Err(TestCaseError::fail(format!("generic {g:?}, splice {d:?}"))),
        }
        // The head reader refuses exactly the readings the full reader refuses.
        let corrupted = corrupt(reading_datum, &c);
        let mut head_rest = corrupted.as_slice();
        let head = read_reading_head(&mut head_rest);
        let mut full_rest = corrupted.as_slice();
        let full = direct::generic_read::<Reading>(&mut full_rest);
        match (full, head) {
            (Ok(full), Ok(head)) => {
                prop_assert_eq!(ReadingHead::from(&full), head);
                prop_assert_eq!(full_rest.len(), head_rest.len());
            }
            (Err(_), Err(_)) => {}
            (f, h) => return Err(TestCaseError::fail(format!("full {f:?}, head {h:?}"))),
        }
    }
}

#[test]
fn an_empty_decimal_is_refused_by_both_readers() {
    // A SpotPrice whose price_dkk_per_mwh is 0 bytes long.
    let mut datum = Vec::new();
    direct::generic_write(
        &afregning_topology::records::examples::spot_price(),
        &mut datum,
    )
    .expect("writes");
    let price = afregning_topology::records::examples::spot_price();
    let mut head = Vec::new();
    direct::binary::string(&mut head, &price.price_area);
    direct::binary::long(&mut head, price.start.timestamp_millis());
    direct::binary::long(&mut head, price.end.timestamp_millis());
    direct::binary::int(&mut head, price.resolution.index() as i32);
    assert_eq!(&datum[..head.len()], head.as_slice());
    let mut bytes = head.clone();
    bytes.push(0); // a decimal of length 0
    bytes.extend_from_slice(&datum[head.len() + 9..]);
    assert!(direct::generic_read::<SpotPrice>(&mut bytes.as_slice()).is_err());
    assert!(SpotPrice::decode(&mut Reader::new(&bytes)).is_err());
}

/// The reader's 64-bit decimal path gives the same Decimal, bit for bit, as the
/// 128-bit path (and as the generic reader's `try_from_i128_with_scale`) at every
/// byte length, sign and boundary.
#[test]
fn short_decimals_read_as_the_wide_path_reads_them() {
    let mut mantissas: Vec<i64> = vec![0, 1, -1, 127, -128, 128, -129, i64::MAX, i64::MIN];
    for bits in 1..63 {
        let m = 1i64 << bits;
        mantissas.extend([m - 1, m, m + 1, -m + 1, -m, -m - 1]);
    }
    for m in mantissas {
        for scale in [0u32, 3, 6, 28] {
            let full = m.to_be_bytes();
            // The minimal two's complement length a Java or Python writer sends, and longer.
            let minimal = (0..8)
                .rev()
                .find(|&i| {
                    let rest = &full[i..];
                    let sign_ok = (rest[0] & 0x80 != 0) == (m < 0);
                    let lead = if m < 0 { 0xFF } else { 0x00 };
                    sign_ok && full[..i].iter().all(|&b| b == lead)
                })
                .unwrap_or(0);
            for start in 0..=minimal {
                let mut bytes = Vec::new();
                bytes.push(u8::try_from((8 - start) * 2).expect("small"));
                bytes.extend_from_slice(&full[start..]);
                let read = Reader::new(&bytes).decimal(scale).expect("reads");
                let wide = Decimal::try_from_i128_with_scale(i128::from(m), scale).expect("fits");
                assert_eq!(
                    read.serialize(),
                    wide.serialize(),
                    "{m} at scale {scale}, {} bytes",
                    8 - start
                );
            }
        }
    }
}
