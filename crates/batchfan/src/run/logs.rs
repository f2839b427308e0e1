//! Where the logs of a run's attempts are, per kind of run: a local run's attempt files, an AWS
//! Batch run's CloudWatch Logs streams (DescribeJobs of the chunks asked for), a queue run's
//! markers. [`crate::logs`] reads them.

use std::collections::BTreeSet;
use std::path::Path;

use super::record::{RecordDetail, RunRecord};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::logs::{LocationKey, LogsOptions, Source};

/// The chunks `options` ask for, checked against the run.
pub(crate) fn chunks_asked(
    record: &RunRecord,
    options: &LogsOptions,
    committed: &BTreeSet<u64>,
) -> Result<BTreeSet<u64>> {
    if let Some(bad) = options.chunks.iter().find(|&&c| c >= record.chunk_count) {
        return Err(Error::option(
            "--chunk",
            bad,
            format!("run {} has chunks 0 to {}", record.run_id, record.chunk_count.saturating_sub(1)),
        ));
    }
    if options.attempt == Some(0) {
        return Err(Error::option("--attempt", 0, "attempts are numbered from 1"));
    }
    let mut chunks: BTreeSet<u64> = if options.chunks.is_empty() {
        (0..record.chunk_count).collect()
    } else {
        options.chunks.iter().copied().collect()
    };
    if options.failed {
        chunks.retain(|c| !committed.contains(c));
    }
    Ok(chunks)
}

/// The logs of every attempt of `chunks` (only `attempt`, when given).
#[cfg_attr(not(any(feature = "batch", feature = "queue")), allow(unused_variables))]
pub(crate) async fn sources(
    ctx: &Context,
    record: &RunRecord,
    chunks: &BTreeSet<u64>,
    attempt: Option<u32>,
) -> Result<Vec<Source>> {
    let mut sources = match &record.detail {
        RecordDetail::Local(local) => {
            let dir = local
                .log_dir
                .as_ref()
                .map_or_else(|| crate::local::default_log_base().join(&record.run_id), std::path::PathBuf::from);
            local_sources(&dir, chunks)
        }
        #[cfg(feature = "batch")]
        RecordDetail::Batch(batch) => {
            let found = crate::batch::chunk_attempts(ctx, batch, chunks).await?;
            let mut sources = Vec::new();
            for &chunk in chunks {
                let jobs = found.get(&chunk);
                for a in jobs.map(|j| j.attempts.as_slice()).unwrap_or_default() {
                    sources.push(Source {
                        chunk,
                        attempt: a.attempt,
                        location: a.log.as_ref().and_then(LocationKey::of),
                        missing: format!("attempt {} has no log stream (the container did not start)", a.attempt),
                        started_unix_ms: a.started_unix_ms,
                        shared: false,
                    });
                }
                if let Some(waiting) = jobs.and_then(|j| j.waiting.clone()) {
                    let next = jobs.map_or(0, |j| j.attempts.len() as u32) + 1;
                    sources.push(Source {
                        chunk,
                        attempt: next,
                        location: None,
                        missing: waiting,
                        started_unix_ms: None,
                        shared: false,
                    });
                } else if jobs.is_none_or(|j| j.attempts.is_empty()) {
                    sources.push(Source {
                        chunk,
                        attempt: 0,
                        location: None,
                        missing: "no child of this chunk is known to AWS Batch".into(),
                        started_unix_ms: None,
                        shared: false,
                    });
                }
            }
            sources
        }
        #[cfg(feature = "queue")]
        RecordDetail::Queue(_) => {
            let store = ctx.stores.store(&crate::uri::Location::parse(&record.output)?)?;
            let markers = crate::report::read_markers(store.as_ref(), &record.run_id).await?;
            chunks
                .iter()
                .map(|&chunk| match markers.get(&chunk) {
                    Some(marker) => Source {
                        chunk,
                        attempt: marker.attempt,
                        location: marker.log.as_ref().and_then(LocationKey::of),
                        missing: "its marker names no log (a worker of an earlier release, or one not started by batchfan's pool)".into(),
                        started_unix_ms: marker.started_unix_ms,
 shared: true,
                    },
                    None => Source {
                        chunk,
                        attempt: 0,
                        location: None,
                        missing: "not committed: a queue run knows a chunk's log from its marker only; see the workers' own logs".into(),
                        started_unix_ms: None,
 shared: false,
                    },
                })
                .collect()
        }
    };
    if let Some(a) = attempt {
        sources.retain(|s| s.attempt == a || s.attempt == 0);
    }
    Ok(sources)
}

/// The attempt files of `chunks` in a local run's log folder (`child-00042.attempt-2.log`).
fn local_sources(dir: &Path, chunks: &BTreeSet<u64>) -> Vec<Source> {
    let mut found: Vec<Source> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let rest = name.strip_prefix("child-")?.strip_suffix(".log")?;
            let (chunk, attempt) = rest.split_once(".attempt-")?;
            let (chunk, attempt) = (chunk.parse::<u64>().ok()?, attempt.parse::<u32>().ok()?);
            chunks.contains(&chunk).then(|| Source {
                chunk,
                attempt,
                location: Some(LocationKey::File(entry.path().display().to_string())),
                missing: String::new(),
                started_unix_ms: None,
                shared: false,
            })
        })
        .collect();
    let with_logs: BTreeSet<u64> = found.iter().map(|s| s.chunk).collect();
    for &chunk in chunks.iter().filter(|c| !with_logs.contains(c)) {
        found.push(Source {
            chunk,
            attempt: 0,
            location: None,
            missing: format!(
                "no log of this chunk in {} (it has not run yet, or the folder was removed)",
                dir.display()
            ),
            started_unix_ms: None,
            shared: false,
        });
    }
    found.sort();
    found
}
