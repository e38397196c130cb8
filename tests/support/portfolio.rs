//! What the portfolio's end-to-end tests share: our request with a sealed customer, the
//! events on the events topic, a process's changes and waiting for one, and the running rig of
//! the real connector (outbound on, the portfolio keyring from a key file), validate and the
//! portfolio processor.

use std::path::Path;
use std::time::{Duration, Instant};

use afregning_connect::Connector;
use afregning_portfolio::personal::{Cpr, CustomerIdentity, Keyring, PersonName, PersonalData};
use afregning_portfolio::{
    Command, CommandMeta, CommandRecord, CustomerKey, CustomerRef, Event, Gln, ProcessDetails,
    ProcessId, ProcessKind,
};
use afregning_processors::pipeline::{self, Watch, Which};
use afregning_processors::portfolio::{Portfolio, PortfolioConfig};
use afregning_processors::shared::Topics;
use afregning_simulator::RunningSimulator;
use afregning_testkit::TestEnv;
use afregning_topology::{Catalogue, Codec};
use chrono::{NaiveDate, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Our GLN in these tests.
pub const SUPPLIER: &str = "5790002000000";
/// The customer's CPR: it must appear in plaintext nowhere.
pub const CPR: &str = "0801741527";
/// The customer's name: likewise.
pub const NAME: &str = "Jens Testesen";

/// Our request `id` of `kind` on `gsrn` for `effective`, as an operator puts it on the
/// commands topic: the customer ([`CPR`], [`NAME`]) sealed with `keys`.
pub fn sealed_request(
    gsrn: afregning_cim::Gsrn,
    id: &str,
    kind: ProcessKind,
    effective: NaiveDate,
    keys: &Keyring,
) -> CommandRecord {
    let personal = keys
        .seal(&PersonalData {
            identity: CustomerIdentity::Cpr(Cpr::parse(CPR).expect("cpr")),
            name: PersonName::new(NAME),
        })
        .expect("seal");
    CommandRecord {
        metering_point: gsrn,
        meta: CommandMeta {
            at: Utc::now(),
            actor: "test-operator".into(),
            why: "end-to-end test".into(),
            message_id: None,
        },
        command: Command::Request(ProcessDetails {
            process: ProcessId(id.into()),
            kind,
            supplier: Gln::parse(SUPPLIER).expect("gln"),
            effective,
            customer: Some(CustomerRef {
                key: CustomerKey(format!("customer-{id}")),
                personal: Some(personal),
            }),
            corrects: None,
            balance_responsible: None,
            notified_reason: None,
        }),
    }
}

/// Every event on the portfolio's events `topic`.
pub fn events(env: &TestEnv, topic: &str) -> anyhow::Result<Vec<Event>> {
    super::read_raw(env, topic)?
        .into_iter()
        .filter_map(|r| r.value)
        .map(|v| serde_json::from_slice(&v).map_err(anyhow::Error::from))
        .collect()
}

/// The changes of `process`, in order.
pub fn changes(events: &[Event], process: &str) -> Vec<&'static str> {
    events
        .iter()
        .filter(|e| e.process.as_ref().is_some_and(|p| p.0 == process))
        .map(|e| e.change.name())
        .collect()
}

/// The events once `process` has a `change`; fails after 90 s.
pub async fn wait_for(
    env: &TestEnv,
    topic: &str,
    process: &str,
    change: &str,
) -> anyhow::Result<Vec<Event>> {
    let within = Duration::from_secs(90);
    let started = Instant::now();
    loop {
        let all = events(env, topic)?;
        if changes(&all, process).contains(&change) {
            return Ok(all);
        }
        anyhow::ensure!(
            started.elapsed() < within,
            "{process}: no {change} in {within:?} ({:?})",
            changes(&all, process)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The connector, validate and the portfolio processor of one test, running.
pub struct Rig {
    /// The topics with the registry's wire format.
    pub topics: Topics,
    /// The codec of the deployment.
    pub codec: Codec,
    connector: afregning_connect::RunningConnector,
    validate: JoinHandle<Result<(), pipeline::PipelineError>>,
    portfolio: JoinHandle<Result<(), afregning_processors::runtime::RuntimeError>>,
    stop: watch::Sender<bool>,
}

impl Rig {
    /// Starts the rig for [`SUPPLIER`] against `simulator`, the connector opening sealed
    /// customer data with the keyring in `key_file`; state and logs under `work`.
    pub async fn start(
        env: &TestEnv,
        catalogue: &Catalogue,
        simulator: &RunningSimulator,
        work: &Path,
        key_file: &Path,
    ) -> anyhow::Result<Rig> {
        let supplier = SUPPLIER;
        let mut connect = super::connect_config(env, catalogue, simulator, work);
        connect.outbound.enabled = true;
        connect.outbound.portfolio_key_file = Some(key_file.to_path_buf());
        let connector = Connector::new(connect).start().await?;
        let codec = Codec::new(catalogue.clone(), &env.registry_url);
        let topics = pipeline::topics(catalogue.clone(), &codec).await?;
        let settings = super::pipeline_settings(env, &env.namespace, &work.join("state"), supplier);
        let (stop, rx) = watch::channel(false);
        let shutdown = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let validate = tokio::spawn(pipeline::run_one(
            Which::Validate,
            topics.clone(),
            settings.clone(),
            Watch::default(),
            shutdown(rx.clone()),
        ));
        let portfolio = tokio::spawn(pipeline::run_runtime(
            Portfolio::new(
                topics.clone(),
                PortfolioConfig {
                    us: Gln::parse(supplier).ok_or_else(|| anyhow::anyhow!("a GLN"))?,
                    tick_interval: Duration::from_millis(500),
                },
            ),
            settings.runtime.clone(),
            Watch::default(),
            shutdown(rx),
        ));
        Ok(Rig {
            topics,
            codec,
            connector,
            validate,
            portfolio,
            stop,
        })
    }

    /// Fails if validate or the portfolio processor stopped on its own.
    pub fn check_running(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.validate.is_finished(), "validate stopped early");
        anyhow::ensure!(
            !self.portfolio.is_finished(),
            "the portfolio processor stopped early"
        );
        Ok(())
    }

    /// Stops the processors and the connector; their errors, if any.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.validate.await??;
        self.portfolio.await??;
        self.connector.shutdown().await;
        Ok(())
    }
}
