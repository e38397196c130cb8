//! The demo's terminal: one line per stage, and while a stage runs a live
//! line (a bar where the stage knows its total, a spinner where it does not)
//! that it replaces with what the stage did. Log lines go to a file, never
//! here. Off a terminal (tests, CI) only the stage and result lines are
//! printed.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How many stages the demo has, as the stage lines number them.
pub const STAGES: usize = 6;

/// Announces stage `number` and returns its live line (a spinner).
pub fn stage(number: usize, what: &str) -> ProgressBar {
    eprintln!("==> [{number}/{STAGES}] {what}");
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("    {spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Turns a stage's live line into a bar counting `unit` up to `total`.
pub fn count_to(bar: &ProgressBar, total: u64, unit: &str) {
    bar.set_length(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "    [{{bar:30}}] {{pos}}/{{len}} {unit} {{elapsed:>4}} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
}

/// Ends a stage's live line and leaves `lines` (what it did) in its place.
pub fn done(bar: &ProgressBar, lines: &[String]) {
    bar.finish_and_clear();
    for line in lines {
        eprintln!("    {line}");
    }
}
