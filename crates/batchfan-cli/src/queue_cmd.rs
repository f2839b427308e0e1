//! `batchfan enqueue | workers`: SQS queues.

use std::process::ExitCode;
use std::time::Duration;

use batchfan::pool::{Pool, PoolEvent, PoolOptions};
use batchfan::run::RecordDetail;
use batchfan::size::count_of;
use batchfan::{Client, EnqueueOptions, Error, Result, contract, limits, local};
use serde_json::json;

use crate::cli::{EnqueueArgs, Format, WorkersArgs, run_spec};
use crate::present::print_json;

pub async fn enqueue(client: &Client, args: EnqueueArgs) -> Result<ExitCode> {
    let spec = run_spec(client, &args.plan, &args.out).await?;
    spec.options.validate()?;
    let options = EnqueueOptions::new(args.queue_url.clone());
    if args.dry_run {
        print_json(&client.enqueue_dry_run(&spec, &options).await?);
        return Ok(ExitCode::SUCCESS);
    }
    let run = client.enqueue(&spec, &options).await?;
    if let Some(replaced) = run.replaced() {
        eprintln!("note: the output was held by run {replaced}, which has finished; this run took it over");
    }
    let record = run.record();
    let stats = run.send_stats().copied().unwrap_or_default();
    let RecordDetail::Queue(queue) = &record.detail else { return Ok(ExitCode::SUCCESS) };
    match args.format {
        Format::Json => print_json(&json!({
            "run_id": record.run_id,
            "record": record.record_uri,
            "manifest": record.manifest,
            "queue_url": queue.queue_url,
            "dead_letter_queue_url": queue.dead_letter_queue_url,
            "chunk_count": record.chunk_count,
            "item_count": record.item_count,
            "sent": stats.sent,
            "requests": stats.requests,
            "resent": stats.resent,
            "seconds": stats.seconds,
        })),
        Format::Text => {
            println!(
                "run {}: {} items in {}; sent {} in {} request(s), {:.0} messages/s",
                record.run_id,
                record.item_count,
                count_of(record.chunk_count, "chunk", "chunks"),
                count_of(stats.sent, "message", "messages"),
                stats.requests,
                stats.sent as f64 / stats.seconds.max(1e-6)
            );
            println!("queue:    {}", queue.queue_url);
            if queue.dead_letter_queue_url.is_none() {
                println!("warning:  the queue has no dead-letter queue: a chunk that always fails comes back forever");
            }
            println!("record:   {}", record.record_uri);
            println!("manifest: {}", record.manifest);
        }
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
    let queue = client.queue(&args.queue_url);
    let info = queue.describe().await?;
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
                    let counts = queue.counts().await?;
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
        None => Ok(ExitCode::from(contract::cli_exit::INTERRUPTED)),
    }
}
