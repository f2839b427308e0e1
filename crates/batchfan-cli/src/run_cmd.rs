//! `batchfan run --local`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use batchfan::local::{self, Event, LocalOptions, LocalRunRecord};
use batchfan::report::ChunkStatus;
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

    // The log folder is checked before the claim and the manifest: a bad one is exit 2 with
    // nothing written.
    let log_base = args.log_dir.clone().unwrap_or_else(default_log_base);
    batchfan::preflight::local_folder("--log-dir", &log_base)?;
    let (prepared, pending, resumed) = if args.resume {
        let resumed = batchfan::run::resume_run(client, &spec, &program, &args.command[1..]).await?;
        if args.format == Format::Text {
            eprintln!(
                "resuming run {}: {} of {} without a completion marker",
                resumed.prepared.run_id,
                count_of(resumed.pending.len() as u64, "chunk", "chunks"),
                resumed.prepared.manifest.header().chunk_count
            );
        }
        (resumed.prepared, Some(resumed.pending), true)
    } else {
        (client.prepare_run(&spec).await?, None, false)
    };
    let run_id = &prepared.run_id;
    let header = prepared.manifest.header();
    let log_dir = if args.log_dir.is_some() { log_base } else { log_base.join(run_id) };
    let local_options = LocalOptions {
        program,
        args: args.command[1..].to_vec(),
        parallel,
        attempts: args.attempts,
        log_dir,
        stop_deadline: local::default_stop_deadline(),
        chunks: pending,
    };
    if !resumed {
        // The record lets `status` and `redrive` take this run's id or output location.
        let record =
            LocalRunRecord::new(run_id, &prepared.manifest_uri, &header.output, header.chunk_count, &local_options)?;
        if let Err(e) = record.save(client).await {
            let _ = batchfan::run::abandon(client, &prepared, &[&record.record_uri]).await;
            return Err(e);
        }
    }
    execute(client, &prepared, &local_options, args.format).await
}

/// Where child logs go unless `--log-dir` says: a folder of this user's under the temp dir
/// (`/tmp/batchfan-UID/RUN`), so users sharing a machine never write into each other's.
fn default_log_base() -> std::path::PathBuf {
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("batchfan-{uid}"))
}

/// Runs a prepared run's chunks (all, or `options.chunks`), with progress, the report and the
/// summary.
async fn execute(
    client: &Client,
    prepared: &batchfan::run::PreparedRun,
    local_options: &LocalOptions,
    format: Format,
) -> batchfan::Result<ExitCode> {
    let (run_id, manifest_uri) = (&prepared.run_id, &prepared.manifest_uri);
    let header = prepared.manifest.header();
    let parallel = local_options.parallel;
    if format == Format::Text {
        eprintln!(
            "run {run_id}: {} ({}) in {}, {parallel} at a time; manifest {manifest_uri}",
            count_of(header.item_count, "item", "items"),
            format_size(header.total_bytes),
            count_of(header.chunk_count, "chunk", "chunks")
        );
    }
    let total = local_options.chunks.as_ref().map_or(header.chunk_count, |c| c.len() as u64);
    let bar = present::progress_bar(total);
    let started = Instant::now();
    let log_line = present::log_line_every(format);
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
                log_line(&format!(
                    "{}/{total} children done ({} ok, {} failed, {} running) after {:.0} s; {rates}",
                    counts.terminal(),
                    counts.succeeded,
                    counts.failed,
                    counts.running,
                    secs
                ));
            }
            if let Event::Retrying { index, attempt, reason } = event {
                bar.println(format!("child {index} attempt {attempt} failed ({reason}); retrying"));
            }
        }
    };
    // The library installs no signal handler: Ctrl-C and SIGTERM are this command's choice. Both
    // stop the children through their own SIGTERM path (a chunk that can finish commits).
    let interrupted = crate::interrupted();
    let summary = client.run_local(prepared, local_options, &on_event, interrupted).await;
    bar.finish_and_clear();
    let mut summary = summary?;
    let report =
        batchfan::report::build(client, &summary.run_id, &summary.output, header.chunk_count, &summary.failed).await?;
    summary.report = Some(report.save(client).await?);
    let wall = started.elapsed();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default()),
        Format::Text => print_summary(&summary, wall),
    }
    Ok(if summary.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(code::WORK_FAILED) })
}

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

/// `status` of a local run: its report, from the completion markers and the failures the run
/// recorded.
pub async fn status_local(
    client: &Client,
    record: &LocalRunRecord,
    format: Format,
    exit_status: bool,
) -> batchfan::Result<ExitCode> {
    let report = local_report(client, record).await?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default()),
        Format::Text => {
            println!(
                "run {} (local): {} of {} committed, {} failed, {} not committed",
                record.run_id,
                report.succeeded,
                count_of(record.chunk_count, "chunk", "chunks"),
                report.failed,
                report.not_committed
            );
            for c in report.chunks.iter().filter(|c| c.status == ChunkStatus::Failed) {
                println!(
                    "  chunk {:>5}  exit {:>4}  {}",
                    c.index,
                    c.exit_code.map_or("-".into(), |e| e.to_string()),
                    c.reason.as_deref().unwrap_or("")
                );
            }
        }
    }
    let failed = report.failed + report.not_committed > 0;
    Ok(if exit_status && failed { ExitCode::from(code::WORK_FAILED) } else { ExitCode::SUCCESS })
}

/// The report of a local run: the one it wrote (for its failures), refreshed from the markers.
async fn local_report(client: &Client, record: &LocalRunRecord) -> batchfan::Result<batchfan::report::RunReport> {
    let store = client.store(&Location::parse(&record.output)?)?;
    let written = batchfan::store::read_all(store.as_ref(), &batchfan::report::report_key(&record.run_id), None, None)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<batchfan::report::RunReport>(&b).ok());
    let failed: Vec<batchfan::status::FailedChild> = written
        .iter()
        .flat_map(|r| &r.chunks)
        .filter(|c| c.status == ChunkStatus::Failed)
        .map(|c| batchfan::status::FailedChild {
            index: c.index,
            attempts: c.attempts.unwrap_or(0),
            exit_code: c.exit_code,
            reason: c.reason.clone().unwrap_or_default(),
            log: String::new(),
        })
        .collect();
    batchfan::report::build(client, &record.run_id, &record.output, record.chunk_count, &failed).await
}

/// `redrive` of a local run: its chunks without a completion marker run again, with the program
/// and settings the run was started with.
pub async fn redrive_local(
    client: &Client,
    record: &LocalRunRecord,
    dry_run: bool,
    format: Format,
) -> batchfan::Result<ExitCode> {
    // Not committed: no marker, or a marker whose outputs changed since (a late writer).
    let report = local_report(client, record).await?;
    let pending: Vec<u64> =
        report.chunks.iter().filter(|c| c.status != ChunkStatus::Succeeded).map(|c| c.index).collect();
    if dry_run || pending.is_empty() {
        match format {
            Format::Json => {
                println!("{}", serde_json::json!({ "run_id": record.run_id, "kind": "local", "chunks": pending }))
            }
            Format::Text if pending.is_empty() => {
                println!("run {}: every chunk is committed; nothing to redrive", record.run_id)
            }
            Format::Text => println!(
                "run {}: would run {} again: {:?}",
                record.run_id,
                count_of(pending.len() as u64, "chunk", "chunks"),
                pending
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let program = local::resolve_program(&record.program)?;
    let store = client.store(&Location::parse(&record.output)?)?;
    batchfan::claim::take(store.as_ref(), &record.run_id).await?;
    // A marker that is not trusted (its output changed since) would make its chunk's worker skip
    // the chunk as committed: the markers of every chunk to run again go first.
    let untrusted: Vec<String> =
        pending.iter().map(|&index| batchfan::contract::marker_key(&record.run_id, index)).collect();
    if let Err(e) = store.delete_many(&untrusted).await {
        let _ = batchfan::claim::release(store.as_ref(), &record.run_id).await;
        return Err(e);
    }
    let manifest = client.open_manifest(&record.manifest).await?;
    let prepared = batchfan::run::PreparedRun {
        run_id: record.run_id.clone(),
        manifest_uri: record.manifest.clone(),
        manifest,
        earlier: Default::default(),
    };
    let options = LocalOptions {
        program,
        args: record.args.clone(),
        parallel: record.parallel,
        attempts: record.attempts,
        log_dir: default_log_base().join(&record.run_id),
        stop_deadline: local::default_stop_deadline(),
        chunks: Some(pending),
    };
    execute(client, &prepared, &options, format).await
}
