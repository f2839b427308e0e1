//! The run record (`run.json` next to the manifest): what was submitted, so any machine can
//! find a run again by its id, its record URI or its output location.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::request::SubmitJobRequest;
use super::submit::{SubmitOptions, SubmitPlan};
use crate::client::Client;
use crate::contract::RUN_RECORD_VERSION;
use crate::error::Result;
use crate::layout;
use crate::runs::{self, RunKind};

/// One array (or plain job) of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayRecord {
    /// Job id (empty in a dry run).
    pub job_id: String,
    /// Job name.
    pub job_name: String,
    /// The manifest or view its children read.
    pub manifest: String,
    /// Children (1 for a plain job).
    pub size: u64,
    /// First chunk, when `indices` is empty.
    pub first: u64,
    /// Explicit chunks (redrives).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indices: Vec<u64>,
    /// 0 for the original submission, n for the n-th redrive.
    pub redrive: u32,
}

impl ArrayRecord {
    /// The chunk child `child` processes.
    pub fn chunk_of(&self, child: u64) -> Option<u64> {
        if child >= self.size {
            None
        } else if self.indices.is_empty() {
            Some(self.first + child)
        } else {
            self.indices.get(child as usize).copied()
        }
    }

    pub(super) fn chunks(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.size).filter_map(|c| self.chunk_of(c))
    }
}

/// Everything needed to find a run again: written next to the manifest as `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Format version, [`RUN_RECORD_VERSION`] (records of the first releases lack it: 1).
    #[serde(default = "first_version")]
    pub batchfan_run: u32,
    /// Always [`RunKind::Batch`].
    #[serde(default)]
    pub kind: RunKind,
    /// The run id.
    pub run_id: String,
    /// Where this record is.
    pub record_uri: String,
    /// The manifest.
    pub manifest: String,
    /// Output location.
    pub output: String,
    /// Chunks in the plan.
    pub chunk_count: u64,
    /// When submitted (ms since the epoch).
    pub created_unix_ms: u64,
    /// The arrays, in submission order (redrives last).
    pub arrays: Vec<ArrayRecord>,
    /// The request every array was made from (redrives reuse it).
    pub template: SubmitJobRequest,
    /// The submit options as given.
    #[serde(default)]
    pub options: StoredOptions,
}

fn first_version() -> u32 {
    1
}

impl RunRecord {
    /// A record of `plan` before any array is submitted.
    pub(super) fn new(
        plan: &SubmitPlan,
        manifest: &str,
        output: &str,
        template: SubmitJobRequest,
        options: StoredOptions,
    ) -> RunRecord {
        RunRecord {
            batchfan_run: RUN_RECORD_VERSION,
            kind: RunKind::Batch,
            run_id: plan.run_id.clone(),
            record_uri: plan.record_uri.clone(),
            manifest: manifest.to_string(),
            output: output.to_string(),
            chunk_count: plan.chunk_count,
            created_unix_ms: layout::now_ms(),
            arrays: Vec::new(),
            template,
            options,
        }
    }
}

/// The submit options as a run record keeps them. Every field has a default, so a record
/// written before an option existed still reads, and unknown fields (from a newer release) are
/// ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredOptions {
    /// Job queue.
    pub job_queue: String,
    /// Job definition.
    pub job_definition: String,
    /// Job name, when given.
    pub name: Option<String>,
    /// `--depends-on` entries.
    pub depends_on: Vec<String>,
    /// Arrays chained one after another.
    pub sequential: bool,
    /// `retryStrategy.attempts`.
    pub attempts: Option<u32>,
    /// `--retry-on-spot`.
    pub retry_on_spot: bool,
    /// `timeout.attemptDurationSeconds`.
    pub timeout_seconds: Option<u32>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Tags propagated to ECS tasks.
    pub propagate_tags: bool,
    /// Fair-share identifier.
    pub share_identifier: Option<String>,
    /// Scheduling priority override.
    pub priority: Option<i32>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// vCPU override.
    pub vcpu: Option<f64>,
    /// Memory override (MiB).
    pub memory: Option<u32>,
}

impl From<&SubmitOptions> for StoredOptions {
    fn from(o: &SubmitOptions) -> StoredOptions {
        StoredOptions {
            job_queue: o.job_queue.clone(),
            job_definition: o.job_definition.clone(),
            name: o.name.clone(),
            depends_on: o.depends_on.clone(),
            sequential: o.sequential,
            attempts: o.attempts,
            retry_on_spot: o.retry_on_spot,
            timeout_seconds: o.timeout_seconds,
            tags: o.tags.clone(),
            propagate_tags: o.propagate_tags,
            share_identifier: o.share_identifier.clone(),
            priority: o.priority,
            env: o.env.clone(),
            vcpu: o.vcpu,
            memory: o.memory,
        }
    }
}

/// Writes the run record next to the manifest, and notes its URI under the run id.
pub async fn save_run(client: &Client, record: &RunRecord) -> Result<()> {
    runs::save_record(client, &record.run_id, &record.record_uri, record).await
}

/// Finds an AWS Batch run by id, record URI, or output location (see [`runs::find_record`]).
pub async fn find_run(client: &Client, run: &str) -> Result<RunRecord> {
    let found = runs::find_record(client, run).await?;
    if found.kind != RunKind::Batch {
        return Err(found.wrong_kind("an AWS Batch run"));
    }
    found.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_records_map_children_to_chunks() {
        let a = ArrayRecord {
            job_id: "j".into(),
            job_name: "n".into(),
            manifest: "m".into(),
            size: 3,
            first: 10_000,
            indices: vec![],
            redrive: 0,
        };
        assert_eq!(a.chunk_of(2), Some(10_002));
        assert_eq!(a.chunk_of(3), None);
        let r = ArrayRecord { indices: vec![4, 9], size: 2, ..a };
        assert_eq!(r.chunks().collect::<Vec<_>>(), vec![4, 9]);
    }

    #[test]
    fn records_of_older_releases_and_added_options_still_read() {
        // A record as the first release wrote it: no version, options without later fields.
        let old = r#"{"run_id":"bf-1","record_uri":"s3://b/o/run.json","manifest":"s3://b/o/m.jsonl","output":"s3://b/o/",
            "chunk_count":2,"created_unix_ms":1,"arrays":[],"template":{"jobName":"bf-1","jobQueue":"q","jobDefinition":"d"},
            "options":{"job_queue":"q","job_definition":"d","some_future_option":true}}"#;
        let record: RunRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.batchfan_run, 1);
        assert_eq!(record.options.job_queue, "q");
        assert_eq!(record.options.attempts, None);
    }
}
