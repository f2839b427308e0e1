//! Each attempt of an AWS Batch child as DescribeJobs tells it: start, stop, exit code, status
//! reason, and the CloudWatch Logs stream it wrote to.

use aws_sdk_batch::types as sdk;

use crate::contract::LogLocation;
use crate::status::AttemptReport;

/// The log group AWS Batch's `awslogs` driver writes to unless the job definition names one.
pub const DEFAULT_LOG_GROUP: &str = "/aws/batch/job";

/// The log group of a job: its container's `logConfiguration` option `awslogs-group`, else
/// [`DEFAULT_LOG_GROUP`].
#[allow(dead_code)] // used by `logs`
pub(crate) fn log_group(job: &sdk::JobDetail) -> String {
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
