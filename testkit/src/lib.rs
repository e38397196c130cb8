//! The test harness: a real broker, a real PostgreSQL and a real schema
//! registry for every integration test, with names that never collide.
//!
//! Why this shape:
//! - **Real services.** A test that needs the broker or the database talks to
//!   a real one; mocks hide exactly the bugs (offsets, transactions, type
//!   mapping) that cost money in production.
//! - **One broker and one database server per machine, shared.** Starting a
//!   Tansu per test would cost seconds each; instead the stack library starts
//!   one (or reuses the one `cargo xtask test` started) and every test gets
//!   unique topic names and consumer groups under its own namespace.
//! - **One registry and one database schema per test.** The registry runs in
//!   the test's process on a free port, storing into the test's own
//!   PostgreSQL schema, so subjects and compatibility settings never leak
//!   between tests running in parallel.
//! - **Nothing left behind.** [`TestEnv`] drops its database schema even when
//!   the test panics (a synchronous `psql` in `Drop`), and deletes its topics
//!   on [`TestEnv::cleanup`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use afregning_schema_registry::{RegistryConfig, RunningRegistry};
use afregning_stack::{BrokerStorage, StackDir};
use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;

/// The workspace root, found from this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The stack directory tests share (`target/afregning-stack` of the workspace).
pub fn stack_dir() -> StackDir {
    StackDir::for_workspace(&workspace_root())
}

/// Installs a test-friendly log subscriber once (`RUST_LOG` overrides; output is
/// captured by the test runner and shown for failing tests).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,rdkafka=warn,sqlx=warn")
            }),
        )
        .with_test_writer()
        .try_init();
}

/// Every log line of the test process, kept in memory by [`capture_logs`], so a test can
/// search them (e.g. for personal data, which must never be logged).
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// What was logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The writer [`capture_logs`] hands the subscriber.
struct CaptureWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a subscriber that keeps every line at `debug` and above (librdkafka and sqlx at
/// `info`) in memory; call it first in a test, before anything logs. `None` when a
/// subscriber was installed already (then nothing would be captured).
pub fn capture_logs() -> Option<CapturedLogs> {
    let logs = CapturedLogs::default();
    let buffer = logs.0.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "debug,rdkafka=info,sqlx=info,hyper=info,reqwest=info,h2=info",
        ))
        .with_ansi(false)
        .with_writer(move || CaptureWriter(buffer.clone()))
        .try_init()
        .ok()?;
    Some(logs)
}

/// Everything an integration test needs, unique to that test.
#[derive(Debug)]
pub struct TestEnv {
    /// Kafka bootstrap servers of the shared broker.
    pub bootstrap_servers: String,
    /// PostgreSQL URL whose `search_path` is this test's own schema.
    pub database_url: String,
    /// The test's PostgreSQL schema name.
    pub db_schema: String,
    /// Base URL of this test's schema registry.
    pub registry_url: String,
    /// Prefix of every topic and consumer group this test creates, e.g. `t3f9a1c2e.`.
    pub namespace: String,
    server_url: String,
    registry: Option<RunningRegistry>,
    cleaned: bool,
}

impl TestEnv {
    /// Brings up (or reuses) the shared broker and database, and starts a
    /// registry for this test. `label` only makes names readable in logs.
    pub async fn start(label: &str) -> anyhow::Result<Self> {
        init_logging();
        let dir = stack_dir();
        let (bootstrap_servers, server_url) =
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let broker = afregning_stack::ensure_broker(&dir, BrokerStorage::Memory)?;
                let postgres = afregning_stack::ensure_postgres(&dir)?;
                Ok((broker, postgres.url().to_string()))
            })
            .await
            .context("joining the stack start")??;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let short = &id[..10];
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        let db_schema = format!("t_{label}_{short}");
        let pool = sqlx::PgPool::connect(&server_url)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {server_url}"))?;
        sqlx::query(&format!("CREATE SCHEMA \"{db_schema}\""))
            .execute(&pool)
            .await
            .context("creating the test's database schema")?;
        pool.close().await;
        let registry = afregning_schema_registry::spawn(
            RegistryConfig {
                database_url: server_url.clone(),
                db_schema: format!("{db_schema}_registry"),
            },
            "127.0.0.1:0".parse()?,
        )
        .await
        .context("starting the test's schema registry")?;
        Ok(Self {
            database_url: with_search_path(&server_url, &db_schema),
            bootstrap_servers,
            db_schema,
            registry_url: registry.url.clone(),
            namespace: format!("t{short}."),
            server_url,
            registry: Some(registry),
            cleaned: false,
        })
    }

    /// A topic name unique to this test.
    pub fn topic(&self, base: &str) -> String {
        format!("{}{base}", self.namespace)
    }

    /// A consumer group id unique to this test.
    pub fn group(&self, base: &str) -> String {
        format!("{}{base}", self.namespace)
    }

    /// Client settings for the shared broker.
    pub fn kafka_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        config
    }

    /// A connection pool on this test's schema.
    pub async fn pg_pool(&self) -> anyhow::Result<sqlx::PgPool> {
        Ok(sqlx::postgres::PgPoolOptions::new()
            .max_connections(5)
            .connect(&self.database_url)
            .await?)
    }

    /// Deletes this test's topics, stops its registry and drops its schemas.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        if let Some(registry) = self.registry.take() {
            registry.shutdown().await;
        }
        delete_topics_with_prefix(&self.bootstrap_servers, &self.namespace).await;
        let pool = sqlx::PgPool::connect(&self.server_url).await?;
        for schema in [
            self.db_schema.clone(),
            format!("{}_registry", self.db_schema),
        ] {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&pool)
                .await?;
        }
        pool.close().await;
        self.cleaned = true;
        Ok(())
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        // The test failed before cleanup: drop the schemas synchronously so the
        // database does not fill up with leftovers across runs.
        let sql = format!(
            "DROP SCHEMA IF EXISTS \"{0}\" CASCADE; DROP SCHEMA IF EXISTS \"{0}_registry\" CASCADE;",
            self.db_schema
        );
        let _ = std::process::Command::new("psql")
            .args([self.server_url.as_str(), "-XAtq", "-c", &sql])
            .output();
    }
}

/// `url` with `options=-c search_path=<schema>` so every connection of a pool
/// works in the test's schema without the code under test knowing about it.
fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

async fn delete_topics_with_prefix(bootstrap: &str, prefix: &str) {
    let admin: AdminClient<DefaultClientContext> = match ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
    {
        Ok(admin) => admin,
        Err(error) => {
            tracing::warn!(%error, "cannot create an admin client to delete test topics");
            return;
        }
    };
    let metadata = match admin.inner().fetch_metadata(None, Duration::from_secs(5)) {
        Ok(metadata) => metadata,
        Err(error) => {
            tracing::warn!(%error, "cannot list topics to delete");
            return;
        }
    };
    let names: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .filter(|name| name.starts_with(prefix))
        .collect();
    if names.is_empty() {
        return;
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    if let Err(error) = admin
        .delete_topics(
            &refs,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
    {
        tracing::warn!(%error, "cannot delete test topics");
    }
}

#[cfg(test)]
mod tests {
    use super::with_search_path;

    #[test]
    fn search_path_is_added_as_a_connection_option() {
        assert_eq!(
            with_search_path("postgres://p@h:1/db", "t_x"),
            "postgres://p@h:1/db?options=-c%20search_path%3Dt_x"
        );
        assert_eq!(
            with_search_path("postgres://p@h:1/db?sslmode=disable", "t_x"),
            "postgres://p@h:1/db?sslmode=disable&options=-c%20search_path%3Dt_x"
        );
    }
}
