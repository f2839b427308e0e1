//! The worker's side of a queue: receiving messages and settling them (delete after success,
//! visibility changes for heartbeats and releases, moving a message to the dead-letter queue).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};

use super::status::{ATTEMPTS_ATTRIBUTE, ERROR_ATTRIBUTE};
use super::{QueueCounts, QueueInfo, call};
use crate::context::Context;
use crate::error::Result;

/// One SQS queue, through a client's SQS client and rate limiter
/// ([`crate::Client::queue`]): what a queue worker does with it.
#[derive(Clone)]
pub struct Queue {
    ctx: Arc<Context>,
    url: String,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Queue {
    pub(crate) fn new(ctx: Arc<Context>, url: &str) -> Queue {
        Queue { ctx, url: url.to_string() }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Looks the queue up: it must exist; its FIFO flag, visibility timeout and dead-letter queue.
    pub async fn describe(&self) -> Result<QueueInfo> {
        super::describe_queue(&self.ctx, &self.url).await
    }

    /// Its message counts (one GetQueueAttributes call).
    pub async fn counts(&self) -> Result<QueueCounts> {
        super::queue_counts(&self.ctx, &self.url).await
    }

    /// Receives up to `max` (1 to 10) messages, long-polling up to `wait`, each invisible to
    /// others for the queue's visibility timeout.
    pub async fn receive(&self, max: i32, wait: Duration) -> Result<Vec<Received>> {
        receive(&self.ctx, &self.url, max, wait).await
    }

    /// Deletes a message (after its work committed).
    pub async fn delete(&self, receipt: &str) -> Result<()> {
        delete_message(&self.ctx, &self.url, receipt).await
    }

    /// Sets a received message's visibility timeout (0: visible again at once).
    pub async fn set_visibility(&self, receipt: &str, seconds: u32) -> Result<()> {
        set_visibility(&self.ctx, &self.url, receipt, seconds).await
    }

    /// Moves a message to the queue's dead-letter queue at once (`info` is this queue's
    /// description), with `reason` in its `batchfan_error` attribute and its receives in
    /// `batchfan_attempts`; `false` when the queue has no dead-letter queue.
    pub async fn dead_letter(&self, info: &QueueInfo, message: &Received, reason: &str) -> Result<bool> {
        dead_letter(&self.ctx, info, message, reason).await
    }
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// SQS's message id.
    pub message_id: String,
    /// The receipt handle of this receive (what deletes and visibility changes name).
    pub receipt: String,
    /// The body.
    pub body: String,
    /// How many times SQS has handed the message out, this receive included (the attempt).
    pub receive_count: u32,
    /// System attributes (`SentTimestamp`, `MessageGroupId`, ...).
    pub attributes: HashMap<String, String>,
    /// String message attributes the sender set.
    pub message_attributes: HashMap<String, String>,
}

/// Receives up to `max` (1 to 10) messages, long-polling up to `wait`, each invisible to others
/// for the queue's visibility timeout.
async fn receive(ctx: &Context, url: &str, max: i32, wait: Duration) -> Result<Vec<Received>> {
    let out = call(ctx, "ReceiveMessage", url, |sqs| {
        sqs.receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
    })
    .await?;
    Ok(out
        .messages()
        .iter()
        .map(|m| {
            let attributes: HashMap<String, String> = m
                .attributes()
                .map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect())
                .unwrap_or_default();
            Received {
                message_id: m.message_id().unwrap_or_default().to_string(),
                receipt: m.receipt_handle().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
                receive_count: attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1),
                attributes,
                message_attributes: m
                    .message_attributes()
                    .map(|a| a.iter().filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_string()))).collect())
                    .unwrap_or_default(),
            }
        })
        .collect())
}

/// Deletes a message (after its work committed).
async fn delete_message(ctx: &Context, url: &str, receipt: &str) -> Result<()> {
    call(ctx, "DeleteMessage", url, |sqs| sqs.delete_message().queue_url(url).receipt_handle(receipt).send()).await?;
    Ok(())
}

/// Sets a received message's visibility timeout from now: the heartbeat extends it while the
/// work goes on; 0 releases the message to other workers at once.
async fn set_visibility(ctx: &Context, url: &str, receipt: &str, seconds: u32) -> Result<()> {
    call(ctx, "ChangeMessageVisibility", url, |sqs| {
        sqs.change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds.min(43_200) as i32)
            .send()
    })
    .await?;
    Ok(())
}

/// Moves a message to the queue's dead-letter queue at once, with `reason` in its
/// `batchfan_error` attribute, and deletes it from the queue. Returns false (and does nothing)
/// when the queue has no dead-letter queue.
async fn dead_letter(ctx: &Context, queue: &QueueInfo, message: &Received, reason: &str) -> Result<bool> {
    let Some(dlq) = &queue.dead_letter_queue else { return Ok(false) };
    let reason: String = reason.chars().take(1_000).collect();
    let unbuildable = |e: aws_sdk_sqs::error::BuildError| crate::Error::Queue {
        op: "SendMessage",
        queue: dlq.url.clone(),
        message: e.to_string(),
        transient: false,
        source: Some(Box::new(e)),
    };
    let attribute =
        MessageAttributeValue::builder().data_type("String").string_value(reason).build().map_err(unbuildable)?;
    let attempts = MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(message.receive_count.to_string())
        .build()
        .map_err(unbuildable)?;
    let fifo = dlq.url.ends_with(".fifo");
    call(ctx, "SendMessage", &dlq.url, |sqs| {
        let mut send = sqs
            .send_message()
            .queue_url(&dlq.url)
            .message_body(&message.body)
            .message_attributes(ERROR_ATTRIBUTE, attribute)
            .message_attributes(ATTEMPTS_ATTRIBUTE, attempts);
        if fifo {
            send = send.message_group_id(&message.message_id).message_deduplication_id(&message.message_id);
        }
        send.send()
    })
    .await?;
    delete_message(ctx, &queue.url, &message.receipt).await?;
    Ok(true)
}
