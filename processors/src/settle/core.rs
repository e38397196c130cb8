//! The pure core of settle: what it keeps per metering point and month, the
//! engine's statement as wire records, and when a month becomes final.

use afregning_settlement::{
    BillingMonth, Component, Line, LineSource, MonthStatement, ProductAssignment, ProductCatalogue,
    ProductTerm, Resolution, UnitPrice, VatClass as EngineVat,
};
use afregning_topology::records::{
    ProvisionalSettlement, SettlementComponent, SettlementLine, SettlementStatement, StatementKind,
    VatClass,
};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use afregning_settlement::statement::Unit;

use crate::runtime::typed::{StoreKey, date_part, join_parts, parse_date_part, split_parts};
use crate::shared::framed::{self, Framed};
use crate::shared::reference::wire_charge_type;

/// The product terms of a metering point: its assignments in the catalogue,
/// or the default product from the start of the month when it has none.
pub fn product_terms(
    catalogue: &ProductCatalogue,
    default_product: Option<&str>,
    gsrn: &str,
    month: BillingMonth,
) -> Vec<ProductTerm> {
    let period = month.period();
    let terms = catalogue.terms_for(gsrn, &period);
    if !terms.is_empty()
        || catalogue
            .assignments
            .iter()
            .any(|a| a.metering_point_id == gsrn)
    {
        return terms;
    }
    let Some(product) = default_product else {
        return terms;
    };
    let single = ProductCatalogue {
        products: catalogue.products.clone(),
        assignments: vec![ProductAssignment {
            metering_point_id: gsrn.to_string(),
            product_id: product.to_string(),
            valid_from: month.first_day(),
            valid_to: None,
        }],
    };
    single.terms_for(gsrn, &period)
}

/// A statement that went to the ERP topic, remembered to correct it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    /// Its id.
    pub statement_id: String,
    /// Its version.
    pub version: i64,
    /// The lines, to credit them.
    pub lines: Vec<StoredLine>,
    /// Totals as issued (øre).
    pub totals: [Decimal; 3],
}

/// A line as stored in the state (the wire record without version and key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLine {
    /// Component code (`SettlementComponent::code`).
    pub component: String,
    /// Description.
    pub description: String,
    /// Charge owner.
    pub owner: Option<String>,
    /// Charge type code.
    pub charge_type: Option<String>,
    /// Charge code.
    pub code: Option<String>,
    /// Quantity.
    pub quantity: Decimal,
    /// Unit.
    pub unit: String,
    /// Unit price.
    pub unit_price: Decimal,
    /// Amount (6 decimals).
    pub amount: Decimal,
    /// VAT class code.
    pub vat_class: String,
}

/// What settle keeps per metering point and billing month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthState {
    /// GSRN.
    pub gsrn: String,
    /// `YYYY-MM`.
    pub month: String,
    /// Grid area (latest reading).
    pub grid_area: String,
    /// Bidding zone (latest reading).
    pub price_area: Option<String>,
    /// Supplier (latest reading).
    pub supplier_gln: Option<String>,
    /// Start of our supply in the month: the earliest master data period
    /// start seen in its readings, or the month's start. The fallback: used only when the
    /// metering point has no portfolio events ([`MonthState::portfolio_supply`]).
    pub supply_from: DateTime<Utc>,
    /// Our supplied days in the month from the portfolio's timeline (`[from, to)` Danish
    /// days, clipped to the month; empty when every period was retired), set at each
    /// settlement; `None` when the metering point has no portfolio events.
    #[serde(default)]
    pub portfolio_supply: Option<Vec<crate::settle::supply::Days>>,
    /// Resolution of the latest reading.
    pub resolution: Resolution,
    /// Version of the last provisional settlement emitted (0: none).
    pub version: i64,
    /// Its known totals (excl. VAT, VAT, incl. VAT), to emit only on change.
    #[serde(default)]
    pub known_totals: Option<[Decimal; 3]>,
    /// The last result's lines: in memory only, set whenever the month is settled (they
    /// are read from the sums; the state keeps their [`MonthState::digest`]).
    #[serde(skip)]
    pub lines: Vec<StoredLine>,
    /// [`result_digest`] of the last result emitted, to emit only on change.
    #[serde(default)]
    pub digest: u64,
    /// Its totals in øre (excl. VAT, VAT, incl. VAT) when complete.
    pub invoice_totals: Option<[Decimal; 3]>,
    /// Days with positions in the month.
    pub days_settled: i32,
    /// The last result has no blocking issue.
    pub complete: bool,
    /// Version of the last statement or credit note issued (0: none).
    pub statement_version: i64,
    /// The statement in force, once final.
    pub issued: Option<Issued>,
    /// Days of the month with positions.
    #[serde(default)]
    pub days_received: i32,
    /// [`MonthContext::fingerprint`](afregning_settlement::fold::MonthContext::fingerprint)
    /// of the reference data `sums` were computed with (0: none).
    #[serde(default)]
    pub fingerprint: u64,
    /// The month as Σ (day − empty day) over the days received
    /// ([`Summary::to_bytes`](afregning_settlement::fold::Summary::to_bytes)); kept
    /// beside the JSON, not in it.
    #[serde(skip)]
    pub sums: Vec<u8>,
}

/// Format byte of a month state: the fields as JSON, then the binary sums. A state of an
/// earlier build (plain JSON) reads with empty sums, which makes the next change fold the
/// month again from its days.
const MONTH_FORMAT: u8 = 2;

impl MonthState {
    /// The state's bytes for the months store ([`framed`](crate::shared::framed)).
    pub fn to_bytes(&self) -> Vec<u8> {
        framed::encode(MONTH_FORMAT, self, &self.sums)
    }

    /// Reads [`Self::to_bytes`], or the plain JSON of earlier builds.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        match framed::decode::<MonthState>(MONTH_FORMAT, "month state", bytes)? {
            Framed::Legacy(json) => serde_json::from_slice(json).map_err(|e| e.to_string()),
            Framed::Current(mut state, sums) => {
                state.sums = sums.to_vec();
                Ok(state)
            }
        }
    }
}

impl crate::runtime::typed::StoreValue for MonthState {
    const WHAT: &'static str = "stored month";

    fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        Self::from_bytes(bytes)
    }
}

/// `YYYY-MM␟GSRN`: a metering point's billing month in the `months` store (month
/// first, so that a month's metering points are one range).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MonthKey {
    /// `YYYY-MM`.
    pub month: String,
    /// GSRN, or `*` in a mark for every metering point of the month.
    pub gsrn: String,
}

impl StoreKey for MonthKey {
    fn encode(&self, out: &mut Vec<u8>) {
        join_parts(&[&self.month, &self.gsrn], out);
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        match split_parts(bytes)?.as_slice() {
            [month, gsrn] if parse_month(month).is_some() => Some(Self {
                month: (*month).to_string(),
                gsrn: (*gsrn).to_string(),
            }),
            _ => None,
        }
    }
}

/// `GSRN␟YYYY-MM-DD`: a metering point's local day in the `positions` store (GSRN
/// first, so that a metering point's month is one range).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DayKey {
    /// GSRN.
    pub gsrn: String,
    /// The local day.
    pub date: NaiveDate,
}

impl StoreKey for DayKey {
    fn encode(&self, out: &mut Vec<u8>) {
        join_parts(&[&self.gsrn, &date_part(self.date)], out);
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        match split_parts(bytes)?.as_slice() {
            [gsrn, date] => Some(Self {
                gsrn: (*gsrn).to_string(),
                date: parse_date_part(date)?,
            }),
            _ => None,
        }
    }
}

/// `YYYY-MM` on its own: the key of month-wide marks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MonthName(pub String);

impl StoreKey for MonthName {
    fn encode(&self, out: &mut Vec<u8>) {
        join_parts(&[&self.0], out);
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        parse_month(text).map(|_| Self(text.to_string()))
    }
}

/// The billing month of a `YYYY-MM` key.
///
/// The canonical form, four digits, `-`, two digits, is read from its digits (settle reads a
/// month key for every series); any other text goes through chrono's parser as always.
pub fn parse_month(text: &str) -> Option<BillingMonth> {
    if let [y1, y2, y3, y4, b'-', m1, m2] = *text.as_bytes()
        && [y1, y2, y3, y4, m1, m2].iter().all(u8::is_ascii_digit)
    {
        let digit = |b: u8| i32::from(b - b'0');
        let year = digit(y1) * 1000 + digit(y2) * 100 + digit(y3) * 10 + digit(y4);
        let month = u32::try_from(digit(m1) * 10 + digit(m2)).ok()?;
        // Chrono refuses what no date has (month 0 or 13); so does BillingMonth.
        NaiveDate::from_ymd_opt(year, month, 1)?;
        return BillingMonth::new(year, month).ok();
    }
    let date = NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").ok()?;
    BillingMonth::new(date.year(), date.month()).ok()
}

/// `YYYY-MM` of a billing month (as chrono's `%Y-%m` writes it).
pub fn month_text(month: BillingMonth) -> String {
    let first = month.first_day();
    let mut out = String::with_capacity(7);
    if crate::runtime::typed::push_year_month(&mut out, first.year(), first.month()) {
        out
    } else {
        first.format("%Y-%m").to_string()
    }
}

fn component(c: Component) -> SettlementComponent {
    match c {
        Component::SpotEnergy => SettlementComponent::SpotEnergy,
        Component::SupplierMargin => SettlementComponent::SupplierMargin,
        Component::SupplierSubscription => SettlementComponent::SupplierSubscription,
        Component::GridTariff => SettlementComponent::GridTariff,
        Component::GridSubscription => SettlementComponent::GridSubscription,
        // The wire has no Energinet fee: it is a grid-level fee, its owner on the line says Energinet's.
        Component::GridFee | Component::EnerginetFee => SettlementComponent::GridFee,
        Component::EnerginetTariff => SettlementComponent::EnerginetTariff,
        Component::EnerginetSubscription => SettlementComponent::EnerginetSubscription,
        Component::ElectricityTax => SettlementComponent::ElectricityTax,
    }
}

fn vat_code(v: EngineVat) -> VatClass {
    match v {
        EngineVat::NoVat => VatClass::NoVat,
        EngineVat::Vat25 => VatClass::Vat25,
    }
}

/// `t` to the millisecond: the wire's timestamps are `timestamp-millis`.
pub fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Six decimals, half away from zero: Energinet's rule for every amount, and ours for
/// the unit prices shown beside them (`round_dp` would round half to even).
fn six(d: Decimal) -> Decimal {
    afregning_settlement::rounding::round_amount(d)
}

fn stored_line(line: &Line) -> StoredLine {
    let amount = six(line.amount.unwrap_or(line.known_amount));
    let unit_price = match line.unit_price {
        UnitPrice::Single { price } => six(price),
        UnitPrice::Series { .. } | UnitPrice::Missing if !line.quantity.is_zero() => {
            six(line.known_amount / line.quantity)
        }
        _ => Decimal::ZERO,
    };
    let (description, owner, charge_type, code) = match &line.source {
        LineSource::Spot => ("Spot energy".to_string(), None, None, None),
        LineSource::Margin { product_id } => (
            format!(
                "Supplier margin ({})",
                product_id.as_deref().unwrap_or("no product")
            ),
            None,
            None,
            None,
        ),
        LineSource::ProductSubscription { product_id } => (
            format!("Supplier subscription ({product_id})"),
            None,
            None,
            None,
        ),
        LineSource::Charge { key, .. } => (
            [key.code.as_str(), key.owner.as_str()].join(" "),
            Some(key.owner.clone()),
            Some(wire_charge_type(key.charge_type).code().to_string()),
            Some(key.code.clone()),
        ),
    };
    StoredLine {
        component: component(line.component).code().to_string(),
        description,
        owner,
        charge_type,
        code,
        quantity: six(line.quantity),
        unit: match line.unit {
            Unit::Kwh => "KWH".into(),
            Unit::Pieces => "PIECE".into(),
        },
        unit_price,
        amount,
        vat_class: vat_code(line.vat_class).code().to_string(),
    }
}

/// The statement's lines as stored: one per engine line, then one VAT line
/// per VAT class (basis as quantity, rate as unit price).
pub fn stored_lines(statement: &MonthStatement) -> Vec<StoredLine> {
    let mut lines = Vec::with_capacity(statement.lines.len() + statement.vat.len());
    lines.extend(statement.lines.iter().map(stored_line));
    for vat in &statement.vat {
        lines.push(StoredLine {
            component: SettlementComponent::Vat.code().to_string(),
            description: format!("VAT {}", vat.rate),
            owner: None,
            charge_type: None,
            code: None,
            quantity: six(vat.basis),
            unit: "DKK".into(),
            unit_price: six(vat.rate),
            amount: six(vat.vat),
            vat_class: vat_code(vat.vat_class).code().to_string(),
        });
    }
    lines
}

/// Applies a new engine result to the state. Returns whether anything a
/// reader sees changed (then the version was bumped and a provisional
/// settlement is due).
pub fn apply_statement(state: &mut MonthState, statement: &MonthStatement, days: i32) -> bool {
    let lines = stored_lines(statement);
    let totals = statement
        .invoice_totals
        .as_ref()
        .map(|t| [t.excl_vat, t.vat, t.incl_vat]);
    let known = Some([
        statement.known_totals.excl_vat,
        statement.known_totals.vat,
        statement.known_totals.incl_vat,
    ]);
    let digest = result_digest(&lines, totals, known, days);
    state.complete = statement.complete;
    state.lines = lines;
    if state.version > 0 && state.digest == digest {
        return false;
    }
    state.digest = digest;
    state.invoice_totals = totals;
    state.known_totals = known;
    state.days_settled = days;
    state.version += 1;
    true
}

/// A digest of what a reader of the provisional settlement sees: lines, totals and days,
/// with decimals normalised (a change of scale alone is no change).
///
/// The digest is kept in the month's state and compared with the next result, also by a
/// newer build reading an older build's state, so its value is part of the stored format:
/// FNV-1a ([`stable_digest`](afregning_settlement::fold::stable_digest)) of
/// `component|description|owner|charge type|code|quantity|unit|unit price|amount|vat;`
/// per line (the optional fields as `{:?}`, the decimals as their normalised `Display`),
/// then the totals (`-` when absent) and the days. The text is written from each
/// Decimal's mantissa and scale rather than through `core::fmt` (7 % of settle's time
/// went to formatting it); `the_digest_is_the_formatted_texts` holds it equal to the
/// formatted text (docs/decisions/0149-settle-result-digest-kept-stable.md).
pub fn result_digest(
    lines: &[StoredLine],
    totals: Option<[Decimal; 3]>,
    known: Option<[Decimal; 3]>,
    days: i32,
) -> u64 {
    let mut text = String::with_capacity(128 * lines.len() + 64);
    for l in lines {
        for part in [&l.component, &l.description] {
            text.push_str(part);
            text.push('|');
        }
        for part in [&l.owner, &l.charge_type, &l.code] {
            push_debug(&mut text, part.as_deref());
            text.push('|');
        }
        push_decimal(&mut text, l.quantity);
        text.push('|');
        text.push_str(&l.unit);
        text.push('|');
        push_decimal(&mut text, l.unit_price);
        text.push('|');
        push_decimal(&mut text, l.amount);
        text.push('|');
        text.push_str(&l.vat_class);
        text.push(';');
    }
    for set in [totals, known] {
        match set {
            Some(values) => {
                for v in values {
                    push_decimal(&mut text, v);
                    text.push('|');
                }
            }
            None => text.push('-'),
        }
    }
    push_digits(&mut text, days < 0, u128::from(days.unsigned_abs()), 0);
    afregning_settlement::fold::stable_digest(&text)
}

/// Appends `format!("{:?}", s)` (`None`, `Some("…")`); written directly when the string
/// has only printable ASCII that `Debug` does not escape.
fn push_debug(text: &mut String, s: Option<&str>) {
    match s {
        None => text.push_str("None"),
        Some(s)
            if s.bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') =>
        {
            text.push_str("Some(\"");
            text.push_str(s);
            text.push_str("\")");
        }
        Some(s) => {
            use std::fmt::Write;
            let _ = write!(text, "{:?}", Some(s));
        }
    }
}

/// Appends `d.normalize().to_string()`: the mantissa's digits with the decimal point
/// `scale` digits from the right (`0.0…` when it has fewer digits), trailing zeros of
/// the fraction dropped, and zero as `0` whatever its sign and scale.
fn push_decimal(text: &mut String, d: Decimal) {
    let mantissa = d.mantissa();
    if mantissa == 0 {
        text.push('0');
        return;
    }
    push_digits(
        text,
        mantissa < 0,
        mantissa.unsigned_abs(),
        d.scale() as usize,
    );
}

/// Appends `±value / 10^scale` in decimal without trailing zeros after the point, with
/// at least one digit before it.
fn push_digits(text: &mut String, negative: bool, mut value: u128, mut scale: usize) {
    // A Decimal's mantissa is below 2^96 < 10^29 and its scale at most 28; an i32 has
    // 10 digits: 40 places hold the digits and the zeros before them.
    let mut digits = [b'0'; 40];
    let mut start = digits.len();
    while value > u128::from(u64::MAX) {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    let mut small = value as u64;
    loop {
        start -= 1;
        digits[start] = b'0' + (small % 10) as u8;
        small /= 10;
        if small == 0 {
            break;
        }
    }
    let mut end = digits.len();
    while scale > 0 && digits[end - 1] == b'0' {
        end -= 1;
        scale -= 1;
    }
    // Zeros before the digits, up to one digit before the point.
    let first = start.min(end - scale - 1);
    if negative {
        text.push('-');
    }
    let point = end - scale;
    text.extend(digits[first..point].iter().map(|&b| char::from(b)));
    if scale > 0 {
        text.push('.');
        text.extend(digits[point..end].iter().map(|&b| char::from(b)));
    }
}

fn wire_line(line: &StoredLine, version: i64, key: String, sign: Decimal) -> SettlementLine {
    SettlementLine {
        component: SettlementComponent::from_code(&line.component)
            .unwrap_or(SettlementComponent::Vat),
        description: line.description.clone(),
        charge_owner_gln: line.owner.clone(),
        charge_type: line
            .charge_type
            .as_deref()
            .and_then(afregning_topology::records::ChargeType::from_code),
        charge_code: line.code.clone(),
        quantity: line.quantity * sign,
        quantity_unit: line.unit.clone(),
        unit_price: line.unit_price,
        amount: line.amount * sign,
        vat_class: VatClass::from_code(&line.vat_class).unwrap_or(VatClass::Vat25),
        version,
        idempotency_key: key,
    }
}

/// The provisional settlement record of the state's current version.
pub fn provisional(
    state: &MonthState,
    known_totals: [Decimal; 3],
    month: BillingMonth,
    computed_at: DateTime<Utc>,
) -> ProvisionalSettlement {
    let key = format!(
        "provisional:{}:{}:{}",
        state.gsrn, state.month, state.version
    );
    ProvisionalSettlement {
        gsrn: state.gsrn.clone(),
        month_start: month.first_day(),
        grid_area: state.grid_area.clone(),
        energy_supplier_gln: state.supplier_gln.clone(),
        version: state.version,
        lines: state
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| wire_line(l, state.version, line_key(&key, i), Decimal::ONE))
            .collect(),
        total_excl_vat: six(known_totals[0]),
        vat_amount: six(known_totals[1]),
        total_incl_vat: six(known_totals[2]),
        days_settled: state.days_settled,
        days_in_month: i32::try_from(month.days()).unwrap_or(31),
        idempotency_key: key,
        computed_at: millis(computed_at),
    }
}

/// `{key}:{index}`: the idempotency key of a record's line (written without
/// `core::fmt`: settle makes one per line of every provisional version).
fn line_key(key: &str, index: usize) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    out.push_str(key);
    out.push(':');
    push_digits(&mut out, false, index as u128, 0);
    out
}

/// The statement id of version `version` of a month.
pub fn statement_id(gsrn: &str, month: &str, version: i64) -> String {
    format!("{gsrn}-{month}-v{version}")
}

/// The instant from which the month may become final: `grace` after our supply in it ends
/// when the portfolio ends it inside the month ([`crate::settle::supply::supply_end`]),
/// otherwise `grace` after the month's end.
pub fn final_from(
    state: &MonthState,
    month: BillingMonth,
    grace: chrono::Duration,
) -> DateTime<Utc> {
    crate::settle::supply::supply_end(state.portfolio_supply.as_deref(), month)
        .unwrap_or_else(|| month.end())
        + grace
}

/// The portfolio says we supply no day of the month (every period retired or ended before
/// it): nothing is billed, and a statement in force is only credited.
pub fn unsupplied(state: &MonthState) -> bool {
    state.portfolio_supply.as_ref().is_some_and(Vec::is_empty)
}

/// Whether finality has something to issue once the month is final: a first statement, or a
/// correction of the statement in force (a credit alone when no day is supplied any more).
pub fn needs_issue(state: &MonthState) -> bool {
    if unsupplied(state) {
        return state.issued.is_some();
    }
    state.complete
        && state.invoice_totals.is_some()
        && !state
            .issued
            .as_ref()
            .is_some_and(|i| i.lines == state.lines && Some(i.totals) == state.invoice_totals)
}

/// What finality emits for a month now: nothing, the first statement, or a
/// credit note for the statement in force followed by a new statement.
/// Updates `state` (versions, the statement in force) accordingly.
///
/// A month is final from [`final_from`] (grace after the month's end, or after the end of our
/// supply when the portfolio ends it inside the month) once the latest result is complete
/// (every position of the supplied days, price, charge and product known). After that a
/// changed result (a late correction, a rollback) is re-issued as credit note + statement;
/// an unchanged one issues nothing. When no day of the month is supplied any more (a
/// rollback retired the period) the statement in force is credited and nothing replaces it.
pub fn finality(
    state: &mut MonthState,
    month: BillingMonth,
    grace: chrono::Duration,
    now: DateTime<Utc>,
) -> Vec<SettlementStatement> {
    if now < final_from(state, month, grace) || !needs_issue(state) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let previous = state.issued.clone();
    if let Some(issued) = &previous {
        state.statement_version += 1;
        let credit_id = statement_id(&state.gsrn, &state.month, state.statement_version);
        out.push(statement(
            state,
            month,
            &credit_id,
            StatementKind::CreditNote,
            Some(issued.statement_id.clone()),
            &issued.lines,
            issued.totals,
            Decimal::NEGATIVE_ONE,
            now,
        ));
    }
    let totals = match state.invoice_totals {
        Some(totals) if !unsupplied(state) => totals,
        _ => {
            state.issued = None;
            return out;
        }
    };
    state.statement_version += 1;
    let id = statement_id(&state.gsrn, &state.month, state.statement_version);
    let lines = state.lines.clone();
    out.push(statement(
        state,
        month,
        &id,
        StatementKind::Statement,
        previous.as_ref().map(|p| p.statement_id.clone()),
        &lines,
        totals,
        Decimal::ONE,
        now,
    ));
    state.issued = Some(Issued {
        statement_id: id,
        version: state.statement_version,
        lines,
        totals,
    });
    out
}

#[allow(clippy::too_many_arguments)]
fn statement(
    state: &MonthState,
    month: BillingMonth,
    id: &str,
    kind: StatementKind,
    corrects: Option<String>,
    lines: &[StoredLine],
    totals: [Decimal; 3],
    sign: Decimal,
    issued_at: DateTime<Utc>,
) -> SettlementStatement {
    let key = format!("statement:{id}");
    SettlementStatement {
        statement_id: id.to_string(),
        kind,
        corrects_statement_id: corrects,
        gsrn: state.gsrn.clone(),
        month_start: month.first_day(),
        grid_area: state.grid_area.clone(),
        energy_supplier_gln: state.supplier_gln.clone(),
        version: state.statement_version,
        lines: lines
            .iter()
            .enumerate()
            .map(|(i, l)| wire_line(l, state.statement_version, line_key(&key, i), sign))
            .collect(),
        total_excl_vat: totals[0] * sign,
        vat_amount: totals[1] * sign,
        total_incl_vat: totals[2] * sign,
        currency: "DKK".into(),
        idempotency_key: key,
        issued_at: millis(issued_at),
    }
}

#[cfg(test)]
mod digest_tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The digest as earlier builds computed it, through `core::fmt`: the reference
    /// that digests kept in stored month states were made with.
    fn formatted_digest(
        lines: &[StoredLine],
        totals: Option<[Decimal; 3]>,
        known: Option<[Decimal; 3]>,
        days: i32,
    ) -> u64 {
        use std::fmt::Write;
        let mut text = String::new();
        for l in lines {
            let _ = write!(
                text,
                "{}|{}|{:?}|{:?}|{:?}|{}|{}|{}|{}|{};",
                l.component,
                l.description,
                l.owner,
                l.charge_type,
                l.code,
                l.quantity.normalize(),
                l.unit,
                l.unit_price.normalize(),
                l.amount.normalize(),
                l.vat_class
            );
        }
        for set in [totals, known] {
            match set {
                Some(values) => {
                    for v in values {
                        let _ = write!(text, "{}|", v.normalize());
                    }
                }
                None => text.push('-'),
            }
        }
        let _ = write!(text, "{days}");
        afregning_settlement::fold::stable_digest(&text)
    }

    /// Decimals of every shape: zero (also negative, at any scale), trailing zeros, the
    /// six-decimal amounts settle stores, 64-bit and full 96-bit mantissas, scales 0–28.
    fn decimal(rng: &mut StdRng) -> Decimal {
        let scale = rng.random_range(0..=28u32);
        let sign = if rng.random_bool(0.3) { -1 } else { 1 };
        let mantissa: i128 = match rng.random_range(0..6) {
            0 => 0,
            1 => rng.random_range(0..100_000i128) * 10_i128.pow(rng.random_range(0..8u32)),
            2 => i128::from(rng.random::<i64>()),
            3 => i128::try_from(rng.random::<u128>() >> 32).unwrap_or(0),
            _ => rng.random_range(0..10_000_000_000i128),
        };
        let mut d = Decimal::from_i128_with_scale(sign * mantissa, scale);
        if mantissa == 0 && sign < 0 {
            d.set_sign_negative(true);
        }
        if rng.random_bool(0.3) {
            d = afregning_settlement::rounding::round_amount(d.round_dp(8));
        }
        d
    }

    fn text(rng: &mut StdRng) -> String {
        const TEXTS: [&str; 12] = [
            "",
            "SPOT",
            "Supplier margin (no product)",
            "40000 5790000432752",
            "a \"quoted\" code",
            "back\\slash",
            "Østkraft ÆØÅ",
            "tab\there",
            "line\nbreak",
            "\u{301}combining first",
            "del \u{7f}",
            "emoji 😀 '",
        ];
        TEXTS[rng.random_range(0..TEXTS.len())].to_string()
    }

    fn optional(rng: &mut StdRng) -> Option<String> {
        rng.random_bool(0.6).then(|| text(rng))
    }

    #[test]
    fn the_digest_is_the_formatted_texts() {
        let mut rng = StdRng::seed_from_u64(12);
        for _ in 0..5_000 {
            let lines: Vec<StoredLine> = (0..rng.random_range(0..14))
                .map(|_| StoredLine {
                    component: text(&mut rng),
                    description: text(&mut rng),
                    owner: optional(&mut rng),
                    charge_type: optional(&mut rng),
                    code: optional(&mut rng),
                    quantity: decimal(&mut rng),
                    unit: text(&mut rng),
                    unit_price: decimal(&mut rng),
                    amount: decimal(&mut rng),
                    vat_class: text(&mut rng),
                })
                .collect();
            let set = |rng: &mut StdRng| {
                rng.random_bool(0.7)
                    .then(|| [decimal(rng), decimal(rng), decimal(rng)])
            };
            let (totals, known) = (set(&mut rng), set(&mut rng));
            let days = match rng.random_range(0..3) {
                0 => rng.random::<i32>(),
                _ => rng.random_range(0..32),
            };
            assert_eq!(
                result_digest(&lines, totals, known, days),
                formatted_digest(&lines, totals, known, days),
                "{lines:?} {totals:?} {known:?} {days}"
            );
        }
    }

    #[test]
    fn a_line_key_is_the_formatted_text() {
        for i in (0..1_000).chain([9_999, 10_000, 123_456, usize::MAX]) {
            assert_eq!(
                line_key("provisional:5713:2026-03:7", i),
                format!("provisional:5713:2026-03:7:{i}")
            );
        }
    }

    #[test]
    fn a_change_of_scale_alone_is_no_change() {
        let line = |amount: Decimal| StoredLine {
            component: "SPOT".into(),
            description: "Spot energy".into(),
            owner: None,
            charge_type: None,
            code: None,
            quantity: Decimal::new(1_500, 3),
            unit: "KWH".into(),
            unit_price: Decimal::new(5, 1),
            amount,
            vat_class: "VAT25".into(),
        };
        let a = result_digest(&[line(Decimal::new(750_000, 6))], None, None, 1);
        assert_eq!(
            a,
            result_digest(&[line(Decimal::new(75, 2))], None, None, 1)
        );
        assert_ne!(
            a,
            result_digest(&[line(Decimal::new(76, 2))], None, None, 1)
        );
    }
}
