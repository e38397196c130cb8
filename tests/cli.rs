//! The operator binary's command surface: every subcommand the issues promise
//! exists and answers `--help`.

use std::process::Command;

const SUBCOMMANDS: &[&str] = &[
    "topology",
    "connect",
    "process",
    "sink",
    "replay",
    "api",
    "simulate",
    "demo",
    "cim",
    "conformance",
    "schema-registry",
    "prices",
];

fn afregning(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_afregning"))
        .args(args)
        .output()
        .expect("run afregning")
}

#[test]
fn help_lists_every_subcommand() {
    let out = afregning(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in SUBCOMMANDS {
        assert!(
            help.contains(sub),
            "`afregning --help` does not list {sub}:\n{help}"
        );
    }
}

#[test]
fn every_subcommand_has_help() {
    for sub in SUBCOMMANDS {
        let out = afregning(&[sub, "--help"]);
        assert!(
            out.status.success(),
            "`afregning {sub} --help` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.stdout.is_empty(),
            "`afregning {sub} --help` printed nothing"
        );
    }
}

#[test]
fn an_unknown_subcommand_is_an_error() {
    let out = afregning(&["settle-everything"]);
    assert!(!out.status.success());
}
