//! Runs on AWS Batch: submit a plan as array jobs, record the run, watch, cancel, redrive.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use aws_sdk_batch::types as sdk;
use bytes::Bytes;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::jobdef::{KeyValue, ResourceRequirementSpec, RetryStrategySpec, TimeoutSpec, active_revisions};
use super::request::{
    ArrayPropertiesSpec, ContainerOverridesSpec, DependencySpec, SubmitJobRequest, retry_on_spot_rules,
};
use super::{call, client};
use crate::error::{Error, Result};
use crate::layout;
use crate::limits;
use crate::local::ENV_MANIFEST;
use crate::manifest::{self, View};
use crate::run::{RunSpec, plan_run, write_run};
use crate::status::{FailedChild, StatusCounts};
use crate::store;
use crate::uri::Location;

/// Exit codes of `batchfan-worker` worth retrying (transient storage error, SIGTERM).
pub const WORKER_RETRYABLE_EXIT_CODES: [i32; 2] = [75, 143];
/// Most chunks one run may have (several arrays of at most 10,000).
pub const MAX_RUN_CHUNKS: usize = 1_000_000;

/// Options of `batchfan submit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubmitOptions {
    /// Job queue.
    pub job_queue: String,
    /// Job definition `NAME[:REVISION]`.
    pub job_definition: String,
    /// Job name (default: the run id).
    pub name: Option<String>,
    /// `--depends-on` entries.
    pub depends_on: Vec<String>,
    /// Chain the arrays of a large run one after another.
    pub sequential: bool,
    /// `retryStrategy.attempts`.
    pub attempts: Option<u32>,
    /// Generate `evaluateOnExit` for Spot reclaims and retryable worker exits.
    pub retry_on_spot: bool,
    /// `timeout.attemptDurationSeconds`.
    pub timeout_seconds: Option<u32>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Propagate tags to ECS tasks.
    pub propagate_tags: bool,
    /// Fair-share identifier.
    pub share_identifier: Option<String>,
    /// Scheduling priority override.
    pub priority: Option<i32>,
    /// Extra environment for the children.
    pub env: Vec<(String, String)>,
    /// vCPU override.
    pub vcpu: Option<f64>,
    /// Memory override (MiB).
    pub memory: Option<u32>,
}

impl SubmitOptions {
    /// The request every array of the run shares (name, size and manifest filled in per array).
    pub fn template(&self, run_id: &str) -> Result<SubmitJobRequest> {
        let mut depends_on = Vec::new();
        for d in &self.depends_on {
            depends_on.push(DependencySpec::parse(d)?);
        }
        let retry_strategy = (self.attempts.is_some() || self.retry_on_spot).then(|| RetryStrategySpec {
            attempts: self.attempts.map(|a| a as i32),
            evaluate_on_exit: if self.retry_on_spot {
                retry_on_spot_rules(&WORKER_RETRYABLE_EXIT_CODES)
            } else {
                vec![]
            },
        });
        if self.retry_on_spot && self.attempts.is_none_or(|a| a < 2) {
            return Err(Error::option(
                "--retry-on-spot",
                "with --attempts < 2",
                "give --attempts 2 or more so there is a retry",
            ));
        }
        let mut resource_requirements = Vec::new();
        if let Some(vcpu) = self.vcpu {
            resource_requirements.push(ResourceRequirementSpec { kind: "VCPU".into(), value: format!("{vcpu}") });
        }
        if let Some(memory) = self.memory {
            resource_requirements.push(ResourceRequirementSpec { kind: "MEMORY".into(), value: memory.to_string() });
        }
        let mut environment: Vec<KeyValue> =
            self.env.iter().map(|(k, v)| KeyValue { name: k.clone(), value: v.clone() }).collect();
        if environment.iter().any(|kv| kv.name == ENV_MANIFEST) {
            return Err(Error::option("--env", ENV_MANIFEST, "is set by batchfan; do not pass it"));
        }
        environment.push(KeyValue { name: ENV_MANIFEST.into(), value: String::new() });
        Ok(SubmitJobRequest {
            job_name: self.name.clone().unwrap_or_else(|| run_id.to_string()),
            job_queue: self.job_queue.clone(),
            job_definition: self.job_definition.clone(),
            array_properties: None,
            depends_on,
            container_overrides: Some(ContainerOverridesSpec { environment, resource_requirements }),
            retry_strategy,
            timeout: self.timeout_seconds.map(|s| TimeoutSpec { attempt_duration_seconds: s as i32 }),
            tags: self.tags.clone(),
            propagate_tags: self.propagate_tags.then_some(true),
            share_identifier: self.share_identifier.clone(),
            scheduling_priority_override: self.priority,
        })
    }

    fn fargate_hint(&self) -> bool {
        self.vcpu.is_some_and(|v| v.fract() != 0.0)
    }
}

/// A request for a set of chunks: `first..first+count`, or explicit `indices`.
fn request_for(template: &SubmitJobRequest, name: String, manifest: &str, size: u64) -> SubmitJobRequest {
    let mut request = template.clone();
    request.job_name = name;
    request.array_properties = (size >= 2).then_some(ArrayPropertiesSpec { size: size as i32 });
    if let Some(overrides) = request.container_overrides.as_mut() {
        for kv in overrides.environment.iter_mut().filter(|kv| kv.name == ENV_MANIFEST) {
            kv.value = manifest.to_string();
        }
    }
    request
}

/// One array (or plain job) of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayRecord {
    /// Job id (empty in a dry run).
    pub job_id: String,
    /// Job name.
    pub job_name: String,
    /// The manifest or view its children read.
    pub manifest: String,
    /// Children (1 for a plain job).
    pub size: u64,
    /// First chunk, when `indices` is empty.
    pub first: u64,
    /// Explicit chunks (redrives).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indices: Vec<u64>,
    /// 0 for the original submission, n for the n-th redrive.
    pub redrive: u32,
}

impl ArrayRecord {
    /// The chunk child `child` processes.
    pub fn chunk_of(&self, child: u64) -> Option<u64> {
        if child >= self.size {
            None
        } else if self.indices.is_empty() {
            Some(self.first + child)
        } else {
            self.indices.get(child as usize).copied()
        }
    }

    fn chunks(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.size).filter_map(|c| self.chunk_of(c))
    }
}

/// Everything needed to find a run again: written next to the manifest as `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run id.
    pub run_id: String,
    /// Where this record is.
    pub record_uri: String,
    /// The manifest.
    pub manifest: String,
    /// Output location.
    pub output: String,
    /// Chunks in the plan.
    pub chunk_count: u64,
    /// When submitted (ms since the epoch).
    pub created_unix_ms: u64,
    /// The arrays, in submission order (redrives last).
    pub arrays: Vec<ArrayRecord>,
    /// The request every array was made from (redrives reuse it).
    pub template: SubmitJobRequest,
    /// The submit options as given.
    pub options: SubmitOptions,
}

/// What `submit` will send (all of it, for `--dry-run`) or sent.
#[derive(Debug, Clone, Serialize)]
pub struct SubmitPlan {
    /// The run id.
    pub run_id: String,
    /// The manifest URI.
    pub manifest: String,
    /// The run record URI.
    pub record_uri: String,
    /// Chunks.
    pub chunk_count: u64,
    /// Items.
    pub item_count: u64,
    /// Views written for runs of several arrays.
    pub views: Vec<(String, View)>,
    /// The SubmitJob requests, in order.
    pub requests: Vec<SubmitJobRequest>,
}

fn sibling(uri: &str, name: &str) -> Result<String> {
    let (dir, _) = Location::parse_file(uri)?;
    Ok(dir.join_display(name))
}

/// Builds (and checks) every request of a run of `chunk_count` chunks.
pub fn plan_submit(options: &SubmitOptions, run_id: &str, manifest: &str, chunk_count: u64) -> Result<SubmitPlan> {
    let template = options.template(run_id)?;
    let arrays = chunk_count.div_ceil(limits::MAX_ARRAY_SIZE as u64);
    let mut views = Vec::new();
    let mut requests = Vec::new();
    for k in 0..arrays {
        let first = k * limits::MAX_ARRAY_SIZE as u64;
        let count = (chunk_count - first).min(limits::MAX_ARRAY_SIZE as u64);
        let (name, uri) = if arrays == 1 {
            (template.job_name.clone(), manifest.to_string())
        } else {
            let uri = sibling(manifest, &format!("array-{k:03}.json"))?;
            views.push((uri.clone(), View::range(manifest, first, count)));
            (format!("{}-{k}", template.job_name), uri)
        };
        let mut request = request_for(&template, name, &uri, count);
        if options.sequential && k > 0 {
            // Filled with the previous array's job id at submission.
            request.depends_on.push(DependencySpec {
                job_id: Some(format!("<job id of {}-{}>", template.job_name, k - 1)),
                kind: None,
            });
        }
        request.check(options.fargate_hint())?;
        requests.push(request);
    }
    Ok(SubmitPlan {
        run_id: run_id.to_string(),
        manifest: manifest.to_string(),
        record_uri: sibling(manifest, "run.json")?,
        chunk_count,
        item_count: 0,
        views,
        requests,
    })
}

/// Plans `spec`, writes the manifest (and views) to S3, submits one array job per 10,000 chunks
/// (a plain job for a single chunk), and writes the run record. With `dry_run` nothing is
/// written or sent: the plan and the exact requests are returned.
pub async fn submit(spec: &RunSpec, options: &SubmitOptions, dry_run: bool) -> Result<(SubmitPlan, Option<RunRecord>)> {
    for (field, location) in [("--input", &spec.input), ("--output", &spec.output)] {
        if !location.is_s3() {
            return Err(Error::option(
                field,
                location,
                "AWS Batch children cannot read local paths: give an s3:// location",
            ));
        }
    }
    if let Some(m) = &spec.manifest
        && !m.starts_with("s3://")
    {
        return Err(Error::option("--manifest", m, "AWS Batch children cannot read local paths: give an s3:// URI"));
    }
    // Everything that does not need the listing is checked before it.
    plan_submit(options, "bf-check", "s3://check-bucket/m.jsonl", 2)?;
    let mut spec = spec.clone();
    spec.options.max_chunks = MAX_RUN_CHUNKS;
    let planned = plan_run(&spec).await?;
    let chunk_count = planned.plan.chunks.len() as u64;
    let mut plan = plan_submit(options, &planned.run_id, &planned.manifest_uri, chunk_count)?;
    plan.item_count = planned.plan.items.len() as u64;
    if (options.vcpu.is_some() || options.memory.is_some()) && !dry_run && is_fargate(&options.job_definition).await? {
        for request in &plan.requests {
            request.check(true)?;
        }
    }
    if dry_run {
        return Ok((plan, None));
    }
    let prepared = write_run(planned, spec.overwrite).await?;
    for (uri, view) in &plan.views {
        manifest::write_view(uri, view).await?;
    }
    let mut record = RunRecord {
        run_id: plan.run_id.clone(),
        record_uri: plan.record_uri.clone(),
        manifest: prepared.manifest_uri.clone(),
        output: prepared.manifest.header().output.clone(),
        chunk_count,
        created_unix_ms: layout::now_ms(),
        arrays: Vec::new(),
        template: options.template(&plan.run_id)?,
        options: options.clone(),
    };
    let mut previous: Option<String> = None;
    for (k, request) in plan.requests.iter_mut().enumerate() {
        if options.sequential
            && let (Some(prev), Some(dep)) = (&previous, request.depends_on.last_mut())
        {
            dep.job_id = Some(prev.clone());
        }
        let job_id = request.send().await?;
        let first = k as u64 * limits::MAX_ARRAY_SIZE as u64;
        let size = request.array_properties.map_or(1, |a| a.size as u64);
        let manifest = plan.views.get(k).map_or(prepared.manifest_uri.clone(), |(uri, _)| uri.clone());
        record.arrays.push(ArrayRecord {
            job_id: job_id.clone(),
            job_name: request.job_name.clone(),
            manifest,
            size,
            first,
            indices: Vec::new(),
            redrive: 0,
        });
        previous = Some(job_id);
        // Saved after every array: a failure midway still leaves a record of what was submitted.
        save_run(&record).await?;
    }
    Ok((plan, Some(record)))
}

async fn is_fargate(definition: &str) -> Result<bool> {
    let (name, revision) = match definition.rsplit_once(':') {
        Some((n, r)) if r.chars().all(|c| c.is_ascii_digit()) && !n.contains(':') => (n, r.parse::<i32>().ok()),
        _ => (definition, None),
    };
    let found = active_revisions(name)
        .await?
        .into_iter()
        .filter(|d| revision.is_none_or(|r| d.revision() == Some(r)))
        .max_by_key(|d| d.revision().unwrap_or(0));
    match found {
        Some(d) => Ok(d.platform_capabilities().contains(&sdk::PlatformCapability::Fargate)),
        None => Err(Error::BatchRejected {
            op: "DescribeJobDefinitions",
            message: format!("job definition `{definition}` is not ACTIVE; register it first"),
        }),
    }
}

fn registry_dir() -> PathBuf {
    match std::env::var_os("BATCHFAN_HOME") {
        Some(home) => PathBuf::from(home),
        None => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir).join(".batchfan"),
    }
    .join("runs")
}

/// Writes the run record next to the manifest, and notes its URI locally under the run id
/// (`$BATCHFAN_HOME/runs/RUN`, default `~/.batchfan`) so commands can take the bare run id.
pub async fn save_run(record: &RunRecord) -> Result<()> {
    let body = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::Manifest { uri: record.record_uri.clone(), reason: e.to_string() })?;
    let (dir, name) = Location::parse_file(&record.record_uri)?;
    store::open(&dir).await?.put(&name, Bytes::from(body)).await?;
    let registry = registry_dir();
    // The local note is a convenience: the record URI works without it.
    if std::fs::create_dir_all(&registry).is_ok() {
        let _ = std::fs::write(registry.join(&record.run_id), &record.record_uri);
    }
    Ok(())
}

/// Finds a run by id (from the local note) or by URI: the record, its folder, the manifest, or
/// an output location (its newest run under `_batchfan/runs/`, as run ids sort by time).
pub async fn find_run(run: &str) -> Result<RunRecord> {
    let unknown = |reason: String| Error::UnknownRun { run: run.to_string(), reason };
    let (uri, folder) = if run.starts_with("s3://") {
        if run.ends_with(".json") && !run.ends_with("/manifest.jsonl") {
            (run.to_string(), None)
        } else {
            let folder = run.strip_suffix("manifest.jsonl").unwrap_or(run).trim_end_matches('/');
            (format!("{folder}/run.json"), Some(folder))
        }
    } else {
        limits::check_name("RUN", run)?;
        let uri = std::fs::read_to_string(registry_dir().join(run)).map(|s| s.trim().to_string()).map_err(|_| {
            unknown(format!(
                "not submitted from this machine (no {}); give the run record's S3 URI printed by `batchfan submit`, or the run's output location",
                registry_dir().join(run).display()
            ))
        })?;
        (uri, None)
    };
    if let Some(record) = read_record(run, &uri).await? {
        return Ok(record);
    }
    let Some(folder) = folder else {
        return Err(unknown(format!("no run record at {uri}")));
    };
    // An output location: its newest run. Ids sort by their second; within one, by the record.
    let runs = Location::parse(&format!("{folder}/{}/runs/", layout::META_DIR))?;
    let ids: Vec<String> = store::open(&runs)
        .await?
        .list("")
        .try_filter_map(|meta| async move { Ok(meta.key.strip_suffix("/run.json").map(str::to_string)) })
        .try_collect()
        .await?;
    let second = |id: &str| id.rsplit_once('-').map_or(id.to_string(), |(head, _)| head.to_string());
    let latest = ids.iter().map(|id| second(id)).max();
    let mut newest: Option<RunRecord> = None;
    for id in ids.iter().filter(|id| Some(second(id)) == latest) {
        if let Some(record) = read_record(run, &runs.join_display(&format!("{id}/run.json"))).await?
            && newest.as_ref().is_none_or(|n| (record.created_unix_ms, &record.run_id) > (n.created_unix_ms, &n.run_id))
        {
            newest = Some(record);
        }
    }
    newest.ok_or_else(|| unknown(format!("no run record at {uri}, and no run under {}", runs.join_display(""))))
}

/// The run record at `uri`, or `None` when there is none.
async fn read_record(run: &str, uri: &str) -> Result<Option<RunRecord>> {
    let (dir, name) = Location::parse_file(uri)?;
    let store = store::open(&dir).await?;
    let bytes = match store::read_all(store.as_ref(), &name, None, None).await {
        Err(Error::NotFound { .. }) => return Ok(None),
        other => other?,
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::UnknownRun { run: run.to_string(), reason: format!("{uri} is not a run record ({e})") })
}

/// One array's state.
#[derive(Debug, Clone, Serialize)]
pub struct ArrayStatus {
    /// Job id.
    pub job_id: String,
    /// Job name.
    pub job_name: String,
    /// The parent's status.
    pub status: String,
    /// Children per status.
    pub counts: StatusCounts,
    /// Redrive generation.
    pub redrive: u32,
}

/// A run's state from one DescribeJobs call per 100 arrays.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    /// The run id.
    pub run_id: String,
    /// Chunks per status (a redriven chunk counts once, by its latest attempt).
    pub counts: StatusCounts,
    /// Per array.
    pub arrays: Vec<ArrayStatus>,
    /// True when every child is terminal.
    pub complete: bool,
}

fn add_status(counts: &mut StatusCounts, status: &str, n: u64) {
    match status {
        "SUBMITTED" => counts.submitted += n,
        "PENDING" => counts.pending += n,
        "RUNNABLE" => counts.runnable += n,
        "STARTING" => counts.starting += n,
        "RUNNING" => counts.running += n,
        "SUCCEEDED" => counts.succeeded += n,
        "FAILED" => counts.failed += n,
        _ => counts.submitted += n,
    }
}

fn counts_of(job: &sdk::JobDetail, size: u64) -> StatusCounts {
    let status = job.status().map(|s| s.as_str().to_string()).unwrap_or_default();
    let mut counts = StatusCounts::default();
    match job.array_properties().and_then(|a| a.status_summary()) {
        Some(summary) if size >= 2 => {
            for (s, n) in summary {
                add_status(&mut counts, s, (*n).max(0) as u64);
            }
            // Children not yet in the summary are as far as the parent.
            let missing = size.saturating_sub(counts.total());
            let parent_terminal = status == "SUCCEEDED" || status == "FAILED";
            add_status(&mut counts, if parent_terminal { &status } else { "SUBMITTED" }, missing);
        }
        _ => add_status(&mut counts, &status, size),
    }
    counts
}

/// The run's progress, from each parent's `arrayProperties.statusSummary`.
pub async fn run_status(record: &RunRecord) -> Result<RunStatus> {
    let client = client().await;
    let mut details: BTreeMap<String, sdk::JobDetail> = BTreeMap::new();
    for ids in record.arrays.chunks(limits::MAX_DESCRIBE_JOBS_IDS) {
        let ids: Vec<String> = ids.iter().map(|a| a.job_id.clone()).collect();
        let out = call("DescribeJobs", || client.describe_jobs().set_jobs(Some(ids.clone())).send()).await?;
        for job in out.jobs() {
            details.insert(job.job_id().unwrap_or_default().to_string(), job.clone());
        }
    }
    let mut total = StatusCounts::default();
    let mut arrays = Vec::new();
    for array in &record.arrays {
        let (status, counts) = match details.get(&array.job_id) {
            Some(job) => (job.status().map(|s| s.as_str().to_string()).unwrap_or_default(), counts_of(job, array.size)),
            None => ("UNKNOWN".to_string(), StatusCounts { submitted: array.size, ..Default::default() }),
        };
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
            status,
            counts,
            redrive: array.redrive,
        });
    }
    let complete = arrays.iter().all(|a| a.counts.is_complete());
    Ok(RunStatus { run_id: record.run_id.clone(), counts: total, arrays, complete })
}

/// Failed chunks of a run with what Batch says about them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FailedChildren {
    /// One entry per failed chunk (by its latest attempt), sorted by chunk index.
    pub children: Vec<FailedChild>,
}

/// Lists failed children: `ListJobs(arrayJobId, FAILED)` per array with failures, then
/// DescribeJobs in batches of 100 for attempts, exit code, reason and log stream.
pub async fn failed_children(record: &RunRecord, status: &RunStatus) -> Result<FailedChildren> {
    let client = client().await;
    let mut latest: BTreeMap<u64, FailedChild> = BTreeMap::new();
    for (array, state) in record.arrays.iter().zip(&status.arrays) {
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
                let page = call("ListJobs", || {
                    client
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
        for batch in summaries.chunks(limits::MAX_DESCRIBE_JOBS_IDS) {
            let ids: Vec<String> = batch.iter().map(|s| s.0.clone()).collect();
            let out = call("DescribeJobs", || client.describe_jobs().set_jobs(Some(ids.clone())).send()).await?;
            let by_id: BTreeMap<&str, &sdk::JobDetail> =
                out.jobs().iter().map(|j| (j.job_id().unwrap_or_default(), j)).collect();
            for (id, exit_code, reason) in batch {
                let child = match id.rsplit_once(':') {
                    Some((_, i)) => i.parse::<u64>().unwrap_or(0),
                    None => 0,
                };
                let Some(chunk) = array.chunk_of(child) else { continue };
                let detail = by_id.get(id.as_str());
                let last = detail.and_then(|d| d.attempts().last()).and_then(|a| a.container());
                let reason = detail
                    .and_then(|d| d.status_reason())
                    .map(str::to_string)
                    .or(reason.clone())
                    .or_else(|| last.and_then(|c| c.reason()).map(str::to_string))
                    .unwrap_or_else(|| "no reason given".into());
                latest.insert(
                    chunk,
                    FailedChild {
                        index: chunk,
                        attempts: detail.map_or(1, |d| d.attempts().len().max(1) as u32),
                        exit_code: exit_code.or_else(|| last.and_then(|c| c.exit_code())),
                        reason,
                        log: last.and_then(|c| c.log_stream_name()).unwrap_or_default().to_string(),
                    },
                );
            }
        }
    }
    Ok(FailedChildren { children: latest.into_values().collect() })
}

/// Polls [`run_status`] every `interval` until every child is terminal, calling `on_poll` with
/// each status.
pub async fn wait(
    record: &RunRecord,
    interval: std::time::Duration,
    on_poll: &(dyn Fn(&RunStatus) + Send + Sync),
) -> Result<RunStatus> {
    loop {
        let status = run_status(record).await?;
        on_poll(&status);
        if status.complete {
            return Ok(status);
        }
        tokio::time::sleep(interval).await;
    }
}

/// Terminates every array of the run (running children are stopped, pending ones cancelled).
pub async fn cancel(record: &RunRecord, reason: &str) -> Result<Vec<String>> {
    let client = client().await;
    let mut done = Vec::new();
    for array in &record.arrays {
        call("TerminateJob", || client.terminate_job().job_id(&array.job_id).reason(reason).send()).await?;
        done.push(array.job_id.clone());
    }
    Ok(done)
}

/// Submits a new array over exactly the failed chunks of a finished run; outputs land where the
/// originals would have and committed chunks are never redone. Returns the requests (one per
/// 10,000 failed chunks) with the chunks each covers; empty when nothing failed.
pub async fn redrive(record: &mut RunRecord, dry_run: bool) -> Result<Vec<(SubmitJobRequest, Vec<u64>)>> {
    let status = run_status(record).await?;
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
    let failed = failed_children(record, &status).await?;
    let indices: BTreeSet<u64> = failed.children.iter().map(|f| f.index).collect();
    let generation = record.arrays.iter().map(|a| a.redrive).max().unwrap_or(0) + 1;
    let indices: Vec<u64> = indices.into_iter().collect();
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
        manifest::write_view(&view_uri, &View::indices(&record.manifest, slice.to_vec())).await?;
        let job_id = request.send().await?;
        record.arrays.push(ArrayRecord {
            job_id,
            job_name: request.job_name.clone(),
            manifest: view_uri,
            size: slice.len() as u64,
            first: 0,
            indices: slice.to_vec(),
            redrive: generation,
        });
        save_run(record).await?;
        all.push((request, slice.to_vec()));
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> SubmitOptions {
        SubmitOptions { job_queue: "q".into(), job_definition: "wc:1".into(), ..Default::default() }
    }

    #[test]
    fn one_array_up_to_10000_chunks_then_several() {
        let plan = plan_submit(&options(), "bf-x", "s3://bkt/o/m.jsonl", 10_000).unwrap();
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].array_properties.unwrap().size, 10_000);
        let plan = plan_submit(&options(), "bf-x", "s3://bkt/o/m.jsonl", 1).unwrap();
        assert!(plan.requests[0].array_properties.is_none(), "one chunk is a plain job");
        let plan = plan_submit(&SubmitOptions { sequential: true, ..options() }, "bf-x", "s3://bkt/o/m.jsonl", 25_001)
            .unwrap();
        let sizes: Vec<_> = plan.requests.iter().map(|r| r.array_properties.map_or(1, |a| a.size)).collect();
        assert_eq!(sizes, vec![10_000, 10_000, 5_001]);
        assert_eq!(plan.views[2].1, View::range("s3://bkt/o/m.jsonl", 20_000, 5_001));
        assert_eq!(plan.requests[1].depends_on.len(), 1);
        let env = &plan.requests[2].container_overrides.as_ref().unwrap().environment;
        assert!(env.iter().any(|kv| kv.name == ENV_MANIFEST && kv.value == "s3://bkt/o/array-002.json"));
        assert_eq!(plan.record_uri, "s3://bkt/o/run.json");
    }

    #[test]
    fn options_are_checked() {
        let bad = [
            SubmitOptions { attempts: Some(11), ..options() },
            SubmitOptions { retry_on_spot: true, ..options() },
            SubmitOptions { timeout_seconds: Some(59), ..options() },
            SubmitOptions { priority: Some(10_000), ..options() },
            SubmitOptions { name: Some("bad name".into()), ..options() },
            SubmitOptions { depends_on: (0..21).map(|i| format!("job{i}")).collect(), ..options() },
            SubmitOptions { vcpu: Some(0.25), memory: Some(4096), ..options() },
            SubmitOptions { env: vec![("BIG".into(), "x".repeat(9000))], ..options() },
            SubmitOptions { job_queue: String::new(), ..options() },
        ];
        for o in bad {
            let err = plan_submit(&o, "bf-x", "s3://bkt/m.jsonl", 5).unwrap_err();
            assert!(err.is_bad_input(), "{o:?}: {err}");
        }
        let spot = plan_submit(
            &SubmitOptions { retry_on_spot: true, attempts: Some(3), ..options() },
            "bf-x",
            "s3://bkt/m.jsonl",
            5,
        )
        .unwrap();
        assert_eq!(spot.requests[0].retry_strategy.as_ref().unwrap().evaluate_on_exit.len(), 4);
    }

    #[test]
    fn array_records_map_children_to_chunks() {
        let a = ArrayRecord {
            job_id: "j".into(),
            job_name: "n".into(),
            manifest: "m".into(),
            size: 3,
            first: 10_000,
            indices: vec![],
            redrive: 0,
        };
        assert_eq!(a.chunk_of(2), Some(10_002));
        assert_eq!(a.chunk_of(3), None);
        let r = ArrayRecord { indices: vec![4, 9], size: 2, ..a };
        assert_eq!(r.chunks().collect::<Vec<_>>(), vec![4, 9]);
    }
}
