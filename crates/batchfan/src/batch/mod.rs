//! The AWS Batch control plane: job definitions, submitting runs as array jobs, watching them
//! with one DescribeJobs call per poll, cancelling, and redriving failed chunks.
//!
//! Every request is checked against [`crate::limits`] before it is sent and goes through the
//! [`crate::Client`]'s rate limiter; the SDK's retry machinery (configured per client, see
//! [`crate::ClientBuilder::retry_config`]) retries throttling (HTTP 429,
//! `TooManyRequestsException`) and transient failures. SubmitJob alone is never resent blindly:
//! after an unknown outcome the job is looked up by its name first.

mod attempts;
mod cancel;
mod capacity;
mod jobdef;
mod record;
mod redrive;
mod request;
mod status;
mod submit;
mod workers;

use std::future::Future;
use std::time::Duration;

use aws_sdk_batch::error::{ProvideErrorMetadata, SdkError};

pub use self::attempts::DEFAULT_LOG_GROUP;
pub(crate) use self::attempts::{attempt_history, chunk_attempts};
pub(crate) use self::cancel::cancel;
pub use self::capacity::{StuckChild, StuckReport};
pub(crate) use self::capacity::{job_shape, queue_environments, stuck};
pub(crate) use self::jobdef::describe_definition;
pub(crate) use self::jobdef::register_job_definition;
pub use self::jobdef::{
    ContainerSpec, EphemeralStorageSpec, FargatePlatformSpec, JobDefinitionSpec, KeyValue, LinuxParametersSpec,
    LogConfigurationSpec, NetworkConfigurationSpec, Registered, ResourceRequirementSpec, RetryStrategySpec, RuleSpec,
    RuntimePlatformSpec, SecretSpec, ShortForm, TimeoutSpec,
};
pub use self::record::{ArrayRecord, BatchRecord};
pub(crate) use self::redrive::redrive;
pub use self::request::{
    ArrayPropertiesSpec, ContainerOverridesSpec, DependencySpec, SubmitJobRequest, retry_on_spot_rules,
};
pub(crate) use self::status::observe;
pub use self::submit::{LANE_FIRST_CHUNKS, Lane, MAX_RUN_CHUNKS, SubmitOptions, SubmitPlan, plan_submit};
pub(crate) use self::submit::{check_and_plan, send_array, write_views};
pub use self::workers::{LiveWorker, WorkerJobs};
use crate::context::Context;
use crate::error::{Error, Result};

/// Full-jitter exponential backoff between SubmitJob rounds: a random wait up to
/// `100 ms * 2^round`, at most 10 s.
fn backoff(round: u32) -> Duration {
    let cap = (100u64 << round.min(7)).min(10_000);
    Duration::from_millis(fastrand::u64(0..=cap))
}

/// Maps an SDK error to a batchfan error, keeping it as the source: 4xx client errors are the
/// caller's to fix; throttling, network errors and 5xx are transient.
fn classify<E>(op: &'static str, err: SdkError<E, aws_sdk_batch::config::http::HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let Some(e) = crate::error::environment_error(&err) {
        return e;
    }
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string);
    let message = match (code.as_deref(), err.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => format!("{code} (HTTP {})", status.unwrap_or(0)),
        _ => crate::error::one_line(&err),
    };
    let throttled =
        status == Some(429) || matches!(code.as_deref(), Some("TooManyRequestsException" | "ThrottlingException"));
    let service = matches!(err, SdkError::ServiceError(_));
    let construction = matches!(err, SdkError::ConstructionFailure(_));
    let source = Some(Box::new(err) as crate::BoxError);
    match () {
        () if service && (throttled || matches!(status, Some(500..=599))) => {
            Error::Batch { op, message, transient: true, source }
        }
        () if service => Error::BatchRejected { op, message, source },
        () if construction => Error::Batch { op, message, transient: false, source },
        () => Error::Batch { op, message, transient: true, source },
    }
}

/// Sends one Batch request in the client's rate limiter; the SDK retries transient failures.
pub(crate) async fn call<'c, T, E, F, Fut>(ctx: &'c Context, op: &'static str, send: F) -> Result<T>
where
    F: FnOnce(&'c aws_sdk_batch::Client) -> Fut,
    Fut: Future<Output = std::result::Result<T, SdkError<E, aws_sdk_batch::config::http::HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let batch = ctx.aws.batch().await;
    ctx.aws.batch_slot().await;
    send(batch).await.map_err(|e| classify(op, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        for t in 0..20 {
            assert!(backoff(t) <= Duration::from_millis(10_000));
        }
        assert!(backoff(1) <= Duration::from_millis(200));
    }
}
