//! `afregning process`: the stateful processors (`afregning-processors`).
//!
//! `run <name>` runs one processor until SIGINT/SIGTERM, serving `/health`,
//! `/ready` and `/metrics` on the admin address. Run as many instances of a
//! processor as there are machines: they share its consumer group and split
//! its partitions (docs/processors.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use afregning_processors::enrich::{EnrichConfig, EnrichRules};
use afregning_processors::pipeline::{self, PipelineSettings, Watch, Which as Processor};
use afregning_processors::runtime::RuntimeConfig;
use afregning_processors::settle::SettleConfig;
use afregning_settlement::ProductCatalogue;
use afregning_topology::{Catalogue, Codec, TopologySettings};
use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};

use super::common::StackArgs;

/// Arguments of `afregning process`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: ProcessCommand,
}

/// The process subcommands.
#[derive(Debug, Subcommand)]
pub enum ProcessCommand {
    /// Run one processor until SIGINT/SIGTERM.
    Run {
        /// Which processor (the names and descriptions come from the topology
        /// catalogue's declarations).
        #[arg(value_parser = processor_names())]
        processor: String,
        /// Where /health, /ready and /metrics are served.
        #[arg(
            long,
            env = "AFREGNING_PROCESSOR_ADMIN_LISTEN",
            default_value = "127.0.0.1:9200"
        )]
        admin_listen: SocketAddr,
        /// Print every runtime event as a JSON line on stdout (tests and
        /// operators watching restores and rebalances).
        #[arg(long)]
        print_events: bool,
        /// Settings of the processors.
        #[command(flatten)]
        settings: ProcessorArgs,
    },
}

/// The processors a user can name: every declaration in the catalogue
/// (`afregning_topology::processors`), with its description as help.
fn processor_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        afregning_topology::processors::PROCESSORS
            .iter()
            .map(|p| clap::builder::PossibleValue::new(p.component.name()).help(p.doc)),
    )
}

/// Settings shared by the processors (and the demo).
#[derive(Debug, Clone, ClapArgs)]
pub struct ProcessorArgs {
    /// Topic prefix of the deployment (the topology's prefix).
    #[arg(long, env = "AFREGNING_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Partitions per topic, as `afregning topology apply` created them.
    #[arg(long, env = "AFREGNING_TOPIC_PARTITIONS", default_value_t = afregning_topology::settings::DEFAULT_PARTITIONS)]
    pub partitions: u32,
    /// Directory of the processors' local state (RocksDB per task).
    #[arg(long, env = "AFREGNING_STATE_DIR", default_value = "state")]
    pub state_dir: PathBuf,
    /// Memory budget of the state stores of this process, MiB.
    #[arg(long, env = "AFREGNING_STATE_MEMORY_MB", default_value_t = 256)]
    pub state_memory_mb: usize,
    /// Our GLN: master data naming another supplier is not settled.
    #[arg(long, env = "AFREGNING_SUPPLIER_GLN")]
    pub supplier_gln: Option<String>,
    /// The product catalogue (JSON, `afregning_settlement::ProductCatalogue`).
    #[arg(long, env = "AFREGNING_PRODUCT_CATALOGUE")]
    pub product_catalogue: Option<PathBuf>,
    /// Product of metering points the catalogue does not assign.
    #[arg(long, env = "AFREGNING_DEFAULT_PRODUCT")]
    pub default_product: Option<String>,
    /// Days after a month's end before its statement is issued.
    #[arg(long, env = "AFREGNING_SETTLE_GRACE_DAYS", default_value_t = 5)]
    pub grace_days: i64,
    /// Hours a reading waits for its master data before it is dead-lettered.
    #[arg(long, env = "AFREGNING_ENRICH_PENDING_HOURS", default_value_t = 24)]
    pub pending_hours: i64,
    /// How often aggregate and settle recompute what reference-data changes
    /// marked, and settle checks finality, in ms.
    #[arg(long, env = "AFREGNING_TICK_MS", default_value_t = 10_000)]
    pub tick_ms: u64,
    /// Commit a batch at the latest this long after its first record, in ms.
    #[arg(long, env = "AFREGNING_COMMIT_INTERVAL_MS", default_value_t = 200)]
    pub commit_interval_ms: u64,
    /// Group session timeout, in ms: how long a silent instance keeps its partitions.
    #[arg(long, env = "AFREGNING_SESSION_TIMEOUT_MS", default_value_t = 10_000)]
    pub session_timeout_ms: u64,
    /// Static group membership id (KIP-345): a restart within the session
    /// timeout gets its partitions back without a rebalance.
    #[arg(long, env = "AFREGNING_GROUP_INSTANCE_ID")]
    pub group_instance_id: Option<String>,
    /// Where the broker, the schema registry and the database are.
    #[command(flatten)]
    pub stack: StackArgs,
}

impl ProcessorArgs {
    /// The catalogue of the deployment.
    pub fn catalogue(&self) -> anyhow::Result<Catalogue> {
        Catalogue::new(TopologySettings {
            partitions: self.partitions,
            ..TopologySettings::with_prefix(self.topic_prefix.clone())
        })
        .context("the topology settings")
    }

    /// The four processors' settings.
    pub fn settings(&self) -> anyhow::Result<PipelineSettings> {
        let catalogue = match &self.product_catalogue {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the product catalogue {}", path.display()))?;
                let catalogue: ProductCatalogue = serde_json::from_str(&text)
                    .with_context(|| format!("parsing the product catalogue {}", path.display()))?;
                catalogue
                    .validate()
                    .with_context(|| format!("the product catalogue {}", path.display()))?;
                catalogue
            }
            None => ProductCatalogue::default(),
        };
        if let Some(product) = &self.default_product
            && !catalogue.products.iter().any(|p| &p.id == product)
        {
            anyhow::bail!("the default product {product} is not in the product catalogue");
        }
        Ok(PipelineSettings {
            runtime: RuntimeConfig {
                bootstrap_servers: self.stack.bootstrap_servers.clone(),
                topic_prefix: self.topic_prefix.clone(),
                state_dir: self.state_dir.clone(),
                state_memory_mb: self.state_memory_mb,
                commit_interval_ms: self.commit_interval_ms,
                session_timeout_ms: self.session_timeout_ms,
                group_instance_id: self.group_instance_id.clone(),
                ..RuntimeConfig::default()
            },
            validate: Default::default(),
            enrich: EnrichConfig {
                rules: EnrichRules {
                    supplier_gln: self.supplier_gln.clone(),
                    ..EnrichRules::default()
                },
                pending_timeout: chrono::Duration::hours(self.pending_hours),
                ..EnrichConfig::default()
            },
            aggregate: afregning_processors::aggregate::AggregateConfig {
                spot_recompute_interval: std::time::Duration::from_millis(self.tick_ms),
            },
            settle: SettleConfig {
                catalogue,
                default_product: self.default_product.clone(),
                grace: chrono::Duration::days(self.grace_days),
                tick_interval: std::time::Duration::from_millis(self.tick_ms),
            },
        })
    }
}

/// Runs `afregning process`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        ProcessCommand::Run {
            processor,
            admin_listen,
            print_events,
            settings: processor_args,
        } => {
            let catalogue = processor_args.catalogue()?;
            let settings = processor_args.settings()?;
            let codec = Codec::new(catalogue.clone(), &processor_args.stack.schema_registry_url);
            let topics = pipeline::topics(catalogue, &codec)
                .await
                .context("resolving the schema ids at the registry")?;
            let (status_tx, status_rx) = tokio::sync::oneshot::channel();
            let render = crate::telemetry::prometheus();
            let listener = tokio::net::TcpListener::bind(admin_listen)
                .await
                .with_context(|| format!("binding the admin address {admin_listen}"))?;
            tracing::info!(%admin_listen, %processor, "serving /health, /ready and /metrics");
            tokio::spawn(async move {
                if let Ok(status) = status_rx.await {
                    let app = afregning_processors::runtime::admin::router(status, render);
                    let _ = axum::serve(listener, app).await;
                }
            });
            let watch = Watch {
                observer: print_events.then(event_printer),
                status: Some(status_tx),
            };
            if processor == afregning_processors::portfolio::NAME {
                let us = processor_args
                    .supplier_gln
                    .as_deref()
                    .and_then(afregning_portfolio::Gln::parse)
                    .context("the portfolio processor needs our GLN: --supplier-gln or AFREGNING_SUPPLIER_GLN (13 digits)")?;
                let config = afregning_processors::portfolio::PortfolioConfig {
                    us,
                    tick_interval: std::time::Duration::from_millis(processor_args.tick_ms),
                };
                pipeline::run_runtime(
                    afregning_processors::portfolio::Portfolio::new(topics, config),
                    settings.runtime,
                    watch,
                    super::common::shutdown_signal(),
                )
                .await
                .context("running the portfolio processor")?;
                return Ok(ExitCode::SUCCESS);
            }
            let which = Processor::ALL
                .into_iter()
                .find(|w| w.name() == processor)
                .with_context(|| match processor.as_str() {
                    // Reconcile runs beside the pipeline with its own flags (decision 0123).
                    "reconcile" => "reconcile runs as its own process: `afregning reconcile run` \
                                    (see `afregning reconcile run --help`)"
                        .to_string(),
                    _ => format!("{processor} is declared but not built into this binary"),
                })?;
            pipeline::run_one(
                which,
                topics,
                settings,
                watch,
                super::common::shutdown_signal(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints each runtime event as one JSON line on stdout, flushed at once so
/// a test that kills the process sees every event it had reported.
fn event_printer() -> afregning_processors::runtime::Observer {
    std::sync::Arc::new(|event: &afregning_processors::runtime::RuntimeEvent| {
        use std::io::Write;
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    })
}
