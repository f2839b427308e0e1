//! [`Client`]: the front door. One cloneable handle (an `Arc` inside) on the AWS clients, the
//! rate limiters and request counters, the store registry and the run notes. Nothing is
//! process-global: two clients in one process talk to two accounts or regions. The modules below
//! take the registry or the shared state, never the client.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;

pub use crate::aws::default_retry_config;
use crate::aws::{Aws, AwsSettings};
use crate::context::Context;
use crate::contract::env;
use crate::error::Result;
use crate::local::{Event, LocalOptions};
use crate::manifest::ManifestReader;
use crate::plan::{Plan, PlanOptions};
use crate::prepare::RunSpec;
use crate::registry::StoreRegistry;
use crate::run::{LocalRun, Run};
use crate::store::Store;
use crate::uri::Location;

/// Default AWS Batch requests per second of one client (`BATCHFAN_BATCH_RPS` for
/// [`Client::from_env`]). AWS allows 50 SubmitJob calls per second per account.
pub const DEFAULT_BATCH_RPS: f64 = 10.0;

/// Default SQS requests per second of one client (`BATCHFAN_SQS_RPS` for [`Client::from_env`]);
/// a SendMessageBatch carries 10 messages, so an enqueue may send 5,000 messages a second.
/// Standard queues take that; a FIFO queue without high-throughput mode takes 300 requests a
/// second per action, and its throttling is retried by the SDK.
pub const DEFAULT_SQS_RPS: f64 = 500.0;

/// The batchfan client: plans, starts runs of every kind and finds them again.
///
/// ```no_run
/// # async fn demo() -> batchfan::Result<()> {
/// use batchfan::{Client, Location, PlanOptions};
/// let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// let client = Client::new(&config);
/// let input = Location::parse("s3://my-bucket/logs/2026/")?;
/// let plan = client.plan(&input, &PlanOptions { children: Some(100), ..Default::default() }).await?;
/// println!("{} items in {} chunks", plan.items.len(), plan.chunks.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Context>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("batch_rps", &self.inner.aws.batch_limiter.rps)
            .field("runs_dir", &self.inner.runs_dir)
            .field("stores", &self.inner.stores)
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
    /// mode, attempts, backoff. Applies to every AWS client the client holds.
    pub fn retry_config(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Where run notes (`RUN` -> run record URI) are kept, so a bare run id resolves on this
    /// machine. Without it (the default of [`Client::new`]) no local file is written; runs are
    /// still found by their record's or manifest's URI, or their output location.
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
    /// backends (object_store's registry is the model): a caller's own store, a
    /// [`crate::store::MemoryStore`], or a wrapper.
    pub fn with_store(mut self, location: Location, store: Arc<dyn Store>) -> Self {
        self.stores.push((location, store));
        self
    }

    /// The client. Nothing is resolved or sent until the first AWS call.
    pub fn build(self) -> Client {
        let aws = Arc::new(Aws::new(AwsSettings {
            config: self.config,
            retry_from_config: self.retry_from_config,
            retry: self.retry,
            force_path_style: self.force_path_style,
            batch_rps: self.batch_rps,
            sqs_rps: self.sqs_rps,
        }));
        let stores = StoreRegistry::new(aws.clone(), self.stores);
        Client { inner: Arc::new(Context { aws, stores, runs_dir: self.runs_dir }) }
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
    /// container and instance roles, loaded on first AWS use), `BATCHFAN_BATCH_RPS`,
    /// `BATCHFAN_SQS_RPS`, run notes under `BATCHFAN_HOME` (default `~/.batchfan`), and
    /// `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE` when set.
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

    /// The S3 client (made on first use).
    pub async fn s3(&self) -> &aws_sdk_s3::Client {
        self.inner.aws.s3().await
    }

    /// The AWS Batch SDK client, for calls batchfan does not make (they bypass its rate limiter
    /// and limit checks, but are counted in [`Client::batch_request_count`]).
    #[cfg(feature = "batch")]
    pub async fn batch(&self) -> &aws_sdk_batch::Client {
        self.inner.aws.batch().await
    }

    /// The SQS SDK client, for calls batchfan does not make (they bypass its rate limiter, but
    /// are counted in [`Client::sqs_request_count`]).
    #[cfg(feature = "queue")]
    pub async fn sqs(&self) -> &aws_sdk_sqs::Client {
        self.inner.aws.sqs().await
    }

    /// HTTP requests this client has sent to AWS Batch so far (retries included).
    pub fn batch_request_count(&self) -> u64 {
        self.inner.aws.batch_request_count()
    }

    /// HTTP requests this client has sent to SQS so far (retries included).
    pub fn sqs_request_count(&self) -> u64 {
        self.inner.aws.sqs_request_count()
    }

    /// Where run notes are kept, if anywhere.
    pub fn runs_dir(&self) -> Option<&Path> {
        self.inner.runs_dir.as_deref()
    }

    /// The client's store registry: locations to stores.
    pub fn stores(&self) -> &StoreRegistry {
        &self.inner.stores
    }

    /// The store for a location (see [`StoreRegistry::store`]).
    pub fn store(&self, location: &Location) -> Result<Arc<dyn Store>> {
        self.inner.stores.store(location)
    }

    /// Lists (or looks up `options.input_list`), filters, splits and packs `input` into chunks.
    pub async fn plan(&self, input: &Location, options: &PlanOptions) -> Result<Plan> {
        crate::incremental::plan(&self.inner.stores, input, options).await
    }

    /// Opens the manifest (or view) at `uri`, reading only its header.
    pub async fn open_manifest(&self, uri: &str) -> Result<ManifestReader> {
        ManifestReader::open(&self.inner.stores, uri).await
    }

    /// Plans `spec` and runs every chunk as a process of `options.program` on this machine
    /// (`batchfan run --local`); or, with `options.resume`, continues the newest run in the
    /// output. `on_event` sees the plan and every child; `cancel` completing (the caller's
    /// Ctrl-C: the library installs no signal handler) stops the children through their drain
    /// path and returns [`crate::Error::Interrupted`]. The run is finished when this returns:
    /// its report written, its claim on the output released.
    pub async fn run_local(
        &self,
        spec: &RunSpec,
        options: &LocalOptions,
        on_event: &(dyn Fn(&Event) + Send + Sync),
        cancel: impl Future<Output = ()>,
    ) -> Result<LocalRun> {
        crate::run::run_local(&self.inner, spec, options, on_event, cancel).await
    }

    /// Plans `input` and runs one chunk (the one of median input bytes) as a process of
    /// `local.program` on this machine, into a scratch output removed afterwards: how long a
    /// chunk takes, for a cost estimate (`batchfan estimate --sample`). Not kept in the run
    /// notes; the child's log stays where `local.log_dir` says. `cancel` completing (the
    /// caller's Ctrl-C: the library installs no signal handler) stops the child through its
    /// drain path ([`crate::Error::Interrupted`]) and removes the scratch output.
    pub async fn sample(
        &self,
        input: &Location,
        options: &PlanOptions,
        local: &LocalOptions,
        cancel: impl Future<Output = ()>,
    ) -> Result<crate::run::Sample> {
        crate::run::sample(&self.inner, input, options, local, cancel).await
    }

    /// Finds a run by its id (from this client's run notes), its record's URI, its manifest's
    /// URI, or its output location (the newest run there; relative paths work).
    pub async fn find_run(&self, run: &str) -> Result<Run> {
        crate::run::find(&self.inner, run).await
    }

    /// Past runs, newest first: those in this client's run notes and, with `output`, those
    /// whose records are under that output location. Each with its counts, from its report
    /// when it finished, else from its completion markers (no executor is asked).
    pub async fn runs(&self, output: Option<&Location>) -> Result<Vec<crate::run::PastRun>> {
        crate::run::list_runs(&self.inner, output).await
    }
}

/// The AWS Batch operations.
#[cfg(feature = "batch")]
impl Client {
    /// Registers a job definition, unless the latest ACTIVE revision is identical (reused).
    pub async fn register(&self, spec: &crate::batch::JobDefinitionSpec) -> Result<crate::batch::Registered> {
        crate::batch::register_job_definition(&self.inner, spec).await
    }

    /// Plans `spec`, writes the manifest and submits one AWS Batch array job per 10,000 chunks
    /// (a plain job for one chunk). Every limit is checked before the first request. The run
    /// holds its output until it is seen finished ([`Run::status`], [`Run::wait`]) or is
    /// cancelled.
    pub async fn submit(&self, spec: &RunSpec, options: &crate::batch::SubmitOptions) -> Result<Run> {
        crate::run::submit(&self.inner, spec, options).await
    }

    /// The exact requests [`Client::submit`] would send, after the read-only checks a real
    /// submit makes; nothing written or sent.
    pub async fn submit_dry_run(
        &self,
        spec: &RunSpec,
        options: &crate::batch::SubmitOptions,
    ) -> Result<crate::batch::SubmitPlan> {
        crate::run::submit_dry_run(&self.inner, spec, options).await
    }

    /// The job definition a submit would use (`NAME`: its newest ACTIVE revision, `NAME:REV`,
    /// or an ARN), in the `register-job-definition` shape (what [`crate::lint::lint`] checks).
    pub async fn job_definition(&self, definition: &str) -> Result<crate::batch::JobDefinitionSpec> {
        let found = crate::batch::describe_definition(&self.inner, definition).await?;
        Ok(crate::batch::JobDefinitionSpec::from_sdk(&found))
    }

    /// What a submit of `chunks` chunks taking `seconds_per_chunk` each would cost, priced on
    /// the queue's capacity (Fargate or EC2, Spot when every usable environment is) and the job
    /// definition's architecture, vCPU and memory (with the options' overrides).
    pub async fn estimate_submit(
        &self,
        options: &crate::batch::SubmitOptions,
        chunks: u64,
        seconds_per_chunk: f64,
        prices: &crate::price::Prices,
    ) -> Result<crate::price::Estimate> {
        let definition = crate::batch::describe_definition(&self.inner, &options.job_definition).await?;
        let job = crate::batch::job_shape(&definition, options.vcpu, options.memory);
        let arm64 = definition
            .container_properties()
            .and_then(|c| c.runtime_platform())
            .and_then(|p| p.cpu_architecture())
            .is_some_and(|a| a.eq_ignore_ascii_case("ARM64"));
        let environments = crate::batch::queue_environments(&self.inner, &options.job_queue).await?;
        crate::price::for_submit(prices, chunks, seconds_per_chunk, &job, arm64, &environments)
    }

    /// The compute environments of a job queue, in the queue's order.
    pub async fn compute_environments(&self, queue: &str) -> Result<Vec<crate::capacity::ComputeEnvironment>> {
        crate::batch::queue_environments(&self.inner, queue).await
    }

    /// The live (not finished) worker jobs of a pool run as AWS Batch jobs, newest first.
    pub async fn live_workers(&self, jobs: &crate::batch::WorkerJobs) -> Result<Vec<crate::batch::LiveWorker>> {
        jobs.live_workers(&self.inner).await
    }

    /// Submits `count` more worker jobs (one array); returns its job id.
    pub async fn add_workers(&self, jobs: &crate::batch::WorkerJobs, count: u32) -> Result<String> {
        jobs.add(&self.inner, count).await
    }

    /// Terminates worker jobs (they get SIGTERM and drain).
    pub async fn stop_workers(&self, jobs: &crate::batch::WorkerJobs, ids: &[String]) -> Result<()> {
        jobs.stop(&self.inner, ids).await
    }
}

/// The SQS operations.
#[cfg(feature = "queue")]
impl Client {
    /// Plans `spec`, writes the manifest and sends one SQS message per chunk for queue workers.
    /// The run holds its output until it is seen finished or is cancelled.
    pub async fn enqueue(&self, spec: &RunSpec, options: &crate::queue::EnqueueOptions) -> Result<Run> {
        crate::run::enqueue(&self.inner, spec, options).await
    }

    /// What [`Client::enqueue`] would send, after the read-only checks; nothing written or sent.
    pub async fn enqueue_dry_run(
        &self,
        spec: &RunSpec,
        options: &crate::queue::EnqueueOptions,
    ) -> Result<crate::queue::EnqueuePlan> {
        crate::run::enqueue_dry_run(&self.inner, spec, options).await
    }

    /// One SQS queue, through this client (what a queue worker receives from and settles on).
    pub fn queue(&self, url: &str) -> crate::queue::Queue {
        crate::queue::Queue::new(self.inner.clone(), url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    fn config() -> SdkConfig {
        SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build()
    }

    #[test]
    fn environment_settings() {
        let vars = [("BATCHFAN_BATCH_RPS", "2.5"), ("BATCHFAN_HOME", "/tmp/bf-home")];
        let lookup = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        let client = Client::builder_from_env(lookup).build();
        assert_eq!(client.inner.aws.batch_limiter.rps, 2.5);
        assert_eq!(client.runs_dir(), Some(Path::new("/tmp/bf-home/runs")));
        let bad = Client::builder_from_env(|n| (n == "BATCHFAN_BATCH_RPS").then(|| "-1".into())).build();
        assert_eq!(bad.inner.aws.batch_limiter.rps, DEFAULT_BATCH_RPS);
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
