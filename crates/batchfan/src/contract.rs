//! The contract between submitter, executor and worker, in one place both sides import:
//! environment variable names, worker exit codes, output and marker keys, and the versioned
//! schemas (manifest header and items, views, completion markers). The run record
//! (`run.json`, the submitter's own) is [`crate::run::RunRecord`], versioned by
//! [`RUN_RECORD_VERSION`].
//!
//! ```text
//! OUTPUT/part-00000                                 chunk 0's output, committed once
//! OUTPUT/_batchfan/claim.json                       which run holds the output
//! OUTPUT/_batchfan/runs/RUN/manifest.jsonl          the manifest (unless --manifest)
//! OUTPUT/_batchfan/runs/RUN/run.json                the run record (every kind of run)
//! OUTPUT/_batchfan/runs/RUN/array-000.json          views of a run of several arrays
//! OUTPUT/_batchfan/runs/RUN/done/00000.json         chunk 0's completion marker
//! OUTPUT/_batchfan/runs/RUN/report.json             the report, once the run is seen finished
//! ```

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store::ObjectMeta;
use crate::uri::Location;

/// Milliseconds since the Unix epoch: the clock every `*_unix_ms` field of the schemas uses.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// How long a worker lets work in flight go on after SIGTERM unless `BATCHFAN_STOP_TIMEOUT` says
/// otherwise: under the 30 s ECS and AWS Batch give before SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(25);

/// A number of seconds as the `BATCHFAN_*` variables take it: 0 to 86,400, fractions allowed.
pub fn parse_seconds(text: &str) -> Option<std::time::Duration> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
        .map(std::time::Duration::from_secs_f64)
}

/// Environment variables children and clients read.
pub mod env {
    /// The manifest (or view) URI a child reads; required.
    pub const MANIFEST: &str = "BATCHFAN_MANIFEST";
    /// The child index, as AWS Batch sets it for array children.
    pub const ARRAY_INDEX: &str = "AWS_BATCH_JOB_ARRAY_INDEX";
    /// The job id, `<parent>:<index>` for array children (moto sets only this).
    pub const JOB_ID: &str = "AWS_BATCH_JOB_ID";
    /// The attempt number, from 1.
    pub const ATTEMPT: &str = "AWS_BATCH_JOB_ATTEMPT";
    /// Where a child stages its output before the commit (default: the temp dir).
    pub const SPOOL_DIR: &str = "BATCHFAN_SPOOL_DIR";
    /// `0`: a child does not open the next item while the handler works on the current one
    /// (default `1`: it does, so the next item's first bytes are in flight).
    pub const PREFETCH: &str = "BATCHFAN_PREFETCH";
    /// `gzip` or `zstd`: children compress their outputs (the key gets `.gz` / `.zst`).
    pub const OUTPUT_COMPRESSION: &str = "BATCHFAN_OUTPUT_COMPRESSION";
    /// The file a child's output goes to, set by the local runner and the worker pool: the
    /// marker names it as the attempt's log.
    pub const LOG_FILE: &str = "BATCHFAN_LOG_FILE";
    /// `json` for JSON log lines (CloudWatch).
    pub const LOG_FORMAT: &str = "BATCHFAN_LOG_FORMAT";
    /// Bytes per ranged GET when a child reads an input (default `8MiB`).
    pub const READ_PART_SIZE: &str = "BATCHFAN_READ_PART_SIZE";
    /// Ranged GETs in flight per S3 input (default 4, 1 to 64).
    pub const READ_CONCURRENCY: &str = "BATCHFAN_READ_CONCURRENCY";
    /// AWS Batch requests per second of a client made by `Client::from_env` (default 10).
    pub const BATCH_RPS: &str = "BATCHFAN_BATCH_RPS";
    /// Where the CLI keeps run notes (default `~/.batchfan`).
    pub const HOME: &str = "BATCHFAN_HOME";
    /// SQS requests per second of a client made by `Client::from_env` (default 100).
    pub const SQS_RPS: &str = "BATCHFAN_SQS_RPS";
    /// Set: the worker serves this SQS queue instead of one array index.
    pub const QUEUE_URL: &str = "BATCHFAN_QUEUE_URL";
    /// Messages a queue worker processes at once (default 1).
    pub const QUEUE_CONCURRENCY: &str = "BATCHFAN_QUEUE_CONCURRENCY";
    /// Seconds with no message after which a queue worker exits 0 (unset: never).
    pub const QUEUE_IDLE_EXIT: &str = "BATCHFAN_QUEUE_IDLE_EXIT";
    /// Seconds a worker lets work in flight finish after SIGTERM (default 25: ECS and AWS Batch
    /// send SIGKILL 30 s after SIGTERM unless the task's `stopTimeout` says otherwise).
    pub const STOP_TIMEOUT: &str = "BATCHFAN_STOP_TIMEOUT";
}

/// Exit codes of a worker process.
pub mod exit {
    /// The chunk was committed now, or had been committed by an earlier attempt.
    pub const OK: i32 = 0;
    /// The handler returned an error or panicked; nothing was committed.
    pub const HANDLER_FAILED: i32 = 1;
    /// Bad configuration: environment, manifest (missing, garbled, unknown version) or index
    /// out of range. Retrying does not help.
    pub const CONFIG: i32 = 2;
    /// An input changed since planning (ETag or mtime/size differ, or it was deleted).
    /// Re-plan; retrying does not help.
    pub const INPUT_CHANGED: i32 = 3;
    /// A transient storage error (network, throttling, 5xx): a retry may succeed.
    pub const TRANSIENT: i32 = 75;
    /// The run no longer holds its output location (another run took it over, or the run was
    /// cancelled or seen finished): nothing was committed, and retrying does not help.
    pub const FENCED: i32 = 4;
    /// SIGTERM (e.g. Spot reclaim) stopped the chunk before its commit: a retry may succeed.
    pub const TERMINATED: i32 = 143;
    /// Exit codes worth retrying (for AWS Batch `evaluateOnExit` rules).
    pub const RETRYABLE: [i32; 2] = [TRANSIENT, TERMINATED];
}

/// Exit codes of the `batchfan` command (a worker's are [`exit`]).
pub mod cli_exit {
    /// Everything succeeded (every chunk committed, for commands that run or wait).
    pub const OK: u8 = 0;
    /// Work failed: children failed, chunks were not committed, a wait timed out.
    pub const WORK_FAILED: u8 = 1;
    /// Bad input: nothing was written or sent.
    pub const BAD_INPUT: u8 = 2;
    /// Transient: network, throttling, 5xx, a full disk. Retrying may help.
    pub const TRANSIENT: u8 = 75;
    /// Interrupted by Ctrl-C, SIGTERM or SIGHUP; children were stopped through their drain.
    pub const INTERRUPTED: u8 = 130;
}

/// The manifest format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The `format` field of every manifest header.
pub const FORMAT_NAME: &str = "batchfan-manifest";
/// The run record format version (`batchfan_run` in `run.json`).
pub const RUN_RECORD_VERSION: u32 = 1;
/// The run record's file name, next to the manifest.
pub const RUN_RECORD_NAME: &str = "run.json";
/// The completion marker format version (`batchfan_marker`). Fields added with a serde default
/// (absent in older markers, ignored by older readers) keep the version; a change an older
/// reader would misread raises it.
pub const MARKER_VERSION: u32 = 1;
/// The queue message format version (`batchfan_message`).
pub const MESSAGE_VERSION: u32 = 1;

/// One SQS message of a queue run: a chunk of a manifest. No work item travels in a message;
/// the worker reads the chunk's items from the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkMessage {
    /// Format version, [`MESSAGE_VERSION`].
    pub batchfan_message: u32,
    /// The run.
    pub run_id: String,
    /// The manifest URI.
    pub manifest: String,
    /// The chunk index in the manifest.
    pub chunk: u64,
}

impl ChunkMessage {
    /// The message of chunk `chunk` of run `run_id`.
    pub fn new(run_id: &str, manifest: &str, chunk: u64) -> ChunkMessage {
        ChunkMessage { batchfan_message: MESSAGE_VERSION, run_id: run_id.into(), manifest: manifest.into(), chunk }
    }

    /// Parses a message body; `Err` says why it is not a batchfan chunk message.
    pub fn parse(body: &str) -> std::result::Result<ChunkMessage, String> {
        let message: ChunkMessage =
            serde_json::from_str(body).map_err(|e| format!("the body is not a batchfan chunk message ({e})"))?;
        if message.batchfan_message != MESSAGE_VERSION {
            return Err(format!(
                "message format version {} (this batchfan reads {MESSAGE_VERSION})",
                message.batchfan_message
            ));
        }
        Ok(message)
    }
}

/// The folder under the output location holding batchfan's own files.
pub const META_DIR: &str = "_batchfan";

/// The output key of chunk `index`.
pub fn part_key(index: u64) -> String {
    format!("part-{index:05}")
}

/// The completion marker of chunk `index` of run `run_id`.
pub fn marker_key(run_id: &str, index: u64) -> String {
    format!("{}{index:05}.json", marker_prefix(run_id))
}

/// The folder of run `run_id`'s completion markers, under the output location.
pub fn marker_prefix(run_id: &str) -> String {
    format!("{META_DIR}/runs/{run_id}/done/")
}

/// The chunk index of a completion marker's key (relative to [`marker_prefix`] or the output).
pub fn marker_index(key: &str) -> Option<u64> {
    let name = key.rsplit('/').next()?;
    name.strip_suffix(".json")?.parse().ok()
}

/// The default manifest key of a run, under the output location.
pub fn manifest_key(run_id: &str) -> String {
    format!("{META_DIR}/runs/{run_id}/manifest.jsonl")
}

/// What a child writes after its output is committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Format version, [`MARKER_VERSION`] (absent in markers of the first releases).
    #[serde(default)]
    pub batchfan_marker: u32,
    /// The run.
    pub run_id: String,
    /// The chunk.
    pub index: u64,
    /// The attempt that committed.
    pub attempt: u32,
    /// `AWS_BATCH_JOB_ID` of the child that committed.
    pub job_id: String,
    /// Items processed.
    pub items: u64,
    /// Input bytes read.
    pub bytes_in: u64,
    /// The output key.
    pub output_key: String,
    /// Output bytes written (of `output_key`).
    pub bytes_out: u64,
    /// Objects the chunk committed besides `output_key`, each before this marker: the mirrored
    /// outputs of `batchfan-worker exec --per-item`. `output_key` is empty when there are only these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<String>,
    /// The version each committed object had right after its write (`output_key` and
    /// `objects`; see [`crate::store::ObjectMeta::version`]): an object whose version differs
    /// later was overwritten by another writer, and the chunk does not count as committed.
    /// Absent in markers of earlier releases.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub versions: std::collections::BTreeMap<String, String>,
    /// Items the handler skipped (`batchfan-worker exec --item-failures skip`): the chunk
    /// committed without their outputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedItem>,
    /// When the commit finished (ms since the epoch).
    pub committed_unix_ms: u64,
    /// When the attempt started: the worker's start (ms since the epoch). Absent in markers of
    /// earlier releases, like every figure below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_ms: Option<u64>,
    /// CPU time in user mode up to the commit: the worker and every program it ran and waited
    /// for (`getrusage` of the process and its children).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_user_ms: Option<u64>,
    /// CPU time in the kernel, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_system_ms: Option<u64>,
    /// Peak resident set size: the worker's, or its largest program's, whichever is larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// The SQS message id, for a chunk of a queue run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Where the attempt's log is, as far as the worker knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogLocation>,
}

/// Where an attempt's log is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LogLocation {
    /// A file on the machine that ran the attempt (local runs).
    File {
        /// Its path.
        path: String,
    },
    /// A CloudWatch Logs stream (AWS Batch's `awslogs` driver).
    Cloudwatch {
        /// The log group (`/aws/batch/job` unless the job definition says otherwise).
        group: String,
        /// The stream (`JOBDEF/default/TASK` for AWS Batch).
        stream: String,
    },
}

impl std::fmt::Display for LogLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogLocation::File { path } => f.write_str(path),
            LogLocation::Cloudwatch { group, stream } => write!(f, "cloudwatch:{group}:{stream}"),
        }
    }
}

/// An item a chunk committed without (its processing failed and its handler skipped it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedItem {
    /// The item's key.
    pub key: String,
    /// Its byte range, for a range of a split object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[u64; 2]>,
    /// The exit code its program ended with.
    pub exit_code: i32,
    /// Why: the program's exit status and last stderr lines.
    pub reason: String,
}

/// One unit of work: an object, or a byte range of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Key relative to the input location.
    pub key: String,
    /// Size of the whole object in bytes.
    pub size: u64,
    /// S3 ETag at planning time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Local modification time (ns since the epoch) at planning time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<u64>,
    /// The object's `Content-Encoding` (S3), when the planner looked it up: objects the split
    /// size would have split are asked, so a compressed one without a telling extension stays whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// Byte range `[start, end)` when the object was split; records starting inside it belong to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[u64; 2]>,
}

impl Item {
    /// An item for a listed object, whole or one range of it.
    pub fn from_meta(meta: ObjectMeta, range: Option<[u64; 2]>) -> Item {
        Item {
            key: meta.key,
            size: meta.size,
            etag: meta.etag,
            mtime_ns: meta.mtime_ns,
            content_encoding: meta.content_encoding,
            range,
        }
    }

    /// The object version this item was planned against.
    pub fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            key: self.key.clone(),
            size: self.size,
            etag: self.etag.clone(),
            mtime_ns: self.mtime_ns,
            content_encoding: self.content_encoding.clone(),
        }
    }

    /// Bytes this item covers (its range, or the whole object).
    pub fn bytes(&self) -> u64 {
        self.range.map_or(self.size, |[start, end]| end - start)
    }
}

/// The manifest header: the plan's metadata and where each chunk's items are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Format version, [`FORMAT_VERSION`].
    pub version: u32,
    /// The run this manifest belongs to.
    pub run_id: String,
    /// When the manifest was written (ms since the epoch).
    pub created_unix_ms: u64,
    /// Input location item keys are relative to.
    pub input: String,
    /// Output location children commit to.
    pub output: String,
    /// Objects after filtering.
    pub object_count: u64,
    /// Items (objects, or ranges of split objects).
    pub item_count: u64,
    /// Bytes to read in all.
    pub total_bytes: u64,
    /// Number of chunks: the array size a child can check its index against.
    pub chunk_count: u64,
    /// Split size used, if any.
    #[serde(default)]
    pub split_bytes: Option<u64>,
    /// Per chunk: `[offset, length, items, bytes]`, offset and length of its item lines.
    pub chunks: Vec<[u64; 4]>,
    /// Children commit only while the output's claim (`_batchfan/claim.json`) names this run:
    /// set by every run batchfan starts, so a child of a replaced run cannot overwrite the
    /// outputs of the run that replaced it. Absent (false) in manifests written without a
    /// claim, such as by [`crate::manifest::write_plan`] alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fenced: bool,
}

impl Header {
    /// Items in chunk `index`.
    pub fn chunk_items(&self, index: usize) -> u64 {
        self.chunks.get(index).map_or(0, |c| c[2])
    }

    /// Input bytes of chunk `index`.
    pub fn chunk_bytes(&self, index: usize) -> u64 {
        self.chunks.get(index).map_or(0, |c| c[3])
    }

    /// The output location.
    pub fn output_location(&self) -> Result<Location> {
        Location::parse(&self.output)
    }

    /// The input location.
    pub fn input_location(&self) -> Result<Location> {
        Location::parse(&self.input)
    }
}

/// A view: a manifest of some chunks of another manifest, for one array of a run that needs
/// several, or for a redrive of failed chunks. Child `i` of the view processes chunk
/// `indices[i]` (or `first + i` when `indices` is empty) of `base`, and commits under that
/// chunk's own name, so outputs land where the originals would have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// Format version of views, [`FORMAT_VERSION`].
    pub batchfan_view: u32,
    /// The manifest this view selects from.
    pub base: String,
    /// First chunk when `indices` is empty.
    #[serde(default)]
    pub first: u64,
    /// Number of children of the view.
    pub count: u64,
    /// Explicit chunk indices, one per child.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indices: Vec<u64>,
}

impl View {
    /// A view of `count` consecutive chunks from `first`.
    pub fn range(base: &str, first: u64, count: u64) -> View {
        View { batchfan_view: FORMAT_VERSION, base: base.to_string(), first, count, indices: Vec::new() }
    }

    /// A view of the given chunks.
    pub fn indices(base: &str, indices: Vec<u64>) -> View {
        View { batchfan_view: FORMAT_VERSION, base: base.to_string(), first: 0, count: indices.len() as u64, indices }
    }

    /// The base chunk of child `child`, if the view has that child.
    pub fn chunk_of(&self, child: u64) -> Option<u64> {
        if child >= self.count {
            return None;
        }
        if self.indices.is_empty() { Some(self.first + child) } else { self.indices.get(child as usize).copied() }
    }
}
