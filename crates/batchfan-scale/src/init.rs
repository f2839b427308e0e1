//! Policies to start from: the classic queue-depth step policy, and the recommended policy
//! `batchfan scale init` writes for a service time and a latency objective.

use crate::document::{
    AlarmDoc, DimensionDoc, MetricDataQueryDoc, MetricDoc, MetricStatDoc, ScalableTargetDoc, ScalingFile,
    ScalingPolicyDoc, StepAdjustmentDoc, StepConfigDoc,
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
/// Seconds between a message's arrival and a decision that sees it, on average: the next
/// one-minute sample (30 s) and its datapoint, known a minute later, invoking the policy.
pub const REACTION: f64 = 90.0;
/// The longest a message waits before a decision asks for a worker for it: a one-minute sample
/// and the minute until its datapoint invokes the policy. The activation step's stated time.
pub const ACTIVATION: f64 = 120.0;

/// Capacity levels from `min` to `max`, about geometric, at most `steps` of them.
fn levels(min: u32, max: u32, steps: usize) -> Vec<u32> {
    let start = min.max(1);
    let mut levels = Vec::new();
    if min == 0 {
        levels.push(0);
    }
    let room = steps - levels.len();
    let ratio = (f64::from(max) / f64::from(start)).powf(1.0 / (room.max(2) - 1) as f64);
    let mut value = f64::from(start);
    while levels.len() < steps {
        let level = (value.round() as u32).clamp(start, max);
        if levels.last().is_none_or(|l| level > *l) {
            levels.push(level);
        }
        if level == max {
            break;
        }
        value = (value * ratio).max(f64::from(level) + 1.0);
    }
    if levels.last() != Some(&max) {
        levels.pop();
        levels.push(max);
    }
    levels
}

/// A number for an expression: at most 3 decimals, no trailing zeros.
fn constant(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A recommended policy for a service that takes `service_time` seconds per message and must
/// start every message within `slo` seconds: capacity proportional to the queue,
/// `ceil(visible * service_time / T)`, with `T = slo - start-up - reaction` the time the
/// objective leaves once a decision has seen a message and its worker has started, and never
/// fewer workers than messages in flight (so a scale-in does not stop work in progress).
///
/// Written as AWS-native step scaling: an alarm on the metric math
/// `MAX([m1, m2 * T / service_time])` (m1 visible, m2 in flight, each the one-minute Maximum) at
/// threshold 0, so it stays in ALARM and the policy is invoked every minute, and `ExactCapacity`
/// steps (at most 20, the default quota) at geometric capacity levels, each step's bounds
/// halfway between levels. With `min` 0 the first step is the activation step: a metric of 1
/// (one message visible or in flight) asks for a worker, so no message waits longer than
/// [`ACTIVATION`] seconds for one to be asked for. Capacity follows the queue down as fast as up
/// (cooldown 60 s), which target tracking's 15-minute scale-in does not. Every metric it names is
/// one `scale run` reads from GetQueueAttributes. Measured on the shipped traces:
/// BENCHMARKS.md.
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
    if min > max || max == 0 {
        return Err(option("--max", f64::from(max), "at least 1 and at least --min"));
    }
    let t = slo - ASSUMED_STARTUP - REACTION;
    if t < service_time {
        return Err(option(
            "--slo",
            slo,
            &format!(
                "above {:.0} s: a worker takes about {ASSUMED_STARTUP:.0} s to start and a decision about {REACTION:.0} s to see a message",
                ASSUMED_STARTUP + REACTION + service_time
            ),
        ));
    }
    let per_worker = t / service_time;
    let levels = levels(min, max, 20);
    let edge = |a: u32, b: u32| {
        if a == 0 {
            // The activation step: one message is enough for a worker.
            1.0
        } else {
            ((f64::from(a) + f64::from(b)) / 2.0 * per_worker).round()
        }
    };
    let steps = levels
        .iter()
        .enumerate()
        .map(|(i, c)| StepAdjustmentDoc {
            metric_interval_lower_bound: Some(if i == 0 { 0.0 } else { edge(levels[i - 1], *c) }),
            metric_interval_upper_bound: levels.get(i + 1).map(|n| edge(*c, *n)),
            scaling_adjustment: i64::from(*c),
        })
        .collect();
    let service = ScalingPolicyDoc {
        policy_name: "queue-proportional".into(),
        service_namespace: "ecs".into(),
        resource_id: "service/CLUSTER/SERVICE".into(),
        scalable_dimension: "ecs:service:DesiredCount".into(),
        policy_type: Some("StepScaling".into()),
        step_scaling_policy_configuration: Some(StepConfigDoc {
            adjustment_type: "ExactCapacity".into(),
            step_adjustments: steps,
            min_adjustment_magnitude: None,
            cooldown: Some(60),
            metric_aggregation_type: Some("Maximum".into()),
        }),
        target_tracking_scaling_policy_configuration: None,
    };
    let queue_metric = |id: &str, name: &str, label: &str| MetricDataQueryDoc {
        id: id.into(),
        label: Some(label.into()),
        return_data: Some(false),
        metric_stat: Some(MetricStatDoc {
            metric: MetricDoc {
                namespace: Some("AWS/SQS".into()),
                metric_name: Some(name.into()),
                dimensions: vec![DimensionDoc { name: "QueueName".into(), value: queue_name.into() }],
            },
            period: Some(60),
            stat: "Maximum".into(),
            unit: None,
        }),
        ..Default::default()
    };
    let activation = if min == 0 {
        format!(" Activation step: a metric of 1 (one message) asks for a worker within {ACTIVATION:.0} s.")
    } else {
        String::new()
    };
    let alarm = AlarmDoc {
        alarm_name: "queue-backlog".into(),
        alarm_description: Some(format!(
            "Always in ALARM (threshold 0): invokes queue-proportional every minute. Capacity = max(ceil(visible x {service_time} s / T), in flight), T = {t:.0} s for an SLO of {slo} s.{activation}"
        )),
        metrics: vec![
            queue_metric("m1", "ApproximateNumberOfMessagesVisible", "Visible messages"),
            queue_metric("m2", "ApproximateNumberOfMessagesNotVisible", "Messages in flight"),
            MetricDataQueryDoc {
                id: "e1".into(),
                label: Some("Visible messages, or in flight x T / service time".into()),
                expression: Some(format!("MAX([m1, m2 * {}])", constant(per_worker))),
                return_data: Some(true),
                ..Default::default()
            },
        ],
        evaluation_periods: 1,
        threshold: Some(0.0),
        comparison_operator: "GreaterThanOrEqualToThreshold".into(),
        ..Default::default()
    };
    Ok(ScalingFile {
        scalable_target: Some(ScalableTargetDoc {
            service_namespace: "ecs".into(),
            resource_id: "service/CLUSTER/SERVICE".into(),
            scalable_dimension: "ecs:service:DesiredCount".into(),
            min_capacity: Some(i64::from(min)),
            max_capacity: Some(i64::from(max)),
            ..Default::default()
        }),
        scaling_policy: Some(service),
        alarm: Some(alarm),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_increasing_within_bounds_and_at_most_20() {
        for (min, max) in [(1, 100), (0, 100), (1, 5), (3, 3), (0, 1), (2, 1000)] {
            let l = levels(min, max, 20);
            assert!(l.len() <= 20 && l.windows(2).all(|w| w[0] < w[1]), "{min}..{max}: {l:?}");
            assert_eq!((l[0], *l.last().unwrap()), (min, max), "{l:?}");
        }
    }
}
