//! Where this attempt's log goes, for its completion marker: the file the local runner or the
//! worker pool named (`BATCHFAN_LOG_FILE`), or the CloudWatch Logs stream the container's
//! `awslogs` driver writes, as the ECS task metadata endpoint (v4) names it. AWS Batch, ECS and
//! Fargate set `ECS_CONTAINER_METADATA_URI_V4` in every container. A queue run finds a chunk's
//! log only from its marker (an SQS message has no job to describe), so `batchfan logs RUN
//! --chunk N` of a queue run served on AWS needs this.

use std::time::Duration;

use batchfan::contract::{self, LogLocation};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The variable AWS sets to the container's metadata URL.
pub const METADATA_URI: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// The whole exchange with the metadata endpoint (a link-local address: it answers in
/// milliseconds, or it is not there).
const TIMEOUT: Duration = Duration::from_secs(2);

/// Largest metadata answer read (a container's is a few KB).
const MAX_ANSWER: u64 = 1 << 20;

/// This attempt's log, if it can be named; asking the metadata endpoint never fails the worker.
pub(crate) async fn discover() -> Option<LogLocation> {
    if let Some(path) = std::env::var(contract::env::LOG_FILE).ok().filter(|p| !p.is_empty()) {
        return Some(LogLocation::File { path });
    }
    let uri = std::env::var(METADATA_URI).ok().filter(|u| !u.is_empty())?;
    match tokio::time::timeout(TIMEOUT, get(&uri)).await {
        Ok(Ok(body)) => {
            let found = from_metadata(&body);
            if found.is_none() {
                tracing::debug!(uri, "the container's metadata names no awslogs stream");
            }
            found
        }
        Ok(Err(e)) => {
            tracing::warn!(uri, "could not read the container's metadata (its log stays unnamed in markers): {e}");
            None
        }
        Err(_) => {
            tracing::warn!(
                uri,
                "the container's metadata did not answer within {TIMEOUT:?} (its log stays unnamed in markers)"
            );
            None
        }
    }
}

/// The `awslogs` group and stream of a container's metadata (v4 `LogDriver`, `LogOptions`).
fn from_metadata(body: &[u8]) -> Option<LogLocation> {
    let metadata: serde_json::Value = serde_json::from_slice(body).ok()?;
    if metadata.get("LogDriver")?.as_str()? != "awslogs" {
        return None;
    }
    let options = metadata.get("LogOptions")?;
    let text = |name: &str| options.get(name)?.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    Some(LogLocation::Cloudwatch { group: text("awslogs-group")?, stream: text("awslogs-stream")? })
}

/// The body of a plain-HTTP GET of `uri` (`http://HOST[:PORT]/PATH`): HTTP/1.0, so the answer
/// ends with the connection and has no chunked encoding.
async fn get(uri: &str) -> std::io::Result<Vec<u8>> {
    let invalid = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("`{uri}` {why}"));
    let rest = uri.strip_prefix("http://").ok_or_else(|| invalid("is not an http:// URL"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let address = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    let mut stream = tokio::net::TcpStream::connect(&address).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\n\r\n").as_bytes())
        .await?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer).await?;
    let head_end =
        memchr::memmem::find(&answer, b"\r\n\r\n").ok_or_else(|| invalid("answered without HTTP headers"))?;
    let status = answer.split(|&b| b == b' ').nth(1).unwrap_or_default();
    if status != b"200" {
        return Err(invalid(&format!("answered {}", String::from_utf8_lossy(status))));
    }
    Ok(answer.split_off(head_end + 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_awslogs_stream_of_the_metadata() {
        // As the ECS agent serves it (v4 container metadata, trimmed).
        let body = br#"{"DockerId":"cd18","Name":"default","Image":"worker:1","LogDriver":"awslogs",
            "LogOptions":{"awslogs-create-group":"true","awslogs-group":"/aws/batch/job","awslogs-region":"us-east-1",
            "awslogs-stream":"wordcount/default/6f1b2e"},"Networks":[{"NetworkMode":"awsvpc"}]}"#;
        assert_eq!(
            from_metadata(body),
            Some(LogLocation::Cloudwatch { group: "/aws/batch/job".into(), stream: "wordcount/default/6f1b2e".into() })
        );
        for other in [
            &br#"{"LogDriver":"json-file","LogOptions":{"max-size":"10m"}}"#[..],
            br#"{"LogDriver":"awslogs","LogOptions":{"awslogs-group":"g"}}"#,
            br#"{"Name":"no log driver"}"#,
            b"not json",
        ] {
            assert_eq!(from_metadata(other), None, "{}", String::from_utf8_lossy(other));
        }
    }
}
