//! The AWS Batch control plane: job definitions, submitting runs as array jobs, watching them
//! with one DescribeJobs call per poll, cancelling, and redriving failed chunks.
//!
//! Every request is checked against [`crate::limits`] before it is sent, goes through one
//! process-wide rate limiter, and is retried with exponential backoff and full jitter on
//! throttling (HTTP 429, `TooManyRequestsException`) and transient failures.

mod jobdef;
mod request;
mod runs;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_batch::Client;
use aws_sdk_batch::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_batch::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_batch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use tokio::sync::{Mutex, OnceCell};

pub use self::jobdef::{
    ContainerSpec, JobDefinitionSpec, KeyValue, Registered, ResourceRequirementSpec, RetryStrategySpec, RuleSpec,
    ShortForm, TimeoutSpec, register_job_definition,
};
pub use self::request::{
    ArrayPropertiesSpec, ContainerOverridesSpec, DependencySpec, SubmitJobRequest, retry_on_spot_rules,
};
pub use self::runs::{
    ArrayRecord, FailedChildren, RunRecord, RunStatus, SubmitOptions, SubmitPlan, cancel, failed_children, find_run,
    plan_submit, redrive, run_status, save_run, submit, wait,
};
use crate::error::{Error, Result};

static CLIENT: OnceCell<Client> = OnceCell::const_new();
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static NEXT_SLOT: Mutex<Option<Instant>> = Mutex::const_new(None);
/// Most tries of one call (the first and the retries).
const MAX_TRIES: u32 = 8;

/// Counts every HTTP request the Batch client transmits (retries included).
#[derive(Debug)]
struct CountRequests;

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "batchfan-count-requests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), aws_sdk_batch::error::BoxError> {
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// HTTP requests sent to AWS Batch by this process so far.
pub fn request_count() -> u64 {
    REQUESTS.load(Ordering::Relaxed)
}

/// The process-wide Batch client. Its own retries are off: batchfan retries every call with the shared
/// rate limiter, so throttling backs off across every task of the process.
pub async fn client() -> Client {
    CLIENT
        .get_or_init(|| async {
            let config = crate::aws::sdk_config().await;
            let conf = aws_sdk_batch::config::Builder::from(config)
                .retry_config(aws_sdk_batch::config::retry::RetryConfig::disabled())
                .interceptor(CountRequests)
                .build();
            Client::from_conf(conf)
        })
        .await
        .clone()
}

/// Requests per second for all Batch calls of this process (`BATCHFAN_BATCH_RPS`, default 10).
fn rate() -> f64 {
    std::env::var("BATCHFAN_BATCH_RPS").ok().and_then(|v| v.parse::<f64>().ok()).filter(|r| *r > 0.0).unwrap_or(10.0)
}

/// Waits for this call's slot in the shared rate limiter.
async fn acquire() {
    let wait = {
        let mut next = NEXT_SLOT.lock().await;
        let now = Instant::now();
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + Duration::from_secs_f64(1.0 / rate()));
        slot - now
    };
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

/// Full-jitter exponential backoff: a random wait up to `100 ms * 2^try`, at most 10 s.
fn backoff(try_number: u32) -> Duration {
    let cap = (100u64 << try_number.min(7)).min(10_000);
    let nanos = Instant::now().elapsed().as_nanos() as u64
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64);
    let random = nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    Duration::from_millis(random % (cap + 1))
}

/// Maps an SDK error to a batchfan error: 4xx client errors are the caller's to fix, throttling,
/// network errors and 5xx are transient.
fn classify<E>(op: &'static str, err: SdkError<E, aws_sdk_batch::config::http::HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string);
    let message = match (code.as_deref(), err.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        _ => DisplayErrorContext(&err).to_string(),
    };
    let throttled =
        status == Some(429) || matches!(code.as_deref(), Some("TooManyRequestsException" | "ThrottlingException"));
    match &err {
        SdkError::ServiceError(_) if throttled || matches!(status, Some(500..=599)) => {
            Error::Batch { op, message, transient: true }
        }
        SdkError::ServiceError(_) => Error::BatchRejected { op, message },
        SdkError::ConstructionFailure(_) => Error::Batch { op, message, transient: false },
        _ => Error::Batch { op, message, transient: true },
    }
}

/// Sends one Batch request through the rate limiter, retrying transient failures.
pub(crate) async fn call<T, E, F, Fut>(op: &'static str, send: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, SdkError<E, aws_sdk_batch::config::http::HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    call_tries(op, MAX_TRIES, send).await
}

/// [`call`] with at most `max_tries` tries.
pub(crate) async fn call_tries<T, E, F, Fut>(op: &'static str, max_tries: u32, mut send: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, SdkError<E, aws_sdk_batch::config::http::HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut tries = 0;
    loop {
        acquire().await;
        tries += 1;
        match send().await {
            Ok(value) => return Ok(value),
            Err(e) => {
                let err = classify(op, e);
                if !err.is_transient() || tries >= max_tries {
                    return Err(err);
                }
                tokio::time::sleep(backoff(tries)).await;
            }
        }
    }
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
