//! PostgreSQL storage: schemas by id, subject versions, compatibility config.

use apache_avro::Schema;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use crate::compatibility::{self, CompatibilityLevel};
use crate::{RegistryConfig, RegistryError};

/// The key under which the global compatibility level is stored in `config`.
const GLOBAL: &str = "";

/// A registered schema as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// Version within the subject, from 1.
    pub version: i32,
    /// Global schema id.
    pub id: i32,
    /// The schema text as first registered.
    pub schema: String,
}

/// The registry's data in PostgreSQL. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    schema: String,
}

fn quote_ident(name: &str) -> Result<String, RegistryError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(RegistryError::Startup(format!(
            "database schema name {name:?} must be ASCII letters, digits and underscores"
        )));
    }
    Ok(format!("\"{name}\""))
}

impl Store {
    /// Connects and creates the tables if missing (idempotent, safe to race:
    /// concurrent starters serialise on an advisory lock).
    pub async fn connect(config: &RegistryConfig) -> Result<Self, RegistryError> {
        let schema = quote_ident(&config.db_schema)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(&config.database_url)
            .await?;
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('afregning-schema-registry-setup'))")
            .execute(&mut *tx)
            .await?;
        for ddl in [
            format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
            format!(
                "CREATE TABLE IF NOT EXISTS {schema}.schemas (
                    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    normalized text NOT NULL UNIQUE,
                    schema_text text NOT NULL,
                    schema_type text NOT NULL DEFAULT 'AVRO',
                    created_at timestamptz NOT NULL DEFAULT now())"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {schema}.subject_versions (
                    subject text NOT NULL,
                    version integer NOT NULL,
                    schema_id integer NOT NULL REFERENCES {schema}.schemas (id),
                    deleted boolean NOT NULL DEFAULT false,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (subject, version))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {schema}.config (
                    subject text PRIMARY KEY,
                    compatibility text NOT NULL)"
            ),
        ] {
            sqlx::query(&ddl).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Self { pool, schema })
    }

    async fn lock_subject(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        subject: &str,
    ) -> Result<(), RegistryError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("{}:{subject}", self.schema))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Live (not deleted) versions of a subject, oldest first.
    async fn live_versions(
        &self,
        executor: impl sqlx::PgExecutor<'_>,
        subject: &str,
    ) -> Result<Vec<SubjectVersion>, RegistryError> {
        let s = &self.schema;
        let rows = sqlx::query(&format!(
            "SELECT v.version, v.schema_id, s.schema_text, s.normalized
               FROM {s}.subject_versions v JOIN {s}.schemas s ON s.id = v.schema_id
              WHERE v.subject = $1 AND NOT v.deleted ORDER BY v.version"
        ))
        .bind(subject)
        .fetch_all(executor)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| SubjectVersion {
                subject: subject.to_string(),
                version: row.get(0),
                id: row.get(1),
                schema: row.get(2),
            })
            .collect())
    }

    /// The compatibility level in force for `subject` (its own, else global, else BACKWARD).
    pub async fn effective_level(
        &self,
        subject: &str,
    ) -> Result<CompatibilityLevel, RegistryError> {
        match self.subject_level(subject).await? {
            Some(level) => Ok(level),
            None => self.global_level().await,
        }
    }

    /// The global compatibility level (BACKWARD unless set).
    pub async fn global_level(&self) -> Result<CompatibilityLevel, RegistryError> {
        Ok(self.subject_level(GLOBAL).await?.unwrap_or_default())
    }

    /// The subject's own compatibility level, if one was set.
    pub async fn subject_level(
        &self,
        subject: &str,
    ) -> Result<Option<CompatibilityLevel>, RegistryError> {
        let s = &self.schema;
        let row: Option<(String,)> = sqlx::query_as(&format!(
            "SELECT compatibility FROM {s}.config WHERE subject = $1"
        ))
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(text,)| CompatibilityLevel::parse(&text))
            .transpose()
    }

    /// Sets the level for a subject, or the global level when `subject` is `None`.
    pub async fn set_level(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<(), RegistryError> {
        let s = &self.schema;
        sqlx::query(&format!(
            "INSERT INTO {s}.config (subject, compatibility) VALUES ($1, $2)
             ON CONFLICT (subject) DO UPDATE SET compatibility = EXCLUDED.compatibility"
        ))
        .bind(subject.unwrap_or(GLOBAL))
        .bind(level.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a subject's own level; returns what it was.
    pub async fn delete_subject_level(
        &self,
        subject: &str,
    ) -> Result<Option<CompatibilityLevel>, RegistryError> {
        let s = &self.schema;
        let row: Option<(String,)> = sqlx::query_as(&format!(
            "DELETE FROM {s}.config WHERE subject = $1 RETURNING compatibility"
        ))
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(text,)| CompatibilityLevel::parse(&text))
            .transpose()
    }

    /// Registers `schema_text` under `subject`: the existing id if the subject
    /// already has this schema, else a new version after the compatibility check.
    pub async fn register(&self, subject: &str, schema_text: &str) -> Result<i32, RegistryError> {
        let candidate = compatibility::parse_avro(schema_text)?;
        let normalized = compatibility::normalize(schema_text)?;
        let level = self.effective_level(subject).await?;
        let s = &self.schema;
        let mut tx = self.pool.begin().await?;
        self.lock_subject(&mut tx, subject).await?;
        let existing = self.live_versions(&mut *tx, subject).await?;
        for version in &existing {
            if compatibility::normalize(&version.schema)? == normalized {
                tx.commit().await?;
                return Ok(version.id);
            }
        }
        let history = existing
            .iter()
            .map(|v| compatibility::parse_avro(&v.schema))
            .collect::<Result<Vec<Schema>, _>>()?;
        let reasons = compatibility::check(level, &candidate, &history);
        if !reasons.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject.to_string(),
                details: format!("{} ({})", reasons.join("; "), level.as_str()),
            });
        }
        let (id,): (i32,) = sqlx::query_as(&format!(
            "INSERT INTO {s}.schemas (normalized, schema_text) VALUES ($1, $2)
             ON CONFLICT (normalized) DO UPDATE SET normalized = EXCLUDED.normalized
             RETURNING id"
        ))
        .bind(&normalized)
        .bind(schema_text)
        .fetch_one(&mut *tx)
        .await?;
        // Versions keep counting after soft deletes, as in Confluent's registry.
        let (next,): (i32,) = sqlx::query_as(&format!(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM {s}.subject_versions WHERE subject = $1"
        ))
        .bind(subject)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO {s}.subject_versions (subject, version, schema_id) VALUES ($1, $2, $3)"
        ))
        .bind(subject)
        .bind(next)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(%subject, version = next, id, "schema registered");
        Ok(id)
    }

    /// A schema's text by global id (also for ids whose subjects were deleted:
    /// old records must stay decodable).
    pub async fn schema_by_id(&self, id: i32) -> Result<String, RegistryError> {
        let s = &self.schema;
        let row: Option<(String,)> = sqlx::query_as(&format!(
            "SELECT schema_text FROM {s}.schemas WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(text,)| text)
            .ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))
    }

    /// Every subject with at least one live version.
    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        let s = &self.schema;
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT DISTINCT subject FROM {s}.subject_versions WHERE NOT deleted ORDER BY subject"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(subject,)| subject).collect())
    }

    /// A subject's live versions; 40401 when it has none.
    pub async fn versions(&self, subject: &str) -> Result<Vec<SubjectVersion>, RegistryError> {
        let versions = self.live_versions(&self.pool, subject).await?;
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        Ok(versions)
    }

    /// One version (`latest` or a number) of a subject.
    pub async fn version(
        &self,
        subject: &str,
        version: &str,
    ) -> Result<SubjectVersion, RegistryError> {
        let versions = self.versions(subject).await?;
        if version == "latest" || version == "-1" {
            return versions
                .last()
                .cloned()
                .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()));
        }
        let wanted: i32 = version
            .parse()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| RegistryError::InvalidVersion(version.to_string()))?;
        versions
            .into_iter()
            .find(|v| v.version == wanted)
            .ok_or_else(|| RegistryError::VersionNotFound(version.to_string()))
    }

    /// Finds the version of `subject` whose schema equals `schema_text`.
    pub async fn lookup(
        &self,
        subject: &str,
        schema_text: &str,
    ) -> Result<SubjectVersion, RegistryError> {
        compatibility::parse_avro(schema_text)?;
        let normalized = compatibility::normalize(schema_text)?;
        let versions = self.versions(subject).await?;
        for version in versions {
            if compatibility::normalize(&version.schema)? == normalized {
                return Ok(version);
            }
        }
        Err(RegistryError::SchemaNotFound(format!(
            "for subject {subject}"
        )))
    }

    /// Compatibility of `schema_text` with the subject: against one version
    /// when given, else as the subject's level prescribes.
    pub async fn check(
        &self,
        subject: &str,
        version: Option<&str>,
        schema_text: &str,
    ) -> Result<Vec<String>, RegistryError> {
        let candidate = compatibility::parse_avro(schema_text)?;
        let level = self.effective_level(subject).await?;
        let against = match version {
            Some(version) => vec![self.version(subject, version).await?],
            None => self.live_versions(&self.pool, subject).await?,
        };
        let history = against
            .iter()
            .map(|v| compatibility::parse_avro(&v.schema))
            .collect::<Result<Vec<Schema>, _>>()?;
        // Against one explicit version, the transitive levels mean their plain form.
        let level = match (version, level) {
            (Some(_), CompatibilityLevel::BackwardTransitive) => CompatibilityLevel::Backward,
            (Some(_), CompatibilityLevel::ForwardTransitive) => CompatibilityLevel::Forward,
            (Some(_), CompatibilityLevel::FullTransitive) => CompatibilityLevel::Full,
            (_, level) => level,
        };
        Ok(compatibility::check(level, &candidate, &history))
    }

    /// Deletes a subject: soft (hidden, versions keep counting) or permanent
    /// (rows removed). Schema ids stay resolvable and are never reused either way.
    pub async fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<i32>, RegistryError> {
        let s = &self.schema;
        let mut tx = self.pool.begin().await?;
        self.lock_subject(&mut tx, subject).await?;
        let rows: Vec<(i32,)> = if permanent {
            sqlx::query_as(&format!(
                "DELETE FROM {s}.subject_versions WHERE subject = $1 RETURNING version"
            ))
            .bind(subject)
            .fetch_all(&mut *tx)
            .await?
        } else {
            sqlx::query_as(&format!(
                "UPDATE {s}.subject_versions SET deleted = true WHERE subject = $1 AND NOT deleted RETURNING version"
            ))
            .bind(subject)
            .fetch_all(&mut *tx)
            .await?
        };
        tx.commit().await?;
        if rows.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        let mut versions: Vec<i32> = rows.into_iter().map(|(v,)| v).collect();
        versions.sort_unstable();
        Ok(versions)
    }
}
