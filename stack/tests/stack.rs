//! The local stack against real processes: a Tansu broker and a private
//! PostgreSQL cluster started in a temporary stack directory, so these tests
//! never touch the shared stack other tests use.

use std::process::Command;

use afregning_stack::{BrokerStorage, ServiceRecord, StackDir};

fn temp_dir() -> (tempfile::TempDir, StackDir) {
    let tmp = tempfile::Builder::new()
        .prefix("afregning-stack-test")
        // Not under the target directory: a private PostgreSQL cluster runs as the
        // `postgres` user when the tests run as root, and the target directory may
        // sit under a home it cannot enter (`~/.cache`, mode 0700).
        .tempdir_in(std::env::temp_dir())
        .expect("temp dir");
    let dir = StackDir::at(tmp.path());
    (tmp, dir)
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn broker_start_is_idempotent_and_stop_stops_only_ours() {
    let (_tmp, dir) = temp_dir();
    let first =
        afregning_stack::ensure_local_broker(&dir, BrokerStorage::Memory).expect("broker starts");
    let second =
        afregning_stack::ensure_local_broker(&dir, BrokerStorage::Memory).expect("broker reused");
    assert_eq!(
        first, second,
        "a running broker is reused, not started twice"
    );
    let services = afregning_stack::status(&dir).expect("status");
    assert_eq!(services.len(), 1);
    let broker_pid = services[0].1.pid;
    assert!(services[0].2, "recorded broker runs");

    // A process that is not ours, recorded under a pid whose command line does
    // not match (as when a pid is reused), must survive `stop`.
    let mut bystander = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let fake = ServiceRecord {
        pid: bystander.id(),
        port: 1,
        cmdline_marker: "tcp://127.0.0.1:1".to_string(),
        details: Default::default(),
    };
    std::fs::write(
        dir.path().join("state.json"),
        serde_json::json!({ "services": {
            "broker": services[0].1,
            "impostor": fake,
        }})
        .to_string(),
    )
    .expect("write state");
    let stopped = afregning_stack::stop(&dir).expect("stop");
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert!(!pid_alive(broker_pid), "our broker is stopped");
    assert!(
        pid_alive(bystander.id()),
        "a process that is not ours is left alone"
    );
    bystander.kill().expect("kill sleep");
    let _ = bystander.wait();
}

#[test]
fn a_sqlite_broker_survives_a_kill_and_restart() {
    let (tmp, dir) = temp_dir();
    let storage = BrokerStorage::Sqlite(tmp.path().join("broker.db"));
    let mut broker =
        afregning_stack::start_private_broker(&dir, "fault-broker", storage).expect("start");
    let port = broker.record.port;
    broker.kill().expect("kill");
    assert!(!pid_alive(broker.record.pid));
    broker.restart().expect("restart");
    assert_eq!(broker.record.port, port, "restarts on the same port");
    assert!(pid_alive(broker.record.pid));
    broker.stop().expect("stop");
    assert!(afregning_stack::status(&dir).expect("status").is_empty());
}

#[test]
fn a_private_postgres_cluster_starts_answers_and_stops() {
    let (_tmp, dir) = temp_dir();
    let url = afregning_stack::ensure_private_postgres(&dir).expect("private cluster starts");
    let out = Command::new("psql")
        .args([url.as_str(), "-XAtc", "SELECT current_database()"])
        .output()
        .expect("psql");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "afregning");
    let again = afregning_stack::ensure_private_postgres(&dir).expect("reused");
    assert_eq!(url, again);
    let stopped = afregning_stack::stop(&dir).expect("stop");
    assert_eq!(stopped.len(), 1);
    let out = Command::new("psql")
        .args([url.as_str(), "-XAtc", "SELECT 1"])
        .output()
        .expect("psql");
    assert!(
        !out.status.success(),
        "the cluster no longer answers after stop"
    );
}
