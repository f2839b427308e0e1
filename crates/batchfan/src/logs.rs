//! Reading the logs of a run's attempts: local log files and CloudWatch Logs streams, each line
//! tagged with its chunk and attempt and merged in time order. Which attempts a run has and
//! where their logs are is the run's to say ([`crate::Run::logs`]); this module reads them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::contract::LogLocation;
use crate::error::Result;

/// What [`crate::Run::logs`] reads.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LogsOptions {
    /// These chunks (empty: every chunk, or with `failed` the failed ones).
    pub chunks: Vec<u64>,
    /// Every chunk not committed.
    pub failed: bool,
    /// Only this attempt of each chunk (default: every attempt).
    pub attempt: Option<u32>,
    /// Only lines written within this long before now.
    pub since: Option<Duration>,
    /// Only the last this many lines of each attempt's log.
    pub tail: Option<usize>,
}

impl LogsOptions {
    /// Options reading every attempt of `chunks` (empty: all chunks).
    pub fn chunks(chunks: Vec<u64>) -> LogsOptions {
        LogsOptions { chunks, ..LogsOptions::default() }
    }

    /// With `failed` set: every chunk not committed.
    pub fn failed(mut self, failed: bool) -> LogsOptions {
        self.failed = failed;
        self
    }

    /// Only attempt `attempt`.
    pub fn attempt(mut self, attempt: Option<u32>) -> LogsOptions {
        self.attempt = attempt;
        self
    }

    /// Only lines of the last `since`.
    pub fn since(mut self, since: Option<Duration>) -> LogsOptions {
        self.since = since;
        self
    }

    /// Only the last `tail` lines of each attempt.
    pub fn tail(mut self, tail: Option<usize>) -> LogsOptions {
        self.tail = tail;
        self
    }
}

/// One line of an attempt's log, or a notice about it (a log that does not exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LogLine {
    /// The chunk.
    pub chunk: u64,
    /// The attempt (from 1; 0 when not known).
    pub attempt: u32,
    /// When it was written (ms since the epoch), when known: CloudWatch's event time, or the
    /// timestamp a harness line starts with (lines without one take the line before's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_unix_ms: Option<u64>,
    /// The text, without its line end.
    pub text: String,
    /// True for batchfan's own note about the log (it does not exist, yet or any more), not a
    /// line of it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub notice: bool,
}

impl LogLine {
    /// The line as `batchfan logs` prints it: `[00042/2] text`.
    pub fn prefixed(&self) -> String {
        format!("[{:05}/{}] {}", self.chunk, self.attempt, self.text)
    }

    pub(crate) fn notice(chunk: u64, attempt: u32, text: String) -> LogLine {
        LogLine { chunk, attempt, timestamp_unix_ms: None, text, notice: true }
    }
}

/// Where one attempt's log is, or why none is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Source {
    pub(crate) chunk: u64,
    pub(crate) attempt: u32,
    /// `None`: no log known; `missing` says why.
    pub(crate) location: Option<LocationKey>,
    pub(crate) missing: String,
    /// When the attempt started, for lines without a timestamp of their own.
    pub(crate) started_unix_ms: Option<u64>,
    /// The log is a worker's, shared by the chunks it served (queue runs): lines naming
    /// another chunk (`chunk=7`, `"chunk":7`) are left out.
    pub(crate) shared: bool,
}

/// A [`LogLocation`] with an order, to key the reader's state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(not(any(feature = "batch", feature = "queue")), allow(dead_code))]
pub(crate) enum LocationKey {
    File(String),
    Cloudwatch(String, String),
}

impl LocationKey {
    #[cfg_attr(not(any(feature = "batch", feature = "queue")), allow(dead_code))]
    pub(crate) fn of(location: &LogLocation) -> Option<LocationKey> {
        match location {
            LogLocation::File { path } => Some(LocationKey::File(path.clone())),
            LogLocation::Cloudwatch { group, stream } => Some(LocationKey::Cloudwatch(group.clone(), stream.clone())),
        }
    }
}

/// How far a source was read.
#[derive(Debug, Default)]
struct Progress {
    /// Bytes of a file read (complete lines only).
    offset: u64,
    /// CloudWatch's forward token.
    #[cfg_attr(not(feature = "cloudwatch-logs"), allow(dead_code))]
    token: Option<String>,
    /// The last timestamp seen, for lines without one.
    last_ms: Option<u64>,
    /// The missing-log notice was given.
    noticed: bool,
    /// The first read was done (`tail` applies to it only).
    started: bool,
}

/// Reads the logs of a set of attempts, each call returning the lines written since the last.
pub(crate) struct Reader {
    progress: BTreeMap<Source, Progress>,
    since_ms: Option<u64>,
    tail: Option<usize>,
}

impl Reader {
    pub(crate) fn new(options: &LogsOptions) -> Reader {
        let since_ms =
            options.since.map(|d| crate::contract::now_ms().saturating_sub(d.as_millis().min(u64::MAX as u128) as u64));
        Reader { progress: BTreeMap::new(), since_ms, tail: options.tail }
    }

    /// Adds sources not seen before (a follow finds new attempts as they start).
    pub(crate) fn add(&mut self, sources: Vec<Source>) {
        for source in sources {
            // A location found later replaces the source without one for the same attempt.
            if source.location.is_some() {
                self.progress.retain(|s, _| {
                    !(s.chunk == source.chunk
                        && (s.attempt == source.attempt || s.attempt == 0)
                        && s.location.is_none())
                });
            } else if self.progress.keys().any(|s| s.chunk == source.chunk && s.attempt == source.attempt) {
                continue;
            }
            self.progress.entry(source).or_default();
        }
    }

    /// The lines written since the last call, in time order (notices first).
    pub(crate) async fn read(&mut self, ctx: &crate::context::Context) -> Result<Vec<LogLine>> {
        let mut notices = Vec::new();
        let mut lines = Vec::new();
        for (source, progress) in self.progress.iter_mut() {
            let read = match &source.location {
                None => Err(source.missing.clone()),
                Some(LocationKey::File(path)) => read_file(Path::new(path), source, progress),
                Some(LocationKey::Cloudwatch(group, stream)) => {
                    read_cloudwatch(ctx, group, stream, source, progress, self.since_ms).await?
                }
            };
            match read {
                Ok(mut new) => {
                    if source.shared {
                        new.retain(|l| names_chunk(&l.text).is_none_or(|c| c == source.chunk));
                    }
                    if let Some(since) = self.since_ms {
                        new.retain(|l| l.timestamp_unix_ms.is_none_or(|t| t >= since));
                    }
                    if !progress.started
                        && let Some(tail) = self.tail
                    {
                        new.drain(..new.len().saturating_sub(tail));
                    }
                    progress.started = true;
                    lines.extend(new);
                }
                Err(why) if !progress.noticed => {
                    progress.noticed = true;
                    notices.push(LogLine::notice(source.chunk, source.attempt, why));
                }
                Err(_) => {}
            }
        }
        // Stable: lines of one log keep their order; logs interleave by time.
        lines.sort_by_key(|l| l.timestamp_unix_ms.unwrap_or(0));
        notices.extend(lines);
        Ok(notices)
    }
}

/// The chunk a harness log line names in its span (`chunk=7`, text) or fields (`"chunk":7`).
fn names_chunk(text: &str) -> Option<u64> {
    let at = text.find(" chunk=").map(|i| i + 7).or_else(|| text.find("\"chunk\":").map(|i| i + 8))?;
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The complete lines of a log file after `progress.offset`.
fn read_file(path: &Path, source: &Source, progress: &mut Progress) -> std::result::Result<Vec<LogLine>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(|e| format!("log file {} cannot be read: {e}", path.display()))?;
    file.seek(SeekFrom::Start(progress.offset)).map_err(|e| format!("log file {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| format!("log file {}: {e}", path.display()))?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |at| at + 1);
    progress.offset += complete as u64;
    if progress.last_ms.is_none() {
        progress.last_ms = source.started_unix_ms;
    }
    let mut lines = Vec::new();
    for raw in String::from_utf8_lossy(&bytes[..complete]).lines() {
        let text = raw.trim_end_matches('\r').to_string();
        if let Some(t) = line_timestamp(&text) {
            progress.last_ms = Some(t);
        }
        lines.push(LogLine {
            chunk: source.chunk,
            attempt: source.attempt,
            timestamp_unix_ms: progress.last_ms,
            text,
            notice: false,
        });
    }
    Ok(lines)
}

#[cfg(feature = "cloudwatch-logs")]
async fn read_cloudwatch(
    ctx: &crate::context::Context,
    group: &str,
    stream: &str,
    source: &Source,
    progress: &mut Progress,
    since_ms: Option<u64>,
) -> Result<std::result::Result<Vec<LogLine>, String>> {
    use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
    use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsError;
    let client = ctx.aws.logs().await;
    let mut lines = Vec::new();
    loop {
        ctx.aws.logs_slot().await;
        let sent = progress.token.clone();
        let out = client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_start_time(since_ms.filter(|_| sent.is_none()).and_then(|t| i64::try_from(t).ok()))
            .set_next_token(sent.clone())
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(GetLogEventsError::is_resource_not_found_exception) => {
                return Ok(Err(format!(
                    "log stream `{stream}` in group `{group}` does not exist: not yet (the attempt has not started, or wrote nothing) or not any more (the group's retention removed it)"
                )));
            }
            Err(e) => {
                let throttled = e.code().is_some_and(|c| c.contains("Throttl") || c == "LimitExceededException");
                let server = e.raw_response().is_some_and(|r| r.status().is_server_error());
                let message = match (e.code(), e.message()) {
                    (Some(code), Some(msg)) => format!("{code}: {msg} (group `{group}`, stream `{stream}`)"),
                    _ => format!("{} (group `{group}`, stream `{stream}`)", crate::error::one_line(&e)),
                };
                let transient =
                    throttled || server || !matches!(e, aws_sdk_cloudwatchlogs::error::SdkError::ServiceError(_));
                return Err(crate::error::Error::Logs {
                    op: "GetLogEvents",
                    message,
                    transient,
                    source: Some(Box::new(e)),
                });
            }
        };
        for event in out.events() {
            let text = event.message().unwrap_or_default().trim_end_matches(['\n', '\r']).to_string();
            lines.push(LogLine {
                chunk: source.chunk,
                attempt: source.attempt,
                timestamp_unix_ms: event.timestamp().and_then(|t| u64::try_from(t).ok()),
                text,
                notice: false,
            });
        }
        let next = out.next_forward_token().map(str::to_string);
        // The end of the stream: the same token comes back.
        let end = next.is_none() || next == sent;
        progress.token = next.or(sent);
        if end || out.events().is_empty() {
            break;
        }
    }
    Ok(Ok(lines))
}

#[cfg(not(feature = "cloudwatch-logs"))]
async fn read_cloudwatch(
    _ctx: &crate::context::Context,
    group: &str,
    stream: &str,
    _source: &Source,
    _progress: &mut Progress,
    _since_ms: Option<u64>,
) -> Result<std::result::Result<Vec<LogLine>, String>> {
    Ok(Err(format!(
        "log stream `{stream}` in group `{group}` is in CloudWatch Logs, which this build of batchfan cannot read (built without the `cloudwatch-logs` feature)"
    )))
}

/// The time a harness log line starts with (`2026-11-28T09:11:00.844086Z ...`) or a JSON
/// line's `"timestamp"` field, in ms since the epoch.
pub(crate) fn line_timestamp(line: &str) -> Option<u64> {
    let text = match line.find("\"timestamp\":\"") {
        Some(at) if line.starts_with('{') => &line[at + 13..],
        _ => line,
    };
    parse_rfc3339(text.get(..text.find(['Z', '"', ' ']).map_or(text.len(), |z| z + 1))?)
}

/// A time in ms since the epoch as `2026-11-30 10:52:49` (UTC), for listings.
pub fn utc_timestamp(unix_ms: u64) -> String {
    let secs = (unix_ms / 1000) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date of a day count (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` in ms since the epoch (UTC only: the harness writes UTC).
fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    let ms: i64 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    // Days since the epoch of a civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 86_400 + h * 3600 + min * 60 + s) * 1000) + ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_timestamps_parse() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(line_timestamp("2026-11-28T09:11:00.844086Z ERROR chunk: x"), Some(1_795_857_060_844));
        assert_eq!(
            line_timestamp(r#"{"timestamp":"2026-11-28T09:11:00.844Z","level":"INFO"}"#),
            Some(1_795_857_060_844)
        );
        assert_eq!(line_timestamp("Traceback (most recent call last):"), None);
    }

    #[test]
    fn timestamps_print_as_utc() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(utc_timestamp(1_795_857_060_844), "2026-11-28 09:11:00");
        assert_eq!(parse_rfc3339("2024-02-29T23:59:59Z").map(utc_timestamp).as_deref(), Some("2024-02-29 23:59:59"));
    }

    #[test]
    fn lines_are_prefixed_by_chunk_and_attempt() {
        let line = LogLine { chunk: 42, attempt: 2, timestamp_unix_ms: None, text: "boom".into(), notice: false };
        assert_eq!(line.prefixed(), "[00042/2] boom");
        assert_eq!(names_chunk(r#"INFO message{id=1}:chunk{run_id="bf-1" chunk=12}: chunk committed"#), Some(12));
        assert_eq!(names_chunk(r#"{"span":{"chunk":3,"run_id":"bf"}}"#), Some(3));
        assert_eq!(names_chunk("worker started"), None);
    }
}
