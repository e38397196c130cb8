//! `afregning reconcile`: our settlement against DataHub's wholesale settlement (BRS-027).
//!
//! `run` runs the reconcile processor until SIGINT/SIGTERM (`afregning_processors::reconcile`),
//! serving `/health`, `/ready` and `/metrics`; `report --month YYYY-MM [--grid-area CODE]`
//! prints the month's latest reconciliation from the database with every discrepancy's
//! exact values. Exit code: 0 when every grid area reported reconciles, 1 when a
//! discrepancy is listed, 2 when there is nothing to report or the command cannot run.
//! `request` asks DataHub for a grid area's month of results again (RSM-016/RSM-017) and
//! `relay` sends such requests and records DataHub's answers against them ([`requests`]).
//! What is compared and how to resolve a discrepancy: `docs/reconciliation.md`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use afregning_processors::reconcile::ReconcileConfig;
use afregning_sinks::reconciliation::{MonthReconciliation, ReportedDiscrepancy};
use afregning_topology::Codec;
use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use clap::{Args as ClapArgs, Subcommand, ValueEnum};

use super::process::ProcessorArgs;

mod requests;

/// Arguments of `afregning reconcile`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: ReconcileCommand,
}

/// The reconcile subcommands.
#[derive(Debug, Subcommand)]
pub enum ReconcileCommand {
    /// Run the reconcile processor until SIGINT/SIGTERM.
    Run {
        /// Where /health, /ready and /metrics are served.
        #[arg(
            long,
            env = "AFREGNING_PROCESSOR_ADMIN_LISTEN",
            default_value = "127.0.0.1:9200"
        )]
        admin_listen: SocketAddr,
        /// The grid company of a grid area, as AREA=GLN (repeatable), where it cannot be
        /// told from the charges (its total carries the tax charges).
        #[arg(long = "grid-area-owner", value_parser = parse_owner)]
        grid_area_owners: Vec<(String, String)>,
        /// Settings shared with the processors.
        #[command(flatten)]
        settings: Box<ProcessorArgs>,
    },
    /// Print a month's reconciliation: every discrepancy with both values, exactly.
    Report {
        /// The month, YYYY-MM (Danish calendar month).
        #[arg(long, value_parser = parse_month)]
        month: NaiveDate,
        /// Only this grid area (3 digits).
        #[arg(long, value_parser = parse_grid_area)]
        grid_area: Option<String>,
        /// Text for people, JSON for programs.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// PostgreSQL connection URL.
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres"
        )]
        database_url: String,
    },
    /// Ask DataHub for a grid area's month of results (RSM-016 energy, RSM-017 amounts):
    /// recorded as pending; `reconcile relay` sends it.
    Request(Box<requests::RequestArgs>),
    /// Send pending requests to DataHub (through the connector's outbound topic) and record
    /// the outcome and DataHub's answers against each, until SIGINT/SIGTERM.
    Relay(Box<requests::RelayArgs>),
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table per grid area.
    Text,
    /// One JSON document (amounts as exact decimal strings).
    Json,
}

fn parse_month(text: &str) -> Result<NaiveDate, String> {
    let date = NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a month; write YYYY-MM, e.g. 2026-03"))?;
    if text.len() != 7 {
        return Err(format!(
            "{text:?} is not a month; write YYYY-MM, e.g. 2026-03"
        ));
    }
    Ok(date)
}

fn parse_grid_area(text: &str) -> Result<String, String> {
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not a grid area code (three digits, e.g. 344)"
        ))
    }
}

fn parse_owner(text: &str) -> Result<(String, String), String> {
    let (area, gln) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: write AREA=GLN, e.g. 344=5790000610976"))?;
    let area = parse_grid_area(area)?;
    if gln.len() != 13 || !gln.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{gln:?} is not a GLN (13 digits)"));
    }
    Ok((area, gln.to_string()))
}

/// Runs `afregning reconcile`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        ReconcileCommand::Run {
            admin_listen,
            grid_area_owners,
            settings,
        } => run_processor(admin_listen, grid_area_owners, *settings).await,
        ReconcileCommand::Report {
            month,
            grid_area,
            format,
            database_url,
        } => report(month, grid_area.as_deref(), format, &database_url).await,
        ReconcileCommand::Request(args) => requests::request(*args).await,
        ReconcileCommand::Relay(args) => requests::relay(*args).await,
    }
}

async fn run_processor(
    admin_listen: SocketAddr,
    grid_area_owners: Vec<(String, String)>,
    args: ProcessorArgs,
) -> anyhow::Result<ExitCode> {
    let catalogue = args.catalogue()?;
    let runtime = args.settings()?.runtime;
    let codec = Codec::new(catalogue.clone(), &args.stack.schema_registry_url);
    let topics = afregning_processors::pipeline::topics(catalogue, &codec)
        .await
        .context("resolving the schema ids at the registry")?;
    let config = ReconcileConfig {
        supplier_gln: args.supplier_gln.clone(),
        grid_area_owners: grid_area_owners.into_iter().collect::<BTreeMap<_, _>>(),
        tick_interval: std::time::Duration::from_millis(args.tick_ms),
        ..ReconcileConfig::default()
    };
    let (status_tx, status_rx) = tokio::sync::oneshot::channel();
    let render = crate::telemetry::prometheus();
    let listener = tokio::net::TcpListener::bind(admin_listen)
        .await
        .with_context(|| format!("binding the admin address {admin_listen}"))?;
    tracing::info!(%admin_listen, "reconcile: serving /health, /ready and /metrics");
    tokio::spawn(async move {
        if let Ok(status) = status_rx.await {
            let app = afregning_processors::runtime::admin::router(status, render);
            let _ = axum::serve(listener, app).await;
        }
    });
    afregning_processors::reconcile::run::run(
        topics,
        config,
        runtime,
        None,
        Some(status_tx),
        super::common::shutdown_signal(),
    )
    .await
    .context("running reconcile")?;
    Ok(ExitCode::SUCCESS)
}

async fn report(
    month: NaiveDate,
    grid_area: Option<&str>,
    format: Format,
    database_url: &str,
) -> anyhow::Result<ExitCode> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(database_url)
        .await
        .context("connecting to the database (--database-url / DATABASE_URL)")?;
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('reconciliation_current') IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .context("reading the database")?;
    anyhow::ensure!(
        exists,
        "the database has no reconciliation tables: run `afregning sink migrate` first"
    );
    let found = afregning_sinks::reconciliation::month(&mut conn, month, grid_area)
        .await
        .context("reading the reconciliation")?;
    let label = month.format("%Y-%m");
    if found.is_empty() {
        let areas = grid_area.map_or_else(String::new, |a| format!(" of grid area {a}"));
        anyhow::bail!(
            "no reconciliation of {label}{areas}: DataHub's results (RSM-019/RSM-014) for the month have not arrived, or `afregning reconcile run` has not reconciled them yet"
        );
    }
    let total: usize = found.iter().map(|m| m.discrepancies.len()).sum();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        Format::Text => print!("{}", render(&found, month)),
    }
    if grid_area.is_none() {
        let begin = local_month_start(month)?;
        let end = local_month_start(month + chrono::Months::new(1))?;
        let missing =
            afregning_sinks::reconciliation::unreconciled_areas(&mut conn, month, end, begin)
                .await
                .context("reading DataHub's results")?;
        for area in missing {
            eprintln!(
                "grid area {area}: DataHub's results for {label} are stored but not reconciled yet"
            );
        }
    }
    Ok(if total == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The UTC instant of the first of `month`, local midnight in Denmark.
fn local_month_start(month: NaiveDate) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    let first = NaiveDate::from_ymd_opt(month.year(), month.month(), 1).context("a month")?;
    Ok(afregning_settlement::calendar::local_midnight(first))
}

fn text(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

/// An exact decimal without trailing zeros (12.500000 → 12.5); `-` when absent.
fn number<D: std::fmt::Display>(value: Option<D>) -> String {
    let Some(value) = value else {
        return "-".to_string();
    };
    let text = value.to_string();
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The report as text: a heading per grid area, then one line per discrepancy.
fn render(found: &[MonthReconciliation], month: NaiveDate) -> String {
    let mut out = String::new();
    for m in found {
        out.push_str(&format!(
            "grid area {} {}: reconciliation v{} against {} (supplier {}, grid company {}), made {}: {}\n",
            m.grid_area,
            month.format("%Y-%m"),
            m.version,
            if m.calculations.is_empty() { "-" } else { &m.calculations },
            m.energy_supplier_gln,
            text(m.grid_area_owner_gln.as_deref()),
            m.computed_at.format("%Y-%m-%d %H:%M UTC"),
            match m.discrepancies.len() {
                0 => "no discrepancies".to_string(),
                1 => "1 discrepancy".to_string(),
                n => format!("{n} discrepancies"),
            }
        ));
        if m.discrepancies.is_empty() {
            continue;
        }
        out.push_str(
            "  level                     measure  charge                    res   mp/method  start (UTC)        DataHub          ours             difference       run          metering points\n",
        );
        for d in &m.discrepancies {
            out.push_str(&line(d));
        }
    }
    out
}

fn line(d: &ReportedDiscrepancy) -> String {
    let charge = match (&d.charge_owner_gln, &d.charge_code, &d.charge_type) {
        (Some(o), Some(c), Some(t)) => format!("{o}/{c}/{t}"),
        (Some(o), _, _) => o.clone(),
        _ => "-".to_string(),
    };
    let group = match (&d.metering_point_type, &d.settlement_method) {
        (Some(t), Some(m)) => format!("{t}/{m}"),
        (Some(t), None) => t.clone(),
        _ => "-".to_string(),
    };
    format!(
        "  {:<25} {:<8} {:<25} {:<5} {:<10} {:<18} {:<16} {:<16} {:<16} {:<12} {}\n",
        d.level,
        d.measure,
        charge,
        d.resolution,
        group,
        d.position_start.format("%Y-%m-%d %H:%M"),
        number(d.datahub),
        number(d.ours),
        number(Some(d.difference)),
        text(d.calculation.as_deref()),
        if d.metering_points.is_empty() {
            "-".to_string()
        } else {
            d.metering_points.join(" ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_grid_areas_are_checked_with_a_clear_message() {
        assert_eq!(
            parse_month("2026-03"),
            Ok(NaiveDate::from_ymd_opt(2026, 3, 1).expect("date"))
        );
        for bad in ["2026-3", "2026-13", "March", "2026-03-01"] {
            let e = parse_month(bad).expect_err(bad);
            assert!(e.contains("YYYY-MM"), "{e}");
        }
        assert_eq!(parse_grid_area("344"), Ok("344".to_string()));
        assert!(parse_grid_area("34").is_err());
        assert!(parse_grid_area("abc").is_err());
        assert_eq!(
            parse_owner("791=5790000610976"),
            Ok(("791".to_string(), "5790000610976".to_string()))
        );
        assert!(parse_owner("791").is_err());
        assert!(parse_owner("791=123").is_err());
        assert_eq!(number(Some("12.500000")), "12.5");
        assert_eq!(number(Some("-0.003498")), "-0.003498");
        assert_eq!(number(Some("40")), "40");
        assert_eq!(number(None::<&str>), "-");
    }
}
