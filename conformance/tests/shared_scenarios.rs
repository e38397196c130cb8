//! Energinet's wholesale scenarios in `../shared/settlement/data/opengeh-wholesale/scenario_tests/wholesale_calculation/`
//! (read by path): every expected `then/wholesale_results/*.csv` must be reproduced exactly,
//! and a changed expected amount must be reported.

use std::path::{Path, PathBuf};

use afregning_conformance::{find_scenarios, render, run_scenario};

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/settlement/data/opengeh-wholesale/scenario_tests/wholesale_calculation")
}

fn check(name: &str) {
    let report = run_scenario(&scenarios_dir().join(name)).expect("scenario runs");
    assert!(!report.files.is_empty(), "{name} has no expected files");
    assert!(report.matches(), "{}", render(&report));
}

#[test]
fn minimal_standard_wholesale_scenario_matches() {
    check("given_minimal_standard_wholesale_scenario");
}

#[test]
fn calculation_covers_multiple_grid_areas_matches() {
    check("given_calculation_covers_multiple_ga");
}

#[test]
fn extra_fees_or_subscriptions_are_added_matches() {
    check("given_extra_fees_or_subscriptions_are_added");
}

#[test]
fn the_parent_folder_yields_every_scenario() {
    let found = find_scenarios(&scenarios_dir()).expect("finds");
    assert_eq!(found.len(), 3);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

#[test]
fn a_changed_expected_amount_is_a_diff() {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join("scenario");
    copy_dir(
        &scenarios_dir().join("given_minimal_standard_wholesale_scenario"),
        &dir,
    );
    let file = dir.join("then/wholesale_results/total_monthly_amounts_per_es.csv");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains("10324.530662"));
    std::fs::write(&file, text.replace("10324.530662", "10324.530663")).expect("write");
    let report = run_scenario(&dir).expect("runs");
    assert!(!report.matches());
    let rendered = render(&report);
    assert!(
        rendered.contains("- ") && rendered.contains("10324.530663"),
        "{rendered}"
    );
    assert!(
        rendered.contains("+ ") && rendered.contains("10324.530662"),
        "{rendered}"
    );
    assert_eq!(report.files.iter().filter(|f| !f.matches()).count(), 1);
}
