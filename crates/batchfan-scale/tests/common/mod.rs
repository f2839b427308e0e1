//! What every simulating test goes through: the policy is simulated, exported as the documents
//! that install it, loaded back from them, and simulated again; both must ask for the same
//! capacity minute by minute (issue 17: simulate what will be installed).

#![allow(dead_code)]

use batchfan_scale::export::export;
use batchfan_scale::policy::{Capacity, Policy, ScalingConfig};
use batchfan_scale::simulate::{SimOptions, SimResult, Trace, simulate};

/// Simulates `config` and, unless it holds a KEDA policy (not an AWS document), its exported
/// documents loaded back (with the same `columns` bound); asserts equal capacities per minute.
pub fn simulate_installed(
    config: &ScalingConfig,
    bounds: Option<Capacity>,
    trace: &Trace,
    options: &SimOptions,
    columns: &[&str],
) -> SimResult {
    let result = simulate(config, bounds, trace, options);
    if config.policies.iter().any(|p| matches!(p, Policy::Keda(_))) {
        return result;
    }
    let docs = export(config, "service/cluster/workers", "work").expect("exports");
    let text = serde_json::to_string(&docs).expect("JSON");
    let mut installed = ScalingConfig::from_json(&text).unwrap_or_else(|e| panic!("export loads back: {e}\n{text}"));
    for column in columns {
        installed.bind(column).expect("the column binds again");
    }
    let again = simulate(&installed, bounds, trace, options);
    let capacities = |r: &SimResult| r.minutes.iter().map(|m| m.capacity).collect::<Vec<_>>();
    assert_eq!(capacities(&result), capacities(&again), "the installed documents ask for other capacities");
    assert_eq!(result.task_hours, again.task_hours);
    result
}

/// A trace from `(second, messages)` pairs.
pub fn trace(arrivals: &[(u64, u64)]) -> Trace {
    Trace { arrivals: arrivals.to_vec(), ..Default::default() }
}

/// 1 s per message, 60 s start-up, the given SLO.
pub fn options(slo: f64) -> SimOptions {
    SimOptions { service_time: 1.0, startup_delay: 60.0, initial_capacity: None, slo: Some(slo) }
}
