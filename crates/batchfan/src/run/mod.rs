//! [`Run`]: one handle for a run of any kind (local processes, AWS Batch arrays, an SQS queue),
//! returned by [`crate::Client::run_local`], [`crate::Client::submit`],
//! [`crate::Client::enqueue`] and [`crate::Client::find_run`]. The library runs every step of
//! a run's life (claim → write manifest → execute → observe → report → release); its methods
//! are the same for every kind.
//!
//! Done means committed: a chunk counts as succeeded only with its completion marker, whatever
//! an executor says. A Batch child that exited 0 without committing (a container that does not
//! run the harness) is `NOT_COMMITTED`: `wait` and `status` count it as a failure and
//! [`Run::redrive`] runs it again.

mod lifecycle;
mod list;
mod logs;
mod outputs;
pub mod record;
#[cfg(feature = "html")]
pub mod report_html;
mod sample;
mod start;

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use self::list::PastRun;
pub(crate) use self::list::list as list_runs;
pub use self::outputs::RunOutput;
pub use self::record::{RecordDetail, RunKind, RunRecord};
pub use self::sample::Sample;
pub(crate) use self::sample::sample;
pub(crate) use self::start::run_local;
#[cfg(feature = "queue")]
pub(crate) use self::start::{enqueue, enqueue_dry_run};
#[cfg(feature = "batch")]
pub(crate) use self::start::{submit, submit_dry_run};
use crate::context::Context;
use crate::error::Result;
pub use crate::layout::new_run_id;
use crate::local::{Event, RunSummary};
use crate::report::RunReport;
use crate::status::{ChunkFailure, Observed, StatusCounts, StatusDetail};

/// A run: its record, and the client it was found or started with.
#[derive(Clone)]
pub struct Run {
    ctx: Arc<Context>,
    record: RunRecord,
    /// The run whose finished claim this run's start took over, if any.
    replaced: Option<String>,
    /// How the messages of an enqueue went out (the run's first start only).
    #[cfg(feature = "queue")]
    send_stats: Option<crate::queue::SendStats>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").field("record", &self.record).field("replaced", &self.replaced).finish_non_exhaustive()
    }
}

/// A callback that sees every status [`Run::wait`] polls.
pub type OnProgress = Arc<dyn Fn(&RunStatus) + Send + Sync>;

/// How [`Run::wait`] waits.
#[derive(Clone)]
#[non_exhaustive]
pub struct WaitOptions {
    /// Between polls (default 10 s). A poll is one round of the executor's requests and one
    /// listing of the completion markers.
    pub interval: Duration,
    /// Give up after this long and return the status then, not complete (default: never).
    pub timeout: Option<Duration>,
    /// Failures (failed or not committed chunks) a run may have and still be a success.
    pub tolerated_failure_count: u64,
    /// Failures as a percent of the chunks a run may have and still be a success (0 to 100).
    pub tolerated_failure_percent: f64,
    /// Called with every status polled.
    pub on_progress: Option<OnProgress>,
}

impl Default for WaitOptions {
    fn default() -> WaitOptions {
        WaitOptions {
            interval: Duration::from_secs(10),
            timeout: None,
            tolerated_failure_count: 0,
            tolerated_failure_percent: 0.0,
            on_progress: None,
        }
    }
}

impl std::fmt::Debug for WaitOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitOptions")
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("tolerated_failure_count", &self.tolerated_failure_count)
            .field("tolerated_failure_percent", &self.tolerated_failure_percent)
            .finish_non_exhaustive()
    }
}

/// A run's state, the same for every kind.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RunStatus {
    /// The run.
    pub run_id: String,
    /// What executes it.
    pub kind: RunKind,
    /// Chunks in the plan.
    pub chunk_count: u64,
    /// True when nothing more happens without a redrive.
    pub complete: bool,
    /// Children (or messages) per status, as the executor counts them.
    pub counts: StatusCounts,
    /// Chunks whose completion marker exists.
    pub committed: u64,
    /// Chunks still to come: neither committed nor failed, in a run that is not complete.
    pub pending: u64,
    /// Chunks the executor gave up on (failed children, dead-lettered chunks), not committed.
    pub failed: Vec<ChunkFailure>,
    /// In a complete run, chunks with neither a marker nor a failure: a child that ended
    /// without committing.
    pub not_committed: Vec<u64>,
    /// What the executor adds.
    #[serde(flatten)]
    pub detail: StatusDetail,
    /// Per chunk, with each committed object checked against the output (from
    /// [`Run::status`], [`Run::wait`]'s final status and [`Run::report`]; polls carry none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<RunReport>,
}

impl RunStatus {
    fn of(record: &RunRecord, committed: &BTreeSet<u64>, observed: Observed, report: Option<RunReport>) -> RunStatus {
        let failed: Vec<ChunkFailure> = observed.failed.into_iter().filter(|f| !committed.contains(&f.index)).collect();
        let failed_set: BTreeSet<u64> = failed.iter().map(|f| f.index).collect();
        let not_committed: Vec<u64> = if observed.complete {
            (0..record.chunk_count).filter(|i| !committed.contains(i) && !failed_set.contains(i)).collect()
        } else {
            Vec::new()
        };
        let accounted = committed.len() as u64 + failed.len().max(observed.counts.failed as usize) as u64;
        RunStatus {
            run_id: record.run_id.clone(),
            kind: record.kind(),
            chunk_count: record.chunk_count,
            complete: observed.complete,
            counts: observed.counts,
            committed: committed.len() as u64,
            pending: if observed.complete { 0 } else { record.chunk_count.saturating_sub(accounted) },
            failed,
            not_committed,
            detail: observed.detail,
            report,
        }
    }

    /// Chunks that failed or (in a complete run) ended without committing.
    pub fn failures(&self) -> u64 {
        self.failed.len() as u64 + self.not_committed.len() as u64
    }

    /// True when the run is complete and its failures are within what `options` tolerate.
    pub fn succeeded(&self, options: &WaitOptions) -> bool {
        let failures = self.failures();
        let total = self.chunk_count.max(1) as f64;
        self.complete
            && (failures == 0
                || failures <= options.tolerated_failure_count
                || (options.tolerated_failure_percent > 0.0
                    && failures as f64 * 100.0 / total <= options.tolerated_failure_percent))
    }
}

/// What [`Run::cancel`] did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct CancelOutput {
    /// The run.
    pub run_id: String,
    /// It had finished already: nothing was stopped.
    pub was_complete: bool,
    /// What was stopped: AWS Batch job ids, a local run's process.
    pub terminated: Vec<String>,
    /// Children per status before the cancel.
    pub counts: StatusCounts,
}

/// What [`Run::redrive`] did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RedriveOutput {
    /// The run.
    pub run_id: String,
    /// What executes it.
    pub kind: RunKind,
    /// Nothing was sent or run.
    pub dry_run: bool,
    /// The chunks run again: those without a trusted completion marker (a queue run: its
    /// dead-lettered ones).
    pub chunks: Vec<u64>,
    /// AWS Batch: the SubmitJob requests, one per 10,000 chunks.
    #[cfg(feature = "batch")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<crate::batch::SubmitJobRequest>,
    /// A local run: how its chunks went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<RunSummary>,
}

/// How [`Run::redrive_with`] redrives.
#[derive(Default)]
#[non_exhaustive]
pub struct RedriveOptions<'a> {
    /// Only say which chunks would run again.
    pub dry_run: bool,
    /// A local run: progress of the chunks run again.
    pub on_event: Option<&'a (dyn Fn(&Event) + Send + Sync)>,
    /// A local run: completes to stop the chunks run again (Ctrl-C): they drain, then
    /// [`crate::Error::Interrupted`].
    pub cancel: Option<Pin<Box<dyn Future<Output = ()> + Send + 'a>>>,
}

/// A local run and how its chunks went ([`crate::Client::run_local`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LocalRun {
    /// The run, finished.
    pub run: Run,
    /// Counts, failures, items, bytes, wall time.
    pub summary: RunSummary,
}

impl Run {
    pub(crate) fn new(ctx: Arc<Context>, record: RunRecord) -> Run {
        Run {
            ctx,
            record,
            replaced: None,
            #[cfg(feature = "queue")]
            send_stats: None,
        }
    }

    /// The run id.
    pub fn id(&self) -> &str {
        &self.record.run_id
    }

    /// What executes it.
    pub fn kind(&self) -> RunKind {
        self.record.kind()
    }

    /// Its record (also at [`RunRecord::record_uri`]).
    pub fn record(&self) -> &RunRecord {
        &self.record
    }

    /// The run whose claim on the output this run took over when it started, the other run
    /// having finished (its report written, its claim released); `None` when the output was
    /// free.
    pub fn replaced(&self) -> Option<&str> {
        self.replaced.as_deref()
    }

    /// How the messages of the enqueue that started this run went out (a run found later has
    /// none).
    #[cfg(feature = "queue")]
    pub fn send_stats(&self) -> Option<&crate::queue::SendStats> {
        self.send_stats.as_ref()
    }

    /// The run's state now, with the failed chunks' reasons. A run seen complete is finished
    /// here, once: its report is written and its claim on the output released.
    pub async fn status(&self) -> Result<RunStatus> {
        let executor = lifecycle::executor_of(&self.ctx, &self.record);
        let status = lifecycle::status(&self.ctx, executor.as_ref(), &self.record, true).await?;
        if status.complete {
            lifecycle::finish(&self.ctx, &self.record, &status).await?;
        }
        Ok(status)
    }

    /// Why an AWS Batch run is not moving: its children RUNNABLE for at least `threshold`
    /// (since they were submitted: AWS gives no time of entering RUNNABLE) with their
    /// `statusReason`, and what the job queue's compute environments say (DISABLED or INVALID,
    /// all vCPUs in use, none that can ever give the job's vCPU or memory). `None` for other
    /// kinds of run and when no child waits that long.
    #[cfg(feature = "batch")]
    pub async fn stuck(&self, threshold: std::time::Duration) -> Result<Option<crate::batch::StuckReport>> {
        let RecordDetail::Batch(batch) = &self.record.detail else { return Ok(None) };
        let arrays: Vec<(String, u64)> =
            batch.arrays.iter().filter(|a| !a.job_id.is_empty()).map(|a| (a.job_id.clone(), a.size)).collect();
        crate::batch::stuck(
            &self.ctx,
            &batch.template,
            batch.options.vcpu,
            batch.options.memory,
            &arrays,
            threshold.as_secs(),
        )
        .await
    }

    /// Waits until the run is complete, polling every `options.interval`; a run seen complete
    /// is finished as by [`Run::status`]. With `options.timeout`, returns the status when it
    /// runs out, not complete. [`RunStatus::succeeded`] says whether the failures are within
    /// what `options` tolerate.
    pub async fn wait(&self, options: &WaitOptions) -> Result<RunStatus> {
        let executor = lifecycle::executor_of(&self.ctx, &self.record);
        let status = lifecycle::wait(&self.ctx, executor.as_ref(), &self.record, options).await?;
        if status.complete {
            lifecycle::finish(&self.ctx, &self.record, &status).await?;
        }
        Ok(status)
    }

    /// Stops the run (AWS Batch: TerminateJob on every array; a local run on this host: SIGTERM
    /// to its process, which drains its children; a queue run: its workers' commits are fenced
    /// from now on) and finishes it: its report is written and its claim released.
    pub async fn cancel(&self, reason: &str) -> Result<CancelOutput> {
        let executor = lifecycle::executor_of(&self.ctx, &self.record);
        let before = lifecycle::status(&self.ctx, executor.as_ref(), &self.record, false).await?;
        let terminated = if before.complete { Vec::new() } else { executor.cancel(&self.record, reason).await? };
        let after = lifecycle::status(&self.ctx, executor.as_ref(), &self.record, true).await?;
        // Cancelled: the output is free even while children still stop.
        let output = self.ctx.stores.store(&crate::uri::Location::parse(&self.record.output)?)?;
        if !after.complete {
            crate::claim::release(output.as_ref(), &self.record.run_id).await?;
        } else {
            lifecycle::finish(&self.ctx, &self.record, &after).await?;
        }
        Ok(CancelOutput {
            run_id: self.record.run_id.clone(),
            was_complete: before.complete,
            terminated,
            counts: before.counts,
        })
    }

    /// Runs the chunks without a trusted completion marker again (see [`Run::redrive_with`]).
    pub async fn redrive(&mut self, dry_run: bool) -> Result<RedriveOutput> {
        self.redrive_with(RedriveOptions { dry_run, ..RedriveOptions::default() }).await
    }

    /// Runs again the chunks of a finished run that have no trusted completion marker (failed,
    /// ended without committing, or whose committed output changed since): AWS Batch submits an
    /// array over exactly them; a queue run sends its dead-lettered chunks again; a local run
    /// runs them now, with the program and settings it was started with. The run takes its
    /// output's claim again first. Refused while the run is not complete.
    pub async fn redrive_with(&mut self, options: RedriveOptions<'_>) -> Result<RedriveOutput> {
        start::redrive(&self.ctx, &mut self.record, options).await
    }

    /// The run's report: per chunk its status, attempts, exit code, reason, output and bytes,
    /// from the markers (each committed object checked against what the output holds now) and
    /// the failures the executor knows.
    pub async fn report(&self) -> Result<RunReport> {
        let executor = lifecycle::executor_of(&self.ctx, &self.record);
        let status = lifecycle::status(&self.ctx, executor.as_ref(), &self.record, true).await?;
        match status.report {
            Some(report) => Ok(report),
            None => lifecycle::build_report(&self.ctx, &self.record, &status.failed).await,
        }
    }

    /// Writes the run's HTML report (see [`crate::report_html`]) to `to`, a local path or
    /// `s3://bucket/key`; returns the report it shows: the one the finished run wrote (it keeps
    /// what the executor knew of each attempt), else [`Run::report`].
    #[cfg(feature = "html")]
    pub async fn write_html_report(&self, to: &str) -> Result<RunReport> {
        let output = self.ctx.stores.store(&crate::uri::Location::parse(&self.record.output)?)?;
        let report = match crate::report::read(output.as_ref(), &self.record.run_id).await? {
            Some(written) => written,
            None => self.report().await?,
        };
        report_html::write_to(&self.ctx.stores, &self.record, &report, to).await?;
        Ok(report)
    }

    /// The logs of the chunks `options` ask for, every attempt (or one), in time order, each
    /// line tagged with its chunk and attempt: a local run's attempt files, an AWS Batch run's
    /// CloudWatch Logs streams (DescribeJobs of those chunks only), a queue run's logs its markers
    /// name. A log that does not exist (yet, or any more) is one notice line.
    pub async fn logs(&self, options: &crate::logs::LogsOptions) -> Result<Vec<crate::logs::LogLine>> {
        let mut lines = Vec::new();
        self.read_logs(options, None, &mut |batch| lines.extend_from_slice(batch)).await?;
        Ok(lines)
    }

    /// As [`Run::logs`], then polls every `interval` for new lines (and new attempts) until
    /// every chunk asked for is committed or the run is complete; `on_lines` sees each batch.
    pub async fn follow_logs(
        &self,
        options: &crate::logs::LogsOptions,
        interval: Duration,
        on_lines: &mut (dyn FnMut(&[crate::logs::LogLine]) + Send),
    ) -> Result<()> {
        self.read_logs(options, Some(interval), on_lines).await
    }

    async fn read_logs(
        &self,
        options: &crate::logs::LogsOptions,
        follow: Option<Duration>,
        on_lines: &mut (dyn FnMut(&[crate::logs::LogLine]) + Send),
    ) -> Result<()> {
        let mut committed =
            crate::status::committed_chunks(&self.ctx.stores, &self.record.run_id, &self.record.output).await?;
        let chunks = logs::chunks_asked(&self.record, options, &committed)?;
        let mut reader = crate::logs::Reader::new(options);
        loop {
            reader.add(logs::sources(&self.ctx, &self.record, &chunks, options.attempt).await?);
            let lines = reader.read(&self.ctx).await?;
            if !lines.is_empty() {
                on_lines(&lines);
            }
            let Some(interval) = follow else { return Ok(()) };
            let executor = lifecycle::executor_of(&self.ctx, &self.record);
            let all_committed = chunks.iter().all(|c| committed.contains(c));
            if all_committed || lifecycle::status(&self.ctx, executor.as_ref(), &self.record, false).await?.complete {
                // One last read after an interval: what a child logs after its commit, before
                // it exits.
                if all_committed {
                    tokio::time::sleep(interval).await;
                }
                reader.add(logs::sources(&self.ctx, &self.record, &chunks, options.attempt).await?);
                let lines = reader.read(&self.ctx).await?;
                if !lines.is_empty() {
                    on_lines(&lines);
                }
                return Ok(());
            }
            tokio::time::sleep(interval).await;
            committed =
                crate::status::committed_chunks(&self.ctx.stores, &self.record.run_id, &self.record.output).await?;
        }
    }

    /// What the run committed, in chunk order: every object each chunk's marker lists (the
    /// `part-NNNNN` output, with its compression suffix, and exec's mirrored outputs), each as
    /// the marker recorded it. Chunks whose outputs changed since their commit are left out.
    pub async fn outputs(&self) -> Result<Vec<RunOutput>> {
        outputs::list(&self.ctx.stores, &self.record).await
    }

    /// Streams one committed output as stored (compressed ones are not decompressed; see
    /// [`crate::codec::Codec`]), pinned to the version its marker recorded: an object changed
    /// since is [`crate::Error::InputChanged`].
    pub async fn open_output(&self, output: &RunOutput) -> Result<crate::store::ByteStream> {
        outputs::open(&self.ctx.stores, &self.record, output).await
    }
}

/// Finds a run by its id (from the client's run notes), its record's URI, its manifest's URI,
/// or its output location (the newest run there), relative paths included.
pub(crate) async fn find(ctx: &Arc<Context>, run: &str) -> Result<Run> {
    Ok(Run::new(ctx.clone(), record::find(ctx, run).await?))
}
