//! Watching a queue run: chunks committed (from the completion markers, listed in one pass), the
//! queue's visible, in-flight and delayed counts, and the chunks in the dead-letter queue; waiting
//! until every chunk is committed or dead-lettered; sending dead-lettered chunks again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry};
use serde::Serialize;

use super::record::{QueueRedrive, QueueRunRecord};
use super::{QueueCounts, call, describe_queue, queue_counts, send_chunks};
use crate::client::Client;
use crate::contract::ChunkMessage;
use crate::error::{Error, Result};
use crate::layout;

/// The message attribute a worker sets on a message it moves to the dead-letter queue itself
/// (a body that is not a chunk, an input changed since planning): why.
pub const ERROR_ATTRIBUTE: &str = "batchfan_error";
/// The message attribute a worker sets beside [`ERROR_ATTRIBUTE`]: the receives the message had
/// in the work queue (the moved message starts counting again in the dead-letter queue).
pub const ATTEMPTS_ATTRIBUTE: &str = "batchfan_attempts";
/// Most dead-letter messages one scan looks at.
const SCAN_LIMIT: usize = 10_000;

/// A chunk in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The chunk.
    pub chunk: u64,
    /// Receives before it was dead-lettered (SQS's count; the DLQ scan adds one).
    pub receive_count: u32,
    /// Why: the worker's reason when it moved the message itself, else the redrive policy's.
    pub reason: String,
}

/// A queue run's state.
#[derive(Debug, Clone, Serialize)]
pub struct QueueRunStatus {
    /// The run id.
    pub run_id: String,
    /// Chunks in the plan.
    pub chunk_count: u64,
    /// Chunks committed (their completion marker exists).
    pub committed: u64,
    /// Chunks in the dead-letter queue and not committed, by chunk.
    pub dead_lettered: Vec<DeadLetter>,
    /// Chunks neither committed nor dead-lettered: queued or being worked on.
    pub pending: u64,
    /// The work queue's counts (all runs on it).
    pub queue: QueueCounts,
    /// The dead-letter queue's counts (all runs on it), if there is one.
    pub dead_letter_queue: Option<QueueCounts>,
    /// True when every chunk is committed or dead-lettered.
    pub complete: bool,
}

pub use crate::status::committed_chunks;

/// A message held invisible by a dead-letter scan.
struct Held {
    chunk: Option<u64>,
    receipt: String,
    receive_count: u32,
    reason: Option<String>,
}

/// Receives every message of the dead-letter queue (up to [`SCAN_LIMIT`]), holding each one
/// invisible for `hold` seconds so none is seen twice; the caller releases or deletes them.
async fn scan(client: &Client, dlq: &str, run_id: &str, hold: i32) -> Result<Vec<Held>> {
    let mut held = Vec::new();
    while held.len() < SCAN_LIMIT {
        let out = call(client, "ReceiveMessage", dlq, |sqs| {
            sqs.receive_message()
                .queue_url(dlq)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .visibility_timeout(hold)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names(ERROR_ATTRIBUTE)
                .message_attribute_names(ATTEMPTS_ATTRIBUTE)
                .send()
        })
        .await?;
        if out.messages().is_empty() {
            break;
        }
        for m in out.messages() {
            let chunk = ChunkMessage::parse(m.body().unwrap_or_default()).ok().filter(|c| c.run_id == run_id);
            // Moved by a worker: its receives in the work queue. Moved by the redrive policy: its
            // receive count, less this scan's own receive.
            let attempts = m
                .message_attributes()
                .and_then(|a| a.get(ATTEMPTS_ATTRIBUTE))
                .and_then(|v| v.string_value())
                .and_then(|v| v.parse::<u32>().ok());
            let receive_count = attempts.unwrap_or_else(|| {
                m.attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(0)
                    .saturating_sub(1)
            });
            let reason = m
                .message_attributes()
                .and_then(|a| a.get(ERROR_ATTRIBUTE))
                .and_then(|v| v.string_value())
                .map(str::to_string);
            held.push(Held {
                chunk: chunk.map(|c| c.chunk),
                receipt: m.receipt_handle().unwrap_or_default().to_string(),
                receive_count,
                reason,
            });
        }
    }
    Ok(held)
}

/// Makes held messages visible again at once.
async fn release(client: &Client, queue: &str, receipts: &[&str]) -> Result<()> {
    for (batch, receipts) in receipts.chunks(10).enumerate() {
        let entries = receipts
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(format!("r{batch}-{i}"))
                    .receipt_handle(*r)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        call(client, "ChangeMessageVisibilityBatch", queue, |sqs| {
            sqs.change_message_visibility_batch().queue_url(queue).set_entries(Some(entries)).send()
        })
        .await?;
    }
    Ok(())
}

async fn delete(client: &Client, queue: &str, receipts: &[&str]) -> Result<()> {
    for (batch, receipts) in receipts.chunks(10).enumerate() {
        let entries = receipts
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder().id(format!("d{batch}-{i}")).receipt_handle(*r).build().ok()
            })
            .collect::<Vec<_>>();
        call(client, "DeleteMessageBatch", queue, |sqs| {
            sqs.delete_message_batch().queue_url(queue).set_entries(Some(entries)).send()
        })
        .await?;
    }
    Ok(())
}

fn dead_letters_of(held: &[Held], committed: &BTreeSet<u64>, max_receive_count: Option<u32>) -> Vec<DeadLetter> {
    let mut by_chunk: BTreeMap<u64, DeadLetter> = BTreeMap::new();
    for h in held {
        let Some(chunk) = h.chunk.filter(|c| !committed.contains(c)) else { continue };
        let reason = h.reason.clone().unwrap_or_else(|| match max_receive_count {
            Some(n) => format!("failed {n} receives (the queue's maxReceiveCount); see the workers' logs"),
            None => "moved to the dead-letter queue".into(),
        });
        by_chunk.entry(chunk).or_insert(DeadLetter { chunk, receive_count: h.receive_count, reason });
    }
    by_chunk.into_values().collect()
}

/// The run's chunks in its dead-letter queue (not committed), by chunk. Messages are released
/// again at once.
pub async fn dead_letters(client: &Client, record: &QueueRunRecord) -> Result<Vec<DeadLetter>> {
    let Some(dlq) = &record.dead_letter_queue_url else { return Ok(Vec::new()) };
    let held = scan(client, dlq, &record.run_id, 30).await?;
    let receipts: Vec<&str> = held.iter().map(|h| h.receipt.as_str()).collect();
    release(client, dlq, &receipts).await?;
    let committed = committed_chunks(client, &record.run_id, &record.output).await?;
    let max = describe_queue(client, &record.queue_url).await?.dead_letter_queue.map(|d| d.max_receive_count);
    Ok(dead_letters_of(&held, &committed, max))
}

/// The run's state: committed chunks, queue counts, dead-lettered chunks. The dead-letter queue
/// is scanned only when SQS counts messages in it.
pub async fn queue_run_status(client: &Client, record: &QueueRunRecord) -> Result<QueueRunStatus> {
    let committed = committed_chunks(client, &record.run_id, &record.output).await?;
    let queue = queue_counts(client, &record.queue_url).await?;
    let (dead_letter_queue, dead_lettered) = match &record.dead_letter_queue_url {
        Some(dlq) => {
            let counts = queue_counts(client, dlq).await?;
            let dead = if counts.total() > 0 { dead_letters(client, record).await? } else { Vec::new() };
            (Some(counts), dead)
        }
        None => (None, Vec::new()),
    };
    let committed_count = committed.len() as u64;
    let done = committed_count + dead_lettered.len() as u64;
    Ok(QueueRunStatus {
        run_id: record.run_id.clone(),
        chunk_count: record.chunk_count,
        committed: committed_count,
        pending: record.chunk_count.saturating_sub(done),
        dead_lettered,
        queue,
        dead_letter_queue,
        complete: done >= record.chunk_count,
    })
}

/// Polls [`queue_run_status`] every `interval` until every chunk is committed or dead-lettered.
pub async fn wait_queue_run(
    client: &Client,
    record: &QueueRunRecord,
    interval: Duration,
    on_poll: &(dyn Fn(&QueueRunStatus) + Send + Sync),
) -> Result<QueueRunStatus> {
    loop {
        let status = queue_run_status(client, record).await?;
        on_poll(&status);
        if status.complete {
            return Ok(status);
        }
        tokio::time::sleep(interval).await;
    }
}

/// Sends the run's dead-lettered chunks to the work queue again and deletes them from the
/// dead-letter queue (with `dry_run`, only says which). Returns the chunks.
pub async fn redrive_queue_run(client: &Client, record: &mut QueueRunRecord, dry_run: bool) -> Result<Vec<u64>> {
    let Some(dlq) = record.dead_letter_queue_url.clone() else {
        return Err(Error::option(
            "RUN",
            &record.run_id,
            "its queue had no dead-letter queue (redrive policy) when the run was enqueued: nothing to redrive",
        ));
    };
    // Held long enough to send the chunks again before anyone else sees them.
    let held = scan(client, &dlq, &record.run_id, 120).await?;
    let committed = committed_chunks(client, &record.run_id, &record.output).await?;
    let chunks: Vec<u64> = dead_letters_of(&held, &committed, None).iter().map(|d| d.chunk).collect();
    let (ours, others): (Vec<&Held>, Vec<&Held>) = held.iter().partition(|h| h.chunk.is_some());
    let others: Vec<&str> = others.iter().map(|h| h.receipt.as_str()).collect();
    release(client, &dlq, &others).await?;
    let ours: Vec<&str> = ours.iter().map(|h| h.receipt.as_str()).collect();
    if dry_run || chunks.is_empty() {
        release(client, &dlq, &ours).await?;
        return Ok(chunks);
    }
    let queue = describe_queue(client, &record.queue_url).await?;
    let generation = record.redrives.len() as u32 + 1;
    // The chunks sent again commit only while the run holds its output again.
    if let Err(e) = crate::claim::retake(client, &record.output, &record.run_id).await {
        release(client, &dlq, &ours).await?;
        return Err(e);
    }
    if let Err(e) = send_chunks(client, &queue, &record.run_id, &record.manifest, &chunks, generation).await {
        release(client, &dlq, &ours).await?;
        // Some may have gone out: the run keeps its output until it is seen complete.
        crate::claim::hand_over(client, &record.output, &record.run_id, true).await?;
        return Err(e);
    }
    crate::claim::hand_over(client, &record.output, &record.run_id, true).await?;
    // Sent again: the dead letters (committed duplicates too) are done with.
    delete(client, &dlq, &ours).await?;
    record.redrives.push(QueueRedrive { unix_ms: layout::now_ms(), chunks: chunks.clone() });
    record.save(client).await?;
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_are_per_chunk_and_skip_committed_and_foreign_messages() {
        let held = |chunk: Option<u64>, count: u32, reason: Option<&str>| Held {
            chunk,
            receipt: String::new(),
            receive_count: count,
            reason: reason.map(str::to_string),
        };
        let all = [
            held(Some(3), 4, None),
            held(Some(3), 5, None),
            held(Some(1), 2, Some("input changed")),
            held(Some(7), 4, None),
            held(None, 1, None),
        ];
        let committed = BTreeSet::from([7]);
        let dead = dead_letters_of(&all, &committed, Some(3));
        assert_eq!(dead.iter().map(|d| d.chunk).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(dead[0].reason, "input changed");
        assert!(dead[1].reason.contains("maxReceiveCount"), "{}", dead[1].reason);
        assert_eq!(dead[1].receive_count, 4, "the first message of a chunk, with its count as the scan took it");
    }
}
