//! `afregning prices`: import spot prices.
//!
//! `afregning prices import FILE.csv` reads a file with Energi Data Service's columns
//! (`TimeUTC, TimeDK, PriceArea, DayAheadPriceDKK, DayAheadPriceEUR`, or the hourly
//! `HourUTC, HourDK, PriceArea, SpotPriceDKK, SpotPriceEUR`; comma- or EDS's
//! semicolon-separated) and publishes every price to the spot-price topic, the same topic
//! `afregning connect spot-prices` feeds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use afregning_connect::config::KafkaConfig;
use afregning_connect::spot_prices::{SpotPricePublisher, parse_csv};
use afregning_topology::TopologySettings;
use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};

use super::common::StackArgs;
use super::topology::SettingsArgs;

/// Arguments of `afregning prices`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: PricesCommand,
}

/// The prices subcommands.
#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// Publish the prices of a CSV file to the spot-price topic.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// The `source` recorded with each price.
        #[arg(long)]
        source: Option<String>,
        /// Where the broker and registry are.
        #[command(flatten)]
        stack: StackArgs,
        /// Deployment settings (topic prefix, partitions).
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

/// The topology settings of the shared `--prefix`, `--partitions`, … flags.
pub fn topology_settings(settings: &SettingsArgs) -> TopologySettings {
    TopologySettings {
        prefix: settings.prefix.clone(),
        partitions: settings.partitions,
        replication_factor: settings.replication_factor,
        raw_retention_days: settings.raw_retention_days,
        stream_retention_days: settings.stream_retention_days,
    }
}

/// Runs `afregning prices`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        PricesCommand::Import {
            file,
            source,
            stack,
            settings,
        } => {
            let reader = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let rows = parse_csv(reader).with_context(|| format!("reading {}", file.display()))?;
            let kafka = KafkaConfig {
                bootstrap_servers: stack.bootstrap_servers,
                schema_registry_url: stack.schema_registry_url,
                topology: topology_settings(&settings),
                ..KafkaConfig::default()
            };
            let publisher = SpotPricePublisher::new(&kafka)?;
            let source = source.unwrap_or_else(|| {
                format!(
                    "file:{}",
                    file.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                )
            });
            let n = publisher.publish(&rows, &source).await?;
            let mut per_area: BTreeMap<&str, usize> = BTreeMap::new();
            for row in &rows {
                *per_area.entry(row.price_area.as_str()).or_default() += 1;
            }
            let areas: Vec<String> = per_area.iter().map(|(a, n)| format!("{a}: {n}")).collect();
            println!(
                "imported {n} prices ({}) from {}",
                areas.join(", "),
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
