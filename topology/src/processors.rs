//! The stateful processors of the dataflow, each declared once: its
//! input topics (the primary, which the consumer group balances, first), the
//! compacted topics it reads whole as global tables, and the topics it
//! writes. Its state stores are the [`STORES`] rows of the same processor.
//!
//! Everything else is derived from these rows or checked against them: the
//! topics' writers and readers (which draw the README diagram and decide
//! co-partitioning) by this module's tests, each processor's
//! `Processor::input_topics`, `global_tables` and `stores` by the processors
//! crate's `declaration` test, and what a processor actually writes by the
//! golden tests.

use crate::catalogue::{Component, STORES, StoreSpec, TopicId};

/// One processor's place in the dataflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessorSpec {
    /// Which processor.
    pub component: Component,
    /// Input topics, primary first; all co-partitioned with the primary.
    pub inputs: &'static [TopicId],
    /// Topics read whole on every instance (not partitioned): compacted tables, or an
    /// event log kept forever whose every record is kept (the portfolio's events, decision
    /// 0140).
    pub global_tables: &'static [TopicId],
    /// Topics it writes.
    pub outputs: &'static [TopicId],
    /// What it does, for `topology describe`.
    pub doc: &'static str,
}

impl ProcessorSpec {
    /// The topic whose partitions are the processor's tasks.
    pub fn primary(&self) -> TopicId {
        self.inputs[0]
    }

    /// Its state stores (declared in [`STORES`]).
    pub fn stores(&self) -> impl Iterator<Item = &'static StoreSpec> + use<> {
        let component = self.component;
        STORES.iter().filter(move |s| s.processor == component)
    }
}

/// The processors, in data-flow order.
pub const PROCESSORS: &[ProcessorSpec] = &[
    ProcessorSpec {
        component: Component::Validate,
        inputs: &[
            TopicId::TimeseriesRaw,
            TopicId::AggregationsRaw,
            TopicId::MasterdataRaw,
            TopicId::ChargesRaw,
        ],
        global_tables: &[],
        outputs: &[
            TopicId::Readings,
            TopicId::MeteringPoints,
            TopicId::Charges,
            TopicId::ChargePrices,
            TopicId::ChargeLinks,
            TopicId::WholesaleResults,
            TopicId::PortfolioCommands,
            TopicId::DeadLetters,
        ],
        doc: "Raw DataHub documents to typed topics (DataHub's answers and notifications of portfolio processes as portfolio commands); dead letters with reasons.",
    },
    ProcessorSpec {
        component: Component::Enrich,
        inputs: &[TopicId::Readings, TopicId::MeteringPoints],
        global_tables: &[],
        outputs: &[TopicId::EnrichedReadings, TopicId::DeadLetters],
        doc: "Readings joined with master data, partitioned by grid area.",
    },
    ProcessorSpec {
        component: Component::Aggregate,
        inputs: &[TopicId::EnrichedReadings],
        global_tables: &[TopicId::SpotPrices],
        outputs: &[TopicId::DailyAggregates, TopicId::DeadLetters],
        doc: "Per metering point and local day: positions, tariff periods, spot cost, completeness.",
    },
    ProcessorSpec {
        component: Component::Settle,
        inputs: &[TopicId::EnrichedReadings],
        global_tables: &[
            TopicId::Charges,
            TopicId::ChargePrices,
            TopicId::ChargeLinks,
            TopicId::SpotPrices,
            TopicId::Products,
            TopicId::PortfolioEvents,
        ],
        outputs: &[
            TopicId::ProvisionalSettlements,
            TopicId::SettlementStatements,
            TopicId::DeadLetters,
        ],
        doc: "Per metering point and month: provisional lines, final statements, credit notes.",
    },
    ProcessorSpec {
        component: Component::Reconcile,
        inputs: &[TopicId::WholesaleResults, TopicId::EnrichedReadings],
        global_tables: &[
            TopicId::Charges,
            TopicId::ChargePrices,
            TopicId::ChargeLinks,
        ],
        outputs: &[TopicId::Discrepancies, TopicId::DeadLetters],
        doc: "Per grid area and month: our settlement at DataHub's granularity against DataHub's wholesale results in force; every difference published.",
    },
    ProcessorSpec {
        component: Component::Portfolio,
        inputs: &[TopicId::PortfolioCommands],
        global_tables: &[],
        outputs: &[
            TopicId::PortfolioEvents,
            TopicId::OutboundRequests,
            TopicId::DeadLetters,
        ],
        doc: "Requests, answers and notifications decided per metering point into portfolio events; our requests out to DataHub (decision 0145).",
    },
];

/// The declaration of `component`, if it is a processor.
pub fn processor(component: Component) -> Option<&'static ProcessorSpec> {
    PROCESSORS.iter().find(|p| p.component == component)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{Catalogue, TopicSpec, TopologySettings};

    fn catalogue() -> Catalogue {
        Catalogue::new(TopologySettings::default()).expect("catalogue")
    }

    #[test]
    fn every_topic_names_exactly_the_processors_declared_to_read_and_write_it() {
        let catalogue = catalogue();
        // Changelogs are the processor's own (from its stores), not dataflow.
        let topics_where = |role: fn(&TopicSpec) -> &Vec<Component>, c: Component| {
            catalogue
                .topics()
                .iter()
                .filter(|t| role(t).contains(&c) && !matches!(t.id, TopicId::Changelog(_)))
                .map(|t| t.id)
                .collect::<BTreeSet<TopicId>>()
        };
        for p in PROCESSORS {
            let reads = topics_where(|t| &t.readers, p.component);
            let writes = topics_where(|t| &t.writers, p.component);
            let declared_reads: BTreeSet<TopicId> =
                p.inputs.iter().chain(p.global_tables).copied().collect();
            let declared_writes: BTreeSet<TopicId> = p.outputs.iter().copied().collect();
            assert_eq!(reads, declared_reads, "{}: topics read", p.component);
            assert_eq!(writes, declared_writes, "{}: topics written", p.component);
        }
    }

    #[test]
    fn every_processor_output_but_the_dead_letters_has_one_writer() {
        let catalogue = catalogue();
        for p in PROCESSORS {
            // Inboxes have several writers by design: each record is a request or command
            // of its own, not a version of a result another writer could reorder.
            let inbox = |t: &TopicId| {
                matches!(
                    t,
                    TopicId::DeadLetters | TopicId::OutboundRequests | TopicId::PortfolioCommands
                )
            };
            for output in p.outputs.iter().filter(|t| !inbox(t)) {
                let spec = catalogue.spec(*output).expect("a fixed topic");
                assert_eq!(
                    spec.writers,
                    [p.component],
                    "{} has writers {:?}: one writer per output keeps its versions in order",
                    spec.name,
                    spec.writers
                );
            }
        }
    }

    #[test]
    fn every_processor_component_is_declared_once_and_in_data_flow_order() {
        let declared: Vec<Component> = PROCESSORS.iter().map(|p| p.component).collect();
        assert_eq!(
            declared,
            [
                Component::Validate,
                Component::Enrich,
                Component::Aggregate,
                Component::Settle,
                Component::Reconcile,
                Component::Portfolio
            ]
        );
        for store in STORES {
            assert!(
                processor(store.processor).is_some(),
                "store {} of an undeclared processor {}",
                store.store,
                store.processor
            );
        }
    }

    #[test]
    fn a_store_follows_its_processors_primary_input() {
        for p in PROCESSORS {
            for store in p.stores() {
                assert!(
                    store.inputs.iter().all(|t| p.inputs.contains(t)),
                    "{}.{} follows a topic that is not an input",
                    p.component,
                    store.store
                );
                assert!(
                    store.inputs.contains(&p.primary()) || store.inputs.len() == 1,
                    "{}.{}",
                    p.component,
                    store.store
                );
            }
        }
    }

    #[test]
    fn global_tables_are_compacted_tables_or_logs_kept_forever_and_not_inputs() {
        let catalogue = catalogue();
        for p in PROCESSORS {
            for table in p.global_tables {
                let spec = catalogue.spec(*table).expect("a fixed topic");
                // A log read whole must hold every record it ever had.
                assert!(
                    spec.cleanup_policy() == crate::catalogue::CleanupPolicy::Compact
                        || spec.retention == crate::catalogue::Retention::Forever,
                    "{}: global table {} is neither compacted nor kept forever",
                    p.component,
                    spec.name
                );
                assert!(!p.inputs.contains(table));
            }
        }
    }
}
