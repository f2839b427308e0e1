//! Submitting a plan as AWS Batch array jobs: one array per 10,000 chunks, every request
//! checked before the first is sent.

use std::collections::BTreeMap;

use aws_sdk_batch::types as sdk;
use serde::{Deserialize, Serialize};

use super::jobdef::{KeyValue, ResourceRequirementSpec, RetryStrategySpec, TimeoutSpec, describe_definition};
use super::record::ArrayRecord;
use super::request::{
    ArrayPropertiesSpec, ContainerOverridesSpec, DependencySpec, SubmitJobRequest, retry_on_spot_rules,
};
use crate::context::Context;
use crate::contract::{META_DIR, RUN_RECORD_NAME, View, env, exit};
use crate::error::{Error, Result};
use crate::limits;
use crate::manifest;
use crate::prepare::{PlannedRun, RunSpec, plan_run};
use crate::uri::Location;

/// Most chunks one run may have (several arrays of at most 10,000).
pub const MAX_RUN_CHUNKS: usize = 1_000_000;

/// Options of `batchfan submit`. A run record keeps them as given; every field has a default,
/// so a record written before an option existed still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
    /// `--max-concurrency K`: at most K children run at once. The chunks are dealt
    /// round-robin over K arrays ("lanes", through views), each with a `SEQUENTIAL` dependency
    /// so its children run one after another; a redrive deals its chunks over the same cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
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
    /// The cost estimate made before the submit (`submit --estimate`); the run report carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<crate::price::Estimate>,
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
            evaluate_on_exit: if self.retry_on_spot { retry_on_spot_rules(&exit::RETRYABLE) } else { vec![] },
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
        if environment.iter().any(|kv| kv.name == env::MANIFEST) {
            return Err(Error::option("--env", env::MANIFEST, "is set by batchfan; do not pass it"));
        }
        environment.push(KeyValue { name: env::MANIFEST.into(), value: String::new() });
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
pub(super) fn request_for(template: &SubmitJobRequest, name: String, manifest: &str, size: u64) -> SubmitJobRequest {
    let mut request = template.clone();
    request.job_name = name;
    request.array_properties = (size >= 2).then_some(ArrayPropertiesSpec { size: size as i32 });
    if let Some(overrides) = request.container_overrides.as_mut() {
        for kv in overrides.environment.iter_mut().filter(|kv| kv.name == env::MANIFEST) {
            kv.value = manifest.to_string();
        }
    }
    request
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
    /// `--max-concurrency`: the lanes, one per request (empty without a cap).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lanes: Vec<Lane>,
}

/// One lane of a run capped with `--max-concurrency`: an array whose children run one after
/// another (`SEQUENTIAL`), over chunks `lane`, `lane + K`, `lane + 2K`, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lane {
    /// Lane number, from 0.
    pub lane: u32,
    /// Its job name.
    pub job_name: String,
    /// Chunks it runs.
    pub chunk_count: u64,
    /// Its first chunks (at most [`LANE_FIRST_CHUNKS`]), in the order they run.
    pub first_chunks: Vec<u64>,
    /// `SEQUENTIAL` for a lane of several chunks; absent for a lane of one chunk (a plain job).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependency: Option<String>,
    /// The manifest or view its children read.
    pub manifest: String,
    /// Every chunk, in order (kept for the run record; not printed).
    #[serde(skip)]
    pub chunks: Vec<u64>,
}

/// How many of a lane's chunks a dry run prints.
pub const LANE_FIRST_CHUNKS: usize = 5;

/// `SEQUENTIAL`: an array job's children run one after another.
const SEQUENTIAL: &str = "SEQUENTIAL";

/// Deals `chunks` round-robin over `min(k, chunks.len())` lanes: lane `i` gets the chunks at
/// positions `i`, `i + k`, `i + 2k`, ... (a `k` of 0, from a hand-edited record, is 1).
pub(super) fn deal(chunks: &[u64], k: u32) -> Vec<Vec<u64>> {
    let lanes = (k.max(1) as usize).min(chunks.len());
    let mut out = vec![Vec::new(); lanes];
    for (position, &chunk) in chunks.iter().enumerate() {
        out[position % lanes].push(chunk);
    }
    out
}

/// Checks `--max-concurrency` against the other options and `chunk_count` (bad input before
/// anything is written or sent).
fn check_max_concurrency(options: &SubmitOptions, k: u32, chunk_count: u64) -> Result<()> {
    if k == 0 {
        return Err(Error::option("--max-concurrency", k, "give 1 or more: the most children that run at once"));
    }
    if options.sequential {
        return Err(Error::option(
            "--max-concurrency",
            k,
            "not with --sequential: --sequential chains whole arrays one after another, --max-concurrency runs K lanes side by side; give one of them (--max-concurrency 1 runs every chunk one after another)",
        ));
    }
    if options.depends_on.iter().any(|d| d.eq_ignore_ascii_case(SEQUENTIAL)) {
        return Err(Error::option(
            "--depends-on",
            SEQUENTIAL,
            "not with --max-concurrency: each lane already depends SEQUENTIAL; drop --depends-on SEQUENTIAL",
        ));
    }
    // A lane's child i is chunk `lane + K*i`: paired child by child with another array it
    // would wait for the wrong chunk.
    if let Some(d) = options.depends_on.iter().find(|d| {
        d.rsplit_once(':')
            .is_some_and(|(_, kind)| kind.eq_ignore_ascii_case("N_TO_N") || kind.eq_ignore_ascii_case(SEQUENTIAL))
    }) {
        return Err(Error::option(
            "--depends-on",
            d,
            "not with --max-concurrency: a lane's children are every K-th chunk, so they cannot pair child by child with another array; depend on the whole job (JOB without :TYPE)",
        ));
    }
    if options.depends_on.len() >= limits::MAX_DEPENDS_ON {
        return Err(Error::option(
            "--depends-on",
            format!("{} entries", options.depends_on.len()),
            format!(
                "at most {} with --max-concurrency: each lane adds its own SEQUENTIAL dependency ({} in all)",
                limits::MAX_DEPENDS_ON - 1,
                limits::MAX_DEPENDS_ON
            ),
        ));
    }
    let most = u64::from(k) * limits::MAX_ARRAY_SIZE as u64;
    if chunk_count > most {
        return Err(Error::option(
            "--max-concurrency",
            k,
            format!(
                "{chunk_count} chunks do not fit in {k} lane(s) of at most {} children each: give --max-concurrency {} or more, or pack more per chunk (--max-items-per-chunk, --max-bytes-per-chunk, --children)",
                limits::MAX_ARRAY_SIZE,
                chunk_count.div_ceil(limits::MAX_ARRAY_SIZE as u64)
            ),
        ));
    }
    Ok(())
}

/// The requests of lanes over `chunks`: one array per lane (a plain job for a lane of one
/// chunk), each reading a view `view_name(lane)` under the run's folder (the manifest itself
/// when there is one lane over every chunk in order), named `name_of(lane)`.
pub(super) fn lane_requests(
    template: &SubmitJobRequest,
    manifest: &str,
    chunks: &[u64],
    k: u32,
    mut view_uri: impl FnMut(usize) -> Result<String>,
    mut name_of: impl FnMut(usize) -> String,
) -> Result<Vec<(SubmitJobRequest, Lane, Option<View>)>> {
    let dealt = deal(chunks, k);
    let whole = dealt.len() == 1 && chunks.iter().enumerate().all(|(i, &c)| c == i as u64);
    let mut out = Vec::new();
    for (i, lane_chunks) in dealt.into_iter().enumerate() {
        let (uri, view) = if whole {
            (manifest.to_string(), None)
        } else {
            (view_uri(i)?, Some(View::indices(manifest, lane_chunks.clone())))
        };
        let size = lane_chunks.len() as u64;
        let mut request = request_for(template, name_of(i), &uri, size);
        let dependency = (size >= 2).then(|| SEQUENTIAL.to_string());
        if let Some(kind) = &dependency {
            request.depends_on.push(DependencySpec { job_id: None, kind: Some(kind.clone()) });
        }
        let lane = Lane {
            lane: i as u32,
            job_name: request.job_name.clone(),
            chunk_count: size,
            first_chunks: lane_chunks.iter().take(LANE_FIRST_CHUNKS).copied().collect(),
            dependency,
            manifest: uri,
            chunks: lane_chunks,
        };
        out.push((request, lane, view));
    }
    Ok(out)
}

/// A file of run `run_id`'s own, under its output: `OUTPUT/_batchfan/runs/RUN/NAME`.
pub(crate) fn run_file(output: &str, run_id: &str, name: &str) -> Result<String> {
    Ok(Location::parse(output)?.join_display(&format!("{META_DIR}/runs/{run_id}/{name}")))
}

/// Builds (and checks) every request of a run of `chunk_count` chunks; views of a run of
/// several arrays go under the run's folder in `output`.
pub fn plan_submit(
    options: &SubmitOptions,
    run_id: &str,
    manifest: &str,
    output: &str,
    chunk_count: u64,
) -> Result<SubmitPlan> {
    let template = options.template(run_id)?;
    if let Some(k) = options.max_concurrency {
        check_max_concurrency(options, k, chunk_count)?;
    }
    // A cap of at least the chunk count cannot bind: the run is as without it.
    if let Some(k) = options.max_concurrency.filter(|&k| u64::from(k) < chunk_count) {
        let chunks: Vec<u64> = (0..chunk_count).collect();
        let planned = lane_requests(
            &template,
            manifest,
            &chunks,
            k,
            |i| run_file(output, run_id, &format!("lane-{i:03}.json")),
            |i| format!("{}-lane-{i}", template.job_name),
        )?;
        let mut plan = SubmitPlan {
            run_id: run_id.to_string(),
            manifest: manifest.to_string(),
            record_uri: run_file(output, run_id, RUN_RECORD_NAME)?,
            chunk_count,
            item_count: 0,
            views: Vec::new(),
            requests: Vec::new(),
            lanes: Vec::new(),
        };
        for (request, lane, view) in planned {
            request.check(options.fargate_hint())?;
            if let Some(view) = view {
                plan.views.push((lane.manifest.clone(), view));
            }
            plan.requests.push(request);
            plan.lanes.push(lane);
        }
        return Ok(plan);
    }
    let arrays = chunk_count.div_ceil(limits::MAX_ARRAY_SIZE as u64);
    let mut views = Vec::new();
    let mut requests = Vec::new();
    for k in 0..arrays {
        let first = k * limits::MAX_ARRAY_SIZE as u64;
        let count = (chunk_count - first).min(limits::MAX_ARRAY_SIZE as u64);
        let (name, uri) = if arrays == 1 {
            (template.job_name.clone(), manifest.to_string())
        } else {
            let uri = run_file(output, run_id, &format!("array-{k:03}.json"))?;
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
        record_uri: run_file(output, run_id, RUN_RECORD_NAME)?,
        chunk_count,
        item_count: 0,
        views,
        requests,
        lanes: Vec::new(),
    })
}

/// Checks that a job queue exists, is ENABLED and VALID (read-only: DescribeJobQueues), and
/// returns its compute environments in order.
async fn check_queue(ctx: &Context, queue: &str) -> Result<Vec<String>> {
    let out =
        super::call(ctx, "DescribeJobQueues", |batch| batch.describe_job_queues().job_queues(queue).send()).await?;
    let rejected = |message: String| Error::BatchRejected { op: "DescribeJobQueues", message, source: None };
    let Some(found) =
        out.job_queues().iter().find(|q| q.job_queue_name() == Some(queue) || q.job_queue_arn() == Some(queue))
    else {
        return Err(rejected(format!(
            "job queue `{queue}` does not exist (check the name, AWS_REGION and the account; `aws batch describe-job-queues` lists them)"
        )));
    };
    let state = found.state().map(|s| s.as_str().to_string()).unwrap_or_default();
    let status = found.status().map(|s| s.as_str().to_string()).unwrap_or_default();
    if state != "ENABLED" || !(status == "VALID" || status.is_empty()) {
        let reason = found.status_reason().unwrap_or("no reason given");
        return Err(rejected(format!(
            "job queue `{queue}` is {state} and {status} ({reason}): jobs sent there would not run; enable it or fix its compute environments"
        )));
    }
    Ok(super::capacity::order_of(found))
}

/// Everything a submit checks before it writes or sends anything: locations, options, the queue
/// and job definition, `--depends-on` runs, the plan, the job definition's platform when
/// resources are overridden.
///
/// `--depends-on` entries must be job ids (or `JOB:TYPE`) already: the run layer resolves
/// those that name batchfan runs.
pub(crate) async fn check_and_plan(
    ctx: &Context,
    spec: &RunSpec,
    options: &SubmitOptions,
) -> Result<(PlannedRun, SubmitPlan)> {
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
    plan_submit(options, "bf-check", "s3://check-bucket/m.jsonl", "s3://check-bucket/out/", 2)?;
    // The queue and the job definition must exist and be usable before anything is written:
    // a rejected SubmitJob used to leave its manifest behind.
    let environment_names = check_queue(ctx, &options.job_queue).await?;
    let definition = describe_definition(ctx, &options.job_definition).await?;
    // A job no compute environment of the queue can ever give stays RUNNABLE forever.
    let shape = super::capacity::job_shape(&definition, options.vcpu, options.memory);
    let environments = super::capacity::environments(ctx, &environment_names).await?;
    crate::capacity::check_fits(&options.job_queue, &shape, &environments)?;
    let mut spec = spec.clone();
    spec.options.max_chunks = MAX_RUN_CHUNKS;
    let planned = plan_run(&ctx.stores, &spec).await?;
    let chunk_count = planned.plan.chunks.len() as u64;
    let output = planned.output.to_string();
    let mut plan = plan_submit(options, &planned.run_id, &planned.manifest_uri, &output, chunk_count)?;
    plan.item_count = planned.plan.items.len() as u64;
    if (options.vcpu.is_some() || options.memory.is_some())
        && definition.platform_capabilities().contains(&sdk::PlatformCapability::Fargate)
    {
        for request in &plan.requests {
            request.check(true)?;
        }
    }
    super::capacity::check_n_to_n(ctx, &plan.requests).await?;
    Ok((planned, plan))
}

/// Writes the views of a run of several arrays (before any array is sent).
pub(crate) async fn write_views(ctx: &Context, plan: &SubmitPlan) -> Result<()> {
    for (uri, view) in &plan.views {
        manifest::write_view(&ctx.stores, uri, view).await?;
    }
    Ok(())
}

/// Sends array `k` of `plan` (after `previous`, the job id of array `k - 1`, when the arrays
/// are chained) and returns its record. SubmitJob is never resent blindly: after an unknown
/// outcome the job is looked up by its name first.
pub(crate) async fn send_array(
    ctx: &Context,
    options: &SubmitOptions,
    plan: &mut SubmitPlan,
    k: usize,
    previous: Option<&str>,
) -> Result<ArrayRecord> {
    if let Some(lane) = plan.lanes.get(k) {
        let request = &plan.requests[k];
        let job_id = request.send(ctx).await?;
        let whole = lane.manifest == plan.manifest;
        return Ok(ArrayRecord {
            job_id,
            job_name: request.job_name.clone(),
            manifest: lane.manifest.clone(),
            size: lane.chunk_count,
            first: 0,
            indices: if whole { Vec::new() } else { lane.chunks.clone() },
            redrive: 0,
        });
    }
    let manifest = plan.views.get(k).map_or(plan.manifest.clone(), |(uri, _)| uri.clone());
    let request = &mut plan.requests[k];
    if options.sequential
        && let (Some(prev), Some(dep)) = (previous, request.depends_on.last_mut())
    {
        dep.job_id = Some(prev.to_string());
    }
    let job_id = request.send(ctx).await?;
    Ok(ArrayRecord {
        job_id,
        job_name: request.job_name.clone(),
        manifest,
        size: request.array_properties.map_or(1, |a| a.size as u64),
        first: k as u64 * limits::MAX_ARRAY_SIZE as u64,
        indices: Vec::new(),
        redrive: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> SubmitOptions {
        SubmitOptions { job_queue: "q".into(), job_definition: "wc:1".into(), ..Default::default() }
    }

    #[test]
    fn one_array_up_to_10000_chunks_then_several() {
        let plan = plan_submit(&options(), "bf-x", "s3://bkt/o/m.jsonl", "s3://bkt/o/", 10_000).unwrap();
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].array_properties.unwrap().size, 10_000);
        let plan = plan_submit(&options(), "bf-x", "s3://bkt/o/m.jsonl", "s3://bkt/o/", 1).unwrap();
        assert!(plan.requests[0].array_properties.is_none(), "one chunk is a plain job");
        let plan = plan_submit(
            &SubmitOptions { sequential: true, ..options() },
            "bf-x",
            "s3://bkt/o/m.jsonl",
            "s3://bkt/o/",
            25_001,
        )
        .unwrap();
        let sizes: Vec<_> = plan.requests.iter().map(|r| r.array_properties.map_or(1, |a| a.size)).collect();
        assert_eq!(sizes, vec![10_000, 10_000, 5_001]);
        assert_eq!(plan.views[2].1, View::range("s3://bkt/o/m.jsonl", 20_000, 5_001));
        assert_eq!(plan.requests[1].depends_on.len(), 1);
        let env = &plan.requests[2].container_overrides.as_ref().unwrap().environment;
        assert!(
            env.iter()
                .any(|kv| kv.name == env::MANIFEST && kv.value == "s3://bkt/o/_batchfan/runs/bf-x/array-002.json")
        );
        assert_eq!(plan.record_uri, "s3://bkt/o/_batchfan/runs/bf-x/run.json");
    }

    #[test]
    fn lanes_deal_chunks_round_robin_through_views_with_sequential() {
        let capped = SubmitOptions { max_concurrency: Some(3), ..options() };
        let plan = plan_submit(&capped, "bf-x", "s3://bkt/o/m.jsonl", "s3://bkt/o/", 8).unwrap();
        assert_eq!(plan.requests.len(), 3);
        let chunks: Vec<_> = plan.lanes.iter().map(|l| l.chunks.clone()).collect();
        assert_eq!(chunks, vec![vec![0, 3, 6], vec![1, 4, 7], vec![2, 5]]);
        let sizes: Vec<_> = plan.requests.iter().map(|r| r.array_properties.map_or(1, |a| a.size)).collect();
        assert_eq!(sizes, vec![3, 3, 2]);
        for (k, request) in plan.requests.iter().enumerate() {
            assert_eq!(request.job_name, format!("bf-x-lane-{k}"));
            assert_eq!(request.depends_on, vec![DependencySpec { job_id: None, kind: Some("SEQUENTIAL".into()) }]);
            let view = format!("s3://bkt/o/_batchfan/runs/bf-x/lane-{k:03}.json");
            let env = &request.container_overrides.as_ref().unwrap().environment;
            assert!(env.iter().any(|kv| kv.name == env::MANIFEST && kv.value == view), "{env:?}");
            assert_eq!(plan.views[k], (view, View::indices("s3://bkt/o/m.jsonl", chunks[k].clone())));
        }
        // The request as AWS receives it: `dependsOn: [{"type": "SEQUENTIAL"}]`, no jobId.
        let json = serde_json::to_value(&plan.requests[0]).unwrap();
        assert_eq!(json["dependsOn"], serde_json::json!([{"type": "SEQUENTIAL"}]));
        let shown = serde_json::to_value(&plan).unwrap();
        assert_eq!(shown["lanes"][2]["first_chunks"], serde_json::json!([2, 5]));
        assert_eq!(shown["lanes"][2]["dependency"], "SEQUENTIAL");
        assert!(shown["lanes"][0].get("chunks").is_none(), "every chunk is in the views, not printed");
    }

    #[test]
    fn a_lane_of_one_chunk_is_a_plain_job_and_k_beyond_the_chunks_is_no_cap() {
        let capped = SubmitOptions { max_concurrency: Some(3), ..options() };
        let plan = plan_submit(&capped, "bf-x", "s3://bkt/o/m.jsonl", "s3://bkt/o/", 5).unwrap();
        // Lanes [0, 3], [1, 4], [2]: the last is one chunk, a plain job without SEQUENTIAL.
        assert!(plan.requests[2].array_properties.is_none(), "one chunk: a plain job");
        assert!(plan.requests[2].depends_on.is_empty(), "SEQUENTIAL is for array jobs only");
        assert_eq!(plan.lanes[2].dependency, None);
        assert_eq!(plan.views[2].1, View::indices("s3://bkt/o/m.jsonl", vec![2]));
        // K of at least the chunk count cannot bind: one array, as without the cap (not one
        // plain job per chunk).
        for k in [3, 50] {
            let capped = SubmitOptions { max_concurrency: Some(k), ..options() };
            let plan = plan_submit(&capped, "bf-x", "s3://bkt/o/m.jsonl", "s3://bkt/o/", 3).unwrap();
            assert_eq!(plan.requests.len(), 1, "K = {k}");
            assert!(plan.lanes.is_empty() && plan.views.is_empty());
            assert_eq!(plan.requests[0].array_properties.map(|a| a.size), Some(3));
            assert!(plan.requests[0].depends_on.is_empty());
        }
        // K = 1 over every chunk in order reads the manifest itself: no view.
        let one = SubmitOptions { max_concurrency: Some(1), ..options() };
        let plan = plan_submit(&one, "bf-x", "s3://bkt/o/m.jsonl", "s3://bkt/o/", 10_000).unwrap();
        assert!(plan.views.is_empty());
        assert_eq!(plan.lanes[0].manifest, "s3://bkt/o/m.jsonl");
        assert_eq!(plan.requests[0].array_properties.unwrap().size, 10_000);
        assert_eq!(plan.requests[0].depends_on.len(), 1);
    }

    #[test]
    fn dealing_is_round_robin_and_never_divides_by_zero() {
        assert_eq!(deal(&[4, 9, 11, 12, 20], 2), vec![vec![4, 11, 20], vec![9, 12]]);
        assert_eq!(deal(&[4, 9], 0), vec![vec![4, 9]]);
        assert!(deal(&[], 3).is_empty());
    }

    #[test]
    fn bad_max_concurrency_is_refused_naming_the_fix() {
        let expect = |o: SubmitOptions, chunks: u64, field: &str, fix: &str| {
            let err = plan_submit(&o, "bf-x", "s3://bkt/m.jsonl", "s3://bkt/o/", chunks).unwrap_err();
            let text = err.to_string();
            assert!(err.is_bad_input() && text.contains(field) && text.contains(fix), "{text}");
        };
        expect(SubmitOptions { max_concurrency: Some(0), ..options() }, 5, "--max-concurrency", "1 or more");
        expect(
            SubmitOptions { max_concurrency: Some(2), ..options() },
            20_001,
            "--max-concurrency",
            "--max-concurrency 3 or more",
        );
        expect(
            SubmitOptions { max_concurrency: Some(2), sequential: true, ..options() },
            5,
            "--max-concurrency",
            "--sequential",
        );
        expect(
            SubmitOptions { max_concurrency: Some(2), depends_on: vec!["SEQUENTIAL".into()], ..options() },
            5,
            "--depends-on",
            "SEQUENTIAL",
        );
        expect(
            SubmitOptions {
                max_concurrency: Some(2),
                depends_on: (0..20).map(|i| format!("job{i}")).collect(),
                ..options()
            },
            5,
            "--depends-on",
            "at most 19",
        );
        // 20,000 chunks fit two lanes exactly.
        let fits = SubmitOptions { max_concurrency: Some(2), ..options() };
        let plan = plan_submit(&fits, "bf-x", "s3://bkt/m.jsonl", "s3://bkt/o/", 20_000).unwrap();
        assert_eq!(plan.lanes.iter().map(|l| l.chunk_count).collect::<Vec<_>>(), vec![10_000, 10_000]);
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
            let err = plan_submit(&o, "bf-x", "s3://bkt/m.jsonl", "s3://bkt/o/", 5).unwrap_err();
            assert!(err.is_bad_input(), "{o:?}: {err}");
        }
        let spot = plan_submit(
            &SubmitOptions { retry_on_spot: true, attempts: Some(3), ..options() },
            "bf-x",
            "s3://bkt/m.jsonl",
            "s3://bkt/o/",
            5,
        )
        .unwrap();
        assert_eq!(spot.requests[0].retry_strategy.as_ref().unwrap().evaluate_on_exit.len(), 4);
    }
}
