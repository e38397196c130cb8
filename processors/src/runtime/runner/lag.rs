//! The driver's lag room: measures each input partition's lag without
//! blocking the loop, and re-seeks a partition that has lag and has made no
//! progress for the stall timeout (a safety net; see `check_lag`).

use super::*;

impl<P: Processor> Driver<P> {
    /// Measures lag and re-seeks partitions that have lag but deliver nothing
    /// (the local broker's lost fetches, LOCAL-BROKER.md).
    ///
    /// Nothing here waits for the broker. The high watermark is the larger of
    /// the one the data consumer's fetch responses reported (librdkafka
    /// statistics) and the last answer of a background ListOffsets probe (one
    /// at a time, off the loop), which backs it up for a partition whose
    /// fetches stopped. Awaiting ListOffsets here blocked the loop a fetch
    /// wait per partition (a broker answers a connection's requests in order,
    /// so each queued behind the data consumer's long-poll fetch): 0.3-1.2 s
    /// per check on the local broker, while fetched records waited undrained
    /// and then looked stalled (docs/processors-runtime.md, issue 13).
    ///
    /// A partition is stalled when it has had lag, and no progress, for the
    /// patience: counted from when the lag was first seen or the last progress,
    /// whichever is later, never from a quiet period before the lag existed
    /// (a record appended to a partition that was quiet for minutes is not a
    /// stall).
    pub(super) async fn check_lag(&mut self) -> Result<(), RuntimeError> {
        self.events
            .state_memory(self.memory.usage_bytes(), self.memory.budget_bytes());
        let mut probes: Vec<(i32, String)> = Vec::new();
        for (task, running) in self.running() {
            probes.extend(running.next_offsets.keys().map(|t| (task, t.clone())));
        }
        if probes.is_empty() {
            return Ok(());
        }
        self.listed_highs
            .probe(self.data.consumer().clone(), probes.clone());
        let known: Vec<(i32, String, i64)> = probes
            .into_iter()
            .filter_map(|(task, topic)| {
                let fetched = self.data.fetched_high(&topic, task);
                let listed = self.listed_highs.get(&topic, task);
                fetched.max(listed).map(|high| (task, topic, high))
            })
            .collect();
        let stall_after = Duration::from_millis(self.config.stall_timeout_ms);
        let now = Instant::now();
        for (task, topic, high) in known {
            let Some(TaskState {
                phase: Phase::Running(running),
            }) = self.tasks.get_mut(&task)
            else {
                continue;
            };
            let Some(next) = running.next_offsets.get(&topic).copied() else {
                continue;
            };
            let lag = (high - next).max(0);
            self.events.lag(&topic, task, lag);
            // A position not yet proven (just assigned, sought or rewound)
            // that stays silent is moved back sooner: the local broker
            // answers a fetch starting inside its last batch with nothing.
            let unverified = running.unverified.get(&topic).copied();
            let patience = if unverified.is_some() {
                stall_after.min(UNVERIFIED_PATIENCE)
            } else {
                stall_after
            };
            if running.observe_lag(&topic, lag, now, patience) {
                let (from, rewind) = match unverified {
                    Some(r) => {
                        let back = (r.from - r.window).max(0);
                        (
                            back,
                            Rewind {
                                from: back,
                                window: r.window.saturating_mul(10),
                            },
                        )
                    }
                    None => (next, Rewind::at(next)),
                };
                self.next_epoch += 1;
                running.epochs.insert(topic.clone(), self.next_epoch);
                running.last_progress.insert(topic.clone(), now);
                running.unverified.insert(topic.clone(), rewind);
                self.data.command(DataCommand::Seek {
                    topic: topic.clone(),
                    partition: task,
                    offset: from,
                    epoch: self.next_epoch,
                });
                self.events.emit(RuntimeEvent::PartitionStalled {
                    topic,
                    partition: task,
                    next_offset: from,
                    high_watermark: high,
                });
            }
        }
        Ok(())
    }
}

/// High watermarks answered by ListOffsets, probed in the background: at
/// most one probe runs at a time and the lag check never waits for it.
#[derive(Clone, Default)]
pub(super) struct ListedHighs {
    highs: Arc<std::sync::Mutex<BTreeMap<(String, i32), i64>>>,
    probing: Arc<AtomicBool>,
    /// The running probe, awaited before the runtime stops (it holds the
    /// data consumer).
    job: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl ListedHighs {
    /// Starts a probe of `partitions` unless one is running.
    pub(super) fn probe(
        &self,
        consumer: Arc<BaseConsumer<crate::runtime::consumer::DataContext>>,
        partitions: Vec<(i32, String)>,
    ) {
        if self.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        let job = tokio::task::spawn_blocking(move || {
            for (task, topic) in partitions {
                if let Ok((_, high)) =
                    consumer.fetch_watermarks(&topic, task, Duration::from_secs(2))
                {
                    this.highs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((topic, task), high);
                }
            }
            this.probing.store(false, Ordering::SeqCst);
        });
        *self.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
    }

    /// Waits for the running probe, if any.
    pub(super) async fn finish(&self) {
        let job = self.job.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(job) = job {
            let _ = job.await;
        }
    }

    /// The last probed high watermark of `topic`/`partition`.
    pub(super) fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.highs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(topic.to_string(), partition))
            .copied()
    }
}
