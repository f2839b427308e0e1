//! Past runs, as `batchfan runs` lists them: from the run notes and the records under an
//! output location, with counts from each run's report or its markers.

use futures_util::TryStreamExt;
use serde::Serialize;

use super::record::{self, RunKind, RunRecord};
use crate::context::Context;
use crate::contract::{META_DIR, RUN_RECORD_NAME};
use crate::error::{Error, Result};
use crate::uri::Location;

/// One past run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PastRun {
    /// The run id.
    pub run_id: String,
    /// What executed it.
    pub kind: RunKind,
    /// When it started (ms since the epoch; 0 in records of the first releases).
    pub started_unix_ms: u64,
    /// From its start to its last commit or attempt end, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Chunks in the plan.
    pub chunk_count: u64,
    /// Chunks committed.
    pub committed: u64,
    /// Chunks failed (known once the run is finished: its report).
    pub failed: u64,
    /// Chunks neither committed nor failed.
    pub pending: u64,
    /// `succeeded` (finished, every chunk committed), `failed` (finished with chunks not
    /// committed), or `unfinished` (no report yet: running, or never seen finished).
    pub status: String,
    /// The output location.
    pub output: String,
    /// Its record.
    pub record_uri: String,
}

/// The runs of the notes and (with `output`) of the records under `output`, newest first; a
/// run in both is listed once. A note whose record is gone is skipped.
pub(crate) async fn list(ctx: &Context, output: Option<&Location>) -> Result<Vec<PastRun>> {
    let mut uris: Vec<String> = Vec::new();
    if let Some(notes) = &ctx.runs_dir
        && let Ok(entries) = std::fs::read_dir(notes)
    {
        for entry in entries.flatten() {
            if let Ok(uri) = std::fs::read_to_string(entry.path()) {
                uris.push(uri.trim().to_string());
            }
        }
    }
    if let Some(output) = output {
        let runs = output.join_display(&format!("{META_DIR}/runs/"));
        let found: Vec<String> = match ctx
            .stores
            .store(&Location::parse(&runs)?)?
            .list("")
            .try_filter_map(
                |meta| async move { Ok(meta.key.ends_with(&format!("/{RUN_RECORD_NAME}")).then_some(meta.key)) },
            )
            .try_collect()
            .await
        {
            Err(Error::NotFound { .. }) => Vec::new(),
            other => other?,
        };
        uris.extend(found.iter().map(|key| format!("{runs}{key}")));
    }
    uris.sort();
    uris.dedup();
    let mut past = Vec::new();
    for uri in uris {
        // A note of a run whose output is gone, or unreadable: not a past run to list.
        let Ok(Some(found)) = record::read(&ctx.stores, &uri, &uri).await else { continue };
        if past.iter().any(|p: &PastRun| p.run_id == found.run_id && p.output == found.output) {
            continue;
        }
        past.push(summarize(ctx, &found).await?);
    }
    past.sort_by(|a, b| (b.started_unix_ms, &b.run_id).cmp(&(a.started_unix_ms, &a.run_id)));
    Ok(past)
}

async fn summarize(ctx: &Context, record: &RunRecord) -> Result<PastRun> {
    let store = ctx.stores.store(&Location::parse(&record.output)?)?;
    let markers = crate::report::read_markers(store.as_ref(), &record.run_id).await?;
    let report = crate::report::read(store.as_ref(), &record.run_id).await?;
    let last_commit = markers.values().map(|m| m.committed_unix_ms).max();
    let (committed, failed, status, last) = match &report {
        Some(r) => {
            let ended = r.chunks.iter().filter_map(|c| c.ended_unix_ms).max();
            let status = if r.succeeded == r.chunks.len() as u64 { "succeeded" } else { "failed" };
            (r.succeeded, r.failed, status, ended.max(last_commit))
        }
        None => (markers.len() as u64, 0, "unfinished", last_commit),
    };
    let started = record.created_unix_ms;
    Ok(PastRun {
        run_id: record.run_id.clone(),
        kind: record.kind(),
        started_unix_ms: started,
        duration_ms: last.filter(|_| started > 0).map(|l| l.saturating_sub(started)),
        chunk_count: record.chunk_count,
        committed,
        failed,
        pending: record.chunk_count.saturating_sub(committed + failed),
        status: status.to_string(),
        output: record.output.clone(),
        record_uri: record.record_uri.clone(),
    })
}
