//! One status model for every executor: counts per status and the failed children.

use serde::Serialize;

/// Children per status (AWS Batch's statuses; the local executor uses a subset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    /// Submitted, not yet evaluated.
    pub submitted: u64,
    /// Waiting on dependencies.
    pub pending: u64,
    /// Waiting for capacity (local: queued behind `--parallel`).
    pub runnable: u64,
    /// Being placed.
    pub starting: u64,
    /// Running.
    pub running: u64,
    /// Finished successfully.
    pub succeeded: u64,
    /// Finished with a failure after all attempts.
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

/// A child that failed, with what is known about why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedChild {
    /// Chunk index.
    pub index: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Exit code of the last attempt, if it exited.
    pub exit_code: Option<i32>,
    /// Why it failed (last log line, signal, or the service's status reason).
    pub reason: String,
    /// Where its log is (a local file or a CloudWatch log stream).
    pub log: String,
}
