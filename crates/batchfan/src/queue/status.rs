//! Watching a queue run: the queue's visible, in-flight and delayed counts and the chunks in the
//! dead-letter queue; a run is complete when every chunk is committed (the markers, counted by
//! the caller) or dead-lettered. Sending dead-lettered chunks again.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_sqs::types::MessageSystemAttributeName;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry};

use super::record::{QueueRecord, QueueRedrive};
use super::{call, describe_queue, queue_counts, send_chunks};
use crate::context::Context;
use crate::contract::ChunkMessage;
use crate::error::{Error, Result};
use crate::layout;
use crate::status::{ChunkFailure, DeadLetter, Observed, StatusCounts, StatusDetail};

/// The message attribute a worker sets on a message it moves to the dead-letter queue itself
/// (a body that is not a chunk, an input changed since planning): why.
pub const ERROR_ATTRIBUTE: &str = "batchfan_error";
/// The message attribute a worker sets beside [`ERROR_ATTRIBUTE`]: the receives the message had
/// in the work queue (the moved message starts counting again in the dead-letter queue).
pub const ATTEMPTS_ATTRIBUTE: &str = "batchfan_attempts";
/// Most dead-letter messages one scan looks at.
const SCAN_LIMIT: usize = 10_000;

/// A message held invisible by a dead-letter scan.
struct Held {
    chunk: Option<u64>,
    receipt: String,
    receive_count: u32,
    reason: Option<String>,
}

/// Receives every message of the dead-letter queue (up to [`SCAN_LIMIT`]), holding each one
/// invisible for `hold` seconds so none is seen twice; the caller releases or deletes them.
async fn scan(ctx: &Context, dlq: &str, run_id: &str, hold: i32) -> Result<Vec<Held>> {
    let mut held = Vec::new();
    while held.len() < SCAN_LIMIT {
        let out = call(ctx, "ReceiveMessage", dlq, |sqs| {
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
async fn release(ctx: &Context, queue: &str, receipts: &[&str]) -> Result<()> {
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
        call(ctx, "ChangeMessageVisibilityBatch", queue, |sqs| {
            sqs.change_message_visibility_batch().queue_url(queue).set_entries(Some(entries)).send()
        })
        .await?;
    }
    Ok(())
}

async fn delete(ctx: &Context, queue: &str, receipts: &[&str]) -> Result<()> {
    for (batch, receipts) in receipts.chunks(10).enumerate() {
        let entries = receipts
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder().id(format!("d{batch}-{i}")).receipt_handle(*r).build().ok()
            })
            .collect::<Vec<_>>();
        call(ctx, "DeleteMessageBatch", queue, |sqs| {
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
async fn dead_letters(
    ctx: &Context,
    run_id: &str,
    record: &QueueRecord,
    dlq: &str,
    committed: &BTreeSet<u64>,
) -> Result<Vec<DeadLetter>> {
    let held = scan(ctx, dlq, run_id, 30).await?;
    let receipts: Vec<&str> = held.iter().map(|h| h.receipt.as_str()).collect();
    release(ctx, dlq, &receipts).await?;
    let max = describe_queue(ctx, &record.queue_url).await?.dead_letter_queue.map(|d| d.max_receive_count);
    Ok(dead_letters_of(&held, committed, max))
}

/// What the queues say of a run now: the work queue's counts, and its chunks in the dead-letter
/// queue (scanned only when SQS counts messages there). Complete when every chunk is committed
/// or dead-lettered.
pub(crate) async fn observe(
    ctx: &Context,
    run_id: &str,
    chunk_count: u64,
    record: &QueueRecord,
    committed: &BTreeSet<u64>,
) -> Result<Observed> {
    let queue = queue_counts(ctx, &record.queue_url).await?;
    let (dead_letter_queue, dead_lettered) = match &record.dead_letter_queue_url {
        Some(dlq) => {
            let counts = queue_counts(ctx, dlq).await?;
            let dead =
                if counts.total() > 0 { dead_letters(ctx, run_id, record, dlq, committed).await? } else { Vec::new() };
            (Some(counts), dead)
        }
        None => (None, Vec::new()),
    };
    let done = committed.len() as u64 + dead_lettered.len() as u64;
    let pending = chunk_count.saturating_sub(done);
    let counts = StatusCounts {
        submitted: pending,
        succeeded: committed.len() as u64,
        failed: dead_lettered.len() as u64,
        ..StatusCounts::default()
    };
    let failed = dead_lettered
        .iter()
        .map(|d| ChunkFailure {
            index: d.chunk,
            attempts: d.receive_count,
            exit_code: None,
            reason: d.reason.clone(),
            log: String::new(),
            history: Vec::new(),
        })
        .collect();
    Ok(Observed {
        counts,
        complete: done >= chunk_count,
        failed,
        detail: StatusDetail::Queue { queue, dead_letter_queue, dead_lettered },
    })
}

/// Sends the run's dead-lettered chunks among `chunks` to the work queue again and deletes
/// them from the dead-letter queue (with `dry_run`, only says which). Returns the chunks sent.
pub(crate) async fn redrive(
    ctx: &Context,
    run_id: &str,
    manifest: &str,
    record: &mut QueueRecord,
    committed: &BTreeSet<u64>,
    dry_run: bool,
) -> Result<Vec<u64>> {
    let Some(dlq) = record.dead_letter_queue_url.clone() else {
        return Err(Error::option(
            "RUN",
            run_id,
            "its queue had no dead-letter queue (redrive policy) when the run was enqueued: nothing to redrive",
        ));
    };
    // Held long enough to send the chunks again before anyone else sees them.
    let held = scan(ctx, &dlq, run_id, 120).await?;
    let chunks: Vec<u64> = dead_letters_of(&held, committed, None).iter().map(|d| d.chunk).collect();
    let (ours, others): (Vec<&Held>, Vec<&Held>) = held.iter().partition(|h| h.chunk.is_some());
    let others: Vec<&str> = others.iter().map(|h| h.receipt.as_str()).collect();
    release(ctx, &dlq, &others).await?;
    let ours: Vec<&str> = ours.iter().map(|h| h.receipt.as_str()).collect();
    if dry_run || chunks.is_empty() {
        release(ctx, &dlq, &ours).await?;
        return Ok(chunks);
    }
    let queue = describe_queue(ctx, &record.queue_url).await?;
    let generation = record.redrives.len() as u32 + 1;
    if let Err(e) = send_chunks(ctx, &queue, run_id, manifest, &chunks, generation).await {
        release(ctx, &dlq, &ours).await?;
        return Err(e);
    }
    // Sent again: the dead letters (committed duplicates too) are done with.
    delete(ctx, &dlq, &ours).await?;
    record.redrives.push(QueueRedrive { unix_ms: layout::now_ms(), chunks: chunks.clone() });
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
