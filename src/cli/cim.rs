//! `afregning cim`: validate and convert CIM JSON documents.
//!
//! `validate` prints one line per file, in the order given: `ok <document type> <series
//! count> <point count>` or `error <class> <json path>: <reason>`, and exits 1 if any file
//! is invalid. `convert` prints the typed model as JSON lines, one per series (or activity
//! record), each with the document type and header, for `jq` and eyes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args as ClapArgs, Subcommand};

/// Arguments of `afregning cim`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// What to do with the documents.
    #[command(subcommand)]
    command: CimCommand,
}

#[derive(Debug, Subcommand)]
enum CimCommand {
    /// Parse each file strictly and print `ok …` or `error <class> <path>: <reason>` per file.
    Validate {
        /// CIM JSON files (as peeked from DataHub or written by the simulator).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the typed model of one document as JSON lines, one per series.
    Convert {
        /// A CIM JSON file.
        file: PathBuf,
    },
}

/// Runs `afregning cim`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        CimCommand::Validate { files } => Ok(validate(&files)),
        CimCommand::Convert { file } => convert(&file),
    }
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let mut invalid = false;
    for file in files {
        let line = match std::fs::read(file) {
            Err(error) => {
                invalid = true;
                format!(
                    "error unreadable-file $: cannot read {}: {error}",
                    file.display()
                )
            }
            Ok(bytes) => match afregning_cim::parse(&bytes) {
                Ok(doc) => format!(
                    "ok {} {} {}",
                    doc.kind().name(),
                    doc.transaction_count(),
                    doc.point_count()
                ),
                Err(error) => {
                    invalid = true;
                    format!("error {error}")
                }
            },
        };
        println!("{line}");
    }
    if invalid {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn convert(file: &Path) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let doc = match afregning_cim::parse(&bytes) {
        Ok(doc) => doc,
        Err(error) => {
            println!("error {error}");
            return Ok(ExitCode::from(1));
        }
    };
    let header = serde_json::to_value(doc.header())?;
    for (index, transaction) in doc.transactions_json().into_iter().enumerate() {
        let line = serde_json::json!({
            "document": doc.kind().name(),
            "rsm": doc.kind().rsm(),
            "index": index,
            "header": header,
            "transaction": transaction,
        });
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
