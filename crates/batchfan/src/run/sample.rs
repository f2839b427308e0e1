//! Measuring a run before paying for it: one chunk of the plan run on this machine, so
//! `batchfan estimate --sample` prices seconds a chunk really took, not a guess.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::start::{finish_local, start};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::local::{self, Children, Event, LocalOptions, LocalRecord};
use crate::plan::PlanOptions;
use crate::prepare::RunSpec;
use crate::run::record::RecordDetail;
use crate::uri::Location;

/// What one sampled chunk measured ([`crate::Client::sample`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Sample {
    /// The chunk run: the one of median input bytes.
    pub chunk: u64,
    /// Chunks in the plan.
    pub chunk_count: u64,
    /// Items of the sampled chunk.
    pub items: u64,
    /// Input bytes of the sampled chunk.
    pub bytes: u64,
    /// Seconds from the worker's start to its commit (its completion marker's figures).
    pub seconds: f64,
    /// Peak RSS of the worker or its largest program, when the worker reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Input bytes of the mean chunk of the plan.
    pub mean_chunk_bytes: f64,
    /// `seconds` scaled by input bytes to the mean chunk (time is taken to grow with the
    /// bytes read): what an estimate prices per chunk.
    pub seconds_per_chunk: f64,
}

/// The chunk whose input bytes are the median of the plan's (`chunks` as the manifest header
/// gives them: `[offset, length, items, bytes]`); `None` for an empty plan.
fn median_chunk(chunks: &[[u64; 4]]) -> Option<u64> {
    let mut order: Vec<u64> = (0..chunks.len() as u64).collect();
    order.sort_by_key(|&i| (chunks[i as usize][3], i));
    order.get(order.len() / 2).copied()
}

/// A fresh folder of this user's for the sample's output, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(base: &Path) -> Result<Scratch> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = base.join(format!("sample-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| {
            Error::option(
                "--sample",
                dir.display(),
                format!("a scratch folder for the sample's output cannot be made: {e}"),
            )
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Plans `input` with `options` and runs the chunk of median input bytes as a process of
/// `local.program`, its output going to a scratch folder that is removed afterwards (the
/// child's log stays in `local.log_dir`). The sample is a run of its own, kept out of the
/// client's run notes. `cancel` completing (the caller's Ctrl-C) stops the child through its
/// drain path, and the scratch folder goes as on every other way out.
pub(crate) async fn sample(
    ctx: &Arc<Context>,
    input: &Location,
    options: &PlanOptions,
    local: &LocalOptions,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<Sample> {
    options.validate()?;
    let program = local::resolve_program(&local.program.display().to_string())?;
    let log_base = local.log_dir.clone().unwrap_or_else(local::default_log_base);
    crate::preflight::local_folder("--log-dir", &log_base)?;
    let scratch = Scratch::new(&local::default_log_base())?;
    // Past runs list what users ran; a measurement is not one of them.
    let quiet = Arc::new(Context { aws: ctx.aws.clone(), stores: ctx.stores.clone(), runs_dir: None });
    let spec = RunSpec {
        input: input.clone(),
        options: options.clone(),
        output: Location::parse(&scratch.0.display().to_string())?,
        manifest: None,
        overwrite: false,
    };
    let resolved = LocalRecord { program: program.display().to_string(), ..LocalRecord::of(local) };
    let (run, prepared) = start(&quiet, &spec, RecordDetail::Local(resolved)).await?;
    let header = prepared.manifest.header().clone();
    let run_id = run.record.run_id.clone();
    let Some(chunk) = median_chunk(&header.chunks) else {
        let _ = finish_local(&quiet, &run.record, Err(Error::option("--sample", input, "nothing to sample"))).await;
        return Err(Error::option(
            "--sample",
            input,
            "the plan has no chunks, so there is nothing to run: check --input and the filters",
        ));
    };
    let log_dir = if local.log_dir.is_some() { log_base } else { log_base.join(&run_id) };
    let children = Children {
        program,
        args: local.args.clone(),
        parallel: 1,
        attempts: 1,
        log_dir: log_dir.clone(),
        stop_deadline: local.stop_deadline,
        chunks: Some(vec![chunk]),
    };
    let ignore = |_: &Event| {};
    let ran = local::run_children(&header, &run.record.manifest, &children, &ignore, cancel).await;
    let summary = finish_local(&quiet, &run.record, ran).await?;
    if let Some(failed) = summary.failed.first() {
        return Err(Error::option(
            "--sample",
            format!("chunk {chunk}"),
            format!(
                "failed ({}); its log is {}: fix the program, or give --seconds-per-chunk instead",
                failed.reason, failed.log
            ),
        ));
    }
    let store = quiet.stores.store(&spec.output)?;
    let markers = crate::report::read_markers(store.as_ref(), &run_id).await?;
    let marker = markers.get(&chunk).ok_or_else(|| {
        Error::option(
            "--sample",
            format!("chunk {chunk}"),
            format!(
                "exited 0 without a completion marker: PROGRAM must be a batchfan worker (see `batchfan-worker exec`); its log is under {}",
                log_dir.display()
            ),
        )
    })?;
    let seconds = match marker.started_unix_ms {
        Some(started) => marker.committed_unix_ms.saturating_sub(started) as f64 / 1000.0,
        None => summary.wall_seconds,
    }
    .max(0.001);
    let [_, _, items, bytes] = header.chunks[chunk as usize];
    let mean_chunk_bytes = header.total_bytes as f64 / header.chunk_count.max(1) as f64;
    let seconds_per_chunk = if bytes > 0 { seconds * mean_chunk_bytes / bytes as f64 } else { seconds };
    drop(prepared);
    Ok(Sample {
        chunk,
        chunk_count: header.chunk_count,
        items,
        bytes,
        seconds,
        peak_rss_bytes: marker.peak_rss_bytes,
        mean_chunk_bytes,
        seconds_per_chunk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_chunk_by_bytes_is_sampled() {
        assert_eq!(median_chunk(&[]), None);
        assert_eq!(median_chunk(&[[0, 0, 1, 10]]), Some(0));
        // Bytes 50, 10, 30: sorted 10 (1), 30 (2), 50 (0): the middle is chunk 2.
        assert_eq!(median_chunk(&[[0, 0, 1, 50], [0, 0, 1, 10], [0, 0, 1, 30]]), Some(2));
        // Ties go by index, so the choice is stable.
        assert_eq!(median_chunk(&[[0, 0, 1, 5], [0, 0, 1, 5], [0, 0, 1, 5], [0, 0, 1, 5]]), Some(2));
    }

    #[test]
    fn the_scratch_folder_is_removed() {
        let base = std::env::temp_dir().join(format!("bf-scratch-test-{}", std::process::id()));
        let dir = {
            let s = Scratch::new(&base).unwrap();
            std::fs::write(s.0.join("f"), b"x").unwrap();
            s.0.clone()
        };
        assert!(!dir.exists());
        let _ = std::fs::remove_dir_all(base);
    }
}
