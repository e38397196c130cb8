//! `describe`: the catalogue as a table and as a Mermaid diagram of which
//! component writes and reads which topic.
//!
//! Generated, never drawn by hand: `docs/topology.md` embeds the output and a
//! test fails when the embedded copy is stale.

use std::fmt::Write as _;

use crate::catalogue::{Catalogue, Component, KeyFormat, TopicKind, TopicSpec, ValueFormat};

fn key_cell(topic: &TopicSpec) -> String {
    match topic.key {
        KeyFormat::Avro(file) => format!("`{}`", file.full_name()),
        KeyFormat::Opaque => "opaque bytes".into(),
    }
}

fn value_cell(topic: &TopicSpec) -> String {
    match topic.value {
        ValueFormat::Avro(file) => format!("`{}`", file.full_name()),
        ValueFormat::RawCimJson => "raw CIM JSON (no subject)".into(),
        ValueFormat::Opaque => "opaque bytes".into(),
    }
}

fn retention_cell(topic: &TopicSpec) -> String {
    if topic.retention_ms < 0 {
        "forever".into()
    } else {
        format!("{} d", topic.retention_ms / 86_400_000)
    }
}

fn components(list: &[Component]) -> String {
    list.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}

/// The catalogue as a Markdown table: name, kind, cleanup policy, partitions,
/// partitioning, retention, key and value schema (subjects are `<topic>-key`
/// and `<topic>-value`), writers and readers.
pub fn table(catalogue: &Catalogue) -> String {
    let mut out = String::new();
    out.push_str(
        "| topic | kind | cleanup | partitions | partitioning | retention | key schema | value schema | writers | readers |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for topic in catalogue.topics() {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            topic.name,
            topic.kind.name(),
            topic.cleanup_policy().as_str(),
            topic.partitions,
            topic.partitioning.name(),
            retention_cell(topic),
            key_cell(topic),
            value_cell(topic),
            components(&topic.writers),
            components(&topic.readers),
        );
    }
    out
}

fn node_id(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The data flow as a Mermaid flowchart: components as rounded boxes, topics
/// as cylinders (tables and changelogs in their own style), an arrow from each
/// writer to the topic and from the topic to each reader. Changelogs are left
/// out unless asked for, because each is written and read by one processor and
/// would double the picture.
pub fn mermaid(catalogue: &Catalogue, include_changelogs: bool) -> String {
    let mut out = String::from("flowchart LR\n");
    let topics: Vec<&TopicSpec> = catalogue
        .topics()
        .iter()
        .filter(|t| include_changelogs || t.kind != TopicKind::Changelog)
        .collect();
    for component in Component::ALL {
        let _ = writeln!(
            out,
            "    {}([{}])",
            node_id(component.name()),
            component.name()
        );
    }
    for topic in &topics {
        let _ = writeln!(out, "    {}[(\"{}\")]", node_id(&topic.name), topic.name);
    }
    for topic in &topics {
        let id = node_id(&topic.name);
        for writer in &topic.writers {
            let _ = writeln!(out, "    {} --> {id}", node_id(writer.name()));
        }
        for reader in &topic.readers {
            let _ = writeln!(out, "    {id} --> {}", node_id(reader.name()));
        }
    }
    for (kind, class, style) in [
        (TopicKind::Raw, "raw", "fill:#fde2c8,stroke:#b5651d"),
        (TopicKind::Table, "table", "fill:#d6eaf8,stroke:#2e86c1"),
        (TopicKind::Changelog, "store", "fill:#eeeeee,stroke:#888888"),
    ] {
        let ids: Vec<String> = topics
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| node_id(&t.name))
            .collect();
        if !ids.is_empty() {
            let _ = writeln!(out, "    classDef {class} {style}");
            let _ = writeln!(out, "    class {} {class}", ids.join(","));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::catalogue::Catalogue;

    #[test]
    fn the_table_lists_every_topic_once() {
        let catalogue = Catalogue::default_settings();
        let table = table(&catalogue);
        for topic in catalogue.topics() {
            assert_eq!(
                table.matches(&format!("| `{}` |", topic.name)).count(),
                1,
                "{}",
                topic.name
            );
        }
    }

    #[test]
    fn the_diagram_has_an_edge_for_every_writer_and_reader() {
        let catalogue = Catalogue::default_settings();
        let diagram = mermaid(&catalogue, true);
        for topic in catalogue.topics() {
            let id = node_id(&topic.name);
            for writer in &topic.writers {
                assert!(diagram.contains(&format!("{} --> {id}\n", node_id(writer.name()))));
            }
            for reader in &topic.readers {
                assert!(diagram.contains(&format!("{id} --> {}\n", node_id(reader.name()))));
            }
        }
        assert!(!mermaid(&catalogue, false).contains("changelog"));
    }

    /// `docs/topology.md` embeds the generated table and diagram; this fails
    /// when they are stale, so the docs cannot drift from the code. Regenerate
    /// with `afregning topology describe --format markdown`.
    #[test]
    fn the_docs_embed_the_current_table_and_diagram() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/topology.md");
        let docs = std::fs::read_to_string(&path).expect("docs/topology.md exists");
        let catalogue = Catalogue::default_settings();
        assert!(
            docs.contains(&mermaid(&catalogue, false)),
            "docs/topology.md has a stale diagram: paste the output of `afregning topology describe --format mermaid`"
        );
        assert!(
            docs.contains(&table(&catalogue)),
            "docs/topology.md has a stale table: paste the output of `afregning topology describe --format table`"
        );
        assert_eq!(
            catalogue.unknown_topic_mentions(&docs),
            Vec::<String>::new()
        );
    }
}
