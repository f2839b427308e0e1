//! The documents that install a scaling file's policies natively for an ECS service, each
//! ready for `--cli-input-json`: `register-scalable-target`, `put-scaling-policy` (one per
//! policy) and `put-metric-alarm` (one per step policy, its action the policy's ARN, which
//! `put-scaling-policy` prints: the placeholder `${PolicyARN:NAME}` stands for it).

use serde::Serialize;
use serde_json::Value;

use crate::document::{DimensionDoc, ScalableTargetDoc, ScalingPolicyDoc};
use crate::error::ScaleError;
use crate::metric::CONTAINER_INSIGHTS;
use crate::policy::ScalingConfig;

/// The documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exported {
    /// `aws application-autoscaling register-scalable-target --cli-input-json`.
    #[serde(rename = "register-scalable-target")]
    pub scalable_target: Value,
    /// `aws application-autoscaling put-scaling-policy --cli-input-json`, one per policy.
    #[serde(rename = "put-scaling-policy")]
    pub scaling_policies: Vec<Value>,
    /// `aws cloudwatch put-metric-alarm --cli-input-json`, one per step policy.
    #[serde(rename = "put-metric-alarm")]
    pub alarms: Vec<Value>,
}

/// The placeholder for a policy's ARN in its alarm's actions.
pub fn arn_placeholder(policy: &str) -> String {
    format!("${{PolicyARN:{policy}}}")
}

/// Exports `config` for the ECS service `resource_id` (`service/CLUSTER/SERVICE`) scaling on the
/// queue `queue_name`.
pub fn export(config: &ScalingConfig, resource_id: &str, queue_name: &str) -> Result<Exported, ScaleError> {
    let parts: Vec<&str> = resource_id.split('/').collect();
    let [_, cluster, service] = parts.as_slice() else {
        return Err(ScaleError::Option {
            field: "--resource-id".into(),
            value: resource_id.into(),
            allowed: "service/CLUSTER/SERVICE (an ECS service)".into(),
        });
    };
    if parts[0] != "service" || cluster.is_empty() || service.is_empty() {
        return Err(ScaleError::Option {
            field: "--resource-id".into(),
            value: resource_id.into(),
            allowed: "service/CLUSTER/SERVICE (an ECS service)".into(),
        });
    }
    let capacity = config.capacity.ok_or_else(|| ScaleError::Parse {
        message: "export needs the capacity bounds: add ScalableTarget with MinCapacity and MaxCapacity".into(),
    })?;
    let target = ScalableTargetDoc {
        service_namespace: "ecs".into(),
        resource_id: resource_id.into(),
        scalable_dimension: "ecs:service:DesiredCount".into(),
        min_capacity: Some(i64::from(capacity.min)),
        max_capacity: Some(i64::from(capacity.max)),
        ..config.file.scalable_target.clone().unwrap_or_default()
    };
    let mut exported = Exported { scalable_target: value(&target), scaling_policies: Vec::new(), alarms: Vec::new() };
    for entry in config.file.entries() {
        if let Some(keda) = &entry.keda {
            return Err(ScaleError::invalid(
                &keda.name,
                None,
                "a KEDA policy is not an Application Auto Scaling policy: export it as a KEDA ScaledObject instead",
            ));
        }
        let Some(policy) = &entry.scaling_policy else { continue };
        let mut doc = ScalingPolicyDoc {
            service_namespace: "ecs".into(),
            resource_id: resource_id.into(),
            scalable_dimension: "ecs:service:DesiredCount".into(),
            ..policy.clone()
        };
        if doc.policy_type.is_none() {
            doc.policy_type = Some("StepScaling".into());
        }
        if let Some(tt) = &mut doc.target_tracking_scaling_policy_configuration
            && let Some(metric) = &mut tt.customized_metric_specification
        {
            let namespace = metric.namespace.clone();
            name_dimensions(namespace.as_deref(), &mut metric.dimensions, queue_name, cluster, service);
            for query in &mut metric.metrics {
                if let Some(stat) = &mut query.metric_stat {
                    let namespace = stat.metric.namespace.clone();
                    name_dimensions(namespace.as_deref(), &mut stat.metric.dimensions, queue_name, cluster, service);
                }
            }
        }
        exported.scaling_policies.push(value(&doc));
        if let Some(alarm) = &entry.alarm {
            let mut alarm = alarm.clone();
            let namespace = alarm.namespace.clone();
            if alarm.metric_name.is_some() {
                name_dimensions(namespace.as_deref(), &mut alarm.dimensions, queue_name, cluster, service);
            }
            for query in &mut alarm.metrics {
                if let Some(stat) = &mut query.metric_stat {
                    let namespace = stat.metric.namespace.clone();
                    name_dimensions(namespace.as_deref(), &mut stat.metric.dimensions, queue_name, cluster, service);
                }
            }
            alarm.alarm_actions = vec![arn_placeholder(&doc.policy_name)];
            exported.alarms.push(value(&alarm));
        }
    }
    Ok(exported)
}

/// Names the queue in `AWS/SQS` metrics (`QueueName`) and the service in ECS metrics
/// (`ClusterName`, `ServiceName`); other namespaces keep their dimensions.
fn name_dimensions(namespace: Option<&str>, dims: &mut Vec<DimensionDoc>, queue: &str, cluster: &str, service: &str) {
    let wanted: Vec<(&str, &str)> = match namespace {
        Some("AWS/SQS") => vec![("QueueName", queue)],
        Some(CONTAINER_INSIGHTS | "AWS/ECS") => vec![("ClusterName", cluster), ("ServiceName", service)],
        _ => return,
    };
    dims.retain(|d| !wanted.iter().any(|(n, _)| *n == d.name));
    dims.extend(wanted.into_iter().map(|(name, value)| DimensionDoc { name: name.into(), value: value.into() }));
}

/// A document as JSON (the documents serialize infallibly: strings, numbers, maps).
fn value<T: Serialize>(document: &T) -> Value {
    serde_json::to_value(document).unwrap_or(Value::Null)
}
