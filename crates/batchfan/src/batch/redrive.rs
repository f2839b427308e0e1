//! Redriving a finished run: a new array over exactly its failed chunks, through a view, so
//! outputs land where the originals would have and committed chunks are never redone.

use std::collections::BTreeSet;

use super::record::{ArrayRecord, RunRecord, save_run};
use super::request::SubmitJobRequest;
use super::status::{failed_children, run_status};
use super::submit::{request_for, sibling};
use crate::client::Client;
use crate::contract::View;
use crate::error::{Error, Result};
use crate::limits;
use crate::manifest;

/// Submits a new array over exactly the failed chunks of a finished run; outputs land where the
/// originals would have and committed chunks are never redone. Returns the requests (one per
/// 10,000 failed chunks) with the chunks each covers; empty when nothing failed.
pub async fn redrive(
    client: &Client,
    record: &mut RunRecord,
    dry_run: bool,
) -> Result<Vec<(SubmitJobRequest, Vec<u64>)>> {
    let status = run_status(client, record).await?;
    if !status.complete {
        return Err(Error::option(
            "RUN",
            &record.run_id,
            format!(
                "still has {} unfinished children: wait for it (`batchfan wait`) before redriving",
                status.counts.total() - status.counts.terminal()
            ),
        ));
    }
    let failed = failed_children(client, record, &status).await?;
    let indices: BTreeSet<u64> = failed.children.iter().map(|f| f.index).collect();
    let generation = record.arrays.iter().map(|a| a.redrive).max().unwrap_or(0) + 1;
    let indices: Vec<u64> = indices.into_iter().collect();
    if !dry_run && !indices.is_empty() {
        // The redriven children commit only while the run holds its output again.
        crate::claim::retake(client, &record.output, &record.run_id).await?;
    }
    let sent = send_redrive(client, record, &indices, generation, dry_run).await;
    if !dry_run && !indices.is_empty() {
        let started = record.arrays.iter().any(|a| a.redrive == generation);
        crate::claim::hand_over(client, &record.output, &record.run_id, started).await?;
    }
    sent
}

async fn send_redrive(
    client: &Client,
    record: &mut RunRecord,
    indices: &[u64],
    generation: u32,
    dry_run: bool,
) -> Result<Vec<(SubmitJobRequest, Vec<u64>)>> {
    let mut all = Vec::new();
    for (k, slice) in indices.chunks(limits::MAX_ARRAY_SIZE).enumerate() {
        let view_uri = sibling(&record.manifest, &format!("redrive-{generation:03}-{k:03}.json"))?;
        let name = format!("{}-r{generation}-{k}", record.template.job_name);
        let mut request = request_for(&record.template, name, &view_uri, slice.len() as u64);
        request.depends_on.clear();
        request.check(false)?;
        if dry_run {
            all.push((request, slice.to_vec()));
            continue;
        }
        manifest::write_view(client, &view_uri, &View::indices(&record.manifest, slice.to_vec())).await?;
        let job_id = request.send(client).await?;
        record.arrays.push(ArrayRecord {
            job_id,
            job_name: request.job_name.clone(),
            manifest: view_uri,
            size: slice.len() as u64,
            first: 0,
            indices: slice.to_vec(),
            redrive: generation,
        });
        save_run(client, record).await?;
        all.push((request, slice.to_vec()));
    }
    Ok(all)
}
