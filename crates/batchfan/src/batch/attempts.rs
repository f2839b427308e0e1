//! Each attempt of an AWS Batch child as DescribeJobs tells it: start, stop, exit code, status
//! reason, and the CloudWatch Logs stream it wrote to.

use aws_sdk_batch::types as sdk;

use crate::contract::LogLocation;
use crate::status::AttemptReport;

/// The log group AWS Batch's `awslogs` driver writes to unless the job definition names one.
pub const DEFAULT_LOG_GROUP: &str = "/aws/batch/job";

/// The log group of a job: its container's `logConfiguration` option `awslogs-group`, else
/// [`DEFAULT_LOG_GROUP`].
fn log_group(job: &sdk::JobDetail) -> String {
    job.container()
        .and_then(|c| c.log_configuration())
        .and_then(|l| l.options())
        .and_then(|o| o.get("awslogs-group"))
        .cloned()
        .unwrap_or_else(|| DEFAULT_LOG_GROUP.to_string())
}

/// Every attempt of `job`, oldest first. A job still running has its current attempt only in
/// `container` (DescribeJobs lists finished attempts): it is added last.
pub(crate) fn attempt_history(job: &sdk::JobDetail) -> Vec<AttemptReport> {
    let group = log_group(job);
    let log = |stream: Option<&str>| {
        stream
            .filter(|s| !s.is_empty())
            .map(|s| LogLocation::Cloudwatch { group: group.clone(), stream: s.to_string() })
    };
    let job_id = job.job_id().map(str::to_string);
    let mut history: Vec<AttemptReport> = job
        .attempts()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let container = a.container();
            AttemptReport {
                attempt: i as u32 + 1,
                job_id: job_id.clone(),
                started_unix_ms: a.started_at().and_then(|t| u64::try_from(t).ok()),
                ended_unix_ms: a.stopped_at().and_then(|t| u64::try_from(t).ok()),
                exit_code: container.and_then(|c| c.exit_code()),
                reason: a.status_reason().or_else(|| container.and_then(|c| c.reason())).map(str::to_string),
                log: log(container.and_then(|c| c.log_stream_name())),
                ..AttemptReport::default()
            }
        })
        .collect();
    let running = matches!(job.status(), Some(sdk::JobStatus::Running | sdk::JobStatus::Starting));
    if running {
        let stream = job.container().and_then(|c| c.log_stream_name());
        history.push(AttemptReport {
            attempt: history.len() as u32 + 1,
            job_id,
            started_unix_ms: job.started_at().and_then(|t| u64::try_from(t).ok()),
            log: log(stream),
            ..AttemptReport::default()
        });
    }
    history
}

/// Every attempt of the chunks asked for, from DescribeJobs of their children only (100 ids a
/// call), in submission order across redrives, numbered on from one array to the next. A
/// chunk whose child has not started has no attempt; its job's status says why.
pub(crate) async fn chunk_attempts(
    ctx: &crate::context::Context,
    record: &super::BatchRecord,
    chunks: &std::collections::BTreeSet<u64>,
) -> crate::error::Result<std::collections::BTreeMap<u64, ChunkJobs>> {
    use std::collections::BTreeMap;
    let mut ids: Vec<(u64, String)> = Vec::new();
    for array in record.arrays.iter().filter(|a| !a.job_id.is_empty()) {
        for child in 0..array.size {
            let Some(chunk) = array.chunk_of(child) else { continue };
            if chunks.contains(&chunk) {
                let id = if array.size < 2 { array.job_id.clone() } else { format!("{}:{child}", array.job_id) };
                ids.push((chunk, id));
            }
        }
    }
    let mut found: BTreeMap<u64, ChunkJobs> = BTreeMap::new();
    for batch in ids.chunks(crate::limits::MAX_DESCRIBE_JOBS_IDS) {
        let names: Vec<String> = batch.iter().map(|(_, id)| id.clone()).collect();
        let out = super::call(ctx, "DescribeJobs", |b| b.describe_jobs().set_jobs(Some(names)).send()).await?;
        for (chunk, id) in batch {
            let entry = found.entry(*chunk).or_default();
            match out.jobs().iter().find(|j| j.job_id() == Some(id.as_str())) {
                Some(job) => {
                    let before = entry.attempts.len() as u32;
                    entry.attempts.extend(attempt_history(job).into_iter().map(|mut a| {
                        a.attempt += before;
                        a
                    }));
                    entry.waiting = job
                        .status()
                        .filter(|s| {
                            matches!(
                                s,
                                sdk::JobStatus::Submitted
                                    | sdk::JobStatus::Pending
                                    | sdk::JobStatus::Runnable
                                    | sdk::JobStatus::Starting
                            )
                        })
                        .map(|s| format!("job {id} is {} and has no log yet", s.as_str()));
                }
                None => {
                    entry.waiting = Some(format!(
                        "job {id} is not known to AWS Batch any more (finished jobs are kept about 7 days)"
                    ))
                }
            }
        }
    }
    Ok(found)
}

/// What DescribeJobs says of one chunk's children.
#[derive(Debug, Default)]
pub(crate) struct ChunkJobs {
    /// Every attempt, oldest first.
    pub(crate) attempts: Vec<AttemptReport>,
    /// Why its latest child has no log (yet), if so.
    pub(crate) waiting: Option<String>,
}
