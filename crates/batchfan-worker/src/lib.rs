//! The harness batchfan array children run in.
//!
//! A worker program is a handler over one chunk, started by `run`:
//!
//! ```no_run
//! use batchfan_worker::{handler_fn, Chunk, BoxError};
//!
//! async fn handler(chunk: Chunk) -> Result<(), BoxError> {
//!     let output = chunk.output();
//!     for item in chunk.items() {
//!         let mut reader = chunk.open(item).await?;
//!         let mut lines = 0u64;
//!         while reader.next_record().await?.is_some() {
//!             lines += 1;
//!         }
//!         output.write(format!("{}\t{lines}\n", item.key).as_bytes()).await?;
//!     }
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     batchfan_worker::run(handler_fn(handler)).await
//! }
//! ```
//!
//! `run` installs its SIGTERM handler first, then reads [`Config::from_env`], reads only this
//! child's chunk of the manifest, skips the chunk if it was already committed, calls the
//! handler, and commits the output exactly once: the whole output appears under
//! `OUTPUT/part-NNNNN` in one atomic write, then a completion marker. Each write of a commit is
//! fenced: it happens only while the run still holds its output (exit 4 otherwise). A handler
//! error or panic fails the chunk with nothing committed.
//!
//! SIGTERM (Spot reclaim, scale-in) drains: the handler goes on until `BATCHFAN_STOP_TIMEOUT`
//! (default 25 s, under the 30 s ECS and AWS Batch give before SIGKILL); a chunk that finishes
//! within it commits and the process exits 0. At the deadline, or on a second SIGTERM, the
//! handler is aborted and the process exits 143 with nothing committed, so a retry starts clean.
//! [`Chunk::stopping`] lets a handler cut its work short. With `BATCHFAN_QUEUE_URL` set the same
//! `run` serves an SQS queue instead ([`queue`]), with the same drain. Exit codes are listed in
//! [`exit`].

#![warn(missing_docs)]

mod config;
mod error;
pub mod exec;
mod init;
mod log;
mod output;
pub mod queue;
mod runtime;
mod stop;
pub mod task_log;
mod usage;

pub use batchfan::Client;
pub use batchfan::contract::Item;
pub use batchfan::records::ItemReader;
pub use config::{Config, DEFAULT_STOP_TIMEOUT, QueueConfig};
pub use error::{BoxError, WorkerError, exit};
pub use output::{Compression, Output};
pub use runtime::{Chunk, Handler, HandlerFn, Outcome, handler_fn, run, run_with};
pub use stop::hold_sigterm;
/// The `tracing` crate the harness logs through, for handlers' own events.
pub use tracing;

/// This harness's version and the commit it was built from (`0.1.0 (commit 1a2b3c4d5e6f)`), as
/// `batchfan-worker --version` prints it, the worker logs it when it starts and completion
/// markers record it (`worker_version`), so a fleet running mixed versions can be told apart.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("BATCHFAN_COMMIT"), ")");
