//! The metric a policy names is the metric evaluated, simulated and run (issue 17): target
//! tracking on a customized metric or metric math, step alarms on metric math, metrics batchfan
//! cannot compute refused by name or fed from a trace column, statistics over one-minute
//! samples, and the documents `export` writes simulating exactly as the file they came from.

mod common;

use batchfan_scale::controller::observable;
use batchfan_scale::engine::{Observation, Scaler, evaluate};
use batchfan_scale::export::export;
use batchfan_scale::init::{CLASSIC_EXAMPLE, recommended};
use batchfan_scale::metric::Quantity;
use batchfan_scale::policy::{Capacity, ScalingConfig};
use batchfan_scale::simulate::Trace;
use common::{options, simulate_installed, trace};
use serde_json::{Value, json};

fn target() -> Value {
    json!({"ServiceNamespace": "ecs", "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 50})
}

fn tracking(name: &str, target_value: f64, metric: Value) -> ScalingConfig {
    let file = json!({
        "ScalableTarget": target(),
        "ScalingPolicy": {"PolicyName": name, "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {"TargetValue": target_value, "CustomizedMetricSpecification": metric,
                "ScaleOutCooldown": 60, "ScaleInCooldown": 60}}
    });
    ScalingConfig::from_json(&file.to_string()).unwrap()
}

fn cpu() -> ScalingConfig {
    tracking(
        "cpu",
        60.0,
        json!({"MetricName": "CPUUtilization", "Namespace": "AWS/ECS", "Statistic": "Average",
               "Dimensions": [{"Name": "ClusterName", "Value": "c"}, {"Name": "ServiceName", "Value": "s"}]}),
    )
}

fn stat(id: &str, namespace: &str, name: &str, stat: &str) -> Value {
    json!({"Id": id, "ReturnData": false, "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": name}, "Stat": stat}})
}

fn backlog_per_task() -> ScalingConfig {
    tracking(
        "backlog",
        100.0,
        json!({"Metrics": [
            stat("m1", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Sum"),
            stat("m2", "ECS/ContainerInsights", "RunningTaskCount", "Average"),
            {"Id": "e1", "Expression": "m1 / m2", "ReturnData": true}
        ]}),
    )
}

fn queue(visible: f64, in_flight: f64, running: f64) -> Observation {
    Observation { visible, in_flight, running: Some(running), ..Default::default() }
}

// The bug: `evaluate` answered for an AWS/ECS CPUUtilization policy exactly as for backlog per
// task, from the visible messages, with no warning.
#[test]
fn a_cpu_metric_is_not_evaluated_as_backlog_and_is_refused_by_name() {
    let busy = queue(700.0, 0.0, 4.0);
    let backlog = evaluate(&backlog_per_task(), None, &busy, 4);
    assert_eq!(backlog.new_capacity, 7, "700 / 4 per task, 4 x 175 / 100: {}", backlog.reason);
    let cpu = cpu();
    let d = evaluate(&cpu, None, &busy, 4);
    assert_eq!(d.new_capacity, 4, "visible messages say nothing about CPU: {}", d.reason);
    assert_eq!(d.opinions[0].metric, None);
    let err = cpu.require(&|q| *q != Quantity::Unknown, "simulated", "give a column").unwrap_err();
    assert!(err.is_bad_input());
    assert!(err.to_string().contains("policy `cpu`: metric AWS/ECS CPUUtilization"), "{err}");
}

#[test]
fn a_cpu_metric_is_simulated_from_the_trace_column_that_feeds_it() {
    let mut cpu = cpu();
    assert_eq!(cpu.bind("cpu_percent").unwrap(), 1, "the one unknown metric takes the column");
    cpu.require(&|q| *q != Quantity::Unknown, "simulated", "").unwrap();
    // 90% for 10 minutes, then 20%.
    let trace = Trace::parse_csv("seconds,messages,cpu_percent\n0,10,90\n600,0,20\n1800,0,\n").unwrap();
    let r = simulate_installed(&cpu, None, &trace, &options(600.0), &["cpu_percent"]);
    let capacity = |minute: usize| r.minutes[minute].capacity;
    assert!(capacity(6) > 1, "90% over a target of 60 scales out: {:?}", &r.minutes[..8]);
    assert_eq!(capacity(r.minutes.len() - 1), 1, "20% for 15 minutes scales in to MinCapacity");
    // A column name that matches no metric, with two unknown metrics, is refused.
    let mut two = ScalingConfig::from_json(
        &json!({"ScalableTarget": target(), "Policies": [
            {"ScalingPolicy": {"PolicyName": "cpu", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration":
                {"TargetValue": 60, "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}}},
            {"ScalingPolicy": {"PolicyName": "mem", "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration":
                {"TargetValue": 60, "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageMemoryUtilization"}}}}
        ]})
        .to_string(),
    )
    .unwrap();
    let err = two.bind("load").unwrap_err().to_string();
    assert!(
        err.contains("ECSServiceAverageCPUUtilization") && err.contains("ECSServiceAverageMemoryUtilization"),
        "{err}"
    );
    assert_eq!(two.bind("ECSServiceAverageMemoryUtilization").unwrap(), 1, "by name");
}

#[test]
fn target_tracking_tracks_the_metric_its_document_names() {
    // Busy workers per running worker: a utilization, not a backlog.
    let busy = tracking(
        "busy",
        0.8,
        json!({"Metrics": [
            stat("m1", "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "Average"),
            stat("m2", "ECS/ContainerInsights", "RunningTaskCount", "Average"),
            {"Id": "e1", "Expression": "m1 / m2", "ReturnData": true}
        ]}),
    );
    // Every worker busy and nothing visible: 4 x 1.0 / 0.8 = 5.
    assert_eq!(evaluate(&busy, None, &queue(0.0, 4.0, 4.0), 4).new_capacity, 5);
    // A large visible backlog with idle workers: the metric (0 busy) says scale in.
    let d = evaluate(&busy, None, &queue(5000.0, 0.0, 4.0), 4);
    assert_eq!(d.new_capacity, 1, "{}", d.reason);
    // A single customized metric: the age of the oldest message, target 120 s.
    let age = tracking(
        "age",
        120.0,
        json!({"MetricName": "ApproximateAgeOfOldestMessage", "Namespace": "AWS/SQS", "Statistic": "Maximum"}),
    );
    let old = Observation { oldest_age: Some(360.0), ..queue(10.0, 0.0, 2.0) };
    assert_eq!(evaluate(&age, None, &old, 2).new_capacity, 6, "2 x 360 / 120");
}

#[test]
fn step_alarms_on_metric_math_are_evaluated() {
    let file = json!({
        "ScalableTarget": target(),
        "ScalingPolicy": {"PolicyName": "out", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "Cooldown": 60,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}]}},
        "Alarm": {"AlarmName": "work", "EvaluationPeriods": 1, "Threshold": 10, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Metrics": [
                {"Id": "m1", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible"}, "Period": 60, "Stat": "Maximum"}},
                {"Id": "m2", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesNotVisible"}, "Period": 60, "Stat": "Maximum"}},
                {"Id": "e1", "Expression": "m1 + m2", "Label": "messages not done", "ReturnData": true}]}
    });
    let c = ScalingConfig::from_json(&file.to_string()).unwrap();
    assert_eq!(evaluate(&c, None, &queue(6.0, 6.0, 2.0), 2).new_capacity, 4, "6 + 6 >= 10");
    let d = evaluate(&c, None, &queue(6.0, 0.0, 2.0), 2);
    assert_eq!(d.new_capacity, 2);
    assert!(d.opinions[0].reason.contains("is OK: 6 is not GreaterThanOrEqualToThreshold 10"), "{}", d.reason);
    // Simulated too, and what export installs simulates the same.
    let burst = trace(&[(0, 400), (900, 0)]);
    let r = simulate_installed(&c, None, &burst, &options(600.0), &[]);
    assert!(r.peak_capacity > 1 && r.finished == 400, "{r:?}");
}

// The bug: every 10-second observation was a sample, so the Sum of a gauge over a minute was six
// times what CloudWatch adds (SQS publishes one datapoint a minute).
#[test]
fn a_statistic_is_taken_over_one_minute_samples_as_cloudwatch_has_them() {
    let file = json!({
        "ScalableTarget": target(),
        "ScalingPolicy": {"PolicyName": "out", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}},
        "Alarm": {"AlarmName": "sum", "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible", "Statistic": "Sum",
            "Period": 120, "EvaluationPeriods": 1, "Threshold": 150, "ComparisonOperator": "GreaterThanThreshold"}
    });
    let c = ScalingConfig::from_json(&file.to_string()).unwrap();
    let mut scaler = Scaler::new(&c, None);
    let held = queue(60.0, 0.0, 1.0);
    let mut states = Vec::new();
    for second in (0..=900).step_by(10) {
        if let Some(d) = scaler.observe(f64::from(second), &held, 1) {
            assert_eq!(d.new_capacity, 1, "60 visible for 2 minutes sums to 120, not above 150: {}", d.reason);
            states.extend(d.opinions.iter().filter_map(|o| o.alarm.as_ref().map(|a| (a.state, a.datapoints.clone()))));
        }
    }
    assert!(!states.is_empty(), "the alarm was evaluated");
    assert!(states.iter().all(|(_, points)| points.iter().all(|p| *p == Some(120.0))), "{states:?}");
}

#[test]
fn scale_run_reads_queue_attributes_and_worker_counts_and_refuses_the_rest_by_name() {
    let age = tracking(
        "age",
        120.0,
        json!({"MetricName": "ApproximateAgeOfOldestMessage", "Namespace": "AWS/SQS", "Statistic": "Maximum"}),
    );
    let err = age.require(&observable, "read by scale run", "simulate it").unwrap_err().to_string();
    assert!(err.contains("AWS/SQS ApproximateAgeOfOldestMessage") && err.contains("policy `age`"), "{err}");
    let sent = tracking(
        "sent",
        100.0,
        json!({"MetricName": "NumberOfMessagesSent", "Namespace": "AWS/SQS", "Statistic": "Sum"}),
    );
    assert!(sent.require(&observable, "read", "").unwrap_err().to_string().contains("NumberOfMessagesSent"));
    backlog_per_task().require(&observable, "read", "").unwrap();
    let init = ScalingConfig::from_file(recommended(1.0, 300.0, 0, 20, "work").unwrap()).unwrap();
    init.require(&observable, "read", "").expect("what init recommends, scale run can run");
}

#[test]
fn every_shape_of_policy_simulates_as_its_exported_documents_do() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/traces/burst.csv")).unwrap();
    let burst = Trace::parse_csv(&text).unwrap();
    let mut classic_pair: Value = serde_json::from_str(CLASSIC_EXAMPLE).unwrap();
    let out = json!({"ScalingPolicy": classic_pair["ScalingPolicy"].take(), "Alarm": classic_pair["Alarm"].take()});
    classic_pair.as_object_mut().unwrap().retain(|k, _| k == "ScalableTarget");
    classic_pair["Policies"] = json!([out, {
        "ScalingPolicy": {"PolicyName": "in", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "Cooldown": 60,
            "StepAdjustments": [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1}]}},
        "Alarm": {"AlarmName": "low", "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible", "Statistic": "Average",
            "Period": 60, "EvaluationPeriods": 2, "Threshold": 10, "ComparisonOperator": "LessThanThreshold"}
    }]);
    let no_metric = json!({"ScalableTarget": target(), "ScalingPolicy": {"PolicyName": "tt", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 300}}});
    let configs = [
        ScalingConfig::from_json(CLASSIC_EXAMPLE).unwrap(),
        ScalingConfig::from_json(&classic_pair.to_string()).unwrap(),
        ScalingConfig::from_json(&no_metric.to_string()).unwrap(),
        backlog_per_task(),
        ScalingConfig::from_file(recommended(1.0, 300.0, 0, 100, "work").unwrap()).unwrap(),
        ScalingConfig::from_file(recommended(1.0, 300.0, 1, 100, "work").unwrap()).unwrap(),
    ];
    for config in &configs {
        simulate_installed(config, None, &burst, &options(300.0), &[]);
    }
    simulate_installed(&configs[4], Some(Capacity { min: 0, max: 30 }), &burst, &options(300.0), &[]);
}

// The bug: a target tracking policy without a metric was simulated as backlog per task while
// export wrote a metric of its own choosing, and a predefined metric got a customized one
// written beside it (two metric specifications: put-scaling-policy refuses that).
#[test]
fn export_writes_the_metric_that_was_simulated_and_nothing_else() {
    let no_metric = json!({"ScalableTarget": target(), "ScalingPolicy": {"PolicyName": "tt", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 300}}});
    let c = ScalingConfig::from_json(&no_metric.to_string()).unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("policy `tt` names no metric")), "{:?}", c.warnings);
    let docs = serde_json::to_value(export(&c, "service/prod/workers", "jobs").unwrap()).unwrap();
    let metric =
        &docs["put-scaling-policy"][0]["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"];
    assert_eq!(metric["Metrics"][2]["Expression"], "m1 / m2");
    assert_eq!(
        metric["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"],
        json!([{"Name": "QueueName", "Value": "jobs"}])
    );
    assert_eq!(
        metric["Metrics"][1]["MetricStat"]["Metric"]["Dimensions"],
        json!([{"Name": "ClusterName", "Value": "prod"}, {"Name": "ServiceName", "Value": "workers"}])
    );
    let predefined = json!({"ScalableTarget": target(), "ScalingPolicy": {"PolicyName": "cpu", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 60,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}}});
    let c = ScalingConfig::from_json(&predefined.to_string()).unwrap();
    let docs = serde_json::to_value(export(&c, "service/prod/workers", "jobs").unwrap()).unwrap();
    let config = &docs["put-scaling-policy"][0]["TargetTrackingScalingPolicyConfiguration"];
    assert!(config.get("CustomizedMetricSpecification").is_none(), "{config}");
    assert_eq!(config["PredefinedMetricSpecification"]["PredefinedMetricType"], "ECSServiceAverageCPUUtilization");
}
