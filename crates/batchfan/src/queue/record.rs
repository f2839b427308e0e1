//! The record of a queue run (`run.json` next to the manifest, `"kind": "queue"`).

use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::Result;
use crate::runs::{self, RunKind};

/// What was sent, so `status`, `wait` and `redrive` can find a queue run again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRunRecord {
    /// Format version, [`crate::contract::RUN_RECORD_VERSION`].
    pub batchfan_run: u32,
    /// Always [`RunKind::Queue`].
    pub kind: RunKind,
    /// The run id.
    pub run_id: String,
    /// Where this record is.
    pub record_uri: String,
    /// The manifest.
    pub manifest: String,
    /// Output location.
    pub output: String,
    /// Chunks in the plan (one message each).
    pub chunk_count: u64,
    /// When the run was enqueued (ms since the epoch).
    pub created_unix_ms: u64,
    /// The work queue.
    pub queue_url: String,
    /// Whether it is a FIFO queue.
    #[serde(default)]
    pub fifo: bool,
    /// Its dead-letter queue when the run was enqueued, if it had one.
    #[serde(default)]
    pub dead_letter_queue_url: Option<String>,
    /// Messages sent so far (all chunks once the enqueue finished).
    #[serde(default)]
    pub sent: u64,
    /// Dead-lettered chunks sent to the work queue again, in order.
    #[serde(default)]
    pub redrives: Vec<QueueRedrive>,
}

/// One `batchfan redrive` of a queue run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRedrive {
    /// When (ms since the epoch).
    pub unix_ms: u64,
    /// The chunks sent again.
    pub chunks: Vec<u64>,
}

/// Finds a queue run by id, record URI, or output location (see [`runs::find_record`]).
pub async fn find_queue_run(client: &Client, run: &str) -> Result<QueueRunRecord> {
    let found = runs::find_record(client, run).await?;
    if found.kind != RunKind::Queue {
        return Err(found.wrong_kind("a queue run"));
    }
    found.parse()
}

impl QueueRunRecord {
    /// Writes the record and notes it under the run id.
    pub async fn save(&self, client: &Client) -> Result<()> {
        runs::save_record(client, &self.run_id, &self.record_uri, self).await
    }
}
