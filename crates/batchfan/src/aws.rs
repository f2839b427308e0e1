//! The AWS side of a client: the SDK clients (made on their first use, so a purely local run
//! never resolves credentials or a region), the rate limiters and the request counters. Shared by
//! the [`crate::Client`], its store registry and the executors; nothing here is process-global.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;

/// The retry behaviour of a client's AWS calls unless
/// [`crate::ClientBuilder::retry_config`] says otherwise: the SDK's standard mode (exponential
/// backoff with full jitter, a retry quota), 8 attempts, from 100 ms up to 10 s apart.
/// Throttling (HTTP 429, `TooManyRequestsException`, `SlowDown`), 5xx and connection errors are
/// retried.
pub fn default_retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(10))
}

/// CloudWatch Logs reads per second of one client: under DescribeLogStreams' 5 per second
/// per account, which GetLogEvents (25) shares the limiter with.
pub(crate) const LOGS_RPS: f64 = 4.0;

/// The AWS clients of one batchfan client, and what paces their requests.
pub(crate) struct Aws {
    clients: tokio::sync::OnceCell<Clients>,
    /// The configuration to make them from; `None`: the standard chain, loaded on first use.
    config: Option<SdkConfig>,
    /// `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE` were set: the loaded configuration's retry wins.
    retry_from_config: bool,
    retry: RetryConfig,
    force_path_style: Option<bool>,
    pub(crate) batch_limiter: RateLimiter,
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    pub(crate) sqs_limiter: RateLimiter,
    /// CloudWatch Logs reads (GetLogEvents allows 25 per second per account and region,
    /// DescribeLogStreams 5): one limiter for both.
    #[cfg_attr(not(feature = "cloudwatch-logs"), allow(dead_code))]
    pub(crate) logs_limiter: RateLimiter,
    pub(crate) batch_requests: Arc<AtomicU64>,
    pub(crate) sqs_requests: Arc<AtomicU64>,
}

struct Clients {
    s3: aws_sdk_s3::Client,
    /// The custom endpoint, if any, for messages about failures to reach it.
    endpoint: Option<String>,
    #[cfg(feature = "batch")]
    batch: aws_sdk_batch::Client,
    #[cfg(feature = "queue")]
    sqs: aws_sdk_sqs::Client,
    #[cfg(feature = "cloudwatch-logs")]
    logs: aws_sdk_cloudwatchlogs::Client,
}

/// How an [`Aws`] is made.
pub(crate) struct AwsSettings {
    pub(crate) config: Option<SdkConfig>,
    pub(crate) retry_from_config: bool,
    pub(crate) retry: RetryConfig,
    pub(crate) force_path_style: Option<bool>,
    pub(crate) batch_rps: f64,
    pub(crate) sqs_rps: f64,
}

impl Aws {
    pub(crate) fn new(settings: AwsSettings) -> Aws {
        Aws {
            clients: tokio::sync::OnceCell::new(),
            config: settings.config,
            retry_from_config: settings.retry_from_config,
            retry: settings.retry,
            force_path_style: settings.force_path_style,
            batch_limiter: RateLimiter::new(settings.batch_rps),
            sqs_limiter: RateLimiter::new(settings.sqs_rps),
            logs_limiter: RateLimiter::new(LOGS_RPS),
            batch_requests: Arc::new(AtomicU64::new(0)),
            sqs_requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The AWS clients, made on first use.
    async fn clients(&self) -> &Clients {
        self.clients
            .get_or_init(|| async {
                let loaded;
                let config = match &self.config {
                    Some(config) => config,
                    None => {
                        loaded = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                        &loaded
                    }
                };
                let retry = match config.retry_config() {
                    Some(from_config) if self.retry_from_config => from_config.clone(),
                    _ => self.retry.clone(),
                };
                let path_style = self.force_path_style.unwrap_or(config.endpoint_url().is_some());
                let s3 =
                    aws_sdk_s3::config::Builder::from(config).retry_config(retry.clone()).force_path_style(path_style);
                Clients {
                    s3: aws_sdk_s3::Client::from_conf(s3.build()),
                    endpoint: config.endpoint_url().map(str::to_string),
                    #[cfg(feature = "batch")]
                    batch: aws_sdk_batch::Client::from_conf(
                        aws_sdk_batch::config::Builder::from(config)
                            .retry_config(retry.clone())
                            .interceptor(CountRequests(self.batch_requests.clone()))
                            .build(),
                    ),
                    #[cfg(feature = "cloudwatch-logs")]
                    logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                        aws_sdk_cloudwatchlogs::config::Builder::from(config).retry_config(retry.clone()).build(),
                    ),
                    #[cfg(feature = "queue")]
                    sqs: aws_sdk_sqs::Client::from_conf(
                        aws_sdk_sqs::config::Builder::from(config)
                            .retry_config(retry)
                            .interceptor(CountRequests(self.sqs_requests.clone()))
                            .build(),
                    ),
                }
            })
            .await
    }

    /// The custom endpoint of the AWS clients, once they were made (for messages, which must
    /// not make them).
    pub(crate) fn endpoint_if_made(&self) -> Option<&str> {
        self.clients.get().and_then(|c| c.endpoint.as_deref())
    }

    /// The S3 client.
    pub(crate) async fn s3(&self) -> &aws_sdk_s3::Client {
        &self.clients().await.s3
    }

    /// The AWS Batch client (its calls go through [`Aws::batch_slot`] first).
    #[cfg(feature = "batch")]
    pub(crate) async fn batch(&self) -> &aws_sdk_batch::Client {
        &self.clients().await.batch
    }

    /// The SQS client (its calls go through [`Aws::sqs_slot`] first).
    #[cfg(feature = "queue")]
    pub(crate) async fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.clients().await.sqs
    }

    /// The CloudWatch Logs client (its calls go through [`Aws::logs_slot`] first).
    #[cfg(feature = "cloudwatch-logs")]
    pub(crate) async fn logs(&self) -> &aws_sdk_cloudwatchlogs::Client {
        &self.clients().await.logs
    }

    /// Waits for the next slot of the CloudWatch Logs rate limiter.
    #[cfg(feature = "cloudwatch-logs")]
    pub(crate) async fn logs_slot(&self) {
        self.logs_limiter.acquire().await;
    }

    /// Waits for the next slot of the AWS Batch rate limiter.
    #[cfg(feature = "batch")]
    pub(crate) async fn batch_slot(&self) {
        self.batch_limiter.acquire().await;
    }

    /// Waits for the next slot of the SQS rate limiter.
    #[cfg(feature = "queue")]
    pub(crate) async fn sqs_slot(&self) {
        self.sqs_limiter.acquire().await;
    }

    /// HTTP requests sent to AWS Batch so far (retries included).
    pub(crate) fn batch_request_count(&self) -> u64 {
        self.batch_requests.load(Ordering::Relaxed)
    }

    /// HTTP requests sent to SQS so far (retries included).
    pub(crate) fn sqs_request_count(&self) -> u64 {
        self.sqs_requests.load(Ordering::Relaxed)
    }
}

/// Counts every HTTP request an SDK client transmits (retries included). The SDK crates share
/// the smithy runtime's `Intercept` trait, so one counter serves each of them.
#[derive(Debug)]
#[cfg_attr(not(any(feature = "batch", feature = "queue")), allow(dead_code))]
struct CountRequests(Arc<AtomicU64>);

impl aws_sdk_s3::config::Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "batchfan-count-requests"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> std::result::Result<(), aws_sdk_s3::error::BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Spaces calls evenly at `rps` per second, across every task that shares it.
#[cfg_attr(not(all(feature = "batch", feature = "queue")), allow(dead_code))]
pub(crate) struct RateLimiter {
    pub(crate) rps: f64,
    next: tokio::sync::Mutex<Option<Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(rps: f64) -> RateLimiter {
        RateLimiter { rps, next: tokio::sync::Mutex::new(None) }
    }

    #[cfg_attr(not(any(feature = "batch", feature = "queue")), allow(dead_code))]
    pub(crate) async fn acquire(&self) {
        let wait = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + Duration::from_secs_f64(1.0 / self.rps));
            slot - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limiter_spaces_calls() {
        let limiter = RateLimiter::new(50.0);
        let started = Instant::now();
        for _ in 0..6 {
            limiter.acquire().await;
        }
        // Five gaps of 20 ms after the first call.
        assert!(started.elapsed() >= Duration::from_millis(95), "{:?}", started.elapsed());
    }
}
