//! The child's configuration, from the environment AWS Batch (or `batchfan run --local`) gives.

use std::path::PathBuf;

use batchfan::contract::env;
use batchfan::store::ReadOptions;

use crate::error::WorkerError;

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
        let spool_dir = lookup(env::SPOOL_DIR).map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
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
        Ok(Config { index, attempt, job_id, manifest, spool_dir, read })
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
        ] {
            let err = config(&vars).unwrap_err();
            assert_eq!(err.exit_code(), crate::exit::CONFIG, "{err}");
        }
    }
}
