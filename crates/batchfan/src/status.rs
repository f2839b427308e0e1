//! One status model for every executor: counts per status, the chunks an executor gave up on
//! (one failure type for failed children and dead-lettered chunks), what each executor adds
//! (AWS Batch arrays, the queue's counts), and the committed chunks the completion markers say.

use std::collections::BTreeSet;

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::contract;
use crate::error::{Error, Result};
use crate::registry::StoreRegistry;
use crate::uri::Location;

/// The chunks of a run whose completion marker exists (one listing of the marker folder): what
/// is committed, whatever a scheduler reports.
pub async fn committed_chunks(stores: &StoreRegistry, run_id: &str, output: &str) -> Result<BTreeSet<u64>> {
    let store = stores.store(&Location::parse(output)?)?;
    // Runs of hundreds of thousands of chunks: the marker folder listed as key ranges at once.
    let listed =
        crate::listing::list(store.as_ref(), &contract::marker_prefix(run_id), crate::listing::DEFAULT_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await;
    let markers = match listed {
        Err(Error::NotFound { .. }) => Vec::new(),
        other => other?,
    };
    Ok(markers.iter().filter_map(|m| contract::marker_index(&m.key)).collect())
}

/// Children per status (AWS Batch's statuses; the local executor and queue runs use a subset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// Submitted, not yet evaluated (queue runs: messages queued).
    pub submitted: u64,
    /// Waiting on dependencies.
    pub pending: u64,
    /// Waiting for capacity (local: queued behind `--parallel`).
    pub runnable: u64,
    /// Being placed.
    pub starting: u64,
    /// Running (queue runs: messages in flight).
    pub running: u64,
    /// Finished successfully (as the executor says; committed is what the markers say).
    pub succeeded: u64,
    /// Finished with a failure after all attempts (queue runs: dead-lettered).
    pub failed: u64,
}

impl StatusCounts {
    /// All children counted.
    pub fn total(&self) -> u64 {
        self.submitted + self.pending + self.runnable + self.starting + self.running + self.succeeded + self.failed
    }

    /// Children that finished, either way.
    pub fn terminal(&self) -> u64 {
        self.succeeded + self.failed
    }

    /// True when every child has finished.
    pub fn is_complete(&self) -> bool {
        self.terminal() == self.total()
    }
}

/// A chunk the executor gave up on: a child that failed every attempt, or a chunk in the
/// dead-letter queue, with what is known about why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkFailure {
    /// Chunk index.
    pub index: u64,
    /// Attempts made (queue runs: receives).
    pub attempts: u32,
    /// Exit code of the last attempt, if it exited and the executor knows it.
    pub exit_code: Option<i32>,
    /// Why it failed (last log line, signal, the service's status reason, the worker's reason).
    pub reason: String,
    /// Where its log is (a local file or a CloudWatch log stream), when known.
    pub log: String,
    /// Every attempt the executor knows of, oldest first (the last one is this failure's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<AttemptReport>,
}

/// One attempt of a chunk: a local child process, an AWS Batch attempt, or a receive of a queue
/// message. Every field but `attempt` is optional: each executor knows a different part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptReport {
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The AWS Batch job id (`parent:index`) or the SQS message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// When it started (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_ms: Option<u64>,
    /// When it ended (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_unix_ms: Option<u64>,
    /// Its exit code, if it exited and the executor knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it ended without a commit (the service's status reason, a signal, the last log line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// True for the attempt that committed the chunk.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub committed: bool,
    /// Where its log is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<contract::LogLocation>,
    /// Items processed (committing attempts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<u64>,
    /// Input bytes read (committing attempts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    /// Output bytes written (committing attempts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// CPU time in user mode (worker and its programs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_user_ms: Option<u64>,
    /// CPU time in the kernel (worker and its programs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_system_ms: Option<u64>,
    /// Peak resident set size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
}

impl AttemptReport {
    /// Wall time, when its start and end are known.
    pub fn duration_ms(&self) -> Option<u64> {
        Some(self.ended_unix_ms?.saturating_sub(self.started_unix_ms?))
    }
}

/// One AWS Batch array (or plain job) of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArrayStatus {
    /// Job id.
    pub job_id: String,
    /// Job name.
    pub job_name: String,
    /// The parent's status (`SUBMITTED` ... `SUCCEEDED`, `FAILED`).
    pub status: String,
    /// Children per status.
    pub counts: StatusCounts,
    /// Redrive generation (0: the original submission).
    pub redrive: u32,
    /// The lane it is of a run capped with `--max-concurrency` (from 0), if it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane: Option<u32>,
}

/// Messages in a queue, as SQS approximates them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    /// Visible: waiting for a worker (`ApproximateNumberOfMessages`; CloudWatch's
    /// `ApproximateNumberOfMessagesVisible`).
    pub visible: u64,
    /// Received and not yet deleted: in flight (`ApproximateNumberOfMessagesNotVisible`).
    pub in_flight: u64,
    /// Delayed (`ApproximateNumberOfMessagesDelayed`).
    pub delayed: u64,
}

impl QueueCounts {
    /// All messages counted.
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// A chunk in a queue run's dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The chunk.
    pub chunk: u64,
    /// Receives before it was dead-lettered.
    pub receive_count: u32,
    /// Why: the worker's reason when it moved the message itself, else the redrive policy's.
    pub reason: String,
}

/// What one executor adds to a run's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum StatusDetail {
    /// AWS Batch: the arrays, and Batch's count of succeeded children when the markers say less.
    Batch {
        /// Per array, in submission order (redrives last).
        arrays: Vec<ArrayStatus>,
        /// Set when Batch reports more children succeeded than chunks have a marker, saying so.
        #[serde(skip_serializing_if = "Option::is_none")]
        disagreement: Option<String>,
    },
    /// A queue run: the queues' counts (all runs on them) and the run's dead-lettered chunks.
    Queue {
        /// The work queue.
        queue: QueueCounts,
        /// The dead-letter queue, if the queue has one.
        dead_letter_queue: Option<QueueCounts>,
        /// The run's chunks in the dead-letter queue and not committed.
        dead_lettered: Vec<DeadLetter>,
    },
    /// A local run: whether its process still runs, and where.
    Local {
        /// The process running the run, while one does (`host:pid`).
        #[serde(skip_serializing_if = "Option::is_none")]
        running_in: Option<String>,
    },
}

/// What an executor knows of a run now (one round of requests).
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    /// Children (or messages) per status.
    pub(crate) counts: StatusCounts,
    /// Nothing more happens without a redrive.
    pub(crate) complete: bool,
    /// Chunks the executor gave up on (filled when asked for details, and when complete).
    pub(crate) failed: Vec<ChunkFailure>,
    /// What this executor adds.
    pub(crate) detail: StatusDetail,
}
