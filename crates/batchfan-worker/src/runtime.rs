//! The loop hidden behind `run`: config, chunk, handler, commit.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use batchfan::Client;
use batchfan::contract::{self, Header, Item, MARKER_VERSION, Marker};
use batchfan::layout;
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
}

impl Chunk {
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
    /// changed since, reading fails with [`batchfan::Error::InputChanged`] naming the key.
    pub async fn open(&self, item: &Item) -> Result<ItemReader, WorkerError> {
        Ok(ItemReader::open(&self.input, item, self.read).await?)
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
///
/// Logs go through `tracing`: unless the program installed a subscriber, one line per event on
/// stderr, JSON with `BATCHFAN_LOG_FORMAT=json`, filtered by `RUST_LOG` (default `info`). Events
/// of the handler, `tracing::info!` and the like, carry the chunk's run id, index and attempt.
pub async fn run<H: Handler>(handler: H) -> ExitCode {
    log::init();
    let span = tracing::info_span!("chunk", run_id = Empty, chunk = Empty, attempt = Empty);
    let result = async {
        let config = Config::from_env()?;
        run_with(config, &Client::from_env().await, handler).await
    }
    .instrument(span.clone())
    .await;
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
/// its output exactly once.
pub async fn run_with<H: Handler>(config: Config, client: &Client, handler: H) -> Result<Outcome, WorkerError> {
    let manifest = ManifestReader::open(client, &config.manifest).await.map_err(config_error)?;
    let header = Arc::new(manifest.header().clone());
    // Through a view (several arrays, redrives) the child index maps to the run's chunk index.
    let index = manifest.chunk_index(config.index).map_err(config_error)?;
    let items: Arc<[Item]> = manifest.chunk(config.index).await.map_err(config_error)?.into();
    // Fills the fields of the span `run` opened (a no-op under a caller's own span).
    let span = Span::current();
    span.record("run_id", header.run_id.as_str()).record("chunk", index).record("attempt", config.attempt);
    let output_store = client.store(&header.output_location()?)?;
    let marker_key = contract::marker_key(&header.run_id, index);
    if let Some(marker) = read_marker(output_store.as_ref(), &marker_key).await? {
        tracing::info!("chunk already committed by an earlier attempt; nothing to do");
        return Ok(Outcome::AlreadyCommitted(marker));
    }
    let input = client.store(&header.input_location()?)?;
    let spool_name = format!("batchfan-{}-{index:05}-{}.spool", header.run_id, std::process::id());
    let output = Output::create(&config.spool_dir, &spool_name)?;
    // Local files read fastest as one stream (measured: parallel parts cost 8% more wall time).
    let read = if input.parallel_reads() { config.read } else { ReadOptions { concurrency: 1, ..config.read } };
    let chunk = Chunk {
        index,
        attempt: config.attempt,
        items: items.clone(),
        header: header.clone(),
        input,
        read,
        output: output.clone(),
    };
    tracing::info!(items = items.len(), "chunk started");
    let result = call_handler(&handler, chunk).await;
    let committed = match result {
        Ok(()) => commit(&config, index, &header, output_store.as_ref(), &output, &marker_key).await,
        Err(e) => Err(e),
    };
    output.remove();
    let marker = committed?;
    tracing::info!(output = %marker.output_key, bytes_out = marker.bytes_out, "chunk committed");
    Ok(Outcome::Committed(marker))
}

/// A manifest that cannot be read is the child's configuration problem, unless it is transient.
fn config_error(e: batchfan::Error) -> WorkerError {
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

/// Runs the handler in its own task, so a panic becomes a failure, and stops it on SIGTERM.
async fn call_handler<H: Handler>(handler: &H, chunk: Chunk) -> Result<(), WorkerError> {
    let mut task = tokio::spawn(handler.call(chunk).instrument(Span::current()));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| WorkerError::Config(format!("cannot install the SIGTERM handler: {e}")))?;
    tokio::select! {
        joined = &mut task => match joined {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(WorkerError::Handler(e)),
            Err(e) if e.is_panic() => Err(WorkerError::Panic(panic_message(e.into_panic()))),
            Err(e) => Err(WorkerError::Panic(e.to_string())),
        },
        _ = sigterm.recv() => {
            task.abort();
            Err(WorkerError::Terminated)
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string())
}

/// Output first (one atomic write), then the marker: a crash between the two re-runs the chunk,
/// which rewrites the same deterministic key, so nothing is duplicated.
async fn commit(
    config: &Config,
    index: u64,
    header: &Header,
    store: &dyn Store,
    output: &Output,
    marker_key: &str,
) -> Result<Marker, WorkerError> {
    let (spool, bytes_out) = output.finish()?;
    let output_key = contract::part_key(index);
    store.put_file(&output_key, &spool).await?;
    let marker = Marker {
        batchfan_marker: MARKER_VERSION,
        run_id: header.run_id.clone(),
        index,
        attempt: config.attempt,
        job_id: config.job_id.clone(),
        items: header.chunk_items(index as usize),
        bytes_in: header.chunk_bytes(index as usize),
        output_key,
        bytes_out,
        committed_unix_ms: layout::now_ms(),
    };
    let body = serde_json::to_vec_pretty(&marker).map_err(|e| WorkerError::Config(e.to_string()))?;
    store.put(marker_key, Bytes::from(body)).await?;
    Ok(marker)
}
