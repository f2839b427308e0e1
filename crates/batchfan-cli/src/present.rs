//! Printing: plan summaries, run summaries, failure tables.

use std::io::IsTerminal;
use std::time::Duration;

use batchfan::Plan;
use batchfan::local::RunSummary;
use batchfan::run::{Run, RunStatus};
use batchfan::size::count_of;
use batchfan::size::format_size;
use batchfan::status::{ChunkFailure, StatusDetail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// A plan as JSON: totals and one entry per chunk.
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    let chunks: Vec<_> = plan
        .chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // Keys read in place: a chunk of millions of items is not copied to show two.
            let key = |at: usize| (c.count > 0).then(|| plan.items.key(at));
            json!({
                "index": i,
                "items": c.count,
                "bytes": c.bytes,
                "first_key": key(c.first),
                "last_key": key(c.first + c.count.saturating_sub(1)),
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
        "left_out_unmodified": plan.left_out_unmodified,
        "left_out_done": plan.left_out_done,
        "source": plan.source.name(),
        "inventory": match &plan.source {
            batchfan::plan::Source::Inventory(stats) => json!({
                "manifest": stats.manifest,
                "format": stats.format,
                "created_ms": stats.created_ms,
                "files": stats.files,
                "rows": stats.rows,
                "skipped": {
                    "not_latest": stats.skipped_not_latest,
                    "delete_marker": stats.skipped_delete_markers,
                    "outside_prefix": stats.skipped_outside_prefix,
                },
            }),
            _ => serde_json::Value::Null,
        },
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
        + &left_out_text(plan)
        + &inventory_text(plan)
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

/// The line saying which objects `--modified-after` and `--skip-done` left out; empty when none.
pub fn left_out_text(plan: &Plan) -> String {
    let mut why = Vec::new();
    if plan.left_out_unmodified > 0 {
        why.push(format!("{} not modified after --modified-after", plan.left_out_unmodified));
    }
    if plan.left_out_done > 0 {
        why.push(format!("{} already committed (--skip-done)", plan.left_out_done));
    }
    if why.is_empty() { String::new() } else { format!("\nleft out: {}", why.join(", ")) }
}

/// The line saying which inventory the objects came from and which rows it skipped; empty for
/// a listing.
pub fn inventory_text(plan: &Plan) -> String {
    let batchfan::plan::Source::Inventory(stats) = &plan.source else { return String::new() };
    format!(
        "\nsource:  inventory {} ({}, {} files, {} rows; skipped {} not latest, {} delete markers, {} outside --input)",
        stats.manifest,
        stats.format,
        stats.files,
        stats.rows,
        stats.skipped_not_latest,
        stats.skipped_delete_markers,
        stats.skipped_outside_prefix
    )
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

/// Failed children as an aligned table: a reason longer than its column is cut with an
/// ellipsis (the whole reason is in the run report and `--format json`).
pub fn failure_table(failed: &[ChunkFailure]) -> String {
    const REASON: usize = 60;
    let mut out = format!("{:>6}  {:>8}  {:>4}  {:<REASON$}  {}\n", "INDEX", "ATTEMPTS", "EXIT", "REASON", "LOG");
    for f in failed {
        let exit = f.exit_code.map_or("-".to_string(), |c| c.to_string());
        let one_line = f.reason.replace(['\n', '\r'], " ");
        let reason = if one_line.chars().count() > REASON {
            format!("{}…", one_line.chars().take(REASON - 1).collect::<String>())
        } else {
            one_line
        };
        out.push_str(&format!("{:>6}  {:>8}  {:>4}  {reason:<REASON$}  {}\n", f.index, f.attempts, exit, f.log));
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
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} children  {msg}  (eta {eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A value as one JSON document on stdout.
pub fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// A rate as people read it: `0.4`, `3.2`, `41`, `1,250`.
pub fn per_second(rate: f64) -> String {
    if rate < 10.0 {
        format!("{rate:.1}")
    } else {
        let n = rate.round() as u64;
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }
}

/// A run's status as JSON: the status, where the run is, and its report.
pub fn status_json(run: &Run, status: &RunStatus) -> serde_json::Value {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    let record = run.record();
    if let Some(map) = value.as_object_mut() {
        map.insert("record_uri".into(), json!(record.record_uri));
        map.insert("manifest".into(), json!(record.manifest));
        map.insert("output".into(), json!(record.output));
    }
    value
}

/// A run's status for people: one line of counts, what its executor adds, the failures.
pub fn status_text(status: &RunStatus) -> String {
    let mut out = String::new();
    let progress = if status.complete { "" } else { " - in progress" };
    match &status.detail {
        StatusDetail::Batch { arrays, disagreement } => {
            let c = &status.counts;
            out += &format!(
                "run {}: {} of {} children finished ({} succeeded, {} failed; {} running, {} runnable, {} waiting){progress}\n",
                status.run_id,
                c.terminal(),
                c.total(),
                c.succeeded,
                c.failed,
                c.running + c.starting,
                c.runnable,
                c.submitted + c.pending,
            );
            out +=
                &format!("committed: {} of {} chunks have a completion marker\n", status.committed, status.chunk_count);
            if let Some(disagreement) = disagreement {
                out += &format!("warning: {disagreement}\n");
            }
            for a in arrays {
                let kind = match (a.redrive, a.lane) {
                    (0, None) => "array".to_string(),
                    (0, Some(n)) => format!("lane {n}"),
                    (r, None) => format!("redrive {r}"),
                    (r, Some(n)) => format!("r{r} lane {n}"),
                };
                out += &format!(
                    "  {}  {:<10} {:<10} {}/{} done\n",
                    a.job_id,
                    kind,
                    a.status,
                    a.counts.terminal(),
                    a.counts.total()
                );
            }
        }
        StatusDetail::Queue { queue, dead_letter_queue, dead_lettered } => {
            out += &format!(
                "run {} (queue): {} of {} committed, {} dead-lettered, {} pending{progress}\n",
                status.run_id,
                status.committed,
                count_of(status.chunk_count, "chunk", "chunks"),
                dead_lettered.len(),
                status.pending,
            );
            out += &format!(
                "  queue: {} visible, {} in flight, {} delayed\n",
                queue.visible, queue.in_flight, queue.delayed
            );
            if let Some(d) = dead_letter_queue {
                out += &format!("  dead-letter queue: {} messages (all runs)\n", d.total());
            }
        }
        StatusDetail::Local { running_in } => {
            out += &format!(
                "run {} (local): {} of {} committed, {} failed, {} not committed{}\n",
                status.run_id,
                status.committed,
                count_of(status.chunk_count, "chunk", "chunks"),
                status.failed.len(),
                status.not_committed.len(),
                running_in.as_ref().map_or(String::new(), |p| format!(" - running in process {p}"))
            );
        }
        other => out += &format!("run {}: {other:?}\n", status.run_id),
    }
    if !status.not_committed.is_empty() {
        out += &format!(
            "not committed: {} ended without a completion marker (a child that exited without committing through the harness, or whose output changed since): {}; `batchfan redrive {}` runs them again\n",
            count_of(status.not_committed.len() as u64, "chunk", "chunks"),
            chunk_list(&status.not_committed),
            status.run_id
        );
    }
    if !status.failed.is_empty() {
        let what = if matches!(status.detail, StatusDetail::Queue { .. }) {
            "dead-lettered chunks"
        } else {
            "failed children"
        };
        out += &format!("\n{what}:\n{}", failure_table(&status.failed));
    }
    out
}

/// Chunk indices for a message: all of them up to 20, else the first 20 and how many more.
pub fn chunk_list(chunks: &[u64]) -> String {
    let shown: Vec<String> = chunks.iter().take(20).map(u64::to_string).collect();
    match chunks.len() {
        0..=20 => shown.join(", "),
        n => format!("{}, and {} more", shown.join(", "), n - 20),
    }
}

/// The summary of local children that ran (`run --local`, a local redrive).
pub fn print_summary(summary: &RunSummary, wall: Duration) {
    let secs = wall.as_secs_f64().max(1e-9);
    let c = &summary.counts;
    println!(
        "run {}: {}, {} succeeded, {} failed",
        summary.run_id,
        count_of(c.total(), "child", "children"),
        c.succeeded,
        c.failed
    );
    println!(
        "items {} ({}) in {:.2} s: {} items/s, {}/s",
        summary.items,
        format_size(summary.bytes),
        secs,
        per_second(summary.items as f64 / secs),
        format_size((summary.bytes as f64 / secs) as u64)
    );
    println!("output:   {}", summary.output);
    println!("manifest: {}", summary.manifest);
    println!("logs:     {}", summary.log_dir);
    if let Some(report) = &summary.report {
        println!("report:   {report}");
    }
    if !summary.failed.is_empty() {
        println!("\nfailed children:\n{}", failure_table(&summary.failed));
    }
}

/// Progress of local children on a bar (and, without a terminal, a line every 10 s): what
/// `run --local` and a local redrive show.
pub fn local_progress(
    format: crate::cli::Format,
    parallel: usize,
) -> (ProgressBar, impl Fn(&batchfan::local::Event) + Send + Sync) {
    use batchfan::local::Event;
    let bar = progress_bar(0);
    let started = std::time::Instant::now();
    let log_line = log_line_every(format);
    let done = std::sync::Mutex::new((0u64, 0u64, 0u64));
    let shown = bar.clone();
    let on_event = move |event: &Event| match event {
        Event::Planned { run_id, manifest, items, bytes, chunks, to_run, resumed } => {
            shown.set_length(*to_run);
            done.lock().unwrap_or_else(|p| p.into_inner()).2 = *to_run;
            if format == crate::cli::Format::Text {
                if *resumed {
                    say(
                        &shown,
                        format!(
                            "resuming run {run_id}: {} of {chunks} without a completion marker",
                            count_of(*to_run, "chunk", "chunks")
                        ),
                    );
                }
                say(
                    &shown,
                    format!(
                        "run {run_id}: {} ({}) in {}, {parallel} at a time; manifest {manifest}",
                        count_of(*items, "item", "items"),
                        format_size(*bytes),
                        count_of(*chunks, "chunk", "chunks")
                    ),
                );
            }
        }
        Event::Finished { counts, items, bytes, .. } => {
            let (items, bytes, total) = {
                let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
                done.0 += items;
                done.1 += bytes;
                *done
            };
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            let rates =
                format!("{} items/s, {}/s", per_second(items as f64 / secs), format_size((bytes as f64 / secs) as u64));
            shown.set_position(counts.terminal());
            shown.set_message(format!(
                "ok {} failed {} running {} | {rates}",
                counts.succeeded, counts.failed, counts.running
            ));
            log_line(&format!(
                "{}/{total} children done ({} ok, {} failed, {} running) after {:.0} s; {rates}",
                counts.terminal(),
                counts.succeeded,
                counts.failed,
                counts.running,
                secs
            ));
        }
        Event::Retrying { index, attempt, reason } => {
            say(&shown, format!("child {index} attempt {attempt} failed ({reason}); retrying"));
        }
        _ => {}
    };
    (bar, on_event)
}

/// A line on stderr above the bar (or alone, without a terminal).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// The failure exit code when `failed` holds.
pub fn exit_if(failed: bool) -> std::process::ExitCode {
    if failed {
        std::process::ExitCode::from(batchfan::contract::cli_exit::WORK_FAILED)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// Prints a run's status and report.
pub fn print_status(run: &Run, status: &batchfan::RunStatus, format: crate::cli::Format) {
    match format {
        crate::cli::Format::Json => print_json(&status_json(run, status)),
        crate::cli::Format::Text => print!("{}", status_text(status)),
    }
}

/// `--tolerated-failure-*` and `--interval` as wait options (checked).
pub fn wait_options(t: &crate::cli::ToleranceArgs) -> batchfan::Result<batchfan::WaitOptions> {
    if !(0.0..=100.0).contains(&t.tolerated_failure_percent) {
        return Err(batchfan::Error::option(
            "--tolerated-failure-percent",
            t.tolerated_failure_percent,
            "between 0 and 100",
        ));
    }
    if !(t.interval.is_finite() && t.interval > 0.0) {
        return Err(batchfan::Error::option("--interval", t.interval, "a positive number of seconds"));
    }
    let mut options = batchfan::WaitOptions::default();
    options.interval = Duration::from_secs_f64(t.interval);
    options.tolerated_failure_count = t.tolerated_failure_count;
    options.tolerated_failure_percent = t.tolerated_failure_percent;
    Ok(options)
}

/// Waits for a run with a progress bar, prints its status; exit 0 when it succeeded within the
/// tolerance, 1 when not (or when `--timeout` ran out).
pub async fn wait_for(
    run: &Run,
    mut options: batchfan::WaitOptions,
    format: crate::cli::Format,
) -> batchfan::Result<std::process::ExitCode> {
    let bar = progress_bar(run.record().chunk_count);
    let log_line = log_line_every(format);
    let shown = bar.clone();
    options.on_progress = Some(std::sync::Arc::new(move |s: &batchfan::RunStatus| {
        let done = s.committed + s.failed.len() as u64 + s.counts.failed.min(s.chunk_count);
        let message = match s.kind {
            batchfan::RunKind::Queue => format!("committed {} dead-lettered {}", s.committed, s.counts.failed),
            _ => format!(
                "committed {} failed {} running {} runnable {}",
                s.committed,
                s.counts.failed,
                s.counts.running + s.counts.starting,
                s.counts.runnable
            ),
        };
        log_line(&format!("{} of {} chunks: {message}", done.min(s.chunk_count), s.chunk_count));
        shown.set_position(done.min(s.chunk_count));
        shown.set_message(message);
    }));
    let timeout = options.timeout;
    let status = run.wait(&options).await;
    bar.finish_and_clear();
    let status = status?;
    if !status.complete {
        eprintln!(
            "wait: the run did not finish within --timeout {} s; its counts now:",
            timeout.map_or(0.0, |t| t.as_secs_f64())
        );
    }
    print_status(run, &status, format);
    Ok(exit_if(!status.succeeded(&options)))
}

/// Why a Batch run is not moving, for people: the children RUNNABLE too long with AWS's reason,
/// the queue's compute environments, and what they say.
pub fn stuck_text(stuck: &batchfan::batch::StuckReport) -> String {
    let mut out = format!(
        "not moving: {} RUNNABLE for {} s or more (since submission), asking for {}\n",
        count_of(stuck.stuck, "child", "children"),
        stuck.threshold_seconds,
        stuck.job
    );
    for child in &stuck.examples {
        out += &format!(
            "  {}  waiting {} s  {}\n",
            child.job_id,
            child.waiting_seconds,
            child.status_reason.as_deref().unwrap_or("(no statusReason from AWS Batch yet)")
        );
    }
    out += &format!("job queue {}: compute environments\n", stuck.job_queue);
    for env in &stuck.environments {
        let max = env.max_vcpus.map_or(String::new(), |m| format!(", maxvCpus {m}"));
        let desired = env.desired_vcpus.map_or(String::new(), |d| format!(", desiredvCpus {d}"));
        let types =
            if env.instance_types.is_empty() { String::new() } else { format!(", {}", env.instance_types.join(" ")) };
        out += &format!(
            "  {}  {} {} {} {}{max}{desired}{types}\n",
            env.name,
            env.state,
            env.status,
            env.kind,
            env.resources.as_deref().unwrap_or("")
        );
    }
    if stuck.reasons.is_empty() {
        out += "the environments can run these jobs: they wait for capacity to start (instances launching, other jobs ahead)\n";
    }
    for reason in &stuck.reasons {
        out += &format!("why: {reason}\n");
    }
    out
}

/// A dry run of `submit --max-concurrency`: one line per lane on stderr (the JSON on stdout has
/// them under `lanes`).
pub fn lanes(plan: &batchfan::batch::SubmitPlan) {
    for lane in &plan.lanes {
        eprintln!("{}", lane_text(lane));
    }
}

fn lane_text(lane: &batchfan::batch::Lane) -> String {
    let mut first: Vec<String> = lane.first_chunks.iter().map(u64::to_string).collect();
    if lane.chunk_count > lane.first_chunks.len() as u64 {
        first.push("…".into());
    }
    let order = match &lane.dependency {
        Some(kind) => format!("one after another (dependsOn {kind})"),
        None => "a plain job".into(),
    };
    format!(
        "lane {}: {} [{}], {order}: {}",
        lane.lane,
        count_of(lane.chunk_count, "chunk", "chunks"),
        first.join(", "),
        lane.job_name
    )
}
