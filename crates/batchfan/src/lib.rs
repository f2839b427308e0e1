//! batchfan: turn "process every object under this S3 prefix" into one array job, and run the
//! same plan on this machine first.
//!
//! The way through is one-directional: [`plan`] lists and packs the input, [`manifest`] writes
//! the plan where children can read their own chunk, and an executor ([`local`] here, AWS Batch
//! for scale) starts one child per chunk. Children use the `batchfan-worker` harness, which
//! commits each chunk's output exactly once under [`layout`]'s names.
//!
//! ```no_run
//! # async fn demo() -> batchfan::Result<()> {
//! use batchfan::{plan::{plan, PlanOptions}, uri::Location};
//! let input = Location::parse("s3://my-bucket/logs/2026/")?;
//! let options = PlanOptions { children: Some(100), ..Default::default() };
//! let plan = plan(&input, None, &options).await?;
//! println!("{} items in {} chunks", plan.items.len(), plan.chunks.len());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod aws;
#[cfg(feature = "batch")]
pub mod batch;
pub mod error;
pub mod layout;
pub mod limits;
pub mod local;
pub mod manifest;
pub mod plan;
pub mod records;
pub mod run;
pub mod size;
pub mod status;
pub mod store;
pub mod uri;

pub use error::{Error, Result};
