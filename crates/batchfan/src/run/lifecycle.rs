//! The lifecycle every run goes through, whatever executes it: claim → write manifest →
//! execute → observe → report → release. The executors are a closed set kept in the run record
//! ([`RecordDetail`]); [`Executor`] is the seam between the lifecycle and them, so the
//! lifecycle is tested without AWS (see the tests below).

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;

use super::record::{self, RecordDetail, RunRecord};
use super::{RunStatus, WaitOptions};
use crate::claim;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::report::{self, RunReport};
use crate::status::{ChunkFailure, Observed};
use crate::store::Store;
use crate::uri::Location;

/// What the lifecycle asks of an executor.
#[async_trait]
pub(crate) trait Executor: Send + Sync {
    /// What the executor knows of the run now (one round of requests); with `details`, the
    /// failed chunks' reasons even before the run is complete.
    async fn observe(&self, record: &RunRecord, committed: &BTreeSet<u64>, details: bool) -> Result<Observed>;

    /// Stops what runs; returns what was stopped (job ids, a process).
    async fn cancel(&self, record: &RunRecord, reason: &str) -> Result<Vec<String>>;
}

/// The executor of a run's kind.
pub(crate) fn executor_of(ctx: &Arc<Context>, record: &RunRecord) -> Box<dyn Executor> {
    match &record.detail {
        #[cfg(feature = "batch")]
        RecordDetail::Batch(_) => Box::new(BatchExecutor(ctx.clone())),
        #[cfg(feature = "queue")]
        RecordDetail::Queue(_) => Box::new(QueueExecutor(ctx.clone())),
        RecordDetail::Local(_) => Box::new(LocalExecutor(ctx.clone())),
    }
}

/// A run's status now: the executor's view and the completion markers, put together as
/// done-means-committed says: a chunk succeeded only with its marker; once the run is complete,
/// a chunk with neither a marker nor a failure is not committed.
///
/// A poll (`details` false) lists the markers (one listing). With `details`, the markers are
/// read and every object they list checked against what the output holds now, and the report
/// comes with the status: a marker whose outputs changed since (a late writer) does not count.
pub(crate) async fn status(
    ctx: &Context,
    executor: &dyn Executor,
    record: &RunRecord,
    details: bool,
) -> Result<RunStatus> {
    let listed = crate::status::committed_chunks(&ctx.stores, &record.run_id, &record.output).await?;
    let observed = executor.observe(record, &listed, details).await?;
    if !details {
        return Ok(RunStatus::of(record, &listed, observed, None));
    }
    let report = build_report(ctx, record, &observed.failed).await?;
    let trusted: BTreeSet<u64> =
        report.chunks.iter().filter(|c| c.status == report::ChunkStatus::Succeeded).map(|c| c.index).collect();
    Ok(RunStatus::of(record, &trusted, observed, Some(report)))
}

/// Polls [`status`] until the run is complete (or `options.timeout` passes: then the last
/// status, not complete), calling `options.on_progress` with each.
pub(crate) async fn wait(
    ctx: &Context,
    executor: &dyn Executor,
    record: &RunRecord,
    options: &WaitOptions,
) -> Result<RunStatus> {
    let started = std::time::Instant::now();
    loop {
        let now = status(ctx, executor, record, false).await?;
        if let Some(on_progress) = &options.on_progress {
            on_progress(&now);
        }
        if now.complete {
            // The failures' details come with the final status.
            return status(ctx, executor, record, true).await;
        }
        let left = options.timeout.map(|t| t.saturating_sub(started.elapsed()));
        if left.is_some_and(|l| l.is_zero()) {
            return Ok(now);
        }
        tokio::time::sleep(left.map_or(options.interval, |l| l.min(options.interval))).await;
    }
}

/// What follows a run seen finished, once: its report is written (unless one is there already,
/// from an earlier look at the finished run), unfinished uploads under its output are aborted,
/// and its claim on the output is released.
pub(crate) async fn finish(ctx: &Context, record: &RunRecord, status: &RunStatus) -> Result<()> {
    let output = ctx.stores.store(&Location::parse(&record.output)?)?;
    if output.head(&report::report_key(&record.run_id)).await?.is_none() {
        match &status.report {
            Some(report) => report.save(&ctx.stores).await?,
            None => build_report(ctx, record, &status.failed).await?.save(&ctx.stores).await?,
        };
    }
    crate::prepare::abort_uploads(output.as_ref()).await;
    claim::release(output.as_ref(), &record.run_id).await
}

/// The report of a run from its markers (each committed object's version checked against what
/// the output holds now) and the failures its executor knows.
pub(crate) async fn build_report(ctx: &Context, record: &RunRecord, failed: &[ChunkFailure]) -> Result<RunReport> {
    report::build(&ctx.stores, &record.run_id, &record.output, record.chunk_count, failed).await
}

/// Takes the claim on `store` (a run's output) for `run_id`. When a run handed to AWS Batch or
/// SQS holds it and has since finished (its record and its executor say so), that run is
/// finished first (its report written, its claim released) and the claim taken over; returns
/// the id of the run replaced. A run that can still write keeps the output.
pub(crate) async fn acquire(ctx: &Arc<Context>, store: &dyn Store, run_id: &str) -> Result<Option<String>> {
    let refused = match claim::take(store, run_id).await {
        Ok(()) => return Ok(None),
        Err(e @ Error::OutputClaimed { .. }) => e,
        Err(e) => return Err(e),
    };
    let Some(holder) = claim::read(store).await? else { return claim::take(store, run_id).await.map(|()| None) };
    if holder.pid.is_some() || holder.run_id == run_id {
        return Err(refused); // a process of this or another host still runs it
    }
    let uri = record::record_uri(&store.location().to_string(), &holder.run_id)?;
    let Some(held_by) = record::read(&ctx.stores, &holder.run_id, &uri).await? else { return Err(refused) };
    let executor = executor_of(ctx, &held_by);
    let now = status(ctx, executor.as_ref(), &held_by, true).await?;
    if !now.complete {
        return Err(refused);
    }
    finish(ctx, &held_by, &now).await?;
    claim::take(store, run_id).await?;
    Ok(Some(holder.run_id))
}

/// AWS Batch arrays.
#[cfg(feature = "batch")]
struct BatchExecutor(Arc<Context>);

#[cfg(feature = "batch")]
#[async_trait]
impl Executor for BatchExecutor {
    async fn observe(&self, record: &RunRecord, committed: &BTreeSet<u64>, details: bool) -> Result<Observed> {
        let RecordDetail::Batch(batch) = &record.detail else { return Err(wrong_kind(record)) };
        crate::batch::observe(&self.0, &record.run_id, batch, committed, details).await
    }

    async fn cancel(&self, record: &RunRecord, reason: &str) -> Result<Vec<String>> {
        let RecordDetail::Batch(batch) = &record.detail else { return Err(wrong_kind(record)) };
        crate::batch::cancel(&self.0, batch, reason).await
    }
}

/// An SQS queue.
#[cfg(feature = "queue")]
struct QueueExecutor(Arc<Context>);

#[cfg(feature = "queue")]
#[async_trait]
impl Executor for QueueExecutor {
    async fn observe(&self, record: &RunRecord, committed: &BTreeSet<u64>, _details: bool) -> Result<Observed> {
        let RecordDetail::Queue(queue) = &record.detail else { return Err(wrong_kind(record)) };
        crate::queue::observe(&self.0, &record.run_id, record.chunk_count, queue, committed).await
    }

    /// A queue run is stopped by releasing its output: its workers' commits are fenced from
    /// then on, and the messages left go to the dead-letter queue as they are received.
    async fn cancel(&self, _record: &RunRecord, _reason: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// Processes on one machine.
struct LocalExecutor(Arc<Context>);

#[async_trait]
impl Executor for LocalExecutor {
    async fn observe(&self, record: &RunRecord, committed: &BTreeSet<u64>, _details: bool) -> Result<Observed> {
        crate::local::observe(&self.0.stores, &record.run_id, &record.output, record.chunk_count, committed).await
    }

    async fn cancel(&self, record: &RunRecord, _reason: &str) -> Result<Vec<String>> {
        crate::local::cancel(&self.0.stores, &record.run_id, &record.output).await
    }
}

#[cfg_attr(not(any(feature = "batch", feature = "queue")), allow(dead_code))]
fn wrong_kind(record: &RunRecord) -> Error {
    Error::UnknownRun { run: record.run_id.clone(), reason: format!("its record is of a {} run", record.kind()) }
}
