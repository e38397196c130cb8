//! `afregning topology`: topics and schemas as code.
//!
//! `apply` creates missing topics and registers missing schemas (idempotent),
//! `verify` compares the live cluster and registry with the catalogue and
//! exits 1 listing each difference, `describe` prints the catalogue as a table
//! and a Mermaid diagram. The catalogue itself lives in `afregning-topology`.

use std::process::ExitCode;

use afregning_topology::admin::Admin;
use afregning_topology::settings::{
    DEFAULT_PARTITIONS, DEFAULT_RAW_RETENTION_DAYS, DEFAULT_STREAM_RETENTION_DAYS, TopologySettings,
};
use afregning_topology::{Catalogue, describe};
use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand, ValueEnum};

use super::common::StackArgs;

/// Arguments of `afregning topology`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: TopologyCommand,
}

/// The topology subcommands.
#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Create missing topics and register missing schemas; a second run changes nothing.
    Apply {
        /// Deployment settings.
        #[command(flatten)]
        settings: SettingsArgs,
        /// Where the broker and registry are.
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Compare the cluster and registry with the catalogue; exit 1 listing each difference.
    Verify {
        /// Also fail on checks the broker cannot answer (cleanup policy and retention on Tansu).
        #[arg(long)]
        strict: bool,
        /// Deployment settings.
        #[command(flatten)]
        settings: SettingsArgs,
        /// Where the broker and registry are.
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Print the catalogue as a table and a Mermaid diagram of who writes and reads what.
    Describe {
        /// What to print.
        #[arg(long, value_enum, default_value_t = DescribeFormat::Markdown)]
        format: DescribeFormat,
        /// Include state-store changelog topics in the diagram.
        #[arg(long)]
        changelogs: bool,
        /// Deployment settings.
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

/// Output of `describe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DescribeFormat {
    /// The table, then the diagram in a Mermaid code block.
    Markdown,
    /// Only the Markdown table.
    Table,
    /// Only the Mermaid diagram.
    Mermaid,
}

/// The deployment settings of the topology (everything else is fixed by the catalogue).
#[derive(Debug, Clone, ClapArgs)]
pub struct SettingsArgs {
    /// Prefix of every topic name and schema subject (e.g. `staging.`); empty in production.
    #[arg(long, env = "AFREGNING_TOPIC_PREFIX", default_value = "")]
    pub prefix: String,
    /// Partitions of every topic.
    #[arg(long, env = "AFREGNING_TOPIC_PARTITIONS", default_value_t = DEFAULT_PARTITIONS)]
    pub partitions: u32,
    /// Replicas of every partition: 1 on a local broker, 3 in production.
    #[arg(long, env = "AFREGNING_TOPIC_REPLICATION", default_value_t = 1)]
    pub replication_factor: u16,
    /// Retention of the raw DataHub topics, in days (a settlement window).
    #[arg(long, env = "AFREGNING_RAW_RETENTION_DAYS", default_value_t = DEFAULT_RAW_RETENTION_DAYS)]
    pub raw_retention_days: u32,
    /// Retention of typed and settlement streams, in days.
    #[arg(long, env = "AFREGNING_STREAM_RETENTION_DAYS", default_value_t = DEFAULT_STREAM_RETENTION_DAYS)]
    pub stream_retention_days: u32,
}

impl SettingsArgs {
    fn catalogue(&self) -> anyhow::Result<Catalogue> {
        let settings = TopologySettings {
            prefix: self.prefix.clone(),
            partitions: self.partitions,
            replication_factor: self.replication_factor,
            raw_retention_days: self.raw_retention_days,
            stream_retention_days: self.stream_retention_days,
        };
        Catalogue::new(settings).context("invalid topology settings")
    }
}

fn connect(settings: &SettingsArgs, stack: &StackArgs) -> anyhow::Result<Admin> {
    Admin::connect(
        settings.catalogue()?,
        &stack.bootstrap_servers,
        &stack.schema_registry_url,
    )
    .context("connecting to the broker and registry")
}

/// Runs `afregning topology`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        TopologyCommand::Apply { settings, stack } => {
            let admin = connect(&settings, &stack)?;
            let report = admin.apply().await.context("applying the topology")?;
            print!("{}", report.render());
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        TopologyCommand::Verify {
            strict,
            settings,
            stack,
        } => {
            let admin = connect(&settings, &stack)?;
            let report = admin.verify().await.context("verifying the topology")?;
            print!("{}", report.render(strict));
            Ok(if report.passes(strict) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        TopologyCommand::Describe {
            format,
            changelogs,
            settings,
        } => {
            let catalogue = settings.catalogue()?;
            match format {
                DescribeFormat::Table => print!("{}", describe::table(&catalogue)),
                DescribeFormat::Mermaid => print!("{}", describe::mermaid(&catalogue, changelogs)),
                DescribeFormat::Markdown => print!(
                    "{}\n```mermaid\n{}```\n",
                    describe::table(&catalogue),
                    describe::mermaid(&catalogue, changelogs)
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
