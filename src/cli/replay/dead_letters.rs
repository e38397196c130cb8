//! `afregning replay dead-letters`: re-submit resolved dead letters to the
//! topic and partition they came from, recorded as a replay run (kind
//! `dead-letters`) with one `replay_resubmission` row per record.
//!
//! Only resolved dead letters go: resolving is the operator's statement that
//! the cause is fixed (decision 0064's procedure). A dead letter an earlier run
//! already re-submitted is skipped (named with `--id`: refused) unless
//! `--again`. The record is copied from the source topic with its headers
//! where it is still there (see `afregning_processors::replay::dead_letters`).
//! Selecting, recording and producing are `afregning_processors::replay::resubmit`,
//! which the API's `POST /v1/dead-letters/resubmit` uses too.

use std::process::ExitCode;

use afregning_processors::replay::dead_letters::DeadLetterId;
use afregning_processors::replay::resubmit::{self, Selection};
use afregning_processors::replay::runs::new_run_id;
use clap::Args as ClapArgs;
use rdkafka::ClientConfig;

use super::runs;
use crate::cli::common::StackArgs;

/// Arguments of `afregning replay dead-letters`.
#[derive(Debug, ClapArgs)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "reason"])))]
pub struct DeadLetterArgs {
    /// A dead letter by its id, `TOPIC/PARTITION/OFFSET` of the record that failed (repeatable).
    #[arg(long = "id")]
    pub ids: Vec<DeadLetterId>,
    /// Every resolved dead letter whose reason contains this text.
    #[arg(long)]
    pub reason: Option<String>,
    /// Why (recorded with the run; default: what was selected).
    #[arg(long)]
    pub why: Option<String>,
    /// Who (recorded with the run).
    #[arg(long, env = "AFREGNING_OPERATOR")]
    pub operator: Option<String>,
    /// Re-submit dead letters an earlier run already re-submitted.
    #[arg(long)]
    pub again: bool,
    /// List what would be re-submitted; produce nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the stack is.
    #[command(flatten)]
    pub stack: StackArgs,
}

/// `afregning replay dead-letters`.
pub async fn run(args: DeadLetterArgs) -> anyhow::Result<ExitCode> {
    let operator = runs::operator(args.operator.as_deref())?;
    let mut conn = runs::connect(&args.stack).await?;
    let selection = Selection {
        ids: args.ids.clone(),
        reason_contains: args.reason.clone(),
        again: args.again,
    };
    let letters = resubmit::select(&mut conn, &selection).await?;
    if letters.is_empty() {
        println!("no resolved dead letter to re-submit");
        return Ok(ExitCode::SUCCESS);
    }
    let why = args.why.clone().unwrap_or_else(|| match &args.reason {
        Some(reason) => format!("re-submit resolved dead letters whose reason contains {reason:?}"),
        None => "re-submit resolved dead letters".to_string(),
    });
    let run_id = new_run_id();
    resubmit::record_start(&mut conn, &run_id, &operator, &why, &letters, args.dry_run).await?;
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &args.stack.bootstrap_servers);
    let done = resubmit::resubmit(&mut conn, &client, &run_id, &letters, args.dry_run).await?;
    for r in &done {
        match r.offset {
            Some(offset) => println!(
                "{} -> {}[{}] offset {offset}{}",
                r.dead_letter,
                r.topic,
                r.partition,
                if r.from_source {
                    ""
                } else {
                    " (from the dead letter's copy: the source record is gone)"
                }
            ),
            None => println!(
                "{} would go to {}[{}] (dry run)",
                r.dead_letter, r.topic, r.partition
            ),
        }
    }
    eprintln!(
        "replay {run_id}: {} dead letters {}",
        done.len(),
        if args.dry_run {
            "would be re-submitted"
        } else {
            "re-submitted"
        }
    );
    Ok(ExitCode::SUCCESS)
}
