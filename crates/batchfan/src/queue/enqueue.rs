//! `batchfan enqueue`: plan exactly as a submit does, write the manifest and the run record,
//! and send one message per chunk.

use std::time::Instant;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::record::QueueRunRecord;
use super::{QueueInfo, call, describe_queue};
use crate::client::Client;
use crate::contract::{ChunkMessage, RUN_RECORD_NAME, RUN_RECORD_VERSION};
use crate::error::{Error, Result};
use crate::layout;
use crate::run::{PlannedRun, RunSpec, plan_run, write_run};
use crate::runs::RunKind;
use crate::uri::Location;

/// Most chunks one queue run may have (no array limit applies; the manifest header grows
/// 22 bytes a chunk).
pub const MAX_QUEUE_CHUNKS: usize = 1_000_000;
/// Messages one SendMessageBatch carries (SQS's limit).
const BATCH: usize = 10;
/// SendMessageBatch requests in flight at once (each waits for the client's SQS limiter).
const IN_FLIGHT: usize = 4;
/// Rounds of resending the entries a response lists as failed.
const ROUNDS: u32 = 5;

/// Options of `batchfan enqueue`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnqueueOptions {
    /// The work queue's URL.
    pub queue_url: String,
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

/// What an enqueue did.
#[derive(Debug, Clone)]
pub struct Enqueued {
    /// The plan.
    pub plan: EnqueuePlan,
    /// The run record, as saved.
    pub record: QueueRunRecord,
    /// How the messages went out.
    pub stats: SendStats,
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

async fn check_and_plan(
    client: &Client,
    spec: &RunSpec,
    options: &EnqueueOptions,
) -> Result<(PlannedRun, EnqueuePlan)> {
    // The queue is checked before anything is listed or written.
    let queue = describe_queue(client, &options.queue_url).await?;
    let mut spec = spec.clone();
    spec.options.max_chunks = MAX_QUEUE_CHUNKS;
    let planned = plan_run(client, &spec).await?;
    let chunk_count = planned.plan.chunks.len() as u64;
    let (dir, _) = Location::parse_file(&planned.manifest_uri)?;
    let plan = EnqueuePlan {
        run_id: planned.run_id.clone(),
        manifest: planned.manifest_uri.clone(),
        record_uri: dir.join_display(RUN_RECORD_NAME),
        queue,
        chunk_count,
        item_count: planned.plan.items.len() as u64,
        requests: chunk_count.div_ceil(BATCH as u64),
        first_message: ChunkMessage::new(&planned.run_id, &planned.manifest_uri, 0),
    };
    Ok((planned, plan))
}

/// Plans `spec` and returns what an enqueue would send; writes and sends nothing.
pub async fn enqueue_dry_run(client: &Client, spec: &RunSpec, options: &EnqueueOptions) -> Result<EnqueuePlan> {
    Ok(check_and_plan(client, spec, options).await?.1)
}

/// Plans `spec`, writes the manifest and the run record, and sends one message per chunk.
pub async fn enqueue(client: &Client, spec: &RunSpec, options: &EnqueueOptions) -> Result<Enqueued> {
    let (planned, plan) = check_and_plan(client, spec, options).await?;
    let prepared = write_run(client, planned, spec.overwrite).await?;
    let mut record = QueueRunRecord {
        batchfan_run: RUN_RECORD_VERSION,
        kind: RunKind::Queue,
        run_id: plan.run_id.clone(),
        record_uri: plan.record_uri.clone(),
        manifest: prepared.manifest_uri.clone(),
        output: prepared.manifest.header().output.clone(),
        chunk_count: plan.chunk_count,
        created_unix_ms: layout::now_ms(),
        queue_url: plan.queue.url.clone(),
        fifo: plan.queue.fifo,
        dead_letter_queue_url: plan.queue.dead_letter_queue.as_ref().map(|d| d.url.clone()),
        sent: 0,
        redrives: Vec::new(),
    };
    // Saved first: a failure midway still leaves a run that `status` can show. Then what
    // earlier runs left goes, the last step before the first message.
    let started = match record.save(client).await {
        Ok(()) => crate::run::clear_earlier(client, &prepared).await,
        Err(e) => Err(e),
    };
    if let Err(e) = started {
        // Nothing was sent: the run never started.
        let _ = crate::run::abandon(client, &prepared, &[&record.record_uri]).await;
        return Err(e);
    }
    let chunks: Vec<u64> = (0..plan.chunk_count).collect();
    let sent = send_chunks(client, &plan.queue, &record.run_id, &record.manifest, &chunks, 0).await;
    // Messages are out (all, or some before a failure): the run holds its output until it is
    // seen complete.
    crate::claim::hand_over(client, &record.output, &record.run_id, true).await?;
    let stats = sent?;
    record.sent = stats.sent;
    record.save(client).await?;
    Ok(Enqueued { plan, record, stats })
}

/// Sends one message per chunk, 10 per SendMessageBatch with a few requests in flight, through
/// the client's SQS rate limiter. Entries a response lists as failed are sent again (only those,
/// never the whole batch); a failure that is the sender's fault is an error. On a FIFO queue each
/// chunk is its own message group (workers take chunks in parallel) and the deduplication id is
/// run, chunk and `generation` (0 for the enqueue, n for the n-th redrive), so a resend within
/// SQS's five-minute window is not delivered twice. On a standard queue a request whose response
/// was lost may deliver its messages twice; the completion markers make that harmless.
pub async fn send_chunks(
    client: &Client,
    queue: &QueueInfo,
    run_id: &str,
    manifest: &str,
    chunks: &[u64],
    generation: u32,
) -> Result<SendStats> {
    let started = Instant::now();
    let entries: Vec<(u64, String)> = chunks
        .iter()
        .map(|&chunk| {
            let body = serde_json::to_string(&ChunkMessage::new(run_id, manifest, chunk))
                .map_err(|e| Error::Manifest { uri: manifest.to_string(), reason: e.to_string() })?;
            Ok((chunk, body))
        })
        .collect::<Result<_>>()?;
    let batches: Vec<Vec<(u64, String)>> = entries.chunks(BATCH).map(<[_]>::to_vec).collect();
    let mut stats = futures_util::stream::iter(batches)
        .map(|batch| send_batch(client, queue, run_id, generation, batch))
        .buffer_unordered(IN_FLIGHT)
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
    client: &Client,
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
        let out = call(client, "SendMessageBatch", &queue.url, |sqs| {
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
