//! The demo's processor stage: validate, enrich, aggregate and settle, run
//! together in this process until every one has caught up with its inputs.

use std::time::Duration;

use afregning_processors::pipeline::{self, PipelineSettings};
use afregning_settlement::ProductCatalogue;
use afregning_topology::{Catalogue, Codec};
use anyhow::Context;

use super::stages::Plan;

/// The example product catalogue the demo settles with (`deploy/product-catalogue.json`).
pub const DEMO_CATALOGUE: &str = include_str!("../../../deploy/product-catalogue.json");

/// The settings the demo runs the processors with: quick ticks and commits,
/// the example catalogue, no grace period (the demo's months are long past).
pub fn demo_settings(plan: &Plan, supplier_gln: &str) -> anyhow::Result<PipelineSettings> {
    let catalogue: ProductCatalogue =
        serde_json::from_str(DEMO_CATALOGUE).context("the demo product catalogue")?;
    catalogue.validate().context("the demo product catalogue")?;
    Ok(PipelineSettings::quick(
        &plan.args.stack.bootstrap_servers,
        &plan.prefix,
        &plan.work_dir.join("state"),
        supplier_gln,
        catalogue,
    ))
}

/// Runs the processors until each has caught up; returns the summary lines.
pub async fn run(
    plan: &Plan,
    catalogue: &Catalogue,
    supplier_gln: &str,
    problems: &mut Vec<String>,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<String>> {
    let settings = demo_settings(plan, supplier_gln)?;
    let codec = Codec::new(catalogue.clone(), &plan.args.stack.schema_registry_url);
    let topics = pipeline::topics(catalogue.clone(), &codec)
        .await
        .context("resolving schema ids")?;
    let show = |p: &pipeline::PipelineProgress| {
        let counts: Vec<String> = p
            .processors
            .iter()
            .map(|(name, (records, _))| format!("{name} {records}"))
            .collect();
        bar.set_message(format!(
            "records processed: {}; {} behind",
            counts.join(", "),
            p.lag
        ));
    };
    let report = pipeline::run_until_caught_up_observed(
        topics,
        settings,
        Duration::from_secs(3),
        plan.stage_timeout,
        &show,
    )
    .await
    .context("running the processors until caught up")?;
    let mut lines: Vec<String> = report.to_string().lines().map(str::to_string).collect();
    for (name, (records, _)) in &report.processors {
        if *records == 0 {
            problems.push(format!("the {name} processor processed no records"));
        }
    }
    lines.push(
        "every output carries an idempotency key; a crash re-emits the same keys, never new amounts"
            .to_string(),
    );
    Ok(lines)
}
