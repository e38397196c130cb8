//! The local stack: a Kafka-compatible broker (Tansu), PostgreSQL and a
//! Confluent-compatible schema registry, made available on a machine that has
//! none of them running.
//!
//! Why a library and not a script: the test harness, `cargo xtask` and
//! `afregning demo` all need the same answer to "where is the broker?", and
//! they must agree on which processes *we* started so that `stop` never kills
//! anything else. The answer is kept in a state file under the stack directory
//! (`target/afregning-stack/` by default), guarded by a file lock so that test
//! binaries starting in parallel bring up one broker, not several.
//!
//! Every start is idempotent: a service recorded in the state file that still
//! answers is reused; one whose process died is started again.

mod kafka_probe;
mod ports;
mod postgres;
mod process;
mod registry;
mod setup;
mod state;
mod tansu;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use postgres::{PostgresSource, ensure_postgres, ensure_private_postgres};
pub use registry::{RegistrySource, ensure_registry};
pub use setup::{ensure_system_packages, ensure_tansu_installed, tansu_binary};
pub use state::{ServiceRecord, StackState};
pub use tansu::{
    BrokerProcess, BrokerStorage, ensure_broker, ensure_local_broker, start_private_broker,
};

/// The Tansu version the project is tested with; other versions have other gaps.
pub const TANSU_VERSION: &str = "0.6.0";

/// How long a service may take to answer after it was started before we give up
/// with a clear message.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the stack keeps its state file, logs and private data directories.
///
/// `AFREGNING_STACK_DIR` wins; otherwise `target/afregning-stack` under the
/// given workspace root. Keeping it under `target/` means `cargo clean` also
/// forgets a stale stack, and nothing lands outside the checkout.
#[derive(Debug, Clone)]
pub struct StackDir {
    root: PathBuf,
}

impl StackDir {
    /// The stack directory for a workspace root, honouring `AFREGNING_STACK_DIR`.
    pub fn for_workspace(workspace_root: &Path) -> Self {
        let root = std::env::var_os("AFREGNING_STACK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root.join("target").join("afregning-stack"));
        Self { root }
    }

    /// A stack directory at an explicit path (tests that want a private stack).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn create(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.root).map_err(|error| {
            anyhow::anyhow!(
                "cannot create the stack directory {}: {error}",
                self.root.display()
            )
        })
    }

    fn log_file(&self, service: &str) -> PathBuf {
        self.root.join(format!("{service}.log"))
    }
}

/// Where each service of a running stack answers: what a component needs to connect.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Endpoints {
    /// Kafka bootstrap servers, `host:port`.
    pub bootstrap_servers: String,
    /// PostgreSQL connection URL.
    pub database_url: String,
    /// Schema registry base URL, when one was asked for.
    pub schema_registry_url: Option<String>,
}

impl Endpoints {
    /// Shell `export` lines, so that a developer can point other commands at this stack.
    pub fn to_env_exports(&self) -> String {
        let mut out = format!(
            "export KAFKA_BOOTSTRAP_SERVERS={}\nexport DATABASE_URL={}\n",
            self.bootstrap_servers, self.database_url
        );
        if let Some(url) = &self.schema_registry_url {
            out.push_str(&format!("export SCHEMA_REGISTRY_URL={url}\n"));
        }
        out
    }
}

/// Stops every service this stack directory started, by the pid recorded when it
/// was started, and nothing else: a pid whose command line no longer matches
/// what we started (the process died and the pid was reused) is left alone.
pub fn stop(dir: &StackDir) -> anyhow::Result<Vec<String>> {
    stop_matching(dir, |_| true)
}

/// Stops only the named services (those a test run started itself).
pub fn stop_services<S: AsRef<str>>(dir: &StackDir, names: &[S]) -> anyhow::Result<Vec<String>> {
    stop_matching(dir, |name| names.iter().any(|n| n.as_ref() == name))
}

fn stop_matching(dir: &StackDir, wanted: impl Fn(&str) -> bool) -> anyhow::Result<Vec<String>> {
    dir.create()?;
    let mut stopped = Vec::new();
    state::with_locked_state(dir, |state| {
        let names: Vec<String> = state
            .services
            .keys()
            .filter(|n| wanted(n))
            .cloned()
            .collect();
        for name in names {
            let Some(record) = state.services.remove(&name) else {
                continue;
            };
            let was_running = if name == "postgres" {
                postgres::stop(&record)?
            } else {
                process::stop_recorded(&record)?
            };
            match was_running {
                true => stopped.push(format!("{name} (pid {})", record.pid)),
                false => tracing::info!(service = %name, pid = record.pid, "already gone"),
            }
        }
        Ok(())
    })?;
    Ok(stopped)
}

/// The services the state file says are ours, and whether each still runs.
pub fn status(dir: &StackDir) -> anyhow::Result<Vec<(String, ServiceRecord, bool)>> {
    dir.create()?;
    state::with_locked_state(dir, |state| {
        Ok(state
            .services
            .iter()
            .map(|(name, record)| (name.clone(), record.clone(), process::is_ours(record)))
            .collect())
    })
}
