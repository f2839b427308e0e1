//! Every AWS Batch number batchfan checks, in one place.
//!
//! Values from the AWS Batch documentation and service quotas (2026). Requests are checked
//! against these before anything is sent: an emulator (moto) accepts what AWS would reject.

use crate::error::{Error, Result};

/// Fewest children of an array job (one chunk runs as a plain job).
pub const MIN_ARRAY_SIZE: usize = 2;
/// Most children of one array job.
pub const MAX_ARRAY_SIZE: usize = 10_000;
/// Most entries in `dependsOn`.
pub const MAX_DEPENDS_ON: usize = 20;
/// `retryStrategy.attempts` range.
pub const ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=10;
/// Most `evaluateOnExit` rules.
pub const MAX_EVALUATE_ON_EXIT: usize = 5;
/// Longest `onExitCode` / `onReason` / `onStatusReason` glob.
pub const MAX_EVALUATE_GLOB_CHARS: usize = 512;
/// Least `timeout.attemptDurationSeconds`.
pub const MIN_ATTEMPT_DURATION_SECONDS: u64 = 60;
/// Largest SubmitJob request payload in bytes.
pub const MAX_SUBMIT_PAYLOAD_BYTES: usize = 30 * 1024;
/// Largest job definition in bytes.
pub const MAX_JOB_DEFINITION_BYTES: usize = 24 * 1024;
/// Longest `containerOverrides` (characters, as serialized).
pub const MAX_CONTAINER_OVERRIDES_CHARS: usize = 8_192;
/// Most job ids per DescribeJobs call.
pub const MAX_DESCRIBE_JOBS_IDS: usize = 100;
/// SubmitJob calls per second per account.
pub const SUBMIT_JOB_RATE_PER_SECOND: u32 = 50;
/// Job and job definition name length range.
pub const NAME_LEN: std::ops::RangeInclusive<usize> = 1..=128;
/// `schedulingPriorityOverride` range.
pub const PRIORITY: std::ops::RangeInclusive<i32> = 0..=9999;
/// Container stop timeout range in seconds (SIGTERM to SIGKILL).
pub const STOP_TIMEOUT_SECONDS: std::ops::RangeInclusive<u32> = 2..=120;

/// Checks that a plan's chunk count fits one array job (or one plain job).
pub fn check_chunk_count(chunks: usize, limit: usize) -> Result<()> {
    if chunks > limit { Err(Error::TooManyChunks { chunks, limit }) } else { Ok(()) }
}

/// Checks a count option that must be at least 1 (and at most `max`, when given).
pub fn check_positive(field: &str, value: u64, max: Option<u64>) -> Result<()> {
    if value == 0 {
        return Err(Error::option(field, value, format!("must be at least 1{}", max_text(max))));
    }
    if let Some(max) = max.filter(|max| value > *max) {
        return Err(Error::option(field, value, format!("must be between 1 and {max}")));
    }
    Ok(())
}

fn max_text(max: Option<u64>) -> String {
    max.map(|m| format!(" and at most {m}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_count() {
        assert!(check_chunk_count(10_000, MAX_ARRAY_SIZE).is_ok());
        let err = check_chunk_count(10_001, MAX_ARRAY_SIZE).unwrap_err();
        assert!(err.to_string().contains("--max-items-per-chunk"), "{err}");
    }

    #[test]
    fn positive() {
        assert!(check_positive("--children", 0, Some(10)).unwrap_err().to_string().contains("--children = 0"));
        assert!(check_positive("--children", 11, Some(10)).is_err());
        assert!(check_positive("--children", 10, Some(10)).is_ok());
    }
}
