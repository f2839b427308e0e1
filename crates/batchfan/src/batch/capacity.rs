//! Describing what a job queue can run (its compute environments) and what a job asks for, for
//! the checks in [`crate::capacity`]: before a submit, and when `status` explains RUNNABLE
//! children.

use std::collections::BTreeMap;

use aws_sdk_batch::types as sdk;
use serde::Serialize;

use super::call;
use super::request::SubmitJobRequest;
use crate::capacity::{ComputeEnvironment, JobShape};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::limits;

/// The compute environments of a queue, in the queue's order (DescribeComputeEnvironments).
pub(crate) async fn environments(ctx: &Context, names: &[String]) -> Result<Vec<ComputeEnvironment>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for batch in names.chunks(100) {
        let described = call(ctx, "DescribeComputeEnvironments", |b| {
            b.describe_compute_environments().set_compute_environments(Some(batch.to_vec())).send()
        })
        .await?;
        for ce in described.compute_environments() {
            let resources = ce.compute_resources();
            out.push(ComputeEnvironment {
                name: ce.compute_environment_name().unwrap_or_default().to_string(),
                state: ce.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
                status: ce.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                status_reason: ce.status_reason().map(str::to_string),
                kind: ce.r#type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                resources: resources.and_then(|r| r.r#type()).map(|t| t.as_str().to_string()),
                max_vcpus: resources.and_then(|r| r.maxv_cpus()).map(i64::from),
                desired_vcpus: resources.and_then(|r| r.desiredv_cpus()).map(i64::from),
                instance_types: resources.map(|r| r.instance_types().to_vec()).unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// The compute environments a job queue names (DescribeJobQueues, then the environments).
pub(crate) async fn queue_environments(ctx: &Context, queue: &str) -> Result<Vec<ComputeEnvironment>> {
    let out = call(ctx, "DescribeJobQueues", |batch| batch.describe_job_queues().job_queues(queue).send()).await?;
    let names = out
        .job_queues()
        .iter()
        .find(|q| q.job_queue_name() == Some(queue) || q.job_queue_arn() == Some(queue))
        .map(order_of)
        .unwrap_or_default();
    environments(ctx, &names).await
}

/// The environments a queue names, in its order.
pub(crate) fn order_of(queue: &sdk::JobQueueDetail) -> Vec<String> {
    let mut order: Vec<(i32, String)> = queue
        .compute_environment_order()
        .iter()
        .map(|o| (o.order().unwrap_or(0), o.compute_environment().unwrap_or_default().to_string()))
        .collect();
    order.sort();
    order.into_iter().map(|(_, name)| name).collect()
}

/// What a job of `definition` asks for, with a submit's overrides.
// Definitions registered by other tools may still carry the legacy `vcpus` / `memory`.
#[allow(deprecated)]
pub(crate) fn job_shape(definition: &sdk::JobDefinition, vcpu: Option<f64>, memory: Option<u32>) -> JobShape {
    let container = definition.container_properties();
    let mut shape = JobShape {
        vcpu: container.and_then(|c| c.vcpus()).map(f64::from),
        memory_mib: container.and_then(|c| c.memory()).and_then(|m| u64::try_from(m).ok()),
        fargate: definition.platform_capabilities().contains(&sdk::PlatformCapability::Fargate),
    };
    for r in container.map(|c| c.resource_requirements()).unwrap_or_default() {
        match r.r#type() {
            Some(sdk::ResourceType::Vcpu) => shape.vcpu = r.value().and_then(|v| v.parse().ok()).or(shape.vcpu),
            Some(sdk::ResourceType::Memory) => {
                shape.memory_mib = r.value().and_then(|v| v.parse().ok()).or(shape.memory_mib)
            }
            _ => {}
        }
    }
    if vcpu.is_some() {
        shape.vcpu = vcpu;
    }
    if let Some(m) = memory {
        shape.memory_mib = Some(u64::from(m));
    }
    shape
}

/// Refuses `N_TO_N` dependencies on jobs whose array size differs from the dependent array's
/// (AWS accepts them; child i then waits on a child that does not exist, or never runs).
pub(crate) async fn check_n_to_n(ctx: &Context, requests: &[SubmitJobRequest]) -> Result<()> {
    let ids: Vec<String> = requests
        .iter()
        .flat_map(|r| r.depends_on.iter())
        .filter(|d| d.kind.as_deref() == Some("N_TO_N"))
        .filter_map(|d| d.job_id.clone())
        .filter(|id| !id.starts_with('<'))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut sizes: BTreeMap<String, Option<i32>> = BTreeMap::new();
    for batch in ids.chunks(limits::MAX_DESCRIBE_JOBS_IDS) {
        let out = call(ctx, "DescribeJobs", |b| b.describe_jobs().set_jobs(Some(batch.to_vec())).send()).await?;
        for job in out.jobs() {
            sizes.insert(job.job_id().unwrap_or_default().to_string(), job.array_properties().and_then(|a| a.size()));
        }
    }
    for request in requests {
        let size = request.array_properties.map(|a| a.size);
        for dep in request.depends_on.iter().filter(|d| d.kind.as_deref() == Some("N_TO_N")) {
            let Some(id) = dep.job_id.as_deref().filter(|id| !id.starts_with('<')) else { continue };
            let Some(theirs) = sizes.get(id) else {
                return Err(Error::option(
                    "--depends-on",
                    format!("{id}:N_TO_N"),
                    "a job AWS Batch knows: DescribeJobs does not find it (check the id, AWS_REGION and the account)",
                ));
            };
            if *theirs != size {
                let show = |s: Option<i32>| s.map_or("a plain job (no array)".to_string(), |n| format!("{n} children"));
                return Err(Error::option(
                    "--depends-on",
                    format!("{id}:N_TO_N"),
                    format!(
                        "an array of the same size: job {id} has {}, array `{}` has {}; N_TO_N pairs child i with child i, so the sizes must match (plan the same number of chunks, e.g. --children N, or depend on the whole job without :N_TO_N)",
                        show(*theirs),
                        request.job_name,
                        show(size)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A child that has been RUNNABLE for longer than the threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StuckChild {
    /// Its job id.
    pub job_id: String,
    /// Seconds since it was submitted (AWS gives no time of entering RUNNABLE).
    pub waiting_seconds: u64,
    /// AWS Batch's `statusReason`, when it gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

/// Why a Batch run is not moving: children RUNNABLE longer than a threshold, and what the
/// queue's compute environments say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StuckReport {
    /// The threshold, seconds.
    pub threshold_seconds: u64,
    /// Children RUNNABLE for longer (all of them counted).
    pub stuck: u64,
    /// The first few of them.
    pub examples: Vec<StuckChild>,
    /// The job queue.
    pub job_queue: String,
    /// Its compute environments.
    pub environments: Vec<ComputeEnvironment>,
    /// What the environments say about it (DISABLED, INVALID, at maxvCpus, too small).
    pub reasons: Vec<String>,
    /// What the job asks for.
    pub job: JobShape,
}

/// Most stuck children a report names.
const STUCK_EXAMPLES: usize = 10;

/// Children of `arrays` (job id, size) RUNNABLE longer than `threshold_seconds`, with the
/// queue's environments and what they say; `None` when no child is.
pub(crate) async fn stuck(
    ctx: &Context,
    template: &SubmitJobRequest,
    vcpu: Option<f64>,
    memory: Option<u32>,
    arrays: &[(String, u64)],
    threshold_seconds: u64,
) -> Result<Option<StuckReport>> {
    let now = crate::layout::now_ms() as i64;
    let mut found: Vec<StuckChild> = Vec::new();
    let mut count = 0u64;
    // The revision the children really run (a NAME in the template may have moved on since).
    let mut definition: Option<String> = None;
    let mut consider = |id: &str, created: Option<i64>, reason: Option<&str>, def: Option<&str>| {
        let waited = created.map_or(0, |c| ((now - c).max(0) / 1000) as u64);
        if waited >= threshold_seconds {
            count += 1;
            if definition.is_none() {
                definition = def.map(str::to_string);
            }
            if found.len() < STUCK_EXAMPLES {
                found.push(StuckChild {
                    job_id: id.to_string(),
                    waiting_seconds: waited,
                    status_reason: reason.map(str::to_string),
                });
            }
        }
    };
    for (job_id, size) in arrays {
        if *size >= 2 {
            let mut token: Option<String> = None;
            loop {
                let page = call(ctx, "ListJobs", |b| {
                    b.list_jobs()
                        .array_job_id(job_id)
                        .job_status(sdk::JobStatus::Runnable)
                        .set_next_token(token.clone())
                        .send()
                })
                .await?;
                for j in page.job_summary_list() {
                    consider(j.job_id().unwrap_or_default(), j.created_at(), j.status_reason(), j.job_definition());
                }
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        } else {
            let out = call(ctx, "DescribeJobs", |b| b.describe_jobs().jobs(job_id).send()).await?;
            for j in out.jobs().iter().filter(|j| j.status() == Some(&sdk::JobStatus::Runnable)) {
                consider(j.job_id().unwrap_or_default(), j.created_at(), j.status_reason(), j.job_definition());
            }
        }
    }
    if count == 0 {
        return Ok(None);
    }
    let environments = queue_environments(ctx, &template.job_queue).await?;
    let definition = definition.unwrap_or_else(|| template.job_definition.clone());
    let job = match super::jobdef::describe_definition(ctx, &definition).await {
        Ok(definition) => job_shape(&definition, vcpu, memory),
        Err(_) => JobShape { vcpu, memory_mib: memory.map(u64::from), fargate: false },
    };
    let reasons = crate::capacity::diagnose(&job, &environments);
    Ok(Some(StuckReport {
        threshold_seconds,
        stuck: count,
        examples: found,
        job_queue: template.job_queue.clone(),
        environments,
        reasons,
        job,
    }))
}
