//! `cargo xtask`: the developer's entry point on a fresh machine.
//!
//! - `cargo xtask demo`: installs what is missing, starts the local stack and
//!   runs `afregning demo` (the README's first command);
//! - `cargo xtask test`: installs what is missing, starts the local stack,
//!   runs every test of the workspace and stops what it started (the README's
//!   second command, and what CI runs);
//! - `cargo xtask stack up|down|status`, `cargo xtask setup`.
//!
//! xtask is deliberately light (no Kafka or database client): it must build
//! quickly on a machine that does not yet have the C toolchain pieces the
//! workspace needs.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use afregning_stack::{BrokerStorage, Endpoints, StackDir};
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Developer tasks for afregning")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install the system packages and the Tansu broker if missing.
    Setup,
    /// Manage the local stack (broker, PostgreSQL, schema registry).
    Stack {
        #[command(subcommand)]
        action: StackAction,
    },
    /// Run every test of the workspace against a real local stack.
    Test {
        /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_test_args: Vec<String>,
    },
    /// Run the pipeline end to end on the local stack and print a summary.
    Demo {
        /// Extra arguments for `afregning demo`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        demo_args: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum StackAction {
    /// Start what is missing and print the endpoints as shell exports.
    Up,
    /// Stop what this stack directory started (by pid), nothing else.
    Down,
    /// Show what this stack directory started and whether it still runs.
    Status,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn step(what: &str) {
    eprintln!("==> {what}");
}

fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        anyhow::bail!("{what} failed ({status})");
    }
    Ok(())
}

fn setup() -> anyhow::Result<()> {
    step(
        "system packages (clang, libclang-dev, libssl-dev, pkg-config, postgresql, chromium, chromium-driver)",
    );
    afregning_stack::ensure_system_packages()?;
    step("Tansu broker binary");
    let tansu = afregning_stack::ensure_tansu_installed()?;
    eprintln!("    {}", tansu.display());
    Ok(())
}

/// The operator binary, built if needed; the registry runs from it.
fn afregning_binary() -> anyhow::Result<PathBuf> {
    step("building the afregning binary");
    let mut build = cargo();
    build.args(["build", "--package", "afregning", "--message-format=short"]);
    run(build, "cargo build -p afregning")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        workspace_root().join(target)
    };
    Ok(target.join("debug").join("afregning"))
}

fn stack_up(dir: &StackDir, with_registry: bool) -> anyhow::Result<Endpoints> {
    step("Kafka-compatible broker (Tansu, memory engine)");
    let bootstrap_servers = afregning_stack::ensure_broker(dir, BrokerStorage::Memory)?;
    eprintln!("    {bootstrap_servers}");
    step("PostgreSQL");
    let postgres = afregning_stack::ensure_postgres(dir)?;
    eprintln!("    {postgres:?}");
    let schema_registry_url = if with_registry {
        step("schema registry");
        let binary = afregning_binary()?;
        let registry = afregning_stack::ensure_registry(dir, &binary, postgres.url())?;
        eprintln!("    {registry:?}");
        Some(registry.url().to_string())
    } else {
        None
    };
    Ok(Endpoints {
        bootstrap_servers,
        database_url: postgres.url().to_string(),
        schema_registry_url,
    })
}

fn started_services(dir: &StackDir) -> anyhow::Result<Vec<String>> {
    Ok(afregning_stack::status(dir)?
        .into_iter()
        .filter(|(_, _, running)| *running)
        .map(|(name, _, _)| name)
        .collect())
}

fn test(cargo_test_args: Vec<String>) -> anyhow::Result<()> {
    let started = Instant::now();
    setup()?;
    let dir = StackDir::for_workspace(&workspace_root());
    let before = started_services(&dir)?;
    let outcome = (|| -> anyhow::Result<()> {
        // The registry each test needs runs inside the test itself (testkit);
        // the stack's registry process is exercised by the binary's own tests.
        let endpoints = stack_up(&dir, false)?;
        step("cargo test --workspace");
        let mut test = cargo();
        test.args(["test", "--workspace"])
            .args(&cargo_test_args)
            .env("KAFKA_BOOTSTRAP_SERVERS", &endpoints.bootstrap_servers)
            .env("DATABASE_URL", &endpoints.database_url)
            .env("AFREGNING_STACK_DIR", dir.path());
        run(test, "cargo test --workspace")
    })();
    // Stop only what this run started: a stack a developer had up stays up.
    let now = started_services(&dir)?;
    let ours: Vec<&String> = now.iter().filter(|name| !before.contains(name)).collect();
    if !ours.is_empty() {
        step(&format!("stopping what this run started: {ours:?}"));
        let stopped = afregning_stack::stop_services(&dir, &ours)?;
        eprintln!("    stopped {stopped:?}");
    }
    eprintln!(
        "==> tests {} in {:.0?}",
        if outcome.is_ok() { "passed" } else { "FAILED" },
        started.elapsed()
    );
    outcome
}

fn demo(demo_args: Vec<String>) -> anyhow::Result<()> {
    setup()?;
    let dir = StackDir::for_workspace(&workspace_root());
    let endpoints = stack_up(&dir, true)?;
    let binary = afregning_binary()?;
    step("afregning demo");
    let mut demo = Command::new(binary);
    demo.arg("demo")
        .args(&demo_args)
        .current_dir(workspace_root())
        .env("KAFKA_BOOTSTRAP_SERVERS", &endpoints.bootstrap_servers)
        .env("DATABASE_URL", &endpoints.database_url)
        .env("AFREGNING_STACK_DIR", dir.path());
    if let Some(url) = &endpoints.schema_registry_url {
        demo.env("SCHEMA_REGISTRY_URL", url);
    }
    run(demo, "afregning demo")?;
    eprintln!("The stack keeps running for inspection; stop it with: cargo xtask stack down");
    Ok(())
}

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let cli = Cli::parse();
    let dir = StackDir::for_workspace(&workspace_root());
    let result = match cli.command {
        Task::Setup => setup(),
        Task::Stack {
            action: StackAction::Up,
        } => setup()
            .and_then(|()| stack_up(&dir, true))
            .map(|endpoints| print!("{}", endpoints.to_env_exports())),
        Task::Stack {
            action: StackAction::Down,
        } => afregning_stack::stop(&dir).map(|stopped| {
            if stopped.is_empty() {
                eprintln!("nothing of ours was running");
            } else {
                eprintln!("stopped {stopped:?}");
            }
        }),
        Task::Stack {
            action: StackAction::Status,
        } => afregning_stack::status(&dir).map(|services| {
            if services.is_empty() {
                eprintln!("no services recorded in {}", dir.path().display());
            }
            for (name, record, running) in services {
                println!(
                    "{name:<10} pid {:<8} port {:<6} {}",
                    record.pid,
                    record.port,
                    if running { "running" } else { "not running" }
                );
            }
        }),
        Task::Test { cargo_test_args } => test(cargo_test_args),
        Task::Demo { demo_args } => demo(demo_args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
