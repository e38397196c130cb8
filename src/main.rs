//! `afregning`: the one operator binary of the settlement pipeline.
//!
//! Each subcommand lives in its own module under `cli/`, so a reader finds the
//! command an operator types by its file name. Parsing is clap's; validated
//! settings and the work itself live in the library crates.

mod cli;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match &cli.command {
        // The demo's terminal shows progress and the summary; its logs go to a file.
        cli::Command::Demo(args) => {
            let path = args.log_file();
            if let Err(error) = telemetry::init_to_file(cli.log_format, &path) {
                eprintln!(
                    "warning: cannot log to {}: {error}; logging to stderr",
                    path.display()
                );
                telemetry::init(cli.log_format);
            }
        }
        _ => telemetry::init(cli.log_format),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("afregning")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line, which is what an
            // operator reading a log or a terminal needs.
            tracing::error!(error = %format!("{error:#}"), "command failed");
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
