//! Policies as batchfan evaluates them, made from a scaling file and checked against the rules
//! of Application Auto Scaling and CloudWatch (User Guide, "Step scaling policies"; CloudWatch
//! User Guide, "Evaluating an alarm"). Pure: no I/O.

use serde::Serialize;

use crate::document::{AlarmDoc, KedaDoc, MetricDoc, ScalingFile, StepConfigDoc, TargetTrackingDoc};
use crate::error::ScaleError;
use crate::metric::{Metric, MetricName, Quantity, backlog_per_task};

/// How a step's `ScalingAdjustment` changes capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AdjustmentType {
    /// Add the adjustment.
    ChangeInCapacity,
    /// Add that percent of the current capacity, rounded as AWS rounds.
    PercentChangeInCapacity,
    /// Set the capacity to the adjustment.
    ExactCapacity,
}

/// How the alarm's datapoints become the one value the step is picked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Aggregation {
    /// The mean (the default).
    Average,
    /// The least.
    Minimum,
    /// The greatest.
    Maximum,
}

/// The alarm's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Comparison {
    /// `GreaterThanOrEqualToThreshold`.
    GreaterThanOrEqual,
    /// `GreaterThanThreshold`.
    GreaterThan,
    /// `LessThanThreshold`.
    LessThan,
    /// `LessThanOrEqualToThreshold`.
    LessThanOrEqual,
}

impl Comparison {
    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqual => value >= threshold,
            Comparison::GreaterThan => value > threshold,
            Comparison::LessThan => value < threshold,
            Comparison::LessThanOrEqual => value <= threshold,
        }
    }

    /// The CloudWatch name.
    pub fn name(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqual => "GreaterThanOrEqualToThreshold",
            Comparison::GreaterThan => "GreaterThanThreshold",
            Comparison::LessThan => "LessThanThreshold",
            Comparison::LessThanOrEqual => "LessThanOrEqualToThreshold",
        }
    }

    fn above(self) -> bool {
        matches!(self, Comparison::GreaterThanOrEqual | Comparison::GreaterThan)
    }
}

/// What an alarm does with a missing datapoint (`TreatMissingData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MissingData {
    /// `missing` (the default): the alarm looks further back; with no datapoint at all it is
    /// INSUFFICIENT_DATA.
    Missing,
    /// `ignore`: the alarm keeps its state.
    Ignore,
    /// `breaching`.
    Breaching,
    /// `notBreaching`.
    NotBreaching,
}

/// A CloudWatch alarm: its metric (one metric or metric math) and how it is judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alarm {
    /// Its name.
    pub name: String,
    /// What it watches; its period is the alarm's.
    pub metric: Metric,
    /// Datapoints evaluated.
    pub evaluation_periods: u32,
    /// Breaching datapoints among them that set ALARM.
    pub datapoints_to_alarm: u32,
    /// The threshold.
    pub threshold: f64,
    /// The comparison.
    pub comparison: Comparison,
    /// What a missing datapoint counts as.
    pub missing: MissingData,
}

/// One step: bounds are offsets from the threshold (`None`: unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Step {
    /// Lower bound.
    pub lower: Option<f64>,
    /// Upper bound.
    pub upper: Option<f64>,
    /// The adjustment.
    pub adjustment: i64,
    /// Its position in the file (0-based), for messages.
    pub index: usize,
}

impl Step {
    /// Whether `offset` (metric - threshold) falls in this step: above the threshold the lower
    /// bound is inclusive and the upper exclusive; below it the reverse.
    pub fn contains(&self, offset: f64) -> bool {
        if offset >= 0.0 {
            self.lower.is_none_or(|l| offset >= l) && self.upper.is_none_or(|u| offset < u)
        } else {
            self.lower.is_none_or(|l| offset > l) && self.upper.is_none_or(|u| offset <= u)
        }
    }
}

/// A step scaling policy with its alarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepPolicy {
    /// Its name.
    pub name: String,
    /// The alarm that invokes it.
    pub alarm: Alarm,
    /// How adjustments apply.
    pub adjustment_type: AdjustmentType,
    /// Steps, sorted by lower bound.
    pub steps: Vec<Step>,
    /// Least absolute change (percent adjustments).
    pub min_adjustment_magnitude: Option<i64>,
    /// Seconds.
    pub cooldown: u32,
    /// How the datapoints are aggregated to pick a step.
    pub aggregation: Aggregation,
}

impl StepPolicy {
    /// The step `metric` falls in, if any.
    pub fn step_for(&self, metric: f64) -> Option<&Step> {
        let offset = metric - self.alarm.threshold;
        self.steps.iter().find(|s| s.contains(offset))
    }
}

/// Target tracking on the metric the policy names (AWS's backlog per task when it names none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetTrackingPolicy {
    /// Its name.
    pub name: String,
    /// The metric tracked.
    pub metric: Metric,
    /// The value to hold.
    pub target_value: f64,
    /// Seconds after a scale-out before another.
    pub scale_out_cooldown: u32,
    /// Seconds after a scale-in before another.
    pub scale_in_cooldown: u32,
    /// Never scale in.
    pub disable_scale_in: bool,
}

/// KEDA's `aws-sqs-queue` scaler under the Kubernetes HPA.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KedaPolicy {
    /// Its name.
    pub name: String,
    /// Messages per replica.
    pub queue_length: f64,
    /// At or below this, the target scales between 0 and 1.
    pub activation_queue_length: f64,
    /// Count in-flight messages.
    pub scale_on_in_flight: bool,
    /// Count delayed messages.
    pub scale_on_delayed: bool,
    /// Least replicas.
    pub min: u32,
    /// Most replicas.
    pub max: u32,
    /// Seconds between checks.
    pub polling_interval: u32,
    /// Seconds of inactivity before scaling to zero.
    pub cooldown_period: u32,
}

/// One policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum Policy {
    /// Step scaling.
    Step(StepPolicy),
    /// Target tracking.
    TargetTracking(TargetTrackingPolicy),
    /// KEDA-style proportional.
    Keda(KedaPolicy),
}

impl Policy {
    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            Policy::Step(p) => &p.name,
            Policy::TargetTracking(p) => &p.name,
            Policy::Keda(p) => &p.name,
        }
    }

    /// The metric it watches (KEDA reads the queue's attributes directly: none).
    pub fn metric(&self) -> Option<&Metric> {
        match self {
            Policy::Step(p) => Some(&p.alarm.metric),
            Policy::TargetTracking(p) => Some(&p.metric),
            Policy::Keda(_) => None,
        }
    }

    fn metric_mut(&mut self) -> Option<&mut Metric> {
        match self {
            Policy::Step(p) => Some(&mut p.alarm.metric),
            Policy::TargetTracking(p) => Some(&mut p.metric),
            Policy::Keda(_) => None,
        }
    }
}

/// The scalable target's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capacity {
    /// Least.
    pub min: u32,
    /// Most.
    pub max: u32,
}

/// A checked scaling file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingConfig {
    /// Bounds from `ScalableTarget`, when given.
    pub capacity: Option<Capacity>,
    /// The policies.
    pub policies: Vec<Policy>,
    /// Legal but suspicious: steps the alarm can never reach, breaches no step covers.
    pub warnings: Vec<String>,
    /// The documents as given (for export).
    #[serde(skip)]
    pub file: ScalingFile,
}

impl ScalingConfig {
    /// Parses and checks a scaling file.
    pub fn from_json(text: &str) -> Result<ScalingConfig, ScaleError> {
        ScalingConfig::from_file(ScalingFile::from_json(text)?)
    }

    /// Checks a parsed scaling file. A target tracking policy that names no metric gets AWS's
    /// backlog per task written into its document, with a warning, so that what is simulated is
    /// what `export` writes.
    pub fn from_file(mut file: ScalingFile) -> Result<ScalingConfig, ScaleError> {
        let mut warnings = Vec::new();
        let docs =
            file.scaling_policy.iter_mut().chain(file.policies.iter_mut().filter_map(|e| e.scaling_policy.as_mut()));
        for doc in docs {
            if let Some(tt) = &mut doc.target_tracking_scaling_policy_configuration
                && tt.customized_metric_specification.is_none()
                && tt.predefined_metric_specification.is_none()
            {
                let parts: Vec<&str> = doc.resource_id.split('/').collect();
                let (cluster, service) = match parts.as_slice() {
                    ["service", c, s] => (*c, *s),
                    _ => ("CLUSTER", "SERVICE"),
                };
                tt.customized_metric_specification = Some(backlog_per_task("QUEUE", cluster, service));
                warnings.push(format!(
                    "policy `{}` names no metric: it tracks AWS's backlog per task (m1 / m2: AWS/SQS ApproximateNumberOfMessagesVisible over ECS/ContainerInsights RunningTaskCount), as export writes it",
                    doc.policy_name
                ));
            }
        }
        let capacity = match &file.scalable_target {
            Some(t) => {
                let name = "ScalableTarget";
                let min = t.min_capacity.unwrap_or(0);
                let max = t.max_capacity.unwrap_or(min);
                if min < 0 || max < 0 {
                    return Err(ScaleError::invalid(
                        name,
                        None,
                        format!("MinCapacity {min} / MaxCapacity {max} must not be negative"),
                    ));
                }
                if min > max {
                    return Err(ScaleError::invalid(
                        name,
                        None,
                        format!(
                            "MinCapacity {min} is greater than MaxCapacity {max}: raise MaxCapacity or lower MinCapacity"
                        ),
                    ));
                }
                Some(Capacity { min: min as u32, max: max as u32 })
            }
            None => None,
        };
        let entries = file.entries();
        if entries.is_empty() {
            return Err(ScaleError::Parse {
                message: "no policy: give ScalingPolicy (with Alarm for step scaling) or Policies".into(),
            });
        }
        let mut policies = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let policy = match (&entry.scaling_policy, &entry.keda) {
                (Some(_), Some(_)) => {
                    return Err(ScaleError::invalid(
                        &format!("Policies[{i}]"),
                        None,
                        "give ScalingPolicy or Keda, not both",
                    ));
                }
                (None, Some(keda)) => Policy::Keda(keda_policy(keda)?),
                (Some(doc), None) => {
                    let name = &doc.policy_name;
                    let kind = doc.policy_type.as_deref().unwrap_or("StepScaling");
                    match (
                        kind,
                        &doc.step_scaling_policy_configuration,
                        &doc.target_tracking_scaling_policy_configuration,
                    ) {
                        ("StepScaling", Some(step), None) => {
                            let alarm = entry.alarm.as_ref().ok_or_else(|| {
                                ScaleError::invalid(
                                    name,
                                    None,
                                    "a step scaling policy needs its Alarm (put-metric-alarm input)",
                                )
                            })?;
                            let policy = step_policy(name, step, alarm)?;
                            warnings.extend(step_warnings(&policy));
                            Policy::Step(policy)
                        }
                        ("TargetTrackingScaling", None, Some(tt)) => {
                            Policy::TargetTracking(target_tracking_policy(name, tt)?)
                        }
                        ("StepScaling" | "TargetTrackingScaling", _, _) => {
                            return Err(ScaleError::invalid(
                                name,
                                None,
                                format!(
                                    "PolicyType {kind} needs exactly its own configuration (StepScalingPolicyConfiguration or TargetTrackingScalingPolicyConfiguration)"
                                ),
                            ));
                        }
                        (other, _, _) => {
                            return Err(ScaleError::invalid(
                                name,
                                None,
                                format!(
                                    "PolicyType `{other}` is not simulated: use StepScaling or TargetTrackingScaling"
                                ),
                            ));
                        }
                    }
                }
                (None, None) => {
                    return Err(ScaleError::invalid(
                        &format!("Policies[{i}]"),
                        None,
                        "has neither ScalingPolicy nor Keda",
                    ));
                }
            };
            if policies.iter().any(|p: &Policy| p.name() == policy.name()) {
                return Err(ScaleError::invalid(policy.name(), None, "two policies have this name"));
            }
            policies.push(policy);
        }
        Ok(ScalingConfig { capacity, policies, warnings, file })
    }

    /// Every metric statistic the policies watch: the policy's name, the query's Id, the metric
    /// and what batchfan observes for it.
    pub fn watched(&self) -> Vec<(&str, &str, &MetricName, &Quantity)> {
        let mut out = Vec::new();
        for p in &self.policies {
            if let Some(m) = p.metric() {
                out.extend(m.stats().map(|(q, s)| (p.name(), q.id.as_str(), &s.metric, &s.quantity)));
            }
        }
        out
    }

    /// Feeds unknown metrics from the column (or value) `name`: the metrics whose name or query
    /// Id is `name`, or else the one unknown metric when there is exactly one. Errors when it
    /// feeds nothing.
    pub fn bind(&mut self, name: &str) -> Result<usize, ScaleError> {
        let mut bound = 0;
        for p in &mut self.policies {
            if let Some(m) = p.metric_mut() {
                bound += m.bind(name, &|id, metric| id == name || metric.name == name);
            }
        }
        if bound == 0 {
            let unknown: Vec<(String, MetricName)> = self
                .watched()
                .into_iter()
                .filter(|w| *w.3 == Quantity::Unknown)
                .map(|w| (w.0.to_string(), w.2.clone()))
                .collect();
            let distinct = unknown.iter().fold(Vec::<&MetricName>::new(), |mut acc, (_, m)| {
                if !acc.contains(&m) {
                    acc.push(m);
                }
                acc
            });
            if let [only] = distinct.as_slice() {
                let only = (*only).clone();
                for p in &mut self.policies {
                    if let Some(m) = p.metric_mut() {
                        bound += m.bind(name, &|_, metric| *metric == only);
                    }
                }
            } else {
                let names: Vec<String> = distinct.iter().map(|m| format!("{} ({})", m.name, m)).collect();
                return Err(ScaleError::Option {
                    field: "--metric-column".into(),
                    value: name.into(),
                    allowed: if names.is_empty() {
                        "a metric the policies name that batchfan cannot compute; they name none".into()
                    } else {
                        format!("the MetricName or query Id of a metric batchfan cannot compute: {}", names.join(", "))
                    },
                });
            }
        }
        Ok(bound)
    }

    /// Errors naming the first metric batchfan cannot observe (`observable` says no); `how`
    /// tells the user what to do instead.
    pub fn require(&self, observable: &dyn Fn(&Quantity) -> bool, what: &str, how: &str) -> Result<(), ScaleError> {
        for (policy, id, metric, quantity) in self.watched() {
            if !observable(quantity) {
                let query = if id.is_empty() { String::new() } else { format!(" (query `{id}`)") };
                let message = if *quantity == Quantity::Unknown {
                    format!(
                        "metric {metric}{query} cannot be {what}: batchfan computes the AWS/SQS queue metrics and ECS/ContainerInsights RunningTaskCount, DesiredTaskCount and PendingTaskCount; {how}"
                    )
                } else {
                    format!("metric {metric}{query} ({}) cannot be {what}; {how}", quantity.describe())
                };
                return Err(ScaleError::invalid(policy, None, message));
            }
        }
        Ok(())
    }
}

fn step_policy(name: &str, doc: &StepConfigDoc, alarm: &AlarmDoc) -> Result<StepPolicy, ScaleError> {
    let bad = |step: Option<usize>, message: String| ScaleError::invalid(name, step, message);
    let adjustment_type = match doc.adjustment_type.as_str() {
        "ChangeInCapacity" => AdjustmentType::ChangeInCapacity,
        "PercentChangeInCapacity" => AdjustmentType::PercentChangeInCapacity,
        "ExactCapacity" => AdjustmentType::ExactCapacity,
        other => {
            return Err(bad(
                None,
                format!("AdjustmentType `{other}`: use ChangeInCapacity, PercentChangeInCapacity or ExactCapacity"),
            ));
        }
    };
    let aggregation = match doc.metric_aggregation_type.as_deref().unwrap_or("Average") {
        "Average" => Aggregation::Average,
        "Minimum" => Aggregation::Minimum,
        "Maximum" => Aggregation::Maximum,
        other => return Err(bad(None, format!("MetricAggregationType `{other}`: use Average, Minimum or Maximum"))),
    };
    if let Some(m) = doc.min_adjustment_magnitude {
        if adjustment_type != AdjustmentType::PercentChangeInCapacity {
            return Err(bad(
                None,
                "MinAdjustmentMagnitude applies only to AdjustmentType PercentChangeInCapacity".into(),
            ));
        }
        if m < 1 {
            return Err(bad(None, format!("MinAdjustmentMagnitude {m} must be at least 1")));
        }
    }
    let cooldown = doc.cooldown.unwrap_or(300);
    if cooldown < 0 {
        return Err(bad(None, format!("Cooldown {cooldown} must not be negative")));
    }
    if doc.step_adjustments.is_empty() {
        return Err(bad(None, "StepAdjustments is empty: give at least one step".into()));
    }
    let mut steps = Vec::new();
    for (i, s) in doc.step_adjustments.iter().enumerate() {
        let (lower, upper) = (s.metric_interval_lower_bound, s.metric_interval_upper_bound);
        if lower.is_none() && upper.is_none() {
            return Err(bad(
                Some(i),
                "is open on both ends: give MetricIntervalLowerBound or MetricIntervalUpperBound".into(),
            ));
        }
        if let (Some(l), Some(u)) = (lower, upper)
            && l >= u
        {
            return Err(bad(
                Some(i),
                format!("MetricIntervalLowerBound {l} is not below MetricIntervalUpperBound {u}"),
            ));
        }
        if adjustment_type == AdjustmentType::ExactCapacity && s.scaling_adjustment < 0 {
            return Err(bad(
                Some(i),
                format!(
                    "ScalingAdjustment {} is negative: with ExactCapacity it is the capacity (0 or more)",
                    s.scaling_adjustment
                ),
            ));
        }
        steps.push(Step { lower, upper, adjustment: s.scaling_adjustment, index: i });
    }
    for (which, open) in [
        ("lower", steps.iter().filter(|s| s.lower.is_none()).count()),
        ("upper", steps.iter().filter(|s| s.upper.is_none()).count()),
    ] {
        if open > 1 {
            let second = steps
                .iter()
                .filter(|s| if which == "lower" { s.lower.is_none() } else { s.upper.is_none() })
                .nth(1)
                .map(|s| s.index);
            return Err(bad(
                second,
                format!("a second step with no {which} bound: at most one step is open on each side"),
            ));
        }
    }
    steps.sort_by(|a, b| a.lower.unwrap_or(f64::NEG_INFINITY).total_cmp(&b.lower.unwrap_or(f64::NEG_INFINITY)));
    for pair in steps.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (Some(upper), Some(lower)) = (a.upper, b.lower) else {
            return Err(bad(
                Some(b.index),
                format!("overlaps step {}: an unbounded side must be the outermost", a.index),
            ));
        };
        if upper > lower {
            return Err(bad(
                Some(b.index),
                format!("overlaps step {}: its lower bound {lower} is below that step's upper bound {upper}", a.index),
            ));
        }
        if upper < lower {
            return Err(bad(
                Some(b.index),
                format!("leaves a gap after step {}: metric offsets from {upper} to {lower} match no step", a.index),
            ));
        }
    }
    Ok(StepPolicy {
        name: name.to_string(),
        alarm: alarm_of(name, alarm)?,
        adjustment_type,
        steps,
        min_adjustment_magnitude: doc.min_adjustment_magnitude,
        cooldown: cooldown as u32,
        aggregation,
    })
}

fn alarm_of(policy: &str, doc: &AlarmDoc) -> Result<Alarm, ScaleError> {
    let bad = |message: String| ScaleError::invalid(policy, None, format!("alarm `{}`: {message}", doc.alarm_name));
    if doc.extended_statistic.is_some() {
        return Err(bad("ExtendedStatistic (percentiles) is not simulated: use Statistic".into()));
    }
    if doc.threshold_metric_id.is_some() {
        return Err(bad("ThresholdMetricId (anomaly detection) is not simulated: give a Threshold".into()));
    }
    let metric = match (&doc.metric_name, doc.metrics.is_empty()) {
        (Some(_), false) => return Err(bad("give MetricName or Metrics (metric math), not both".into())),
        (None, true) => return Err(bad("give MetricName (with Namespace and Statistic) or Metrics".into())),
        (None, false) => {
            if doc.period.is_some() || doc.statistic.is_some() || doc.namespace.is_some() {
                return Err(bad(
                    "with Metrics, Period and Stat go in each MetricStat; Namespace and Statistic stay unset".into(),
                ));
            }
            Metric::math(&doc.metrics, None).map_err(bad)?
        }
        (Some(name), true) => {
            let period = doc.period.unwrap_or(60);
            if period < 1 {
                return Err(bad(format!("Period {period} must be positive")));
            }
            let metric = MetricDoc {
                namespace: doc.namespace.clone(),
                metric_name: Some(name.clone()),
                dimensions: doc.dimensions.clone(),
            };
            Metric::single(&metric, doc.statistic.as_deref().unwrap_or("Average"), period as u32).map_err(bad)?
        }
    };
    if doc.evaluation_periods < 1 {
        return Err(bad(format!("EvaluationPeriods {} must be at least 1", doc.evaluation_periods)));
    }
    let to_alarm = doc.datapoints_to_alarm.unwrap_or(doc.evaluation_periods);
    if to_alarm < 1 || to_alarm > doc.evaluation_periods {
        return Err(bad(format!(
            "DatapointsToAlarm {to_alarm} must be from 1 to EvaluationPeriods ({})",
            doc.evaluation_periods
        )));
    }
    let missing = match doc.treat_missing_data.as_deref().unwrap_or("missing") {
        "missing" => MissingData::Missing,
        "ignore" => MissingData::Ignore,
        "breaching" => MissingData::Breaching,
        "notBreaching" => MissingData::NotBreaching,
        other => {
            return Err(bad(format!("TreatMissingData `{other}`: use missing, ignore, breaching or notBreaching")));
        }
    };
    let threshold = doc.threshold.ok_or_else(|| bad("Threshold is required".into()))?;
    let comparison = match doc.comparison_operator.as_str() {
        "GreaterThanOrEqualToThreshold" => Comparison::GreaterThanOrEqual,
        "GreaterThanThreshold" => Comparison::GreaterThan,
        "LessThanThreshold" => Comparison::LessThan,
        "LessThanOrEqualToThreshold" => Comparison::LessThanOrEqual,
        other => {
            return Err(bad(format!(
                "ComparisonOperator `{other}`: use GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold or LessThanOrEqualToThreshold"
            )));
        }
    };
    Ok(Alarm {
        name: doc.alarm_name.clone(),
        metric,
        evaluation_periods: doc.evaluation_periods as u32,
        datapoints_to_alarm: to_alarm as u32,
        threshold,
        comparison,
        missing,
    })
}

/// Steps the alarm's comparison never reaches, and breaching offsets no step covers.
fn step_warnings(policy: &StepPolicy) -> Vec<String> {
    let mut warnings = Vec::new();
    if policy.steps.len() > 20 {
        warnings.push(format!(
            "policy `{}`: {} steps; Application Auto Scaling allows 20 step adjustments per policy unless you request a quota increase",
            policy.name,
            policy.steps.len()
        ));
    }
    let above = policy.alarm.comparison.above();
    for s in &policy.steps {
        let unreachable = if above { s.upper.is_some_and(|u| u <= 0.0) } else { s.lower.is_some_and(|l| l >= 0.0) };
        if unreachable {
            warnings.push(format!(
                "policy `{}`, step {}: never applies: the alarm fires only {} the threshold ({}), where this step's offsets [{}, {}] are not",
                policy.name,
                s.index,
                if above { "at or above" } else { "below" },
                policy.alarm.comparison.name(),
                s.lower.map_or("-inf".into(), |v| v.to_string()),
                s.upper.map_or("+inf".into(), |v| v.to_string()),
            ));
        }
    }
    if above && let Some(first) = policy.steps.first().and_then(|s| s.lower).filter(|l| *l > 0.0) {
        warnings.push(format!(
            "policy `{}`: breaches from the threshold up to {first} above it match no step: the alarm fires but nothing changes",
            policy.name
        ));
    }
    if !above && let Some(last) = policy.steps.last().and_then(|s| s.upper).filter(|u| *u < 0.0) {
        warnings.push(format!(
            "policy `{}`: breaches from the threshold down to {last} below it match no step: the alarm fires but nothing changes",
            policy.name
        ));
    }
    warnings
}

fn target_tracking_policy(name: &str, doc: &TargetTrackingDoc) -> Result<TargetTrackingPolicy, ScaleError> {
    let bad = |message: String| ScaleError::invalid(name, None, message);
    if !(doc.target_value.is_finite() && doc.target_value > 0.0) {
        return Err(bad(format!("TargetValue {} must be positive", doc.target_value)));
    }
    let metric = match (&doc.customized_metric_specification, &doc.predefined_metric_specification) {
        (Some(_), Some(_)) => {
            return Err(bad("give CustomizedMetricSpecification or PredefinedMetricSpecification, not both".into()));
        }
        (None, Some(p)) => Metric::predefined(&p.predefined_metric_type),
        (Some(c), None) if !c.metrics.is_empty() => {
            if c.metric_name.is_some() || c.namespace.is_some() || c.statistic.is_some() {
                return Err(bad(
                    "CustomizedMetricSpecification: give MetricName/Namespace/Statistic or Metrics, not both".into(),
                ));
            }
            Metric::math(&c.metrics, Some(60)).map_err(|e| bad(format!("CustomizedMetricSpecification: {e}")))?
        }
        (Some(c), None) => {
            let (Some(_), Some(statistic)) = (&c.metric_name, &c.statistic) else {
                return Err(bad(
                    "CustomizedMetricSpecification needs MetricName, Namespace and Statistic, or Metrics".into()
                ));
            };
            let metric = MetricDoc {
                namespace: c.namespace.clone(),
                metric_name: c.metric_name.clone(),
                dimensions: c.dimensions.clone(),
            };
            Metric::single(&metric, statistic, 60).map_err(|e| bad(format!("CustomizedMetricSpecification: {e}")))?
        }
        (None, None) => {
            return Err(bad("needs a metric: CustomizedMetricSpecification or PredefinedMetricSpecification".into()));
        }
    };
    let cooldown = |v: Option<i64>, field: &str| match v.unwrap_or(300) {
        c if c < 0 => Err(bad(format!("{field} {c} must not be negative"))),
        c => Ok(c as u32),
    };
    Ok(TargetTrackingPolicy {
        name: name.to_string(),
        metric,
        target_value: doc.target_value,
        scale_out_cooldown: cooldown(doc.scale_out_cooldown, "ScaleOutCooldown")?,
        scale_in_cooldown: cooldown(doc.scale_in_cooldown, "ScaleInCooldown")?,
        disable_scale_in: doc.disable_scale_in.unwrap_or(false),
    })
}

fn keda_policy(doc: &KedaDoc) -> Result<KedaPolicy, ScaleError> {
    let bad = |message: String| ScaleError::invalid(&doc.name, None, message);
    if !(doc.queue_length.is_finite() && doc.queue_length > 0.0) {
        return Err(bad(format!("queueLength {} must be positive", doc.queue_length)));
    }
    if doc.activation_queue_length < 0.0 {
        return Err(bad(format!("activationQueueLength {} must not be negative", doc.activation_queue_length)));
    }
    if doc.min_replica_count < 0 || doc.min_replica_count > doc.max_replica_count {
        return Err(bad(format!(
            "minReplicaCount {} / maxReplicaCount {}: need 0 <= min <= max",
            doc.min_replica_count, doc.max_replica_count
        )));
    }
    if doc.polling_interval < 1 || doc.cooldown_period < 0 {
        return Err(bad("pollingInterval must be at least 1 and cooldownPeriod not negative".into()));
    }
    Ok(KedaPolicy {
        name: doc.name.clone(),
        queue_length: doc.queue_length,
        activation_queue_length: doc.activation_queue_length,
        scale_on_in_flight: doc.scale_on_in_flight,
        scale_on_delayed: doc.scale_on_delayed,
        min: doc.min_replica_count as u32,
        max: doc.max_replica_count as u32,
        polling_interval: doc.polling_interval as u32,
        cooldown_period: doc.cooldown_period as u32,
    })
}
