//! The Kafka-compatible broker: Tansu, started on a free loopback port.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::state::{ServiceRecord, with_locked_state};
use crate::{READY_TIMEOUT, StackDir, kafka_probe, ports, process, setup};

/// Where the broker keeps its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerStorage {
    /// `memory://`: fastest (about 175,000 produced messages/s here), lost on restart.
    Memory,
    /// `sqlite://FILE`: about 8x slower, but survives a broker restart, which the
    /// fault tests need.
    Sqlite(PathBuf),
}

impl BrokerStorage {
    /// The `--storage-engine` URL. Tansu 0.6.0 resolves a `sqlite://` path
    /// relative to its working directory (even `sqlite:///abs` becomes
    /// `<cwd>/abs`), so the broker runs in the file's directory and is given
    /// the bare file name.
    fn url(&self) -> String {
        match self {
            BrokerStorage::Memory => "memory://tansu/".to_string(),
            BrokerStorage::Sqlite(path) => format!(
                "sqlite://{}",
                path.file_name()
                    .map(|f| f.to_string_lossy())
                    .unwrap_or_default()
            ),
        }
    }

    fn working_dir(&self) -> Option<&std::path::Path> {
        match self {
            BrokerStorage::Memory => None,
            BrokerStorage::Sqlite(path) => path.parent().filter(|p| !p.as_os_str().is_empty()),
        }
    }
}

/// A broker process we started; the handle lets fault tests kill and restart it.
#[derive(Debug, Clone)]
pub struct BrokerProcess {
    /// Bootstrap address, `127.0.0.1:port`.
    pub bootstrap_servers: String,
    /// Its entry in the state file.
    pub record: ServiceRecord,
    name: String,
    storage: BrokerStorage,
    dir: StackDir,
}

impl BrokerProcess {
    /// Kills the broker abruptly (SIGKILL), as a crash would.
    pub fn kill(&self) -> anyhow::Result<()> {
        if process::is_ours(&self.record) {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(self.record.pid)?);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)?;
            process::wait_ready(
                "broker shutdown",
                &self.dir.log_file(&self.name),
                READY_TIMEOUT,
                || !process::is_running(self.record.pid),
            )?;
        }
        Ok(())
    }

    /// Starts the broker again on the same port and storage (after [`Self::kill`]).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill()?;
        let fresh = start_broker(&self.dir, &self.name, &self.storage, Some(self.record.port))?;
        self.record = fresh.record;
        Ok(())
    }

    /// Stops the broker and forgets it.
    pub fn stop(&self) -> anyhow::Result<()> {
        process::stop_recorded(&self.record)?;
        with_locked_state(&self.dir, |state| {
            state.services.remove(&self.name);
            Ok(())
        })
    }
}

/// The shared broker of this stack directory: `KAFKA_BOOTSTRAP_SERVERS` if set
/// (an external cluster), else the recorded Tansu if it still answers, else a
/// new Tansu on a free port. Returns the bootstrap servers.
pub fn ensure_broker(dir: &StackDir, storage: BrokerStorage) -> anyhow::Result<String> {
    if let Ok(external) = std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        && !external.trim().is_empty()
    {
        return Ok(external);
    }
    ensure_local_broker(dir, storage)
}

/// The stack directory's own Tansu (reused if it answers, else started),
/// regardless of `KAFKA_BOOTSTRAP_SERVERS`.
pub fn ensure_local_broker(dir: &StackDir, storage: BrokerStorage) -> anyhow::Result<String> {
    let existing = with_locked_state(dir, |state| Ok(state.services.get("broker").cloned()))?;
    if let Some(record) = existing
        && process::is_ours(&record)
        && kafka_probe::broker_answers(record.port)
    {
        return Ok(format!("127.0.0.1:{}", record.port));
    }
    Ok(start_broker(dir, "broker", &storage, None)?.bootstrap_servers)
}

/// Starts a private broker for one test (fault tests kill and restart it).
/// It is recorded in the state file under `name`, so `stop` cleans it up even
/// when the test was killed before it could.
pub fn start_private_broker(
    dir: &StackDir,
    name: &str,
    storage: BrokerStorage,
) -> anyhow::Result<BrokerProcess> {
    start_broker(dir, name, &storage, None)
}

fn start_broker(
    dir: &StackDir,
    name: &str,
    storage: &BrokerStorage,
    port: Option<u16>,
) -> anyhow::Result<BrokerProcess> {
    let binary = setup::ensure_tansu_installed()?;
    dir.create()?;
    with_locked_state(dir, |state| {
        // Another process may have started it while we waited for the lock.
        if let Some(record) = state.services.get(name) {
            if port.is_none()
                && process::is_ours(record)
                && kafka_probe::broker_answers(record.port)
            {
                return Ok(BrokerProcess {
                    bootstrap_servers: format!("127.0.0.1:{}", record.port),
                    record: record.clone(),
                    name: name.to_string(),
                    storage: storage.clone(),
                    dir: dir.clone(),
                });
            }
            process::stop_recorded(record)?;
        }
        let port = match port {
            Some(port) => port,
            None => ports::free_port()?,
        };
        let listener = format!("tcp://127.0.0.1:{port}");
        let mut command = Command::new(&binary);
        command.args([
            "broker",
            "--listener-url",
            &listener,
            "--advertised-listener-url",
            &listener,
            "--storage-engine",
            &storage.url(),
        ]);
        if let Some(cwd) = storage.working_dir() {
            std::fs::create_dir_all(cwd)?;
            command.current_dir(cwd);
        }
        let log = dir.log_file(name);
        tracing::info!(%name, %port, storage = %storage.url(), log = %log.display(), "starting the Tansu broker");
        let pid = process::spawn_detached(command, &log)?;
        let record = ServiceRecord {
            pid,
            port,
            cmdline_marker: listener.clone(),
            details: BTreeMap::from([("storage".to_string(), storage.url())]),
        };
        state.services.insert(name.to_string(), record.clone());
        process::wait_ready("the Tansu broker", &log, crate::READY_TIMEOUT, || {
            kafka_probe::broker_answers(port)
        })?;
        Ok(BrokerProcess {
            bootstrap_servers: format!("127.0.0.1:{port}"),
            record,
            name: name.to_string(),
            storage: storage.clone(),
            dir: dir.clone(),
        })
    })
}
