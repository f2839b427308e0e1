//! The run report: one entry per chunk (status, attempts, exit code, reason, output key and
//! bytes), written to `_batchfan/runs/RUN/report.json` when a run ends, like the manifest Step
//! Functions' ResultWriter leaves. Built from what is in storage (the completion markers and the
//! committed outputs, two listings) and what the executor knows of failures.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::contract::{META_DIR, Marker};
use crate::error::{Error, Result};
use crate::registry::StoreRegistry;
use crate::status::ChunkFailure;
use crate::store::{ObjectMeta, Store};
use crate::uri::Location;

/// The report's format version.
pub const REPORT_VERSION: u32 = 1;

/// The report's key under the output location.
pub fn report_key(run_id: &str) -> String {
    format!("{META_DIR}/runs/{run_id}/report.json")
}

/// The key of the report's page (`report.html`, written by builds with the `html` feature)
/// beside [`report_key`].
pub fn report_html_key(run_id: &str) -> String {
    format!("{META_DIR}/runs/{run_id}/report.html")
}

/// What became of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ChunkStatus {
    /// Its completion marker exists and every object it committed is as it was committed.
    Succeeded,
    /// The executor gave up on it (all attempts failed, or it was dead-lettered).
    Failed,
    /// Neither: still to run, running, or a child that ended without committing (a Batch
    /// child that exited 0 without the harness), or its committed output was overwritten.
    NotCommitted,
}

impl ChunkStatus {
    /// The name as the report writes it: `SUCCEEDED`, `FAILED`, `NOT_COMMITTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkStatus::Succeeded => "SUCCEEDED",
            ChunkStatus::Failed => "FAILED",
            ChunkStatus::NotCommitted => "NOT_COMMITTED",
        }
    }
}

impl std::fmt::Display for ChunkStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of one chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkReport {
    /// The chunk.
    pub index: u64,
    /// What became of it.
    pub status: ChunkStatus,
    /// Attempts made, when known (the committing attempt, for succeeded chunks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Exit code of the last attempt of a failed chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why a chunk failed, or why a marker is not trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The committed output (`part-NNNNN`, with `.gz` / `.zst` when compressed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_key: Option<String>,
    /// Its size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// Where the failed attempt's log is (a local file or a CloudWatch log stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Items the chunk committed without (skipped by their handler), with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<crate::contract::SkippedItem>,
    /// When the last (or committing) attempt started (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_ms: Option<u64>,
    /// When it ended: the commit, or the end of the failed attempt (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_unix_ms: Option<u64>,
    /// Items processed by the committing attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<u64>,
    /// Input bytes read by the committing attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    /// CPU time in user mode of the committing attempt, its worker and the programs it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_user_ms: Option<u64>,
    /// CPU time in the kernel, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_system_ms: Option<u64>,
    /// Peak resident set size of the worker or of its largest program, whichever is larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// The AWS Batch job id (`parent:index`) or SQS message id of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Every attempt known, oldest first: failed ones included (from the local runner, or
    /// DescribeJobs for AWS Batch), the committing one last with its marker's figures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_history: Vec<AttemptReport>,
}

impl ChunkReport {
    /// An entry with only the index and status set.
    pub fn new(index: u64, status: ChunkStatus) -> ChunkReport {
        ChunkReport {
            index,
            status,
            attempts: None,
            exit_code: None,
            reason: None,
            output_key: None,
            bytes_out: None,
            log: None,
            skipped: Vec::new(),
            started_unix_ms: None,
            ended_unix_ms: None,
            items: None,
            bytes_in: None,
            cpu_user_ms: None,
            cpu_system_ms: None,
            peak_rss_bytes: None,
            job_id: None,
            attempt_history: Vec::new(),
        }
    }

    /// Wall time of the last attempt, when its start and end are known.
    pub fn duration_ms(&self) -> Option<u64> {
        Some(self.ended_unix_ms?.saturating_sub(self.started_unix_ms?))
    }
}

pub use crate::contract::LogLocation;
pub use crate::status::AttemptReport;

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// [`REPORT_VERSION`].
    pub batchfan_report: u32,
    /// The run.
    pub run_id: String,
    /// Its output location.
    pub output: String,
    /// Chunks succeeded (committed).
    pub succeeded: u64,
    /// Chunks failed.
    pub failed: u64,
    /// Chunks neither committed nor failed.
    pub not_committed: u64,
    /// One entry per chunk, by index.
    pub chunks: Vec<ChunkReport>,
    /// The cost estimate made before the run started (`submit --estimate`), as
    /// [`crate::price::Estimate`] serializes it; absent when none was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<serde_json::Value>,
}

/// The completion markers of a run, read (16 at a time), by chunk index. Markers of other runs
/// are never among them: each run's markers live in its own folder.
pub async fn read_markers(store: &dyn Store, run_id: &str) -> Result<BTreeMap<u64, Marker>> {
    use futures_util::StreamExt;
    let listed =
        match crate::listing::list(store, &crate::contract::marker_prefix(run_id), crate::listing::DEFAULT_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await
        {
            Err(Error::NotFound { .. }) => Vec::new(),
            other => other?,
        };
    let read: Vec<Result<Option<(u64, Marker)>>> = futures_util::stream::iter(listed)
        .map(|meta| async move {
            let Some(index) = crate::contract::marker_index(&meta.key) else { return Ok(None) };
            let bytes = match crate::store::read_all(store, &meta.key, None, None).await {
                Err(Error::NotFound { .. }) => return Ok(None),
                other => other?,
            };
            // A marker is written after its outputs; one that does not parse still says so.
            let marker = serde_json::from_slice(&bytes).unwrap_or_else(|_| Marker { index, ..Marker::default() });
            Ok(Some((index, marker)))
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut markers = BTreeMap::new();
    for entry in read {
        if let Some((index, marker)) = entry? {
            markers.insert(index, marker);
        }
    }
    Ok(markers)
}

/// Why a marker is not to be trusted: an object it committed is gone, or has another version
/// than the one the commit wrote (a late writer of a replaced run overwrote it). `None` when
/// every object is as committed, or the marker (of an earlier release) recorded no versions.
pub fn untrusted(marker: &Marker, now: &BTreeMap<String, Option<ObjectMeta>>) -> Option<String> {
    marker.versions.iter().find_map(|(key, committed)| match now.get(key).and_then(|m| m.as_ref()) {
        Some(meta) if meta.version().as_ref() == Some(committed) => None,
        Some(_) => Some(format!(
            "its output `{key}` changed after the commit (overwritten by another writer, such as a child of a replaced run): redrive the chunk"
        )),
        None => Some(format!("its output `{key}` is gone since the commit: redrive the chunk")),
    })
}

/// What the objects `markers` committed are now (one listing of `store`): `None` for a gone one.
pub async fn versions_now(
    store: &dyn Store,
    markers: &BTreeMap<u64, Marker>,
) -> Result<BTreeMap<String, Option<ObjectMeta>>> {
    let mut now: BTreeMap<String, Option<ObjectMeta>> = markers
        .values()
        .flat_map(|m| m.versions.keys().chain(std::iter::once(&m.output_key)).chain(m.objects.iter()))
        .filter(|k| !k.is_empty())
        .map(|k| (k.clone(), None))
        .collect();
    if now.is_empty() {
        return Ok(now);
    }
    let mut listing = store.list("");
    while let Some(meta) = listing.try_next().await.or_else(|e| match e {
        Error::NotFound { .. } => Ok(None),
        e => Err(e),
    })? {
        if let Some(slot) = now.get_mut(&meta.key) {
            *slot = Some(meta);
        }
    }
    Ok(now)
}

/// Builds the report of `run_id` (of `chunk_count` chunks, outputs under `output`) from its
/// markers, checked against what the output holds now, with `failed` from the executor. A
/// failed chunk whose marker exists (a redrive committed it) counts as succeeded.
pub async fn build(
    stores: &StoreRegistry,
    run_id: &str,
    output: &str,
    chunk_count: u64,
    failed: &[ChunkFailure],
) -> Result<RunReport> {
    let store = stores.store(&Location::parse(output)?)?;
    let markers = read_markers(store.as_ref(), run_id).await?;
    let now = versions_now(store.as_ref(), &markers).await?;
    let failed: BTreeMap<u64, &ChunkFailure> = failed.iter().map(|f| (f.index, f)).collect();
    let mut report = RunReport {
        batchfan_report: REPORT_VERSION,
        run_id: run_id.to_string(),
        output: output.to_string(),
        succeeded: 0,
        failed: 0,
        not_committed: 0,
        chunks: Vec::with_capacity(chunk_count as usize),
        estimate: None,
    };
    for index in 0..chunk_count {
        let mut chunk = ChunkReport::new(index, ChunkStatus::NotCommitted);
        let marker = markers.get(&index);
        let distrust = marker.and_then(|m| untrusted(m, &now));
        match (marker, distrust) {
            (Some(marker), None) => {
                chunk.status = ChunkStatus::Succeeded;
                chunk.attempts = (marker.attempt > 0).then_some(marker.attempt);
                if !marker.output_key.is_empty() {
                    chunk.output_key = Some(marker.output_key.clone());
                    chunk.bytes_out = Some(marker.bytes_out);
                }
                chunk.skipped = marker.skipped.clone();
                fill_from_marker(&mut chunk, marker, failed.get(&index).copied());
            }
            (Some(_), Some(reason)) => chunk.reason = Some(reason),
            (None, _) => {
                if let Some(f) = failed.get(&index) {
                    chunk.status = ChunkStatus::Failed;
                    chunk.attempts = Some(f.attempts);
                    chunk.exit_code = f.exit_code;
                    chunk.reason = Some(f.reason.clone());
                    chunk.log = Some(f.log.clone()).filter(|l| !l.is_empty());
                    chunk.attempt_history = f.history.clone();
                    if let Some(last) = f.history.last() {
                        chunk.started_unix_ms = last.started_unix_ms;
                        chunk.ended_unix_ms = last.ended_unix_ms;
                        chunk.job_id = last.job_id.clone();
                    }
                }
            }
        }
        match chunk.status {
            ChunkStatus::Succeeded => report.succeeded += 1,
            ChunkStatus::Failed => report.failed += 1,
            ChunkStatus::NotCommitted => report.not_committed += 1,
        }
        report.chunks.push(chunk);
    }
    Ok(report)
}

/// The committing attempt's figures from its marker, after the failed attempts the executor
/// knows of (a redrive that committed a failed chunk keeps the failures in its history).
fn fill_from_marker(chunk: &mut ChunkReport, marker: &Marker, earlier: Option<&ChunkFailure>) {
    let job_id = marker.message_id.clone().or_else(|| Some(marker.job_id.clone()).filter(|j| !j.is_empty()));
    chunk.started_unix_ms = marker.started_unix_ms;
    chunk.ended_unix_ms = Some(marker.committed_unix_ms).filter(|&t| t > 0);
    chunk.items = Some(marker.items);
    chunk.bytes_in = Some(marker.bytes_in);
    chunk.cpu_user_ms = marker.cpu_user_ms;
    chunk.cpu_system_ms = marker.cpu_system_ms;
    chunk.peak_rss_bytes = marker.peak_rss_bytes;
    chunk.job_id = job_id.clone();
    if let Some(log) = &marker.log {
        chunk.log = Some(log.to_string());
    }
    let mut history: Vec<AttemptReport> = earlier.map(|f| f.history.clone()).unwrap_or_default();
    history.retain(|a| a.attempt < marker.attempt || marker.attempt == 0);
    history.push(AttemptReport {
        attempt: marker.attempt,
        job_id,
        started_unix_ms: chunk.started_unix_ms,
        ended_unix_ms: chunk.ended_unix_ms,
        exit_code: Some(0),
        reason: None,
        committed: true,
        log: marker.log.clone(),
        items: Some(marker.items),
        bytes_in: Some(marker.bytes_in),
        bytes_out: Some(marker.bytes_out),
        cpu_user_ms: marker.cpu_user_ms,
        cpu_system_ms: marker.cpu_system_ms,
        peak_rss_bytes: marker.peak_rss_bytes,
    });
    chunk.attempt_history = history;
}

/// The report a run wrote, if any (one it cannot read counts as none).
pub async fn read(store: &dyn Store, run_id: &str) -> Result<Option<RunReport>> {
    match crate::store::read_all(store, &report_key(run_id), None, None).await {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl RunReport {
    /// The failed attempts of chunks that committed later, as [`ChunkFailure`]s carrying their
    /// history: a report built again from the markers keeps them (a local run's executor
    /// knows failures only from the report it wrote).
    pub fn earlier_failures(&self) -> Vec<ChunkFailure> {
        self.chunks
            .iter()
            .filter(|c| c.status == ChunkStatus::Succeeded && c.attempt_history.iter().any(|a| !a.committed))
            .map(|c| {
                let failed: Vec<AttemptReport> = c.attempt_history.iter().filter(|a| !a.committed).cloned().collect();
                let last = failed.last();
                ChunkFailure {
                    index: c.index,
                    attempts: last.map_or(0, |a| a.attempt),
                    exit_code: last.and_then(|a| a.exit_code),
                    reason: last.and_then(|a| a.reason.clone()).unwrap_or_default(),
                    log: last.and_then(|a| a.log.as_ref()).map(|l| l.to_string()).unwrap_or_default(),
                    history: failed,
                }
            })
            .collect()
    }

    /// The failed chunks, as the executor reported them.
    pub fn failures(&self) -> Vec<ChunkFailure> {
        self.chunks
            .iter()
            .filter(|c| c.status == ChunkStatus::Failed)
            .map(|c| ChunkFailure {
                index: c.index,
                attempts: c.attempts.unwrap_or(0),
                exit_code: c.exit_code,
                reason: c.reason.clone().unwrap_or_default(),
                log: c.log.clone().unwrap_or_default(),
                history: c.attempt_history.clone(),
            })
            .collect()
    }

    /// Writes the report to `OUTPUT/_batchfan/runs/RUN/report.json`; returns its URI.
    pub async fn save(&self, stores: &StoreRegistry) -> Result<String> {
        let output = Location::parse(&self.output)?;
        let body = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Manifest { uri: self.output.clone(), reason: format!("report: {e}") })?;
        let key = report_key(&self.run_id);
        stores.store(&output)?.put(&key, Bytes::from(body)).await?;
        Ok(output.join_display(&key))
    }
}
