//! Shared by the sinks' tests that need only PostgreSQL (no broker): the server, and a
//! schema of the test's own on it.
#![allow(dead_code)]

use afregning_sinks::schema;

/// The server: `DATABASE_URL`, else the local PostgreSQL the stack uses.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A connection to the server for `purpose` (its application name).
pub async fn connect(purpose: &str) -> sqlx::PgConnection {
    schema::connect(&server_url(), purpose)
        .await
        .expect("PostgreSQL answers at DATABASE_URL or 127.0.0.1:5432")
}

/// A schema of this test's own on the real server, emptied: its URL.
pub async fn fresh_schema(name: &str) -> String {
    let mut admin = connect("sinks test").await;
    for statement in [
        format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
        format!("CREATE SCHEMA {name}"),
    ] {
        sqlx::query(&statement).execute(&mut admin).await.unwrap();
    }
    let url = server_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{name}")
}

/// [`fresh_schema`] migrated by the sink for today (plain PostgreSQL: this month's
/// partition exists): its URL and a connection to it.
pub async fn migrated_schema(name: &str) -> (String, sqlx::PgConnection) {
    let url = fresh_schema(name).await;
    let mut conn = schema::connect(&url, "sinks test").await.unwrap();
    schema::migrate(
        &mut conn,
        &schema::StorageSettings::default(),
        chrono::Utc::now().date_naive(),
    )
    .await
    .unwrap();
    (url, conn)
}

/// Drops a schema [`fresh_schema`] made.
pub async fn drop_schema(name: &str) {
    let mut admin = connect("sinks test").await;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
}
