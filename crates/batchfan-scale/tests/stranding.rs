//! No message is stranded, and none is hidden (issue 17): the policy `scale init` recommends
//! starts a worker for any message at every `--min` (0 included), and the simulation's summary
//! counts the messages still waiting when it ends, with their age, as SLO violations.

mod common;

use batchfan_scale::init::{ACTIVATION, recommended};
use batchfan_scale::policy::ScalingConfig;
use common::{options, simulate_installed, trace};
use serde_json::json;

const SLO: f64 = 300.0;

fn init(min: u32) -> ScalingConfig {
    ScalingConfig::from_file(recommended(1.0, SLO, min, 20, "work").unwrap()).unwrap()
}

// The bug: `scale init --min 0` left up to 75 visible messages with no worker, forever.
#[test]
fn the_recommended_policy_starts_a_worker_for_1_5_and_10_messages_at_every_min() {
    let traces = [
        ("1 message", trace(&[(30, 1)])),
        ("5 messages", trace(&[(0, 5)])),
        ("10 messages, one every 40 s", trace(&(0..10).map(|i| (i * 40, 1)).collect::<Vec<_>>())),
        ("a burst, then 3 messages after a long quiet", trace(&[(60, 2000), (3600, 3), (7200, 0)])),
        ("a burst, then a long quiet tail", trace(&[(60, 300), (90, 0), (14_400, 0)])),
    ];
    for min in [0, 1, 3] {
        for (name, t) in &traces {
            let r = simulate_installed(&init(min), None, t, &options(SLO), &[]);
            assert_eq!(r.finished, r.messages, "--min {min}, {name}: {r:?}");
            assert_eq!(r.slo_violations, 0, "--min {min}, {name}: worst age {}", r.worst_age);
            if min == 0 && r.messages < 20 {
                // The activation step: a worker is asked for within ACTIVATION s, ready a
                // start-up later.
                assert!(r.worst_age <= ACTIVATION + 60.0 + 1.0, "--min 0, {name}: waited {} s", r.worst_age);
            }
        }
    }
    // After the burst at --min 0 the workers go back to none, and come back for the 3.
    let r = simulate_installed(&init(0), None, &trace(&[(60, 2000), (3600, 3), (7200, 0)]), &options(SLO), &[]);
    assert_eq!(r.minutes[50].capacity, 0, "scaled to zero in the quiet");
    assert!(r.minutes[61..64].iter().any(|m| m.capacity >= 1), "a worker for the 3 late messages");
}

// The bug: a summary of "0 of 5 messages finished, worst message age 0 s, 0 messages waited
// longer" for 5 messages that never started.
#[test]
fn messages_still_waiting_at_the_end_count_with_their_age_and_as_violations() {
    // Target tracking on backlog per task cannot scale out from zero tasks (the metric divides
    // by the running tasks): at MinCapacity 0 it strands every message.
    let file = json!({
        "ScalableTarget": {"ServiceNamespace": "ecs", "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 0, "MaxCapacity": 10},
        "ScalingPolicy": {"PolicyName": "backlog", "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 100}}
    });
    let config = ScalingConfig::from_json(&file.to_string()).unwrap();
    let r = simulate_installed(&config, None, &trace(&[(0, 5)]), &options(SLO), &[]);
    assert_eq!((r.messages, r.finished, r.in_flight, r.waiting), (5, 0, 0, 5));
    assert_eq!(r.slo_violations, 5, "each of them waited longer than the SLO");
    assert!(r.oldest_waiting_age >= 6.0 * 3600.0, "their age when the simulation gave up: {}", r.oldest_waiting_age);
    assert_eq!(r.worst_age, r.oldest_waiting_age, "the oldest age seen anywhere");
    assert!(!r.kept_slo());
    let last = r.minutes.last().unwrap();
    assert_eq!((last.waiting, last.over_slo), (5, 5), "the last minute shows them too");
    assert!((last.oldest_age - r.worst_age).abs() <= 60.0, "the per-minute table agrees with the summary");
}
