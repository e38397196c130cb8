//! The key store: each customer's own AES-256 key, kept in PostgreSQL (`portfolio_data_keys`,
//! migration `0070`) wrapped by the deployment keyring, so a former customer is erased by
//! deleting one row (crypto-shredding; decisions 0113 and 0148).
//!
//! Events on a topic are immutable and kept forever; what makes a customer's CPR/CVR and name
//! in them unreadable is that the key they were sealed under no longer exists anywhere. Our
//! requests (CLI and API) seal with [`seal_for`]; whoever must read them (the connector before
//! sending, the API for a role that may) opens with [`opener`]. [`due_for_erasure`] and
//! [`erase`] are the retention job (`afregning portfolio erase`). The I/O edge of
//! [`crate::personal`].

use chrono::NaiveDate;
use rand::RngCore;
use sqlx::PgPool;

use crate::ids::CustomerKey;
use crate::personal::{Keyring, PersonalData, SealError, Sealed};

/// Environment variable with the key store's PostgreSQL URL for services that have no
/// `DATABASE_URL` of their own (the connector, which opens our requests' customer data).
pub const KEY_STORE_URL_ENV: &str = "AFREGNING_PORTFOLIO_KEY_STORE_URL";

/// The key store's URL from [`KEY_STORE_URL_ENV`], if set and not empty (compose passes unset
/// variables as empty strings).
pub fn key_store_url_from_env() -> Option<String> {
    std::env::var(KEY_STORE_URL_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Why the key store could not seal or open.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The database.
    #[error("key store: {0}")]
    Database(#[from] sqlx::Error),
    /// The keyring (no active key, a wrapping key that is gone, a tampered row).
    #[error("key store: {0}")]
    Seal(#[from] SealError),
}

/// Seals `data` under `customer`'s own key, creating the key (wrapped by `deployment`'s active
/// key) on first use. Two concurrent first uses agree on one key (unique per customer).
pub async fn seal_for(
    pool: &PgPool,
    deployment: &Keyring,
    customer: &CustomerKey,
    data: &PersonalData,
) -> Result<Sealed, KeyStoreError> {
    let (key_id, key) = key_of(pool, deployment, customer).await?;
    Ok(Keyring::single(&key_id, key)?.seal_with(&key_id, data)?)
}

/// A fresh key for one inbound message whose personal data the connector seals before anyone
/// knows whose it is (origin `message`); stored wrapped before it is used, and adopted by the
/// customer when the read model projects the data ([`crate::read_model`]). Returns a keyring
/// whose active key it is.
pub async fn message_key(pool: &PgPool, deployment: &Keyring) -> Result<Keyring, KeyStoreError> {
    let key_id = new_key_id('m');
    let key = Keyring::random_key();
    sqlx::query(
        "INSERT INTO portfolio_data_keys (key_id, customer_key, wrapped, origin) \
         VALUES ($1, NULL, $2, 'message')",
    )
    .bind(&key_id)
    .bind(deployment.wrap(&key_id, &key)?)
    .execute(pool)
    .await?;
    Ok(Keyring::single(&key_id, key)?)
}

/// The customer's key, created if absent.
async fn key_of(
    pool: &PgPool,
    deployment: &Keyring,
    customer: &CustomerKey,
) -> Result<(String, [u8; 32]), KeyStoreError> {
    let select = "SELECT key_id, wrapped FROM portfolio_data_keys \
                  WHERE customer_key = $1 AND origin = 'customer'";
    let found: Option<(String, String)> = sqlx::query_as(select)
        .bind(&customer.0)
        .fetch_optional(pool)
        .await?;
    let (key_id, wrapped) = match found {
        Some(row) => row,
        None => {
            let key_id = new_key_id('c');
            let wrapped = deployment.wrap(&key_id, &Keyring::random_key())?;
            sqlx::query(
                "INSERT INTO portfolio_data_keys (key_id, customer_key, wrapped) VALUES ($1, $2, $3) \
                 ON CONFLICT (customer_key) WHERE origin = 'customer' DO NOTHING",
            )
            .bind(&key_id)
            .bind(&customer.0)
            .bind(&wrapped)
            .execute(pool)
            .await?;
            sqlx::query_as(select)
                .bind(&customer.0)
                .fetch_one(pool)
                .await?
        }
    };
    let key = deployment.unwrap_key(&key_id, &wrapped)?;
    Ok((key_id, key))
}

/// `kind` (`c` a customer's own, `m` a message's) and 32 random hex digits: a key id says
/// nothing about the customer.
fn new_key_id(kind: char) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{kind}{hex}")
}

/// A keyring that opens what `deployment` opens plus the customers' keys among `key_ids`
/// (those not in the store were erased and stay unopenable: [`SealError::UnknownKey`]).
pub async fn opener<'a>(
    pool: &PgPool,
    deployment: &Keyring,
    key_ids: impl IntoIterator<Item = &'a str>,
) -> Result<Keyring, KeyStoreError> {
    let wanted: Vec<String> = key_ids
        .into_iter()
        .filter(|id| !deployment.has(id))
        .map(str::to_owned)
        .collect();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT key_id, wrapped FROM portfolio_data_keys WHERE key_id = ANY($1)")
            .bind(&wanted)
            .fetch_all(pool)
            .await?;
    let mut ring = deployment.clone();
    for (key_id, wrapped) in rows {
        let key = deployment.unwrap_key(&key_id, &wrapped)?;
        ring.add_inactive(&key_id, key)?;
    }
    Ok(ring)
}

/// Opens one sealed value, looking its key up in the store if it is a customer's.
pub async fn open(
    pool: &PgPool,
    deployment: &Keyring,
    sealed: &Sealed,
) -> Result<PersonalData, KeyStoreError> {
    Ok(opener(pool, deployment, [sealed.key_id()])
        .await?
        .open(sealed)?)
}

/// A former customer whose retention has run out.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ErasureCandidate {
    /// Our customer number.
    pub customer_key: String,
    /// The last day we supplied them or heard of them (their last period's last day, or the
    /// day of their last event when they were never supplied).
    pub last_day: NaiveDate,
}

/// Customers with a key whose relation ended more than `retention_days` before `today`: no
/// open supply period, no process still to take effect (sent or accepted), and their last
/// supplied day (or last event) at least `retention_days` ago. Reads the read model.
pub async fn due_for_erasure(
    pool: &PgPool,
    today: NaiveDate,
    retention_days: u32,
) -> Result<Vec<ErasureCandidate>, KeyStoreError> {
    let rows = sqlx::query_as(
        "WITH periods AS ( \
             SELECT customer_key, bool_or(valid_to IS NULL AND retired_by IS NULL) AS open, \
                    max(valid_to) - 1 AS last_supplied \
             FROM portfolio_supply_periods WHERE customer_key IS NOT NULL GROUP BY customer_key), \
         heard AS ( \
             SELECT s.customer_key, max((h.recorded_at AT TIME ZONE 'Europe/Copenhagen')::date) AS last_heard \
             FROM portfolio_customer_seals s JOIN portfolio_process_history h USING (metering_point, sequence) \
             GROUP BY s.customer_key), \
         pending AS ( \
             SELECT DISTINCT customer_key FROM portfolio_processes \
             WHERE customer_key IS NOT NULL AND status IN ('sent', 'accepted')) \
         SELECT k.customer_key, greatest(p.last_supplied, h.last_heard) AS last_day \
         FROM (SELECT DISTINCT customer_key FROM portfolio_data_keys \
               WHERE customer_key IS NOT NULL) k \
         LEFT JOIN periods p USING (customer_key) \
         LEFT JOIN heard h USING (customer_key) \
         WHERE NOT coalesce(p.open, false) \
           AND k.customer_key NOT IN (SELECT customer_key FROM pending) \
           AND greatest(p.last_supplied, h.last_heard) IS NOT NULL \
           AND greatest(p.last_supplied, h.last_heard) + $2::int < $1 \
         ORDER BY last_day, k.customer_key",
    )
    .bind(today)
    .bind(i32::try_from(retention_days).unwrap_or(i32::MAX))
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

/// Deletes the keys of inbound messages no customer adopted (the data was dead-lettered, or
/// concerned no process of ours) created more than `retention_days` before `today`, and
/// records it; returns the deleted key ids.
pub async fn erase_unadopted(
    pool: &PgPool,
    today: NaiveDate,
    retention_days: u32,
    actor: &str,
) -> Result<Vec<String>, KeyStoreError> {
    let mut tx = pool.begin().await?;
    let key_ids: Vec<String> = sqlx::query_scalar(
        "DELETE FROM portfolio_data_keys WHERE customer_key IS NULL AND origin = 'message' \
         AND (created_at AT TIME ZONE 'Europe/Copenhagen')::date + $2::int < $1 RETURNING key_id",
    )
    .bind(today)
    .bind(i32::try_from(retention_days).unwrap_or(i32::MAX))
    .fetch_all(&mut *tx)
    .await?;
    if !key_ids.is_empty() {
        sqlx::query(
            "INSERT INTO portfolio_erasures (customer_key, key_ids, retention_days, actor) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(UNADOPTED)
        .bind(&key_ids)
        .bind(i32::try_from(retention_days).unwrap_or(i32::MAX))
        .bind(actor)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(key_ids)
}

/// The customer name under which [`erase_unadopted`] records its erasures.
pub const UNADOPTED: &str = "(inbound messages no customer adopted)";

/// Deletes `customer`'s keys (their own and the inbound messages' keys they adopted) and
/// records the erasure (who, which keys, why) in one transaction; returns the deleted key ids
/// (empty: nothing left to erase). Everything sealed under them, on every topic and in every
/// table, can no longer be opened.
pub async fn erase(
    pool: &PgPool,
    customer: &ErasureCandidate,
    retention_days: Option<u32>,
    actor: &str,
) -> Result<Vec<String>, KeyStoreError> {
    let mut tx = pool.begin().await?;
    let key_ids: Vec<String> = sqlx::query_scalar(
        "DELETE FROM portfolio_data_keys WHERE customer_key = $1 RETURNING key_id",
    )
    .bind(&customer.customer_key)
    .fetch_all(&mut *tx)
    .await?;
    if !key_ids.is_empty() {
        sqlx::query(
            "INSERT INTO portfolio_erasures (customer_key, key_ids, last_supplied, retention_days, actor) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&customer.customer_key)
        .bind(&key_ids)
        .bind(customer.last_day)
        .bind(retention_days.map(|d| i32::try_from(d).unwrap_or(i32::MAX)))
        .bind(actor)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(key_ids)
}
