//! The simulation benchmark: each shipped trace (burst, diurnal, ramp) through the classic
//! queue-depth policy, backlog-per-task target tracking, KEDA and the policy `batchfan scale
//! init` recommends, against the oracle. Service time 1 s per message, worker start-up 60 s,
//! SLO 300 s (every message starts within 5 minutes), capacity 1..=100 (KEDA 0..=100).
//! `cargo bench -p batchfan-scale --bench policies` prints the table in BENCHMARKS.md.

use batchfan_scale::init::{CLASSIC_EXAMPLE, recommended};
use batchfan_scale::policy::{Capacity, ScalingConfig};
use batchfan_scale::simulate::{SimOptions, Trace, lower_bound, oracle, simulate};
use serde_json::json;

const SERVICE_TIME: f64 = 1.0;
const STARTUP: f64 = 60.0;
const SLO: f64 = 300.0;

fn classic() -> ScalingConfig {
    // The classic scale-out policy as the AWS example gives it, with the scale-in policy such a
    // setup pairs it with (-1 while fewer than 10 messages are visible for 2 minutes).
    let mut file: serde_json::Value = serde_json::from_str(CLASSIC_EXAMPLE).expect("example");
    let out = json!({"ScalingPolicy": file["ScalingPolicy"].take(), "Alarm": file["Alarm"].take()});
    file.as_object_mut().expect("object").retain(|k, _| k == "ScalableTarget");
    file["Policies"] = json!([out, {
        "ScalingPolicy": {"PolicyName": "queue-depth-in", "PolicyType": "StepScaling", "StepScalingPolicyConfiguration": {
            "AdjustmentType": "ChangeInCapacity", "Cooldown": 60,
            "StepAdjustments": [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1}]}},
        "Alarm": {"AlarmName": "queue-depth-low", "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible",
            "Statistic": "Average", "Period": 60, "EvaluationPeriods": 2, "Threshold": 10, "ComparisonOperator": "LessThanThreshold"}
    }]);
    ScalingConfig::from_json(&file.to_string()).expect("classic")
}

fn backlog() -> ScalingConfig {
    // AWS's recipe: target = acceptable latency / processing time (300 s / 1 s), default cooldowns;
    // no metric given, so AWS's backlog per task: visible messages / RunningTaskCount.
    ScalingConfig::from_json(
        &json!({
            "ScalableTarget": {"ServiceNamespace": "ecs", "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1, "MaxCapacity": 100},
            "ScalingPolicy": {"PolicyName": "backlog-per-task", "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {"TargetValue": SLO / SERVICE_TIME}}
        })
        .to_string(),
    )
    .expect("backlog")
}

fn keda() -> ScalingConfig {
    ScalingConfig::from_json(&json!({"Policies": [{"Keda": {"name": "keda", "maxReplicaCount": 100}}]}).to_string())
        .expect("keda")
}

fn main() {
    let traces = ["burst", "diurnal", "ramp"];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("traces");
    let recommended =
        ScalingConfig::from_file(recommended(SERVICE_TIME, SLO, 1, 100, "work").expect("init")).expect("valid");
    let policies: [(&str, ScalingConfig, Option<Capacity>); 4] = [
        ("classic step (+2/+5/+10, -1 below 10)", classic(), None),
        ("backlog per task, target 300", backlog(), None),
        ("KEDA queueLength 5", keda(), Some(Capacity { min: 0, max: 100 })),
        ("recommended (scale init)", recommended, None),
    ];
    println!("service time {SERVICE_TIME} s, start-up {STARTUP} s, SLO {SLO} s\n");
    println!("| trace | policy | task-hours | x oracle | worst age s | SLO violations | never started | peak |");
    println!("|-------|--------|-----------:|---------:|------------:|---------------:|--------------:|-----:|");
    for name in traces {
        let text = std::fs::read_to_string(dir.join(format!("{name}.csv"))).expect("trace");
        let trace = Trace::parse_csv(&text).expect("trace parses");
        let best = oracle(&trace, SERVICE_TIME, SLO);
        let options =
            SimOptions { service_time: SERVICE_TIME, startup_delay: STARTUP, initial_capacity: None, slo: Some(SLO) };
        for (label, config, bounds) in &policies {
            let r = simulate(config, *bounds, &trace, &options);
            println!(
                "| {name} | {label} | {:.2} | {:.2} | {:.0} | {} | {} | {} |",
                r.task_hours,
                r.task_hours / best.task_hours,
                r.worst_age,
                r.slo_violations,
                r.waiting,
                r.peak_capacity
            );
        }
        println!(
            "| {name} | oracle (fluid, start-up free) | {:.2} | 1.00 | {:.0} | 0 | 0 | {} |",
            best.task_hours, best.worst_age, best.peak_capacity
        );
        // The oracle's own schedule with each worker it adds billed for its start-up, as every
        // policy's workers are (not a lower bound: the oracle does not plan around start-up).
        let added: u32 = best.minutes.windows(2).map(|w| w[1].capacity.saturating_sub(w[0].capacity)).sum::<u32>()
            + best.minutes.first().map_or(0, |m| m.capacity);
        let billed = best.task_hours + f64::from(added) * STARTUP / 3600.0;
        println!(
            "| {name} | oracle's schedule, start-up billed | {billed:.2} | {:.2} | {:.0} | 0 | 0 | {} |",
            billed / best.task_hours,
            best.worst_age,
            best.peak_capacity
        );
        // A true lower bound with start-up: the work plus the start-up of the workers the SLO
        // needs at once.
        let (bound, workers) = lower_bound(&trace, SERVICE_TIME, SLO, STARTUP);
        println!(
            "| {name} | lower bound: work + start-up of the {workers} workers the SLO needs at once | {bound:.2} | {:.2} | - | 0 | 0 | {workers} |",
            bound / best.task_hours
        );
    }
}
