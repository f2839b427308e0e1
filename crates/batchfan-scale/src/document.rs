//! The scaling file: the AWS CLI input documents, as `--cli-input-json` takes them.
//!
//! ```json
//! {
//!   "ScalableTarget": { ...aws application-autoscaling register-scalable-target... },
//!   "ScalingPolicy":  { ...aws application-autoscaling put-scaling-policy... },
//!   "Alarm":          { ...aws cloudwatch put-metric-alarm... }
//! }
//! ```
//! or `"Policies": [{"ScalingPolicy": ..., "Alarm": ...}, ...]` for several policies on one
//! target. A KEDA-style proportional policy (not an AWS document) is `{"Keda": {...}}` in
//! `Policies`, with KEDA's `aws-sqs-queue` scaler field names. Unknown fields are errors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ScaleError;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ScalingFile {
    /// `register-scalable-target` input (capacity bounds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalable_target: Option<ScalableTargetDoc>,
    /// One policy's `put-scaling-policy` input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_policy: Option<ScalingPolicyDoc>,
    /// The alarm of that (step scaling) policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<AlarmDoc>,
    /// Several policies on one target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyEntry>,
}

/// One entry of `Policies`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PolicyEntry {
    /// `put-scaling-policy` input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_policy: Option<ScalingPolicyDoc>,
    /// `put-metric-alarm` input (step scaling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<AlarmDoc>,
    /// A KEDA-style proportional policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keda: Option<KedaDoc>,
}

/// `aws application-autoscaling register-scalable-target --cli-input-json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ScalableTargetDoc {
    /// `ecs`, ...
    pub service_namespace: String,
    /// `service/CLUSTER/SERVICE`.
    pub resource_id: String,
    /// `ecs:service:DesiredCount`.
    pub scalable_dimension: String,
    /// Least capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_capacity: Option<i64>,
    /// Most capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<i64>,
    /// Service-linked role (optional).
    #[serde(default, rename = "RoleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Suspended scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_state: Option<serde_json::Value>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

/// `aws application-autoscaling put-scaling-policy --cli-input-json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ScalingPolicyDoc {
    /// The name (errors name policies by it).
    pub policy_name: String,
    /// `ecs`, ...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_namespace: String,
    /// `service/CLUSTER/SERVICE`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_id: String,
    /// `ecs:service:DesiredCount`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scalable_dimension: String,
    /// `StepScaling` (default) or `TargetTrackingScaling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_type: Option<String>,
    /// Step scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_scaling_policy_configuration: Option<StepConfigDoc>,
    /// Target tracking (simulated on SQS backlog per task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_tracking_scaling_policy_configuration: Option<TargetTrackingDoc>,
}

/// `StepScalingPolicyConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StepConfigDoc {
    /// `ChangeInCapacity`, `PercentChangeInCapacity` or `ExactCapacity`.
    pub adjustment_type: String,
    /// The steps.
    pub step_adjustments: Vec<StepAdjustmentDoc>,
    /// Least absolute change (`PercentChangeInCapacity` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_adjustment_magnitude: Option<i64>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<i64>,
    /// `Average` (default), `Minimum` or `Maximum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_aggregation_type: Option<String>,
}

/// One `StepAdjustments` entry: bounds are offsets from the alarm threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StepAdjustmentDoc {
    /// Lower bound (absent: minus infinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_interval_lower_bound: Option<f64>,
    /// Upper bound (absent: infinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_interval_upper_bound: Option<f64>,
    /// The adjustment.
    pub scaling_adjustment: i64,
}

/// `TargetTrackingScalingPolicyConfiguration`: the metric it names is the metric simulated and
/// exported. Without a metric specification, batchfan fills in AWS's backlog per task (visible
/// messages over running tasks, [`crate::metric::backlog_per_task`]) when the file is loaded, so
/// what is simulated is what `export` writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TargetTrackingDoc {
    /// The value of the metric to hold (for backlog per task: acceptable latency / processing
    /// time per message).
    pub target_value: f64,
    /// A CloudWatch metric or metric math.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customized_metric_specification: Option<CustomizedMetricDoc>,
    /// A predefined metric (CPU, memory, requests: simulated only from a trace column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predefined_metric_specification: Option<PredefinedMetricDoc>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out_cooldown: Option<i64>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in_cooldown: Option<i64>,
    /// Never scale in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_scale_in: Option<bool>,
}

/// `aws cloudwatch put-metric-alarm --cli-input-json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AlarmDoc {
    /// The name.
    pub alarm_name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_description: Option<String>,
    /// Whether actions run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions_enabled: Option<bool>,
    /// Actions on OK.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "OKActions")]
    pub ok_actions: Vec<String>,
    /// Actions on ALARM (the scaling policy's ARN).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarm_actions: Vec<String>,
    /// Actions on INSUFFICIENT_DATA.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insufficient_data_actions: Vec<String>,
    /// Metric name, e.g. `ApproximateNumberOfMessagesVisible`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// `AWS/SQS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `Average`, `Sum`, `Minimum`, `Maximum`, `SampleCount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    /// Percentile statistics (not simulated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_statistic: Option<String>,
    /// `[{"Name": "QueueName", "Value": "..."}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<DimensionDoc>,
    /// Seconds per datapoint (a multiple of 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i64>,
    /// Unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Datapoints evaluated.
    pub evaluation_periods: i64,
    /// Breaching datapoints (of the evaluated ones) that set ALARM (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datapoints_to_alarm: Option<i64>,
    /// The threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// `GreaterThanOrEqualToThreshold`, `GreaterThanThreshold`, `LessThanThreshold`,
    /// `LessThanOrEqualToThreshold`.
    pub comparison_operator: String,
    /// `missing`, `notBreaching`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treat_missing_data: Option<String>,
    /// Percentile low-sample handling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluate_low_sample_count_percentile: Option<String>,
    /// Metric math: the query with `ReturnData` true is what the alarm watches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricDataQueryDoc>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<serde_json::Value>,
    /// Anomaly-detection threshold (not simulated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_metric_id: Option<String>,
}

/// A CloudWatch dimension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DimensionDoc {
    /// `QueueName`.
    pub name: String,
    /// The queue's name.
    pub value: String,
}

/// A CloudWatch metric: namespace, name and dimensions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct MetricDoc {
    /// `AWS/SQS`, `ECS/ContainerInsights`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The metric's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// Its dimensions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<DimensionDoc>,
}

/// `MetricStat` of a metric math query (CloudWatch's, and target tracking's
/// `TargetTrackingMetricStat`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct MetricStatDoc {
    /// The metric.
    pub metric: MetricDoc,
    /// Seconds (required in alarms; target tracking: 60 unless given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i64>,
    /// `Average`, `Sum`, `Minimum`, `Maximum`, `SampleCount`.
    pub stat: String,
    /// Unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// One metric math query (`MetricDataQuery`, `TargetTrackingMetricDataQuery`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct MetricDataQueryDoc {
    /// Its name in expressions (starts with a lowercase letter).
    pub id: String,
    /// A metric statistic...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_stat: Option<MetricStatDoc>,
    /// ...or an expression over other queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// A label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Whether this is the value watched (default true: exactly one query may return data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_data: Option<bool>,
    /// Seconds per datapoint of an expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i64>,
    /// Cross-account metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// Target tracking's `CustomizedMetricSpecification`: one metric, or metric math in `Metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CustomizedMetricDoc {
    /// The metric's name (one metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// Its namespace (one metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its dimensions (one metric).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<DimensionDoc>,
    /// Its statistic (one metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    /// Unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Metric math queries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricDataQueryDoc>,
}

/// Target tracking's `PredefinedMetricSpecification`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PredefinedMetricDoc {
    /// `ECSServiceAverageCPUUtilization`, ...
    pub predefined_metric_type: String,
    /// For `ALBRequestCountPerTarget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_label: Option<String>,
}

/// A KEDA `aws-sqs-queue` scaler with its ScaledObject's replica and timing settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KedaDoc {
    /// A name for messages and errors.
    #[serde(default = "keda_name")]
    pub name: String,
    /// Messages per replica (default 5).
    #[serde(default = "five")]
    pub queue_length: f64,
    /// At or below this many messages the target scales between 0 and 1 (default 0).
    #[serde(default)]
    pub activation_queue_length: f64,
    /// Count in-flight messages (default true).
    #[serde(default = "yes")]
    pub scale_on_in_flight: bool,
    /// Count delayed messages (default false).
    #[serde(default)]
    pub scale_on_delayed: bool,
    /// Least replicas (default 0).
    #[serde(default)]
    pub min_replica_count: i64,
    /// Most replicas (default 100).
    #[serde(default = "hundred")]
    pub max_replica_count: i64,
    /// Seconds between checks (default 30).
    #[serde(default = "thirty")]
    pub polling_interval: i64,
    /// Seconds of inactivity before scaling to zero (default 300).
    #[serde(default = "three_hundred")]
    pub cooldown_period: i64,
}

fn keda_name() -> String {
    "keda".into()
}
fn five() -> f64 {
    5.0
}
fn yes() -> bool {
    true
}
fn hundred() -> i64 {
    100
}
fn thirty() -> i64 {
    30
}
fn three_hundred() -> i64 {
    300
}

impl ScalingFile {
    /// Parses a scaling file, or what `batchfan scale export` printed (so the documents that
    /// will be installed can be simulated as they are); an unknown field is an error naming it.
    pub fn from_json(text: &str) -> Result<ScalingFile, ScaleError> {
        let parse = |e: serde_json::Error| ScaleError::Parse { message: e.to_string() };
        let value: serde_json::Value = serde_json::from_str(text).map_err(parse)?;
        if value.get("put-scaling-policy").is_some() {
            let exported: ExportedDocs = serde_json::from_value(value).map_err(parse)?;
            return exported.into_file();
        }
        serde_json::from_value(value).map_err(parse)
    }

    /// The policies, whichever form the file uses.
    pub fn entries(&self) -> Vec<PolicyEntry> {
        let mut entries = self.policies.clone();
        if self.scaling_policy.is_some() || self.alarm.is_some() {
            entries.insert(
                0,
                PolicyEntry { scaling_policy: self.scaling_policy.clone(), alarm: self.alarm.clone(), keda: None },
            );
        }
        entries
    }
}

/// What `batchfan scale export` prints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportedDocs {
    #[serde(rename = "register-scalable-target")]
    scalable_target: ScalableTargetDoc,
    #[serde(rename = "put-scaling-policy")]
    scaling_policies: Vec<ScalingPolicyDoc>,
    #[serde(rename = "put-metric-alarm")]
    alarms: Vec<AlarmDoc>,
}

impl ExportedDocs {
    /// Each alarm goes with the policy its action names: the `${PolicyARN:NAME}` placeholder,
    /// or an Application Auto Scaling policy ARN ending in `policyName/NAME`.
    fn into_file(self) -> Result<ScalingFile, ScaleError> {
        let names = |alarm: &AlarmDoc| -> Vec<String> {
            alarm
                .alarm_actions
                .iter()
                .filter_map(|a| {
                    a.strip_prefix("${PolicyARN:")
                        .and_then(|r| r.strip_suffix('}'))
                        .or_else(|| a.rsplit_once(":policyName/").map(|(_, n)| n))
                        .map(str::to_string)
                })
                .collect()
        };
        let mut policies = Vec::new();
        for policy in &self.scaling_policies {
            let mut alarms = self.alarms.iter().filter(|a| names(a).contains(&policy.policy_name));
            let alarm = alarms.next().cloned();
            if let Some(second) = alarms.next() {
                return Err(ScaleError::Parse {
                    message: format!(
                        "policy `{}` is the action of two alarms (`{}`, `{}`): batchfan simulates one alarm per step policy",
                        policy.policy_name,
                        alarm.map(|a| a.alarm_name).unwrap_or_default(),
                        second.alarm_name
                    ),
                });
            }
            policies.push(PolicyEntry { scaling_policy: Some(policy.clone()), alarm, keda: None });
        }
        let known: Vec<&str> = self.scaling_policies.iter().map(|p| p.policy_name.as_str()).collect();
        if let Some(orphan) = self.alarms.iter().find(|a| !names(a).iter().any(|n| known.contains(&n.as_str()))) {
            return Err(ScaleError::Parse {
                message: format!(
                    "alarm `{}` invokes no policy of this file (AlarmActions {:?})",
                    orphan.alarm_name, orphan.alarm_actions
                ),
            });
        }
        Ok(ScalingFile { scalable_target: Some(self.scalable_target), policies, ..Default::default() })
    }
}
