//! `batchfan register | submit | status | wait | cancel | redrive`: AWS Batch.

use std::process::ExitCode;
use std::time::Duration;

use batchfan::batch::{self, JobDefinitionSpec, RunRecord, RunStatus, ShortForm, SubmitOptions};
use batchfan::runs::{self, RunKind};
use batchfan::status::FailedChild;
use batchfan::status::count_of;
use batchfan::{Client, Error, Result};
use serde_json::json;

use crate::cli::{
    CancelArgs, Format, RedriveArgs, RegisterArgs, StatusArgs, SubmitArgs, ToleranceArgs, WaitArgs, run_spec,
};
use crate::{code, present, queue_cmd, run_cmd};

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

pub async fn register(client: &Client, args: RegisterArgs) -> Result<ExitCode> {
    let spec = match (&args.cli_input_json, &args.name, &args.image) {
        (Some(file), _, _) => {
            let path = file.strip_prefix("file://").unwrap_or(file);
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::option("--cli-input-json", path, format!("cannot be read: {e}")))?;
            let (spec, notes) = JobDefinitionSpec::from_pasted_json(&text)?;
            for note in notes {
                eprintln!("note: {note}");
            }
            spec
        }
        (None, Some(name), Some(image)) => ShortForm {
            name: name.clone(),
            image: image.clone(),
            vcpu: args.vcpu.unwrap_or(1.0),
            memory: args.memory.unwrap_or(2048),
            fargate: args.fargate,
            job_role: args.job_role.clone(),
            execution_role: args.execution_role.clone(),
            command: args.command.clone(),
        }
        .to_spec(),
        _ => {
            return Err(Error::option(
                "register",
                "no job definition",
                "give --cli-input-json FILE, or --name --image --vcpu --memory",
            ));
        }
    };
    let registered = client.register(&spec).await?;
    match args.format {
        Format::Json => print_json(&registered),
        Format::Text if registered.reused => println!(
            "reused {}:{} (identical to the latest ACTIVE revision)\n{}",
            registered.name, registered.revision, registered.arn
        ),
        Format::Text => {
            println!("registered {}:{} (new revision)\n{}", registered.name, registered.revision, registered.arn)
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn submit(client: &Client, args: SubmitArgs) -> Result<ExitCode> {
    let spec = run_spec(&args.plan, &args.out)?;
    check_tolerance(&args.tolerance)?;
    let options = SubmitOptions {
        job_queue: args.job_queue.clone(),
        job_definition: args.job_definition.clone(),
        name: args.name.clone(),
        depends_on: args.depends_on.clone(),
        sequential: args.sequential,
        attempts: args.attempts,
        retry_on_spot: args.retry_on_spot,
        timeout_seconds: args.timeout,
        tags: args.tag.iter().cloned().collect(),
        propagate_tags: args.propagate_tags,
        share_identifier: args.share_identifier.clone(),
        priority: args.priority,
        env: args.env.clone(),
        vcpu: args.vcpu,
        memory: args.memory,
    };
    if args.dry_run {
        // The exact requests, nothing written or sent.
        print_json(&client.submit_dry_run(&spec, &options).await?);
        return Ok(ExitCode::SUCCESS);
    }
    let batch::Submitted { plan, record } = client.submit(&spec, &options).await?;
    match args.format {
        Format::Json if !args.wait => print_json(&record),
        Format::Json => {}
        Format::Text => {
            println!(
                "run {}: {} in {} as {}",
                record.run_id,
                count_of(plan.item_count, "item", "items"),
                count_of(record.chunk_count, "chunk", "chunks"),
                count_of(record.arrays.len() as u64, "job", "jobs")
            );
            for a in &record.arrays {
                println!("  {}  {}  {}", a.job_id, a.job_name, count_of(a.size, "child", "children"));
            }
            println!("record:   {}", record.record_uri);
            println!("manifest: {}", record.manifest);
        }
    }
    if args.wait {
        return wait_for(client, &record, &args.tolerance, args.format).await;
    }
    Ok(ExitCode::SUCCESS)
}

fn check_tolerance(t: &ToleranceArgs) -> Result<()> {
    if !(0.0..=100.0).contains(&t.tolerated_failure_percent) {
        return Err(Error::option("--tolerated-failure-percent", t.tolerated_failure_percent, "between 0 and 100"));
    }
    if !(t.interval.is_finite() && t.interval > 0.0) {
        return Err(Error::option("--interval", t.interval, "a positive number of seconds"));
    }
    Ok(())
}

fn status_json(
    status: &RunStatus,
    failed: &[FailedChild],
    record: &RunRecord,
    report: &batchfan::report::RunReport,
) -> serde_json::Value {
    json!({
        "report": report,
        "run_id": status.run_id,
        "record_uri": record.record_uri,
        "manifest": record.manifest,
        "output": record.output,
        "complete": status.complete,
        "counts": status.counts,
        "committed": status.committed,
        "disagreement": status.disagreement,
        "arrays": status.arrays,
        "failed": failed,
    })
}

fn print_status(status: &RunStatus, failed: &[FailedChild]) {
    let c = &status.counts;
    println!(
        "run {}: {} of {} children finished ({} succeeded, {} failed; {} running, {} runnable, {} waiting){}",
        status.run_id,
        c.terminal(),
        c.total(),
        c.succeeded,
        c.failed,
        c.running + c.starting,
        c.runnable,
        c.submitted + c.pending,
        if status.complete { "" } else { " - in progress" }
    );
    println!("committed: {} of {} chunks have a completion marker", status.committed, c.total());
    if let Some(disagreement) = &status.disagreement {
        println!("warning: {disagreement}");
    }
    for a in &status.arrays {
        let kind = if a.redrive > 0 { format!("redrive {}", a.redrive) } else { "array".to_string() };
        println!("  {}  {:<10} {:<10} {}/{} done", a.job_id, kind, a.status, a.counts.terminal(), a.counts.total());
    }
    if !failed.is_empty() {
        println!("\nfailed children:\n{}", present::failure_table(failed));
    }
}

pub async fn status(client: &Client, args: StatusArgs) -> Result<ExitCode> {
    let found = runs::find_record(client, &args.run.run).await?;
    match found.kind {
        RunKind::Queue => return queue_cmd::status(client, found.parse()?, args.format, args.exit_status).await,
        RunKind::Local => return run_cmd::status_local(client, &found.parse()?, args.format, args.exit_status).await,
        _ => {}
    }
    status_of(client, &found.parse()?, args.format, args.exit_status).await
}

/// Prints a run's status; with `exit_status`, exit 1 when it has failed children.
async fn status_of(client: &Client, record: &RunRecord, format: Format, exit_status: bool) -> Result<ExitCode> {
    let status = client.run_status(record).await?;
    if status.complete {
        batchfan::claim::release_run(client, &record.output, &record.run_id).await?;
    }
    let failed =
        if status.counts.failed > 0 { client.failed_children(record, &status).await?.children } else { vec![] };
    let report = run_report(client, record, &failed, status.complete).await?;
    match format {
        Format::Json => print_json(&status_json(&status, &failed, record, &report)),
        Format::Text => print_status(&status, &failed),
    }
    Ok(if exit_status && status.counts.failed > 0 { ExitCode::from(code::WORK_FAILED) } else { ExitCode::SUCCESS })
}

pub async fn wait(client: &Client, args: WaitArgs) -> Result<ExitCode> {
    check_tolerance(&args.tolerance)?;
    let timeout = match args.timeout {
        Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => return Err(Error::option("--timeout", t, "a number of seconds above 0")),
        None => None,
    };
    let found = runs::find_record(client, &args.run.run).await?;
    if found.kind == RunKind::Local {
        // A local run is over when its command returned: its status is final.
        return run_cmd::status_local(client, &found.parse()?, args.format, true).await;
    }
    let waiting = async {
        if found.kind == RunKind::Queue {
            queue_cmd::wait(client, found.parse()?, &args.tolerance, args.format).await
        } else {
            wait_for(client, &found.parse()?, &args.tolerance, args.format).await
        }
    };
    let Some(timeout) = timeout else { return waiting.await };
    match tokio::time::timeout(timeout, waiting).await {
        Ok(done) => done,
        Err(_) => {
            eprintln!("wait: the run did not finish within --timeout {} s; its counts now:", timeout.as_secs_f64());
            if found.kind == RunKind::Queue {
                queue_cmd::status(client, found.parse()?, args.format, false).await?;
            } else {
                status_of(client, &found.parse()?, args.format, false).await?;
            }
            Ok(ExitCode::from(code::WORK_FAILED))
        }
    }
}

async fn wait_for(client: &Client, record: &RunRecord, tolerance: &ToleranceArgs, format: Format) -> Result<ExitCode> {
    let bar = present::progress_bar(record.chunk_count);
    let log_line = present::log_line_every(format);
    let on_poll = {
        let bar = bar.clone();
        move |s: &RunStatus| {
            let c = &s.counts;
            let message = format!(
                "succeeded {} failed {} running {} runnable {}",
                c.succeeded,
                c.failed,
                c.running + c.starting,
                c.runnable
            );
            log_line(&format!("{}/{} children done: {message}", c.terminal(), c.total()));
            bar.set_length(c.total());
            bar.set_position(c.terminal());
            bar.set_message(message);
        }
    };
    let status = client.wait(record, Duration::from_secs_f64(tolerance.interval), &on_poll).await;
    bar.finish_and_clear();
    let status = status?;
    // The run is over: its output is free for the next run.
    batchfan::claim::release_run(client, &record.output, &record.run_id).await?;
    let failed =
        if status.counts.failed > 0 { client.failed_children(record, &status).await?.children } else { vec![] };
    let report = run_report(client, record, &failed, true).await?;
    match format {
        Format::Json => print_json(&status_json(&status, &failed, record, &report)),
        Format::Text => print_status(&status, &failed),
    }
    Ok(if tolerated(status.counts.failed, status.counts.total(), tolerance) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(code::WORK_FAILED)
    })
}

/// The run report; written to `_batchfan/runs/RUN/report.json` once the run is over.
async fn run_report(
    client: &Client,
    record: &RunRecord,
    failed: &[FailedChild],
    over: bool,
) -> Result<batchfan::report::RunReport> {
    let report = batchfan::report::build(client, &record.run_id, &record.output, record.chunk_count, failed).await?;
    if over {
        report.save(client).await?;
    }
    Ok(report)
}

/// Whether `failures` of `total` children are within `--tolerated-failure-count/-percent`.
pub fn tolerated(failures: u64, total: u64, tolerance: &ToleranceArgs) -> bool {
    let total = total.max(1) as f64;
    failures == 0
        || failures <= tolerance.tolerated_failure_count
        || (tolerance.tolerated_failure_percent > 0.0
            && failures as f64 * 100.0 / total <= tolerance.tolerated_failure_percent)
}

pub async fn cancel(client: &Client, args: CancelArgs) -> Result<ExitCode> {
    let record = client.find_run(&args.run.run).await?;
    let before = client.run_status(&record).await?;
    let jobs = if before.complete { Vec::new() } else { client.cancel(&record, &args.reason).await? };
    batchfan::claim::release_run(client, &record.output, &record.run_id).await?;
    match args.format {
        Format::Json => print_json(&json!({
            "run_id": record.run_id,
            "was_complete": before.complete,
            "terminated": jobs,
            "counts": before.counts,
        })),
        Format::Text if before.complete => println!(
            "run {} had already finished ({} succeeded, {} failed): nothing was running, nothing cancelled",
            record.run_id, before.counts.succeeded, before.counts.failed
        ),
        Format::Text => println!(
            "cancelled run {}: terminated {}: {} ({} children had finished)",
            record.run_id,
            batchfan::status::count_of(jobs.len() as u64, "job", "jobs"),
            jobs.join(" "),
            before.counts.terminal()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn redrive(client: &Client, args: RedriveArgs) -> Result<ExitCode> {
    let found = runs::find_record(client, &args.run.run).await?;
    match found.kind {
        RunKind::Queue => return queue_cmd::redrive(client, found.parse()?, args.dry_run, args.format).await,
        RunKind::Local => return run_cmd::redrive_local(client, &found.parse()?, args.dry_run, args.format).await,
        _ => {}
    }
    let mut record: RunRecord = found.parse()?;
    let submitted = client.redrive(&mut record, args.dry_run).await?;
    if submitted.is_empty() {
        println!("run {}: no failed chunks; nothing to redrive", record.run_id);
        return Ok(ExitCode::SUCCESS);
    }
    let chunks: Vec<u64> = submitted.iter().flat_map(|(_, c)| c.iter().copied()).collect();
    let requests: Vec<_> = submitted.iter().map(|(r, _)| r).collect();
    match args.format {
        Format::Json => print_json(&json!({
            "run_id": record.run_id,
            "chunks": chunks,
            "requests": requests,
            "dry_run": args.dry_run,
            "arrays": record.arrays,
        })),
        Format::Text => {
            let verb = if args.dry_run { "would submit" } else { "submitted" };
            let names: Vec<&str> = requests.iter().map(|r| r.job_name.as_str()).collect();
            println!(
                "run {}: {verb} {} over {} failed chunk(s): {chunks:?}",
                record.run_id,
                names.join(", "),
                chunks.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
