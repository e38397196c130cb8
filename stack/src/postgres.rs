//! PostgreSQL: an existing server if one answers, else a private cluster under
//! the stack directory, started from the Debian binaries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::state::{ServiceRecord, with_locked_state};
use crate::{READY_TIMEOUT, StackDir, ports, process, setup};

/// The database the project uses on a server it did not start itself.
pub const DATABASE_NAME: &str = "afregning";

/// Where the database came from, so a summary can say so and `stop` knows
/// whether it is ours to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresSource {
    /// `DATABASE_URL` was set: used as given.
    External(String),
    /// A server already answered on 127.0.0.1:5432.
    Local(String),
    /// A private cluster under the stack directory, started by us.
    Private(String),
}

impl PostgresSource {
    /// The connection URL.
    pub fn url(&self) -> &str {
        match self {
            PostgresSource::External(url)
            | PostgresSource::Local(url)
            | PostgresSource::Private(url) => url,
        }
    }
}

fn psql_ok(url: &str, sql: &str) -> bool {
    Command::new("psql")
        .args([url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false)
}

fn psql_value(url: &str, sql: &str) -> Option<String> {
    let out = Command::new("psql")
        .args([url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Creates [`DATABASE_NAME`] on the server at `admin_url` if it is missing and
/// returns the URL of that database.
fn ensure_database(host_port: &str) -> anyhow::Result<String> {
    let admin_url = format!("postgres://postgres@{host_port}/postgres");
    let exists = psql_value(
        &admin_url,
        &format!("SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"),
    );
    if exists.as_deref() != Some("1")
        && !psql_ok(&admin_url, &format!("CREATE DATABASE {DATABASE_NAME}"))
    {
        // A concurrent creator may have won the race; check once more.
        let again = psql_value(
            &admin_url,
            &format!("SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"),
        );
        if again.as_deref() != Some("1") {
            anyhow::bail!("cannot create database {DATABASE_NAME} on {host_port}");
        }
    }
    Ok(format!("postgres://postgres@{host_port}/{DATABASE_NAME}"))
}

/// Makes PostgreSQL reachable: `DATABASE_URL` if set, else 127.0.0.1:5432 if it
/// answers (trust auth as user `postgres`), else a private cluster (installing
/// the `postgresql` package with apt if its binaries are missing).
pub fn ensure_postgres(dir: &StackDir) -> anyhow::Result<PostgresSource> {
    if psql_missing() {
        setup::ensure_system_packages()?;
    }
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.trim().is_empty()
    {
        if !psql_ok(&url, "SELECT 1") {
            anyhow::bail!(
                "DATABASE_URL is set but PostgreSQL does not answer there ({})",
                redact(&url)
            );
        }
        return Ok(PostgresSource::External(url));
    }
    if ports::answers(5432) && psql_ok("postgres://postgres@127.0.0.1:5432/postgres", "SELECT 1") {
        return Ok(PostgresSource::Local(ensure_database("127.0.0.1:5432")?));
    }
    ensure_private(dir).map(PostgresSource::Private)
}

fn psql_missing() -> bool {
    Command::new("psql").arg("--version").output().is_err()
}

fn redact(url: &str) -> String {
    // postgres://user:secret@host/db -> postgres://user:***@host/db
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").exists())
        .collect();
    // Highest major version first ("9" < "15" numerically, not lexically).
    candidates.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    candidates.pop()
}

/// `initdb` and `postgres` refuse to run as root: run them as the `postgres` user.
fn as_cluster_owner(program: &Path) -> Command {
    if nix::unistd::Uid::effective().is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Where the private cluster lives: `<stack dir>/pg`, unless we run as root and
/// the `postgres` user (who owns the cluster) cannot enter the stack directory,
/// as when the checkout or target directory sits under a home with mode 0700.
/// Then a folder of `/tmp` (world-enterable on Linux) named after the stack directory, so
/// each checkout still gets its own cluster and a rerun finds it again.
fn cluster_root(dir: &StackDir, root: bool) -> PathBuf {
    let inside = dir.path().join("pg");
    if !root {
        return inside;
    }
    let reachable = Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir.path())
        .status()
        .is_ok_and(|status| status.success());
    if reachable {
        return inside;
    }
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    dir.path().hash(&mut hasher);
    let outside = PathBuf::from("/tmp").join(format!("afregning-pg-{:016x}", hasher.finish()));
    tracing::info!(
        stack_dir = %dir.path().display(),
        cluster = %outside.display(),
        "the postgres user cannot enter the stack directory; keeping the cluster in /tmp"
    );
    outside
}

/// Starts (or reuses) the private cluster under the stack directory, even when
/// another server answers on 5432: the path a machine without PostgreSQL takes.
pub fn ensure_private_postgres(dir: &StackDir) -> anyhow::Result<String> {
    ensure_private(dir)
}

fn ensure_private(dir: &StackDir) -> anyhow::Result<String> {
    let bin = match bin_dir() {
        Some(bin) => bin,
        None => {
            setup::ensure_system_packages()?;
            bin_dir().ok_or_else(|| {
                anyhow::anyhow!(
                    "PostgreSQL binaries not found under /usr/lib/postgresql after installing"
                )
            })?
        }
    };
    with_locked_state(dir, |state| {
        if let Some(record) = state.services.get("postgres") {
            let url = format!(
                "postgres://postgres@127.0.0.1:{}/{DATABASE_NAME}",
                record.port
            );
            if process::is_ours(record) && psql_ok(&url, "SELECT 1") {
                return Ok(url);
            }
        }
        let root = nix::unistd::Uid::effective().is_root();
        let pg_root = cluster_root(dir, root);
        let data = pg_root.join("data");
        let log = if pg_root.starts_with(dir.path()) {
            dir.log_file("postgres")
        } else {
            pg_root.join("postgres.log")
        };
        if !data.join("PG_VERSION").exists() {
            std::fs::create_dir_all(&data)?;
            if root {
                run(Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&pg_root))?;
            }
            tracing::info!(data = %data.display(), "initialising a private PostgreSQL cluster");
            run(as_cluster_owner(&bin.join("initdb"))
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
                .arg(&data))?;
        }
        let port = ports::free_port()?;
        // Settings go in postgresql.auto.conf so a restart on another port rewrites them.
        let settings = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 300\n"
        );
        std::fs::write(data.join("postgresql.auto.conf"), settings)?;
        if root {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(data.join("postgresql.auto.conf")))?;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)?;
            run(Command::new("chown").arg("postgres:postgres").arg(&log))?;
        }
        tracing::info!(%port, log = %log.display(), "starting the private PostgreSQL cluster");
        run(as_cluster_owner(&bin.join("pg_ctl"))
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(&log))?;
        let pid: u32 = std::fs::read_to_string(data.join("postmaster.pid"))?
            .lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("cannot read the postmaster pid"))?;
        let record = ServiceRecord {
            pid,
            port,
            cmdline_marker: data.display().to_string(),
            details: BTreeMap::from([
                ("data_dir".to_string(), data.display().to_string()),
                ("bin_dir".to_string(), bin.display().to_string()),
            ]),
        };
        state.services.insert("postgres".to_string(), record);
        process::wait_ready("PostgreSQL", &log, READY_TIMEOUT, || {
            psql_ok(
                &format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                "SELECT 1",
            )
        })?;
        ensure_database(&format!("127.0.0.1:{port}"))
    })
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let out = command
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {command:?}: {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Stops a private cluster with `pg_ctl stop -m fast` (SIGTERM would wait for
/// every client to disconnect). Returns false when it was not running.
pub(crate) fn stop(record: &ServiceRecord) -> anyhow::Result<bool> {
    if !process::is_ours(record) {
        return Ok(false);
    }
    if let (Some(bin), Some(data)) = (
        record.details.get("bin_dir"),
        record.details.get("data_dir"),
    ) {
        let stopped = as_cluster_owner(&Path::new(bin).join("pg_ctl"))
            .args(["stop", "-m", "fast", "-w", "-D", data])
            .output()
            .map(|out| out.status.success())
            .unwrap_or(false);
        if stopped {
            return Ok(true);
        }
    }
    process::stop_recorded(record)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
