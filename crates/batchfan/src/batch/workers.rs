//! Queue workers run as AWS Batch jobs: the capacity the scaling helper's `batch` target holds.
//! Worker jobs are named `PREFIX-...` on one job queue; scale-out submits one array job for the
//! difference, scale-in terminates the newest surplus workers (AWS Batch sends them SIGTERM, so
//! they drain, then SIGKILL after the container's stop timeout).

use aws_sdk_batch::types as sdk;

use super::call;
use super::request::{ArrayPropertiesSpec, ContainerOverridesSpec, SubmitJobRequest, jobs_named};
use crate::context::Context;
use crate::contract::env;
use crate::error::Result;
use crate::limits;

use super::jobdef::KeyValue;

/// Worker jobs of one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerJobs {
    /// The job queue.
    pub job_queue: String,
    /// The job definition (`NAME[:REV]` or ARN) whose container serves the queue.
    pub job_definition: String,
    /// Job names start with this.
    pub name_prefix: String,
    /// The SQS queue the workers serve (`BATCHFAN_QUEUE_URL`).
    pub queue_url: String,
}

fn live(status: Option<&sdk::JobStatus>) -> bool {
    !matches!(status, Some(sdk::JobStatus::Succeeded | sdk::JobStatus::Failed) | None)
}

/// A worker job that has not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveWorker {
    /// Its job id (`PARENT:INDEX` for a child of an array).
    pub job_id: String,
    /// Whether it is RUNNING (else still SUBMITTED, PENDING, RUNNABLE or STARTING).
    pub running: bool,
}

impl WorkerJobs {
    /// The live worker jobs with whether each is running, newest first.
    pub(crate) async fn live_workers(&self, ctx: &Context) -> Result<Vec<LiveWorker>> {
        let mut parents: Vec<(i64, String, Option<i32>, bool)> = Vec::new();
        let listed = jobs_named(ctx, &self.job_queue, &format!("{}*", self.name_prefix)).await?;
        // Real AWS lists parents only, with their array size; moto lists children too, and its
        // parents without the size (and never finished until described): a parent is an array
        // when its children are listed.
        let with_children: std::collections::HashSet<&str> =
            listed.iter().filter_map(|j| j.job_id().and_then(|id| id.split_once(':')).map(|(p, _)| p)).collect();
        for job in &listed {
            let id = job.job_id().unwrap_or_default();
            if id.contains(':') || !live(job.status()) {
                continue;
            }
            let size = job.array_properties().and_then(|a| a.size()).or(with_children.contains(id).then_some(0));
            parents.push((
                job.created_at().unwrap_or(0),
                id.to_string(),
                size,
                job.status() == Some(&sdk::JobStatus::Running),
            ));
        }
        parents.sort_by_key(|p| std::cmp::Reverse(p.0));
        let mut live_jobs = Vec::new();
        for (_, id, size, running) in parents {
            if size.is_none() {
                live_jobs.push(LiveWorker { job_id: id, running });
                continue;
            }
            for status in [
                sdk::JobStatus::Running,
                sdk::JobStatus::Starting,
                sdk::JobStatus::Runnable,
                sdk::JobStatus::Pending,
                sdk::JobStatus::Submitted,
            ] {
                let mut token: Option<String> = None;
                loop {
                    let page = call(ctx, "ListJobs", |batch| {
                        batch
                            .list_jobs()
                            .array_job_id(&id)
                            .job_status(status.clone())
                            .set_next_token(token.clone())
                            .send()
                    })
                    .await?;
                    let mut children: Vec<String> =
                        page.job_summary_list().iter().filter_map(|j| j.job_id().map(str::to_string)).collect();
                    // Newest (highest index) first.
                    children
                        .sort_by_key(|c| std::cmp::Reverse(c.rsplit(':').next().and_then(|i| i.parse::<u64>().ok())));
                    let running = status == sdk::JobStatus::Running;
                    live_jobs.extend(children.into_iter().map(|job_id| LiveWorker { job_id, running }));
                    token = page.next_token().map(str::to_string);
                    if token.is_none() {
                        break;
                    }
                }
            }
        }
        Ok(live_jobs)
    }

    /// Submits `count` more workers as one array job (a plain job for one).
    pub(crate) async fn add(&self, ctx: &Context, count: u32) -> Result<String> {
        let request = SubmitJobRequest {
            job_name: format!("{}-{}", self.name_prefix, crate::layout::now_ms()),
            job_queue: self.job_queue.clone(),
            job_definition: self.job_definition.clone(),
            array_properties: (count >= 2)
                .then_some(ArrayPropertiesSpec { size: count.min(limits::MAX_ARRAY_SIZE as u32) as i32 }),
            depends_on: Vec::new(),
            container_overrides: Some(ContainerOverridesSpec {
                environment: vec![KeyValue { name: env::QUEUE_URL.into(), value: self.queue_url.clone() }],
                resource_requirements: Vec::new(),
            }),
            retry_strategy: None,
            timeout: None,
            tags: Default::default(),
            propagate_tags: None,
            share_identifier: None,
            scheduling_priority_override: None,
        };
        request.check(false)?;
        request.send(ctx).await
    }

    /// Terminates the given worker jobs (they get SIGTERM and drain).
    pub(crate) async fn stop(&self, ctx: &Context, jobs: &[String]) -> Result<()> {
        for job in jobs {
            call(ctx, "TerminateJob", |batch| {
                batch.terminate_job().job_id(job).reason("scaled in by batchfan scale run").send()
            })
            .await?;
        }
        Ok(())
    }
}
