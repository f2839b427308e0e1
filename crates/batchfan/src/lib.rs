//! batchfan: turn "process every object under this S3 prefix" into one array job, and run the
//! same plan on this machine first.
//!
//! The way through is one-directional: [`plan`] lists and packs the input, [`manifest`] writes
//! the plan where children can read their own chunk, and an executor ([`local`] here, AWS Batch
//! for scale) starts one child per chunk. Children use the `batchfan-worker` harness, which
//! commits each chunk's output exactly once under [`layout`]'s names.
//!
//! Everything that talks to AWS goes through a [`Client`], built like any aws-sdk-rust client
//! from the caller's own [`aws_config::SdkConfig`] (or from the environment), cloneable and
//! free of process-global state: two clients in one process talk to two accounts or regions.
//!
//! ```no_run
//! # async fn demo() -> batchfan::Result<()> {
//! use batchfan::{Client, plan::PlanOptions, uri::Location};
//! let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let client = Client::new(&config);
//! let input = Location::parse("s3://my-bucket/logs/2026/")?;
//! let options = PlanOptions { children: Some(100), ..Default::default() };
//! let plan = client.plan(&input, &options).await?;
//! println!("{} items in {} chunks", plan.items.len(), plan.chunks.len());
//! # Ok(()) }
//! ```
//!
//! The contract between submitter and workers (environment, exit codes, keys, schemas) is in
//! [`contract`].

#![warn(missing_docs)]

#[cfg(feature = "batch")]
pub mod batch;
pub mod claim;
mod client;
pub mod codec;
pub mod contract;
pub mod error;
pub mod layout;
pub mod limits;
pub mod local;
pub mod manifest;
pub mod plan;
pub mod pool;
pub mod preflight;
#[cfg(feature = "queue")]
pub mod queue;
pub mod records;
pub mod report;
pub mod run;
pub mod runs;
pub mod size;
pub mod status;
pub mod store;
pub mod uri;

pub use client::{Client, ClientBuilder, DEFAULT_BATCH_RPS, DEFAULT_SQS_RPS, default_retry_config};
pub use error::{BoxError, Error, Result};
