//! The policy engine: observations in, capacity decisions out, as Application Auto Scaling and
//! CloudWatch compute them. Pure: time is the caller's (seconds), so the simulator and the
//! controller drive the same code.
//!
//! - An alarm turns the observations of each `Period` into one datapoint (its `Statistic`) and is
//!   in ALARM when at least `DatapointsToAlarm` of the last `EvaluationPeriods` datapoints breach
//!   its threshold. While in ALARM its policy is invoked once a minute (CloudWatch keeps invoking
//!   Auto Scaling actions once per minute while an alarm stays in ALARM).
//! - The step is picked by the `MetricAggregationType` aggregate of the evaluated datapoints.
//! - Step scaling cooldown (Application Auto Scaling User Guide, "Step scaling policies"): during
//!   a scale-out's cooldown the capacity it added counts toward the next scale-out (+2, then a
//!   +3 step within the cooldown, adds 1); a scale-in blocks further scale-ins until its cooldown
//!   ends; a scale-out during it proceeds at once and ends it.
//! - Backlog-per-task target tracking: every minute, backlog per task = visible / running tasks;
//!   desired = ceil(visible / target). Like the two alarms target tracking creates, it scales out
//!   after 3 one-minute datapoints above the target and in after 15 below 90% of it.
//! - KEDA (`aws-sqs-queue`): every `pollingInterval`, counted messages / `queueLength`, the HPA's
//!   10% tolerance and 300 s scale-down stabilization, 0 <-> 1 by `activationQueueLength`, and
//!   scale to zero after `cooldownPeriod` without activity.
//! - Several policies: out if any says out (the largest), in only if every policy with an
//!   opinion agrees (the smallest reduction); the result is clamped to the target's bounds.

use std::collections::VecDeque;

use serde::Serialize;

use crate::policy::{
    AdjustmentType, Aggregation, Alarm, BacklogPolicy, Capacity, KedaPolicy, Policy, ScalingConfig, SqsMetric,
    Statistic, StepPolicy,
};

/// One look at the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Observation {
    /// Visible messages (waiting).
    pub visible: f64,
    /// In flight.
    pub in_flight: f64,
    /// Delayed.
    pub delayed: f64,
    /// Age of the oldest message, seconds.
    pub oldest_age: f64,
}

impl Observation {
    fn metric(&self, metric: SqsMetric) -> f64 {
        match metric {
            SqsMetric::Visible => self.visible,
            SqsMetric::NotVisible => self.in_flight,
            SqsMetric::Delayed => self.delayed,
            SqsMetric::AgeOfOldestMessage => self.oldest_age,
        }
    }
}

/// What one policy said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Opinion {
    /// The policy.
    pub policy: String,
    /// The step that fired (its position in the file), for step policies.
    pub step: Option<usize>,
    /// The value it judged (alarm aggregate, backlog per task, counted messages).
    pub metric: f64,
    /// The capacity it asks for.
    pub proposed: u32,
    /// Why.
    pub reason: String,
}

/// A decision: the capacity to set, and which policies said what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// When (seconds).
    pub time: f64,
    /// Capacity before.
    pub capacity: u32,
    /// Capacity to set.
    pub new_capacity: u32,
    /// `new_capacity - capacity`.
    pub adjustment: i64,
    /// The policy whose opinion was applied, if the capacity changes.
    pub applied: Option<String>,
    /// Every policy evaluated at this time.
    pub opinions: Vec<Opinion>,
    /// Why the capacity changes or not.
    pub reason: String,
}

/// Rounds a percent adjustment as Application Auto Scaling does: above 1 rounds down, between
/// 0 and 1 becomes 1, between -1 and 0 becomes -1, below -1 rounds up (12.7 -> 12, -6.67 -> -6).
pub fn round_percent(x: f64) -> i64 {
    if x >= 1.0 {
        x.floor() as i64
    } else if x > 0.0 {
        1
    } else if x == 0.0 {
        0
    } else if x > -1.0 {
        -1
    } else {
        x.ceil() as i64
    }
}

/// The capacity a step's adjustment gives from `current` (before clamping).
pub fn adjusted(kind: AdjustmentType, adjustment: i64, current: i64, min_magnitude: Option<i64>) -> i64 {
    match kind {
        AdjustmentType::ChangeInCapacity => current + adjustment,
        AdjustmentType::ExactCapacity => adjustment,
        AdjustmentType::PercentChangeInCapacity => {
            let mut change = round_percent(current as f64 * adjustment as f64 / 100.0);
            if let Some(m) = min_magnitude
                && change.abs() < m
                && adjustment != 0
            {
                change = m * adjustment.signum();
            }
            current + change
        }
    }
}

fn statistic(stat: Statistic, samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    match stat {
        Statistic::Average => samples.iter().sum::<f64>() / samples.len() as f64,
        Statistic::Sum => samples.iter().sum(),
        Statistic::Minimum => samples.iter().copied().fold(f64::INFINITY, f64::min),
        Statistic::Maximum => samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Statistic::SampleCount => samples.len() as f64,
    }
}

fn aggregate(kind: Aggregation, values: &[f64]) -> f64 {
    match kind {
        Aggregation::Average => statistic(Statistic::Average, values),
        Aggregation::Minimum => statistic(Statistic::Minimum, values),
        Aggregation::Maximum => statistic(Statistic::Maximum, values),
    }
}

/// A CloudWatch alarm's running state.
#[derive(Debug, Clone)]
struct AlarmState {
    period_start: Option<f64>,
    samples: Vec<f64>,
    datapoints: VecDeque<f64>,
    in_alarm: bool,
}

impl AlarmState {
    fn new() -> AlarmState {
        AlarmState { period_start: None, samples: Vec::new(), datapoints: VecDeque::new(), in_alarm: false }
    }

    /// Adds a sample; closes the period when it is over (evaluating the alarm).
    fn sample(&mut self, alarm: &Alarm, now: f64, value: f64) {
        let start = *self.period_start.get_or_insert(now);
        if now - start >= f64::from(alarm.period) - 1e-9 && !self.samples.is_empty() {
            let point = statistic(alarm.statistic, &self.samples);
            self.datapoints.push_back(point);
            while self.datapoints.len() > alarm.evaluation_periods as usize {
                self.datapoints.pop_front();
            }
            let breaching = self.datapoints.iter().filter(|v| alarm.comparison.breaches(**v, alarm.threshold)).count();
            self.in_alarm = breaching >= alarm.datapoints_to_alarm as usize;
            self.samples.clear();
            self.period_start =
                Some(start + f64::from(alarm.period) * ((now - start) / f64::from(alarm.period)).floor());
        }
        self.samples.push(value);
    }
}

#[derive(Debug, Clone, Copy)]
struct Activity {
    time: f64,
    out: bool,
    /// Capacity added (scale-out) during the cooldown window.
    added: i64,
}

#[derive(Debug, Clone)]
enum State {
    Step { alarm: AlarmState, last_invoke: Option<f64>, activity: Option<Activity> },
    Backlog { minutes: VecDeque<f64>, next: Option<f64>, last_out: Option<f64>, last_in: Option<f64> },
    Keda { next: Option<f64>, last_active: Option<f64>, recommendations: VecDeque<(f64, u32)>, opinion: Option<u32> },
}

/// The engine: one per scalable target.
#[derive(Debug, Clone)]
pub struct Scaler {
    policies: Vec<Policy>,
    states: Vec<State>,
    bounds: Capacity,
}

impl Scaler {
    /// An engine for `config`, with capacity bounds from its `ScalableTarget` unless `bounds`
    /// overrides them (one of the two is needed).
    pub fn new(config: &ScalingConfig, bounds: Option<Capacity>) -> Scaler {
        let bounds = bounds.or(config.capacity).unwrap_or(Capacity { min: 0, max: u32::MAX });
        let states = config
            .policies
            .iter()
            .map(|p| match p {
                Policy::Step(_) => State::Step { alarm: AlarmState::new(), last_invoke: None, activity: None },
                Policy::Backlog(_) => {
                    State::Backlog { minutes: VecDeque::new(), next: None, last_out: None, last_in: None }
                }
                Policy::Keda(_) => {
                    State::Keda { next: None, last_active: None, recommendations: VecDeque::new(), opinion: None }
                }
            })
            .collect();
        Scaler { policies: config.policies.clone(), states, bounds }
    }

    /// The bounds in force.
    pub fn bounds(&self) -> Capacity {
        self.bounds
    }

    /// Feeds one observation at `now` (seconds, non-decreasing) with the current capacity; returns
    /// a decision when any policy was evaluated (the capacity may stay the same).
    pub fn observe(&mut self, now: f64, obs: &Observation, capacity: u32) -> Option<Decision> {
        let mut opinions: Vec<(usize, Opinion)> = Vec::new();
        let mut standing: Vec<(usize, u32)> = Vec::new();
        for i in 0..self.policies.len() {
            let policy = self.policies[i].clone();
            match policy {
                Policy::Step(p) => {
                    if let Some(o) = self.step(i, &p, now, obs, capacity) {
                        opinions.push((i, o));
                    }
                }
                Policy::Backlog(p) => {
                    if let Some(o) = self.backlog(i, &p, now, obs, capacity) {
                        opinions.push((i, o));
                    }
                }
                Policy::Keda(p) => {
                    if let Some(o) = self.keda(i, &p, now, obs, capacity) {
                        opinions.push((i, o));
                    }
                    if let State::Keda { opinion: Some(o), .. } = &self.states[i] {
                        standing.push((i, *o));
                    }
                }
            }
        }
        if opinions.is_empty() {
            return None;
        }
        let names: Vec<String> = self.policies.iter().map(|p| p.name().to_string()).collect();
        let decision = combine(now, capacity, opinions, &standing, &names);
        if let Some(name) = &decision.applied
            && let Some(i) = names.iter().position(|n| n == name)
        {
            self.record(i, now, capacity, decision.new_capacity);
        }
        Some(decision)
    }

    /// Records an applied change for the cooldowns of policy `i`.
    fn record(&mut self, i: usize, now: f64, from: u32, to: u32) {
        let out = to > from;
        if out {
            // A scale-out ends every scale-in cooldown.
            for state in &mut self.states {
                if let State::Step { activity, .. } = state
                    && activity.is_some_and(|a| !a.out)
                {
                    *activity = None;
                }
            }
        }
        let cooldown = match &self.policies[i] {
            Policy::Step(p) => f64::from(p.cooldown),
            _ => 0.0,
        };
        match &mut self.states[i] {
            State::Step { activity, .. } => {
                let carried = match activity {
                    Some(a) if a.out && out && now < a.time + cooldown => a.added,
                    _ => 0,
                };
                *activity = Some(Activity {
                    time: now,
                    out,
                    added: if out { carried + i64::from(to) - i64::from(from) } else { 0 },
                });
            }
            State::Backlog { last_out, last_in, .. } => {
                if out {
                    *last_out = Some(now);
                    *last_in = None; // a scale-out ends a scale-in cooldown
                } else {
                    *last_in = Some(now);
                }
            }
            State::Keda { .. } => {}
        }
    }

    fn step(&mut self, i: usize, p: &StepPolicy, now: f64, obs: &Observation, capacity: u32) -> Option<Opinion> {
        let State::Step { alarm, last_invoke, activity } = &mut self.states[i] else { return None };
        alarm.sample(&p.alarm, now, obs.metric(p.alarm.metric));
        if !alarm.in_alarm || last_invoke.is_some_and(|t| now - t < 60.0 - 1e-9) {
            return None;
        }
        *last_invoke = Some(now);
        let values: Vec<f64> = alarm.datapoints.iter().copied().collect();
        let metric = aggregate(p.aggregation, &values);
        let Some(step) = p.step_for(metric) else {
            return Some(Opinion {
                policy: p.name.clone(),
                step: None,
                metric,
                proposed: capacity,
                reason: format!("alarm `{}` in ALARM at {metric}, but no step covers that value", p.alarm.name),
            });
        };
        let current = i64::from(capacity);
        let cooldown = f64::from(p.cooldown);
        let raw = adjusted(p.adjustment_type, step.adjustment, current, p.min_adjustment_magnitude);
        let mut reason =
            format!("alarm `{}` in ALARM at {metric}: step {} ({:+})", p.alarm.name, step.index, step.adjustment);
        let proposed = match activity {
            // Scale-out within a scale-out's cooldown: what it added counts toward this step.
            Some(a) if a.out && now < a.time + cooldown && raw > current => {
                let baseline = current - a.added;
                let wanted = adjusted(p.adjustment_type, step.adjustment, baseline, p.min_adjustment_magnitude);
                reason.push_str(&format!("; in cooldown, the {} already added count toward it", a.added));
                wanted.max(current)
            }
            // Scale-in within a scale-in's cooldown: blocked.
            Some(a) if !a.out && now < a.time + cooldown && raw < current => {
                reason.push_str(&format!("; blocked: scale-in cooldown until {:.0} s", a.time + cooldown));
                current
            }
            _ => raw,
        };
        Some(Opinion {
            policy: p.name.clone(),
            step: Some(step.index),
            metric,
            proposed: self_clamp(self.bounds, proposed),
            reason,
        })
    }

    fn backlog(&mut self, i: usize, p: &BacklogPolicy, now: f64, obs: &Observation, capacity: u32) -> Option<Opinion> {
        let State::Backlog { minutes, next, last_out, last_in } = &mut self.states[i] else { return None };
        if next.is_some_and(|t| now < t - 1e-9) {
            return None;
        }
        *next = Some(now + 60.0);
        let running = f64::from(capacity.max(1));
        let per_task = obs.visible / running;
        minutes.push_back(per_task);
        while minutes.len() > 15 {
            minutes.pop_front();
        }
        let desired = (obs.visible / p.target_per_task).ceil() as i64;
        let high = minutes.len() >= 3 && minutes.iter().rev().take(3).all(|v| *v > p.target_per_task);
        let high = high || (capacity == 0 && obs.visible > 0.0);
        let low = minutes.len() >= 15 && minutes.iter().all(|v| *v < 0.9 * p.target_per_task);
        let current = i64::from(capacity);
        let (proposed, reason) = if high && desired > current {
            let in_cooldown = last_out.is_some_and(|t| now < t + f64::from(p.scale_out_cooldown));
            // During the cooldown only a larger desired capacity scales out further (desired
            // capacity is absolute, so what the last scale-out added is already counted).
            (
                desired,
                format!(
                    "backlog per task {per_task:.1} above target {} for 3 minutes{}",
                    p.target_per_task,
                    if in_cooldown { " (in scale-out cooldown)" } else { "" }
                ),
            )
        } else if low && desired < current && !p.disable_scale_in {
            if last_in.is_some_and(|t| now < t + f64::from(p.scale_in_cooldown)) {
                (current, "scale-in cooldown".to_string())
            } else {
                (
                    desired,
                    format!("backlog per task {per_task:.1} below 90% of target {} for 15 minutes", p.target_per_task),
                )
            }
        } else {
            (current, format!("backlog per task {per_task:.1}, target {}", p.target_per_task))
        };
        Some(Opinion {
            policy: p.name.clone(),
            step: None,
            metric: per_task,
            proposed: self_clamp(self.bounds, proposed),
            reason,
        })
    }

    fn keda(&mut self, i: usize, p: &KedaPolicy, now: f64, obs: &Observation, capacity: u32) -> Option<Opinion> {
        let State::Keda { next, last_active, recommendations, opinion } = &mut self.states[i] else { return None };
        if next.is_some_and(|t| now < t - 1e-9) {
            return None;
        }
        *next = Some(now + f64::from(p.polling_interval));
        let counted = obs.visible
            + if p.scale_on_in_flight { obs.in_flight } else { 0.0 }
            + if p.scale_on_delayed { obs.delayed } else { 0.0 };
        let active = counted > p.activation_queue_length;
        if active || last_active.is_none() {
            *last_active = Some(now);
        }
        let mut desired = (counted / p.queue_length).ceil() as u32;
        let ratio = if capacity > 0 { counted / (f64::from(capacity) * p.queue_length) } else { f64::INFINITY };
        let mut reason = format!("{counted} counted messages / queueLength {}", p.queue_length);
        if capacity > 0 && (ratio - 1.0).abs() <= 0.1 {
            desired = capacity;
            reason.push_str("; within the HPA's 10% tolerance");
        }
        // The HPA scales down to the highest recommendation of the last 300 s.
        recommendations.push_back((now, desired));
        while recommendations.front().is_some_and(|(t, _)| now - t > 300.0) {
            recommendations.pop_front();
        }
        if desired < capacity {
            let held = recommendations.iter().map(|(_, d)| *d).max().unwrap_or(desired).min(capacity);
            if held > desired {
                reason.push_str(&format!("; scale-down stabilization holds {held}"));
            }
            desired = held;
        }
        if active {
            desired = desired.max(1);
        } else if last_active.is_some_and(|t| now - t < f64::from(p.cooldown_period)) && capacity > 0 {
            desired = desired.max(1);
            reason.push_str("; inactive, within cooldownPeriod");
        } else {
            desired = 0;
            reason.push_str("; inactive past cooldownPeriod: scale to zero");
        }
        let proposed = desired.clamp(p.min, p.max);
        let proposed = self_clamp(self.bounds, i64::from(proposed));
        *opinion = Some(proposed);
        Some(Opinion { policy: p.name.clone(), step: None, metric: counted, proposed, reason })
    }
}

/// Several policies' opinions to one decision: out if any asks for more (the largest), in only
/// if every policy with an opinion (`standing` holds those of policies not evaluated now)
/// agrees (the smallest reduction).
fn combine(
    now: f64,
    capacity: u32,
    opinions: Vec<(usize, Opinion)>,
    standing: &[(usize, u32)],
    names: &[String],
) -> Decision {
    let out = opinions.iter().filter(|(_, o)| o.proposed > capacity).max_by_key(|(_, o)| o.proposed);
    let (applied, new_capacity, reason) = if let Some((i, o)) = out {
        (Some(*i), o.proposed, format!("scale out: policy `{}` asks for {}", o.policy, o.proposed))
    } else {
        let blocking = opinions
            .iter()
            .map(|(i, o)| (*i, o.proposed))
            .chain(standing.iter().copied())
            .find(|(_, p)| *p >= capacity)
            .map(|(i, _)| names[i].clone());
        let inward = opinions.iter().filter(|(_, o)| o.proposed < capacity).max_by_key(|(_, o)| o.proposed);
        match (inward, blocking) {
            (Some((i, o)), None) => {
                (Some(*i), o.proposed, format!("scale in: every policy agrees; `{}` asks for {}", o.policy, o.proposed))
            }
            (Some(_), Some(holder)) => {
                (None, capacity, format!("no change: policy `{holder}` does not agree to scale in"))
            }
            (None, _) => (None, capacity, "no change: no policy asks for another capacity".to_string()),
        }
    };
    Decision {
        time: now,
        capacity,
        new_capacity,
        adjustment: i64::from(new_capacity) - i64::from(capacity),
        applied: applied.map(|i| names[i].clone()),
        opinions: opinions.into_iter().map(|(_, o)| o).collect(),
        reason,
    }
}

/// What the policies decide when their metric has held at `metric` long enough for every alarm
/// (`batchfan scale evaluate`), from a fresh state (no cooldown running). `metric` is each step
/// policy's alarm metric, the visible messages for backlog target tracking, the counted messages
/// for KEDA.
pub fn evaluate(config: &ScalingConfig, bounds: Option<Capacity>, metric: f64, capacity: u32) -> Decision {
    let bounds = bounds.or(config.capacity).unwrap_or(Capacity { min: 0, max: u32::MAX });
    let names: Vec<String> = config.policies.iter().map(|p| p.name().to_string()).collect();
    let mut opinions = Vec::new();
    for (i, policy) in config.policies.iter().enumerate() {
        let opinion = match policy {
            Policy::Step(p) => {
                if !p.alarm.comparison.breaches(metric, p.alarm.threshold) {
                    Opinion {
                        policy: p.name.clone(),
                        step: None,
                        metric,
                        proposed: capacity,
                        reason: format!(
                            "alarm `{}` is OK: {metric} is not {} {}",
                            p.alarm.name,
                            p.alarm.comparison.name(),
                            p.alarm.threshold
                        ),
                    }
                } else {
                    match p.step_for(metric) {
                        Some(step) => {
                            let raw = adjusted(
                                p.adjustment_type,
                                step.adjustment,
                                i64::from(capacity),
                                p.min_adjustment_magnitude,
                            );
                            Opinion {
                                policy: p.name.clone(),
                                step: Some(step.index),
                                metric,
                                proposed: self_clamp(bounds, raw),
                                reason: format!(
                                    "alarm `{}` in ALARM at {metric}: step {} ({:+}, {:?})",
                                    p.alarm.name, step.index, step.adjustment, p.adjustment_type
                                ),
                            }
                        }
                        None => Opinion {
                            policy: p.name.clone(),
                            step: None,
                            metric,
                            proposed: capacity,
                            reason: format!(
                                "alarm `{}` in ALARM at {metric}, but no step covers that value",
                                p.alarm.name
                            ),
                        },
                    }
                }
            }
            Policy::Backlog(p) => {
                let per_task = metric / f64::from(capacity.max(1));
                let desired = (metric / p.target_per_task).ceil() as i64;
                let moves = (per_task > p.target_per_task && desired > i64::from(capacity))
                    || (per_task < 0.9 * p.target_per_task && desired < i64::from(capacity) && !p.disable_scale_in);
                Opinion {
                    policy: p.name.clone(),
                    step: None,
                    metric: per_task,
                    proposed: if moves { self_clamp(bounds, desired) } else { capacity },
                    reason: format!("backlog per task {per_task:.1}, target {}", p.target_per_task),
                }
            }
            Policy::Keda(p) => {
                let mut desired = (metric / p.queue_length).ceil() as u32;
                if capacity > 0 && (metric / (f64::from(capacity) * p.queue_length) - 1.0).abs() <= 0.1 {
                    desired = capacity;
                }
                if metric > p.activation_queue_length {
                    desired = desired.max(1);
                } else {
                    desired = 0;
                }
                Opinion {
                    policy: p.name.clone(),
                    step: None,
                    metric,
                    proposed: self_clamp(bounds, i64::from(desired.clamp(p.min, p.max))),
                    reason: format!("{metric} counted messages / queueLength {}", p.queue_length),
                }
            }
        };
        opinions.push((i, opinion));
    }
    combine(0.0, capacity, opinions, &[], &names)
}

fn self_clamp(bounds: Capacity, n: i64) -> u32 {
    n.clamp(i64::from(bounds.min), i64::from(bounds.max)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounding_is_aws_rounding() {
        assert_eq!(round_percent(12.7), 12);
        assert_eq!(round_percent(-6.67), -6);
        assert_eq!(round_percent(0.25), 1);
        assert_eq!(round_percent(-0.25), -1);
        assert_eq!(round_percent(1.0), 1);
        assert_eq!(round_percent(-1.0), -1);
        assert_eq!(round_percent(0.0), 0);
        // AWS's example: 25% of 4 is 1; MinAdjustmentMagnitude 2 makes it 2.
        assert_eq!(adjusted(AdjustmentType::PercentChangeInCapacity, 25, 4, None), 5);
        assert_eq!(adjusted(AdjustmentType::PercentChangeInCapacity, 25, 4, Some(2)), 6);
        assert_eq!(adjusted(AdjustmentType::PercentChangeInCapacity, -25, 4, Some(2)), 2);
        assert_eq!(adjusted(AdjustmentType::ExactCapacity, 7, 4, None), 7);
        assert_eq!(adjusted(AdjustmentType::ChangeInCapacity, -3, 4, None), 1);
    }
}
