//! `batchfan enqueue`: plan exactly as a submit does, write the manifest and the run record,
//! and send one message per chunk.

use std::time::Instant;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::{QueueInfo, call, describe_queue};
use crate::context::Context;
use crate::contract::{ChunkMessage, META_DIR, RUN_RECORD_NAME};
use crate::error::{Error, Result};
use crate::prepare::{PlannedRun, RunSpec, plan_run};

/// Most chunks one queue run may have (no array limit applies; the manifest header grows
/// 22 bytes a chunk).
pub const MAX_QUEUE_CHUNKS: usize = 1_000_000;
/// Messages one SendMessageBatch carries (SQS's limit).
const BATCH: usize = 10;
/// SendMessageBatch requests in flight at once (each waits for the client's SQS limiter).
/// 3,000 messages a second at 30 ms a request needs 9; 32 keep the limiter (500 requests a
/// second by default) the bound up to 64 ms a request.
const IN_FLIGHT: usize = 32;
/// In flight on a FIFO queue, which takes 300 SendMessageBatch requests a second without
/// high-throughput mode: 4 keep under that from about 14 ms a request.
const FIFO_IN_FLIGHT: usize = 4;
/// Rounds of resending the entries a response lists as failed.
const ROUNDS: u32 = 5;

/// Options of `batchfan enqueue`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnqueueOptions {
    /// The work queue's URL.
    pub queue_url: String,
}

impl EnqueueOptions {
    /// Options sending to the queue at `queue_url`.
    pub fn new(queue_url: impl Into<String>) -> EnqueueOptions {
        EnqueueOptions { queue_url: queue_url.into() }
    }
}

/// What an enqueue sends (all of it, for `--dry-run`).
#[derive(Debug, Clone, Serialize)]
pub struct EnqueuePlan {
    /// The new run id.
    pub run_id: String,
    /// The manifest URI.
    pub manifest: String,
    /// The run record URI.
    pub record_uri: String,
    /// The queue.
    pub queue: QueueInfo,
    /// Chunks: one message each.
    pub chunk_count: u64,
    /// Items.
    pub item_count: u64,
    /// SendMessageBatch requests needed (10 messages each).
    pub requests: u64,
    /// The first message, as sent.
    pub first_message: ChunkMessage,
}

/// How messages were sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SendStats {
    /// Messages sent.
    pub sent: u64,
    /// SendMessageBatch requests made.
    pub requests: u64,
    /// Entries a response listed as failed and that were sent again.
    pub resent: u64,
    /// Seconds the sending took.
    pub seconds: f64,
}

/// Everything an enqueue checks before it writes or sends anything (the queue first), and the
/// plan.
pub(crate) async fn check_and_plan(
    ctx: &Context,
    spec: &RunSpec,
    options: &EnqueueOptions,
) -> Result<(PlannedRun, EnqueuePlan)> {
    // The queue is checked before anything is listed or written.
    let queue = describe_queue(ctx, &options.queue_url).await?;
    let mut spec = spec.clone();
    spec.options.max_chunks = MAX_QUEUE_CHUNKS;
    let planned = plan_run(&ctx.stores, &spec).await?;
    let chunk_count = planned.plan.chunks.len() as u64;
    let record_uri = planned.output.join_display(&format!("{META_DIR}/runs/{}/{RUN_RECORD_NAME}", planned.run_id));
    let plan = EnqueuePlan {
        run_id: planned.run_id.clone(),
        manifest: planned.manifest_uri.clone(),
        record_uri,
        queue,
        chunk_count,
        item_count: planned.plan.items.len() as u64,
        requests: chunk_count.div_ceil(BATCH as u64),
        first_message: ChunkMessage::new(&planned.run_id, &planned.manifest_uri, 0),
    };
    Ok((planned, plan))
}

/// Sends one message per chunk, 10 per SendMessageBatch with a few requests in flight, through
/// the client's SQS rate limiter. Entries a response lists as failed are sent again (only those,
/// never the whole batch); a failure that is the sender's fault is an error. On a FIFO queue each
/// chunk is its own message group (workers take chunks in parallel) and the deduplication id is
/// run, chunk and `generation` (0 for the enqueue, n for the n-th redrive), so a resend within
/// SQS's five-minute window is not delivered twice. On a standard queue a request whose response
/// was lost may deliver its messages twice; the completion markers make that harmless.
pub(crate) async fn send_chunks(
    ctx: &Context,
    queue: &QueueInfo,
    run_id: &str,
    manifest: &str,
    chunks: &[u64],
    generation: u32,
) -> Result<SendStats> {
    let started = Instant::now();
    // Bodies are made as batches go out: a million chunks are never a million strings at once.
    let body = |chunk: u64| {
        serde_json::to_string(&ChunkMessage::new(run_id, manifest, chunk))
            .map(|body| (chunk, body))
            .map_err(|e| Error::Manifest { uri: manifest.to_string(), reason: e.to_string() })
    };
    let mut stats = futures_util::stream::iter(chunks.chunks(BATCH))
        .map(|batch| async move {
            let batch = batch.iter().map(|&chunk| body(chunk)).collect::<Result<Vec<_>>>()?;
            send_batch(ctx, queue, run_id, generation, batch).await
        })
        .buffer_unordered(if queue.fifo { FIFO_IN_FLIGHT } else { IN_FLIGHT })
        .try_fold(SendStats::default(), |mut all, one| async move {
            all.sent += one.sent;
            all.requests += one.requests;
            all.resent += one.resent;
            Ok(all)
        })
        .await?;
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

async fn send_batch(
    ctx: &Context,
    queue: &QueueInfo,
    run_id: &str,
    generation: u32,
    mut pending: Vec<(u64, String)>,
) -> Result<SendStats> {
    let mut stats = SendStats::default();
    for round in 0..ROUNDS {
        let mut entries = Vec::with_capacity(pending.len());
        for (chunk, body) in &pending {
            let mut entry = SendMessageBatchRequestEntry::builder().id(format!("c{chunk}")).message_body(body);
            if queue.fifo {
                entry = entry
                    .message_group_id(format!("{run_id}-{chunk}"))
                    .message_deduplication_id(format!("{run_id}-{chunk}-{generation}"));
            }
            entries.push(entry.build().map_err(|e| Error::Queue {
                op: "SendMessageBatch",
                queue: queue.url.clone(),
                message: e.to_string(),
                transient: false,
                source: Some(Box::new(e)),
            })?);
        }
        let out = call(ctx, "SendMessageBatch", &queue.url, |sqs| {
            sqs.send_message_batch().queue_url(&queue.url).set_entries(Some(entries)).send()
        })
        .await?;
        stats.requests += 1;
        if let Some(refused) = out.failed().iter().find(|f| f.sender_fault()) {
            return Err(Error::QueueRejected {
                op: "SendMessageBatch",
                queue: queue.url.clone(),
                message: format!(
                    "{}: {} (entry {})",
                    refused.code(),
                    refused.message().unwrap_or("no message"),
                    refused.id()
                ),
                source: None,
            });
        }
        let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
        stats.sent += (pending.len() - failed.len()) as u64;
        if failed.is_empty() {
            return Ok(stats);
        }
        pending.retain(|(chunk, _)| failed.contains(&format!("c{chunk}").as_str()));
        stats.resent += pending.len() as u64;
        let cap = 100u64 << round.min(6);
        tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(0..=cap))).await;
    }
    Err(Error::Queue {
        op: "SendMessageBatch",
        queue: queue.url.clone(),
        message: format!("{} message(s) still failing after {ROUNDS} rounds", pending.len()),
        transient: true,
        source: None,
    })
}
