//! Policies to start from: the classic queue-depth step policy, and the recommended policy
//! `batchfan scale init` writes for a service time and a latency objective.

use crate::document::{
    AlarmDoc, DimensionDoc, PolicyEntry, ScalableTargetDoc, ScalingFile, ScalingPolicyDoc, StepAdjustmentDoc,
    StepConfigDoc, TargetTrackingDoc,
};
use crate::error::ScaleError;

/// The classic queue-depth policy (Application Auto Scaling User Guide's SQS example): an alarm
/// at 100 visible messages over 2 periods of 60 s; steps [0, 500) +2, [500, 2000) +5,
/// [2000, inf) +10; cooldown 60. Queue depth 100-600 adds 2, 600-2100 adds 5, 2100 and more 10.
pub const CLASSIC_EXAMPLE: &str = r#"{
  "ScalableTarget": {"ServiceNamespace": "ecs", "ResourceId": "service/cluster/workers",
                     "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 100},
  "ScalingPolicy": {
    "PolicyName": "queue-depth-out",
    "ServiceNamespace": "ecs", "ResourceId": "service/cluster/workers", "ScalableDimension": "ecs:service:DesiredCount",
    "PolicyType": "StepScaling",
    "StepScalingPolicyConfiguration": {
      "AdjustmentType": "ChangeInCapacity",
      "StepAdjustments": [
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 500, "ScalingAdjustment": 2},
        {"MetricIntervalLowerBound": 500, "MetricIntervalUpperBound": 2000, "ScalingAdjustment": 5},
        {"MetricIntervalLowerBound": 2000, "ScalingAdjustment": 10}
      ],
      "Cooldown": 60,
      "MetricAggregationType": "Average"
    }
  },
  "Alarm": {
    "AlarmName": "queue-depth-high",
    "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible",
    "Dimensions": [{"Name": "QueueName", "Value": "work"}],
    "Statistic": "Average", "Period": 60, "EvaluationPeriods": 2, "Threshold": 100,
    "ComparisonOperator": "GreaterThanOrEqualToThreshold"
  }
}"#;

/// Seconds a new worker takes to start, assumed by [`recommended`] (the simulator's default).
pub const ASSUMED_STARTUP: f64 = 60.0;

/// A recommended policy for a service that takes `service_time` seconds per message and must
/// start every message within `slo` seconds: backlog-per-task target tracking (AWS's advice for
/// SQS) whose target is the backlog one task clears in the time the SLO leaves after a worker's
/// start-up and target tracking's three minutes of alarm datapoints, with one-minute cooldowns
/// so capacity follows the queue closely, plus a step policy on the oldest message's age that
/// adds capacity at once when the objective is at risk.
pub fn recommended(
    service_time: f64,
    slo: f64,
    min: u32,
    max: u32,
    queue_name: &str,
) -> Result<ScalingFile, ScaleError> {
    let option = |field: &str, value: f64, allowed: &str| ScaleError::Option {
        field: field.into(),
        value: value.to_string(),
        allowed: allowed.into(),
    };
    if !(service_time.is_finite() && service_time > 0.0) {
        return Err(option("--service-time", service_time, "seconds per message, above 0"));
    }
    if !(slo.is_finite() && slo > 0.0) {
        return Err(option("--slo", slo, "seconds, above 0"));
    }
    if min > max {
        return Err(option("--min", f64::from(min), "at most --max"));
    }
    // What one task clears in the time the objective leaves after the reaction delays.
    let margin = slo - ASSUMED_STARTUP - 180.0;
    if margin <= service_time {
        return Err(option(
            "--slo",
            slo,
            &format!(
                "above {:.0} s: a worker takes about {ASSUMED_STARTUP:.0} s to start and target tracking 3 minutes to react",
                ASSUMED_STARTUP + 180.0 + service_time
            ),
        ));
    }
    let target = (margin / service_time).floor().max(1.0);
    let target_doc = ScalableTargetDoc {
        service_namespace: "ecs".into(),
        resource_id: "service/CLUSTER/SERVICE".into(),
        scalable_dimension: "ecs:service:DesiredCount".into(),
        min_capacity: Some(i64::from(min)),
        max_capacity: Some(i64::from(max)),
        ..Default::default()
    };
    let policy = |name: &str| ScalingPolicyDoc {
        policy_name: name.into(),
        service_namespace: "ecs".into(),
        resource_id: "service/CLUSTER/SERVICE".into(),
        scalable_dimension: "ecs:service:DesiredCount".into(),
        ..Default::default()
    };
    let backlog = ScalingPolicyDoc {
        policy_type: Some("TargetTrackingScaling".into()),
        target_tracking_scaling_policy_configuration: Some(TargetTrackingDoc {
            target_value: target,
            scale_out_cooldown: Some(60),
            scale_in_cooldown: Some(60),
            ..Default::default()
        }),
        ..policy("backlog-per-task")
    };
    // The guard: the oldest message at half the objective adds 50% capacity (at least 2).
    let guard = ScalingPolicyDoc {
        policy_type: Some("StepScaling".into()),
        step_scaling_policy_configuration: Some(StepConfigDoc {
            adjustment_type: "PercentChangeInCapacity".into(),
            step_adjustments: vec![StepAdjustmentDoc {
                metric_interval_lower_bound: Some(0.0),
                metric_interval_upper_bound: None,
                scaling_adjustment: 50,
            }],
            min_adjustment_magnitude: Some(2),
            cooldown: Some(60),
            metric_aggregation_type: Some("Maximum".into()),
        }),
        ..policy("oldest-message-guard")
    };
    let guard_alarm = AlarmDoc {
        alarm_name: "oldest-message-at-half-the-slo".into(),
        namespace: Some("AWS/SQS".into()),
        metric_name: Some("ApproximateAgeOfOldestMessage".into()),
        dimensions: vec![DimensionDoc { name: "QueueName".into(), value: queue_name.into() }],
        statistic: Some("Maximum".into()),
        period: Some(60),
        evaluation_periods: 1,
        threshold: Some((slo / 2.0).round()),
        comparison_operator: "GreaterThanOrEqualToThreshold".into(),
        ..Default::default()
    };
    Ok(ScalingFile {
        scalable_target: Some(target_doc),
        policies: vec![
            PolicyEntry { scaling_policy: Some(backlog), ..Default::default() },
            PolicyEntry { scaling_policy: Some(guard), alarm: Some(guard_alarm), keda: None },
        ],
        ..Default::default()
    })
}
