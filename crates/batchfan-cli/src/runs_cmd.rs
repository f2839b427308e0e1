//! `batchfan status | wait | cancel | redrive | outputs | cat`: what follows a start, the same
//! commands for every kind of run (the library dispatches on the kind; this only prints).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use batchfan::codec::Codec;
use batchfan::run::RedriveOptions;
use batchfan::size::count_of;
use batchfan::{Client, Error, Result, RunKind};
use futures_util::StreamExt;
use serde_json::json;

use crate::cli::{CancelArgs, CatArgs, Format, OutputsArgs, RedriveArgs, ReportArgs, StatusArgs, WaitArgs};
use crate::present;

pub async fn status(client: &Client, args: StatusArgs) -> Result<ExitCode> {
    let run = client.find_run(&args.run.run).await?;
    let status = run.status().await?;
    if !(args.stuck_after.is_finite() && args.stuck_after >= 0.0) {
        return Err(Error::option("--stuck-after", args.stuck_after, "a number of seconds, 0 or more"));
    }
    // Children waiting for capacity: say why they are not moving (issue 18).
    let stuck = if !status.complete && status.counts.runnable > 0 {
        run.stuck(Duration::from_secs_f64(args.stuck_after)).await?
    } else {
        None
    };
    match args.format {
        Format::Json => {
            let mut value = present::status_json(&run, &status);
            if let (Some(map), Some(stuck)) = (value.as_object_mut(), &stuck) {
                map.insert("stuck".into(), json!(stuck));
            }
            present::print_json(&value);
        }
        Format::Text => {
            present::print_status(&run, &status, args.format);
            if let Some(stuck) = &stuck {
                print!("{}", present::stuck_text(stuck));
            }
        }
    }
    Ok(present::exit_if(args.exit_status && status.failures() > 0))
}

pub async fn wait(client: &Client, args: WaitArgs) -> Result<ExitCode> {
    let mut options = present::wait_options(&args.tolerance)?;
    options.timeout = match args.timeout {
        Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => return Err(Error::option("--timeout", t, "a number of seconds above 0")),
        None => None,
    };
    let run = client.find_run(&args.run.run).await?;
    present::wait_for(&run, options, args.format).await
}

pub async fn cancel(client: &Client, args: CancelArgs) -> Result<ExitCode> {
    let run = client.find_run(&args.run.run).await?;
    let done = run.cancel(&args.reason).await?;
    match args.format {
        Format::Json => present::print_json(&done),
        Format::Text if done.was_complete => println!(
            "run {} had already finished ({} succeeded, {} failed): nothing was running, nothing cancelled",
            done.run_id, done.counts.succeeded, done.counts.failed
        ),
        Format::Text if done.terminated.is_empty() => println!(
            "cancelled run {}: its output is released, so nothing more of it commits (nothing of it runs on this machine to stop)",
            done.run_id
        ),
        Format::Text => println!(
            "cancelled run {}: terminated {}: {} ({} children had finished)",
            done.run_id,
            count_of(done.terminated.len() as u64, "job", "jobs"),
            done.terminated.join(" "),
            done.counts.terminal()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn redrive(client: &Client, args: RedriveArgs) -> Result<ExitCode> {
    let mut run = client.find_run(&args.run.run).await?;
    let local = run.kind() == RunKind::Local && !args.dry_run;
    let parallel = match &run.record().detail {
        batchfan::run::RecordDetail::Local(l) => l.parallel,
        _ => 1,
    };
    let (bar, on_event) = present::local_progress(args.format, parallel);
    let started = Instant::now();
    let mut options = RedriveOptions::default();
    options.dry_run = args.dry_run;
    if local {
        options.on_event = Some(&on_event);
        options.cancel = Some(Box::pin(crate::interrupted()));
    }
    let out = run.redrive_with(options).await;
    bar.finish_and_clear();
    let out = out?;
    let record = run.record();
    match args.format {
        Format::Json => {
            let mut value = serde_json::to_value(&out).unwrap_or_default();
            if let (Some(map), batchfan::run::RecordDetail::Batch(batch)) = (value.as_object_mut(), &record.detail) {
                map.insert("arrays".into(), json!(batch.arrays));
            }
            if let (Some(map), batchfan::run::RecordDetail::Queue(queue)) = (value.as_object_mut(), &record.detail) {
                map.insert("queue_url".into(), json!(queue.queue_url));
            }
            present::print_json(&value);
        }
        Format::Text if out.chunks.is_empty() => {
            println!("run {}: every chunk is committed; nothing to redrive", out.run_id)
        }
        Format::Text => {
            let verb = if out.dry_run { "would run again" } else { "ran again" };
            match &record.detail {
                batchfan::run::RecordDetail::Batch(_) => {
                    let names: Vec<&str> = out.requests.iter().map(|r| r.job_name.as_str()).collect();
                    println!(
                        "run {}: {} {} over {}: {}",
                        out.run_id,
                        if out.dry_run { "would submit" } else { "submitted" },
                        names.join(", "),
                        count_of(out.chunks.len() as u64, "chunk", "chunks"),
                        present::chunk_list(&out.chunks)
                    );
                }
                batchfan::run::RecordDetail::Queue(queue) => println!(
                    "run {}: {} {} to {}: {}",
                    out.run_id,
                    if out.dry_run { "would send" } else { "sent" },
                    count_of(out.chunks.len() as u64, "dead-lettered chunk", "dead-lettered chunks"),
                    queue.queue_url,
                    present::chunk_list(&out.chunks)
                ),
                _ => match &out.summary {
                    Some(summary) => present::print_summary(summary, started.elapsed()),
                    None => println!(
                        "run {}: {verb} {}: {}",
                        out.run_id,
                        count_of(out.chunks.len() as u64, "chunk", "chunks"),
                        present::chunk_list(&out.chunks)
                    ),
                },
            }
        }
    }
    Ok(present::exit_if(out.summary.as_ref().is_some_and(|s| !s.failed.is_empty())))
}

pub async fn outputs(client: &Client, args: OutputsArgs) -> Result<ExitCode> {
    let run = client.find_run(&args.run.run).await?;
    let outputs = run.outputs().await?;
    match args.format {
        Format::Json => present::print_json(&outputs),
        Format::Text => {
            for o in &outputs {
                println!("{:>6}  {:>12}  {}", o.chunk, o.bytes, o.uri);
            }
            let chunks: std::collections::BTreeSet<u64> = outputs.iter().map(|o| o.chunk).collect();
            eprintln!(
                "run {}: {} from {} of {}",
                run.id(),
                count_of(outputs.len() as u64, "object", "objects"),
                chunks.len(),
                count_of(run.record().chunk_count, "chunk", "chunks")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams every committed output of a run to stdout in chunk order: a gather step is one pipe.
pub async fn cat(client: &Client, args: CatArgs) -> Result<ExitCode> {
    let run = client.find_run(&args.run.run).await?;
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let io = |e: std::io::Error| Error::Io { op: "writing", path: "stdout".into(), source: e };
    for output in run.outputs().await? {
        let raw = run.open_output(&output).await?;
        let mut stream = match Codec::of(&output.key, None).filter(|_| args.decompress) {
            Some(codec) => codec.decode(raw, output.uri.clone()),
            None => raw,
        };
        while let Some(bytes) = stream.next().await {
            stdout.write_all(&bytes?).map_err(io)?;
        }
    }
    stdout.flush().map_err(io)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a run's report, and with --html writes its page.
pub async fn report(client: &Client, args: ReportArgs) -> Result<ExitCode> {
    let run = client.find_run(&args.run.run).await?;
    let report = match &args.html {
        Some(to) => run.write_html_report(to).await?,
        None => run.report().await?,
    };
    match args.format {
        Format::Json => present::print_json(&report),
        Format::Text => {
            println!(
                "run {}: {}: {} succeeded, {} failed, {} not committed",
                report.run_id,
                count_of(report.chunks.len() as u64, "chunk", "chunks"),
                report.succeeded,
                report.failed,
                report.not_committed
            );
            let failures = report.failures();
            if !failures.is_empty() {
                println!("\nfailed children:\n{}", present::failure_table(&failures));
            }
            if let Some(to) = &args.html {
                println!("html report: {to}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
