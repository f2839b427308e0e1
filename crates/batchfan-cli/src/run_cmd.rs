//! `batchfan run --local`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use batchfan::local::{self, Event, LocalOptions};
use batchfan::size::format_size;
use batchfan::status::count_of;
use batchfan::uri::Location;
use batchfan::{Client, Error, limits};

use crate::cli::{Format, RunArgs, run_spec};
use crate::{code, present};

pub async fn run(client: &Client, args: RunArgs) -> batchfan::Result<ExitCode> {
    if !args.local {
        return Err(Error::option(
            "--local",
            "absent",
            "`batchfan run` runs on this machine and needs --local; use `batchfan submit` for AWS Batch",
        ));
    }
    // Everything the user gave is checked before anything is listed or written.
    let spec = run_spec(&args.plan, &args.out)?;
    spec.options.validate()?;
    let program = local::resolve_program(&args.command[0])?;
    let parallel = args.parallel.unwrap_or_else(local::default_parallel);
    limits::check_positive("--parallel", parallel as u64, None)?;
    limits::check_positive("--attempts", u64::from(args.attempts), Some(u64::from(*limits::ATTEMPTS.end())))?;

    let (prepared, pending) = if args.resume {
        let resumed = batchfan::run::resume_run(client, &spec).await?;
        if args.format == Format::Text {
            eprintln!(
                "resuming run {}: {} of {} without a completion marker",
                resumed.prepared.run_id,
                count_of(resumed.pending.len() as u64, "chunk", "chunks"),
                resumed.prepared.manifest.header().chunk_count
            );
        }
        (resumed.prepared, Some(resumed.pending))
    } else {
        (client.prepare_run(&spec).await?, None)
    };
    let (run_id, manifest_uri) = (&prepared.run_id, &prepared.manifest_uri);
    let header = prepared.manifest.header();

    let log_dir = args.log_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("batchfan").join(run_id));
    let local_options = LocalOptions {
        program,
        args: args.command[1..].to_vec(),
        parallel,
        attempts: args.attempts,
        log_dir,
        stop_deadline: local::default_stop_deadline(),
        chunks: pending,
    };
    if args.format == Format::Text {
        eprintln!(
            "run {run_id}: {} ({}) in {}, {parallel} at a time; manifest {manifest_uri}",
            count_of(header.item_count, "item", "items"),
            format_size(header.total_bytes),
            count_of(header.chunk_count, "chunk", "chunks")
        );
    }
    let bar = present::progress_bar(header.chunk_count);
    let started = Instant::now();
    // Without a terminal (CI, a log file) there is no bar: one line per interval instead.
    let log_lines = !std::io::IsTerminal::is_terminal(&std::io::stderr()) && args.format == Format::Text;
    let last_line = std::sync::Mutex::new(Instant::now());
    let total = header.chunk_count;
    let on_event = {
        let bar = bar.clone();
        let done = std::sync::Mutex::new((0u64, 0u64));
        move |event: &Event| {
            if let Event::Finished { counts, items, bytes, .. } = event {
                let (items, bytes) = {
                    let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
                    done.0 += items;
                    done.1 += bytes;
                    *done
                };
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                let rates = format!(
                    "{} items/s, {}/s",
                    per_second(items as f64 / secs),
                    format_size((bytes as f64 / secs) as u64)
                );
                bar.set_position(counts.terminal());
                bar.set_message(format!(
                    "ok {} failed {} running {} | {rates}",
                    counts.succeeded, counts.failed, counts.running
                ));
                let mut last = last_line.lock().unwrap_or_else(|p| p.into_inner());
                if log_lines && (last.elapsed() >= PROGRESS_INTERVAL || counts.terminal() == total) {
                    *last = Instant::now();
                    eprintln!(
                        "progress: {}/{total} children done ({} ok, {} failed, {} running) after {:.0} s; {rates}",
                        counts.terminal(),
                        counts.succeeded,
                        counts.failed,
                        counts.running,
                        secs
                    );
                }
            }
            if let Event::Retrying { index, attempt, reason } = event {
                bar.println(format!("child {index} attempt {attempt} failed ({reason}); retrying"));
            }
        }
    };
    // The library installs no signal handler: Ctrl-C and SIGTERM are this command's choice. Both
    // stop the children through their own SIGTERM path (a chunk that can finish commits).
    let interrupted = crate::interrupted();
    let summary = client.run_local(&prepared, &local_options, &on_event, interrupted).await;
    bar.finish_and_clear();
    let mut summary = summary?;
    let report =
        batchfan::report::write(client, &summary.run_id, &summary.output, header.chunk_count, &summary.failed).await?;
    summary.report = Some(Location::parse(&report.output)?.join_display(&batchfan::report::report_key(&report.run_id)));
    let wall = started.elapsed();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default()),
        Format::Text => print_summary(&summary, wall),
    }
    Ok(if summary.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(code::WORK_FAILED) })
}

/// How often a run without a terminal logs its progress.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// A rate as people read it: `0.4`, `3.2`, `41`, `1,250`.
fn per_second(rate: f64) -> String {
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

fn print_summary(summary: &local::RunSummary, wall: Duration) {
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
        println!("\nfailed children:\n{}", present::failure_table(&summary.failed));
    }
}
