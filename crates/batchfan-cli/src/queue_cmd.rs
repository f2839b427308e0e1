//! `batchfan enqueue | workers`, and `status | wait | redrive` of queue runs.

use std::process::ExitCode;
use std::time::Duration;

use batchfan::pool::{Pool, PoolEvent, PoolOptions};
use batchfan::queue::{self, EnqueueOptions, QueueRunRecord, QueueRunStatus};
use batchfan::status::FailedChild;
use batchfan::status::count_of;
use batchfan::{Client, Error, Result, limits, local};
use serde_json::json;

use crate::cli::{EnqueueArgs, Format, ToleranceArgs, WorkersArgs, run_spec};
use crate::{code, present};

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

pub async fn enqueue(client: &Client, args: EnqueueArgs) -> Result<ExitCode> {
    let spec = run_spec(&args.plan, &args.out)?;
    spec.options.validate()?;
    let options = EnqueueOptions { queue_url: args.queue_url.clone() };
    if args.dry_run {
        print_json(&queue::enqueue_dry_run(client, &spec, &options).await?);
        return Ok(ExitCode::SUCCESS);
    }
    let done = queue::enqueue(client, &spec, &options).await?;
    let (record, stats) = (&done.record, &done.stats);
    match args.format {
        Format::Json => print_json(&json!({
            "run_id": record.run_id,
            "record": record.record_uri,
            "manifest": record.manifest,
            "queue_url": record.queue_url,
            "dead_letter_queue_url": record.dead_letter_queue_url,
            "chunk_count": record.chunk_count,
            "item_count": done.plan.item_count,
            "sent": stats.sent,
            "requests": stats.requests,
            "resent": stats.resent,
            "seconds": stats.seconds,
        })),
        Format::Text => {
            println!(
                "run {}: {} items in {}; sent {} in {} request(s), {:.0} messages/s",
                record.run_id,
                done.plan.item_count,
                count_of(record.chunk_count, "chunk", "chunks"),
                count_of(stats.sent, "message", "messages"),
                stats.requests,
                stats.sent as f64 / stats.seconds.max(1e-6)
            );
            println!("queue:    {}", record.queue_url);
            if record.dead_letter_queue_url.is_none() {
                println!("warning:  the queue has no dead-letter queue: a chunk that always fails comes back forever");
            }
            println!("record:   {}", record.record_uri);
            println!("manifest: {}", record.manifest);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Dead-lettered chunks in the shape of the other executors' failure lists.
fn failed_of(status: &QueueRunStatus) -> Vec<FailedChild> {
    status
        .dead_lettered
        .iter()
        .map(|d| FailedChild {
            index: d.chunk,
            attempts: d.receive_count,
            exit_code: None,
            reason: d.reason.clone(),
            log: String::new(),
        })
        .collect()
}

/// The run report; written to `_batchfan/runs/RUN/report.json` once the run is over.
async fn queue_report(
    client: &Client,
    record: &QueueRunRecord,
    status: &QueueRunStatus,
) -> Result<batchfan::report::RunReport> {
    let failed = failed_of(status);
    let report = batchfan::report::build(client, &record.run_id, &record.output, record.chunk_count, &failed).await?;
    if status.complete {
        report.save(client).await?;
    }
    Ok(report)
}

fn print_status(status: &QueueRunStatus, format: Format, report: &batchfan::report::RunReport) {
    let failed = failed_of(status);
    match format {
        Format::Json => print_json(&json!({
            "report": report,
            "run_id": status.run_id,
            "kind": "queue",
            "complete": status.complete,
            "chunk_count": status.chunk_count,
            "committed": status.committed,
            "pending": status.pending,
            "dead_lettered": status.dead_lettered,
            "queue": status.queue,
            "dead_letter_queue": status.dead_letter_queue,
            "failed": failed,
        })),
        Format::Text => {
            println!(
                "run {} (queue): {} of {} committed, {} dead-lettered, {} pending{}",
                status.run_id,
                status.committed,
                count_of(status.chunk_count, "chunk", "chunks"),
                status.dead_lettered.len(),
                status.pending,
                if status.complete { "" } else { " - in progress" }
            );
            let q = &status.queue;
            println!("  queue: {} visible, {} in flight, {} delayed", q.visible, q.in_flight, q.delayed);
            if let Some(d) = &status.dead_letter_queue {
                println!("  dead-letter queue: {} messages (all runs)", d.total());
            }
            if !failed.is_empty() {
                println!("\ndead-lettered chunks:\n{}", present::failure_table(&failed));
            }
        }
    }
}

pub async fn status(client: &Client, record: QueueRunRecord, format: Format, exit_status: bool) -> Result<ExitCode> {
    let status = queue::queue_run_status(client, &record).await?;
    if status.complete {
        batchfan::claim::release_run(client, &record.output, &record.run_id).await?;
    }
    let report = queue_report(client, &record, &status).await?;
    print_status(&status, format, &report);
    let failed = !status.dead_lettered.is_empty();
    Ok(if exit_status && failed { ExitCode::from(code::WORK_FAILED) } else { ExitCode::SUCCESS })
}

pub async fn wait(
    client: &Client,
    record: QueueRunRecord,
    tolerance: &ToleranceArgs,
    format: Format,
) -> Result<ExitCode> {
    let bar = present::progress_bar(record.chunk_count);
    let log_line = present::log_line_every(format);
    let on_poll = {
        let bar = bar.clone();
        move |s: &QueueRunStatus| {
            let message = format!(
                "committed {} dead-lettered {} | queue {} visible {} in flight",
                s.committed,
                s.dead_lettered.len(),
                s.queue.visible,
                s.queue.in_flight
            );
            log_line(&format!("{} of {} chunks: {message}", s.committed + s.dead_lettered.len() as u64, s.chunk_count));
            bar.set_position(s.committed + s.dead_lettered.len() as u64);
            bar.set_message(message);
        }
    };
    let status = queue::wait_queue_run(client, &record, Duration::from_secs_f64(tolerance.interval), &on_poll).await;
    bar.finish_and_clear();
    let status = status?;
    // The run is over: its output is free for the next run.
    batchfan::claim::release_run(client, &record.output, &record.run_id).await?;
    let report = queue_report(client, &record, &status).await?;
    print_status(&status, format, &report);
    let failures = status.dead_lettered.len() as u64;
    Ok(if crate::batch_cmd::tolerated(failures, status.chunk_count, tolerance) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(code::WORK_FAILED)
    })
}

pub async fn redrive(client: &Client, mut record: QueueRunRecord, dry_run: bool, format: Format) -> Result<ExitCode> {
    let chunks = queue::redrive_queue_run(client, &mut record, dry_run).await?;
    match format {
        Format::Json => print_json(&json!({
            "run_id": record.run_id,
            "kind": "queue",
            "chunks": chunks,
            "dry_run": dry_run,
            "queue_url": record.queue_url,
        })),
        Format::Text if chunks.is_empty() => {
            println!("run {}: no dead-lettered chunks; nothing to redrive", record.run_id)
        }
        Format::Text => println!(
            "run {}: {} {} to {}: {chunks:?}",
            record.run_id,
            if dry_run { "would send" } else { "sent" },
            count_of(chunks.len() as u64, "dead-lettered chunk", "dead-lettered chunks"),
            record.queue_url
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(event: &PoolEvent) -> String {
    match event {
        PoolEvent::Started { slot, pid } => format!("worker {slot} started (pid {pid})"),
        PoolEvent::Stopping { slot } => format!("worker {slot} stopping (SIGTERM: draining)"),
        PoolEvent::Exited { slot, code, signal, restart } => {
            let how = match (code, signal) {
                (Some(c), _) => format!("exited with code {c}"),
                (_, Some(s)) => format!("killed by signal {s}"),
                _ => "exited".into(),
            };
            format!("worker {slot} {how}{}", if *restart { "; restarting" } else { "" })
        }
        _ => format!("{event:?}"),
    }
}

pub async fn workers(client: &Client, args: WorkersArgs) -> Result<ExitCode> {
    limits::check_positive("--count", args.count as u64, Some(1_000))?;
    let program = local::resolve_program(&args.command[0])?;
    if let Some(d) = args.stop_deadline
        && !(d.is_finite() && d >= 0.0)
    {
        return Err(Error::option("--stop-deadline", d, "a number of seconds, 0 or more"));
    }
    // A queue that does not exist is bad input: nothing is started.
    let info = queue::describe_queue(client, &args.queue_url).await?;
    let log_dir = args
        .log_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("batchfan-workers").join(std::process::id().to_string()));
    let options = PoolOptions {
        program,
        args: args.command[1..].to_vec(),
        queue_url: info.url.clone(),
        log_dir: log_dir.clone(),
    };
    let mut pool = Pool::new(options)?;
    pool.scale_to(args.count)?;
    eprintln!(
        "{} on {}; logs in {}; Ctrl-C or SIGTERM drains them",
        count_of(args.count as u64, "worker", "workers"),
        info.url,
        log_dir.display()
    );
    let interrupted = crate::interrupted();
    tokio::pin!(interrupted);
    let mut last_check: Option<std::time::Instant> = None;
    let failure = loop {
        tokio::select! {
            () = &mut interrupted => break None,
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                let supervised = pool.supervise();
                for event in pool.take_events() {
                    eprintln!("{}", describe(&event));
                }
                if let Err(e) = supervised {
                    break Some(e);
                }
                // Workers that took their idle exit leave the pool short. Whether the queue is
                // drained is what its counts say, never what exit codes say (a worker someone
                // else stopped with SIGTERM drains and exits 0 too): at most once a second.
                let short = pool.active() < args.count;
                if short && last_check.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    last_check = Some(std::time::Instant::now());
                    let counts = queue::queue_counts(client, &info.url).await?;
                    let waiting = counts.visible + counts.delayed > 0 || (pool.is_empty() && counts.in_flight > 0);
                    if waiting {
                        eprintln!(
                            "the queue holds {} visible, {} in flight, {} delayed: {} running again",
                            counts.visible,
                            counts.in_flight,
                            counts.delayed,
                            count_of(args.count as u64, "worker", "workers")
                        );
                        pool.scale_to(args.count)?;
                    } else if pool.is_empty() {
                        eprintln!("every worker exited 0 and the queue is drained (0 visible, 0 in flight, 0 delayed)");
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            }
        }
    };
    let deadline = args.stop_deadline.map_or_else(local::default_stop_deadline, Duration::from_secs_f64);
    eprintln!(
        "stopping: draining {} (up to {:.0} s)",
        count_of(pool.capacity() as u64, "worker", "workers"),
        deadline.as_secs_f64()
    );
    let killed = pool.stop(deadline).await?;
    for event in pool.take_events() {
        eprintln!("{}", describe(&event));
    }
    if killed > 0 {
        eprintln!("{} did not drain in time and were killed", count_of(killed as u64, "worker", "workers"));
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(ExitCode::from(code::INTERRUPTED)),
    }
}
