//! `afregning conformance`: check the settlement engine against Energinet's scenarios.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};

/// Arguments of `afregning conformance`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Which of Energinet's test suites to run.
    #[command(subcommand)]
    pub suite: Suite,
}

/// The suites.
#[derive(Debug, Subcommand)]
pub enum Suite {
    /// Run opengeh-wholesale scenario folders (`when/` inputs, `then/wholesale_results/` expected
    /// outputs); DIR is one scenario or a folder of scenarios. Exit 0 when every expected file
    /// matches, 1 on any difference, 2 on unreadable input.
    Wholesale {
        /// A scenario folder, or a folder whose subfolders are scenarios.
        dir: PathBuf,
    },
}

/// Runs `afregning conformance`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.suite {
        Suite::Wholesale { dir } => {
            // CPU-bound and file-bound work: keep it off the async workers.
            tokio::task::spawn_blocking(move || wholesale(&dir)).await?
        }
    }
}

fn wholesale(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let scenarios = afregning_conformance::find_scenarios(dir)?;
    let mut failed = 0usize;
    for scenario in &scenarios {
        let report = afregning_conformance::run_scenario(scenario)?;
        print!("{}", afregning_conformance::render(&report));
        if !report.matches() {
            failed += 1;
        }
    }
    println!(
        "{} of {} scenarios pass",
        scenarios.len() - failed,
        scenarios.len()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
