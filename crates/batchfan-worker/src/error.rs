//! Worker errors and the exit codes they map to.

/// Errors a handler may return: anything that converts into a boxed error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Exit codes of a worker process (the contract's, [`batchfan::contract::exit`]).
pub use batchfan::contract::exit;

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
    /// A program `batchfan-worker exec` runs failed: the message names the item or chunk, the
    /// program's exit status and its last stderr lines; the worker exits with the program's own
    /// code (1 when it died by a signal, 127 when it could not start).
    #[error("{message}")]
    Program {
        /// What failed and how.
        message: String,
        /// The exit code the worker ends with.
        code: i32,
    },
    /// SIGTERM arrived before the chunk was committed.
    #[error("terminated by SIGTERM before commit; nothing was committed")]
    Terminated,
    /// The run no longer holds its output location: another run took it over, or the run was
    /// cancelled or seen finished. Nothing more is committed.
    #[error(
        "run {run_id} no longer holds output {output}: {holder}; nothing was committed (this child belongs to a run that was replaced, cancelled or ended, and must not write over the output of the run that holds it)"
    )]
    Fenced {
        /// This child's run.
        run_id: String,
        /// The output location.
        output: String,
        /// Who holds the output now, in words.
        holder: String,
    },
}

impl WorkerError {
    /// The process exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            WorkerError::Config(_) => exit::CONFIG,
            WorkerError::Batchfan(e) => batchfan_code(e).unwrap_or(exit::HANDLER_FAILED),
            WorkerError::Handler(e) => classify(e.as_ref()).unwrap_or(exit::HANDLER_FAILED),
            WorkerError::Panic(_) => exit::HANDLER_FAILED,
            WorkerError::Program { code, .. } => *code,
            WorkerError::Terminated => exit::TERMINATED,
            WorkerError::Fenced { .. } => exit::FENCED,
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
    // An `io::Error` from an `ItemReader` read through `AsyncRead` carries the batchfan error.
    let e = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
        Some(inner) => inner as &(dyn std::error::Error + 'static),
        None => e,
    };
    if let Some(w) = e.downcast_ref::<WorkerError>() {
        return Some(w.exit_code());
    }
    match e.downcast_ref::<batchfan::Error>()? {
        batchfan::Error::InputChanged { .. } => Some(exit::INPUT_CHANGED),
        e if e.is_transient() => Some(exit::TRANSIENT),
        _ => None,
    }
}
