//! What a queue run's record keeps (`"kind": "queue"`): the queue and what was sent.

use serde::{Deserialize, Serialize};

/// What a queue run's record keeps beside the head every run record has (see
/// [`crate::run::RunRecord`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecord {
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

/// One redrive of a queue run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRedrive {
    /// When (ms since the epoch).
    pub unix_ms: u64,
    /// The chunks sent again.
    pub chunks: Vec<u64>,
}
