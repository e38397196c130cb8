//! `afregning portfolio`: our requests to DataHub's business processes (docs/portfolio.md).
//!
//! `request` puts a move-in (BRS-009), change of supplier (BRS-001), end of supply
//! (BRS-002), move-out (BRS-010), rollback of an incorrect change of supplier (BRS-003) or
//! incorrect move (BRS-011), or the customer's master data (BRS-015) on the portfolio's
//! commands topic; `cancel` cancels one of our pending
//! requests. The portfolio processor (`afregning process run portfolio`) decides each by
//! the rules, publishes the event and sends the CIM request through the connector; a
//! refused request is a dead letter with the rule's code and text.
//!
//! `project` keeps the PostgreSQL read model (`portfolio_*` tables) in step with the events;
//! `show` prints a metering point's supply periods and process timeline from it.
//!
//! The customer's CPR or CVR and name are read from standard input (never from the command
//! line, where the shell history and `ps` would keep them) and sealed at once with the
//! keyring of `AFREGNING_PORTFOLIO_KEYS` / `AFREGNING_PORTFOLIO_KEY_FILE`.

use std::io::BufRead;
use std::process::ExitCode;

use afregning_portfolio::personal::{
    Cpr, CustomerIdentity, Cvr, Keyring, PersonName, PersonalData,
};
use afregning_portfolio::{
    Command, CommandMeta, CommandRecord, CustomerKey, CustomerRef, Gln, ProcessDetails, ProcessId,
    ProcessKind,
};
use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args as ClapArgs, Subcommand, ValueEnum};

use super::common::PortfolioDeployment;

/// Arguments of `afregning portfolio`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: PortfolioCommand,
}

/// The portfolio subcommands.
#[derive(Debug, Subcommand)]
pub enum PortfolioCommand {
    /// Request a move-in, change of supplier, end of supply, move-out, rollback or customer
    /// data update for a metering point.
    Request(Box<RequestArgs>),
    /// Cancel one of our pending requests (before its cut-off).
    Cancel(Box<CancelArgs>),
    /// Project the portfolio's events into its PostgreSQL read model, until SIGINT/SIGTERM.
    Project(Box<ProjectArgs>),
    /// Erase former customers whose retention ran out: delete their keys from the key store,
    /// so their CPR/CVR and names can no longer be read anywhere (decision 0148).
    Erase(Box<EraseArgs>),
    /// Show a metering point's supply periods and the timeline of its processes (read model).
    Show {
        /// The metering point (GSRN, 18 digits).
        #[arg(long)]
        gsrn: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// PostgreSQL connection URL.
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres"
        )]
        database_url: String,
    },
}

/// Arguments of `afregning portfolio erase`.
#[derive(Debug, Clone, ClapArgs)]
pub struct EraseArgs {
    /// How long a former customer's personal data is kept after the relation ended (days).
    /// The retention is the supplier's policy (bookkeeping law: 5 years after the financial
    /// year); there is deliberately no default.
    #[arg(long)]
    pub retention_days: u32,
    /// List who would be erased, erase nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Who runs it, for the erasure record; defaults to the login name.
    #[arg(long, env = "USER", default_value = "operator")]
    pub actor: String,
    /// PostgreSQL connection URL (read model and key store).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
}

/// Arguments of `afregning portfolio project`.
#[derive(Debug, Clone, ClapArgs)]
pub struct ProjectArgs {
    /// Where /health (the projector runs) and /metrics are served.
    #[arg(
        long,
        env = "AFREGNING_PROCESSOR_ADMIN_LISTEN",
        default_value = "127.0.0.1:9200"
    )]
    pub admin_listen: std::net::SocketAddr,
    /// The deployment, our GLN, broker and database.
    #[command(flatten)]
    pub deployment: PortfolioDeployment,
}

/// Which request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RequestKind {
    /// BRS-009 move-in (E65): the customer moves in; needs the customer on stdin.
    MoveIn,
    /// BRS-001 change of supplier (E03): needs the customer on stdin.
    ChangeOfSupplier,
    /// BRS-002 end of supply (E20).
    EndOfSupply,
    /// BRS-010 move-out (E66): the customer moves out; we keep supplying without a customer.
    MoveOut,
    /// BRS-003 rollback of an incorrect change of supplier (D07): needs `--corrects` and
    /// `--effective` the corrected process's day.
    RollbackChangeOfSupplier,
    /// BRS-011 rollback of an incorrect move (D33): needs `--corrects` and `--effective` the
    /// corrected move-in's day.
    RollbackMove,
    /// BRS-015 the customer's master data (E34, RSM-027): needs the customer on stdin.
    CustomerData,
}

impl RequestKind {
    fn process(self) -> ProcessKind {
        match self {
            RequestKind::MoveIn => ProcessKind::MoveIn,
            RequestKind::ChangeOfSupplier => ProcessKind::ChangeOfSupplier,
            RequestKind::EndOfSupply => ProcessKind::EndOfSupply,
            RequestKind::MoveOut => ProcessKind::MoveOut,
            RequestKind::RollbackChangeOfSupplier => ProcessKind::IncorrectChangeOfSupplier,
            RequestKind::RollbackMove => ProcessKind::IncorrectMove,
            RequestKind::CustomerData => ProcessKind::CustomerMasterData,
        }
    }

    /// The requests that carry the customer's CPR/CVR and name (read from stdin).
    fn needs_customer(self) -> bool {
        matches!(
            self,
            RequestKind::MoveIn | RequestKind::ChangeOfSupplier | RequestKind::CustomerData
        )
    }
}

/// Where the command goes and who sends it.
#[derive(Debug, Clone, ClapArgs)]
pub struct Sender {
    /// The metering point (GSRN, 18 digits).
    #[arg(long)]
    pub gsrn: String,
    /// Why, for the audit trail (kept in the event).
    #[arg(long)]
    pub why: String,
    /// Who asks (operator name); defaults to the login name.
    #[arg(long, env = "USER", default_value = "operator")]
    pub actor: String,
    /// The deployment, our GLN and the broker.
    #[command(flatten)]
    pub deployment: PortfolioDeployment,
}

/// Arguments of `afregning portfolio request`.
#[derive(Debug, Clone, ClapArgs)]
pub struct RequestArgs {
    /// Which process.
    #[arg(value_enum)]
    pub kind: RequestKind,
    /// The day it takes effect (Danish calendar day, YYYY-MM-DD).
    #[arg(long)]
    pub effective: NaiveDate,
    /// Our customer number (pseudonymous; the read model and statements use it).
    #[arg(long)]
    pub customer: Option<String>,
    /// The process id, also the request's transaction id at DataHub; a fresh UUID if absent.
    #[arg(long)]
    pub process_id: Option<String>,
    /// The process a rollback undoes (our process id, or DataHub's of a notified one).
    #[arg(long)]
    pub corrects: Option<String>,
    /// Where and who.
    #[command(flatten)]
    pub sender: Sender,
}

/// Arguments of `afregning portfolio cancel`.
#[derive(Debug, Clone, ClapArgs)]
pub struct CancelArgs {
    /// The process to cancel.
    #[arg(long)]
    pub process_id: String,
    /// Where and who.
    #[command(flatten)]
    pub sender: Sender,
}

/// Runs `afregning portfolio`.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        PortfolioCommand::Request(args) => {
            let customer = if args.kind.needs_customer() {
                let key = args.customer.clone().context(
                    "a move-in, change of supplier or customer data update needs --customer \
                     (our customer number)",
                )?;
                let personal = read_personal(std::io::stdin().lock())?;
                let key = CustomerKey(key);
                let sealed = seal_customer(&args.sender.deployment, &key, &personal).await?;
                Some(CustomerRef {
                    key,
                    personal: Some(sealed),
                })
            } else {
                None
            };
            let is_rollback = matches!(
                args.kind,
                RequestKind::RollbackChangeOfSupplier | RequestKind::RollbackMove
            );
            anyhow::ensure!(
                is_rollback == args.corrects.is_some(),
                "--corrects names the process a rollback undoes, and only a rollback's"
            );
            let process = args
                .process_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let command = Command::Request(ProcessDetails {
                process: ProcessId(process.clone()),
                kind: args.kind.process(),
                supplier: gln(&args.sender.deployment.supplier_gln)?,
                effective: args.effective,
                customer,
                corrects: args.corrects.clone().map(ProcessId),
                balance_responsible: None,
                notified_reason: None,
            });
            send(&args.sender, command).await?;
            println!("{process}");
            Ok(ExitCode::SUCCESS)
        }
        PortfolioCommand::Project(args) => project(*args).await,
        PortfolioCommand::Erase(args) => erase(&args).await,
        PortfolioCommand::Show {
            gsrn,
            json,
            database_url,
        } => show(&gsrn, json, &database_url).await,
        PortfolioCommand::Cancel(args) => {
            let command = Command::Cancel {
                process: ProcessId(args.process_id.clone()),
            };
            send(&args.sender, command).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs the read model's projector (`afregning_portfolio::projector`) until a signal.
async fn project(args: ProjectArgs) -> anyhow::Result<ExitCode> {
    let deployment = &args.deployment;
    let catalogue = deployment.catalogue()?;
    let spec = catalogue.spec(afregning_topology::catalogue::TopicId::PortfolioEvents)?;
    let pool = sqlx::PgPool::connect(&deployment.stack.database_url)
        .await
        .context("connecting to the database (--database-url / DATABASE_URL)")?;
    let listener = tokio::net::TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("binding the admin address {}", args.admin_listen))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, super::common::liveness_router()).await;
    });
    tracing::info!(topic = %spec.name, admin_listen = %args.admin_listen, "portfolio read model: projecting events");
    let config = afregning_portfolio::projector::ProjectorConfig {
        bootstrap_servers: deployment.stack.bootstrap_servers.clone(),
        topic: spec.name.clone(),
        partitions: spec.partitions,
        us: gln(&deployment.supplier_gln)?,
    };
    let done = afregning_portfolio::projector::run(
        &pool,
        &config,
        |p| {
            metrics::gauge!("afregning_portfolio_projected_events").set(p.events as f64);
            metrics::gauge!("afregning_portfolio_projected_written").set(p.written as f64);
        },
        super::common::shutdown_signal(),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    tracing::info!(
        events = done.events,
        written = done.written,
        already = done.already,
        "portfolio read model: stopped"
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints a metering point's periods and history from the read model. Exit 0 when it is
/// known, 1 when the read model has nothing for it.
async fn show(gsrn: &str, json: bool, database_url: &str) -> anyhow::Result<ExitCode> {
    afregning_cim::Gsrn::parse(gsrn)
        .with_context(|| format!("{gsrn:?} is not a GSRN (18 digits)"))?;
    let pool = sqlx::PgPool::connect(database_url)
        .await
        .context("connecting to the database (--database-url / DATABASE_URL)")?;
    let periods = afregning_portfolio::read_model::periods(&pool, gsrn)
        .await
        .context("reading the read model (is `afregning portfolio project` running?)")?;
    let history = afregning_portfolio::read_model::history(&pool, gsrn)
        .await
        .context("reading the read model")?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "metering_point": gsrn, "periods": periods, "history": history,
            }))?
        );
    } else {
        println!("metering point {gsrn}");
        println!("supply periods:");
        for p in &periods {
            let to = p.valid_to.map_or("open".to_string(), |d| d.to_string());
            let retired = p
                .retired_by
                .as_deref()
                .map_or(String::new(), |r| format!("  (rolled back by {r})"));
            println!(
                "  {} .. {to}  customer {}  started by {}{retired}",
                p.valid_from,
                p.customer_key.as_deref().unwrap_or("-"),
                p.started_by
            );
        }
        println!("history:");
        for h in &history {
            println!(
                "  #{:<3} {}  {:<22} {:<24} {:<10} {} ({})",
                h.sequence,
                h.recorded_at.format("%Y-%m-%d %H:%M:%S"),
                h.change,
                h.process_id.as_deref().unwrap_or("-"),
                h.status_after.as_deref().unwrap_or("-"),
                h.why,
                h.actor
            );
        }
    }
    Ok(if periods.is_empty() && history.is_empty() {
        eprintln!("the read model has nothing for {gsrn}");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn gln(text: &str) -> anyhow::Result<Gln> {
    Gln::parse(text).with_context(|| format!("{text:?} is not a GLN (13 digits)"))
}

/// The customer from `input`: the first line is the CPR (10 digits) or CVR (8 digits), the
/// optional second line the name. The error never repeats what was read.
pub fn read_personal(input: impl BufRead) -> anyhow::Result<PersonalData> {
    let mut lines = input.lines();
    let id = lines
        .next()
        .transpose()
        .context("reading standard input")?
        .context("the customer's CPR or CVR is expected on the first line of standard input")?;
    let id = id.trim();
    let identity = if let Some(cpr) = Cpr::parse(id) {
        CustomerIdentity::Cpr(cpr)
    } else if let Some(cvr) = Cvr::parse(id) {
        CustomerIdentity::Cvr(cvr)
    } else {
        anyhow::bail!(
            "the first line of standard input is neither a CPR number (10 digits) nor a CVR number (8 digits)"
        );
    };
    let name = lines
        .next()
        .transpose()
        .context("reading standard input")?
        .and_then(|n| PersonName::new(n.trim()));
    Ok(PersonalData { identity, name })
}

/// Finds the customers due for erasure in the read model and erases each (or lists them with
/// `--dry-run`); one line per customer, customer numbers only, and a summary.
async fn erase(args: &EraseArgs) -> anyhow::Result<ExitCode> {
    use afregning_portfolio::customer_keys;
    let pool = sqlx::PgPool::connect(&args.database_url)
        .await
        .context("connecting to the database (--database-url / DATABASE_URL)")?;
    // Today in Denmark, as the database's clock and time zone rules have it.
    let today: chrono::NaiveDate =
        sqlx::query_scalar("SELECT (now() AT TIME ZONE 'Europe/Copenhagen')::date")
            .fetch_one(&pool)
            .await
            .context("reading the date")?;
    let due = customer_keys::due_for_erasure(&pool, today, args.retention_days)
        .await
        .context("finding former customers (has `afregning sink migrate` run?)")?;
    tracing::info!(
        due = due.len(),
        retention_days = args.retention_days,
        dry_run = args.dry_run,
        "portfolio erase: former customers due"
    );
    let mut erased = 0usize;
    for (n, customer) in due.iter().enumerate() {
        if args.dry_run {
            println!(
                "due    {}  last day {}",
                customer.customer_key, customer.last_day
            );
            continue;
        }
        let keys = customer_keys::erase(&pool, customer, Some(args.retention_days), &args.actor)
            .await
            .with_context(|| format!("erasing customer {}", customer.customer_key))?;
        erased += usize::from(!keys.is_empty());
        println!(
            "erased {}  last day {}  keys {}",
            customer.customer_key,
            customer.last_day,
            keys.join(",")
        );
        tracing::info!(customer = %customer.customer_key, done = n + 1, of = due.len(), "portfolio erase: customer erased");
    }
    println!(
        "{} former customer(s) due after {} days; {} erased",
        due.len(),
        args.retention_days,
        erased
    );
    // Inbound messages' keys no customer adopted (their data was dead-lettered or concerned
    // no process of ours) go after the same retention.
    if !args.dry_run {
        let unadopted =
            customer_keys::erase_unadopted(&pool, today, args.retention_days, &args.actor)
                .await
                .context("erasing the keys of inbound messages no customer adopted")?;
        println!(
            "{} unadopted inbound message key(s) erased",
            unadopted.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Seals `personal` under the customer's own key in the key store (decision 0148), so erasing
/// the customer later makes it unreadable everywhere.
async fn seal_customer(
    deployment: &PortfolioDeployment,
    customer: &CustomerKey,
    personal: &PersonalData,
) -> anyhow::Result<afregning_portfolio::personal::Sealed> {
    let keyring =
        Keyring::from_env().context("sealing the customer's data needs the portfolio keyring")?;
    let pool = sqlx::PgPool::connect(&deployment.stack.database_url)
        .await
        .context("connecting to the key store's database (--database-url / DATABASE_URL)")?;
    let sealed = afregning_portfolio::customer_keys::seal_for(&pool, &keyring, customer, personal)
        .await
        .context("sealing under the customer's key (has `afregning sink migrate` run?)")?;
    pool.close().await;
    Ok(sealed)
}

/// Puts `command` on the commands topic and waits for the broker's acknowledgement.
async fn send(sender: &Sender, command: Command) -> anyhow::Result<()> {
    let metering_point = afregning_cim::Gsrn::parse(&sender.gsrn).with_context(|| {
        format!(
            "{:?} is not a GSRN (18 digits, valid check digit)",
            sender.gsrn
        )
    })?;
    let catalogue = sender.deployment.catalogue()?;
    let record = CommandRecord {
        metering_point,
        meta: CommandMeta {
            at: chrono::Utc::now(),
            actor: sender.actor.clone(),
            why: sender.why.clone(),
            message_id: None,
        },
        command,
    };
    afregning_processors::portfolio::inbox::send_command(
        &sender.deployment.stack.bootstrap_servers,
        &catalogue,
        &record,
    )
    .await
    .map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_customer_is_read_from_stdin_and_a_bad_number_is_not_echoed() {
        let data = read_personal("0801741527\nJan Hansen\n".as_bytes()).expect("read");
        assert!(matches!(data.identity, CustomerIdentity::Cpr(_)));
        assert!(data.name.is_some());
        let company = read_personal("12345678\n".as_bytes()).expect("read");
        assert!(matches!(company.identity, CustomerIdentity::Cvr(_)));
        assert!(company.name.is_none());
        let error = read_personal("08017415\u{37}9x\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(!error.contains("0801741579x") && error.contains("neither a CPR"));
        assert!(read_personal("".as_bytes()).is_err());
    }
}
