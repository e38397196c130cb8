//! `afregning portfolio erase` (decision 0148) as an operator runs it, on the real PostgreSQL:
//! two customers with keys in the key store, one supplied until 28 February 2025, one still
//! supplied. `--dry-run` lists only the former and erases nothing; the run erases them (their
//! data no longer opens, the other's still does) and records it; a second run has nothing to
//! do. The read model rows are written directly here: the projection that writes them is
//! tested in `portfolio/tests/read_model.rs`, the selection rules in `portfolio/tests/erasure.rs`.

mod support;

use afregning_portfolio::CustomerKey;
use afregning_portfolio::customer_keys;
use afregning_portfolio::personal::{Cpr, CustomerIdentity, Keyring, PersonalData};
use afregning_sinks::schema::{self, StorageSettings};
use afregning_testkit::TestEnv;

#[tokio::test]
async fn erase_removes_only_former_customers_keys_and_a_dry_run_nothing() -> anyhow::Result<()> {
    let env = TestEnv::start("portfolio_erase").await?;
    let mut conn = schema::connect(&env.database_url, "test").await?;
    schema::migrate(
        &mut conn,
        &StorageSettings::default(),
        chrono::Utc::now().date_naive(),
    )
    .await?;
    drop(conn);
    let pool = env.pg_pool().await?;
    let mut keys = Keyring::default();
    keys.generate("deployment-1")?;
    let mut sealed = Vec::new();
    for (customer, cpr) in [("former", "0101701111"), ("current", "0202802222")] {
        let data = PersonalData {
            identity: CustomerIdentity::Cpr(Cpr::parse(cpr).expect("cpr")),
            name: None,
        };
        sealed.push(
            customer_keys::seal_for(&pool, &keys, &CustomerKey(customer.into()), &data).await?,
        );
    }
    sqlx::query(
        "INSERT INTO portfolio_supply_periods \
         (metering_point, ordinal, valid_from, valid_to, customer_key, started_by) VALUES \
         ('571313180400000011', 0, '2025-01-10', '2025-03-01', 'former', 'p-1'), \
         ('571313180400000028', 0, '2025-01-10', NULL, 'current', 'p-2')",
    )
    .execute(&pool)
    .await?;
    let erase = |extra: &[&str]| {
        let mut args = vec![
            "portfolio",
            "erase",
            "--retention-days",
            "365",
            "--actor",
            "retention-job",
            "--database-url",
            &env.database_url,
        ];
        args.extend(extra);
        support::afregning(&args, &[], "")
    };

    let (status, stdout, stderr) = erase(&["--dry-run"])?;
    assert_eq!(status, 0, "{stderr}");
    assert!(
        stdout.contains("due    former  last day 2025-02-28"),
        "{stdout}"
    );
    assert!(!stdout.contains("current"), "{stdout}");
    assert!(
        stdout.contains("1 former customer(s) due after 365 days; 0 erased"),
        "{stdout}"
    );
    customer_keys::open(&pool, &keys, &sealed[0]).await?;

    let (status, stdout, stderr) = erase(&[])?;
    assert_eq!(status, 0, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "erased former  last day 2025-02-28  keys {}",
            sealed[0].key_id()
        )),
        "{stdout}"
    );
    assert!(customer_keys::open(&pool, &keys, &sealed[0]).await.is_err());
    customer_keys::open(&pool, &keys, &sealed[1]).await?;
    let recorded: Vec<(String, Vec<String>, String)> =
        sqlx::query_as("SELECT customer_key, key_ids, actor FROM portfolio_erasures")
            .fetch_all(&pool)
            .await?;
    assert_eq!(
        recorded,
        [(
            "former".to_string(),
            vec![sealed[0].key_id().to_string()],
            "retention-job".to_string()
        )]
    );

    let (status, stdout, stderr) = erase(&[])?;
    assert_eq!(status, 0, "{stderr}");
    assert!(
        stdout.contains("0 former customer(s) due after 365 days; 0 erased"),
        "{stdout}"
    );
    pool.close().await;
    env.cleanup().await
}
