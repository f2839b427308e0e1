//! Redriving a finished run: a new array over exactly the chunks without a trusted completion
//! marker, through a view, so outputs land where the originals would have and committed chunks
//! are never redone.

use super::record::{ArrayRecord, BatchRecord};
use super::request::SubmitJobRequest;
use super::submit::{lane_requests, request_for, run_file};
use crate::context::Context;
use crate::contract::View;
use crate::error::Result;
use crate::limits;
use crate::manifest;

/// Submits a new array over `chunks` (one per 10,000) of run `run_id`, through views under the
/// run's folder in `output`, adding each array to `record` as it is sent (so a failure midway
/// still leaves what was sent in it). With `dry_run`, only returns the requests. Returns the
/// requests with the chunks each covers.
pub(crate) async fn redrive(
    ctx: &Context,
    run_id: &str,
    manifest: &str,
    output: &str,
    record: &mut BatchRecord,
    chunks: &[u64],
    dry_run: bool,
) -> Result<Vec<(SubmitJobRequest, Vec<u64>)>> {
    let generation = record.arrays.iter().map(|a| a.redrive).max().unwrap_or(0) + 1;
    let mut all = Vec::new();
    if let Some(k) = record.options.max_concurrency.filter(|&k| (k as usize) < chunks.len()) {
        // A capped run is redriven under the same cap: the chunks dealt over K lanes (a cap of
        // at least the chunks to redrive cannot bind: one array then).
        let mut template = record.template.clone();
        template.depends_on.clear();
        let lanes = lane_requests(
            &template,
            manifest,
            chunks,
            k,
            |i| run_file(output, run_id, &format!("redrive-{generation:03}-lane-{i:03}.json")),
            |i| format!("{}-r{generation}-lane-{i}", template.job_name),
        )?;
        for (request, _, _) in &lanes {
            request.check(false)?;
        }
        for (request, lane, view) in lanes {
            if dry_run {
                all.push((request, lane.chunks));
                continue;
            }
            if let Some(view) = &view {
                manifest::write_view(&ctx.stores, &lane.manifest, view).await?;
            }
            let job_id = request.send(ctx).await?;
            record.arrays.push(ArrayRecord {
                job_id,
                job_name: request.job_name.clone(),
                manifest: lane.manifest.clone(),
                size: lane.chunk_count,
                first: 0,
                indices: if view.is_some() { lane.chunks.clone() } else { Vec::new() },
                redrive: generation,
            });
            all.push((request, lane.chunks));
        }
        return Ok(all);
    }
    for (k, slice) in chunks.chunks(limits::MAX_ARRAY_SIZE).enumerate() {
        let view_uri = run_file(output, run_id, &format!("redrive-{generation:03}-{k:03}.json"))?;
        let name = format!("{}-r{generation}-{k}", record.template.job_name);
        let mut request = request_for(&record.template, name, &view_uri, slice.len() as u64);
        request.depends_on.clear();
        request.check(false)?;
        if dry_run {
            all.push((request, slice.to_vec()));
            continue;
        }
        manifest::write_view(&ctx.stores, &view_uri, &View::indices(manifest, slice.to_vec())).await?;
        let job_id = request.send(ctx).await?;
        record.arrays.push(ArrayRecord {
            job_id,
            job_name: request.job_name.clone(),
            manifest: view_uri,
            size: slice.len() as u64,
            first: 0,
            indices: slice.to_vec(),
            redrive: generation,
        });
        all.push((request, slice.to_vec()));
    }
    Ok(all)
}
