//! Topic names live in `afregning-topology` only: production code elsewhere
//! must not spell one (`afregning.<domain>.<entity>.v<N>`), and the compose
//! file and README may only name topics the catalogue has.
//!
//! Scope, so the rule is enforceable without parsing Rust: every `.rs` file
//! under another crate's `src/` (and the binary's `src/`), up to its first
//! `#[cfg(test)]`, skipping unit-test modules in their own `tests.rs` or
//! `testdata.rs`; tests may build names for throwaway topics. Format strings
//! such as `"{prefix}afregning.{processor}..."` are not names and do not match.

use std::path::{Path, PathBuf};

use afregning_topology::catalogue::{Catalogue, topic_mentions};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            // Unit-test modules kept in their own file (`#[cfg(test)] mod tests;`).
            && !path
                .file_name()
                .is_some_and(|n| n == "tests.rs" || n == "testdata.rs")
        {
            out.push(path);
        }
    }
}

#[test]
fn no_production_code_outside_topology_spells_a_topic_name() {
    let root = workspace_root();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&root).expect("workspace root").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "topology" || name == "target" || name.starts_with('.') {
            continue;
        }
        if name == "src" {
            rust_files(&entry.path(), &mut files);
        } else if entry.path().join("Cargo.toml").exists() {
            rust_files(&entry.path().join("src"), &mut files);
        }
    }
    assert!(!files.is_empty(), "found the other crates' sources");
    let mut offenders = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let production = text.split("#[cfg(test)]").next().unwrap_or_default();
        for mention in topic_mentions(production) {
            offenders.push(format!(
                "{}: {mention}",
                file.strip_prefix(&root).unwrap_or(&file).display()
            ));
        }
    }
    assert!(
        offenders.is_empty(),
        "topic names spelled outside afregning-topology (use afregning_topology::topics or Catalogue): {offenders:#?}"
    );
}

#[test]
fn compose_file_and_readme_name_only_catalogue_topics() {
    let catalogue = Catalogue::default_settings();
    for file in ["docker-compose.yml", "README.md", "docs/topology.md"] {
        let Ok(text) = std::fs::read_to_string(workspace_root().join(file)) else {
            continue; // not written yet
        };
        assert_eq!(
            catalogue.unknown_topic_mentions(&text),
            Vec::<String>::new(),
            "{file} names topics the catalogue does not have"
        );
    }
}
