//! Throughput of `settle_month`: metering-point-months settled per second at
//! PT15M with every component (spot, margin, supplier subscription, an hourly
//! grid tariff, three daily Energinet tariffs, two subscriptions); and of the
//! incremental path the settle processor runs per series: one PT15M day applied to a
//! month's kept sums (old day out, new day in, through their bytes) and the statement
//! read from them.
//!
//! Run with `cargo bench -p afregning-settlement`; results go in `settlement/BENCHMARKS.md`.

use std::hint::black_box;

use afregning_settlement::calendar::{local_date, local_midnight};
use afregning_settlement::charges::PriceListRow;
use afregning_settlement::fold::{MonthContext, Summary};
use afregning_settlement::{
    BillingMonth, BillingPeriod, Charge, ChargeKey, ChargeLink, ChargeResolution, ChargeType,
    Margin, MeteringPoint, MonthInput, Position, PriceArea, ProductTerm, Quality, Resolution,
    Scope, SpotPrice, SupplyPeriod, VatClass, settle_month,
};
use chrono::{Duration, NaiveDate, NaiveDateTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

fn flat_row(resolution: ChargeResolution, price: &str) -> PriceListRow {
    PriceListRow {
        valid_from: NaiveDateTime::parse_from_str("2026-01-01T00:00:00", "%Y-%m-%dT%H:%M:%S")
            .expect("t"),
        valid_to: None,
        resolution,
        prices: vec![Some(d(price))],
    }
}

fn charge(
    code: &str,
    owner: &str,
    charge_type: ChargeType,
    tax: bool,
    row: PriceListRow,
    period: &BillingPeriod,
) -> (Charge, ChargeLink) {
    let key = ChargeKey::new(code, owner, charge_type);
    let charge = afregning_settlement::charges::charge_from_price_list(
        key.clone(),
        tax,
        VatClass::Vat25,
        &[row],
        period,
    );
    let link = ChargeLink {
        key,
        quantity: 1,
        from: period.start() - Duration::days(400),
        to: None,
    };
    (charge, link)
}

fn month_input() -> MonthInput {
    let period = BillingMonth::new(2026, 1).expect("month").period();
    let mut positions = Vec::new();
    let mut spot = Vec::new();
    let mut t = period.start();
    let mut i: i64 = 0;
    while t < period.end() {
        positions.push(Position {
            start: t,
            quantity: Some(Decimal::new(50 + (i % 7) * 25, 3)),
            quality: Quality::Measured,
            version: 1,
        });
        spot.push(SpotPrice::from_dkk_per_mwh(
            t,
            Resolution::Pt15m,
            Decimal::new(40_000 + (i * 7919) % 90_000, 2),
        ));
        t += Duration::minutes(15);
        i += 1;
    }
    let hourly: Vec<Option<Decimal>> = (0..24)
        .map(|h| {
            Some(match h {
                0..=5 => d("0.0976"),
                17..=20 => d("0.8788"),
                _ => d("0.2929"),
            })
        })
        .collect();
    let radius_tariff = PriceListRow {
        prices: hourly,
        ..flat_row(ChargeResolution::Pt1h, "0")
    };
    let list = [
        charge(
            "DT_C_01",
            "5790000705689",
            ChargeType::Tariff,
            false,
            radius_tariff,
            &period,
        ),
        charge(
            "40000",
            "5790000432752",
            ChargeType::Tariff,
            false,
            flat_row(ChargeResolution::P1d, "0.043"),
            &period,
        ),
        charge(
            "41000",
            "5790000432752",
            ChargeType::Tariff,
            false,
            flat_row(ChargeResolution::P1d, "0.072"),
            &period,
        ),
        charge(
            "EA-001",
            "5790000432752",
            ChargeType::Tariff,
            true,
            flat_row(ChargeResolution::P1d, "0.008"),
            &period,
        ),
        charge(
            "DA_C_F_01",
            "5790000705689",
            ChargeType::Subscription,
            false,
            flat_row(ChargeResolution::P1m, "36.773011"),
            &period,
        ),
        charge(
            "41004",
            "5790000432752",
            ChargeType::Subscription,
            false,
            flat_row(ChargeResolution::P1m, "15.583333"),
            &period,
        ),
    ];
    let first = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    MonthInput {
        metering_point: MeteringPoint {
            id: "571313100000000001".into(),
            grid_area: "740".into(),
            price_area: PriceArea::Dk2,
        },
        period,
        supply: vec![SupplyPeriod {
            from: local_midnight(first),
            to: None,
            resolution: Resolution::Pt15m,
        }],
        positions,
        charge_links: list.iter().map(|(_, l)| l.clone()).collect(),
        charges: list.into_iter().map(|(c, _)| c).collect(),
        spot_prices: spot,
        product: vec![ProductTerm {
            product_id: "spot-plus".into(),
            product_name: "Spot Plus".into(),
            version_valid_from: first,
            from: period.start(),
            to: period.end(),
            margin: Margin::Flat { per_kwh: d("0.11") },
            subscription_per_month: d("19"),
            vat_class: VatClass::Vat25,
        }],
        scope: Scope::Full,
    }
}

fn bench(c: &mut Criterion) {
    let input = month_input();
    let statement = settle_month(&input).expect("settles");
    assert!(
        statement.complete,
        "the benchmark input must be complete: {:?}",
        statement.issues
    );
    let mut group = c.benchmark_group("settle_month");
    group.throughput(Throughput::Elements(1));
    group.bench_function("pt15m_all_components", |b| {
        b.iter(|| settle_month(black_box(&input)))
    });
    group.finish();

    // The incremental path, per series (one metering point's day, 96 values).
    let reference = MonthInput {
        positions: Vec::new(),
        ..input.clone()
    };
    let context = MonthContext::prepare(&reference).expect("prepares");
    let date = NaiveDate::from_ymd_opt(2026, 1, 15).expect("date");
    let day: Vec<Position> = input
        .positions
        .iter()
        .filter(|p| local_date(p.start) == date)
        .cloned()
        .collect();
    let corrected: Vec<Position> = day
        .iter()
        .map(|p| Position {
            quantity: p.quantity.map(|q| q + Decimal::new(1, 3)),
            version: 2,
            ..p.clone()
        })
        .collect();
    let mut month = Summary::default();
    for (date, _, _) in input.period.local_days() {
        let positions: Vec<Position> = input
            .positions
            .iter()
            .filter(|p| local_date(p.start) == date)
            .cloned()
            .collect();
        month.add(&context.day_delta(date, &positions).expect("day"));
    }
    let incremental = context.statement_of_delta("571313100000000001", &month);
    assert_eq!(incremental.known_totals, statement.known_totals);
    let bytes = month.to_bytes();
    let mut group = c.benchmark_group("incremental");
    group.throughput(Throughput::Elements(1));
    group.bench_function("day_delta_pt15m", |b| {
        b.iter(|| context.day_delta(black_box(date), black_box(&day)))
    });
    group.bench_function("correct_one_day_pt15m", |b| {
        b.iter(|| {
            let mut sums = Summary::from_bytes(black_box(&bytes)).expect("decodes");
            sums.sub(&context.day_delta(date, &day).expect("old"));
            sums.add(&context.day_delta(date, &corrected).expect("new"));
            let statement = context.statement_of_delta("571313100000000001", &sums);
            (sums.to_bytes(), statement)
        })
    });
    group.finish();
    println!("month sums kept per metering point: {} bytes", bytes.len());
}

criterion_group!(benches, bench);
criterion_main!(benches);
