//! Watching a run: per-status counts from each parent's `statusSummary` (one DescribeJobs per
//! 100 arrays), and failed children with their reasons.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_batch::types as sdk;

use super::call;
use super::record::BatchRecord;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::limits;
use crate::status::{ArrayStatus, ChunkFailure, Observed, StatusCounts, StatusDetail};

/// Adds `n` children in `status`; a status this release does not know is an error, never
/// silently counted as waiting.
fn add_status(counts: &mut StatusCounts, status: &sdk::JobStatus, n: u64) -> Result<()> {
    let slot = match status {
        sdk::JobStatus::Submitted => &mut counts.submitted,
        sdk::JobStatus::Pending => &mut counts.pending,
        sdk::JobStatus::Runnable => &mut counts.runnable,
        sdk::JobStatus::Starting => &mut counts.starting,
        sdk::JobStatus::Running => &mut counts.running,
        sdk::JobStatus::Succeeded => &mut counts.succeeded,
        sdk::JobStatus::Failed => &mut counts.failed,
        other => {
            return Err(Error::Batch {
                op: "DescribeJobs",
                message: format!(
                    "unknown job status `{}`: this batchfan release does not know it; upgrade batchfan",
                    other.as_str()
                ),
                transient: false,
                source: None,
            });
        }
    };
    *slot += n;
    Ok(())
}

fn counts_of(job: &sdk::JobDetail, size: u64) -> Result<StatusCounts> {
    let unknown = sdk::JobStatus::from("");
    let status = job.status().unwrap_or(&unknown);
    let mut counts = StatusCounts::default();
    match job.array_properties().and_then(|a| a.status_summary()) {
        Some(summary) if size >= 2 => {
            for (s, n) in summary {
                add_status(&mut counts, &sdk::JobStatus::from(s.as_str()), (*n).max(0) as u64)?;
            }
            // Children not yet in the summary are as far as the parent.
            let missing = size.saturating_sub(counts.total());
            let parent_terminal = matches!(status, sdk::JobStatus::Succeeded | sdk::JobStatus::Failed);
            add_status(&mut counts, if parent_terminal { status } else { &sdk::JobStatus::Submitted }, missing)?;
        }
        _ => add_status(&mut counts, status, size)?,
    }
    Ok(counts)
}

/// What AWS Batch says of a run now: per-status counts from each parent's
/// `arrayProperties.statusSummary` (one DescribeJobs per 100 arrays); with `details`, or once
/// every child is terminal, the failed chunks with their reasons too. `committed` (the markers)
/// only feeds the message when Batch counts more succeeded children than there are markers.
pub(crate) async fn observe(
    ctx: &Context,
    run_id: &str,
    record: &BatchRecord,
    committed: &BTreeSet<u64>,
    details: bool,
) -> Result<Observed> {
    let mut described: BTreeMap<String, sdk::JobDetail> = BTreeMap::new();
    for ids in record.arrays.chunks(limits::MAX_DESCRIBE_JOBS_IDS) {
        let ids: Vec<String> = ids.iter().map(|a| a.job_id.clone()).collect();
        let out = call(ctx, "DescribeJobs", |batch| batch.describe_jobs().set_jobs(Some(ids)).send()).await?;
        for job in out.jobs() {
            described.insert(job.job_id().unwrap_or_default().to_string(), job.clone());
        }
    }
    let missing: Vec<&str> =
        record.arrays.iter().map(|a| a.job_id.as_str()).filter(|id| !described.contains_key(*id)).collect();
    if !missing.is_empty() {
        return Err(Error::UnknownRun {
            run: run_id.to_string(),
            reason: format!(
                "AWS Batch does not know job(s) {}: its job history has expired (AWS keeps finished jobs for about 7 days), or AWS_REGION / the account is not the one the run was submitted to",
                missing.join(", ")
            ),
        });
    }
    let mut total = StatusCounts::default();
    let mut arrays = Vec::new();
    for array in &record.arrays {
        let Some(job) = described.get(&array.job_id) else { continue };
        let status = job.status().cloned().unwrap_or_else(|| sdk::JobStatus::from(""));
        let counts = counts_of(job, array.size)?;
        if array.redrive > 0 {
            total.failed = total.failed.saturating_sub(array.size);
        }
        for (t, c) in [
            (&mut total.submitted, counts.submitted),
            (&mut total.pending, counts.pending),
            (&mut total.runnable, counts.runnable),
            (&mut total.starting, counts.starting),
            (&mut total.running, counts.running),
            (&mut total.succeeded, counts.succeeded),
            (&mut total.failed, counts.failed),
        ] {
            *t += c;
        }
        arrays.push(ArrayStatus {
            job_id: array.job_id.clone(),
            job_name: array.job_name.clone(),
            status: status.as_str().to_string(),
            counts,
            redrive: array.redrive,
            // Lanes are named `NAME-lane-N` (`NAME-rR-lane-N` redriven); only a capped run has
            // them, whatever a user's --name says.
            lane: record
                .options
                .max_concurrency
                .and_then(|_| array.job_name.rsplit_once("-lane-"))
                .and_then(|(_, n)| n.parse().ok()),
        });
    }
    let complete = arrays.iter().all(|a| a.counts.is_complete());
    let committed = committed.len() as u64;
    let disagreement = (committed < total.succeeded).then(|| {
        format!(
            "AWS Batch reports {} succeeded but only {} with a completion marker: {} without committing (a program that does not commit through the harness, or markers deleted); their outputs are not there",
            crate::size::count_of(total.succeeded, "child", "children"),
            crate::size::count_of(committed, "chunk", "chunks"),
            crate::size::count_of(total.succeeded - committed, "child", "children")
        )
    });
    let failed = if (details || complete) && total.failed > 0 {
        failed_children(ctx, record, &arrays).await?
    } else {
        Vec::new()
    };
    Ok(Observed { counts: total, complete, failed, detail: StatusDetail::Batch { arrays, disagreement } })
}

/// Lists failed children: `ListJobs(arrayJobId, FAILED)` per array with failures, then
/// DescribeJobs in batches of 100 for attempts, exit code, reason and log stream.
async fn failed_children(ctx: &Context, record: &BatchRecord, arrays: &[ArrayStatus]) -> Result<Vec<ChunkFailure>> {
    let mut latest: BTreeMap<u64, ChunkFailure> = BTreeMap::new();
    for (array, state) in record.arrays.iter().zip(arrays) {
        for chunk in array.chunks() {
            latest.remove(&chunk); // superseded by this later array
        }
        if state.counts.failed == 0 {
            continue;
        }
        let mut summaries: Vec<(String, Option<i32>, Option<String>)> = Vec::new();
        if array.size >= 2 {
            let mut token: Option<String> = None;
            loop {
                let page = call(ctx, "ListJobs", |batch| {
                    batch
                        .list_jobs()
                        .array_job_id(&array.job_id)
                        .job_status(sdk::JobStatus::Failed)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
                for job in page.job_summary_list() {
                    summaries.push((
                        job.job_id().unwrap_or_default().to_string(),
                        job.container().and_then(|c| c.exit_code()),
                        job.status_reason().map(str::to_string),
                    ));
                }
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        } else {
            summaries.push((array.job_id.clone(), None, None));
        }
        // A lane (`--max-concurrency`) runs its children one after another: after a failed child
        // the rest fail without ever starting (no attempt).
        let lane = record.options.max_concurrency.is_some() && array.size >= 2;
        let mut found: Vec<(u64, bool, ChunkFailure)> = Vec::new();
        for batch in summaries.chunks(limits::MAX_DESCRIBE_JOBS_IDS) {
            let ids: Vec<String> = batch.iter().map(|s| s.0.clone()).collect();
            let out = call(ctx, "DescribeJobs", |batch| batch.describe_jobs().set_jobs(Some(ids)).send()).await?;
            let by_id: BTreeMap<&str, &sdk::JobDetail> =
                out.jobs().iter().map(|j| (j.job_id().unwrap_or_default(), j)).collect();
            for (id, exit_code, reason) in batch {
                let child = child_index(id, &array.job_id, array.size)?;
                let Some(chunk) = array.chunk_of(child) else { continue };
                let detail = by_id.get(id.as_str());
                let last = detail.and_then(|d| d.attempts().last()).and_then(|a| a.container());
                let reason = detail
                    .and_then(|d| d.status_reason())
                    .map(str::to_string)
                    .or(reason.clone())
                    .or_else(|| last.and_then(|c| c.reason()).map(str::to_string))
                    .unwrap_or_else(|| "no reason given".into());
                let ran = detail.is_none_or(|d| !d.attempts().is_empty());
                found.push((
                    child,
                    ran,
                    ChunkFailure {
                        index: chunk,
                        attempts: detail.map_or(1, |d| d.attempts().len().max(1) as u32),
                        exit_code: exit_code.or_else(|| last.and_then(|c| c.exit_code())),
                        reason,
                        log: last.and_then(|c| c.log_stream_name()).unwrap_or_default().to_string(),
                        history: detail.map(|d| super::attempt_history(d)).unwrap_or_default(),
                    },
                ));
            }
        }
        for failure in mark_never_ran(found, lane) {
            latest.insert(failure.index, failure);
        }
    }
    Ok(latest.into_values().collect())
}

/// The failed children of one array as `(child, ran, failure)`: in a lane, a child without an
/// attempt never started (AWS Batch failed it after an earlier child of its lane failed, or
/// the lane was cancelled): 0 attempts and a reason saying so.
fn mark_never_ran(found: Vec<(u64, bool, ChunkFailure)>, lane: bool) -> Vec<ChunkFailure> {
    let first_run_failure = found.iter().filter(|(_, ran, _)| *ran).map(|(child, _, f)| (*child, f.index)).min();
    found
        .into_iter()
        .map(|(child, ran, mut failure)| {
            if lane && !ran {
                failure.attempts = 0;
                let earlier = first_run_failure.filter(|(c, _)| *c < child).map(|(_, chunk)| chunk);
                failure.reason = never_ran(earlier, &failure.reason);
            }
            failure
        })
        .collect()
}

/// The reason of a lane's chunk that never started: after `earlier` (the chunk of its lane that
/// failed before it), or else what AWS Batch says (a cancelled run).
fn never_ran(earlier: Option<u64>, reason: &str) -> String {
    match earlier {
        Some(chunk) => format!("never ran: an earlier chunk of its lane failed (chunk {chunk}; AWS Batch: {reason})"),
        None => format!("never ran: its lane stopped before it (AWS Batch: {reason})"),
    }
}

/// The child index of a job id: `<parent>:<index>` for array children, 0 for a plain job. An id
/// that does not parse is an error naming it (never blamed on chunk 0).
fn child_index(id: &str, array_id: &str, size: u64) -> Result<u64> {
    let bad = || Error::Batch {
        op: "ListJobs",
        message: format!("child job id `{id}` of array {array_id} does not end in `:<index>`; cannot tell its chunk"),
        transient: false,
        source: None,
    };
    match id.rsplit_once(':') {
        Some((parent, i)) if parent == array_id => i.parse::<u64>().map_err(|_| bad()),
        None if size < 2 && id == array_id => Ok(0),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Regression (issue 6): a child job id that did not parse was blamed on chunk 0.
    #[test]
    fn child_ids_map_to_indices_or_fail_naming_the_id() {
        assert_eq!(child_index("abc:17", "abc", 20).unwrap(), 17);
        assert_eq!(child_index("plain", "plain", 1).unwrap(), 0);
        for bad in ["abc:x", "abc:", "other:3", "abc"] {
            let err = child_index(bad, "abc", 20).unwrap_err();
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
    }

    // Issue 20: in a SEQUENTIAL lane AWS Batch fails the children after a failed one without
    // starting them; they are reported as never ran, naming the chunk that failed.
    #[test]
    fn children_of_a_lane_after_a_failed_one_never_ran() {
        let failure = |index: u64, reason: &str| ChunkFailure {
            index,
            attempts: 1,
            exit_code: None,
            reason: reason.into(),
            log: String::new(),
            history: Vec::new(),
        };
        // Lane over chunks [1, 4, 7, 10]: child 1 (chunk 4) failed running, children 2 and 3
        // never started.
        let found = vec![
            (1, true, failure(4, "Essential container in task exited")),
            (2, false, failure(7, "Dependent Job failed")),
            (3, false, failure(10, "Dependent Job failed")),
        ];
        let marked = mark_never_ran(found.clone(), true);
        assert_eq!(marked[0], failure(4, "Essential container in task exited"), "the one that ran is as it was");
        for f in &marked[1..] {
            assert_eq!(f.attempts, 0);
            assert_eq!(
                f.reason,
                "never ran: an earlier chunk of its lane failed (chunk 4; AWS Batch: Dependent Job failed)"
            );
        }
        // A cancelled lane: nothing ran before.
        let cancelled = mark_never_ran(vec![(0, false, failure(1, "cancelled by batchfan"))], true);
        assert_eq!(cancelled[0].reason, "never ran: its lane stopped before it (AWS Batch: cancelled by batchfan)");
        // Outside a lane nothing changes.
        let plain: Vec<ChunkFailure> = found.iter().map(|(_, _, f)| f.clone()).collect();
        assert_eq!(mark_never_ran(found, false), plain);
    }

    #[test]
    fn statuses_are_counted_and_unknown_ones_are_errors() {
        let mut counts = StatusCounts::default();
        add_status(&mut counts, &sdk::JobStatus::Running, 3).unwrap();
        add_status(&mut counts, &sdk::JobStatus::from("SUCCEEDED"), 2).unwrap();
        assert_eq!((counts.running, counts.succeeded), (3, 2));
        let err = add_status(&mut counts, &sdk::JobStatus::from("HIBERNATING"), 1).unwrap_err();
        assert!(err.to_string().contains("HIBERNATING"), "{err}");
        assert_eq!(counts.total(), 5, "nothing was counted for the unknown status");
    }
}
