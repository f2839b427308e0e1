//! The one error type of the batchfan library.

use std::path::PathBuf;

/// Everything that can go wrong in planning, storage, manifests and local execution.
///
/// [`Error::is_bad_input`] tells a caller (the CLI) whether the user must fix something
/// (exit code 2) and [`Error::is_transient`] whether a retry may succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A location could not be parsed.
    #[error("invalid location `{uri}`: {reason}")]
    InvalidUri {
        /// What the user gave.
        uri: String,
        /// What is wrong with it and how to write it instead.
        reason: String,
    },
    /// A size such as `64MiB` could not be parsed.
    #[error("invalid size `{value}`: {reason}")]
    InvalidSize {
        /// What the user gave.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An option has a value outside what is allowed.
    #[error("{field} = {value} is not allowed: {allowed}")]
    InvalidOption {
        /// The option or request field, e.g. `--max-items-per-chunk`.
        field: String,
        /// The value given.
        value: String,
        /// The allowed range, and what to do instead.
        allowed: String,
    },
    /// The S3 bucket does not exist.
    #[error("bucket `{bucket}` does not exist: check the name (and AWS_REGION / AWS_ENDPOINT_URL) or create it")]
    NoSuchBucket {
        /// The bucket name.
        bucket: String,
    },
    /// An object, file or folder does not exist.
    #[error("`{uri}` does not exist")]
    NotFound {
        /// The location that was missing.
        uri: String,
    },
    /// Listing (and filtering) found nothing to process.
    #[error("no input objects under `{uri}`{filtered}: nothing to plan")]
    EmptyInput {
        /// The input location.
        uri: String,
        /// A note on filters that removed everything, or empty.
        filtered: String,
    },
    /// The plan has more chunks than one AWS Batch array allows.
    #[error(
        "the plan has {chunks} chunks but at most {limit} are allowed here: raise --max-items-per-chunk or --max-bytes-per-chunk, lower --children, or raise --split-bytes (every split range is an item of its own)"
    )]
    TooManyChunks {
        /// Chunks the plan would have.
        chunks: usize,
        /// The limit.
        limit: usize,
    },
    /// An input object changed between planning and reading.
    #[error(
        "input `{uri}` changed since the plan was made (planned version {expected}): re-plan the run to process the new content"
    )]
    InputChanged {
        /// The changed object.
        uri: String,
        /// The version recorded in the manifest.
        expected: String,
    },
    /// This machine's AWS setup is incomplete (no credentials, no region): nothing was sent.
    #[error("{problem}: {fix}")]
    Environment {
        /// What is missing.
        problem: String,
        /// How to set it.
        fix: String,
    },
    /// A disk is full. Transient: another host (another attempt) may have room.
    #[error(
        "no space left on the device holding `{location}`{what}: free space there, or retry the attempt on a host with room ({source})"
    )]
    NoSpace {
        /// The folder or store location that is full (not a temporary file inside it).
        location: String,
        /// What the location is, e.g. ` (the worker's spool folder; BATCHFAN_SPOOL_DIR moves it)`.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A compressed input could not be decoded: it is truncated, corrupt, or not in the format its
    /// extension or `Content-Encoding` names.
    #[error(
        "input `{uri}` is not valid {codec} data ({source}): it may be truncated or mislabelled; re-upload it, exclude it with --exclude, or read it raw (`open_raw`, `batchfan-worker exec --raw`)"
    )]
    Decompress {
        /// The input.
        uri: String,
        /// The format it was read as (`gzip`, `zstd`, ...).
        codec: &'static str,
        /// What the decoder reported.
        #[source]
        source: std::io::Error,
    },
    /// A manifest is unreadable or inconsistent.
    #[error("manifest `{uri}` is not a valid batchfan manifest: {reason}")]
    Manifest {
        /// Where the manifest is.
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// A manifest was written by an incompatible format version.
    #[error(
        "manifest `{uri}` has format version {found}, this batchfan reads version {supported}: use a matching batchfan release"
    )]
    ManifestVersion {
        /// Where the manifest is.
        uri: String,
        /// The version found.
        found: u64,
        /// The version this build reads.
        supported: u32,
    },
    /// A child index is not within the manifest's chunks.
    #[error(
        "chunk index {index} is out of range: manifest `{uri}` has {count} chunks (indices 0..={last})",
        last = count.saturating_sub(1)
    )]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// Chunks in the manifest.
        count: u64,
        /// Where the manifest is.
        uri: String,
    },
    /// A storage request failed.
    #[error("storage request `{op}` on `{uri}` failed: {message}")]
    Storage {
        /// The operation, e.g. `GetObject`.
        op: &'static str,
        /// The location.
        uri: String,
        /// The service's message.
        message: String,
        /// Whether a retry may succeed (network error, throttling, 5xx).
        transient: bool,
        /// The underlying error (an SDK error, with the raw response), when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A key that would leave its store's root (`..` segments, an absolute path).
    #[error("key `{key}` is not allowed: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A local file operation failed.
    #[error("{op} `{}` failed: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The output location already holds chunk outputs of an earlier run.
    #[error(
        "output `{uri}` already holds {found} chunk outputs or markers of an earlier run: continue that run with --resume (it runs only the chunks without a completion marker), pass --overwrite to delete them (only what earlier runs committed), or choose another --output"
    )]
    OutputNotEmpty {
        /// The output location.
        uri: String,
        /// How many outputs and markers were found.
        found: usize,
    },
    /// Another run holds the output location.
    #[error(
        "output `{uri}` is in use by {holder}: two runs must not share an output; choose another --output, or wait for that run to end (`batchfan wait` releases a finished run's claim). If that run is dead, delete `{claim}`"
    )]
    OutputClaimed {
        /// The output location.
        uri: String,
        /// Who holds it.
        holder: String,
        /// The claim object.
        claim: String,
    },
    /// A pool worker exited 2: its configuration is bad (the queue is gone, a bad setting), and
    /// every restart would end the same way.
    #[error(
        "worker {slot} exited 2 (bad configuration): {message}; every worker was stopped, since a restart would fail the same way (log: {log})"
    )]
    WorkerConfig {
        /// The worker's slot.
        slot: u64,
        /// Its log.
        log: std::path::PathBuf,
        /// The last line of its log.
        message: String,
    },
    /// A local folder or file this user may not read: bad input, not a failure of the work.
    #[error(
        "`{path}` cannot be read ({source}): give this user read access to it, or leave it out (--exclude, or another --input)"
    )]
    NotReadable {
        /// The folder or file.
        path: std::path::PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The run was interrupted (Ctrl-C); running children were stopped.
    #[error("interrupted: running children were stopped; committed chunks stay committed")]
    Interrupted,
    /// AWS Batch rejected a request as invalid (a missing queue or job definition, a bad field).
    #[error("AWS Batch {op} rejected the request: {message}")]
    BatchRejected {
        /// The operation.
        op: &'static str,
        /// The service's message.
        message: String,
        /// The SDK error, when the service answered.
        #[source]
        source: Option<BoxError>,
    },
    /// An AWS Batch request failed.
    #[error("AWS Batch {op} failed: {message}")]
    Batch {
        /// The operation.
        op: &'static str,
        /// What went wrong.
        message: String,
        /// Whether a retry may succeed (throttling, network, 5xx).
        transient: bool,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// SQS refused a request as invalid (a queue that does not exist, a bad attribute).
    #[error("SQS {op} on `{queue}` was refused: {message}")]
    QueueRejected {
        /// The operation.
        op: &'static str,
        /// The queue URL.
        queue: String,
        /// The service's message, and what to do.
        message: String,
        /// The SDK error.
        #[source]
        source: Option<BoxError>,
    },
    /// An SQS request failed.
    #[error("SQS {op} on `{queue}` failed: {message}")]
    Queue {
        /// The operation.
        op: &'static str,
        /// The queue URL.
        queue: String,
        /// What went wrong.
        message: String,
        /// Whether a retry may succeed (throttling, network, 5xx).
        transient: bool,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A CloudWatch Logs request failed (a stream that does not exist is not an error: `logs`
    /// says so in one line).
    #[error("CloudWatch Logs {op} failed: {message}")]
    Logs {
        /// The operation.
        op: &'static str,
        /// What went wrong.
        message: String,
        /// Whether a retry may succeed (throttling, network, 5xx).
        transient: bool,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A run id or run URI could not be resolved.
    #[error("unknown run `{run}`: {reason}")]
    UnknownRun {
        /// What the user gave.
        run: String,
        /// Why it could not be found, and what to give instead.
        reason: String,
    },
    /// A child program could not be started.
    #[error("could not start `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A chart of the HTML report could not be drawn.
    #[error("drawing the {what} of the HTML report failed: {reason}")]
    Render {
        /// The chart.
        what: String,
        /// The drawing library's reason.
        reason: String,
    },
}

impl Error {
    /// True when the user must change their input (the CLI exits 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidUri { .. }
                | Error::Environment { .. }
                | Error::InvalidSize { .. }
                | Error::InvalidOption { .. }
                | Error::NoSuchBucket { .. }
                | Error::NotFound { .. }
                | Error::EmptyInput { .. }
                | Error::TooManyChunks { .. }
                | Error::Manifest { .. }
                | Error::ManifestVersion { .. }
                | Error::IndexOutOfRange { .. }
                | Error::Spawn { .. }
                | Error::OutputNotEmpty { .. }
                | Error::OutputClaimed { .. }
                | Error::WorkerConfig { .. }
                | Error::NotReadable { .. }
                | Error::BatchRejected { .. }
                | Error::UnknownRun { .. }
                | Error::InvalidKey { .. }
                | Error::QueueRejected { .. }
        )
    }

    /// The batchfan error inside an `io::Error` from an [`crate::records::ItemReader`] read
    /// through `AsyncRead` (a changed input, a storage failure), or the `io::Error` as
    /// [`Error::Io`] naming `path`.
    pub fn from_io(e: std::io::Error, path: &std::path::Path) -> Error {
        let io = |source| Error::Io { op: "reading", path: path.to_path_buf(), source };
        if !e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            return io(e);
        }
        let kind = e.kind();
        match e.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(inner)) => *inner,
            Some(Err(other)) => io(std::io::Error::new(kind, other)),
            None => io(kind.into()),
        }
    }

    /// Appends `note` (such as ` (endpoint http://..)`) to the message of a transient storage
    /// error, so a failure to reach a custom endpoint names it.
    pub fn with_endpoint(self, note: &str) -> Error {
        match self {
            Error::Storage { op, uri, message, transient: true, source } if !note.is_empty() => {
                Error::Storage { op, uri, message: format!("{message}{note}"), transient: true, source }
            }
            other => other,
        }
    }

    /// True when retrying the same request may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Storage { transient: true, .. }
                | Error::Batch { transient: true, .. }
                | Error::Queue { transient: true, .. }
                | Error::Logs { transient: true, .. }
                | Error::NoSpace { .. }
        )
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// An I/O error while writing under `location`: [`Error::NoSpace`] naming `location` when
    /// the disk is full, else [`Error::Io`] naming `path`.
    pub fn write_io(
        op: &'static str,
        path: impl Into<PathBuf>,
        location: impl std::fmt::Display,
        what: &str,
        source: std::io::Error,
    ) -> Self {
        if is_no_space(&source) {
            Error::NoSpace { location: location.to_string(), what: what.to_string(), source }
        } else {
            Error::Io { op, path: path.into(), source }
        }
    }

    /// An [`Error::InvalidOption`] naming the field, the value and what is allowed.
    pub fn option(field: &str, value: impl ToString, allowed: impl Into<String>) -> Self {
        Error::InvalidOption { field: field.to_string(), value: value.to_string(), allowed: allowed.into() }
    }
}

/// A boxed error kept as the cause of a batchfan error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// True for ENOSPC (and EDQUOT, a full quota).
pub fn is_no_space(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// The AWS setup problem behind an SDK error raised before any request was sent: no credentials
/// in the chain, or no region. `None` for anything else.
pub(crate) fn environment_error(err: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if text.contains("no credentials found") || text.contains("credentials provider was not enabled") {
            return Some(Error::Environment {
                problem: "no AWS credentials were found".into(),
                fix: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile in ~/.aws/credentials, or run where a role provides them (ECS task role, EC2 instance profile)".into(),
            });
        }
        if text.contains("region must be set") || text.contains("No region") {
            return Some(Error::Environment {
                problem: "no AWS region is set".into(),
                fix: "set AWS_REGION (e.g. AWS_REGION=us-east-1), or `region` in the profile AWS_PROFILE names in ~/.aws/config".into(),
            });
        }
        cur = e.source();
    }
    None
}

/// An error and its causes on one line, without debug structures: each cause's message (its
/// first line), joined with `: `, a cause that repeats the one before left out.
pub(crate) fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default().trim().to_string();
        if !first.is_empty() && !parts.last().is_some_and(|p| p.contains(&first)) {
            parts.push(first);
        }
        cur = e.source();
    }
    parts.join(": ")
}
