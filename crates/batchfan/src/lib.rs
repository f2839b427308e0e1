//! batchfan: turn "process every object under this S3 prefix" into one array job, and run the
//! same plan on this machine first.
//!
//! A [`Client`] plans a fan-out ([`PlanOptions`] over an input [`Location`]: list, filter, pack
//! into chunks, split big newline-delimited objects at record boundaries) and starts a [`Run`]
//! of it, whatever executes it ([`RunKind`]): processes on this machine, AWS Batch array jobs,
//! or messages on an SQS queue served by workers. Children run the `batchfan-worker` harness,
//! which commits each chunk's output exactly once. The library runs every step of a run's life:
//! claim the output → write the manifest → execute → observe → report → release.
//!
//! The client is built like any aws-sdk-rust client, from the caller's own
//! [`aws_config::SdkConfig`] (or from the environment); it is cloneable and free of
//! process-global state: two clients in one process talk to two accounts or regions.
//!
//! # A local run: plan → run → read the outputs
//!
//! ```no_run
//! # async fn demo() -> batchfan::Result<()> {
//! use batchfan::{Client, LocalOptions, Location, PlanOptions, RunSpec};
//! let client = Client::from_env().await;
//! let spec = RunSpec {
//!     input: Location::parse("data/logs/")?,
//!     options: PlanOptions { children: Some(8), ..Default::default() },
//!     output: Location::parse("out/wordcount/")?,
//!     manifest: None,
//!     overwrite: true,
//! };
//! let options = LocalOptions::new("batchfan-worker", vec!["wordcount".into()]);
//! let ctrl_c = async { let _ = tokio::signal::ctrl_c().await; };
//! let local = client.run_local(&spec, &options, &|_| {}, ctrl_c).await?;
//! println!("{} failed", local.summary.failed.len());
//! for output in local.run.outputs().await? {
//!     println!("chunk {}: {} ({} bytes)", output.chunk, output.uri, output.bytes);
//! }
//! # Ok(()) }
//! ```
//!
//! # AWS Batch: submit → wait → read the outputs
//!
//! ```no_run
//! # async fn demo(spec: batchfan::RunSpec) -> batchfan::Result<()> {
//! use batchfan::{Client, SubmitOptions, WaitOptions};
//! let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let client = Client::new(&config);
//! let options = SubmitOptions { job_queue: "etl".into(), job_definition: "wordcount:3".into(), ..Default::default() };
//! let run = client.submit(&spec, &options).await?;
//! let status = run.wait(&WaitOptions::default()).await?;
//! if !status.succeeded(&WaitOptions::default()) {
//!     let mut run = client.find_run(run.id()).await?;
//!     run.redrive(false).await?; // the chunks without a completion marker, again
//! }
//! let report = run.report().await?;
//! println!("{} of {} chunks committed", report.succeeded, report.chunks.len());
//! # Ok(()) }
//! ```
//!
//! # A queue: enqueue → workers → wait
//!
//! ```no_run
//! # async fn demo(client: batchfan::Client, spec: batchfan::RunSpec) -> batchfan::Result<()> {
//! use batchfan::{EnqueueOptions, WaitOptions};
//! let options = EnqueueOptions::new("https://sqs.eu-west-1.amazonaws.com/123456789012/work");
//! let run = client.enqueue(&spec, &options).await?;
//! // Workers (`batchfan workers`, an ECS service, AWS Batch jobs) serve the queue meanwhile.
//! let status = run.wait(&WaitOptions::default()).await?;
//! println!("{} committed, {} dead-lettered", status.committed, status.failed.len());
//! # Ok(()) }
//! ```
//!
//! Every way to run a plan ends the same way: [`Run::status`] and [`Run::wait`] count a chunk
//! as succeeded only with its completion marker, finish a run seen complete once (its report
//! written, its claim on the output released), [`Run::redrive`] runs the chunks without one
//! again, [`Run::outputs`] lists what the run committed. The contract between submitter and
//! workers (environment, exit codes, keys, schemas) is in [`contract`].

#![warn(missing_docs)]

mod aws;
#[cfg(feature = "batch")]
pub mod batch;
pub mod capacity;
pub mod claim;
mod client;
pub mod codec;
mod context;
pub mod contract;
pub mod error;
pub mod iam;
pub mod incremental;
pub mod inventory;
pub mod items;
pub(crate) mod layout;
pub mod limits;
#[cfg(feature = "batch")]
pub mod lint;
pub mod listing;
pub mod local;
pub mod logs;
pub mod manifest;
pub mod plan;
pub mod pool;
pub(crate) mod preflight;
pub(crate) mod prepare;
pub mod price;
#[cfg(feature = "queue")]
pub mod queue;
pub mod records;
mod registry;
pub mod report;
#[cfg(feature = "html")]
pub use run::report_html;
pub mod run;
pub mod size;
pub mod status;
pub mod store;
pub mod time;
pub mod uri;

#[cfg(feature = "batch")]
pub use batch::SubmitOptions;
pub use client::{Client, ClientBuilder, DEFAULT_BATCH_RPS, DEFAULT_SQS_RPS, default_retry_config};
pub use error::{BoxError, Error, Result};
pub use local::LocalOptions;
pub use logs::{LogLine, LogsOptions};
pub use plan::{Plan, PlanOptions};
pub use prepare::RunSpec;
#[cfg(feature = "queue")]
pub use queue::EnqueueOptions;
pub use registry::StoreRegistry;
pub use report::RunReport;
pub use run::{PastRun, Run, RunKind, RunStatus, WaitOptions};
pub use uri::Location;
