//! The child's configuration, from the environment AWS Batch (or `batchfan run --local`) gives.

use std::path::PathBuf;
use std::time::Duration;

use batchfan::contract::env;
use batchfan::store::ReadOptions;

use crate::error::WorkerError;
use crate::output::Compression;

/// Where a child finds its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Child index: `AWS_BATCH_JOB_ARRAY_INDEX`, else the `:N` suffix of `AWS_BATCH_JOB_ID`,
    /// else 0 (a plain job).
    pub index: u64,
    /// `AWS_BATCH_JOB_ATTEMPT` (1 when unset).
    pub attempt: u32,
    /// `AWS_BATCH_JOB_ID` (empty when unset).
    pub job_id: String,
    /// `BATCHFAN_MANIFEST`: the manifest URI.
    pub manifest: String,
    /// `BATCHFAN_SPOOL_DIR`: where output is staged before its commit (default: the temp dir).
    pub spool_dir: PathBuf,
    /// How inputs are read: `BATCHFAN_READ_PART_SIZE` (default 8MiB) bytes per ranged GET,
    /// `BATCHFAN_READ_CONCURRENCY` (default 4) of them in flight.
    pub read: ReadOptions,
    /// `BATCHFAN_STOP_TIMEOUT`: how long work in flight may go on after SIGTERM (default 25 s,
    /// under the 30 s ECS and AWS Batch give before SIGKILL; an ECS task with `stopTimeout` 120
    /// can set 110).
    pub stop_timeout: Duration,
    /// `BATCHFAN_OUTPUT_COMPRESSION`: `gzip` or `zstd` compress the committed output (default none).
    pub output_compression: Option<Compression>,
    /// `BATCHFAN_PREFETCH`: open the next item while the handler works on this one (default true).
    pub prefetch: bool,
}

/// `BATCHFAN_PREFETCH`: `1` (default) or `0`.
fn prefetch(lookup: &impl Fn(&str) -> Option<String>) -> Result<bool, WorkerError> {
    match lookup(env::PREFETCH).as_deref().map(str::trim) {
        None | Some("" | "1" | "true") => Ok(true),
        Some("0" | "false") => Ok(false),
        Some(v) => Err(WorkerError::Config(format!("{}=`{v}` is not 1 or 0", env::PREFETCH))),
    }
}

/// `BATCHFAN_OUTPUT_COMPRESSION`.
fn output_compression(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<Compression>, WorkerError> {
    match lookup(env::OUTPUT_COMPRESSION) {
        None => Ok(None),
        Some(v) => Compression::parse(&v).map_err(|e| WorkerError::Config(format!("{}: {e}", env::OUTPUT_COMPRESSION))),
    }
}

/// `BATCHFAN_SPOOL_DIR`, default the temp dir.
fn spool_dir(lookup: &impl Fn(&str) -> Option<String>) -> PathBuf {
    lookup(env::SPOOL_DIR).map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
}

/// `BATCHFAN_READ_PART_SIZE` and `BATCHFAN_READ_CONCURRENCY`.
fn read_options(lookup: &impl Fn(&str) -> Option<String>) -> Result<ReadOptions, WorkerError> {
    let mut read = ReadOptions::default();
    if let Some(v) = lookup(env::READ_PART_SIZE).filter(|v| !v.is_empty()) {
        read.part_size = batchfan::size::parse_size(&v).ok().filter(|&n| n > 0).ok_or_else(|| {
            WorkerError::Config(format!("{}=`{v}` is not a size above 0, e.g. 8MiB", env::READ_PART_SIZE))
        })?;
    }
    if let Some(v) = lookup(env::READ_CONCURRENCY).filter(|v| !v.is_empty()) {
        read.concurrency = v.trim().parse().ok().filter(|n| (1..=64).contains(n)).ok_or_else(|| {
            WorkerError::Config(format!("{}=`{v}` is not an integer from 1 to 64", env::READ_CONCURRENCY))
        })?;
    }
    Ok(read)
}

/// How a queue worker serves its queue (`BATCHFAN_QUEUE_URL` set).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// `BATCHFAN_QUEUE_URL`: the queue to serve.
    pub queue_url: String,
    /// `BATCHFAN_QUEUE_CONCURRENCY`: messages processed at once (default 1, 1 to 64).
    pub concurrency: usize,
    /// `BATCHFAN_QUEUE_IDLE_EXIT`: exit 0 after this long with no message (default: never), for
    /// workers run as AWS Batch jobs, which should end when the queue is drained.
    pub idle_exit: Option<Duration>,
    /// Long-poll wait of each ReceiveMessage: 20 s (SQS's most), less when `idle_exit` is shorter.
    pub wait: Duration,
    /// `BATCHFAN_STOP_TIMEOUT`, as for [`Config::stop_timeout`].
    pub stop_timeout: Duration,
    /// `BATCHFAN_SPOOL_DIR`.
    pub spool_dir: PathBuf,
    /// `BATCHFAN_OUTPUT_COMPRESSION`.
    pub output_compression: Option<Compression>,
    /// `BATCHFAN_PREFETCH`.
    pub prefetch: bool,
    /// `BATCHFAN_READ_PART_SIZE`, `BATCHFAN_READ_CONCURRENCY`.
    pub read: ReadOptions,
}

impl QueueConfig {
    /// Reads the configuration from this process's environment.
    pub fn from_env() -> Result<QueueConfig, WorkerError> {
        QueueConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (for tests and embedding).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<QueueConfig, WorkerError> {
        let queue_url = lookup(env::QUEUE_URL).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            WorkerError::Config(format!("{} is not set: give the URL of the queue to serve", env::QUEUE_URL))
        })?;
        let concurrency = match lookup(env::QUEUE_CONCURRENCY).filter(|v| !v.trim().is_empty()) {
            Some(v) => v.trim().parse().ok().filter(|n| (1..=64).contains(n)).ok_or_else(|| {
                WorkerError::Config(format!("{}=`{v}` is not an integer from 1 to 64", env::QUEUE_CONCURRENCY))
            })?,
            None => 1,
        };
        let idle_exit = seconds(&lookup, env::QUEUE_IDLE_EXIT)?;
        let wait = idle_exit.map_or(MAX_WAIT, |idle| idle.clamp(Duration::from_secs(1), MAX_WAIT));
        Ok(QueueConfig {
            queue_url,
            concurrency,
            idle_exit,
            wait,
            stop_timeout: seconds(&lookup, env::STOP_TIMEOUT)?.unwrap_or(DEFAULT_STOP_TIMEOUT),
            spool_dir: spool_dir(&lookup),
            read: read_options(&lookup)?,
            output_compression: output_compression(&lookup)?,
            prefetch: prefetch(&lookup)?,
        })
    }
}

/// SQS's longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// Default [`Config::stop_timeout`] (the contract's, shared with `batchfan run --local`).
pub use batchfan::contract::DEFAULT_STOP_TIMEOUT;

/// Seconds from a variable: a non-negative number (fractions allowed).
pub(crate) fn seconds(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<Duration>, WorkerError> {
    let Some(v) = lookup(name).filter(|v| !v.trim().is_empty()) else { return Ok(None) };
    batchfan::contract::parse_seconds(&v)
        .map(Some)
        .ok_or_else(|| WorkerError::Config(format!("{name}=`{v}` is not a number of seconds from 0 to 86400")))
}

impl Config {
    /// Reads the configuration from this process's environment.
    pub fn from_env() -> Result<Config, WorkerError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (for tests and embedding).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, WorkerError> {
        let job_id = lookup(env::JOB_ID).unwrap_or_default();
        let index = match lookup(env::ARRAY_INDEX).filter(|v| !v.is_empty()) {
            Some(v) => v.trim().parse().map_err(|_| {
                WorkerError::Config(format!("{}=`{v}` is not a non-negative integer", env::ARRAY_INDEX))
            })?,
            None => match job_id.rsplit_once(':') {
                Some((_, suffix)) => suffix.parse().map_err(|_| {
                    WorkerError::Config(format!(
                        "{}=`{job_id}` does not end in `:<index>` and {} is unset",
                        env::JOB_ID,
                        env::ARRAY_INDEX
                    ))
                })?,
                None => 0,
            },
        };
        let attempt = match lookup(env::ATTEMPT).filter(|v| !v.is_empty()) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| WorkerError::Config(format!("{}=`{v}` is not a positive integer", env::ATTEMPT)))?,
            None => 1,
        };
        let manifest = lookup(env::MANIFEST).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            WorkerError::Config(
                format!("{} is not set: start this program through `batchfan run` or `batchfan submit`, or set it to the manifest URI", env::MANIFEST),
            )
        })?;
        let (spool_dir, read) = (spool_dir(&lookup), read_options(&lookup)?);
        let stop_timeout = seconds(&lookup, env::STOP_TIMEOUT)?.unwrap_or(DEFAULT_STOP_TIMEOUT);
        let output_compression = output_compression(&lookup)?;
        let prefetch = prefetch(&lookup)?;
        Ok(Config { index, attempt, job_id, manifest, spool_dir, read, stop_timeout, output_compression, prefetch })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, WorkerError> {
        Config::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn index_sources_in_order() {
        let m = ("BATCHFAN_MANIFEST", "s3://b/m.jsonl");
        assert_eq!(config(&[m, ("AWS_BATCH_JOB_ARRAY_INDEX", "7"), ("AWS_BATCH_JOB_ID", "j:3")]).unwrap().index, 7);
        assert_eq!(config(&[m, ("AWS_BATCH_JOB_ID", "abc-123:42")]).unwrap().index, 42);
        let plain = config(&[m, ("AWS_BATCH_JOB_ID", "abc-123")]).unwrap();
        assert_eq!((plain.index, plain.attempt), (0, 1));
        assert_eq!(config(&[m, ("AWS_BATCH_JOB_ATTEMPT", "3")]).unwrap().attempt, 3);
    }

    #[test]
    fn queue_settings() {
        let vars = |v: &[(&str, &str)]| {
            let v: Vec<(String, String)> = v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
            QueueConfig::from_lookup(move |n| v.iter().find(|(k, _)| k == n).map(|(_, x)| x.clone()))
        };
        let q = ("BATCHFAN_QUEUE_URL", "http://127.0.0.1:1/123456789012/work");
        let c = vars(&[q]).unwrap();
        assert_eq!((c.concurrency, c.idle_exit, c.wait, c.stop_timeout), (1, None, MAX_WAIT, DEFAULT_STOP_TIMEOUT));
        let c = vars(&[
            q,
            ("BATCHFAN_QUEUE_CONCURRENCY", "4"),
            ("BATCHFAN_QUEUE_IDLE_EXIT", "3"),
            ("BATCHFAN_STOP_TIMEOUT", "1.5"),
        ])
        .unwrap();
        assert_eq!((c.concurrency, c.wait, c.stop_timeout), (4, Duration::from_secs(3), Duration::from_millis(1500)));
        for bad in [
            vec![],
            vec![q, ("BATCHFAN_QUEUE_CONCURRENCY", "0")],
            vec![q, ("BATCHFAN_QUEUE_CONCURRENCY", "x")],
            vec![q, ("BATCHFAN_QUEUE_IDLE_EXIT", "-3")],
        ] {
            assert_eq!(vars(&bad).unwrap_err().exit_code(), crate::exit::CONFIG);
        }
    }

    #[test]
    fn read_options() {
        let m = ("BATCHFAN_MANIFEST", "s3://b/m.jsonl");
        assert_eq!(config(&[m]).unwrap().read, ReadOptions::default());
        let read = config(&[m, ("BATCHFAN_READ_PART_SIZE", "16MiB"), ("BATCHFAN_READ_CONCURRENCY", "8")]).unwrap().read;
        assert_eq!(read, ReadOptions { part_size: 16 << 20, concurrency: 8 });
    }

    #[test]
    fn bad_values_are_config_errors() {
        let m = ("BATCHFAN_MANIFEST", "s3://b/m.jsonl");
        for vars in [
            vec![m, ("AWS_BATCH_JOB_ARRAY_INDEX", "x")],
            vec![m, ("AWS_BATCH_JOB_ARRAY_INDEX", "-1")],
            vec![m, ("AWS_BATCH_JOB_ID", "j:x")],
            vec![m, ("AWS_BATCH_JOB_ATTEMPT", "zero")],
            vec![("AWS_BATCH_JOB_ARRAY_INDEX", "1")],
            vec![m, ("BATCHFAN_READ_PART_SIZE", "0")],
            vec![m, ("BATCHFAN_READ_PART_SIZE", "big")],
            vec![m, ("BATCHFAN_READ_CONCURRENCY", "0")],
            vec![m, ("BATCHFAN_READ_CONCURRENCY", "65")],
            vec![m, ("BATCHFAN_STOP_TIMEOUT", "-1")],
            vec![m, ("BATCHFAN_STOP_TIMEOUT", "soon")],
        ] {
            let err = config(&vars).unwrap_err();
            assert_eq!(err.exit_code(), crate::exit::CONFIG, "{err}");
        }
    }
}
