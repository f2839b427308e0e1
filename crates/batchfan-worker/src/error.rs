//! Worker errors and the exit codes they map to.

/// Errors a handler may return: anything that converts into a boxed error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Exit codes of a worker process.
pub mod exit {
    /// The chunk was committed now, or had been committed by an earlier attempt.
    pub const OK: i32 = 0;
    /// The handler returned an error or panicked; nothing was committed.
    pub const HANDLER_FAILED: i32 = 1;
    /// Bad configuration: environment, manifest (missing, garbled, unknown version) or index
    /// out of range. Retrying does not help.
    pub const CONFIG: i32 = 2;
    /// An input changed since planning (ETag or mtime/size differ). Re-plan; retrying does not help.
    pub const INPUT_CHANGED: i32 = 3;
    /// A transient storage error (network, throttling, 5xx): a retry may succeed.
    pub const TRANSIENT: i32 = 75;
    /// SIGTERM (e.g. Spot reclaim) stopped the chunk before its commit: a retry may succeed.
    pub const TERMINATED: i32 = 143;
    /// Exit codes worth retrying (for AWS Batch `evaluateOnExit` rules).
    pub const RETRYABLE: [i32; 2] = [TRANSIENT, TERMINATED];
}

/// Why a chunk did not commit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The environment does not describe a valid child.
    #[error("bad worker configuration: {0}")]
    Config(String),
    /// Reading the manifest or inputs, or committing, failed.
    #[error(transparent)]
    Batchfan(#[from] batchfan::Error),
    /// The handler returned an error.
    #[error("handler failed: {0}")]
    Handler(BoxError),
    /// The handler panicked.
    #[error("handler panicked: {0}")]
    Panic(String),
    /// SIGTERM arrived before the chunk was committed.
    #[error("terminated by SIGTERM before commit; nothing was committed")]
    Terminated,
}

impl WorkerError {
    /// The process exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            WorkerError::Config(_) => exit::CONFIG,
            WorkerError::Batchfan(e) => batchfan_code(e).unwrap_or(exit::HANDLER_FAILED),
            WorkerError::Handler(e) => classify(e.as_ref()).unwrap_or(exit::HANDLER_FAILED),
            WorkerError::Panic(_) => exit::HANDLER_FAILED,
            WorkerError::Terminated => exit::TERMINATED,
        }
    }
}

fn batchfan_code(e: &batchfan::Error) -> Option<i32> {
    match e {
        batchfan::Error::InputChanged { .. } => Some(exit::INPUT_CHANGED),
        e if e.is_transient() => Some(exit::TRANSIENT),
        e if e.is_bad_input() => Some(exit::CONFIG),
        _ => None,
    }
}

/// A handler that propagated a harness error with `?` keeps that error's exit code.
fn classify(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    if let Some(w) = e.downcast_ref::<WorkerError>() {
        return Some(w.exit_code());
    }
    match e.downcast_ref::<batchfan::Error>()? {
        batchfan::Error::InputChanged { .. } => Some(exit::INPUT_CHANGED),
        e if e.is_transient() => Some(exit::TRANSIENT),
        _ => None,
    }
}
