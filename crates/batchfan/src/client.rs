//! [`Client`]: the front door. One cloneable handle (an `Arc` inside) holding the AWS clients,
//! the AWS Batch rate limiter and request counter, and the stores a caller handed in. Nothing
//! is process-global: two clients in one process talk to two accounts or regions.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;

use crate::contract::env;
use crate::error::Result;
use crate::local::{Event, LocalOptions, RunSummary};
use crate::manifest::{self, ManifestReader};
use crate::plan::{self, Plan, PlanOptions};
use crate::run::{self, PlannedRun, PreparedRun, RunSpec};
use crate::store::{LocalStore, PrefixStore, S3Store, Store};
use crate::uri::Location;

/// Default AWS Batch requests per second of one client (`BATCHFAN_BATCH_RPS` for
/// [`Client::from_env`]). AWS allows 50 SubmitJob calls per second per account.
pub const DEFAULT_BATCH_RPS: f64 = 10.0;

/// Default SQS requests per second of one client (`BATCHFAN_SQS_RPS` for [`Client::from_env`]);
/// a SendMessageBatch carries 10 messages.
pub const DEFAULT_SQS_RPS: f64 = 100.0;

/// The retry behaviour of a client's AWS calls unless [`ClientBuilder::retry_config`] says
/// otherwise: the SDK's standard mode (exponential backoff with full jitter, a retry quota),
/// 8 attempts, from 100 ms up to 10 s apart. Throttling (HTTP 429,
/// `TooManyRequestsException`, `SlowDown`), 5xx and connection errors are retried.
pub fn default_retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(10))
}

/// The batchfan client: plans, writes manifests, runs locally, and drives AWS Batch.
///
/// ```no_run
/// # async fn demo() -> batchfan::Result<()> {
/// use batchfan::{Client, plan::PlanOptions, uri::Location};
/// let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// let client = Client::new(&config);
/// let input = Location::parse("s3://my-bucket/logs/2026/")?;
/// let plan = client.plan(&input, &PlanOptions { children: Some(100), ..Default::default() }).await?;
/// println!("{} items in {} chunks", plan.items.len(), plan.chunks.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// The AWS clients, made on first use: a purely local run never resolves credentials or a
    /// region (which can mean probing the instance metadata service).
    aws: tokio::sync::OnceCell<Aws>,
    /// The configuration to make them from; `None`: the standard chain, loaded on first use.
    config: Option<SdkConfig>,
    /// `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE` were set: the loaded configuration's retry wins.
    retry_from_config: bool,
    retry: RetryConfig,
    force_path_style: Option<bool>,
    limiter: RateLimiter,
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    sqs_limiter: RateLimiter,
    batch_requests: Arc<AtomicU64>,
    sqs_requests: Arc<AtomicU64>,
    runs_dir: Option<PathBuf>,
    stores: Vec<(Location, Arc<dyn Store>)>,
}

struct Aws {
    s3: aws_sdk_s3::Client,
    /// The custom endpoint, if any, for messages about failures to reach it.
    endpoint: Option<String>,
    #[cfg(feature = "batch")]
    batch: aws_sdk_batch::Client,
    #[cfg(feature = "queue")]
    sqs: aws_sdk_sqs::Client,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("batch_rps", &self.inner.limiter.rps)
            .field("runs_dir", &self.inner.runs_dir)
            .field("stores", &self.inner.stores.iter().map(|(l, _)| l.to_string()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`] with settings beyond the SDK configuration.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    config: Option<SdkConfig>,
    retry_from_config: bool,
    batch_rps: f64,
    sqs_rps: f64,
    retry: RetryConfig,
    runs_dir: Option<PathBuf>,
    force_path_style: Option<bool>,
    stores: Vec<(Location, Arc<dyn Store>)>,
}

impl ClientBuilder {
    fn new(config: Option<SdkConfig>) -> ClientBuilder {
        ClientBuilder {
            config,
            retry_from_config: false,
            batch_rps: DEFAULT_BATCH_RPS,
            sqs_rps: DEFAULT_SQS_RPS,
            retry: default_retry_config(),
            runs_dir: None,
            force_path_style: None,
            stores: Vec::new(),
        }
    }

    /// AWS Batch requests per second for every call of this client (default
    /// [`DEFAULT_BATCH_RPS`]); a value that is not a positive number keeps the default.
    pub fn batch_requests_per_second(mut self, rps: f64) -> Self {
        if rps.is_finite() && rps > 0.0 {
            self.batch_rps = rps;
        }
        self
    }

    /// SQS requests per second for every call of this client (default [`DEFAULT_SQS_RPS`]); a
    /// value that is not a positive number keeps the default.
    pub fn sqs_requests_per_second(mut self, rps: f64) -> Self {
        if rps.is_finite() && rps > 0.0 {
            self.sqs_rps = rps;
        }
        self
    }

    /// How AWS calls are retried (default [`default_retry_config`]): standard or adaptive
    /// mode, attempts, backoff. Applies to the S3 and the Batch client.
    pub fn retry_config(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Where run notes (`RUN` -> run record URI) are kept, so a bare run id resolves on this
    /// machine. Without it (the default of [`Client::new`]) no local file is written; run
    /// records are still found by their S3 URI or the run's output location.
    pub fn runs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runs_dir = Some(dir.into());
        self
    }

    /// S3 path-style addressing (default: on when the configuration has an endpoint URL, as
    /// emulators and S3-compatible servers need).
    pub fn force_path_style(mut self, on: bool) -> Self {
        self.force_path_style = Some(on);
        self
    }

    /// Serves `location`, and every location below it, from `store` instead of the built-in
    /// backends (object_store's registry is the model): a caller's own store, or a wrapper.
    pub fn with_store(mut self, location: Location, store: Arc<dyn Store>) -> Self {
        self.stores.push((location, store));
        self
    }

    /// The client. Nothing is resolved or sent until the first AWS call.
    pub fn build(self) -> Client {
        // Longest registered root first, so the most specific store serves a location.
        let mut stores = self.stores;
        stores.sort_by_key(|(l, _)| std::cmp::Reverse(l.to_string().len()));
        Client {
            inner: Arc::new(Inner {
                aws: tokio::sync::OnceCell::new(),
                config: self.config,
                retry_from_config: self.retry_from_config,
                retry: self.retry,
                force_path_style: self.force_path_style,
                limiter: RateLimiter::new(self.batch_rps),
                sqs_limiter: RateLimiter::new(self.sqs_rps),
                batch_requests: Arc::new(AtomicU64::new(0)),
                sqs_requests: Arc::new(AtomicU64::new(0)),
                runs_dir: self.runs_dir,
                stores,
            }),
        }
    }
}

impl Client {
    /// A client over the caller's AWS configuration, with default settings.
    pub fn new(config: &SdkConfig) -> Client {
        Client::builder(config).build()
    }

    /// A builder over the caller's AWS configuration.
    pub fn builder(config: &SdkConfig) -> ClientBuilder {
        ClientBuilder::new(Some(config.clone()))
    }

    /// A client from the environment, as the `batchfan` CLI and workers make it: the standard
    /// aws-config chain (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, credential files,
    /// container and instance roles, loaded on first AWS use), `BATCHFAN_BATCH_RPS`, run notes
    /// under `BATCHFAN_HOME` (default `~/.batchfan`), and `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE`
    /// when set.
    pub async fn from_env() -> Client {
        Client::builder_from_env(|name| std::env::var(name).ok()).build()
    }

    /// [`Client::from_env`]'s builder, reading variables through `lookup`.
    pub fn builder_from_env(lookup: impl Fn(&str) -> Option<String>) -> ClientBuilder {
        let mut builder = ClientBuilder::new(None);
        builder.retry_from_config = lookup("AWS_MAX_ATTEMPTS").is_some() || lookup("AWS_RETRY_MODE").is_some();
        if let Some(rps) = lookup(env::BATCH_RPS).and_then(|v| v.trim().parse::<f64>().ok()) {
            builder = builder.batch_requests_per_second(rps);
        }
        if let Some(rps) = lookup(env::SQS_RPS).and_then(|v| v.trim().parse::<f64>().ok()) {
            builder = builder.sqs_requests_per_second(rps);
        }
        let home =
            lookup(env::HOME).map(PathBuf::from).or_else(|| lookup("HOME").map(|h| Path::new(&h).join(".batchfan")));
        match home {
            Some(home) => builder.runs_dir(home.join("runs")),
            None => builder,
        }
    }
    /// The AWS clients, made on first use.
    async fn aws(&self) -> &Aws {
        self.inner
            .aws
            .get_or_init(|| async {
                let loaded;
                let config = match &self.inner.config {
                    Some(config) => config,
                    None => {
                        loaded = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                        &loaded
                    }
                };
                let retry = match config.retry_config() {
                    Some(from_config) if self.inner.retry_from_config => from_config.clone(),
                    _ => self.inner.retry.clone(),
                };
                let path_style = self.inner.force_path_style.unwrap_or(config.endpoint_url().is_some());
                let s3 =
                    aws_sdk_s3::config::Builder::from(config).retry_config(retry.clone()).force_path_style(path_style);
                Aws {
                    s3: aws_sdk_s3::Client::from_conf(s3.build()),
                    endpoint: config.endpoint_url().map(str::to_string),
                    #[cfg(feature = "batch")]
                    batch: aws_sdk_batch::Client::from_conf(
                        aws_sdk_batch::config::Builder::from(config)
                            .retry_config(retry.clone())
                            .interceptor(CountRequests(self.inner.batch_requests.clone()))
                            .build(),
                    ),
                    #[cfg(feature = "queue")]
                    sqs: aws_sdk_sqs::Client::from_conf(
                        aws_sdk_sqs::config::Builder::from(config)
                            .retry_config(retry)
                            .interceptor(CountRequests(self.inner.sqs_requests.clone()))
                            .build(),
                    ),
                }
            })
            .await
    }

    /// The custom endpoint of the AWS clients, once they were made (for messages, which must
    /// not make them).
    pub(crate) fn endpoint_if_made(&self) -> Option<&str> {
        self.inner.aws.get().and_then(|aws| aws.endpoint.as_deref())
    }

    /// The S3 client.
    pub async fn s3(&self) -> &aws_sdk_s3::Client {
        &self.aws().await.s3
    }

    /// The AWS Batch client (its calls should go through this client's methods, which apply
    /// the rate limiter and the limit checks).
    #[cfg(feature = "batch")]
    pub async fn batch(&self) -> &aws_sdk_batch::Client {
        &self.aws().await.batch
    }

    /// The SQS client (queue runs and queue workers).
    #[cfg(feature = "queue")]
    pub async fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.aws().await.sqs
    }

    /// Waits for the next slot of this client's SQS rate limiter.
    #[cfg(feature = "queue")]
    pub(crate) async fn sqs_slot(&self) {
        self.inner.sqs_limiter.acquire().await;
    }

    /// HTTP requests this client has sent to AWS Batch so far (retries included).
    pub fn batch_request_count(&self) -> u64 {
        self.inner.batch_requests.load(Ordering::Relaxed)
    }

    /// HTTP requests this client has sent to SQS so far (retries included).
    pub fn sqs_request_count(&self) -> u64 {
        self.inner.sqs_requests.load(Ordering::Relaxed)
    }

    /// Where run notes are kept, if anywhere.
    pub fn runs_dir(&self) -> Option<&Path> {
        self.inner.runs_dir.as_deref()
    }

    /// Waits for the next slot of this client's AWS Batch rate limiter.
    #[cfg(feature = "batch")]
    pub(crate) async fn batch_slot(&self) {
        self.inner.limiter.acquire().await;
    }

    /// The store for a location: a registered one (see [`ClientBuilder::with_store`]), else S3
    /// through this client's S3 client, else the local folder (made absolute).
    pub fn store(&self, location: &Location) -> Result<Arc<dyn Store>> {
        let location = location.absolute()?;
        for (root, store) in &self.inner.stores {
            if let Some(sub) = root.relative(&location) {
                return Ok(if sub.is_empty() {
                    store.clone()
                } else {
                    Arc::new(PrefixStore::new(store.clone(), &sub, location.clone()))
                });
            }
        }
        Ok(match &location {
            Location::S3 { bucket, prefix } => Arc::new(S3Store::with_client(self.clone(), bucket, prefix)),
            Location::Local { .. } => Arc::new(LocalStore::new(location.clone())),
        })
    }

    /// Lists (or looks up `options.input_list`), filters, splits and packs `input` into chunks.
    pub async fn plan(&self, input: &Location, options: &PlanOptions) -> Result<Plan> {
        plan::plan(self, input, options).await
    }

    /// Writes `plan` as the manifest of run `run_id` at `uri`.
    pub async fn write_manifest(&self, uri: &str, plan: &Plan, run_id: &str, output: &Location) -> Result<()> {
        manifest::write_plan(self, uri, plan, run_id, output).await
    }

    /// Opens the manifest (or view) at `uri`, reading only its header.
    pub async fn open_manifest(&self, uri: &str) -> Result<ManifestReader> {
        ManifestReader::open(self, uri).await
    }

    /// Checks everything and plans a run; writes nothing (what a dry run shows).
    pub async fn plan_run(&self, spec: &RunSpec) -> Result<PlannedRun> {
        run::plan_run(self, spec).await
    }

    /// Writes a planned run's manifest (clearing old outputs first when `overwrite`).
    pub async fn write_run(&self, planned: PlannedRun, overwrite: bool) -> Result<PreparedRun> {
        run::write_run(self, planned, overwrite).await
    }

    /// Checks, plans and writes the manifest of a run. Nothing is written when any input is bad.
    pub async fn prepare_run(&self, spec: &RunSpec) -> Result<PreparedRun> {
        run::prepare_run(self, spec).await
    }

    /// Runs every chunk of a prepared run as a local process (`batchfan run --local`), until
    /// all finish or `cancel` completes (the CLI passes Ctrl-C): then running children are
    /// stopped and [`crate::Error::Interrupted`] is returned.
    ///
    /// What earlier runs left in the output (`--overwrite`) is deleted first, the last step
    /// before the first child starts; the output's claim is released at the end, however the
    /// run ends, after unfinished multipart uploads of killed children are aborted.
    pub async fn run_local(
        &self,
        prepared: &PreparedRun,
        options: &LocalOptions,
        on_event: &(dyn Fn(&Event) + Send + Sync),
        cancel: impl Future<Output = ()>,
    ) -> Result<RunSummary> {
        let header = prepared.manifest.header();
        let store = self.store(&header.output_location()?)?;
        let result = match run::clear_earlier(self, prepared).await {
            Ok(()) => crate::local::run_local(header, &prepared.manifest_uri, options, on_event, cancel).await,
            Err(e) => Err(e),
        };
        // A local run holds its output only while it runs.
        run::abort_uploads(store.as_ref()).await;
        crate::claim::release(store.as_ref(), &header.run_id).await?;
        result
    }
}

#[cfg(test)]
impl Client {
    /// A client for unit tests over local folders (no AWS configuration).
    pub(crate) fn for_tests() -> Client {
        Client::new(&SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build())
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
struct RateLimiter {
    rps: f64,
    next: tokio::sync::Mutex<Option<Instant>>,
}

impl RateLimiter {
    fn new(rps: f64) -> RateLimiter {
        RateLimiter { rps, next: tokio::sync::Mutex::new(None) }
    }

    #[cfg_attr(not(any(feature = "batch", feature = "queue")), allow(dead_code))]
    async fn acquire(&self) {
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

    fn config() -> SdkConfig {
        SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build()
    }

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

    #[test]
    fn environment_settings() {
        let vars = [("BATCHFAN_BATCH_RPS", "2.5"), ("BATCHFAN_HOME", "/tmp/bf-home")];
        let lookup = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        let client = Client::builder_from_env(lookup).build();
        assert_eq!(client.inner.limiter.rps, 2.5);
        assert_eq!(client.runs_dir(), Some(Path::new("/tmp/bf-home/runs")));
        let bad = Client::builder_from_env(|n| (n == "BATCHFAN_BATCH_RPS").then(|| "-1".into())).build();
        assert_eq!(bad.inner.limiter.rps, DEFAULT_BATCH_RPS);
        assert_eq!(Client::new(&config()).runs_dir(), None, "Client::new writes no local files");
    }

    #[test]
    fn registered_stores_serve_their_location_and_below() {
        let dir = tempfile::tempdir().unwrap();
        let root = Location::parse("s3://mine/data/").unwrap();
        let own: Arc<dyn Store> =
            Arc::new(LocalStore::new(Location::parse(&dir.path().display().to_string()).unwrap()));
        let client = Client::builder(&config()).with_store(root.clone(), own).build();
        assert!(client.store(&root).unwrap().location().to_string().starts_with('/'), "the registered store itself");
        let below = client.store(&Location::parse("s3://mine/data/2026/").unwrap()).unwrap();
        assert_eq!(below.location().to_string(), "s3://mine/data/2026/");
        let other = client.store(&Location::parse("s3://mine/elsewhere/").unwrap()).unwrap();
        assert_eq!(other.location().to_string(), "s3://mine/elsewhere/");
    }
}
