//! The policy engine against AWS's own examples and rules: step selection, rounding, both
//! cooldown rules, clamping, validation (each rule an error naming policy and step), round trips
//! of the AWS documents, several policies, target tracking and KEDA.

use batchfan_scale::ScaleError;
use batchfan_scale::document::ScalingFile;
use batchfan_scale::engine::{Observation, Scaler, evaluate};
use batchfan_scale::init::{CLASSIC_EXAMPLE, recommended};
use batchfan_scale::policy::{Capacity, ScalingConfig};
use serde_json::{Value, json};

/// The queue with `n` visible messages and nothing else known.
fn visible(n: f64) -> Observation {
    Observation { visible: n, ..Default::default() }
}

fn classic() -> ScalingConfig {
    ScalingConfig::from_json(CLASSIC_EXAMPLE).unwrap()
}

/// A one-policy scaling file with these step adjustments and extras.
fn step_file(steps: Value, config: Value, alarm: Value) -> Value {
    let mut step_config = json!({"AdjustmentType": "ChangeInCapacity", "StepAdjustments": steps, "Cooldown": 300});
    for (k, v) in config.as_object().unwrap() {
        step_config[k] = v.clone();
    }
    let mut alarm_doc = json!({
        "AlarmName": "a", "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible",
        "Statistic": "Average", "Period": 60, "EvaluationPeriods": 1, "Threshold": 100,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold"
    });
    for (k, v) in alarm.as_object().unwrap() {
        alarm_doc[k] = v.clone();
    }
    json!({
        "ScalableTarget": {"ServiceNamespace": "ecs", "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 20},
        "ScalingPolicy": {"PolicyName": "p", "PolicyType": "StepScaling", "StepScalingPolicyConfiguration": step_config},
        "Alarm": alarm_doc
    })
}

fn config(file: &Value) -> Result<ScalingConfig, ScaleError> {
    ScalingConfig::from_json(&file.to_string())
}

#[test]
fn the_classic_policy_adds_2_5_and_10_by_queue_depth() {
    let c = classic();
    for (depth, added) in [(99.0, 0), (100.0, 2), (599.0, 2), (600.0, 5), (2099.0, 5), (2100.0, 10), (50_000.0, 10)] {
        let d = evaluate(&c, None, &visible(depth), 4);
        assert_eq!(d.new_capacity, 4 + added, "depth {depth}: {}", d.reason);
    }
    let d = evaluate(&c, None, &visible(700.0), 4);
    assert_eq!(d.opinions[0].step, Some(1), "the step that fired is named");
    assert_eq!(d.applied.as_deref(), Some("queue-depth-out"));
    let quiet = evaluate(&c, None, &visible(50.0), 4);
    assert!(quiet.opinions[0].reason.contains("is OK"), "why none fired: {}", quiet.reason);
}

#[test]
fn bounds_are_offsets_inclusive_above_and_exclusive_below_the_threshold() {
    // Threshold 100; steps (-inf, -50] -3, (-50, 0] -1 below; [0, 50) +1, [50, inf) +3 above.
    let steps = json!([
        {"MetricIntervalUpperBound": -50, "ScalingAdjustment": -3},
        {"MetricIntervalLowerBound": -50, "MetricIntervalUpperBound": 0, "ScalingAdjustment": -1},
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 50, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 50, "ScalingAdjustment": 3}
    ]);
    let c = config(&step_file(steps, json!({}), json!({}))).unwrap();
    let Some(batchfan_scale::policy::Policy::Step(p)) = c.policies.first() else { panic!() };
    let pick = |metric: f64| p.step_for(metric).map(|s| s.adjustment);
    assert_eq!(pick(100.0), Some(1), "at the threshold: the step above, lower bound inclusive");
    assert_eq!(pick(149.999), Some(1));
    assert_eq!(pick(150.0), Some(3), "upper bound exclusive above the threshold");
    assert_eq!(pick(99.0), Some(-1));
    assert_eq!(pick(50.0), Some(-3), "below the threshold the upper bound is inclusive: -50 is in (-inf, -50]");
    assert_eq!(pick(50.001), Some(-1), "and the lower bound exclusive");
}

#[test]
fn percent_change_rounds_as_aws_and_min_adjustment_magnitude_applies() {
    let steps = json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 25}]);
    let file = step_file(steps, json!({"AdjustmentType": "PercentChangeInCapacity"}), json!({}));
    // AWS's example: 25% of 4 is 1.
    assert_eq!(evaluate(&config(&file).unwrap(), None, &visible(200.0), 4).new_capacity, 5);
    // 25% of 10 is 2.5, rounded down to 2.
    assert_eq!(evaluate(&config(&file).unwrap(), None, &visible(200.0), 10).new_capacity, 12);
    // MinAdjustmentMagnitude 2 makes the 1 a 2.
    let steps = json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 25}]);
    let file =
        step_file(steps, json!({"AdjustmentType": "PercentChangeInCapacity", "MinAdjustmentMagnitude": 2}), json!({}));
    assert_eq!(evaluate(&config(&file).unwrap(), None, &visible(200.0), 4).new_capacity, 6);
    // Scale in by a third of 20: -6.67 rounds up to -6.
    let steps = json!([{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -33}]);
    let file = step_file(
        steps,
        json!({"AdjustmentType": "PercentChangeInCapacity"}),
        json!({"ComparisonOperator": "LessThanThreshold"}),
    );
    assert_eq!(evaluate(&config(&file).unwrap(), None, &visible(10.0), 20).new_capacity, 14);
}

#[test]
fn results_are_clamped_to_the_scalable_target() {
    let steps = json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 50}]);
    let exact = config(&step_file(steps, json!({"AdjustmentType": "ExactCapacity"}), json!({}))).unwrap();
    assert_eq!(evaluate(&exact, None, &visible(500.0), 3).new_capacity, 20, "MaxCapacity 20");
    let steps = json!([{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -5}]);
    let down = config(&step_file(steps, json!({}), json!({"ComparisonOperator": "LessThanThreshold"}))).unwrap();
    assert_eq!(evaluate(&down, None, &visible(0.0), 2).new_capacity, 1, "MinCapacity 1");
    assert_eq!(evaluate(&down, Some(Capacity { min: 0, max: 5 }), &visible(0.0), 2).new_capacity, 0, "--min overrides");
}

/// Feeds `value` every 60 s from `from` to `to` (inclusive); returns the capacity after each
/// decision that changed it.
fn drive(scaler: &mut Scaler, capacity: &mut u32, from: u32, to: u32, value: f64) -> Vec<(u32, u32)> {
    let mut changes = Vec::new();
    for minute in from..=to {
        let obs = Observation { visible: value, running: Some(f64::from(*capacity)), ..Default::default() };
        if let Some(d) = scaler.observe(f64::from(minute) * 60.0, &obs, *capacity)
            && d.new_capacity != *capacity
        {
            *capacity = d.new_capacity;
            changes.push((minute, *capacity));
        }
    }
    changes
}

#[test]
fn scale_out_cooldown_counts_what_the_last_scale_out_added() {
    // +2 for [0, 500), +3 above 500; cooldown 300.
    let steps = json!([
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 500, "ScalingAdjustment": 2},
        {"MetricIntervalLowerBound": 500, "ScalingAdjustment": 3}
    ]);
    let c = config(&step_file(steps, json!({}), json!({}))).unwrap();
    let mut scaler = Scaler::new(&c, None);
    let mut capacity = 1;
    // A period's datapoint is known when the period closes: the sample of minute 0 fires at 1.
    assert_eq!(drive(&mut scaler, &mut capacity, 0, 1, 200.0), vec![(1, 3)], "+2");
    // Within the cooldown the +3 step adds only 1 more: the +2 counts toward it.
    assert_eq!(drive(&mut scaler, &mut capacity, 2, 3, 900.0), vec![(3, 4)]);
    // Still within the cooldown (from minute 3 to 8): the +3 is reached, nothing more.
    assert_eq!(drive(&mut scaler, &mut capacity, 4, 7, 900.0), vec![]);
    // After the cooldown, +3 again.
    assert_eq!(drive(&mut scaler, &mut capacity, 8, 8, 900.0), vec![(8, 7)]);
}

#[test]
fn scale_in_cooldown_blocks_scale_ins_and_a_scale_out_ends_it() {
    let file = json!({
        "ScalableTarget": {"ServiceNamespace": "ecs", "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 0, "MaxCapacity": 50},
        "Policies": [
            {"ScalingPolicy": {"PolicyName": "in", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "Cooldown": 300,
                "StepAdjustments": [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1}]}},
             "Alarm": {"AlarmName": "low", "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible", "Period": 60,
                "EvaluationPeriods": 1, "Threshold": 10, "ComparisonOperator": "LessThanThreshold"}},
            {"ScalingPolicy": {"PolicyName": "out", "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "Cooldown": 60,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}},
             "Alarm": {"AlarmName": "high", "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible", "Period": 60,
                "EvaluationPeriods": 1, "Threshold": 1000, "ComparisonOperator": "GreaterThanOrEqualToThreshold"}}
        ]
    });
    let c = config(&file).unwrap();
    let mut scaler = Scaler::new(&c, None);
    let mut capacity = 10;
    // An empty queue: one scale-in, then blocked for 300 s, then the next.
    assert_eq!(drive(&mut scaler, &mut capacity, 0, 5, 0.0), vec![(1, 9)]);
    assert_eq!(drive(&mut scaler, &mut capacity, 6, 6, 0.0), vec![(6, 8)]);
    // A burst scales out at once, inside the scale-in cooldown (from minute 6 to 11), and ends it.
    assert_eq!(drive(&mut scaler, &mut capacity, 7, 8, 5000.0), vec![(8, 9)]);
    // Minute 9 still sees minute 8's burst (+1); minute 10 scales in although the scale-in
    // cooldown from minute 6 would have run to minute 11: the scale-out ended it.
    assert_eq!(drive(&mut scaler, &mut capacity, 9, 10, 0.0), vec![(9, 10), (10, 9)]);
}

#[test]
fn several_policies_scale_out_if_any_and_in_only_if_all_agree() {
    let file = json!({
        "ScalableTarget": {"ServiceNamespace": "ecs", "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 0, "MaxCapacity": 100},
        "Policies": [
            {"Keda": {"name": "keda", "queueLength": 10}},
            {"ScalingPolicy": {"PolicyName": "backlog", "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 100}}}
        ]
    });
    let c = config(&file).unwrap();
    // Every task running: backlog per task is visible / capacity.
    let queue = |n: f64, capacity: u32| Observation { running: Some(f64::from(capacity)), ..visible(n) };
    // Out: KEDA wants 50 (500 / 10), backlog TT wants 5: the larger wins.
    let d = evaluate(&c, None, &queue(500.0, 2), 2);
    assert_eq!((d.new_capacity, d.applied.as_deref()), (50, Some("keda")));
    // In: KEDA wants 2 (20 / 10), TT (0.2 per task, far below its target) wants 1: both agree,
    // the smaller reduction wins.
    let d = evaluate(&c, None, &queue(20.0, 100), 100);
    assert_eq!(d.new_capacity, 2, "{}", d.reason);
    // One disagrees: no scale-in. TT has scale-in disabled.
    let mut no_in = file.clone();
    no_in["Policies"][1]["ScalingPolicy"]["TargetTrackingScalingPolicyConfiguration"]["DisableScaleIn"] = json!(true);
    let d = evaluate(&config(&no_in).unwrap(), None, &queue(20.0, 100), 100);
    assert_eq!(d.new_capacity, 100, "{}", d.reason);
    assert!(d.reason.contains("backlog"), "names the policy that holds: {}", d.reason);
}

#[test]
fn target_tracking_scales_out_after_3_minutes_and_in_after_15() {
    let file = json!({
        "ScalableTarget": {"ServiceNamespace": "ecs", "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 100},
        "ScalingPolicy": {"PolicyName": "backlog", "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 100, "ScaleOutCooldown": 60, "ScaleInCooldown": 60}}
    });
    let c = config(&file).unwrap();
    let mut scaler = Scaler::new(&c, None);
    let mut capacity = 2;
    // 1000 visible on 2 tasks: 500 per task, 5x the target: after 3 datapoints (the samples of
    // minutes 0 to 2, each known a minute later), 2 x 500 / 100.
    assert_eq!(drive(&mut scaler, &mut capacity, 0, 3, 1000.0), vec![(3, 10)]);
    // The datapoint known at minute 4 is minute 3's, which still saw 2 tasks running: 10 x 500 /
    // 100 = 50. A metric that lags the capacity makes target tracking overshoot; the scale-out
    // cooldown does not stop a larger desired capacity. Then 100 visible is 10 or 2 per task,
    // below 90% of the target: scale in after 15 such datapoints only (the samples of minutes 4
    // to 18, known at 5 to 19): 50 x 2 / 100 = 1.
    let changes = drive(&mut scaler, &mut capacity, 4, 30, 100.0);
    assert_eq!(changes, vec![(4, 50), (19, 1)]);
}

#[test]
fn keda_counts_in_flight_keeps_the_tolerance_and_scales_to_zero_after_its_cooldown() {
    let file =
        json!({"Policies": [{"Keda": {"name": "k", "queueLength": 5, "cooldownPeriod": 120, "pollingInterval": 30}}]});
    let c = config(&file).unwrap();
    let bounds = Some(Capacity { min: 0, max: 50 });
    let mut scaler = Scaler::new(&c, bounds);
    let obs = Observation { visible: 40.0, in_flight: 10.0, ..Default::default() };
    assert_eq!(scaler.observe(0.0, &obs, 0).unwrap().new_capacity, 10, "(40 + 10) / 5");
    let near = Observation { visible: 47.0, in_flight: 6.0, ..Default::default() };
    assert_eq!(scaler.observe(30.0, &near, 10).unwrap().new_capacity, 10, "53 / 50 is within 10%");
    let empty = Observation::default();
    let mut capacity = 10;
    let mut at_zero = None;
    for step in 2..40 {
        let t = f64::from(step) * 30.0;
        if let Some(d) = scaler.observe(t, &empty, capacity) {
            capacity = d.new_capacity;
            if capacity == 0 && at_zero.is_none() {
                at_zero = Some(t);
            }
        }
    }
    // Last active at 30 s: the HPA's scale-down stabilization holds 10 until KEDA itself scales
    // to zero at the first poll at or past cooldownPeriod (30 + 120 s).
    assert_eq!(capacity, 0);
    assert_eq!(at_zero, Some(150.0));
}

#[test]
fn every_rule_is_an_error_naming_the_policy_and_the_step() {
    let cases: Vec<(Value, &str)> = vec![
        (
            step_file(
                json!([{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 500, "ScalingAdjustment": 1},
                             {"MetricIntervalLowerBound": 400, "ScalingAdjustment": 2}]),
                json!({}),
                json!({}),
            ),
            "policy `p`, step 1: overlaps step 0",
        ),
        (
            step_file(
                json!([{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 500, "ScalingAdjustment": 1},
                             {"MetricIntervalLowerBound": 600, "ScalingAdjustment": 2}]),
                json!({}),
                json!({}),
            ),
            "policy `p`, step 1: leaves a gap after step 0",
        ),
        (
            step_file(
                json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1},
                             {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 2}]),
                json!({}),
                json!({}),
            ),
            "policy `p`, step 1: a second step with no upper bound",
        ),
        (
            step_file(
                json!([{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1},
                             {"MetricIntervalUpperBound": -10, "ScalingAdjustment": -2}]),
                json!({}),
                json!({}),
            ),
            "policy `p`, step 1: a second step with no lower bound",
        ),
        (
            step_file(json!([{"ScalingAdjustment": 1}]), json!({}), json!({})),
            "policy `p`, step 0: is open on both ends",
        ),
        (
            step_file(
                json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": -2}]),
                json!({"AdjustmentType": "ExactCapacity"}),
                json!({}),
            ),
            "policy `p`, step 0: ScalingAdjustment -2 is negative",
        ),
        (
            step_file(
                json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}]),
                json!({"MinAdjustmentMagnitude": 2}),
                json!({}),
            ),
            "policy `p`: MinAdjustmentMagnitude applies only to AdjustmentType PercentChangeInCapacity",
        ),
        (
            step_file(
                json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}]),
                json!({}),
                json!({"MetricName": "ApproximateNumberOfMessages"}),
            ),
            "use ApproximateNumberOfMessagesVisible",
        ),
        (
            step_file(
                json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}]),
                json!({}),
                json!({"MetricName": "QueueDepth"}),
            ),
            "`QueueDepth` is not an AWS/SQS metric",
        ),
        (
            step_file(
                json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}]),
                json!({}),
                json!({"DatapointsToAlarm": 3}),
            ),
            "DatapointsToAlarm 3 must be from 1 to EvaluationPeriods (1)",
        ),
    ];
    for (file, message) in cases {
        let err = config(&file).unwrap_err();
        assert!(err.is_bad_input());
        assert!(err.to_string().contains(message), "expected `{message}` in: {err}");
    }
    let mut inverted =
        step_file(json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}]), json!({}), json!({}));
    inverted["ScalableTarget"]["MinCapacity"] = json!(30);
    let err = config(&inverted).unwrap_err();
    assert!(err.to_string().contains("MinCapacity 30 is greater than MaxCapacity 20"), "{err}");
    let mut unknown = step_file(json!([{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}]), json!({}), json!({}));
    unknown["ScalingPolicy"]["StepScalingPolicyConfiguration"]["Cooldwn"] = json!(60);
    let err = config(&unknown).unwrap_err();
    assert!(err.to_string().contains("unknown field `Cooldwn`"), "{err}");
}

#[test]
fn steps_the_alarm_never_reaches_are_warnings_naming_them() {
    // A GreaterThanThreshold alarm never sees offsets below 0: the scale-in step is dead.
    let steps = json!([
        {"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1},
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}
    ]);
    let c = config(&step_file(steps, json!({}), json!({"ComparisonOperator": "GreaterThanThreshold"}))).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("policy `p`, step 0: never applies"), "{}", c.warnings[0]);
}

#[test]
fn the_aws_documents_round_trip() {
    for text in
        [CLASSIC_EXAMPLE.to_string(), serde_json::to_string(&recommended(2.0, 600.0, 1, 40, "work").unwrap()).unwrap()]
    {
        let file = ScalingFile::from_json(&text).unwrap();
        let again = ScalingFile::from_json(&serde_json::to_string(&file).unwrap()).unwrap();
        assert_eq!(file, again);
        ScalingConfig::from_file(again).unwrap();
    }
}
