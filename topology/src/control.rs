//! The names of the control topics, which sit beside the dataflow catalogue:
//! they carry JSON control records rather than the pipeline's Avro records,
//! every processor instance reads and writes them, and the runtime creates
//! them (one partition each, decision 0090). Named here so topic names stay
//! in this crate only.

/// The replay request topic of the deployment under `prefix`: written by
/// `afregning replay`, followed by every processor instance.
pub fn replay_requests(prefix: &str) -> String {
    format!("{prefix}afregning.control.replay-requests.v1")
}

/// The replay result topic of the deployment under `prefix`: written by the
/// tasks that acted on a request, followed by the CLI.
pub fn replay_results(prefix: &str) -> String {
    format!("{prefix}afregning.control.replay-results.v1")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_names_carry_the_deployment_prefix() {
        assert_eq!(
            super::replay_requests("t1."),
            "t1.afregning.control.replay-requests.v1"
        );
        assert_eq!(
            super::replay_results(""),
            "afregning.control.replay-results.v1"
        );
    }
}
