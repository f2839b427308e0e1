//! What an AWS Batch run's record keeps: the arrays submitted and the request they came from.

use serde::{Deserialize, Serialize};

use super::request::SubmitJobRequest;
use super::submit::SubmitOptions;

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

/// What an AWS Batch run's record keeps beside the head every run record has (see
/// [`crate::run::RunRecord`]): the arrays sent, the request they were made from, the options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// The arrays, in submission order (redrives last).
    pub arrays: Vec<ArrayRecord>,
    /// The request every array was made from (redrives reuse it).
    pub template: SubmitJobRequest,
    /// The submit options as given (an option added later reads as its default).
    #[serde(default)]
    pub options: SubmitOptions,
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
    fn options_of_older_releases_and_added_options_still_read() {
        // Options as the first release wrote them: without later fields, with a future one.
        let old = r#"{"arrays":[],"template":{"jobName":"bf-1","jobQueue":"q","jobDefinition":"d"},
            "options":{"job_queue":"q","job_definition":"d","some_future_option":true}}"#;
        let record: BatchRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.options.job_queue, "q");
        assert_eq!(record.options.attempts, None);
    }
}
