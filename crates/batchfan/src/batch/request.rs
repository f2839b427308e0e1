//! SubmitJob requests as data: checked against every limit, printed by `--dry-run`, sent as is.

use std::collections::BTreeMap;

use aws_sdk_batch::types as sdk;
use serde::{Deserialize, Serialize};

use super::call;
use super::jobdef::{
    KeyValue, ResourceRequirementSpec, RetryStrategySpec, RuleSpec, TimeoutSpec, resources, sdk_environment,
    sdk_resources,
};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::limits;

/// `arrayProperties`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayPropertiesSpec {
    /// Children, 2..=10,000.
    pub size: i32,
}

/// A `dependsOn` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencySpec {
    /// The job depended on (absent for `SEQUENTIAL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// `N_TO_N` or `SEQUENTIAL` (array jobs only).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl DependencySpec {
    /// Parses `JOB`, `JOB:N_TO_N`, `JOB:SEQUENTIAL` or `SEQUENTIAL`.
    pub fn parse(text: &str) -> Result<DependencySpec> {
        let (job, kind) = match text.rsplit_once(':') {
            Some((job, kind)) if kind.eq_ignore_ascii_case("N_TO_N") || kind.eq_ignore_ascii_case("SEQUENTIAL") => {
                (Some(job.to_string()), Some(kind.to_ascii_uppercase()))
            }
            _ if text.eq_ignore_ascii_case("SEQUENTIAL") => (None, Some("SEQUENTIAL".to_string())),
            _ => (Some(text.to_string()), None),
        };
        if job.as_deref().is_some_and(|j| j.is_empty() || j.contains(':')) {
            return Err(Error::option("--depends-on", text, "JOB, JOB:N_TO_N, JOB:SEQUENTIAL or SEQUENTIAL"));
        }
        Ok(DependencySpec { job_id: job, kind })
    }
}

/// `containerOverrides`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverridesSpec {
    /// Extra environment (the manifest URI travels here; never work items).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValue>,
    /// VCPU / MEMORY overrides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_requirements: Vec<ResourceRequirementSpec>,
}

/// One SubmitJob request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitJobRequest {
    /// Job name (unique per run: the idempotency key after a lost response).
    pub job_name: String,
    /// Queue name or ARN.
    pub job_queue: String,
    /// `NAME`, `NAME:REVISION` or an ARN.
    pub job_definition: String,
    /// Present for array jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_properties: Option<ArrayPropertiesSpec>,
    /// Dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<DependencySpec>,
    /// Container overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_overrides: Option<ContainerOverridesSpec>,
    /// Retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategySpec>,
    /// Per-attempt timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<TimeoutSpec>,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Propagate tags to ECS tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<bool>,
    /// Fair-share identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_identifier: Option<String>,
    /// Priority 0-9999.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_priority_override: Option<i32>,
}

/// The `evaluateOnExit` rules of `--retry-on-spot`: retry Spot reclaims (`Host EC2*`) and the
/// worker's retryable exit codes, exit on anything else.
pub fn retry_on_spot_rules(retryable_exit_codes: &[i32]) -> Vec<RuleSpec> {
    let mut rules = vec![RuleSpec {
        action: "RETRY".into(),
        on_exit_code: None,
        on_reason: None,
        on_status_reason: Some("Host EC2*".into()),
    }];
    rules.extend(retryable_exit_codes.iter().map(|code| RuleSpec {
        action: "RETRY".into(),
        on_exit_code: Some(code.to_string()),
        on_reason: None,
        on_status_reason: None,
    }));
    rules.push(RuleSpec {
        action: "EXIT".into(),
        on_exit_code: None,
        on_reason: Some("*".into()),
        on_status_reason: None,
    });
    rules
}

impl SubmitJobRequest {
    /// Checks every limit; `fargate` (when known) enables the Fargate resource table.
    pub fn check(&self, fargate: bool) -> Result<()> {
        limits::check_name("jobName", &self.job_name)?;
        if self.job_queue.trim().is_empty() {
            return Err(Error::option("--job-queue", "\"\"", "a job queue name or ARN is required"));
        }
        if self.job_definition.trim().is_empty() {
            return Err(Error::option("--job-definition", "\"\"", "a job definition NAME[:REVISION] is required"));
        }
        if let Some(array) = self.array_properties {
            limits::check_array_size(array.size.max(0) as usize)?;
        }
        limits::check_depends_on(self.depends_on.len())?;
        for dep in &self.depends_on {
            if dep.kind.as_deref() == Some("N_TO_N") && self.array_properties.is_none() {
                return Err(Error::option("dependsOn.type", "N_TO_N", "only array jobs can depend N_TO_N"));
            }
        }
        if let Some(retry) = &self.retry_strategy {
            retry.check()?;
        }
        if let Some(timeout) = self.timeout {
            limits::check_timeout(timeout.attempt_duration_seconds.into())?;
        }
        if let Some(priority) = self.scheduling_priority_override {
            limits::check_priority(priority.into())?;
        }
        if let Some(overrides) = &self.container_overrides {
            let json = serde_json::to_string(overrides).unwrap_or_default();
            limits::check_container_overrides(&json)?;
            let (vcpu, memory) = resources(&overrides.resource_requirements)?;
            if fargate && let (Some(vcpu), Some(memory)) = (vcpu, memory) {
                limits::check_fargate_resources(vcpu, memory)?;
            }
        }
        let payload = serde_json::to_vec(self).map_or(0, |v| v.len());
        limits::check_payload("SubmitJob request", payload, limits::MAX_SUBMIT_PAYLOAD_BYTES)
    }

    /// Sends the request and returns the job id. A request whose outcome is unknown (the
    /// response was lost, or throttled) is not simply resent: the job is first looked up by its
    /// name in the queue, so a retry never creates a second array.
    pub(crate) async fn send(&self, ctx: &Context) -> Result<String> {
        let overrides = self.container_overrides.as_ref().map(|o| {
            sdk::ContainerOverrides::builder()
                .set_environment(Some(sdk_environment(&o.environment)))
                .set_resource_requirements(
                    (!o.resource_requirements.is_empty()).then(|| sdk_resources(&o.resource_requirements)),
                )
                .build()
        });
        let depends: Vec<sdk::JobDependency> = self
            .depends_on
            .iter()
            .map(|d| {
                sdk::JobDependency::builder()
                    .set_job_id(d.job_id.clone())
                    .set_type(d.kind.as_deref().map(sdk::ArrayJobDependency::from))
                    .build()
            })
            .collect();
        let mut tries = 0;
        loop {
            tries += 1;
            // One try per round, the SDK's retries off: between rounds the job is looked up by name.
            let no_retries = aws_sdk_batch::config::Builder::new()
                .retry_config(aws_sdk_batch::config::retry::RetryConfig::disabled());
            let sent = call(ctx, "SubmitJob", |batch| {
                batch
                    .submit_job()
                    .job_name(&self.job_name)
                    .job_queue(&self.job_queue)
                    .job_definition(&self.job_definition)
                    .set_array_properties(
                        self.array_properties.map(|a| sdk::ArrayProperties::builder().size(a.size).build()),
                    )
                    .set_depends_on((!depends.is_empty()).then(|| depends.clone()))
                    .set_container_overrides(overrides.clone())
                    .set_retry_strategy(self.retry_strategy.as_ref().map(|r| r.to_sdk()))
                    .set_timeout(self.timeout.map(|t| {
                        sdk::JobTimeout::builder().attempt_duration_seconds(t.attempt_duration_seconds).build()
                    }))
                    .set_tags((!self.tags.is_empty()).then(|| self.tags.clone().into_iter().collect()))
                    .set_propagate_tags(self.propagate_tags)
                    .set_share_identifier(self.share_identifier.clone())
                    .set_scheduling_priority_override(self.scheduling_priority_override)
                    .customize()
                    .config_override(no_retries)
                    .send()
            });
            match tokio::time::timeout(std::time::Duration::from_secs(60), sent).await {
                Ok(Ok(out)) => return Ok(out.job_id().unwrap_or_default().to_string()),
                Ok(Err(e)) if !e.is_transient() || tries >= 5 => return Err(e),
                Ok(Err(_)) | Err(_) => {
                    if let Some(id) = self.find_existing(ctx).await? {
                        return Ok(id);
                    }
                    tokio::time::sleep(super::backoff(tries)).await;
                }
            }
        }
    }

    /// The parent job with this request's name in its queue, if one was created.
    pub(crate) async fn find_existing(&self, ctx: &Context) -> Result<Option<String>> {
        let jobs = jobs_named(ctx, &self.job_queue, &self.job_name).await?;
        let found = jobs
            .iter()
            .find(|j| j.job_name() == Some(self.job_name.as_str()) && j.job_id().is_some_and(|id| !id.contains(':')));
        Ok(found.and_then(|j| j.job_id().map(str::to_string)))
    }
}

/// Every job of `queue` whose name matches `pattern` (ListJobs with a JOB_NAME filter; a
/// trailing `*` matches a prefix), all pages.
pub(crate) async fn jobs_named(ctx: &Context, queue: &str, pattern: &str) -> Result<Vec<sdk::JobSummary>> {
    let filter = sdk::KeyValuesPair::builder().name("JOB_NAME").values(pattern).build();
    let mut jobs = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = call(ctx, "ListJobs", |batch| {
            batch.list_jobs().job_queue(queue).filters(filter.clone()).set_next_token(token.clone()).send()
        })
        .await?;
        jobs.extend(page.job_summary_list().iter().cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(jobs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SubmitJobRequest {
        SubmitJobRequest {
            job_name: "bf-run".into(),
            job_queue: "q".into(),
            job_definition: "wordcount:3".into(),
            array_properties: Some(ArrayPropertiesSpec { size: 10 }),
            depends_on: vec![],
            container_overrides: Some(ContainerOverridesSpec {
                environment: vec![KeyValue { name: "BATCHFAN_MANIFEST".into(), value: "s3://b/m.jsonl".into() }],
                resource_requirements: vec![],
            }),
            retry_strategy: None,
            timeout: None,
            tags: BTreeMap::new(),
            propagate_tags: None,
            share_identifier: None,
            scheduling_priority_override: None,
        }
    }

    #[test]
    fn each_limit_is_checked() {
        request().check(false).unwrap();
        let expect = |r: SubmitJobRequest, field: &str| {
            let err = r.check(true).unwrap_err();
            assert!(err.is_bad_input() && err.to_string().contains(field), "{field}: {err}");
        };
        let mut r = request();
        r.array_properties = Some(ArrayPropertiesSpec { size: 10_001 });
        expect(r, "arrayProperties.size");
        let mut r = request();
        r.job_name = "no spaces".into();
        expect(r, "jobName");
        let mut r = request();
        r.depends_on = vec![DependencySpec { job_id: Some("j".into()), kind: None }; 21];
        expect(r, "dependsOn");
        let mut r = request();
        r.retry_strategy = Some(RetryStrategySpec { attempts: Some(11), evaluate_on_exit: vec![] });
        expect(r, "attempts");
        let mut r = request();
        r.timeout = Some(TimeoutSpec { attempt_duration_seconds: 10 });
        expect(r, "attemptDurationSeconds");
        let mut r = request();
        r.scheduling_priority_override = Some(10_000);
        expect(r, "schedulingPriorityOverride");
        let mut r = request();
        r.container_overrides
            .as_mut()
            .unwrap()
            .environment
            .push(KeyValue { name: "BIG".into(), value: "x".repeat(9000) });
        expect(r, "containerOverrides");
        let mut r = request();
        r.tags = (0..40).map(|i| (format!("tag{i}"), "v".repeat(1000))).collect();
        expect(r, "SubmitJob request");
        let mut r = request();
        r.container_overrides.as_mut().unwrap().resource_requirements = vec![
            ResourceRequirementSpec { kind: "VCPU".into(), value: "1".into() },
            ResourceRequirementSpec { kind: "MEMORY".into(), value: "1024".into() },
        ];
        expect(r, "MEMORY");
    }

    #[test]
    fn dependencies_parse() {
        assert_eq!(DependencySpec::parse("abc").unwrap(), DependencySpec { job_id: Some("abc".into()), kind: None });
        assert_eq!(DependencySpec::parse("abc:n_to_n").unwrap().kind.as_deref(), Some("N_TO_N"));
        assert_eq!(
            DependencySpec::parse("SEQUENTIAL").unwrap(),
            DependencySpec { job_id: None, kind: Some("SEQUENTIAL".into()) }
        );
        assert!(DependencySpec::parse("a:b:c").is_err());
        assert!(DependencySpec::parse(":N_TO_N").is_err());
    }

    #[test]
    fn spot_rules_fit_the_limit() {
        let rules = retry_on_spot_rules(&[75, 143]);
        assert_eq!(rules.len(), 4);
        let retry = RetryStrategySpec { attempts: Some(3), evaluate_on_exit: rules };
        retry.check().unwrap();
        assert_eq!(retry.evaluate_on_exit.last().unwrap().action, "EXIT");
    }
}
