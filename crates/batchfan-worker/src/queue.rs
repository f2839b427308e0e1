//! Queue mode: a long-running worker that serves an SQS queue.
//!
//! With `BATCHFAN_QUEUE_URL` set, [`crate::run`] serves the queue instead of one array index:
//! each message names a chunk of a manifest, processed by the same handler with the same
//! exactly-once commit. [`run`] here serves messages that are not batchfan chunks.
//!
//! For every message:
//! - long polling (20 s), `BATCHFAN_QUEUE_CONCURRENCY` messages at a time (default 1);
//! - a visibility heartbeat: ChangeMessageVisibility every third of the queue's visibility
//!   timeout for as long as the work runs, so a long message is never handed to a second worker;
//! - success: the message is deleted (after the commit, for chunks);
//! - failure: the message is left to come back after its visibility timeout (its attempt is
//!   SQS's `ApproximateReceiveCount`), and the queue's redrive policy moves it to the
//!   dead-letter queue after `maxReceiveCount` receives;
//! - a message that cannot succeed however often it is retried (a body that is not a chunk, an
//!   input changed since planning, a manifest that is gone: the handler returns [`DeadLetter`])
//!   goes to the dead-letter queue at once, with the reason in its `batchfan_error` attribute,
//!   because each retry would cost a receive (and, for chunks, a full read) and end the same way.
//!   A queue without a dead-letter queue keeps such a message: it is logged and left to its
//!   visibility timeout, and comes back.
//! - SIGTERM (scale-in, Spot): stop receiving, let messages in flight finish until
//!   `BATCHFAN_STOP_TIMEOUT` (default 25 s), then release the rest with visibility 0 so another
//!   worker takes them at once; exit 143 if anything was released, 0 if all finished.
//! - `BATCHFAN_QUEUE_IDLE_EXIT=SECONDS`: exit 0 after that long with no message.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use batchfan::Client;
use batchfan::contract::ChunkMessage;
use batchfan::manifest::ManifestReader;
use batchfan::queue::{Queue, QueueInfo, Received};
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinSet;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::config::QueueConfig;
use crate::error::{BoxError, WorkerError, exit};
use crate::log;
use crate::runtime::{self, AbortOnDrop, Handler, Job, config_error, panic_message, run_chunk};
use crate::stop::{self, Phase, StopSignal};

/// A message handed to a [`MessageHandler`].
#[derive(Debug, Clone)]
pub struct Message {
    received: Received,
    stop: StopSignal,
}

impl Message {
    /// SQS's message id.
    pub fn id(&self) -> &str {
        &self.received.message_id
    }

    /// The body.
    pub fn body(&self) -> &str {
        &self.received.body
    }

    /// How many times SQS has handed this message out, this time included (the attempt).
    pub fn receive_count(&self) -> u32 {
        self.received.receive_count
    }

    /// A system attribute (`SentTimestamp`, `MessageGroupId`, ...).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.received.attributes.get(name).map(String::as_str)
    }

    /// A string message attribute the sender set.
    pub fn message_attribute(&self, name: &str) -> Option<&str> {
        self.received.message_attributes.get(name).map(String::as_str)
    }

    /// Resolves when the worker is asked to stop (SIGTERM); finishing before the drain
    /// deadline still deletes the message.
    pub async fn stopping(&self) {
        self.stop.reached(Phase::Draining).await;
    }
}

/// A handler of arbitrary queue messages. Implemented for closures by [`message_handler_fn`].
pub trait MessageHandler: Send + Sync + 'static {
    /// Processes one message: `Ok` deletes it; an error leaves it to come back after its
    /// visibility timeout, unless the error is a [`DeadLetter`].
    fn call(&self, message: Message) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
}

/// A [`MessageHandler`] made from an async function.
#[derive(Debug, Clone, Copy)]
pub struct MessageHandlerFn<F>(F);

/// Makes a message handler from an async function `Fn(Message) -> Result<(), E>`.
pub fn message_handler_fn<F, Fut, E>(f: F) -> MessageHandlerFn<F>
where
    F: Fn(Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<BoxError>,
{
    MessageHandlerFn(f)
}

impl<F, Fut, E> MessageHandler for MessageHandlerFn<F>
where
    F: Fn(Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn call(&self, message: Message) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> {
        let fut = (self.0)(message);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

/// Returned (boxed) by a handler for a message that must not be retried: it goes to the
/// dead-letter queue at once, with this reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeadLetter(pub String);

/// What a queue worker did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    /// Messages processed and deleted.
    pub succeeded: u64,
    /// Messages that failed and were left to come back.
    pub failed: u64,
    /// Messages moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// Messages released at the stop, unfinished (visibility 0).
    pub released: u64,
}

/// How one message ended.
enum Settled {
    Succeeded,
    Failed,
    DeadLettered,
    Released,
}

/// Serves the queue in `BATCHFAN_QUEUE_URL` with `handler` (see the module docs) and returns
/// the exit code: 0 when it stopped with nothing unfinished (idle exit, or a drain that let all
/// work finish), 143 when it released unfinished messages at a stop, 2 for bad configuration.
pub async fn run<H: MessageHandler>(handler: H) -> ExitCode {
    // The SIGTERM handler first: a SIGTERM before it would kill the worker with no log line.
    let stop = stop::on_sigterm(stop::timeout_from_env());
    log::init();
    serve_from_env(Arc::new(handler), stop).await
}

/// [`crate::run`] in queue mode: messages are chunks of manifests.
pub(crate) async fn serve_chunks<H: Handler>(handler: H, stop: std::io::Result<StopSignal>) -> ExitCode {
    // Every chunk this worker commits was logged to the same place: found once.
    let log = crate::task_log::discover().await;
    serve_from_env(Arc::new(Chunks { handler, manifests: Mutex::new(HashMap::new()), log }), stop).await
}

async fn serve_from_env<H: QueueHandler>(handler: Arc<H>, stop: std::io::Result<StopSignal>) -> ExitCode {
    let span = tracing::info_span!("worker", queue = Empty);
    let result = async {
        let config = QueueConfig::from_env()?;
        Span::current().record("queue", config.queue_url.as_str());
        let stop = stop.map_err(|e| WorkerError::Config(format!("cannot install the SIGTERM handler: {e}")))?;
        // Spool files of workers killed on this host (SIGKILL, OOM) are nobody's any more.
        let swept = crate::output::sweep_stale_spools(&config.spool_dir);
        if swept > 0 {
            tracing::info!(swept, spool_dir = %config.spool_dir.display(), "removed spool files of workers that are gone");
        }
        let client = Client::from_env().await;
        serve(&config, &client, handler, &stop).await
    }
    .instrument(span.clone())
    .await;
    match result {
        Ok(served) if served.released > 0 => ExitCode::from(exit::TERMINATED as u8),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => runtime::exit_code(&span, Err::<(), _>(e)),
    }
}

/// What the serve loop needs of a handler: chunk mode and arbitrary messages share the loop.
pub(crate) trait QueueHandler: Send + Sync + 'static {
    /// Processes one message; `Err(DeadLetter)` (boxed) asks for the dead-letter queue.
    fn handle(
        self: Arc<Self>,
        client: Client,
        config: Arc<QueueConfig>,
        message: Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
}

impl<H: MessageHandler> QueueHandler for H {
    fn handle(
        self: Arc<Self>,
        _client: Client,
        _config: Arc<QueueConfig>,
        message: Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> {
        // In a task of its own, so a panic is a failure, not the end of the worker.
        let task = tokio::spawn(self.call(message).instrument(Span::current()));
        Box::pin(async move {
            let _abort = AbortOnDrop(task.abort_handle());
            match task.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => Err(format!("handler panicked: {}", panic_message(e.into_panic())).into()),
                Err(e) => Err(e.to_string().into()),
            }
        })
    }
}

/// Chunk messages: the manifest (cached per URI, as many messages share one), the chunk, the
/// same exactly-once commit as array children.
struct Chunks<H> {
    handler: H,
    manifests: Mutex<HashMap<String, ManifestReader>>,
    /// Where this worker's log goes (named in its markers).
    log: Option<batchfan::contract::LogLocation>,
}

impl<H: Handler> Chunks<H> {
    async fn process(&self, client: &Client, config: &QueueConfig, message: &Message) -> Result<(), BoxError> {
        let chunk = ChunkMessage::parse(message.body()).map_err(DeadLetter)?;
        let manifest = {
            let mut cache = self.manifests.lock().await;
            match cache.get(&chunk.manifest) {
                Some(m) => m.clone(),
                None => {
                    let opened = client.open_manifest(&chunk.manifest).await.map_err(dead_unless_transient)?;
                    cache.insert(chunk.manifest.clone(), opened.clone());
                    opened
                }
            }
        };
        if manifest.header().run_id != chunk.run_id {
            return Err(DeadLetter(format!(
                "the message names run {} but manifest {} is run {}",
                chunk.run_id,
                chunk.manifest,
                manifest.header().run_id
            ))
            .into());
        }
        let job = Job {
            child: chunk.chunk,
            attempt: message.receive_count(),
            job_id: message.id().to_string(),
            spool_dir: config.spool_dir.clone(),
            read: config.read,
            compression: config.output_compression,
            prefetch: config.prefetch,
            message_id: Some(message.id().to_string()),
            started_unix_ms: batchfan::contract::now_ms(),
            usage_base: Some(crate::usage::now()),
            log: self.log.clone(),
        };
        match run_chunk(client, &manifest, &job, &self.handler, &message.stop).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.exit_code();
                // Retrying cannot help an input changed since planning, a bad chunk index, or a
                // run that no longer holds its output.
                if code == exit::INPUT_CHANGED || code == exit::CONFIG || code == exit::FENCED {
                    Err(DeadLetter(e.to_string()).into())
                } else {
                    Err(Box::new(e))
                }
            }
        }
    }
}

fn dead_unless_transient(e: batchfan::Error) -> BoxError {
    if e.is_transient() {
        Box::new(WorkerError::Batchfan(e))
    } else {
        Box::new(DeadLetter(config_error(e).to_string()))
    }
}

impl<H: Handler> QueueHandler for Chunks<H> {
    fn handle(
        self: Arc<Self>,
        client: Client,
        config: Arc<QueueConfig>,
        message: Message,
    ) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>> {
        // The attempt is the message span's (its receive count): named once per line.
        let span = tracing::info_span!("chunk", run_id = Empty, chunk = Empty);
        Box::pin(async move { self.process(&client, &config, &message).await }.instrument(span))
    }
}

/// Serves the queue until an idle exit or a stop (see the module docs).
pub(crate) async fn serve<H: QueueHandler>(
    config: &QueueConfig,
    client: &Client,
    handler: Arc<H>,
    stop: &StopSignal,
) -> Result<Served, WorkerError> {
    let sqs = client.queue(&config.queue_url);
    let queue =
        Arc::new(sqs.describe().await.map_err(|e| {
            if e.is_transient() { WorkerError::Batchfan(e) } else { WorkerError::Config(e.to_string()) }
        })?);
    if queue.dead_letter_queue.is_none() {
        tracing::warn!(
            "the queue has no dead-letter queue (redrive policy): a message that always fails comes back forever"
        );
    }
    let config = Arc::new(config.clone());
    tracing::info!(
        concurrency = config.concurrency,
        visibility_timeout_s = queue.visibility_timeout,
        "serving the queue"
    );
    let mut tasks: JoinSet<Settled> = JoinSet::new();
    let mut waiting: Option<oneshot::Receiver<batchfan::Result<Vec<Received>>>> = None;
    let mut last_activity = Instant::now();
    let mut served = Served::default();
    let mut receive_errors = 0u32;
    loop {
        let running = stop.phase() == Phase::Running;
        if !running && tasks.is_empty() {
            break;
        }
        if running && waiting.is_none() && tasks.len() < config.concurrency {
            // The receive runs as a task of its own: a long poll is never dropped midway, so no
            // message is taken from SQS and then lost until its visibility timeout.
            let (tx, rx) = oneshot::channel();
            let (sqs, max, wait) = (sqs.clone(), (config.concurrency - tasks.len()).min(10), config.wait);
            tokio::spawn(async move {
                let _ = tx.send(sqs.receive(max as i32, wait).await);
            });
            waiting = Some(rx);
        }
        tokio::select! {
            reply = async { waiting.as_mut().expect("guarded").await }, if waiting.is_some() => {
                waiting = None;
                let messages = match reply {
                    Ok(Ok(messages)) => {
                        receive_errors = 0;
                        messages
                    }
                    Ok(Err(e)) if e.is_transient() && receive_errors < 10 => {
                        receive_errors += 1;
                        tracing::warn!(error = %e, "ReceiveMessage failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200 << receive_errors.min(5))).await;
                        continue;
                    }
                    Ok(Err(e)) => return Err(WorkerError::Batchfan(e)),
                    Err(_) => continue,
                };
                if messages.is_empty() {
                    if tasks.is_empty() && config.idle_exit.is_some_and(|idle| last_activity.elapsed() >= idle) {
                        tracing::info!("no message for the idle time: exiting");
                        break;
                    }
                    continue;
                }
                last_activity = Instant::now();
                for received in messages {
                    if stop.phase() != Phase::Running {
                        // Received after the stop began: another worker takes it at once.
                        release(&sqs, &received).await;
                        served.released += 1;
                        continue;
                    }
                    let message = Message { received, stop: stop.clone() };
                    tasks.spawn(settle(client.clone(), sqs.clone(), queue.clone(), config.clone(), handler.clone(), message));
                }
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                last_activity = Instant::now();
                match done {
                    Ok(Settled::Succeeded) => served.succeeded += 1,
                    Ok(Settled::Failed) => served.failed += 1,
                    Ok(Settled::DeadLettered) => served.dead_lettered += 1,
                    Ok(Settled::Released) => served.released += 1,
                    Err(e) => {
                        tracing::error!(error = %e, "a message task ended abnormally");
                        served.failed += 1;
                    }
                }
            }
            () = stop.reached(Phase::Draining), if running => {
                tracing::info!(in_flight = tasks.len(), "stopping: no more receives; letting work in flight finish");
            }
        }
    }
    tracing::info!(
        succeeded = served.succeeded,
        failed = served.failed,
        dead_lettered = served.dead_lettered,
        released = served.released,
        sqs_requests = client.sqs_request_count(),
        "worker stopped"
    );
    Ok(served)
}

/// Makes a message visible again at once (best effort: otherwise it comes back after its
/// visibility timeout).
async fn release(sqs: &Queue, received: &Received) {
    if let Err(e) = sqs.set_visibility(&received.receipt, 0).await {
        tracing::warn!(error = %e, message_id = %received.message_id, "could not release the message; it comes back after its visibility timeout");
    }
}

/// Processes one message with a heartbeat, then settles it.
async fn settle<H: QueueHandler>(
    client: Client,
    sqs: Queue,
    queue: Arc<QueueInfo>,
    config: Arc<QueueConfig>,
    handler: Arc<H>,
    message: Message,
) -> Settled {
    let received = message.received.clone();
    let stop = message.stop.clone();
    let span = tracing::info_span!("message", message_id = %received.message_id, attempt = received.receive_count);
    async move {
        let heartbeat = tokio::spawn(heartbeat(sqs.clone(), queue.visibility_timeout, received.receipt.clone()));
        let _heartbeat = AbortOnDrop(heartbeat.abort_handle());
        let work = handler.handle(client.clone(), config, message);
        let result = tokio::select! {
            result = work => Some(result),
            () = stop.reached(Phase::Abort) => None,
        };
        drop(_heartbeat);
        match result {
            Some(Ok(())) => match sqs.delete(&received.receipt).await {
                Ok(()) => Settled::Succeeded,
                Err(e) => {
                    // The work is committed; the message comes back and is acknowledged as
                    // already committed.
                    tracing::warn!(error = %e, "could not delete the message after its work succeeded");
                    Settled::Succeeded
                }
            },
            Some(Err(e)) if e.downcast_ref::<DeadLetter>().is_some() => {
                let reason = e.to_string();
                match sqs.dead_letter(&queue, &received, &reason).await {
                    Ok(true) => {
                        tracing::error!(reason = %reason, "moved to the dead-letter queue: retrying cannot help");
                        Settled::DeadLettered
                    }
                    Ok(false) => {
                        tracing::error!(reason = %reason, "retrying cannot help, but the queue has no dead-letter queue: left to come back");
                        Settled::Failed
                    }
                    Err(move_error) => {
                        tracing::error!(reason = %reason, error = %move_error, "could not move the message to the dead-letter queue");
                        Settled::Failed
                    }
                }
            }
            Some(Err(e)) if e.downcast_ref::<WorkerError>().is_some_and(|w| matches!(w, WorkerError::Terminated)) => {
                tracing::warn!("stopped before the commit: releasing the unfinished message");
                release(&sqs, &received).await;
                Settled::Released
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, visibility_timeout_s = queue.visibility_timeout, "failed; the message comes back after its visibility timeout");
                Settled::Failed
            }
            None => {
                tracing::warn!("drain deadline: releasing the unfinished message");
                release(&sqs, &received).await;
                Settled::Released
            }
        }
    }
    .instrument(span)
    .await
}

/// Extends the message's visibility every third of the visibility timeout, so it never
/// expires while the work runs.
async fn heartbeat(sqs: Queue, visibility_timeout: u32, receipt: String) {
    let timeout = visibility_timeout.max(1);
    let every = Duration::from_secs_f64((f64::from(timeout) / 3.0).max(0.5));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = sqs.set_visibility(&receipt, timeout).await {
            tracing::warn!(error = %e, "visibility heartbeat failed");
        }
    }
}
