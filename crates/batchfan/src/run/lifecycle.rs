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
            Some(report) => save_report(ctx, record, report).await?,
            None => save_report(ctx, record, &build_report(ctx, record, &status.failed).await?).await?,
        };
    }
    crate::prepare::abort_uploads(output.as_ref()).await;
    claim::release(output.as_ref(), &record.run_id).await
}

/// Writes a run's report: with the `html` feature its page first (`report.html`), then
/// `report.json`, whose presence says the report is written; returns the JSON's URI.
pub(crate) async fn save_report(ctx: &Context, record: &RunRecord, report: &RunReport) -> Result<String> {
    #[cfg(feature = "html")]
    super::report_html::save(&ctx.stores, record, report).await?;
    #[cfg(not(feature = "html"))]
    let _ = record;
    report.save(&ctx.stores).await
}

/// The report of a run from its markers (each committed object's version checked against what
/// the output holds now) and the failures its executor knows.
pub(crate) async fn build_report(ctx: &Context, record: &RunRecord, failed: &[ChunkFailure]) -> Result<RunReport> {
    let built = report::build(&ctx.stores, &record.run_id, &record.output, record.chunk_count, failed).await?;
    #[cfg(feature = "batch")]
    let built = {
        let mut built = built;
        if let super::RecordDetail::Batch(batch) = &record.detail {
            built.estimate = batch.options.estimate.as_ref().and_then(|e| serde_json::to_value(e).ok());
        }
        built
    };
    Ok(built)
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

/// The lifecycle without AWS: a fake executor over runs whose output is a [`MemoryStore`].
#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;

    use super::*;
    use crate::contract::{Marker, marker_key};
    use crate::local::LocalRecord;
    use crate::report::ChunkStatus;
    use crate::status::{StatusCounts, StatusDetail};
    use crate::store::MemoryStore;

    /// Says what it is told: complete or not, and these failures.
    struct Fake {
        complete: bool,
        failed: Vec<ChunkFailure>,
        cancelled: Mutex<bool>,
    }

    #[async_trait]
    impl Executor for Fake {
        async fn observe(&self, _: &RunRecord, committed: &BTreeSet<u64>, _: bool) -> Result<Observed> {
            let counts = StatusCounts { succeeded: committed.len() as u64, ..StatusCounts::default() };
            let detail = StatusDetail::Local { running_in: None };
            Ok(Observed { counts, complete: self.complete, failed: self.failed.clone(), detail })
        }

        async fn cancel(&self, _: &RunRecord, _: &str) -> Result<Vec<String>> {
            *self.cancelled.lock().unwrap() = true;
            Ok(vec!["fake".into()])
        }
    }

    fn fake(complete: bool, failed: Vec<ChunkFailure>) -> Fake {
        Fake { complete, failed, cancelled: Mutex::new(false) }
    }

    /// A context whose `s3://mem/` is a memory store, and that store.
    fn memory() -> (Arc<Context>, Arc<MemoryStore>) {
        let root = Location::parse("s3://mem/").unwrap();
        let store = Arc::new(MemoryStore::new(root.clone()));
        let stores = crate::registry::StoreRegistry::for_tests_with(vec![(root, store.clone() as Arc<dyn Store>)]);
        let aws = stores.aws();
        (Arc::new(Context { aws, stores, runs_dir: None }), store)
    }

    fn record(run_id: &str, chunks: u64) -> RunRecord {
        let header = crate::contract::Header {
            format: crate::contract::FORMAT_NAME.into(),
            version: crate::contract::FORMAT_VERSION,
            run_id: run_id.into(),
            created_unix_ms: 0,
            input: "s3://in/".into(),
            output: "s3://mem/out/".into(),
            object_count: chunks,
            item_count: chunks,
            total_bytes: 0,
            chunk_count: chunks,
            split_bytes: None,
            chunks: vec![[0, 0, 1, 0]; chunks as usize],
            fenced: true,
        };
        let local = LocalRecord { program: "/bin/true".into(), args: vec![], parallel: 1, attempts: 1, log_dir: None };
        RunRecord::new("s3://mem/out/m.jsonl", &header, RecordDetail::Local(local)).unwrap()
    }

    /// Commits chunk `index` as the harness does: its part, then a marker recording its version.
    async fn commit(store: &MemoryStore, run_id: &str, index: u64) {
        let part = crate::contract::part_key(index);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p"), format!("chunk {index}\n")).unwrap();
        let written = store.put_file(&format!("out/{part}"), &dir.path().join("p")).await.unwrap();
        let marker = Marker {
            run_id: run_id.into(),
            index,
            output_key: part.clone(),
            versions: [(part, written.version().unwrap())].into(),
            ..Marker::default()
        };
        let body = Bytes::from(serde_json::to_vec(&marker).unwrap());
        store.put(&format!("out/{}", marker_key(run_id, index)), body).await.unwrap();
    }

    #[tokio::test]
    async fn a_chunk_counts_only_with_its_marker_and_a_complete_run_names_the_rest() {
        let (ctx, store) = memory();
        let run = record("bf-a", 3);
        commit(&store, "bf-a", 0).await;
        let failure = ChunkFailure {
            index: 1,
            attempts: 2,
            exit_code: Some(3),
            reason: "input changed".into(),
            log: "l".into(),
            history: Vec::new(),
        };
        let running = status(&ctx, &fake(false, vec![]), &run, true).await.unwrap();
        assert_eq!((running.committed, running.pending, running.not_committed.len()), (1, 2, 0));
        let done = status(&ctx, &fake(true, vec![failure]), &run, true).await.unwrap();
        assert_eq!(done.committed, 1);
        assert_eq!(done.failed.iter().map(|f| f.index).collect::<Vec<_>>(), [1]);
        assert_eq!(done.not_committed, [2], "ended without a marker: not committed");
        assert_eq!(done.failures(), 2);
        assert!(!done.succeeded(&WaitOptions::default()));
        let report = done.report.unwrap();
        let statuses: Vec<ChunkStatus> = report.chunks.iter().map(|c| c.status).collect();
        assert_eq!(statuses, [ChunkStatus::Succeeded, ChunkStatus::Failed, ChunkStatus::NotCommitted]);
        assert_eq!(report.chunks[1].log.as_deref(), Some("l"), "a failure keeps where its log is");
    }

    #[tokio::test]
    async fn a_marker_whose_output_changed_since_its_commit_does_not_count() {
        let (ctx, store) = memory();
        let run = record("bf-b", 2);
        commit(&store, "bf-b", 0).await;
        commit(&store, "bf-b", 1).await;
        store.put("out/part-00001", Bytes::from_static(b"a late writer\n")).await.unwrap();
        let now = status(&ctx, &fake(true, vec![]), &run, true).await.unwrap();
        assert_eq!((now.committed, now.not_committed.clone()), (1, vec![1]));
        let reason = now.report.unwrap().chunks[1].reason.clone().unwrap();
        assert!(reason.contains("changed after the commit"), "{reason}");
        // A poll lists markers only: it counts the marker, the final status does not.
        assert_eq!(status(&ctx, &fake(false, vec![]), &run, false).await.unwrap().committed, 2);
    }

    #[tokio::test]
    async fn a_finished_run_writes_its_report_once_and_gives_its_output_back() {
        let (ctx, store) = memory();
        let run = record("bf-c", 1);
        let output = ctx.stores.store(&Location::parse("s3://mem/out/").unwrap()).unwrap();
        claim::take(output.as_ref(), "bf-c").await.unwrap();
        claim::detach(output.as_ref(), "bf-c").await.unwrap();
        commit(&store, "bf-c", 0).await;
        let done = status(&ctx, &fake(true, vec![]), &run, true).await.unwrap();
        finish(&ctx, &run, &done).await.unwrap();
        assert!(claim::read(output.as_ref()).await.unwrap().is_none(), "the claim is released");
        let key = report::report_key("bf-c");
        assert!(output.head(&key).await.unwrap().is_some(), "the report is written");
        output.put(&key, Bytes::from_static(b"{\"kept\":true}")).await.unwrap();
        finish(&ctx, &run, &done).await.unwrap();
        let kept = crate::store::read_all(output.as_ref(), &key, None, None).await.unwrap();
        assert_eq!(&kept[..], b"{\"kept\":true}", "a finished run's report is written once");
    }

    #[tokio::test]
    async fn an_output_held_by_a_finished_run_is_taken_over_and_one_held_by_a_live_process_is_not() {
        let (ctx, store) = memory();
        let output = ctx.stores.store(&Location::parse("s3://mem/out/").unwrap()).unwrap();
        // Run A was handed over (no process holds it) and has finished: its record says local,
        // and no process runs it.
        let finished = record("bf-a", 1);
        record::save(&ctx, &finished).await.unwrap();
        claim::take(output.as_ref(), "bf-a").await.unwrap();
        claim::detach(output.as_ref(), "bf-a").await.unwrap();
        commit(&store, "bf-a", 0).await;
        assert_eq!(acquire(&ctx, output.as_ref(), "bf-b").await.unwrap().as_deref(), Some("bf-a"));
        assert_eq!(claim::read(output.as_ref()).await.unwrap().map(|c| c.run_id).as_deref(), Some("bf-b"));
        assert!(output.head(&report::report_key("bf-a")).await.unwrap().is_some(), "A was finished first");
        // B holds it with a live process (this one): a third run is refused.
        let refused = acquire(&ctx, output.as_ref(), "bf-c").await.unwrap_err();
        assert!(matches!(refused, Error::OutputClaimed { .. }), "{refused}");
    }

    #[tokio::test]
    async fn wait_polls_until_complete_or_its_timeout() {
        let (ctx, _) = memory();
        let run = record("bf-d", 1);
        let polls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = polls.clone();
        let options = WaitOptions {
            interval: std::time::Duration::from_millis(1),
            timeout: Some(std::time::Duration::from_millis(30)),
            on_progress: Some(Arc::new(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })),
            ..WaitOptions::default()
        };
        let never = wait(&ctx, &fake(false, vec![]), &run, &options).await.unwrap();
        assert!(!never.complete && polls.load(std::sync::atomic::Ordering::SeqCst) >= 2);
        let done = wait(&ctx, &fake(true, vec![]), &run, &options).await.unwrap();
        assert!(done.complete && done.report.is_some(), "the final status carries the report");
        let executor = fake(false, vec![]);
        assert_eq!(executor.cancel(&run, "test").await.unwrap(), ["fake"]);
        assert!(*executor.cancelled.lock().unwrap());
    }
}
