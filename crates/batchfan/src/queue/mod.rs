//! Queue runs: the chunks of a plan as messages on an SQS queue, served by a pool of
//! long-running workers (local processes, an ECS service, or AWS Batch jobs) that can grow and
//! shrink with the queue's depth.
//!
//! One message per chunk ([`crate::contract::ChunkMessage`]: the manifest URI and the chunk
//! index; no work item travels in a message). A run is complete when every chunk is committed
//! (its completion marker exists) or dead-lettered (in the queue's dead-letter queue, named by
//! its redrive policy). Every SQS call goes through the client's SQS rate limiter and the SDK's
//! retries.

mod enqueue;
mod messages;
mod record;
mod status;

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;

pub use self::enqueue::{EnqueueOptions, EnqueuePlan, MAX_QUEUE_CHUNKS, SendStats};
pub(crate) use self::enqueue::{check_and_plan, send_chunks};
pub use self::messages::{Queue, Received};
pub use self::record::{QueueRecord, QueueRedrive};
pub use self::status::{ATTEMPTS_ATTRIBUTE, ERROR_ATTRIBUTE};
pub(crate) use self::status::{observe, redrive};
use crate::context::Context;
use crate::error::{Error, Result};
pub use crate::status::{DeadLetter, QueueCounts};

/// What batchfan needs to know about a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueInfo {
    /// The queue URL.
    pub url: String,
    /// Its ARN.
    pub arn: String,
    /// A FIFO queue (`.fifo`): messages carry a group and a deduplication id.
    pub fifo: bool,
    /// Seconds a received message stays invisible (workers extend it while they work).
    pub visibility_timeout: u32,
    /// The dead-letter queue of its redrive policy, if any.
    pub dead_letter_queue: Option<DeadLetterQueue>,
}

/// A queue's dead-letter queue (its redrive policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterQueue {
    /// Its URL.
    pub url: String,
    /// Its ARN.
    pub arn: String,
    /// Receives after which SQS moves a message there.
    pub max_receive_count: u32,
}

/// Maps an SQS error: a queue that does not exist, or a request it refuses, is the caller's to
/// fix; throttling, network errors and 5xx are transient. The SDK error stays the source.
pub(crate) fn classify<E>(
    op: &'static str,
    queue: &str,
    err: SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let Some(e) = crate::error::environment_error(&err) {
        return e;
    }
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().unwrap_or_default().to_string();
    let missing = code.contains("NonExistentQueue") || code.contains("QueueDoesNotExist");
    let message = match (missing, err.message()) {
        (true, _) => format!(
            "{code}: the queue does not exist (check the URL, AWS_REGION and the account, or create it with `aws sqs create-queue`)"
        ),
        (false, Some(msg)) if !code.is_empty() => format!("{code}: {msg}"),
        _ => crate::error::one_line(&err),
    };
    let service = matches!(err, SdkError::ServiceError(_));
    let throttled = status == Some(429) || code.contains("Throttl") || code.contains("RequestThrottled");
    let source = Some(Box::new(err) as crate::BoxError);
    let queue = queue.to_string();
    if service && !throttled && !matches!(status, Some(500..=599)) {
        Error::QueueRejected { op, queue, message, source }
    } else {
        Error::Queue { op, queue, message, transient: true, source }
    }
}

/// Sends one SQS request in the client's SQS rate limiter; the SDK retries transient failures.
pub(crate) async fn call<'c, T, E, F, Fut>(ctx: &'c Context, op: &'static str, queue: &str, send: F) -> Result<T>
where
    F: FnOnce(&'c aws_sdk_sqs::Client) -> Fut,
    Fut: Future<Output = std::result::Result<T, SdkError<E, aws_sdk_sqs::config::http::HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let sqs = ctx.aws.sqs().await;
    ctx.aws.sqs_slot().await;
    send(sqs).await.map_err(|e| classify(op, queue, e))
}

fn attributes(out: &aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput) -> HashMap<String, String> {
    out.attributes().map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect()).unwrap_or_default()
}

/// Looks a queue up: it must exist; its FIFO flag, visibility timeout and dead-letter queue.
pub(crate) async fn describe_queue(ctx: &Context, url: &str) -> Result<QueueInfo> {
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(Error::option(
            "--queue-url",
            url,
            "a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/work (`aws sqs get-queue-url --queue-name NAME`)",
        ));
    }
    let out = call(ctx, "GetQueueAttributes", url, |sqs| {
        sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::All).send()
    })
    .await?;
    let attrs = attributes(&out);
    let number = |name: &str| attrs.get(name).and_then(|v| v.parse::<u32>().ok());
    let dead_letter_queue = match attrs.get("RedrivePolicy") {
        Some(policy) => Some(dead_letter_queue(ctx, url, policy).await?),
        None => None,
    };
    Ok(QueueInfo {
        url: url.to_string(),
        arn: attrs.get("QueueArn").cloned().unwrap_or_default(),
        fifo: attrs.get("FifoQueue").is_some_and(|v| v == "true") || url.ends_with(".fifo"),
        visibility_timeout: number("VisibilityTimeout").unwrap_or(30),
        dead_letter_queue,
    })
}

/// The dead-letter queue a redrive policy names (`{"deadLetterTargetArn": ..., "maxReceiveCount": N}`).
async fn dead_letter_queue(ctx: &Context, url: &str, policy: &str) -> Result<DeadLetterQueue> {
    let bad = |why: String| Error::Queue {
        op: "GetQueueAttributes",
        queue: url.to_string(),
        message: format!("unreadable RedrivePolicy `{policy}`: {why}"),
        transient: false,
        source: None,
    };
    let policy: serde_json::Value = serde_json::from_str(policy).map_err(|e| bad(e.to_string()))?;
    let arn = policy["deadLetterTargetArn"].as_str().ok_or_else(|| bad("no deadLetterTargetArn".into()))?;
    let max_receive_count = match &policy["maxReceiveCount"] {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(0) as u32;
    // arn:aws:sqs:REGION:ACCOUNT:NAME
    let parts: Vec<&str> = arn.split(':').collect();
    let [_, _, _, _, account, name] = parts.as_slice() else {
        return Err(bad(format!("`{arn}` is not an SQS queue ARN")));
    };
    let out = call(ctx, "GetQueueUrl", url, |sqs| {
        sqs.get_queue_url().queue_name(*name).queue_owner_aws_account_id(*account).send()
    })
    .await?;
    let dlq_url = out.queue_url().ok_or_else(|| bad(format!("no URL for {arn}")))?.to_string();
    Ok(DeadLetterQueue { url: dlq_url, arn: arn.to_string(), max_receive_count })
}

/// A queue's message counts (one GetQueueAttributes call).
pub(crate) async fn queue_counts(ctx: &Context, url: &str) -> Result<QueueCounts> {
    let out = call(ctx, "GetQueueAttributes", url, |sqs| {
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
    })
    .await?;
    let attrs = attributes(&out);
    let number = |name: &str| attrs.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(QueueCounts {
        visible: number("ApproximateNumberOfMessages"),
        in_flight: number("ApproximateNumberOfMessagesNotVisible"),
        delayed: number("ApproximateNumberOfMessagesDelayed"),
    })
}
