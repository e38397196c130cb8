//! The child side: one processor in its own process (this binary, re-executed with the hidden
//! `processor` subcommand), so that the parent can read its CPU time and peak RSS from
//! `/proc` and size its state directory alone.
//!
//! It runs the processors crate's own `pipeline::run_one` with the quick local settings the
//! demo and the end-to-end tests use (`PipelineSettings::quick`: 100 ms commits, 1 s lag
//! checks, 500 ms ticks, no grace period, the example product catalogue), prints its input
//! topics once and then every runtime event as one JSON line on stdout, and stops on SIGTERM
//! (committing what is pending).

use std::path::PathBuf;

use afregning_processors::pipeline::{self, PipelineSettings, Watch, Which};
use afregning_processors::runtime::{Observer, Processor, RuntimeEvent};
use afregning_settlement::ProductCatalogue;
use afregning_topology::{Catalogue, Codec, TopologySettings};
use anyhow::Context;

/// The example product catalogue every scenario settles with (`deploy/product-catalogue.json`).
pub const PRODUCTS: &str = include_str!("../../../deploy/product-catalogue.json");

/// The example product catalogue, parsed and checked.
pub fn products() -> anyhow::Result<ProductCatalogue> {
    let catalogue: ProductCatalogue =
        serde_json::from_str(PRODUCTS).context("the example product catalogue")?;
    catalogue
        .validate()
        .context("the example product catalogue")?;
    Ok(catalogue)
}

/// Which processor a child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Stage {
    /// Raw to typed.
    Validate,
    /// Readings joined with master data.
    Enrich,
    /// Daily aggregates.
    Aggregate,
    /// Provisional lines and statements.
    Settle,
}

impl Stage {
    /// All four, in data-flow order.
    pub const ALL: [Stage; 4] = [
        Stage::Validate,
        Stage::Enrich,
        Stage::Aggregate,
        Stage::Settle,
    ];

    /// The processors crate's handle.
    pub fn which(self) -> Which {
        match self {
            Stage::Validate => Which::Validate,
            Stage::Enrich => Which::Enrich,
            Stage::Aggregate => Which::Aggregate,
            Stage::Settle => Which::Settle,
        }
    }

    /// The processor's name.
    pub fn name(self) -> &'static str {
        self.which().name()
    }

    /// The value of `--which` on the child's command line.
    pub fn arg(self) -> &'static str {
        match self {
            Stage::Validate => "validate",
            Stage::Enrich => "enrich",
            Stage::Aggregate => "aggregate",
            Stage::Settle => "settle",
        }
    }
}

/// Flags of the hidden `processor` subcommand (set by the parent, not meant for people).
#[derive(Debug, Clone, clap::Args)]
pub struct ChildArgs {
    /// Which processor.
    #[arg(long, value_enum)]
    pub which: Stage,
    /// Kafka bootstrap servers.
    #[arg(long)]
    pub bootstrap_servers: String,
    /// Schema registry URL.
    #[arg(long)]
    pub registry_url: String,
    /// Topic prefix of the deployment.
    #[arg(long)]
    pub prefix: String,
    /// Partitions per topic.
    #[arg(long)]
    pub partitions: u32,
    /// This processor's state directory.
    #[arg(long)]
    pub state_dir: PathBuf,
    /// Our GLN.
    #[arg(long)]
    pub supplier_gln: String,
    /// The runtime's stall timeout (re-seek of a partition with lag and no progress), ms.
    #[arg(long)]
    pub stall_timeout_ms: u64,
    /// The state stores' memory budget, MiB.
    #[arg(long)]
    pub state_memory_mb: usize,
    /// Tasks processed at once per processor (0: the machine's cores).
    #[arg(long)]
    pub processing_threads: usize,
    /// Extra librdkafka settings for every client of the runtime, `KEY=VALUE`.
    #[arg(long = "kafka", value_parser = parse_kafka_setting)]
    pub kafka: Vec<(String, String)>,
}

/// `KEY=VALUE` of a librdkafka setting.
pub fn parse_kafka_setting(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!(
            "expected KEY=VALUE (a librdkafka setting), got {s:?}"
        )),
    }
}

/// The first line a child prints: what "caught up" is judged against.
pub const INPUTS_EVENT: &str = "load-test-inputs";

fn printer() -> Observer {
    std::sync::Arc::new(|event: &RuntimeEvent| {
        use std::io::Write;
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    })
}

/// The input topics of `stage` under these settings (what "caught up" and a replay's range
/// are judged against).
pub(crate) fn input_topics(
    stage: Stage,
    topics: &afregning_processors::shared::Topics,
    s: &PipelineSettings,
) -> Vec<String> {
    use afregning_processors::{aggregate, enrich, settle, validate};
    match stage {
        Stage::Validate => {
            validate::Validate::new(topics.clone(), s.validate.clone()).input_topics()
        }
        Stage::Enrich => enrich::Enrich::new(topics.clone(), s.enrich.clone()).input_topics(),
        Stage::Aggregate => {
            aggregate::Aggregate::new(topics.clone(), s.aggregate.clone()).input_topics()
        }
        Stage::Settle => settle::Settle::new(topics.clone(), s.settle.clone()).input_topics(),
    }
}

/// The pipeline settings a child runs with (the parent derives consumer groups from them).
pub(crate) fn settings(args: &ChildArgs) -> anyhow::Result<PipelineSettings> {
    let mut settings = PipelineSettings::quick(
        &args.bootstrap_servers,
        &args.prefix,
        &args.state_dir,
        &args.supplier_gln,
        products()?,
    );
    settings.runtime.stall_timeout_ms = args.stall_timeout_ms;
    settings.runtime.state_memory_mb = args.state_memory_mb;
    settings.runtime.processing_threads = args.processing_threads;
    settings.runtime.kafka.extend(args.kafka.iter().cloned());
    Ok(settings)
}

/// Runs one processor until SIGTERM (the child's whole life).
pub async fn run(args: ChildArgs) -> anyhow::Result<()> {
    let catalogue = Catalogue::new(TopologySettings {
        partitions: args.partitions,
        ..TopologySettings::with_prefix(args.prefix.clone())
    })?;
    let codec = Codec::new(catalogue.clone(), &args.registry_url);
    let topics = pipeline::topics(catalogue, &codec)
        .await
        .context("resolving schema ids")?;
    let settings = settings(&args)?;
    let inputs = input_topics(args.which, &topics, &settings);
    println!(
        "{}",
        serde_json::json!({ "event": INPUTS_EVENT, "topics": inputs })
    );
    let shutdown = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    pipeline::run_one(
        args.which.which(),
        topics,
        settings,
        Watch {
            observer: Some(printer()),
            status: None,
        },
        shutdown,
    )
    .await?;
    Ok(())
}
