//! The run report: one entry per chunk (status, attempts, exit code, reason, output key and
//! bytes), written to `_batchfan/runs/RUN/report.json` when a run ends, like the manifest Step
//! Functions' ResultWriter leaves. Built from what is in storage (the completion markers and the
//! committed outputs, two listings) and what the executor knows of failures.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::contract::META_DIR;
use crate::error::{Error, Result};
use crate::status::FailedChild;
use crate::uri::Location;

/// The report's format version.
pub const REPORT_VERSION: u32 = 1;

/// The report's key under the output location.
pub fn report_key(run_id: &str) -> String {
    format!("{META_DIR}/runs/{run_id}/report.json")
}

/// What became of one chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkReport {
    /// The chunk.
    pub index: u64,
    /// `SUCCEEDED` (its marker exists), `FAILED`, or `NOT_COMMITTED` (neither yet).
    pub status: String,
    /// Attempts made, when the executor knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Exit code of the last attempt of a failed chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why a chunk failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The committed output (`part-NNNNN`, with `.gz` / `.zst` when compressed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_key: Option<String>,
    /// Its size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
}

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
}

/// Builds the report of `run_id` (of `chunk_count` chunks, outputs under `output`) from its
/// markers and committed outputs, with `failed` from the executor. A failed chunk whose marker
/// exists (a redrive committed it) counts as succeeded.
pub async fn build(
    client: &Client,
    run_id: &str,
    output: &str,
    chunk_count: u64,
    failed: &[FailedChild],
) -> Result<RunReport> {
    let store = client.store(&Location::parse(output)?)?;
    let committed = crate::status::committed_chunks(client, run_id, output).await?;
    let parts = match store.list("part-").try_collect::<Vec<_>>().await {
        Err(Error::NotFound { .. }) => Vec::new(),
        other => other?,
    };
    // `part-00012` or `part-00012.gz`: the index is the digits after `part-`.
    let outputs: BTreeMap<u64, (String, u64)> = parts
        .into_iter()
        .filter_map(|o| {
            let digits: String = o.key.strip_prefix("part-")?.chars().take_while(char::is_ascii_digit).collect();
            Some((digits.parse().ok()?, (o.key, o.size)))
        })
        .collect();
    let failed: BTreeMap<u64, &FailedChild> = failed.iter().map(|f| (f.index, f)).collect();
    let mut report = RunReport {
        batchfan_report: REPORT_VERSION,
        run_id: run_id.to_string(),
        output: output.to_string(),
        succeeded: 0,
        failed: 0,
        not_committed: 0,
        chunks: Vec::with_capacity(chunk_count as usize),
    };
    for index in 0..chunk_count {
        let mut chunk = ChunkReport {
            index,
            status: String::new(),
            attempts: None,
            exit_code: None,
            reason: None,
            output_key: None,
            bytes_out: None,
        };
        if committed.contains(&index) {
            report.succeeded += 1;
            chunk.status = "SUCCEEDED".into();
            if let Some((key, bytes)) = outputs.get(&index) {
                chunk.output_key = Some(key.clone());
                chunk.bytes_out = Some(*bytes);
            }
        } else if let Some(f) = failed.get(&index) {
            report.failed += 1;
            chunk.status = "FAILED".into();
            chunk.attempts = Some(f.attempts);
            chunk.exit_code = f.exit_code;
            chunk.reason = Some(f.reason.clone());
        } else {
            report.not_committed += 1;
            chunk.status = "NOT_COMMITTED".into();
        }
        report.chunks.push(chunk);
    }
    Ok(report)
}

impl RunReport {
    /// Writes the report to `OUTPUT/_batchfan/runs/RUN/report.json`; returns its URI.
    pub async fn save(&self, client: &Client) -> Result<String> {
        let output = Location::parse(&self.output)?;
        let body = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Manifest { uri: self.output.clone(), reason: format!("report: {e}") })?;
        let key = report_key(&self.run_id);
        client.store(&output)?.put(&key, Bytes::from(body)).await?;
        Ok(output.join_display(&key))
    }
}
