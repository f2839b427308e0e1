//! batchfan-scale: SQS queue depth to worker capacity.
//!
//! Application Auto Scaling step scaling and target tracking computed as AWS computes them, on the
//! metric each policy names (SQS queue metrics, ECS task counts, CloudWatch metric math), plus
//! KEDA's proportional `aws-sqs-queue` mode, so a policy can be validated, evaluated and simulated
//! on a laptop before it is trusted:
//!
//! - [`document`]: the scaling file (the AWS CLI input documents of the scalable target, the
//!   scaling policy and its CloudWatch alarm, or what `export` printed);
//! - [`policy`]: the checked policies (every rule an error naming the policy and the step);
//! - [`metric`]: the metrics policies name and CloudWatch metric math over them;
//! - [`engine`]: the decisions, pure, driven by the caller's clock;
//! - [`simulate`]: an arrival trace replayed through a queue and worker model, and an oracle;
//! - [`export`]: the documents that install a policy natively for an ECS service;
//! - [`init`]: a recommended policy for a service time and a latency objective;
//! - [`plot`]: arrivals, backlog, workers and the oldest message's age over time as SVG;
//! - [`controller`]: the loop over a metric source and a capacity target (with the `targets`
//!   feature: SQS, the local worker pool, AWS Batch, print).
//!
//! ```
//! use batchfan_scale::policy::ScalingConfig;
//! use batchfan_scale::engine::{Observation, Scaler};
//! let config = ScalingConfig::from_json(batchfan_scale::init::CLASSIC_EXAMPLE).unwrap();
//! let mut scaler = Scaler::new(&config, None);
//! // Two minutes of 700 visible messages: the alarm (100, 2 periods of 60 s) fires; the step
//! // [500, 2000) adds 5.
//! let busy = Observation { visible: 700.0, ..Default::default() };
//! let mut last = None;
//! for minute in 0..3 {
//!     last = scaler.observe(f64::from(minute) * 60.0, &busy, 1).or(last);
//! }
//! assert_eq!(last.unwrap().new_capacity, 6);
//! ```

#![warn(missing_docs)]

pub mod controller;
pub mod document;
pub mod engine;
mod error;
pub mod export;
pub mod init;
pub mod metric;
pub mod plot;
pub mod policy;
pub mod simulate;
#[cfg(feature = "targets")]
pub mod targets;

pub use error::ScaleError;
