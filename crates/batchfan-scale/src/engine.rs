//! The policy engine: observations in, capacity decisions out, as Application Auto Scaling and
//! CloudWatch compute them. Pure: time is the caller's (seconds), so the simulator and the
//! controller drive the same code.
//!
//! - Metrics: SQS and Container Insights publish one datapoint a minute, so the engine takes one
//!   sample of every metric a policy names each minute (from the first observation on), and an
//!   alarm's or a target's datapoint is its metric ([`crate::metric`]: one statistic or metric
//!   math) over the samples of its `Period`.
//! - An alarm is in ALARM when at least `DatapointsToAlarm` of the last `EvaluationPeriods`
//!   datapoints breach its threshold (a missing datapoint counts as `TreatMissingData` says).
//!   While in ALARM its policy is invoked once a minute (CloudWatch keeps invoking Auto Scaling
//!   actions once per minute while an alarm stays in ALARM).
//! - The step is picked by the `MetricAggregationType` aggregate of the evaluated datapoints.
//! - Step scaling cooldown (Application Auto Scaling User Guide, "Step scaling policies"): during
//!   a scale-out's cooldown the capacity it added counts toward the next scale-out (+2, then a
//!   +3 step within the cooldown, adds 1); a scale-in blocks further scale-ins until its cooldown
//!   ends; a scale-out during it proceeds at once and ends it.
//! - Target tracking: desired = ceil(capacity × metric / target), the proportional rule for a
//!   metric that falls as capacity rises (backlog per task, utilization). Like the two alarms
//!   target tracking creates, it scales out after 3 one-minute datapoints above the target and in
//!   after 15 below 90% of it. A missing datapoint (backlog per task with no task running: a
//!   division by zero) changes nothing, so target tracking never scales out from zero.
//! - KEDA (`aws-sqs-queue`): every `pollingInterval`, counted messages / `queueLength`, the HPA's
//!   10% tolerance and 300 s scale-down stabilization, 0 <-> 1 by `activationQueueLength`, and
//!   scale to zero after `cooldownPeriod` without activity.
//! - Several policies: out if any says out (the largest), in only if every policy with an
//!   opinion agrees (the smallest reduction); the result is clamped to the target's bounds. A
//!   step policy whose alarm is not in ALARM has no opinion.

use std::collections::VecDeque;

use serde::Serialize;

use crate::metric::{MetricState, Quantity, Statistic};
use crate::policy::{
    AdjustmentType, Aggregation, Capacity, KedaPolicy, MissingData, Policy, ScalingConfig, Step, StepPolicy,
    TargetTrackingPolicy,
};

/// Seconds between the one-minute samples of the metrics.
pub const SAMPLE_EVERY: f64 = 60.0;

/// One look at the queue and the workers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observation {
    /// Visible messages (waiting).
    pub visible: f64,
    /// In flight.
    pub in_flight: f64,
    /// Delayed.
    pub delayed: f64,
    /// Age of the oldest message not yet deleted, seconds (`None`: not known).
    pub oldest_age: Option<f64>,
    /// Messages sent since the start (`None`: not known).
    pub sent: Option<f64>,
    /// Messages received since the start.
    pub received: Option<f64>,
    /// Messages deleted since the start.
    pub deleted: Option<f64>,
    /// Workers running (`None`: not known).
    pub running: Option<f64>,
    /// Workers asked for and still starting (`None`: not known).
    pub pending: Option<f64>,
    /// Values of trace columns (`--metric-column`).
    pub columns: Vec<(String, f64)>,
}

impl Observation {
    /// The value of `q` with `capacity` workers asked for; counters are the messages since
    /// `since` (the previous sample's counters).
    fn value(&self, q: &Quantity, capacity: u32, since: &Counters) -> Option<f64> {
        match q {
            Quantity::Visible => Some(self.visible),
            Quantity::NotVisible => Some(self.in_flight),
            Quantity::Delayed => Some(self.delayed),
            Quantity::AgeOfOldestMessage => self.oldest_age,
            Quantity::Sent => self.sent.map(|c| (c - since.sent).max(0.0)),
            Quantity::Received => self.received.map(|c| (c - since.received).max(0.0)),
            Quantity::Deleted => self.deleted.map(|c| (c - since.deleted).max(0.0)),
            Quantity::RunningTasks => self.running,
            Quantity::DesiredTasks => Some(f64::from(capacity)),
            Quantity::PendingTasks => self.pending,
            Quantity::Column(c) => self.columns.iter().find(|(n, _)| n == c).map(|(_, v)| *v),
            Quantity::Unknown => None,
        }
    }

    fn counters(&self) -> Counters {
        Counters {
            sent: self.sent.unwrap_or(0.0),
            received: self.received.unwrap_or(0.0),
            deleted: self.deleted.unwrap_or(0.0),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    sent: f64,
    received: f64,
    deleted: f64,
}

/// A CloudWatch alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AlarmState {
    /// Not breaching.
    #[serde(rename = "OK")]
    Ok,
    /// Breaching: the policy is invoked once a minute.
    #[serde(rename = "ALARM")]
    Alarm,
    /// No datapoint yet.
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    /// CloudWatch's name.
    pub fn name(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// What an alarm saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmView {
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: AlarmState,
    /// The datapoints it evaluated, oldest first (`None`: missing).
    pub datapoints: Vec<Option<f64>>,
}

/// What one policy said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Opinion {
    /// The policy.
    pub policy: String,
    /// The step that fired (its position in the file), for step policies.
    pub step: Option<usize>,
    /// The value it judged (alarm aggregate, target tracking metric, KEDA's counted messages);
    /// `None` when the datapoint is missing.
    pub metric: Option<f64>,
    /// The capacity it asks for.
    pub proposed: u32,
    /// Whether it takes part in the decision: a step policy does only when its alarm invoked it.
    pub acts: bool,
    /// A step policy's alarm.
    pub alarm: Option<AlarmView>,
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

impl Decision {
    /// The opinion of the policy that was applied.
    pub fn applied_opinion(&self) -> Option<&Opinion> {
        self.opinions.iter().find(|o| Some(&o.policy) == self.applied.as_ref())
    }
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

fn aggregate(kind: Aggregation, values: &[Option<f64>]) -> Option<f64> {
    let stat = match kind {
        Aggregation::Average => Statistic::Average,
        Aggregation::Minimum => Statistic::Minimum,
        Aggregation::Maximum => Statistic::Maximum,
    };
    stat.of(values.iter().flatten().copied())
}

fn format_points(points: &[Option<f64>]) -> String {
    let shown: Vec<String> = points.iter().map(|p| p.map_or("missing".into(), format_number)).collect();
    format!("[{}]", shown.join(", "))
}

/// A number as people read it: integers without decimals, others with up to 2.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.2}") }
}

/// The alarm's state after its datapoints changed.
fn judge(policy: &StepPolicy, datapoints: &VecDeque<Option<f64>>, previous: AlarmState) -> AlarmState {
    let alarm = &policy.alarm;
    if alarm.missing == MissingData::Ignore && datapoints.back().is_some_and(Option::is_none) {
        return previous;
    }
    let mut present = 0;
    let mut breaching = 0;
    for point in datapoints {
        match (point, alarm.missing) {
            (Some(v), _) => {
                present += 1;
                if alarm.comparison.breaches(*v, alarm.threshold) {
                    breaching += 1;
                }
            }
            (None, MissingData::Breaching) => {
                present += 1;
                breaching += 1;
            }
            (None, MissingData::NotBreaching) => present += 1,
            (None, _) => {}
        }
    }
    if breaching >= alarm.datapoints_to_alarm as usize {
        AlarmState::Alarm
    } else if present == 0 {
        AlarmState::InsufficientData
    } else {
        AlarmState::Ok
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
    Step {
        metric: MetricState,
        datapoints: VecDeque<Option<f64>>,
        alarm: AlarmState,
        activity: Option<Activity>,
    },
    TargetTracking {
        metric: MetricState,
        datapoints: VecDeque<Option<f64>>,
        last_out: Option<f64>,
        last_in: Option<f64>,
    },
    Keda {
        next: Option<f64>,
        last_active: Option<f64>,
        recommendations: VecDeque<(f64, u32)>,
        opinion: Option<u32>,
    },
}

/// The engine: one per scalable target.
#[derive(Debug, Clone)]
pub struct Scaler {
    policies: Vec<Policy>,
    states: Vec<State>,
    bounds: Capacity,
    next_sample: Option<f64>,
    counters: Counters,
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
                Policy::Step(p) => State::Step {
                    metric: p.alarm.metric.state(),
                    datapoints: VecDeque::new(),
                    alarm: AlarmState::InsufficientData,
                    activity: None,
                },
                Policy::TargetTracking(p) => State::TargetTracking {
                    metric: p.metric.state(),
                    datapoints: VecDeque::new(),
                    last_out: None,
                    last_in: None,
                },
                Policy::Keda(_) => {
                    State::Keda { next: None, last_active: None, recommendations: VecDeque::new(), opinion: None }
                }
            })
            .collect();
        Scaler { policies: config.policies.clone(), states, bounds, next_sample: None, counters: Counters::default() }
    }

    /// The bounds in force.
    pub fn bounds(&self) -> Capacity {
        self.bounds
    }

    /// When the first decision can come (seconds after the first observation): the longest of
    /// the alarms' first invocation (`DatapointsToAlarm` periods), target tracking's 3 minutes
    /// and KEDA's first poll.
    pub fn first_decision(&self) -> f64 {
        self.policies
            .iter()
            .map(|p| match p {
                Policy::Step(p) => f64::from(p.alarm.metric.period) * f64::from(p.alarm.datapoints_to_alarm),
                Policy::TargetTracking(p) => f64::from(p.metric.period) * 3.0,
                Policy::Keda(_) => 0.0,
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// Feeds one observation at `now` (seconds, non-decreasing) with the current capacity; returns
    /// a decision when any policy was evaluated (the capacity may stay the same).
    pub fn observe(&mut self, now: f64, obs: &Observation, capacity: u32) -> Option<Decision> {
        let sample = match self.next_sample {
            None => true,
            Some(t) => now >= t - 1e-9,
        };
        if sample {
            let next = self.next_sample.unwrap_or(now);
            self.next_sample = Some(next + SAMPLE_EVERY * (((now - next) / SAMPLE_EVERY).floor() + 1.0));
        }
        let since = self.counters;
        let value = |q: &Quantity| obs.value(q, capacity, &since);
        let mut opinions: Vec<(usize, Opinion)> = Vec::new();
        let mut standing: Vec<(usize, u32)> = Vec::new();
        for i in 0..self.policies.len() {
            let policy = self.policies[i].clone();
            let opinion = match &policy {
                Policy::Step(p) if sample => self.step(i, p, now, &value, capacity),
                Policy::TargetTracking(p) if sample => self.target_tracking(i, p, now, &value, capacity),
                Policy::Keda(p) => {
                    let o = self.keda(i, p, now, obs, capacity);
                    if let State::Keda { opinion: Some(o), .. } = &self.states[i] {
                        standing.push((i, *o));
                    }
                    o
                }
                _ => None,
            };
            opinions.extend(opinion.map(|o| (i, o)));
        }
        if sample {
            self.counters = obs.counters();
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
            State::TargetTracking { last_out, last_in, .. } => {
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

    /// One minute's sample for a step policy: a datapoint when its period closes, and an
    /// invocation while its alarm is in ALARM.
    fn step(
        &mut self,
        i: usize,
        p: &StepPolicy,
        now: f64,
        value: &dyn Fn(&Quantity) -> Option<f64>,
        capacity: u32,
    ) -> Option<Opinion> {
        let bounds = self.bounds;
        let State::Step { metric, datapoints, alarm, activity } = &mut self.states[i] else { return None };
        let closed = metric.sample(&p.alarm.metric, value);
        if let Some(point) = closed {
            datapoints.push_back(point);
            while datapoints.len() > p.alarm.evaluation_periods as usize {
                datapoints.pop_front();
            }
            *alarm = judge(p, datapoints, *alarm);
        }
        let points: Vec<Option<f64>> = datapoints.iter().copied().collect();
        let view = AlarmView { name: p.alarm.name.clone(), state: *alarm, datapoints: points.clone() };
        let aggregate = aggregate(p.aggregation, &points);
        if *alarm != AlarmState::Alarm {
            // Only a new datapoint is worth reporting.
            closed?;
            return Some(Opinion {
                policy: p.name.clone(),
                step: None,
                metric: aggregate,
                proposed: capacity,
                acts: false,
                reason: format!("alarm `{}` {} on {}: not invoked", p.alarm.name, alarm.name(), format_points(&points)),
                alarm: Some(view),
            });
        }
        let Some(metric) = aggregate else {
            return Some(Opinion {
                policy: p.name.clone(),
                step: None,
                metric: None,
                proposed: capacity,
                acts: false,
                reason: format!("alarm `{}` in ALARM on missing datapoints: no step applies", p.alarm.name),
                alarm: Some(view),
            });
        };
        let Some(step) = p.step_for(metric) else {
            return Some(Opinion {
                policy: p.name.clone(),
                step: None,
                metric: Some(metric),
                proposed: capacity,
                acts: false,
                reason: format!(
                    "alarm `{}` in ALARM at {}, but no step covers that value",
                    p.alarm.name,
                    format_number(metric)
                ),
                alarm: Some(view),
            });
        };
        let current = i64::from(capacity);
        let cooldown = f64::from(p.cooldown);
        let raw = adjusted(p.adjustment_type, step.adjustment, current, p.min_adjustment_magnitude);
        let mut reason = fired(p, metric, step);
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
            metric: Some(metric),
            proposed: clamp(bounds, proposed),
            acts: true,
            alarm: Some(view),
            reason,
        })
    }

    fn target_tracking(
        &mut self,
        i: usize,
        p: &TargetTrackingPolicy,
        now: f64,
        value: &dyn Fn(&Quantity) -> Option<f64>,
        capacity: u32,
    ) -> Option<Opinion> {
        let bounds = self.bounds;
        let State::TargetTracking { metric, datapoints, last_out, last_in } = &mut self.states[i] else {
            return None;
        };
        let point = metric.sample(&p.metric, value)?;
        datapoints.push_back(point);
        while datapoints.len() > 15 {
            datapoints.pop_front();
        }
        let target = p.target_value;
        let current = i64::from(capacity);
        let Some(v) = point else {
            return Some(Opinion {
                policy: p.name.clone(),
                step: None,
                metric: None,
                proposed: capacity,
                acts: true,
                alarm: None,
                reason: format!("no datapoint of {} (dropped: a division by zero?): no change", p.metric.describe()),
            });
        };
        let desired = tracked(capacity, v, target);
        let above =
            |n: usize| datapoints.len() >= n && datapoints.iter().rev().take(n).all(|d| d.is_some_and(|d| d > target));
        let below = |n: usize| {
            datapoints.len() >= n && datapoints.iter().rev().take(n).all(|d| d.is_some_and(|d| d < 0.9 * target))
        };
        let shown = format_number(v);
        let (proposed, reason) = if above(3) && desired > current {
            let in_cooldown = last_out.is_some_and(|t| now < t + f64::from(p.scale_out_cooldown));
            // During the cooldown only a larger desired capacity scales out further (desired
            // capacity is absolute, so what the last scale-out added is already counted).
            (
                desired,
                format!(
                    "metric {shown} above target {} for 3 minutes: {capacity} x {shown} / {} = {desired}{}",
                    format_number(target),
                    format_number(target),
                    if in_cooldown { " (in scale-out cooldown)" } else { "" }
                ),
            )
        } else if below(15) && desired < current && !p.disable_scale_in {
            if last_in.is_some_and(|t| now < t + f64::from(p.scale_in_cooldown)) {
                (current, "scale-in cooldown".to_string())
            } else {
                (desired, format!("metric {shown} below 90% of target {} for 15 minutes", format_number(target)))
            }
        } else if capacity == 0 {
            (current, format!("metric {shown}, target {}: no capacity to scale from", format_number(target)))
        } else {
            (current, format!("metric {shown}, target {}", format_number(target)))
        };
        Some(Opinion {
            policy: p.name.clone(),
            step: None,
            metric: Some(v),
            proposed: clamp(bounds, proposed),
            acts: true,
            alarm: None,
            reason,
        })
    }

    fn keda(&mut self, i: usize, p: &KedaPolicy, now: f64, obs: &Observation, capacity: u32) -> Option<Opinion> {
        let bounds = self.bounds;
        let State::Keda { next, last_active, recommendations, opinion } = &mut self.states[i] else { return None };
        if next.is_some_and(|t| now < t - 1e-9) {
            return None;
        }
        *next = Some(now + f64::from(p.polling_interval));
        let counted = keda_counted(p, obs);
        let active = counted > p.activation_queue_length;
        if active || last_active.is_none() {
            *last_active = Some(now);
        }
        let mut desired = (counted / p.queue_length).ceil() as u32;
        let ratio = if capacity > 0 { counted / (f64::from(capacity) * p.queue_length) } else { f64::INFINITY };
        let mut reason = format!("{} counted messages / queueLength {}", format_number(counted), p.queue_length);
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
        let proposed = clamp(bounds, i64::from(desired.clamp(p.min, p.max)));
        *opinion = Some(proposed);
        Some(Opinion {
            policy: p.name.clone(),
            step: None,
            metric: Some(counted),
            proposed,
            acts: true,
            alarm: None,
            reason,
        })
    }
}

fn keda_counted(p: &KedaPolicy, obs: &Observation) -> f64 {
    obs.visible
        + if p.scale_on_in_flight { obs.in_flight } else { 0.0 }
        + if p.scale_on_delayed { obs.delayed } else { 0.0 }
}

/// Why a step policy asks for a capacity: `alarm `a` ALARM at 700: step 1 (+5)`.
fn fired(p: &StepPolicy, metric: f64, step: &Step) -> String {
    format!(
        "alarm `{}` ALARM at {}: step {} ({})",
        p.alarm.name,
        format_number(metric),
        step.index,
        describe_adjustment(p.adjustment_type, step.adjustment)
    )
}

/// Target tracking's desired capacity: `capacity` × `metric` / `target`, rounded up.
fn tracked(capacity: u32, metric: f64, target: f64) -> i64 {
    (f64::from(capacity) * metric / target).ceil() as i64
}

/// A step's adjustment as people read it: `+5`, `-1`, `set 6`, `+25%`.
pub fn describe_adjustment(kind: AdjustmentType, adjustment: i64) -> String {
    match kind {
        AdjustmentType::ChangeInCapacity => format!("{adjustment:+}"),
        AdjustmentType::ExactCapacity => format!("set {adjustment}"),
        AdjustmentType::PercentChangeInCapacity => format!("{adjustment:+}%"),
    }
}

/// Several policies' opinions to one decision: out if any acting policy asks for more (the
/// largest), in only if every acting policy (`standing` holds those of policies not evaluated
/// now) agrees (the smallest reduction).
fn combine(
    now: f64,
    capacity: u32,
    opinions: Vec<(usize, Opinion)>,
    standing: &[(usize, u32)],
    names: &[String],
) -> Decision {
    let acting = || opinions.iter().filter(|(_, o)| o.acts);
    let out = acting().filter(|(_, o)| o.proposed > capacity).max_by_key(|(_, o)| o.proposed);
    let (applied, new_capacity, reason) = if let Some((i, o)) = out {
        (Some(*i), o.proposed, format!("scale out: policy `{}` asks for {}", o.policy, o.proposed))
    } else {
        let blocking = acting()
            .map(|(i, o)| (*i, o.proposed))
            .chain(standing.iter().copied())
            .find(|(_, p)| *p >= capacity)
            .map(|(i, _)| names[i].clone());
        let inward = acting().filter(|(_, o)| o.proposed < capacity).max_by_key(|(_, o)| o.proposed);
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

/// What the policies decide when the queue and the workers have held at `obs` long enough for
/// every alarm (`batchfan scale evaluate`), from a fresh state (no cooldown running). Each
/// policy's metric is computed from `obs` as its document says (`sent`, `received` and `deleted`
/// are messages per minute here); a metric it cannot compute is a missing datapoint (check
/// [`ScalingConfig::require`] first).
pub fn evaluate(config: &ScalingConfig, bounds: Option<Capacity>, obs: &Observation, capacity: u32) -> Decision {
    let bounds = bounds.or(config.capacity).unwrap_or(Capacity { min: 0, max: u32::MAX });
    let names: Vec<String> = config.policies.iter().map(|p| p.name().to_string()).collect();
    let zero = Counters::default();
    let value = |q: &Quantity| obs.value(q, capacity, &zero);
    let mut opinions = Vec::new();
    for (i, policy) in config.policies.iter().enumerate() {
        let opinion = match policy {
            Policy::Step(p) => {
                let metric = p.alarm.metric.steady(&value);
                let points = vec![metric; p.alarm.evaluation_periods as usize];
                let view = |state| AlarmView { name: p.alarm.name.clone(), state, datapoints: points.clone() };
                let state = judge(p, &points.iter().copied().collect(), AlarmState::InsufficientData);
                match (state, metric.and_then(|m| p.step_for(m).map(|s| (m, s)))) {
                    (AlarmState::Alarm, Some((m, step))) => {
                        let raw = adjusted(
                            p.adjustment_type,
                            step.adjustment,
                            i64::from(capacity),
                            p.min_adjustment_magnitude,
                        );
                        Opinion {
                            policy: p.name.clone(),
                            step: Some(step.index),
                            metric: Some(m),
                            proposed: clamp(bounds, raw),
                            acts: true,
                            alarm: Some(view(state)),
                            reason: fired(p, m, step),
                        }
                    }
                    (AlarmState::Alarm, None) => Opinion {
                        policy: p.name.clone(),
                        step: None,
                        metric,
                        proposed: capacity,
                        acts: false,
                        alarm: Some(view(state)),
                        reason: format!(
                            "alarm `{}` in ALARM, but no step covers {}",
                            p.alarm.name,
                            format_points(&points[..1])
                        ),
                    },
                    (state, _) => Opinion {
                        policy: p.name.clone(),
                        step: None,
                        metric,
                        proposed: capacity,
                        acts: false,
                        alarm: Some(view(state)),
                        reason: match metric {
                            Some(m) => format!(
                                "alarm `{}` is OK: {} is not {} {}",
                                p.alarm.name,
                                format_number(m),
                                p.alarm.comparison.name(),
                                format_number(p.alarm.threshold)
                            ),
                            None => format!("alarm `{}` is {}: its datapoint is missing", p.alarm.name, state.name()),
                        },
                    },
                }
            }
            Policy::TargetTracking(p) => {
                let metric = p.metric.steady(&value);
                let (proposed, reason) = match metric {
                    None => {
                        (capacity, format!("no datapoint of {} (a division by zero?): no change", p.metric.describe()))
                    }
                    Some(v) => {
                        let desired = tracked(capacity, v, p.target_value);
                        let moves = (v > p.target_value && desired > i64::from(capacity))
                            || (v < 0.9 * p.target_value && desired < i64::from(capacity) && !p.disable_scale_in);
                        (
                            if moves { clamp(bounds, desired) } else { capacity },
                            format!(
                                "metric {}, target {}: {capacity} x {} / {} = {desired}",
                                format_number(v),
                                format_number(p.target_value),
                                format_number(v),
                                format_number(p.target_value)
                            ),
                        )
                    }
                };
                Opinion { policy: p.name.clone(), step: None, metric, proposed, acts: true, alarm: None, reason }
            }
            Policy::Keda(p) => {
                let counted = keda_counted(p, obs);
                let mut desired = (counted / p.queue_length).ceil() as u32;
                if capacity > 0 && (counted / (f64::from(capacity) * p.queue_length) - 1.0).abs() <= 0.1 {
                    desired = capacity;
                }
                if counted > p.activation_queue_length {
                    desired = desired.max(1);
                } else {
                    desired = 0;
                }
                Opinion {
                    policy: p.name.clone(),
                    step: None,
                    metric: Some(counted),
                    proposed: clamp(bounds, i64::from(desired.clamp(p.min, p.max))),
                    acts: true,
                    alarm: None,
                    reason: format!("{} counted messages / queueLength {}", format_number(counted), p.queue_length),
                }
            }
        };
        opinions.push((i, opinion));
    }
    combine(0.0, capacity, opinions, &[], &names)
}

fn clamp(bounds: Capacity, n: i64) -> u32 {
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
