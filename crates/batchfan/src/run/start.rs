//! Starting runs of each kind, and running a finished run's uncommitted chunks again. Every
//! start goes the same way: check and plan (nothing written) → claim the output (taking over
//! from a run that has finished) → write the manifest → write the run record → clear what
//! earlier runs left (the last step before the first child) → execute.

use std::sync::Arc;

use super::lifecycle::{self, acquire};
use super::record::{self, RecordDetail, RunRecord};
use super::{LocalRun, RedriveOptions, RedriveOutput, Run};
use crate::claim;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::local::{self, Children, Event, LocalOptions, LocalRecord, RunSummary};
use crate::prepare::{self, PreparedRun, RunSpec};
use crate::report::{self, ChunkStatus};
use crate::uri::Location;
use crate::{limits, preflight};

/// `run --local`: plans `spec` (or, with `options.resume`, continues the newest run in its
/// output), runs every chunk as a process of `options.program`, and finishes the run: report
/// written, claim released. `cancel` completing (the caller's Ctrl-C) stops the children through
/// their drain path: [`Error::Interrupted`].
pub(crate) async fn run_local(
    ctx: &Arc<Context>,
    spec: &RunSpec,
    options: &LocalOptions,
    on_event: &(dyn Fn(&Event) + Send + Sync),
    cancel: impl std::future::Future<Output = ()>,
) -> Result<LocalRun> {
    // Everything given is checked before anything is listed or written.
    spec.options.validate()?;
    let program = local::resolve_program(&options.program.display().to_string())?;
    limits::check_positive("--parallel", options.parallel as u64, None)?;
    limits::check_positive("--attempts", u64::from(options.attempts), Some(u64::from(*limits::ATTEMPTS.end())))?;
    let log_base = options.log_dir.clone().unwrap_or_else(local::default_log_base);
    preflight::local_folder("--log-dir", &log_base)?;
    let spool = std::env::var_os(crate::contract::env::SPOOL_DIR)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    preflight::local_folder(crate::contract::env::SPOOL_DIR, &spool)?;
    check_notes(ctx)?;
    let resolved = LocalRecord { program: program.display().to_string(), ..LocalRecord::of(options) };
    let (run, manifest, pending, prepared) = if options.resume {
        let (run, manifest, pending) = resume(ctx, spec, &resolved).await?;
        (run, manifest, Some(pending), None)
    } else {
        let (run, prepared) = start(ctx, spec, RecordDetail::Local(resolved.clone())).await?;
        let manifest = prepared.manifest.clone();
        (run, manifest, None, Some(prepared))
    };
    let header = manifest.header();
    on_event(&Event::Planned {
        run_id: run.record.run_id.clone(),
        manifest: run.record.manifest.clone(),
        items: header.item_count,
        bytes: header.total_bytes,
        chunks: header.chunk_count,
        to_run: pending.as_ref().map_or(header.chunk_count, |p| p.len() as u64),
        resumed: options.resume,
    });
    let children = Children {
        program,
        args: options.args.clone(),
        parallel: options.parallel,
        attempts: options.attempts,
        log_dir: if options.log_dir.is_some() { log_base } else { log_base.join(&run.record.run_id) },
        stop_deadline: options.stop_deadline,
        chunks: pending,
    };
    let ran = async {
        if let Some(prepared) = &prepared {
            prepare::clear_earlier(&ctx.stores, prepared).await?;
        }
        local::run_children(header, &run.record.manifest, &children, on_event, cancel).await
    }
    .await;
    let summary = finish_local(ctx, &run.record, ran).await?;
    Ok(LocalRun { run, summary })
}

/// The end of a local execution: the report (with the failures the children reported, and
/// where their logs are), the uploads its killed children left aborted, its claim released,
/// however it ended.
pub(super) async fn finish_local(ctx: &Context, record: &RunRecord, ran: Result<RunSummary>) -> Result<RunSummary> {
    let store = ctx.stores.store(&Location::parse(&record.output)?)?;
    let reported = match &ran {
        Ok(summary) => match lifecycle::build_report(
            ctx,
            record,
            &summary.failed.iter().chain(&summary.retried).cloned().collect::<Vec<_>>(),
        )
        .await
        {
            Ok(report) => lifecycle::save_report(ctx, record, &report).await.map(Some),
            Err(e) => Err(e),
        },
        Err(_) => Ok(None),
    };
    prepare::abort_uploads(store.as_ref()).await;
    claim::release(store.as_ref(), &record.run_id).await?;
    let mut summary = ran?;
    summary.report = reported?;
    Ok(summary)
}

/// The common start: plan, claim (taking over from a finished run), write the manifest and the
/// run record. On a failure after the claim, what was written is taken back.
pub(super) async fn start(ctx: &Arc<Context>, spec: &RunSpec, detail: RecordDetail) -> Result<(Run, PreparedRun)> {
    let planned = prepare::plan_run(&ctx.stores, spec).await?;
    start_planned(ctx, spec, planned, detail).await
}

async fn start_planned(
    ctx: &Arc<Context>,
    spec: &RunSpec,
    planned: prepare::PlannedRun,
    detail: RecordDetail,
) -> Result<(Run, PreparedRun)> {
    check_notes(ctx)?;
    let output = ctx.stores.store(&planned.output)?;
    let replaced = acquire(ctx, output.as_ref(), &planned.run_id).await?;
    let output_uri = planned.output.to_string();
    let prepared = prepare::write_run(&ctx.stores, planned, spec.overwrite).await?;
    let record = RunRecord::new(&prepared.manifest_uri, prepared.manifest.header(), detail);
    let saved = match record {
        Ok(record) => record::save(ctx, &record).await.map(|()| record),
        Err(e) => Err(e),
    };
    match saved {
        Ok(record) => {
            let mut run = Run::new(ctx.clone(), record);
            run.replaced = replaced;
            Ok((run, prepared))
        }
        Err(e) => {
            let written = record::record_uri(&output_uri, &prepared.run_id).unwrap_or_default();
            let _ = prepare::abandon(&ctx.stores, &prepared, &[&written]).await;
            Err(e)
        }
    }
}

/// The run notes folder (`BATCHFAN_HOME/runs` for the CLI) must take a note: checked before
/// anything is written, as every place a start writes.
fn check_notes(ctx: &Context) -> Result<()> {
    match &ctx.runs_dir {
        Some(notes) => preflight::local_folder(crate::contract::env::HOME, notes),
        None => Ok(()),
    }
}

/// Continues the newest run in `spec.output` (see [`LocalOptions::resume`]): returns it, its
/// manifest and its chunks without a completion marker. Nothing is written but the claim.
async fn resume(
    ctx: &Arc<Context>,
    spec: &RunSpec,
    program: &LocalRecord,
) -> Result<(Run, crate::manifest::ManifestReader, Vec<u64>)> {
    let input = spec.input.absolute()?;
    let output = spec.output.absolute()?;
    let store = ctx.stores.store(&output)?;
    let found = record::find(ctx, &output.to_string()).await.map_err(|e| match e {
        Error::UnknownRun { .. } => {
            Error::option("--resume", &output, format!("an output holding an earlier run ({e}); run without --resume"))
        }
        other => other,
    })?;
    #[allow(irrefutable_let_patterns)] // a build without AWS Batch and SQS has local runs only
    let RecordDetail::Local(ran) = &found.detail else {
        return Err(Error::option(
            "--resume",
            &found.run_id,
            "a local run: the newest run in this output was not run with `run --local`; use `batchfan redrive` for it",
        ));
    };
    let run_id = found.run_id.clone();
    let (was, now) = (command_line(&ran.program, &ran.args), command_line(&program.program, &program.args));
    if was != now {
        return Err(Error::option(
            "--resume",
            &run_id,
            format!(
                "a run of the same program: run {run_id} ran `{was}`, this command runs `{now}`, and one output must not mix two programs' parts; start a new run with --overwrite instead"
            ),
        ));
    }
    let manifest = crate::manifest::ManifestReader::open(&ctx.stores, &found.manifest).await?;
    let header = manifest.header();
    let plan = crate::incremental::plan(&ctx.stores, &input, &spec.options).await?;
    let same = header.input_location()?.absolute()? == input
        && header.item_count == plan.items.len() as u64
        && header.total_bytes == plan.total_bytes()
        && header.chunk_count == plan.chunks.len() as u64;
    if !same {
        return Err(Error::option(
            "--resume",
            &run_id,
            format!(
                "a run of the same plan: planning now gives {} items ({} bytes) in {} chunks, run {run_id} had {} items ({} bytes) in {} chunks; start a new run with --overwrite instead",
                plan.items.len(),
                plan.total_bytes(),
                plan.chunks.len(),
                header.item_count,
                header.total_bytes,
                header.chunk_count
            ),
        ));
    }
    // Refused while the process that ran it is alive: two processes never run one run.
    claim::take(store.as_ref(), &run_id).await?;
    let pending = async {
        prepare::abort_uploads(store.as_ref()).await;
        let committed = crate::status::committed_chunks(&ctx.stores, &run_id, &output.to_string()).await?;
        Ok::<_, Error>((0..header.chunk_count).filter(|i| !committed.contains(i)).collect())
    }
    .await;
    match pending {
        Ok(pending) => Ok((Run::new(ctx.clone(), found), manifest, pending)),
        Err(e) => {
            let _ = claim::release(store.as_ref(), &run_id).await;
            Err(e)
        }
    }
}

/// A program and its arguments as one line, for comparing and for messages.
fn command_line(program: &str, args: &[String]) -> String {
    std::iter::once(program).chain(args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
}

/// `--depends-on` entries that name a batchfan run (its id, or the URI of its record or output)
/// become its AWS Batch job ids, one dependency per array, keeping `:N_TO_N` / `:SEQUENTIAL`.
#[cfg(feature = "batch")]
async fn resolve_depends_on(ctx: &Arc<Context>, depends_on: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in depends_on {
        let (job, kind) = match entry.rsplit_once(':') {
            Some((job, kind)) if kind.eq_ignore_ascii_case("N_TO_N") || kind.eq_ignore_ascii_case("SEQUENTIAL") => {
                (job, Some(kind))
            }
            _ => (entry.as_str(), None),
        };
        let names_run = job.starts_with("bf-") || job.starts_with("s3://");
        if !names_run {
            out.push(entry.clone());
            continue;
        }
        let found = record::find(ctx, job).await?;
        let RecordDetail::Batch(batch) = &found.detail else {
            return Err(Error::option(
                "--depends-on",
                entry,
                "a run of AWS Batch jobs; this run has no job to wait for",
            ));
        };
        let ids: Vec<&str> = batch.arrays.iter().map(|a| a.job_id.as_str()).filter(|id| !id.is_empty()).collect();
        if ids.is_empty() {
            return Err(Error::option(
                "--depends-on",
                entry,
                "a run that was submitted (this one has no job ids: a dry run?)",
            ));
        }
        out.extend(ids.into_iter().map(|id| kind.map_or_else(|| id.to_string(), |k| format!("{id}:{k}"))));
    }
    Ok(out)
}

#[cfg(feature = "batch")]
async fn batch_options(
    ctx: &Arc<Context>,
    options: &crate::batch::SubmitOptions,
) -> Result<crate::batch::SubmitOptions> {
    if options.depends_on.is_empty() {
        return Ok(options.clone());
    }
    Ok(crate::batch::SubmitOptions {
        depends_on: resolve_depends_on(ctx, &options.depends_on).await?,
        ..options.clone()
    })
}

/// The exact requests [`submit`] would send; nothing written or sent.
#[cfg(feature = "batch")]
pub(crate) async fn submit_dry_run(
    ctx: &Arc<Context>,
    spec: &RunSpec,
    options: &crate::batch::SubmitOptions,
) -> Result<crate::batch::SubmitPlan> {
    let options = batch_options(ctx, options).await?;
    Ok(crate::batch::check_and_plan(ctx, spec, &options).await?.1)
}

/// Submits `spec` as AWS Batch arrays (one per 10,000 chunks), saving the run record after every
/// array; the run keeps its output's claim once a job is out.
#[cfg(feature = "batch")]
pub(crate) async fn submit(ctx: &Arc<Context>, spec: &RunSpec, options: &crate::batch::SubmitOptions) -> Result<Run> {
    let options = batch_options(ctx, options).await?;
    let (planned, mut plan) = crate::batch::check_and_plan(ctx, spec, &options).await?;
    let detail = RecordDetail::Batch(Box::new(crate::batch::BatchRecord {
        arrays: Vec::new(),
        template: options.template(&planned.run_id)?,
        options: options.clone(),
    }));
    let (mut run, prepared) = start_planned(ctx, spec, planned, detail).await?;
    let views: Vec<String> = plan.views.iter().map(|(uri, _)| uri.clone()).collect();
    let written: Vec<&str> = views.iter().map(String::as_str).chain([run.record.record_uri.as_str()]).collect();
    let ready = async {
        crate::batch::write_views(ctx, &plan).await?;
        prepare::clear_earlier(&ctx.stores, &prepared).await
    }
    .await;
    if let Err(e) = ready {
        let _ = prepare::abandon(&ctx.stores, &prepared, &written).await;
        return Err(e);
    }
    let mut previous: Option<String> = None;
    for k in 0..plan.requests.len() {
        let sent = crate::batch::send_array(ctx, &options, &mut plan, k, previous.as_deref()).await;
        let RecordDetail::Batch(batch) = &mut run.record.detail else { unreachable!("a batch record") };
        match sent {
            Ok(array) => {
                previous = Some(array.job_id.clone());
                batch.arrays.push(array);
                record::save(ctx, &run.record).await?;
            }
            Err(e) if batch.arrays.is_empty() => {
                // Nothing was sent: the run never started.
                let _ = prepare::abandon(&ctx.stores, &prepared, &written).await;
                return Err(e);
            }
            Err(e) => {
                hand_over(ctx, &run.record).await?;
                return Err(e);
            }
        }
    }
    hand_over(ctx, &run.record).await?;
    Ok(run)
}

/// The exact plan an enqueue would send; nothing written or sent.
#[cfg(feature = "queue")]
pub(crate) async fn enqueue_dry_run(
    ctx: &Arc<Context>,
    spec: &RunSpec,
    options: &crate::queue::EnqueueOptions,
) -> Result<crate::queue::EnqueuePlan> {
    Ok(crate::queue::check_and_plan(ctx, spec, options).await?.1)
}

/// Enqueues `spec`: one message per chunk; the run keeps its output's claim once messages are out.
#[cfg(feature = "queue")]
pub(crate) async fn enqueue(ctx: &Arc<Context>, spec: &RunSpec, options: &crate::queue::EnqueueOptions) -> Result<Run> {
    let (planned, plan) = crate::queue::check_and_plan(ctx, spec, options).await?;
    let detail = RecordDetail::Queue(crate::queue::QueueRecord {
        queue_url: plan.queue.url.clone(),
        fifo: plan.queue.fifo,
        dead_letter_queue_url: plan.queue.dead_letter_queue.as_ref().map(|d| d.url.clone()),
        sent: 0,
        redrives: Vec::new(),
    });
    let (mut run, prepared) = start_planned(ctx, spec, planned, detail).await?;
    if let Err(e) = prepare::clear_earlier(&ctx.stores, &prepared).await {
        let _ = prepare::abandon(&ctx.stores, &prepared, &[&run.record.record_uri]).await;
        return Err(e);
    }
    let chunks: Vec<u64> = (0..run.record.chunk_count).collect();
    let sent = crate::queue::send_chunks(ctx, &plan.queue, &run.record.run_id, &run.record.manifest, &chunks, 0).await;
    // Messages are out (all, or some before a failure): the run holds its output until it is
    // seen complete.
    hand_over(ctx, &run.record).await?;
    let stats = sent?;
    if let RecordDetail::Queue(queue) = &mut run.record.detail {
        queue.sent = stats.sent;
    }
    record::save(ctx, &run.record).await?;
    run.send_stats = Some(stats);
    Ok(run)
}

/// A run handed to AWS Batch or SQS keeps its output's claim after this process exits.
#[cfg(any(feature = "batch", feature = "queue"))]
async fn hand_over(ctx: &Context, record: &RunRecord) -> Result<()> {
    let store = ctx.stores.store(&Location::parse(&record.output)?)?;
    claim::detach(store.as_ref(), &record.run_id).await
}

/// See [`Run::redrive_with`].
pub(crate) async fn redrive(
    ctx: &Arc<Context>,
    record: &mut RunRecord,
    options: RedriveOptions<'_>,
) -> Result<RedriveOutput> {
    let executor = lifecycle::executor_of(ctx, record);
    let status = lifecycle::status(ctx, executor.as_ref(), record, true).await?;
    if !status.complete {
        return Err(Error::option(
            "RUN",
            &record.run_id,
            format!(
                "still has {} unfinished: wait for it (`batchfan wait`) before redriving",
                crate::size::count_of(status.pending, "chunk", "chunks")
            ),
        ));
    }
    let report = match status.report {
        Some(report) => report,
        None => lifecycle::build_report(ctx, record, &status.failed).await?,
    };
    let chunks: Vec<u64> =
        report.chunks.iter().filter(|c| c.status != ChunkStatus::Succeeded).map(|c| c.index).collect();
    let mut out = RedriveOutput {
        run_id: record.run_id.clone(),
        kind: record.kind(),
        dry_run: options.dry_run,
        chunks: chunks.clone(),
        #[cfg(feature = "batch")]
        requests: Vec::new(),
        summary: None,
    };
    if chunks.is_empty() && !matches!(record.detail, RecordDetail::Local(_)) {
        return Ok(out);
    }
    let store = ctx.stores.store(&Location::parse(&record.output)?)?;
    if !options.dry_run {
        // The run holds its output again (refused while another run holds it, or while the
        // process of a local run still runs); its report is written again when it is next seen
        // finished (its page goes too: it would show the run as it ended before), and the
        // markers not trusted go so their chunks' workers do not skip them.
        claim::take(store.as_ref(), &record.run_id).await?;
        let reopened = async {
            let report = [report::report_key(&record.run_id), report::report_html_key(&record.run_id)];
            let markers = chunks.iter().map(|&i| crate::contract::marker_key(&record.run_id, i));
            store.delete_many(&report.into_iter().chain(markers).collect::<Vec<_>>()).await
        }
        .await;
        if let Err(e) = reopened {
            let _ = claim::release(store.as_ref(), &record.run_id).await;
            return Err(e);
        }
    }
    match &mut record.detail {
        #[cfg(feature = "batch")]
        RecordDetail::Batch(batch) => {
            let (run_id, manifest, output) = (record.run_id.clone(), record.manifest.clone(), record.output.clone());
            let before = batch.arrays.len();
            let sent = crate::batch::redrive(ctx, &run_id, &manifest, &output, batch, &chunks, options.dry_run).await;
            if !options.dry_run {
                let started = batch.arrays.len() > before;
                record::save(ctx, record).await?;
                settle_claim(store.as_ref(), &record.run_id, started).await?;
            }
            out.requests = sent?.into_iter().map(|(request, _)| request).collect();
        }
        #[cfg(feature = "queue")]
        RecordDetail::Queue(queue) => {
            let committed: std::collections::BTreeSet<u64> =
                (0..record.chunk_count).filter(|i| !chunks.contains(i)).collect();
            let sent =
                crate::queue::redrive(ctx, &record.run_id, &record.manifest, queue, &committed, options.dry_run).await;
            if !options.dry_run {
                record::save(ctx, record).await?;
                settle_claim(store.as_ref(), &record.run_id, sent.as_ref().is_ok_and(|c| !c.is_empty())).await?;
            }
            out.chunks = sent?;
        }
        RecordDetail::Local(ran) => {
            if options.dry_run || chunks.is_empty() {
                if !options.dry_run {
                    claim::release(store.as_ref(), &record.run_id).await?;
                }
                return Ok(out);
            }
            let children = Children {
                program: local::resolve_program(&ran.program)?,
                args: ran.args.clone(),
                parallel: ran.parallel,
                attempts: ran.attempts,
                log_dir: ran
                    .log_dir
                    .as_ref()
                    .map_or_else(|| local::default_log_base().join(&record.run_id), std::path::PathBuf::from),
                stop_deadline: local::default_stop_deadline(),
                chunks: Some(chunks.clone()),
            };
            let manifest = crate::manifest::ManifestReader::open(&ctx.stores, &record.manifest).await;
            let ran = match manifest {
                Ok(manifest) => {
                    let quiet = |_: &Event| {};
                    let on_event = options.on_event.unwrap_or(&quiet);
                    let cancel = async {
                        match options.cancel {
                            Some(cancel) => cancel.await,
                            None => std::future::pending().await,
                        }
                    };
                    local::run_children(manifest.header(), &record.manifest, &children, on_event, cancel).await
                }
                Err(e) => Err(e),
            };
            out.summary = Some(finish_local(ctx, record, ran).await?);
        }
    }
    Ok(out)
}

#[cfg(any(feature = "batch", feature = "queue"))]
/// After a redrive: work sent keeps the output claimed for the run (it is released when the run
/// is seen finished again); none sent gives it back.
async fn settle_claim(store: &dyn crate::store::Store, run_id: &str, started: bool) -> Result<()> {
    if started { claim::detach(store, run_id).await } else { claim::release(store, run_id).await }
}
