//! Printing: plan summaries, run summaries, failure tables.

use std::io::IsTerminal;
use std::time::Duration;

use batchfan::plan::Plan;
use batchfan::size::format_size;
use batchfan::status::FailedChild;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// A plan as JSON: totals and one entry per chunk.
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    let chunks: Vec<_> = plan
        .chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let items = plan.chunk_items(i);
            json!({
                "index": i,
                "items": c.count,
                "bytes": c.bytes,
                "first_key": items.first().map(|it| it.key.as_str()),
                "last_key": items.last().map(|it| it.key.as_str()),
            })
        })
        .collect();
    json!({
        "input": plan.input.to_string(),
        "objects_listed": plan.listed,
        "objects": plan.objects,
        "items": plan.items.len(),
        "bytes": plan.total_bytes(),
        "chunk_count": plan.chunks.len(),
        "split_bytes": plan.split_bytes,
        "kept_whole_compressed": plan.kept_whole_compressed,
        "arrays": arrays_needed(plan),
        "chunks": chunks,
    })
}

/// A plan for people.
pub fn plan_text(plan: &Plan) -> String {
    let mut sizes: Vec<u64> = plan.chunks.iter().map(|c| c.bytes).collect();
    sizes.sort_unstable();
    let pick = |q: usize| sizes.get((sizes.len().saturating_sub(1)) * q / 100).copied().unwrap_or(0);
    let counts: Vec<usize> = plan.chunks.iter().map(|c| c.count).collect();
    format!(
        "input:   {}\nobjects: {} listed, {} kept\nitems:   {} ({})\nchunks:  {} (bytes per chunk min {} / median {} / max {}; items per chunk max {})",
        plan.input,
        plan.listed,
        plan.objects,
        plan.items.len(),
        format_size(plan.total_bytes()),
        plan.chunks.len(),
        format_size(pick(0)),
        format_size(pick(50)),
        format_size(pick(100)),
        counts.iter().max().copied().unwrap_or(0),
    ) + &kept_whole_text(plan)
        + &match arrays_needed(plan) {
            1 => String::new(),
            n => format!(
                "\narrays:  {n} (AWS Batch arrays hold at most 10,000 children; submit sends {n} and tracks them as one run)"
            ),
        }
}

/// AWS Batch array jobs a submit of this plan needs (10,000 children each).
pub fn arrays_needed(plan: &Plan) -> usize {
    plan.chunks.len().div_ceil(batchfan::limits::MAX_ARRAY_SIZE).max(1)
}

/// The line saying which objects `--split-bytes` left whole, and why; empty when none.
pub fn kept_whole_text(plan: &Plan) -> String {
    match (plan.kept_whole_compressed, plan.split_bytes) {
        (0, _) | (_, None) => String::new(),
        (n, Some(split)) => format!(
            "\nwhole:   {n} compressed object{} over {} kept whole (a byte range of a compressed object cannot be decompressed alone)",
            if n == 1 { "" } else { "s" },
            format_size(split)
        ),
    }
}

/// Failed children as an aligned table.
pub fn failure_table(failed: &[FailedChild]) -> String {
    let mut out = format!("{:>6}  {:>8}  {:>4}  {:<50}  {}\n", "INDEX", "ATTEMPTS", "EXIT", "REASON", "LOG");
    for f in failed {
        let exit = f.exit_code.map_or("-".to_string(), |c| c.to_string());
        out.push_str(&format!("{:>6}  {:>8}  {:>4}  {:<50}  {}\n", f.index, f.attempts, exit, f.reason, f.log));
    }
    out
}

/// Without a terminal (CI, a log file) progress bars are hidden: this logs a line to stderr at
/// most every 10 s instead (never for JSON output, nor on a terminal).
pub fn log_line_every(format: crate::cli::Format) -> impl Fn(&str) {
    let on = !std::io::stderr().is_terminal() && format == crate::cli::Format::Text;
    let last = std::sync::Mutex::new(None::<std::time::Instant>);
    move |line: &str| {
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        if on && last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *last = Some(std::time::Instant::now());
            eprintln!("progress: {line}");
        }
    }
}

/// A progress bar over `len` children on stderr, hidden when stderr is not a terminal.
pub fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} children  {msg}  ({per_sec}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
