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

/// `TargetTrackingScalingPolicyConfiguration`. batchfan simulates it on the SQS backlog per
/// task (visible messages / running tasks), the metric AWS recommends for SQS-driven services;
/// the metric specification is exported as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TargetTrackingDoc {
    /// The backlog per task to hold (acceptable latency / processing time per message).
    pub target_value: f64,
    /// The metric (metric math of visible messages over running tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customized_metric_specification: Option<serde_json::Value>,
    /// A predefined metric (not simulated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predefined_metric_specification: Option<serde_json::Value>,
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
    /// Metric math (not simulated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<serde_json::Value>,
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
    /// Parses a scaling file; an unknown field is an error naming it.
    pub fn from_json(text: &str) -> Result<ScalingFile, ScaleError> {
        serde_json::from_str(text).map_err(|e| ScaleError::Parse { message: e.to_string() })
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
