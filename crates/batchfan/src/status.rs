//! One status model for every executor: counts per status and the failed children.

use std::collections::BTreeSet;

use futures_util::TryStreamExt;
use serde::Serialize;

use crate::client::Client;
use crate::contract;
use crate::error::{Error, Result};
use crate::uri::Location;

/// `1 chunk`, `2 chunks`: a count with its noun (singular, plural), for messages.
pub fn count_of(n: u64, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

/// The chunks of a run whose completion marker exists (one listing of the marker folder): what
/// is committed, whatever a scheduler reports.
pub async fn committed_chunks(client: &Client, run_id: &str, output: &str) -> Result<BTreeSet<u64>> {
    let store = client.store(&Location::parse(output)?)?;
    let listed = store.list(&contract::marker_prefix(run_id)).try_collect::<Vec<_>>().await;
    let markers = match listed {
        Err(Error::NotFound { .. }) => Vec::new(),
        other => other?,
    };
    Ok(markers.iter().filter_map(|m| contract::marker_index(&m.key)).collect())
}

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
