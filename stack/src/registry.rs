//! The schema registry: `SCHEMA_REGISTRY_URL` if set, else the project's own
//! (`afregning schema-registry`) started as a process on a free port.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::state::{ServiceRecord, with_locked_state};
use crate::{READY_TIMEOUT, StackDir, ports, process};

/// Where the registry came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrySource {
    /// `SCHEMA_REGISTRY_URL` was set (Confluent SR, Karapace, Apicurio, Redpanda).
    External(String),
    /// The project's own registry, started (or reused) by the stack.
    Ours(String),
}

impl RegistrySource {
    /// The registry's base URL.
    pub fn url(&self) -> &str {
        match self {
            RegistrySource::External(url) | RegistrySource::Ours(url) => url,
        }
    }
}

fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    if stream
        .write_all(b"GET /config HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// Makes a schema registry reachable. `afregning` is the path of the operator
/// binary that serves `afregning schema-registry`; it stores its schemas in
/// `database_url`, so ids survive a restart of the registry.
pub fn ensure_registry(
    dir: &StackDir,
    afregning: &Path,
    database_url: &str,
) -> anyhow::Result<RegistrySource> {
    if let Ok(url) = std::env::var("SCHEMA_REGISTRY_URL")
        && !url.trim().is_empty()
    {
        return Ok(RegistrySource::External(url));
    }
    with_locked_state(dir, |state| {
        if let Some(record) = state.services.get("registry") {
            if process::is_ours(record) && answers_http(record.port) {
                return Ok(RegistrySource::Ours(format!(
                    "http://127.0.0.1:{}",
                    record.port
                )));
            }
            process::stop_recorded(record)?;
        }
        let port = ports::free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let mut command = Command::new(afregning);
        command
            .args([
                "schema-registry",
                "--listen",
                &listen,
                "--database-url",
                database_url,
            ])
            .env("RUST_LOG", "info");
        let log = dir.log_file("registry");
        tracing::info!(%port, log = %log.display(), "starting the schema registry");
        let pid = process::spawn_detached(command, &log)?;
        let record = ServiceRecord {
            pid,
            port,
            cmdline_marker: listen.clone(),
            details: BTreeMap::from([("database_url".to_string(), database_url.to_string())]),
        };
        state.services.insert("registry".to_string(), record);
        process::wait_ready("the schema registry", &log, READY_TIMEOUT, || {
            answers_http(port)
        })?;
        Ok(RegistrySource::Ours(format!("http://{listen}")))
    })
}
