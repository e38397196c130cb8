//! Cross-checks `docker-compose.yml` against the code, since no Docker engine runs
//! here to try it: every afregning service's command must exist in the CLI (the
//! real binary accepts it with `--help`), the health checks and Prometheus
//! targets must reach the address and path each service really serves, every
//! environment variable must be one the binary reads, and every topic the file
//! names must be in the topology catalogue.
//!
//! Nothing about ports is written down here: a service's admin address is
//! the one its command gets (a flag in the command, else the environment
//! variable the binary's `--help` names, else the default `--help` prints,
//! else the library's default), and its paths are the ones the service's own
//! router answers (`afregning-processors`, `afregning-sinks`,
//! `afregning-connect` and `afregning-api` routers, served here on a free port).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use yaml_rust2::{Yaml, YamlLoader};

fn compose() -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker-compose.yml");
    let text = std::fs::read_to_string(&path).expect("docker-compose.yml is readable");
    let mut docs = YamlLoader::load_from_str(&text).expect("docker-compose.yml is valid YAML");
    assert_eq!(docs.len(), 1, "one YAML document");
    docs.remove(0)
}

fn services(doc: &Yaml) -> Vec<(String, Yaml)> {
    doc["services"]
        .as_hash()
        .expect("a services mapping")
        .iter()
        .map(|(name, service)| {
            (
                name.as_str().expect("service name").to_string(),
                service.clone(),
            )
        })
        .collect()
}

fn command_of(service: &Yaml) -> Option<Vec<String>> {
    service["command"].as_vec().map(|parts| {
        parts
            .iter()
            .map(|p| p.as_str().expect("command parts are strings").to_string())
            .collect()
    })
}

#[test]
fn every_afregning_service_runs_a_command_the_cli_accepts() {
    let doc = compose();
    let mut checked = 0;
    for (name, service) in services(&doc) {
        let Some(command) = command_of(&service) else {
            continue;
        };
        if command.first().map(String::as_str) != Some("afregning") {
            continue;
        }
        // `--help` makes clap check the subcommand path and option names
        // without running anything; an unknown subcommand or flag fails.
        let output = Command::new(env!("CARGO_BIN_EXE_afregning"))
            .args(&command[1..])
            .arg("--help")
            .output()
            .expect("run afregning");
        assert!(
            output.status.success(),
            "service {name}: `{}` is not a valid afregning command:\n{}",
            command.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        checked += 1;
    }
    assert!(
        checked >= 10,
        "expected the afregning services in docker-compose.yml, found {checked}"
    );
}

#[test]
fn a_misspelt_command_would_be_caught() {
    // The check above is only worth something if the binary rejects unknown commands.
    let output = Command::new(env!("CARGO_BIN_EXE_afregning"))
        .args(["process", "runn", "validate", "--help"])
        .output()
        .expect("run afregning");
    assert!(!output.status.success());
}

#[test]
fn every_service_has_a_health_check_or_is_a_one_shot_job() {
    let doc = compose();
    for (name, service) in services(&doc) {
        let one_shot = service["restart"].as_str() == Some("no");
        let has_health = !service["healthcheck"].is_badvalue()
            || service["<<"]["healthcheck"].as_hash().is_some();
        assert!(one_shot || has_health, "service {name} has no health check");
    }
}

#[test]
fn every_topic_named_in_compose_is_in_the_catalogue() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker-compose.yml"))
            .expect("docker-compose.yml is readable");
    let catalogue = afregning_topology::Catalogue::new(
        afregning_topology::settings::TopologySettings::default(),
    )
    .expect("default settings are valid");
    let unknown = catalogue.unknown_topic_mentions(&text);
    assert!(
        unknown.is_empty(),
        "docker-compose.yml names topics the catalogue does not have: {unknown:?}"
    );
    // The check bites: a made-up topic in the same text is reported.
    let tampered = format!("{text}\n# afregning.metering.readingz.v1\n");
    assert_eq!(
        catalogue.unknown_topic_mentions(&tampered),
        vec!["afregning.metering.readingz.v1".to_string()]
    );
}

#[test]
fn every_topic_named_in_the_readme_is_in_the_catalogue() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md is readable");
    let catalogue = afregning_topology::Catalogue::new(
        afregning_topology::settings::TopologySettings::default(),
    )
    .expect("default settings are valid");
    let unknown = catalogue.unknown_topic_mentions(&text);
    assert!(
        unknown.is_empty(),
        "README.md names topics the catalogue does not have: {unknown:?}"
    );
}

#[test]
fn the_readme_embeds_the_current_topology_diagram() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md is readable");
    let begin = text
        .find("<!-- topology:begin -->")
        .expect("README has a topology:begin marker");
    let end = text
        .find("<!-- topology:end -->")
        .expect("README has a topology:end marker");
    let embedded = &text[begin..end];
    let catalogue = afregning_topology::Catalogue::new(
        afregning_topology::settings::TopologySettings::default(),
    )
    .expect("default settings are valid");
    let generated = afregning_topology::describe::mermaid(&catalogue, false);
    assert!(
        embedded.contains(generated.trim_end()),
        "the README's diagram is stale: paste the output of `afregning topology describe --format mermaid`"
    );
}

/// The grafana service's volumes as (host path relative to the checkout, container path).
fn grafana_mounts(doc: &Yaml) -> Vec<(String, String)> {
    doc["services"]["grafana"]["volumes"]
        .as_vec()
        .expect("grafana has volumes")
        .iter()
        .map(|v| {
            let spec = v.as_str().expect("short volume syntax");
            let mut parts = spec.split(':');
            let host = parts.next().expect("host path").to_string();
            let container = parts.next().expect("container path").to_string();
            (host, container)
        })
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<Yaml> {
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("provisioning file is readable");
            docs.extend(
                YamlLoader::load_from_str(&text)
                    .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display())),
            );
        }
    }
    docs
}

/// The API is the one service meant for people: its port is published on the
/// host's loopback only, and its token keys come from the caller's
/// environment, never from values written in the file.
#[test]
fn the_api_is_published_on_loopback_and_takes_its_secrets_from_the_environment() {
    let doc = compose();
    let api = merged(&doc["services"]["api"]);
    let ports = api["ports"].as_vec().expect("the api publishes a port");
    for port in ports {
        let port = port.as_str().expect("a port mapping string");
        assert!(
            port.starts_with("127.0.0.1:"),
            "the API's port {port} is published beyond the host's loopback"
        );
    }
    let env = environment(&api);
    for key in [
        "AFREGNING_API_JWT_SECRET",
        "AFREGNING_API_JWKS",
        "AFREGNING_API_JWT_ISSUER",
        "AFREGNING_API_JWT_AUDIENCE",
    ] {
        let value = env
            .get(key)
            .unwrap_or_else(|| panic!("the api service does not pass {key}"));
        assert!(
            value.starts_with(&format!("${{{key}")) && value.ends_with('}'),
            "{key} must be a reference to the caller's environment, not {value:?}"
        );
    }
    for (name, value) in &env {
        assert!(
            !name.contains("SECRET") || value.starts_with("${"),
            "{name} holds a literal secret in docker-compose.yml"
        );
    }
}

#[test]
fn grafana_is_provisioned_with_the_datasources_and_dashboards_it_mounts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = compose();
    let mounts = grafana_mounts(&doc);
    let mount = |target: &str| {
        mounts
            .iter()
            .find(|(_, container)| container == target)
            .unwrap_or_else(|| panic!("grafana does not mount {target}: {mounts:?}"))
            .0
            .clone()
    };
    // Provisioning: the directory with datasources/ and dashboards/ providers.
    let provisioning = root.join(mount("/etc/grafana/provisioning"));
    let datasources = yaml_files(&provisioning.join("datasources"));
    let providers = yaml_files(&provisioning.join("dashboards"));
    assert!(!datasources.is_empty(), "no datasource provisioning file");
    assert!(!providers.is_empty(), "no dashboard provider file");
    let provisioned: Vec<(String, String)> = datasources
        .iter()
        .flat_map(|d| d["datasources"].as_vec().cloned().unwrap_or_default())
        .map(|d| {
            (
                d["uid"].as_str().expect("a datasource uid").to_string(),
                d["type"].as_str().expect("a datasource type").to_string(),
            )
        })
        .collect();
    // The password comes from the service's environment, which must set it.
    for d in &datasources {
        for source in d["datasources"].as_vec().into_iter().flatten() {
            if let Some(password) = source["secureJsonData"]["password"].as_str() {
                let var = password.trim_start_matches("${").trim_end_matches('}');
                assert!(
                    !doc["services"]["grafana"]["environment"][var].is_badvalue(),
                    "the datasource password reads ${var}, which grafana's environment lacks"
                );
            }
        }
    }
    // Every provider's path is a mounted directory holding at least one dashboard.
    let mut dashboards = Vec::new();
    for provider in providers
        .iter()
        .flat_map(|p| p["providers"].as_vec().cloned().unwrap_or_default())
    {
        let path = provider["options"]["path"]
            .as_str()
            .expect("a provider path");
        let host = root.join(mount(path));
        for entry in std::fs::read_dir(&host).expect("dashboards directory") {
            let file = entry.expect("directory entry").path();
            if file.extension().is_some_and(|e| e == "json") {
                dashboards.push(file);
            }
        }
    }
    assert!(
        !dashboards.is_empty(),
        "no dashboard JSON under the provider paths"
    );
    // Every datasource a dashboard names is provisioned, with the same type.
    for file in dashboards {
        let text = std::fs::read_to_string(&file).expect("dashboard is readable");
        let dashboard: serde_json::Value =
            serde_json::from_str(&text).expect("dashboard is valid JSON");
        let mut refs = Vec::new();
        let mut stack = vec![&dashboard];
        while let Some(value) = stack.pop() {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(ds) = map.get("datasource").filter(|d| d.is_object()) {
                        refs.push((
                            ds["uid"].as_str().unwrap_or_default().to_string(),
                            ds["type"].as_str().unwrap_or_default().to_string(),
                        ));
                    }
                    stack.extend(map.values());
                }
                serde_json::Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        assert!(!refs.is_empty(), "{} names no datasource", file.display());
        for reference in refs {
            assert!(
                provisioned.contains(&reference),
                "{} uses datasource {reference:?}, not provisioned ({provisioned:?})",
                file.display()
            );
        }
    }
}

/// `value` with YAML merge keys (`<<: *anchor`) resolved, which yaml-rust2
/// leaves as ordinary keys: the merged mapping first, the own keys over it.
fn merged(value: &Yaml) -> Yaml {
    match value {
        Yaml::Hash(hash) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            let merge_key = Yaml::String("<<".into());
            if let Some(base) = hash.get(&merge_key) {
                let bases = match base {
                    Yaml::Array(items) => items.clone(),
                    other => vec![other.clone()],
                };
                for base in bases {
                    if let Yaml::Hash(base) = merged(&base) {
                        out.extend(base);
                    }
                }
            }
            for (key, item) in hash {
                if *key != merge_key {
                    out.insert(key.clone(), merged(item));
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(items) => Yaml::Array(items.iter().map(merged).collect()),
        other => other.clone(),
    }
}

/// A service's environment as `NAME -> value`, merge keys resolved.
fn environment(service: &Yaml) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(hash) = service["environment"].as_hash() {
        for (key, value) in hash {
            let value = match value {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                Yaml::Boolean(b) => b.to_string(),
                other => panic!("unexpected environment value {other:?}"),
            };
            out.insert(key.as_str().expect("variable name").to_string(), value);
        }
    }
    out
}

/// One option of a command, as the binary's `--help` describes it.
#[derive(Debug, Clone, Default)]
struct HelpOption {
    /// `--admin-listen`.
    flag: String,
    /// The description, wrapped lines joined.
    description: String,
    /// `[env: NAME=…]`.
    env: Option<String>,
    /// `[default: …]`.
    default: Option<String>,
}

/// `afregning <command> --help`, run on the real binary.
fn help(command: &[String]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_afregning"))
        .args(command)
        .arg("--help")
        .env_clear()
        .output()
        .expect("run afregning");
    assert!(output.status.success(), "{command:?} --help failed");
    String::from_utf8(output.stdout).expect("utf-8 help")
}

/// The options a clap long help lists.
fn help_options(help: &str) -> Vec<HelpOption> {
    let mut options: Vec<HelpOption> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let starts_option = indent > 0
            && indent < 10
            && (trimmed.starts_with("--")
                || (trimmed.starts_with('-') && trimmed.contains(", --")));
        if starts_option {
            let flag = trimmed
                .split_whitespace()
                .find(|word| word.starts_with("--"))
                .expect("a long flag")
                .trim_end_matches(',')
                .to_string();
            options.push(HelpOption {
                flag,
                ..HelpOption::default()
            });
            continue;
        }
        if indent == 0 {
            // A section header ("Options:", "Arguments:") ends the option.
            if !trimmed.is_empty() {
                options.push(HelpOption::default());
            }
            continue;
        }
        let Some(option) = options.last_mut().filter(|o| !o.flag.is_empty()) else {
            continue;
        };
        let mut spec = false;
        if let Some(at) = trimmed.find("[env: ") {
            let rest = &trimmed[at + "[env: ".len()..];
            option.env = Some(rest.split(['=', ']']).next().expect("a name").to_string());
            spec = true;
        }
        if let Some(at) = trimmed.find("[default: ") {
            let rest = &trimmed[at + "[default: ".len()..];
            option.default = Some(rest.split(']').next().expect("a value").to_string());
            spec = true;
        }
        if !spec {
            option.description.push_str(trimmed);
            option.description.push(' ');
        }
    }
    options.retain(|o| !o.flag.is_empty());
    options
}

/// What a router answers: path -> status, probed over real HTTP.
async fn probe(router: axum::Router, paths: &[&str]) -> BTreeMap<String, u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("bound");
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let mut out = BTreeMap::new();
    for path in paths {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .expect("request");
        let mut response = String::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_string(&mut response),
        )
        .await
        .expect("the router answers in time")
        .expect("response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {response:?}"));
        out.insert(path.to_string(), status);
    }
    server.abort();
    out
}

/// The admin router of the service a command (without the leading
/// `afregning`) runs, built from its library
/// with idle state, or `None` for a command whose router needs more (the
/// DataHub simulator: a whole scenario).
async fn router_of(command: &[String]) -> Option<axum::Router> {
    let words: Vec<&str> = command.iter().map(String::as_str).collect();
    let render = || Arc::new(String::new) as Arc<dyn Fn() -> String + Send + Sync>;
    match words.get(0..2) {
        Some(["process", "run"]) => Some(afregning_processors::runtime::admin::router(
            afregning_processors::runtime::RuntimeStatus::default(),
            render(),
        )),
        Some(["sink", "run"]) => Some(afregning_sinks::admin::router(
            Arc::new(afregning_sinks::SinkStatus::default()),
            render(),
        )),
        Some(["connect", _]) => Some(afregning_connect::admin_router(
            afregning_connect::Status::default(),
        )),
        Some(["api", ..]) => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .acquire_timeout(std::time::Duration::from_millis(200))
                .connect_lazy("postgres://nobody@127.0.0.1:1/nothing")
                .expect("a lazy pool");
            let authenticator =
                afregning_api::auth::Authenticator::new(afregning_api::auth::AuthConfig {
                    hs256_secret: Some("a compose test secret of 32 bytes!".to_string()),
                    ..Default::default()
                })
                .expect("an authenticator");
            Some(afregning_api::router(afregning_api::AppState {
                pool,
                render_metrics: render(),
                authenticator,
                broker: None,
                products: None,
                supplier_gln: None,
                connector_metrics_url: None,
                portfolio_keys: None,
            }))
        }
        _ => None,
    }
}

/// Where a long-running afregning service serves `/health` and `/metrics`,
/// derived from its command, its environment and the binary.
#[derive(Debug)]
struct AdminEndpoint {
    service: String,
    command: Vec<String>,
    /// The address the service binds.
    listen: SocketAddr,
    /// How it was found, for messages.
    source: String,
}

fn admin_endpoint(name: &str, service: &Yaml) -> Option<AdminEndpoint> {
    let command = command_of(service)?;
    if command.first().map(String::as_str) != Some("afregning") {
        return None;
    }
    let args = &command[1..];
    let options = help_options(&help(args));
    // The option that says where /health is served, else the one the
    // service listens on (the simulator's `--listen`, "Address to serve on").
    let option = options
        .iter()
        .find(|o| o.description.contains("/health"))
        .or_else(|| options.iter().find(|o| o.flag == "--listen"))?
        .clone();
    let env = environment(service);
    let in_command = args.iter().enumerate().find_map(|(i, arg)| {
        if *arg == option.flag {
            args.get(i + 1).cloned()
        } else {
            arg.strip_prefix(&format!("{}=", option.flag))
                .map(str::to_string)
        }
    });
    let (value, source) = if let Some(value) = in_command {
        (value, format!("{} in the command", option.flag))
    } else if let Some(value) = option.env.as_ref().and_then(|e| env.get(e)) {
        (
            value.clone(),
            format!(
                "{} in the environment",
                option.env.clone().unwrap_or_default()
            ),
        )
    } else if let Some(value) = option.default.clone() {
        (value, format!("the default of {}", option.flag))
    } else if args.starts_with(&["connect".to_string(), "run".to_string()]) {
        // `connect run` reads its default from the connector's config.
        (
            afregning_connect::ConnectConfig::default()
                .admin_listen
                .to_string(),
            "ConnectConfig::default().admin_listen".to_string(),
        )
    } else {
        panic!(
            "service {name}: {} has no value and no default",
            option.flag
        );
    };
    Some(AdminEndpoint {
        service: name.to_string(),
        command: args.to_vec(),
        listen: value.parse().unwrap_or_else(|e| {
            panic!("service {name}: {value} ({source}) is not an address: {e}")
        }),
        source,
    })
}

fn admin_endpoints(doc: &Yaml) -> Vec<AdminEndpoint> {
    services(doc)
        .iter()
        .filter(|(_, service)| service["restart"].as_str() != Some("no"))
        .filter_map(|(name, service)| admin_endpoint(name, &merged(service)))
        .collect()
}

/// `curl -fsS http://localhost:9100/health` -> (host, port, path).
fn health_url(service: &Yaml) -> Option<(String, u16, String)> {
    let test = service["healthcheck"]["test"].as_vec()?;
    let shell = test.last()?.as_str()?;
    let start = shell.find("http://")?;
    let url = shell[start + "http://".len()..]
        .split_whitespace()
        .next()?
        .to_string();
    let (authority, path) = url.split_at(url.find('/').unwrap_or(url.len()));
    let (host, port) = authority.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?, path.to_string()))
}

#[tokio::test]
async fn health_checks_reach_the_address_and_path_each_service_serves() {
    let doc = compose();
    let endpoints = admin_endpoints(&doc);
    let names: BTreeSet<&str> = endpoints.iter().map(|e| e.service.as_str()).collect();
    for expected in [
        "connect",
        "spot-prices",
        "validate",
        "enrich",
        "aggregate",
        "settle",
        "sink-timescale",
        "sink-erp",
        "api",
        "simulator",
    ] {
        assert!(
            names.contains(expected),
            "no admin address found for {expected}: {names:?}"
        );
    }
    for endpoint in &endpoints {
        let service = merged(&doc["services"][endpoint.service.as_str()]);
        let (host, port, path) = health_url(&service)
            .unwrap_or_else(|| panic!("service {} has no HTTP health check", endpoint.service));
        println!(
            "{}: listens on {} ({}); health check {host}:{port}{path}",
            endpoint.service, endpoint.listen, endpoint.source
        );
        assert!(
            matches!(host.as_str(), "localhost" | "127.0.0.1"),
            "service {}: the health check runs inside the container",
            endpoint.service
        );
        assert_eq!(
            port,
            endpoint.listen.port(),
            "service {}: the health check looks at port {port}, the service listens on {} ({})",
            endpoint.service,
            endpoint.listen,
            endpoint.source
        );
        if let Some(router) = router_of(&endpoint.command).await {
            let answers = probe(router, &[path.as_str()]).await;
            assert_ne!(
                answers[&path], 404,
                "service {}: its router does not serve {path}",
                endpoint.service
            );
        }
    }
}

#[test]
fn every_admin_address_is_reachable_from_other_containers() {
    for endpoint in admin_endpoints(&compose()) {
        assert!(
            endpoint.listen.ip().is_unspecified(),
            "service {} binds {} ({}): loopback inside a container is out of Prometheus' and the host's reach; set it to 0.0.0.0:{}",
            endpoint.service,
            endpoint.listen,
            endpoint.source,
            endpoint.listen.port()
        );
    }
}

/// The Prometheus configuration compose mounts, as (job, metrics path, targets).
fn prometheus_jobs(doc: &Yaml) -> Vec<(String, String, Vec<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mount = doc["services"]["prometheus"]["volumes"]
        .as_vec()
        .expect("prometheus has volumes")
        .iter()
        .filter_map(|v| v.as_str())
        .find(|v| v.split(':').nth(1) == Some("/etc/prometheus/prometheus.yml"))
        .expect("prometheus mounts its configuration")
        .split(':')
        .next()
        .expect("a host path")
        .to_string();
    let text = std::fs::read_to_string(root.join(&mount)).expect("the mounted prometheus.yml");
    let config = YamlLoader::load_from_str(&text)
        .expect("valid YAML")
        .remove(0);
    config["scrape_configs"]
        .as_vec()
        .expect("scrape configs")
        .iter()
        .map(|job| {
            let targets = job["static_configs"]
                .as_vec()
                .into_iter()
                .flatten()
                .flat_map(|c| c["targets"].as_vec().cloned().unwrap_or_default())
                .map(|t| t.as_str().expect("a target").to_string())
                .collect();
            (
                job["job_name"].as_str().expect("a job name").to_string(),
                job["metrics_path"]
                    .as_str()
                    .unwrap_or("/metrics")
                    .to_string(),
                targets,
            )
        })
        .collect()
}

#[tokio::test]
async fn prometheus_scrapes_every_service_where_it_serves_metrics() {
    let doc = compose();
    let endpoints = admin_endpoints(&doc);
    let mut scraped = BTreeSet::new();
    for (job, path, targets) in prometheus_jobs(&doc) {
        for target in targets {
            let (host, port) = target
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("job {job}: target {target} has no port"));
            let endpoint = endpoints
                .iter()
                .find(|e| e.service == host)
                .unwrap_or_else(|| {
                    panic!("job {job}: {host} is not an afregning service with an admin address")
                });
            assert_eq!(
                port.parse::<u16>().ok(),
                Some(endpoint.listen.port()),
                "job {job}: Prometheus scrapes {target}, {host} listens on {} ({})",
                endpoint.listen,
                endpoint.source
            );
            if let Some(router) = router_of(&endpoint.command).await {
                let answers = probe(router, &[path.as_str()]).await;
                assert_eq!(
                    answers[&path], 200,
                    "job {job}: {host} does not serve {path}"
                );
            }
            scraped.insert(host.to_string());
        }
    }
    // Every service that serves metrics is scraped (the simulator is a test double).
    for endpoint in endpoints.iter().filter(|e| e.service != "simulator") {
        assert!(
            scraped.contains(&endpoint.service),
            "Prometheus does not scrape {}",
            endpoint.service
        );
    }
}

/// Environment variables the binary's sources read directly (`std::env::var("NAME")`, or
/// `std::env::var(NAME)` of a `const NAME: &str = "…"` in the same file) rather than through
/// a clap option: the root crate and the libraries that read their own (the portfolio's
/// keyring, which the connector opens requests with).
fn variables_read_by_source() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stack = vec![root.join("src"), root.join("portfolio/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                for (at, _) in text.match_indices("env::var(\"") {
                    let rest = &text[at + "env::var(\"".len()..];
                    out.insert(rest[..rest.find('"').expect("closing quote")].to_string());
                }
                let consts: BTreeMap<&str, &str> = text
                    .lines()
                    .filter_map(|line| {
                        let rest = line.trim().strip_prefix("pub ").unwrap_or(line.trim());
                        let (name, value) =
                            rest.strip_prefix("const ")?.split_once(": &str = \"")?;
                        Some((name, value.strip_suffix("\";")?))
                    })
                    .collect();
                for (at, _) in text.match_indices("env::var(") {
                    let rest = &text[at + "env::var(".len()..];
                    let name = &rest[..rest.find(')').unwrap_or(0)];
                    if let Some(value) = consts.get(name) {
                        out.insert((*value).to_string());
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_environment_variable_of_an_afregning_service_is_read_by_the_binary() {
    let doc = compose();
    let mut read: BTreeSet<String> = variables_read_by_source();
    read.insert("RUST_LOG".into()); // tracing's EnvFilter
    for option in help_options(&help(&[])) {
        read.extend(option.env);
    }
    let mut commands = Vec::new();
    for (_, service) in services(&doc) {
        let service = merged(&service);
        if let Some(command) = command_of(&service).filter(|c| c[0] == "afregning") {
            for option in help_options(&help(&command[1..])) {
                read.extend(option.env);
            }
            commands.push(service);
        }
    }
    assert!(
        read.contains("AFREGNING_PROCESSOR_ADMIN_LISTEN"),
        "{read:?}"
    );
    for service in commands {
        for name in environment(&service).keys() {
            assert!(
                read.contains(name),
                "{name} is set in docker-compose.yml but no afregning command reads it"
            );
        }
    }
}
