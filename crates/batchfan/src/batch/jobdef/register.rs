//! Registering a job definition only when it differs from the latest ACTIVE revision, and
//! looking definitions up.

use aws_sdk_batch::types as sdk;
use serde::Serialize;

use super::spec::JobDefinitionSpec;
use crate::batch::call;
use crate::context::Context;
use crate::error::{Error, Result};

/// Every ACTIVE revision of a job definition name (all pages).
pub(crate) async fn active_revisions(ctx: &Context, name: &str) -> Result<Vec<sdk::JobDefinition>> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = call(ctx, "DescribeJobDefinitions", |batch| {
            batch
                .describe_job_definitions()
                .job_definition_name(name)
                .status("ACTIVE")
                .set_next_token(token.clone())
                .send()
        })
        .await?;
        all.extend(page.job_definitions().iter().filter(|d| d.job_definition_name() == Some(name)).cloned());
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(all);
        }
    }
}

/// The job definition a submit names: an ARN, `NAME:REVISION`, or `NAME` (its latest ACTIVE
/// revision). An unknown or inactive definition is an error saying so.
pub(crate) async fn describe_definition(ctx: &Context, definition: &str) -> Result<sdk::JobDefinition> {
    let not_active = || Error::BatchRejected {
        op: "DescribeJobDefinitions",
        message: format!(
            "job definition `{definition}` does not exist or is not ACTIVE: register it first (`batchfan register`)"
        ),
        source: None,
    };
    if definition.starts_with("arn:") {
        let out = call(ctx, "DescribeJobDefinitions", |batch| {
            batch.describe_job_definitions().job_definitions(definition).send()
        })
        .await?;
        let found = out.job_definitions().iter().find(|d| d.job_definition_arn() == Some(definition));
        return found.filter(|d| d.status() == Some("ACTIVE")).cloned().ok_or_else(not_active);
    }
    let (name, revision) = match definition.rsplit_once(':') {
        Some((n, r)) => (n, Some(r.parse::<i32>().map_err(|_| not_active())?)),
        None => (definition, None),
    };
    active_revisions(ctx, name)
        .await?
        .into_iter()
        .filter(|d| revision.is_none_or(|r| d.revision() == Some(r)))
        .max_by_key(|d| d.revision().unwrap_or(0))
        .ok_or_else(not_active)
}

/// What [`crate::Client::register`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registered {
    /// Name.
    pub name: String,
    /// Revision in use.
    pub revision: i32,
    /// Its ARN.
    pub arn: String,
    /// True when the latest ACTIVE revision was identical and was reused.
    pub reused: bool,
}

/// Registers `spec`, unless the latest ACTIVE revision of that name is identical (then reuses it).
pub(crate) async fn register_job_definition(ctx: &Context, spec: &JobDefinitionSpec) -> Result<Registered> {
    spec.check()?;
    let name = spec.job_definition_name.clone();
    let latest = active_revisions(ctx, &name).await?.into_iter().max_by_key(|d| d.revision().unwrap_or(0));
    if let Some(existing) = latest
        && JobDefinitionSpec::from_sdk(&existing).normalized() == spec.normalized()
    {
        return Ok(Registered {
            name,
            revision: existing.revision().unwrap_or(0),
            arn: existing.job_definition_arn().unwrap_or_default().to_string(),
            reused: true,
        });
    }
    let container = spec.to_sdk_container();
    let out = call(ctx, "RegisterJobDefinition", |batch| {
        batch
            .register_job_definition()
            .job_definition_name(&name)
            .r#type(sdk::JobDefinitionType::Container)
            .set_parameters((!spec.parameters.is_empty()).then(|| spec.parameters.clone().into_iter().collect()))
            .set_scheduling_priority(spec.scheduling_priority)
            .container_properties(container.clone())
            .set_retry_strategy(spec.retry_strategy.as_ref().map(|r| r.to_sdk()))
            .set_propagate_tags(spec.propagate_tags)
            .set_timeout(
                spec.timeout
                    .map(|t| sdk::JobTimeout::builder().attempt_duration_seconds(t.attempt_duration_seconds).build()),
            )
            .set_tags((!spec.tags.is_empty()).then(|| spec.tags.clone().into_iter().collect()))
            .set_platform_capabilities(Some(
                spec.platform_capabilities
                    .iter()
                    .map(|p| sdk::PlatformCapability::from(p.to_ascii_uppercase().as_str()))
                    .collect(),
            ))
            .send()
    })
    .await?;
    Ok(Registered {
        name,
        revision: out.revision().unwrap_or(0),
        arn: out.job_definition_arn().unwrap_or_default().to_string(),
        reused: false,
    })
}
