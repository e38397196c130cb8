//! Cross-checks `docker-compose.yml` against the code, since no Docker engine runs
//! here to try it: every afregning service's command must exist in the CLI (the
//! real binary accepts it with `--help`), the health checks must point at
//! ports the services listen on, and every topic the file names must be in the
//! topology catalogue.

use std::path::Path;
use std::process::Command;

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
