//! The loop hidden behind `run`: config, chunk, handler, commit.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use batchfan::Client;
use batchfan::contract::{self, Header, Item, MARKER_VERSION, Marker, SkippedItem};
use batchfan::manifest::ManifestReader;
use batchfan::records::ItemReader;
use batchfan::store::{self, ReadOptions, Store};
use bytes::Bytes;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::config::Config;
use crate::error::{BoxError, WorkerError};
use crate::log;
use crate::output::Output;
use crate::stop::{self, Phase, StopSignal};

/// One child's work: its items, the input store, and its output.
#[derive(Debug, Clone)]
pub struct Chunk {
    index: u64,
    attempt: u32,
    items: Arc<[Item]>,
    header: Arc<Header>,
    input: Arc<dyn Store>,
    read: ReadOptions,
    output: Output,
    output_store: Arc<dyn Store>,
    /// Objects committed through [`Chunk::commit_file`], listed in the marker, with their
    /// versions.
    objects: Arc<Mutex<Committed>>,
    /// Items skipped by their handler ([`Chunk::skip_item`]), listed in the marker.
    skipped: Arc<Mutex<Vec<SkippedItem>>>,
    fence: Fence,
    /// The next item's reader, opened while the handler works on the current one.
    prefetch: Arc<tokio::sync::Mutex<Option<Prefetch>>>,
    spool_dir: Arc<std::path::Path>,
    prefetch_next: bool,
    stop: StopSignal,
}

/// An item opened ahead of the handler.
#[derive(Debug)]
struct Prefetch {
    position: usize,
    raw: bool,
    task: tokio::task::JoinHandle<batchfan::Result<ItemReader>>,
    _abort: AbortOnDrop,
}

impl Chunk {
    /// Resolves when the worker is asked to stop (SIGTERM: Spot reclaim, scale-in). The chunk
    /// may still finish: returning `Ok` before the drain deadline (`BATCHFAN_STOP_TIMEOUT`)
    /// commits it; a handler can also cut its work short here and return an error, so the
    /// chunk is retried elsewhere.
    pub async fn stopping(&self) {
        self.stop.reached(Phase::Draining).await;
    }

    /// True once the worker was asked to stop (see [`Chunk::stopping`]).
    pub fn is_stopping(&self) -> bool {
        self.stop.phase() >= Phase::Draining
    }

    /// The run's chunk index: the array index, unless the child runs under a view (a run of
    /// several arrays, or a redrive), which maps its array index to this chunk.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The attempt number (from 1).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The items to process, in key order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The manifest header (run id, input and output locations, chunk count).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Opens an item for reading, pinned to the version recorded at planning: if the object
    /// changed since, reading fails with [`batchfan::Error::InputChanged`] naming the key. A
    /// compressed object (`.gz`, `.zst`, `.bz2`, `.xz`, `.snappy`, or by its `Content-Encoding`)
    /// reads decompressed.
    ///
    /// Opening one of [`Chunk::items`] also starts reading the next one, so its first bytes are
    /// in flight while the handler works on this one.
    pub async fn open(&self, item: &Item) -> Result<ItemReader, WorkerError> {
        self.open_as(item, false).await
    }

    /// Opens an item as stored: compressed objects are not decompressed.
    pub async fn open_raw(&self, item: &Item) -> Result<ItemReader, WorkerError> {
        self.open_as(item, true).await
    }

    async fn open_as(&self, item: &Item, raw: bool) -> Result<ItemReader, WorkerError> {
        let position =
            self.items.iter().position(|i| std::ptr::eq(i, item)).or_else(|| self.items.iter().position(|i| i == item));
        let mut slot = self.prefetch.lock().await;
        let ready = match slot.take() {
            Some(p) if Some(p.position) == position && p.raw == raw => Some(p),
            _ => None, // dropping it aborts a prefetch the handler did not want
        };
        let next = position.map(|p| p + 1).filter(|&n| n < self.items.len() && self.prefetch_next);
        if let Some(next) = next {
            let (input, item, read) = (self.input.clone(), self.items[next].clone(), self.read);
            let task = tokio::spawn(async move {
                let mut reader = if raw {
                    ItemReader::open_raw(&input, &item, read).await?
                } else {
                    ItemReader::open(&input, &item, read).await?
                };
                reader.prime().await;
                Ok(reader)
            });
            let abort = AbortOnDrop(task.abort_handle());
            *slot = Some(Prefetch { position: next, raw, task, _abort: abort });
        }
        drop(slot);
        if let Some(p) = ready {
            match p.task.await {
                Ok(reader) => return Ok(reader?),
                Err(e) if e.is_panic() => return Err(WorkerError::Panic(panic_message(e.into_panic()))),
                Err(_) => {} // aborted: open it here
            }
        }
        let reader = if raw {
            ItemReader::open_raw(&self.input, item, self.read).await?
        } else {
            ItemReader::open(&self.input, item, self.read).await?
        };
        Ok(reader)
    }

    /// Commits the file at `path` now, atomically, as the output object `key` (relative to the
    /// run's output location): for outputs besides the chunk's `part-NNNNN`, such as one object
    /// per input. A re-run writes the same keys again. The chunk's marker, written after the
    /// handler returns, lists these objects and is what says the chunk is complete: readers of
    /// such outputs trust the markers (or the run report), not the objects' presence.
    ///
    /// Keys under `_batchfan/`, and keys with `.`/`..` segments, empty segments or a leading
    /// `/`, are refused.
    ///
    /// Like every commit, it is fenced: it fails with [`WorkerError::Fenced`] once the run no
    /// longer holds its output.
    pub async fn commit_file(&self, key: &str, path: &std::path::Path) -> Result<(), WorkerError> {
        check_output_key(key)?;
        self.fence.check().await?;
        let written = self.output_store.put_file(key, path).await?;
        self.objects.lock().unwrap_or_else(|p| p.into_inner()).add(key, &written);
        Ok(())
    }

    /// Records that `item` was skipped (its processing failed with `exit_code` and `reason`)
    /// while the chunk goes on: the completion marker and the run report list it.
    pub fn skip_item(&self, item: &Item, exit_code: i32, reason: &str) {
        let reason: String = reason.chars().take(2_000).collect();
        self.skipped.lock().unwrap_or_else(|p| p.into_inner()).push(SkippedItem {
            key: item.key.clone(),
            range: item.range,
            exit_code,
            reason,
        });
    }

    /// The worker's spool folder (`BATCHFAN_SPOOL_DIR`), for the handler's own temporary files.
    pub fn spool_dir(&self) -> &std::path::Path {
        &self.spool_dir
    }

    /// The chunk's output.
    pub fn output(&self) -> Output {
        self.output.clone()
    }
}

/// A chunk handler. Implemented for closures by [`handler_fn`].
pub trait Handler: Send + Sync + 'static {
    /// Processes one chunk.
    fn call(&self, chunk: Chunk) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
}

/// A [`Handler`] made from an async function.
#[derive(Debug, Clone, Copy)]
pub struct HandlerFn<F>(F);

/// Makes a handler from an async function `Fn(Chunk) -> Result<(), E>`.
pub fn handler_fn<F, Fut, E>(f: F) -> HandlerFn<F>
where
    F: Fn(Chunk) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<BoxError>,
{
    HandlerFn(f)
}

impl<F, Fut, E> Handler for HandlerFn<F>
where
    F: Fn(Chunk) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn call(&self, chunk: Chunk) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> {
        let fut = (self.0)(chunk);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

/// What a successful child did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// This attempt committed the chunk.
    Committed(Marker),
    /// An earlier attempt had committed it; nothing was done.
    AlreadyCommitted(Marker),
}

/// Runs `handler` on this child's chunk (configured from the environment, with a
/// [`Client::from_env`]) and returns the exit code to end the process with (see [`crate::exit`]).
/// With `BATCHFAN_QUEUE_URL` set it serves that SQS queue instead ([`crate::queue`]).
///
/// SIGTERM (Spot reclaim, scale-in) lets the chunk go on until `BATCHFAN_STOP_TIMEOUT` (default
/// 25 s); if it finishes it commits and the process exits 0, else (or on a second SIGTERM) it is
/// aborted and the process exits 143 with nothing committed.
///
/// Logs go through `tracing`: unless the program installed a subscriber, one line per event on
/// stderr, JSON with `BATCHFAN_LOG_FORMAT=json`, filtered by `RUST_LOG` (default `info`). Events
/// of the handler, `tracing::info!` and the like, carry the chunk's run id, index and attempt.
pub async fn run<H: Handler>(handler: H) -> ExitCode {
    // The SIGTERM handler comes first: a SIGTERM before it would kill the process with no log
    // line and no exit code of ours.
    let stop = stop::on_sigterm(stop::timeout_from_env());
    crate::usage::process_started_ms();
    log::init();
    if std::env::var_os(contract::env::QUEUE_URL).is_some() {
        return crate::queue::serve_chunks(handler, stop).await;
    }
    let span = tracing::info_span!("chunk", run_id = Empty, chunk = Empty, attempt = Empty);
    let result = async {
        let config = Config::from_env()?;
        let stop = stop.map_err(|e| WorkerError::Config(format!("cannot install the SIGTERM handler: {e}")))?;
        let client = Client::from_env().await;
        let manifest = client.open_manifest(&config.manifest).await.map_err(config_error)?;
        let job = Job { log: crate::task_log::discover().await, ..Job::from(&config) };
        run_chunk(&client, &manifest, &job, &handler, &stop).await
    }
    .instrument(span.clone())
    .await;
    exit_code(&span, result)
}

/// The exit code of a finished child, with the error logged in its span.
pub(crate) fn exit_code<T>(span: &Span, result: Result<T, WorkerError>) -> ExitCode {
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            span.in_scope(|| tracing::error!(exit_code = code, "{e}"));
            ExitCode::from(code.clamp(0, 255) as u8)
        }
    }
}

/// Runs `handler` on the chunk `config` names, reading and writing through `client`, and commits
/// its output exactly once. Installs no signal handler: that is [`run`]'s (the caller's) choice.
pub async fn run_with<H: Handler>(config: Config, client: &Client, handler: H) -> Result<Outcome, WorkerError> {
    let manifest = client.open_manifest(&config.manifest).await.map_err(config_error)?;
    let job = Job { log: crate::task_log::discover().await, ..Job::from(&config) };
    run_chunk(client, &manifest, &job, &handler, &StopSignal::never()).await
}

/// One child's identity and settings, from the environment (array mode) or a queue message.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// The child index (through a view, it maps to the run's chunk).
    pub(crate) child: u64,
    pub(crate) attempt: u32,
    pub(crate) job_id: String,
    pub(crate) spool_dir: std::path::PathBuf,
    pub(crate) read: ReadOptions,
    pub(crate) compression: Option<crate::output::Compression>,
    pub(crate) prefetch: bool,
    /// The SQS message id, in queue mode (`job_id` is the same there).
    pub(crate) message_id: Option<String>,
    /// When the attempt started (ms since the epoch).
    pub(crate) started_unix_ms: u64,
    /// Usage before the attempt, in queue mode (a worker serves many); `None`: count from the
    /// process start (an array child serves one chunk).
    pub(crate) usage_base: Option<crate::usage::Usage>,
    /// Where the attempt's log goes ([`crate::task_log`]), named in its marker.
    pub(crate) log: Option<contract::LogLocation>,
}

impl From<&Config> for Job {
    fn from(c: &Config) -> Job {
        Job {
            child: c.index,
            attempt: c.attempt,
            job_id: c.job_id.clone(),
            spool_dir: c.spool_dir.clone(),
            read: c.read,
            compression: c.output_compression,
            prefetch: c.prefetch,
            message_id: None,
            started_unix_ms: crate::usage::process_started_ms(),
            usage_base: None,
            log: None,
        }
    }
}

/// Runs `handler` on one chunk of an open manifest and commits its output exactly once.
pub(crate) async fn run_chunk<H: Handler>(
    client: &Client,
    manifest: &ManifestReader,
    job: &Job,
    handler: &H,
    stop: &StopSignal,
) -> Result<Outcome, WorkerError> {
    let header = Arc::new(manifest.header().clone());
    // Through a view (several arrays, redrives) the child index maps to the run's chunk index.
    let index = manifest.chunk_index(job.child).map_err(config_error)?;
    let items: Arc<[Item]> = manifest.chunk(job.child).await.map_err(config_error)?.into();
    // Fills the fields of the span `run` opened (a no-op under a caller's own span).
    let span = Span::current();
    // (In queue mode the chunk span has no attempt field: the message span names it.)
    span.record("run_id", header.run_id.as_str()).record("chunk", index).record("attempt", job.attempt);
    let output_store = client.store(&header.output_location()?)?;
    let fence = Fence { store: output_store.clone(), run_id: header.run_id.clone(), on: header.fenced };
    let marker_key = contract::marker_key(&header.run_id, index);
    if let Some(marker) = read_marker(output_store.as_ref(), &marker_key).await? {
        tracing::info!("chunk already committed by an earlier attempt; nothing to do");
        return Ok(Outcome::AlreadyCommitted(marker));
    }
    if stop.phase() != Phase::Running {
        // Asked to stop before the handler started: start nothing.
        return Err(WorkerError::Terminated);
    }
    let input = client.store(&header.input_location()?)?;
    let spool_name =
        format!("batchfan-{}-{index:05}-{}-{}.spool", header.run_id, std::process::id(), fastrand::u32(..));
    let output = Output::create(&job.spool_dir, &spool_name, job.compression).await?;
    // Removes the spool file however the chunk ends, an abort at the drain deadline included.
    let _spool = output.remove_on_drop();
    // Local files read fastest as one stream (measured: parallel parts cost 8% more wall time).
    let read = if input.parallel_reads() { job.read } else { ReadOptions { concurrency: 1, ..job.read } };
    let chunk = Chunk {
        index,
        attempt: job.attempt,
        items: items.clone(),
        header: header.clone(),
        input,
        read,
        output: output.clone(),
        output_store: output_store.clone(),
        objects: Arc::default(),
        skipped: Arc::default(),
        fence: fence.clone(),
        prefetch: Arc::default(),
        spool_dir: job.spool_dir.as_path().into(),
        prefetch_next: job.prefetch,
        stop: stop.clone(),
    };
    let objects = chunk.objects.clone();
    let skipped = chunk.skipped.clone();
    tracing::info!(items = items.len(), "chunk started");
    let result = call_handler(handler, chunk, stop).await;
    let committed = match result {
        Ok(()) => {
            let mut objects = std::mem::take(&mut *objects.lock().unwrap_or_else(|p| p.into_inner()));
            objects.skipped = std::mem::take(&mut *skipped.lock().unwrap_or_else(|p| p.into_inner()));
            commit(job, index, &header, output_store.as_ref(), &fence, &output, objects, &marker_key).await
        }
        Err(e) => Err(e),
    };
    output.remove().await;
    let marker = committed?;
    tracing::info!(output = %marker.output_key, bytes_out = marker.bytes_out, "chunk committed");
    Ok(Outcome::Committed(marker))
}

/// A manifest that cannot be read is the child's configuration problem, unless it is transient.
pub(crate) fn config_error(e: batchfan::Error) -> WorkerError {
    if e.is_transient() { WorkerError::Batchfan(e) } else { WorkerError::Config(e.to_string()) }
}

async fn read_marker(store: &dyn Store, key: &str) -> Result<Option<Marker>, WorkerError> {
    if store.head(key).await?.is_none() {
        return Ok(None);
    }
    let bytes = store::read_all(store, key, None, None).await?;
    // A marker is written only after the output; an unreadable one still means committed.
    Ok(Some(serde_json::from_slice(&bytes).unwrap_or_default()))
}

/// Aborts a task when dropped: a handler task never outlives the chunk that started it.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the handler in its own task, so a panic becomes a failure, and aborts it when the stop
/// reaches [`Phase::Abort`] (the drain deadline, or a second SIGTERM).
async fn call_handler<H: Handler>(handler: &H, chunk: Chunk, stop: &StopSignal) -> Result<(), WorkerError> {
    let mut task = tokio::spawn(handler.call(chunk).instrument(Span::current()));
    let _abort = AbortOnDrop(task.abort_handle());
    tokio::select! {
        joined = &mut task => match joined {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(WorkerError::Handler(e)),
            Err(e) if e.is_panic() => Err(WorkerError::Panic(panic_message(e.into_panic()))),
            Err(e) => Err(WorkerError::Panic(e.to_string())),
        },
        () = stop.reached(Phase::Abort) => Err(WorkerError::Terminated),
    }
}

pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string())
}

/// What a chunk committed through [`Chunk::commit_file`]: keys in order, and their versions.
#[derive(Debug, Default)]
struct Committed {
    keys: Vec<String>,
    versions: std::collections::BTreeMap<String, String>,
    skipped: Vec<SkippedItem>,
}

impl Committed {
    fn add(&mut self, key: &str, written: &store::ObjectMeta) {
        if !self.keys.iter().any(|k| k == key) {
            self.keys.push(key.to_string());
        }
        if let Some(version) = written.version() {
            self.versions.insert(key.to_string(), version);
        }
    }
}

/// A run's hold on its output, checked right before every write of a commit: a child whose run
/// no longer holds the output's claim commits nothing ([`WorkerError::Fenced`]).
///
/// What remains is the window between a check and the write it guards (one request): a writer
/// that passed its check just before another run took the output over can still land one
/// object. Every object a commit writes is recorded with its version in the marker, and
/// readers of a run (its report, `batchfan outputs`) trust an object only when its version is
/// still the one its marker recorded, so such a late write is seen as a changed output, never
/// counted as the new run's.
#[derive(Debug, Clone)]
pub(crate) struct Fence {
    store: Arc<dyn Store>,
    run_id: String,
    /// The manifest is fenced ([`Header::fenced`]); without it, nothing is checked.
    on: bool,
}

impl Fence {
    pub(crate) async fn check(&self) -> Result<(), WorkerError> {
        if !self.on {
            return Ok(());
        }
        match batchfan::claim::read(self.store.as_ref()).await? {
            Some(claim) if claim.run_id == self.run_id => Ok(()),
            holder => Err(WorkerError::Fenced {
                run_id: self.run_id.clone(),
                output: self.store.location().to_string(),
                holder: match holder {
                    Some(claim) => format!("run {} holds it now", claim.run_id),
                    None => "no run holds it (this run was released as finished or cancelled)".to_string(),
                },
            }),
        }
    }
}

/// Output first (one atomic write), then the marker, each after a fence check: a crash between
/// the two re-runs the chunk, which rewrites the same deterministic key, so nothing is
/// duplicated.
#[allow(clippy::too_many_arguments)]
async fn commit(
    job: &Job,
    index: u64,
    header: &Header,
    store: &dyn Store,
    fence: &Fence,
    output: &Output,
    committed: Committed,
    marker_key: &str,
) -> Result<Marker, WorkerError> {
    let (spool, mut bytes_out) = output.finish().await?;
    let Committed { keys: objects, mut versions, skipped } = committed;
    // A chunk that committed its own objects and wrote nothing to its output has no part file.
    let output_key = if output.is_empty() && !objects.is_empty() {
        bytes_out = 0;
        String::new()
    } else {
        let ext = output.compression().map_or("", |c| c.extension());
        let key = format!("{}{ext}", contract::part_key(index));
        fence.check().await?;
        let written = store.put_file(&key, &spool).await?;
        if let Some(version) = written.version() {
            versions.insert(key.clone(), version);
        }
        key
    };
    let usage = job.usage_base.map_or_else(crate::usage::now, |base| crate::usage::now().since(base));
    let marker = Marker {
        batchfan_marker: MARKER_VERSION,
        run_id: header.run_id.clone(),
        index,
        attempt: job.attempt,
        job_id: job.job_id.clone(),
        items: header.chunk_items(index as usize),
        bytes_in: header.chunk_bytes(index as usize),
        output_key,
        bytes_out,
        objects,
        versions,
        skipped,
        committed_unix_ms: contract::now_ms(),
        started_unix_ms: Some(job.started_unix_ms),
        cpu_user_ms: Some(usage.user_ms),
        cpu_system_ms: Some(usage.system_ms),
        peak_rss_bytes: Some(usage.peak_rss_bytes).filter(|&b| b > 0),
        message_id: job.message_id.clone(),
        log: job.log.clone(),
        worker_version: Some(crate::VERSION.to_string()),
    };
    let body = serde_json::to_vec_pretty(&marker).map_err(|e| WorkerError::Config(e.to_string()))?;
    fence.check().await?;
    store.put(marker_key, Bytes::from(body)).await?;
    Ok(marker)
}

/// Refuses output keys that would leave the output root when mirrored to a folder, or land in
/// batchfan's own `_batchfan/` folder.
pub(crate) fn check_output_key(key: &str) -> Result<(), WorkerError> {
    let reason = if key.is_empty() {
        Some("is empty")
    } else if key.starts_with('/') {
        Some("is an absolute path")
    } else if key.split('/').any(|s| s == ".." || s == ".") {
        Some("has a `.` or `..` segment")
    } else if key.split('/').any(str::is_empty) {
        Some("has an empty segment (`//` or a trailing `/`)")
    } else if key.contains('\0') {
        Some("contains a NUL byte")
    } else if key == contract::META_DIR || key.starts_with(&format!("{}/", contract::META_DIR)) {
        Some("is inside batchfan's own `_batchfan/` folder")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(WorkerError::Config(format!(
            "output key `{key}` {reason}: it would not stay inside the output location; rename the input or choose another key"
        ))),
        None => Ok(()),
    }
}
