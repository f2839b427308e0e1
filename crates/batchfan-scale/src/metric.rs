//! The metric a policy names, computed as CloudWatch computes it. Pure: no I/O.
//!
//! What batchfan can know: the queue metrics SQS publishes in `AWS/SQS` (visible, not visible,
//! delayed, age of the oldest message, messages sent, received and deleted) and the service's
//! task counts (`ECS/ContainerInsights` `RunningTaskCount`, `DesiredTaskCount`,
//! `PendingTaskCount`). Any other metric (CPU, memory, a custom namespace, a predefined target
//! tracking metric) is [`Quantity::Unknown`] until the caller binds it to a trace column
//! ([`Metric::bind`]); it is never replaced by something else.
//!
//! Both publish one datapoint a minute: a metric statistic over a `Period` of N minutes is taken
//! over N one-minute samples (so `Sum` of `ApproximateNumberOfMessagesVisible` over 300 s is five
//! samples added, as CloudWatch adds them; the counters `NumberOfMessages*` are the messages of
//! each minute).
//!
//! Metric math: the part of "Metric math syntax and functions" (Amazon CloudWatch User Guide)
//! that yields one value per datapoint, which is what an alarm and a target tracking policy
//! watch ("Any expression used in a PutMetricAlarm operation must return a single time series";
//! "Create a target tracking scaling policy for Application Auto Scaling using metric math",
//! Application Auto Scaling User Guide): the arithmetic operators `+ - * / ^` and unary `-`,
//! parentheses, constants, the comparison (`== != < <= > >=`) and logical (`AND &&`, `OR ||`,
//! `NOT !`) operators, and the functions `ABS`, `CEIL`, `FLOOR`, `LOG`, `LOG10`, `IF`, `FILL`
//! (a value or `REPEAT`), `MAX`/`MIN`/`SUM`/`AVG`/`STDDEV` of an array (`[m1, m2]` or
//! `METRICS()`), `METRIC_COUNT`, `METRICS`, `PERIOD`, `DIFF` and `RATE`. As the guide says,
//! "If the value of a data point causes a function to attempt to divide by zero, the data point
//! is dropped", and a series missing a datapoint counts as 0 beside one that has it. Functions
//! over a whole query range (`MAX(m1)` of one series, `RUNNING_SUM`, `SORT`, ...) and the
//! service functions (`SEARCH`, `ANOMALY_DETECTION_BAND`, ...) are refused by name.

use std::collections::VecDeque;
use std::fmt;

use serde::Serialize;

use crate::document::{CustomizedMetricDoc, DimensionDoc, MetricDataQueryDoc, MetricDoc};

/// A value batchfan can observe, or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Quantity {
    /// `AWS/SQS ApproximateNumberOfMessagesVisible` (the SQS API's `ApproximateNumberOfMessages`).
    Visible,
    /// `AWS/SQS ApproximateNumberOfMessagesNotVisible`: in flight.
    NotVisible,
    /// `AWS/SQS ApproximateNumberOfMessagesDelayed`.
    Delayed,
    /// `AWS/SQS ApproximateAgeOfOldestMessage`: seconds since the oldest message not yet deleted
    /// was sent (not in GetQueueAttributes).
    AgeOfOldestMessage,
    /// `AWS/SQS NumberOfMessagesSent` in the minute.
    Sent,
    /// `AWS/SQS NumberOfMessagesReceived` in the minute.
    Received,
    /// `AWS/SQS NumberOfMessagesDeleted` in the minute.
    Deleted,
    /// `ECS/ContainerInsights RunningTaskCount`: workers running.
    RunningTasks,
    /// `ECS/ContainerInsights DesiredTaskCount`: the capacity asked for.
    DesiredTasks,
    /// `ECS/ContainerInsights PendingTaskCount`: workers asked for and not yet running.
    PendingTasks,
    /// A column of the trace (`--metric-column NAME`) or a value given by the user.
    Column(String),
    /// A metric batchfan cannot compute: refused until bound to a column.
    Unknown,
}

impl Quantity {
    /// What it is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Quantity::Visible => "visible messages".into(),
            Quantity::NotVisible => "messages in flight".into(),
            Quantity::Delayed => "delayed messages".into(),
            Quantity::AgeOfOldestMessage => "age of the oldest message".into(),
            Quantity::Sent => "messages sent per minute".into(),
            Quantity::Received => "messages received per minute".into(),
            Quantity::Deleted => "messages deleted per minute".into(),
            Quantity::RunningTasks => "running workers".into(),
            Quantity::DesiredTasks => "workers asked for".into(),
            Quantity::PendingTasks => "workers starting".into(),
            Quantity::Column(c) => format!("column `{c}`"),
            Quantity::Unknown => "unknown".into(),
        }
    }
}

/// Every metric CloudWatch publishes in `AWS/SQS` (SQS Developer Guide, "Available CloudWatch
/// metrics for Amazon SQS").
pub const SQS_METRICS: [&str; 11] = [
    "ApproximateAgeOfOldestMessage",
    "ApproximateNumberOfGroupsWithInflightMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesVisible",
    "NumberOfDeduplicatedSentMessages",
    "NumberOfEmptyReceives",
    "NumberOfMessagesDeleted",
    "NumberOfMessagesReceived",
    "NumberOfMessagesSent",
    "SentMessageSize",
];

/// The namespace of the service task counts.
pub const CONTAINER_INSIGHTS: &str = "ECS/ContainerInsights";

/// What a CloudWatch metric is to batchfan: `Err` for a name that cannot be right (a typo of an
/// SQS metric, the SQS API's attribute name).
pub fn quantity_of(namespace: &str, name: &str) -> Result<Quantity, String> {
    Ok(match (namespace, name) {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible") => Quantity::Visible,
        ("AWS/SQS", "ApproximateNumberOfMessagesNotVisible") => Quantity::NotVisible,
        ("AWS/SQS", "ApproximateNumberOfMessagesDelayed") => Quantity::Delayed,
        ("AWS/SQS", "ApproximateAgeOfOldestMessage") => Quantity::AgeOfOldestMessage,
        ("AWS/SQS", "NumberOfMessagesSent") => Quantity::Sent,
        ("AWS/SQS", "NumberOfMessagesReceived") => Quantity::Received,
        ("AWS/SQS", "NumberOfMessagesDeleted") => Quantity::Deleted,
        ("AWS/SQS", "ApproximateNumberOfMessages") => {
            return Err(
                "MetricName ApproximateNumberOfMessages is the SQS API's attribute, not a CloudWatch metric: use ApproximateNumberOfMessagesVisible".into(),
            );
        }
        ("AWS/SQS", known) if SQS_METRICS.contains(&known) => Quantity::Unknown,
        ("AWS/SQS", unknown) => {
            return Err(format!("MetricName `{unknown}` is not an AWS/SQS metric (known: {})", SQS_METRICS.join(", ")));
        }
        (CONTAINER_INSIGHTS, "RunningTaskCount") => Quantity::RunningTasks,
        (CONTAINER_INSIGHTS, "DesiredTaskCount") => Quantity::DesiredTasks,
        (CONTAINER_INSIGHTS, "PendingTaskCount") => Quantity::PendingTasks,
        _ => Quantity::Unknown,
    })
}

/// The statistic of a datapoint over its period's one-minute samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Statistic {
    /// Mean of the samples.
    Average,
    /// Sum.
    Sum,
    /// Least.
    Minimum,
    /// Greatest.
    Maximum,
    /// How many.
    SampleCount,
}

impl Statistic {
    /// Parses a CloudWatch statistic name.
    pub fn parse(name: &str) -> Result<Statistic, String> {
        Ok(match name {
            "Average" => Statistic::Average,
            "Sum" => Statistic::Sum,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            "SampleCount" => Statistic::SampleCount,
            other => {
                return Err(format!(
                    "statistic `{other}` is not simulated: use Average, Sum, Minimum, Maximum or SampleCount"
                ));
            }
        })
    }

    /// The CloudWatch name.
    pub fn name(self) -> &'static str {
        match self {
            Statistic::Average => "Average",
            Statistic::Sum => "Sum",
            Statistic::Minimum => "Minimum",
            Statistic::Maximum => "Maximum",
            Statistic::SampleCount => "SampleCount",
        }
    }

    /// The statistic of `samples` (none: no datapoint).
    pub fn of(self, samples: impl IntoIterator<Item = f64>) -> Option<f64> {
        let (mut n, mut sum, mut min, mut max) = (0usize, 0.0, f64::INFINITY, f64::NEG_INFINITY);
        for s in samples {
            n += 1;
            sum += s;
            min = min.min(s);
            max = max.max(s);
        }
        (n > 0).then_some(match self {
            Statistic::Average => sum / n as f64,
            Statistic::Sum => sum,
            Statistic::Minimum => min,
            Statistic::Maximum => max,
            Statistic::SampleCount => n as f64,
        })
    }
}

/// A CloudWatch metric's identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricName {
    /// `AWS/SQS`, `ECS/ContainerInsights`, ... (empty for a predefined metric).
    pub namespace: String,
    /// The metric's name (a predefined metric's type).
    pub name: String,
    /// `Name=Value` pairs.
    pub dimensions: Vec<(String, String)>,
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "predefined metric {}", self.name)?;
        } else {
            write!(f, "{} {}", self.namespace, self.name)?;
        }
        if !self.dimensions.is_empty() {
            let dims: Vec<String> = self.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, " ({})", dims.join(", "))?;
        }
        Ok(())
    }
}

/// One metric statistic of a metric math query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricStat {
    /// The metric.
    pub metric: MetricName,
    /// What batchfan observes for it.
    pub quantity: Quantity,
    /// The statistic.
    pub stat: Statistic,
}

/// One query: a metric statistic or an expression over others.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum QueryKind {
    /// A metric statistic.
    Stat(MetricStat),
    /// A metric math expression, as written.
    Expression(String),
}

/// One query of a metric specification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Query {
    /// Its `Id`.
    pub id: String,
    /// What it computes.
    pub kind: QueryKind,
}

/// The metric a policy watches: one metric statistic, or metric math over several.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// The queries.
    pub queries: Vec<Query>,
    /// The query whose value is the metric (`ReturnData`).
    pub result: usize,
    /// Seconds per datapoint.
    pub period: u32,
    #[serde(skip)]
    exprs: Vec<Option<Expr>>,
    #[serde(skip)]
    slots: usize,
}

/// A metric named by a policy that batchfan cannot compute.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownMetric {
    /// The query's `Id` (empty for a single metric).
    pub id: String,
    /// The metric.
    pub metric: MetricName,
}

impl Metric {
    /// One metric statistic (an alarm's `MetricName`, a customized metric without `Metrics`).
    pub fn single(metric: &MetricDoc, stat: &str, period: u32) -> Result<Metric, String> {
        let name = metric_name(metric);
        let quantity = quantity_of(&name.namespace, &name.name)?;
        let stat = Statistic::parse(stat)?;
        check_period(&name, &quantity, period)?;
        Ok(Metric {
            queries: vec![Query {
                id: String::new(),
                kind: QueryKind::Stat(MetricStat { metric: name, quantity, stat }),
            }],
            result: 0,
            period,
            exprs: vec![None],
            slots: 0,
        })
    }

    /// A predefined target tracking metric (never computed: [`Quantity::Unknown`]).
    pub fn predefined(kind: &str) -> Metric {
        Metric {
            queries: vec![Query {
                id: String::new(),
                kind: QueryKind::Stat(MetricStat {
                    metric: MetricName { namespace: String::new(), name: kind.into(), dimensions: Vec::new() },
                    quantity: Quantity::Unknown,
                    stat: Statistic::Average,
                }),
            }],
            result: 0,
            period: 60,
            exprs: vec![None],
            slots: 0,
        }
    }

    /// Metric math queries (an alarm's `Metrics`, a customized metric's `Metrics`); `period`
    /// is the period of queries that give none (target tracking: 60 s).
    pub fn math(queries: &[MetricDataQueryDoc], default_period: Option<u32>) -> Result<Metric, String> {
        if queries.is_empty() {
            return Err("Metrics is empty".into());
        }
        let mut out = Vec::new();
        let mut period = None;
        for q in queries {
            if !q.id.starts_with(|c: char| c.is_ascii_lowercase())
                || !q.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(format!(
                    "query Id `{}` must start with a lowercase letter and hold only letters, digits and _",
                    q.id
                ));
            }
            if out.iter().any(|o: &Query| o.id == q.id) {
                return Err(format!("two queries have the Id `{}`", q.id));
            }
            let kind = match (&q.metric_stat, &q.expression) {
                (Some(stat), None) => {
                    let name = metric_name(&stat.metric);
                    let quantity =
                        quantity_of(&name.namespace, &name.name).map_err(|e| format!("query `{}`: {e}", q.id))?;
                    let p = stat
                        .period
                        .or(q.period)
                        .map(|p| p as u32)
                        .or(default_period)
                        .ok_or_else(|| format!("query `{}`: MetricStat needs its Period", q.id))?;
                    check_period(&name, &quantity, p).map_err(|e| format!("query `{}`: {e}", q.id))?;
                    match period {
                        None => period = Some(p),
                        Some(first) if first != p => {
                            return Err(format!(
                                "query `{}`: Period {p} differs from the other queries' {first}: give every MetricStat one period",
                                q.id
                            ));
                        }
                        Some(_) => {}
                    }
                    let stat = Statistic::parse(&stat.stat).map_err(|e| format!("query `{}`: {e}", q.id))?;
                    QueryKind::Stat(MetricStat { metric: name, quantity, stat })
                }
                (None, Some(expression)) => QueryKind::Expression(expression.clone()),
                _ => return Err(format!("query `{}` needs exactly one of MetricStat and Expression", q.id)),
            };
            out.push(Query { id: q.id.clone(), kind });
        }
        let returning: Vec<usize> =
            queries.iter().enumerate().filter(|(_, q)| q.return_data.unwrap_or(true)).map(|(i, _)| i).collect();
        let [result] = returning.as_slice() else {
            return Err(format!(
                "{} queries return data: exactly one must (set ReturnData false on the others)",
                returning.len()
            ));
        };
        let period = period.or(default_period).unwrap_or(60);
        let mut metric = Metric { queries: out, result: *result, period, exprs: Vec::new(), slots: 0 };
        metric.compile()?;
        Ok(metric)
    }

    fn compile(&mut self) -> Result<(), String> {
        let ids: Vec<String> = self.queries.iter().map(|q| q.id.clone()).collect();
        let mut slots = 0;
        let mut exprs = Vec::new();
        for q in &self.queries {
            exprs.push(match &q.kind {
                QueryKind::Stat(_) => None,
                QueryKind::Expression(text) => {
                    let mut parser = Parser { tokens: lex(text).map_err(|e| format!("query `{}`: {e}", q.id))?, at: 0 };
                    let expr = parser
                        .expression(&ids, &self.queries, &mut slots)
                        .map_err(|e| format!("query `{}`: {e}", q.id))?;
                    parser.end().map_err(|e| format!("query `{}`: {e}", q.id))?;
                    Some(expr)
                }
            });
        }
        for (i, e) in exprs.iter().enumerate() {
            if let Some(e) = e {
                let kind =
                    e.kind(&exprs, &mut Vec::new()).map_err(|m| format!("query `{}`: {m}", self.queries[i].id))?;
                if i == self.result && kind != Kind::Series {
                    return Err(format!(
                        "query `{}` returns {}: the value a policy watches must be a single time series",
                        self.queries[i].id,
                        kind.name()
                    ));
                }
            }
        }
        self.exprs = exprs;
        self.slots = slots;
        Ok(())
    }

    /// Metric names batchfan cannot compute.
    pub fn unknown(&self) -> Vec<UnknownMetric> {
        self.stats()
            .filter(|(_, s)| s.quantity == Quantity::Unknown)
            .map(|(q, s)| UnknownMetric { id: q.id.clone(), metric: s.metric.clone() })
            .collect()
    }

    /// Every metric statistic with its query.
    pub fn stats(&self) -> impl Iterator<Item = (&Query, &MetricStat)> {
        self.queries.iter().filter_map(|q| match &q.kind {
            QueryKind::Stat(s) => Some((q, s)),
            QueryKind::Expression(_) => None,
        })
    }

    /// Feeds unknown metrics from `column` where `matches(id, metric)` says so; returns how
    /// many were bound.
    pub fn bind(&mut self, column: &str, matches: &dyn Fn(&str, &MetricName) -> bool) -> usize {
        let mut bound = 0;
        for q in &mut self.queries {
            if let QueryKind::Stat(s) = &mut q.kind
                && s.quantity == Quantity::Unknown
                && matches(&q.id, &s.metric)
            {
                s.quantity = Quantity::Column(column.to_string());
                bound += 1;
            }
        }
        bound
    }

    /// What is watched, for people: `m1 + m2 (m1: AWS/SQS ... Maximum, ...)`.
    pub fn describe(&self) -> String {
        let stat = |s: &MetricStat| format!("{} {}", s.metric, s.stat.name());
        match &self.queries[self.result].kind {
            QueryKind::Stat(s) => stat(s),
            QueryKind::Expression(e) => {
                let parts: Vec<String> = self.stats().map(|(q, s)| format!("{}: {}", q.id, stat(s))).collect();
                format!("{e} ({})", parts.join("; "))
            }
        }
    }

    /// A fresh running state.
    pub fn state(&self) -> MetricState {
        MetricState {
            windows: self.queries.iter().map(|_| VecDeque::new()).collect(),
            history: vec![None; self.slots],
            samples: 0,
        }
    }

    /// The value with every metric held at `value(quantity)` long enough (a steady state: each
    /// statistic over a period of identical one-minute samples, `DIFF` and `RATE` 0).
    pub fn steady(&self, value: &dyn Fn(&Quantity) -> Option<f64>) -> Option<f64> {
        let per_period = (self.period / 60).max(1) as usize;
        let stats: Vec<Option<f64>> = self
            .queries
            .iter()
            .map(|q| match &q.kind {
                QueryKind::Stat(s) => value(&s.quantity).and_then(|v| s.stat.of(std::iter::repeat_n(v, per_period))),
                QueryKind::Expression(_) => None,
            })
            .collect();
        let mut history = vec![None; self.slots];
        // Twice: the second pass sees the first as the previous datapoint, as a steady state does.
        let _ = self.evaluate(&stats, &mut history);
        self.evaluate(&stats, &mut history)
    }

    fn evaluate(&self, stats: &[Option<f64>], history: &mut [Option<f64>]) -> Option<f64> {
        let mut memo: Vec<Option<Val>> = vec![None; self.queries.len()];
        let ctx = Ctx { metric: self, stats };
        match ctx.query(self.result, &mut memo, history) {
            Val::Series(Some(v)) | Val::Scalar(Some(v)) if v.is_finite() => Some(v),
            Val::Series(_) | Val::Scalar(_) | Val::Array(_) => None,
        }
    }
}

fn metric_name(doc: &MetricDoc) -> MetricName {
    MetricName {
        namespace: doc.namespace.clone().unwrap_or_default(),
        name: doc.metric_name.clone().unwrap_or_default(),
        dimensions: doc.dimensions.iter().map(|DimensionDoc { name, value }| (name.clone(), value.clone())).collect(),
    }
}

fn check_period(name: &MetricName, quantity: &Quantity, period: u32) -> Result<(), String> {
    let minutely = !matches!(quantity, Quantity::Unknown | Quantity::Column(_));
    if minutely && (period < 60 || !period.is_multiple_of(60)) {
        return Err(format!("Period {period} for {name}: it is published every minute; use a multiple of 60"));
    }
    if period == 0 {
        return Err("Period must be above 0".into());
    }
    Ok(())
}

/// A metric's running state: one-minute samples of each statistic over the current period, and
/// the previous datapoint of each `DIFF`, `RATE` and `FILL(.., REPEAT)`.
#[derive(Debug, Clone)]
pub struct MetricState {
    windows: Vec<VecDeque<f64>>,
    history: Vec<Option<f64>>,
    samples: u32,
}

impl MetricState {
    /// Adds one minute's sample of every quantity. Returns the datapoint of the period whose
    /// samples are complete (`Some(None)`: dropped, e.g. by a division by zero): a minute's
    /// datapoint is known one sample after it was taken, as CloudWatch has a minute's datapoint
    /// once the minute is over.
    pub fn sample(&mut self, metric: &Metric, value: &dyn Fn(&Quantity) -> Option<f64>) -> Option<Option<f64>> {
        let point = if self.samples >= (metric.period / 60).max(1) {
            self.samples = 0;
            let stats: Vec<Option<f64>> = metric
                .queries
                .iter()
                .zip(&mut self.windows)
                .map(|(q, window)| {
                    let v = match &q.kind {
                        QueryKind::Stat(s) => s.stat.of(window.iter().copied()),
                        QueryKind::Expression(_) => None,
                    };
                    window.clear();
                    v
                })
                .collect();
            Some(metric.evaluate(&stats, &mut self.history))
        } else {
            None
        };
        for (q, window) in metric.queries.iter().zip(&mut self.windows) {
            if let QueryKind::Stat(s) = &q.kind
                && let Some(v) = value(&s.quantity)
            {
                window.push_back(v);
            }
        }
        self.samples += 1;
        point
    }
}

// ---- expressions ----

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Ident(String),
    Str(String),
    Op(&'static str),
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    const OPS: [&str; 18] =
        ["==", "!=", "<=", ">=", "&&", "||", "+", "-", "*", "/", "^", "(", ")", "[", "]", ",", "<", ">"];
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let s: String = chars[start..i].iter().collect();
            tokens.push(Token::Num(s.parse().map_err(|_| format!("`{s}` is not a number"))?));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == '"' || c == '\u{201c}' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' && chars[i] != '\u{201d}' {
                i += 1;
            }
            if i >= chars.len() {
                return Err("a string is not closed".into());
            }
            tokens.push(Token::Str(chars[start..i].iter().collect()));
            i += 1;
        } else if c == '!' && chars.get(i + 1) != Some(&'=') {
            tokens.push(Token::Op("!"));
            i += 1;
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) else {
                return Err(format!("`{c}` is not part of metric math"));
            };
            tokens.push(Token::Op(op));
            i += op.chars().count();
        }
    }
    Ok(tokens)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Abs,
    Ceil,
    Floor,
    Log,
    Log10,
    If,
    Fill,
    Max,
    Min,
    Sum,
    Avg,
    Stddev,
    MetricCount,
    Period,
    Diff,
    Rate,
}

fn func_name(func: Func) -> &'static str {
    match func {
        Func::Abs => "ABS",
        Func::Ceil => "CEIL",
        Func::Floor => "FLOOR",
        Func::Log => "LOG",
        Func::Log10 => "LOG10",
        Func::If => "IF",
        Func::Fill => "FILL",
        Func::Max => "MAX",
        Func::Min => "MIN",
        Func::Sum => "SUM",
        Func::Avg => "AVG",
        Func::Stddev => "STDDEV",
        Func::MetricCount => "METRIC_COUNT",
        Func::Period => "PERIOD",
        Func::Diff => "DIFF",
        Func::Rate => "RATE",
    }
}

/// Functions of the CloudWatch User Guide that batchfan does not compute, and why.
const NOT_SIMULATED: [(&str, &str); 24] = [
    ("SEARCH", "it finds metrics by name at run time"),
    ("ANOMALY_DETECTION_BAND", "it is a model CloudWatch trains"),
    ("INSIGHT_RULE_METRIC", "it reads Contributor Insights"),
    ("SERVICE_QUOTA", "it reads Service Quotas"),
    ("LAMBDA", "it calls a Lambda function"),
    ("DB_PERF_INSIGHTS", "it reads Performance Insights"),
    ("TIME_SERIES", "it builds a series over the query range"),
    ("SLICE", "it works on a whole array of series"),
    ("SORT", "it works on a whole array of series"),
    ("REMOVE_EMPTY", "it works on a whole array of series"),
    ("RUNNING_SUM", "it sums over the whole query range"),
    ("FIRST", "it works on a whole array of series"),
    ("LAST", "it works on a whole array of series"),
    ("DATAPOINT_COUNT", "it counts over the whole query range"),
    ("DIFF_TIME", "it depends on datapoint timestamps"),
    ("MINUTE", "it depends on the clock"),
    ("HOUR", "it depends on the clock"),
    ("DAY", "it depends on the clock"),
    ("DATE", "it depends on the clock"),
    ("MONTH", "it depends on the clock"),
    ("YEAR", "it depends on the clock"),
    ("EPOCH", "it depends on the clock"),
    ("CONCAT", "it joins arrays of series"),
    ("SELECT", "Metrics Insights queries are not simulated"),
];

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Num(f64),
    Ref(usize),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(Bin, Box<Expr>, Box<Expr>),
    Array(Vec<Expr>),
    /// `METRICS()`: the metric statistics whose Id contains the text.
    Metrics(Vec<usize>),
    /// A function; the slot keeps the previous datapoint (DIFF, RATE, FILL REPEAT).
    Call(Func, Vec<Expr>, usize),
    /// `FILL(x, REPEAT)`.
    Repeat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    Series,
    Array,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Scalar => "a number, not a time series",
            Kind::Series => "a time series",
            Kind::Array => "an array of time series",
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Token::Op(o)) if *o == op) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, words: &[&str]) -> bool {
        if matches!(self.peek(), Some(Token::Ident(w)) if words.contains(&w.as_str())) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, op: &str) -> Result<(), String> {
        if self.eat(op) { Ok(()) } else { Err(format!("expected `{op}` {}", self.here())) }
    }

    fn here(&self) -> String {
        match self.peek() {
            Some(Token::Num(n)) => format!("at `{n}`"),
            Some(Token::Ident(s)) => format!("at `{s}`"),
            Some(Token::Str(s)) => format!("at \"{s}\""),
            Some(Token::Op(o)) => format!("at `{o}`"),
            None => "at the end".into(),
        }
    }

    fn end(&self) -> Result<(), String> {
        if self.at == self.tokens.len() { Ok(()) } else { Err(format!("unexpected text {}", self.here())) }
    }

    fn expression(&mut self, ids: &[String], queries: &[Query], slots: &mut usize) -> Result<Expr, String> {
        self.binary(0, ids, queries, slots)
    }

    /// Precedence climbing: OR < AND < comparison < + - < * / < unary < ^.
    fn binary(&mut self, level: u8, ids: &[String], queries: &[Query], slots: &mut usize) -> Result<Expr, String> {
        if level == 5 {
            return self.unary(ids, queries, slots);
        }
        let mut left = self.binary(level + 1, ids, queries, slots)?;
        loop {
            let op = match level {
                0 if self.eat("||") || self.eat_word(&["OR"]) => Bin::Or,
                1 if self.eat("&&") || self.eat_word(&["AND"]) => Bin::And,
                2 if self.eat("==") => Bin::Eq,
                2 if self.eat("!=") => Bin::Ne,
                2 if self.eat("<=") => Bin::Le,
                2 if self.eat(">=") => Bin::Ge,
                2 if self.eat("<") => Bin::Lt,
                2 if self.eat(">") => Bin::Gt,
                3 if self.eat("+") => Bin::Add,
                3 if self.eat("-") => Bin::Sub,
                4 if self.eat("*") => Bin::Mul,
                4 if self.eat("/") => Bin::Div,
                _ => return Ok(left),
            };
            let right = self.binary(level + 1, ids, queries, slots)?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self, ids: &[String], queries: &[Query], slots: &mut usize) -> Result<Expr, String> {
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.unary(ids, queries, slots)?)));
        }
        if self.eat("!") || self.eat_word(&["NOT"]) {
            return Ok(Expr::Not(Box::new(self.unary(ids, queries, slots)?)));
        }
        let base = self.primary(ids, queries, slots)?;
        if self.eat("^") {
            // Right-associative, and above unary minus on its right: 2^-1.
            let exponent = self.unary(ids, queries, slots)?;
            return Ok(Expr::Bin(Bin::Pow, Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn primary(&mut self, ids: &[String], queries: &[Query], slots: &mut usize) -> Result<Expr, String> {
        let token = self.peek().cloned().ok_or_else(|| "the expression ends too early".to_string())?;
        self.at += 1;
        match token {
            Token::Num(n) => Ok(Expr::Num(n)),
            Token::Op("(") => {
                let e = self.expression(ids, queries, slots)?;
                self.expect(")")?;
                Ok(e)
            }
            Token::Op("[") => {
                let mut items = Vec::new();
                loop {
                    items.push(self.expression(ids, queries, slots)?);
                    if !self.eat(",") {
                        break;
                    }
                }
                self.expect("]")?;
                Ok(Expr::Array(items))
            }
            Token::Ident(word) if self.eat("(") => self.call(&word, ids, queries, slots),
            Token::Ident(word) if word == "REPEAT" => Ok(Expr::Repeat),
            Token::Ident(word) => match ids.iter().position(|id| *id == word) {
                Some(i) => Ok(Expr::Ref(i)),
                None => Err(format!("`{word}` is not the Id of a query here (known: {})", ids.join(", "))),
            },
            other => {
                self.at -= 1;
                Err(format!(
                    "unexpected {}",
                    match other {
                        Token::Op(o) => format!("`{o}`"),
                        Token::Str(s) => format!("\"{s}\""),
                        _ => self.here(),
                    }
                ))
            }
        }
    }

    fn call(&mut self, name: &str, ids: &[String], queries: &[Query], slots: &mut usize) -> Result<Expr, String> {
        if name == "METRICS" {
            let filter = match self.peek().cloned() {
                Some(Token::Str(s)) => {
                    self.at += 1;
                    Some(s)
                }
                _ => None,
            };
            self.expect(")")?;
            let picked: Vec<usize> = queries
                .iter()
                .enumerate()
                .filter(|(_, q)| matches!(q.kind, QueryKind::Stat(_)))
                .filter(|(_, q)| filter.as_ref().is_none_or(|f| q.id.contains(f.as_str())))
                .map(|(i, _)| i)
                .collect();
            return Ok(Expr::Metrics(picked));
        }
        let func = match name {
            "ABS" => Func::Abs,
            "CEIL" => Func::Ceil,
            "FLOOR" => Func::Floor,
            "LOG" => Func::Log,
            "LOG10" => Func::Log10,
            "IF" => Func::If,
            "FILL" => Func::Fill,
            "MAX" => Func::Max,
            "MIN" => Func::Min,
            "SUM" => Func::Sum,
            "AVG" => Func::Avg,
            "STDDEV" => Func::Stddev,
            "METRIC_COUNT" => Func::MetricCount,
            "PERIOD" => Func::Period,
            "DIFF" => Func::Diff,
            "RATE" => Func::Rate,
            other => {
                return Err(match NOT_SIMULATED.iter().find(|(n, _)| *n == other) {
                    Some((n, why)) => format!("function {n} is not simulated: {why}"),
                    None => format!(
                        "`{other}` is not a metric math function batchfan knows (functions are written in capitals)"
                    ),
                });
            }
        };
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.expression(ids, queries, slots)?);
                if !self.eat(",") {
                    break;
                }
            }
            self.expect(")")?;
        }
        let arity_ok = match func {
            Func::If => args.len() == 2 || args.len() == 3,
            Func::Fill => args.len() == 2,
            _ => args.len() == 1,
        };
        if !arity_ok {
            return Err(format!(
                "{name} takes {} arguments, not {}",
                match func {
                    Func::If => "2 or 3",
                    Func::Fill => "2",
                    _ => "1",
                },
                args.len()
            ));
        }
        if func == Func::Period && !matches!(args[0], Expr::Ref(i) if matches!(queries[i].kind, QueryKind::Stat(_))) {
            return Err("PERIOD takes a metric's Id, not an expression".into());
        }
        if args.contains(&Expr::Repeat) && !(func == Func::Fill && args[1] == Expr::Repeat) {
            return Err("REPEAT is only FILL's second argument".into());
        }
        let slot = *slots;
        if matches!(func, Func::Diff | Func::Rate | Func::Fill) {
            *slots += 1;
        }
        Ok(Expr::Call(func, args, slot))
    }
}

impl Expr {
    /// The kind of value, checked as CloudWatch checks it.
    fn kind(&self, exprs: &[Option<Expr>], visiting: &mut Vec<usize>) -> Result<Kind, String> {
        Ok(match self {
            Expr::Num(_) | Expr::Repeat => Kind::Scalar,
            Expr::Ref(i) => match &exprs[*i] {
                None => Kind::Series,
                Some(e) => {
                    if visiting.contains(i) {
                        return Err("an expression refers to itself".into());
                    }
                    visiting.push(*i);
                    let k = e.kind(exprs, visiting)?;
                    visiting.pop();
                    k
                }
            },
            Expr::Metrics(_) => Kind::Array,
            Expr::Neg(e) | Expr::Not(e) => e.kind(exprs, visiting)?,
            Expr::Bin(_, a, b) => match (a.kind(exprs, visiting)?, b.kind(exprs, visiting)?) {
                (Kind::Array, Kind::Array) => {
                    return Err("arithmetic between two arrays of series is not simulated".into());
                }
                (Kind::Array, _) | (_, Kind::Array) => Kind::Array,
                (Kind::Series, _) | (_, Kind::Series) => Kind::Series,
                (Kind::Scalar, Kind::Scalar) => Kind::Scalar,
            },
            Expr::Array(items) => {
                for item in items {
                    if item.kind(exprs, visiting)? == Kind::Array {
                        return Err("an array inside an array".into());
                    }
                }
                Kind::Array
            }
            Expr::Call(func, args, _) => {
                let kinds: Vec<Kind> = args.iter().map(|a| a.kind(exprs, visiting)).collect::<Result<_, _>>()?;
                match func {
                    Func::Abs | Func::Ceil | Func::Floor | Func::Log | Func::Log10 => kinds[0],
                    Func::Diff | Func::Rate => match kinds[0] {
                        Kind::Series => Kind::Series,
                        k => return Err(format!("{} takes a time series, not {}", func_name(*func), k.name())),
                    },
                    Func::Fill => match kinds[0] {
                        Kind::Scalar => return Err("FILL takes a time series".into()),
                        k => k,
                    },
                    Func::If => {
                        if kinds.contains(&Kind::Array) {
                            return Err("IF of arrays is not simulated: use IF on single series".into());
                        }
                        if kinds.contains(&Kind::Series) { Kind::Series } else { Kind::Scalar }
                    }
                    Func::Max | Func::Min | Func::Sum | Func::Avg | Func::Stddev => match kinds[0] {
                        Kind::Array => Kind::Series,
                        _ => {
                            let name = func_name(*func);
                            return Err(format!(
                                "{name} of one series is a single number over the whole query range, which an alarm does not see: give an array, e.g. {name}([m1, m2])"
                            ));
                        }
                    },
                    Func::MetricCount => match kinds[0] {
                        Kind::Array => Kind::Scalar,
                        _ => return Err("METRIC_COUNT takes an array".into()),
                    },
                    Func::Period => Kind::Scalar,
                }
            }
        })
    }
}

/// A value while evaluating one datapoint: `None` is a missing (dropped) datapoint.
#[derive(Debug, Clone)]
enum Val {
    Scalar(Option<f64>),
    Series(Option<f64>),
    Array(Vec<Option<f64>>),
}

struct Ctx<'a> {
    metric: &'a Metric,
    stats: &'a [Option<f64>],
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn truth(v: f64) -> f64 {
    if v != 0.0 { 1.0 } else { 0.0 }
}

fn apply(op: Bin, a: Option<f64>, b: Option<f64>) -> Option<f64> {
    // A series missing a datapoint counts as 0 beside one that has it.
    let (a, b) = match (a, b) {
        (None, None) => return None,
        (a, b) => (a.unwrap_or(0.0), b.unwrap_or(0.0)),
    };
    let bool = |x: bool| Some(if x { 1.0 } else { 0.0 });
    match op {
        Bin::Add => finite(a + b),
        Bin::Sub => finite(a - b),
        Bin::Mul => finite(a * b),
        Bin::Div => (b != 0.0).then(|| a / b).and_then(finite),
        Bin::Pow => finite(a.powf(b)),
        Bin::Eq => bool(a == b),
        Bin::Ne => bool(a != b),
        Bin::Lt => bool(a < b),
        Bin::Le => bool(a <= b),
        Bin::Gt => bool(a > b),
        Bin::Ge => bool(a >= b),
        Bin::And => bool(a != 0.0 && b != 0.0),
        Bin::Or => bool(a != 0.0 || b != 0.0),
    }
}

impl Ctx<'_> {
    fn query(&self, i: usize, memo: &mut Vec<Option<Val>>, history: &mut [Option<f64>]) -> Val {
        if let Some(v) = &memo[i] {
            return v.clone();
        }
        let v = match &self.metric.exprs.get(i).and_then(Option::as_ref) {
            None => Val::Series(self.stats.get(i).copied().flatten()),
            Some(e) => self.eval(e, memo, history),
        };
        memo[i] = Some(v.clone());
        v
    }

    fn eval(&self, e: &Expr, memo: &mut Vec<Option<Val>>, history: &mut [Option<f64>]) -> Val {
        match e {
            Expr::Num(n) => Val::Scalar(Some(*n)),
            Expr::Repeat => Val::Scalar(None),
            Expr::Ref(i) => self.query(*i, memo, history),
            Expr::Metrics(is) => Val::Array(
                is.iter()
                    .map(|i| match self.query(*i, memo, history) {
                        Val::Series(v) | Val::Scalar(v) => v,
                        Val::Array(_) => None,
                    })
                    .collect(),
            ),
            Expr::Neg(e) => map(self.eval(e, memo, history), |v| Some(-v)),
            Expr::Not(e) => map(self.eval(e, memo, history), |v| Some(1.0 - truth(v))),
            Expr::Bin(op, a, b) => {
                let (a, b) = (self.eval(a, memo, history), self.eval(b, memo, history));
                match (a, b) {
                    (Val::Scalar(x), Val::Scalar(y)) => Val::Scalar(apply(*op, x, y)),
                    (Val::Array(xs), other) => {
                        let y = single(&other);
                        Val::Array(xs.into_iter().map(|x| if x.is_none() { None } else { apply(*op, x, y) }).collect())
                    }
                    (other, Val::Array(ys)) => {
                        let x = single(&other);
                        Val::Array(ys.into_iter().map(|y| if y.is_none() { None } else { apply(*op, x, y) }).collect())
                    }
                    (Val::Scalar(x), Val::Series(y)) if x.is_some() && y.is_none() => Val::Series(None),
                    (Val::Series(x), Val::Scalar(y)) if y.is_some() && x.is_none() => Val::Series(None),
                    (a, b) => Val::Series(apply(*op, single(&a), single(&b))),
                }
            }
            Expr::Array(items) => Val::Array(items.iter().map(|i| single(&self.eval(i, memo, history))).collect()),
            Expr::Call(func, args, slot) => {
                let mut vals: Vec<Val> = args.iter().map(|a| self.eval(a, memo, history)).collect();
                match func {
                    Func::Abs => map(vals.remove(0), |v| Some(v.abs())),
                    Func::Ceil => map(vals.remove(0), |v| Some(v.ceil())),
                    Func::Floor => map(vals.remove(0), |v| Some(v.floor())),
                    Func::Log => map(vals.remove(0), |v| finite(v.ln())),
                    Func::Log10 => map(vals.remove(0), |v| finite(v.log10())),
                    Func::If => {
                        let series = vals.iter().any(|v| matches!(v, Val::Series(_)));
                        let cond = single(&vals[0]);
                        let out = match cond {
                            None => None,
                            Some(c) if c != 0.0 => single(&vals[1]),
                            Some(_) => vals.get(2).and_then(single),
                        };
                        if series { Val::Series(out) } else { Val::Scalar(out) }
                    }
                    Func::Fill => {
                        let previous = history[*slot];
                        let filler = match &args[1] {
                            Expr::Repeat => previous,
                            _ => single(&vals[1]),
                        };
                        let out = vals.remove(0);
                        let out = match out {
                            Val::Series(v) => Val::Series(v.or(filler)),
                            Val::Array(xs) => Val::Array(xs.into_iter().map(|x| x.or(filler)).collect()),
                            s => s,
                        };
                        if let Val::Series(Some(v)) = out {
                            history[*slot] = Some(v);
                        }
                        out
                    }
                    Func::Max | Func::Min | Func::Sum | Func::Avg | Func::Stddev => {
                        let Val::Array(xs) = vals.remove(0) else { return Val::Series(None) };
                        if xs.iter().all(Option::is_none) {
                            return Val::Series(None);
                        }
                        let present: Vec<f64> = xs.iter().flatten().copied().collect();
                        let n = xs.len() as f64;
                        Val::Series(match func {
                            Func::Max => present.iter().copied().reduce(f64::max),
                            Func::Min => present.iter().copied().reduce(f64::min),
                            Func::Sum => Some(present.iter().sum()),
                            // Missing values count as 0 in an AVG of an array.
                            Func::Avg => Some(present.iter().sum::<f64>() / n),
                            _ => {
                                let mean = present.iter().sum::<f64>() / n;
                                Some((xs.iter().map(|x| (x.unwrap_or(0.0) - mean).powi(2)).sum::<f64>() / n).sqrt())
                            }
                        })
                    }
                    Func::MetricCount => match &vals[0] {
                        Val::Array(xs) => Val::Scalar(Some(xs.len() as f64)),
                        _ => Val::Scalar(None),
                    },
                    Func::Period => Val::Scalar(Some(f64::from(self.metric.period))),
                    Func::Diff | Func::Rate => {
                        let now = single(&vals[0]);
                        let previous = std::mem::replace(&mut history[*slot], now);
                        let diff = match (now, previous) {
                            (Some(n), Some(p)) => Some(n - p),
                            _ => None,
                        };
                        Val::Series(if *func == Func::Rate {
                            diff.map(|d| d / f64::from(self.metric.period))
                        } else {
                            diff
                        })
                    }
                }
            }
        }
    }
}

fn single(v: &Val) -> Option<f64> {
    match v {
        Val::Scalar(x) | Val::Series(x) => *x,
        Val::Array(_) => None,
    }
}

fn map(v: Val, f: impl Fn(f64) -> Option<f64>) -> Val {
    match v {
        Val::Scalar(x) => Val::Scalar(x.and_then(&f)),
        Val::Series(x) => Val::Series(x.and_then(&f)),
        Val::Array(xs) => Val::Array(xs.into_iter().map(|x| x.and_then(&f)).collect()),
    }
}

/// The backlog per task AWS recommends for a queue-driven ECS service: visible messages over the
/// service's running tasks ("Create a target tracking scaling policy for Application Auto
/// Scaling using metric math"). Dimensions are placeholders until `export` names the queue and
/// the service.
pub fn backlog_per_task(queue: &str, cluster: &str, service: &str) -> CustomizedMetricDoc {
    let stat = |namespace: &str, name: &str, dims: Vec<DimensionDoc>, stat: &str| crate::document::MetricStatDoc {
        metric: MetricDoc { namespace: Some(namespace.into()), metric_name: Some(name.into()), dimensions: dims },
        stat: stat.into(),
        ..Default::default()
    };
    let dim = |name: &str, value: &str| DimensionDoc { name: name.into(), value: value.into() };
    CustomizedMetricDoc {
        metrics: vec![
            MetricDataQueryDoc {
                id: "m1".into(),
                label: Some("Visible messages".into()),
                return_data: Some(false),
                metric_stat: Some(stat(
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    vec![dim("QueueName", queue)],
                    "Sum",
                )),
                ..Default::default()
            },
            MetricDataQueryDoc {
                id: "m2".into(),
                label: Some("Running tasks".into()),
                return_data: Some(false),
                metric_stat: Some(stat(
                    CONTAINER_INSIGHTS,
                    "RunningTaskCount",
                    vec![dim("ClusterName", cluster), dim("ServiceName", service)],
                    "Average",
                )),
                ..Default::default()
            },
            MetricDataQueryDoc {
                id: "e1".into(),
                label: Some("Backlog per task".into()),
                expression: Some("m1 / m2".into()),
                return_data: Some(true),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(id: &str, namespace: &str, name: &str, stat: &str) -> MetricDataQueryDoc {
        MetricDataQueryDoc {
            id: id.into(),
            return_data: Some(false),
            metric_stat: Some(crate::document::MetricStatDoc {
                metric: MetricDoc {
                    namespace: Some(namespace.into()),
                    metric_name: Some(name.into()),
                    dimensions: vec![],
                },
                stat: stat.into(),
                period: Some(60),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn expr(id: &str, text: &str) -> MetricDataQueryDoc {
        MetricDataQueryDoc {
            id: id.into(),
            expression: Some(text.into()),
            return_data: Some(true),
            ..Default::default()
        }
    }

    fn metric(text: &str) -> Result<Metric, String> {
        Metric::math(
            &[
                query("m1", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"),
                query("m2", "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "Maximum"),
                query("m3", CONTAINER_INSIGHTS, "RunningTaskCount", "Average"),
                expr("e1", text),
            ],
            None,
        )
    }

    fn value(text: &str, visible: f64, in_flight: f64, running: f64) -> Option<f64> {
        let m = metric(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        m.steady(&|q| match q {
            Quantity::Visible => Some(visible),
            Quantity::NotVisible => Some(in_flight),
            Quantity::RunningTasks => Some(running),
            _ => None,
        })
    }

    #[test]
    fn arithmetic_precedence_constants_and_functions() {
        assert_eq!(value("m1 + m2 * 2", 10.0, 3.0, 2.0), Some(16.0));
        assert_eq!(value("(m1 + m2) * 2", 10.0, 3.0, 2.0), Some(26.0));
        assert_eq!(value("m1 / m3", 10.0, 0.0, 4.0), Some(2.5));
        assert_eq!(value("-m1 + 2 ^ 3", 10.0, 0.0, 1.0), Some(-2.0));
        assert_eq!(value("m1 - m2 - 1", 10.0, 3.0, 1.0), Some(6.0), "left-associative");
        assert_eq!(value("2 ^ 3 ^ 2 + m1 * 0", 0.0, 0.0, 1.0), Some(512.0), "^ is right-associative");
        assert_eq!(value("CEIL(m1 / m3)", 10.0, 0.0, 4.0), Some(3.0));
        assert_eq!(value("FLOOR(m1 / m3)", 10.0, 0.0, 4.0), Some(2.0));
        assert_eq!(value("ABS(m2 - m1)", 10.0, 3.0, 1.0), Some(7.0));
        assert_eq!(value("LOG10(m1)", 100.0, 0.0, 1.0), Some(2.0));
        assert_eq!(value("MAX([m1, m2, 4])", 1.0, 3.0, 1.0), Some(4.0));
        assert_eq!(value("SUM(METRICS())", 1.0, 3.0, 2.0), Some(6.0));
        assert_eq!(value("AVG([m1, m2])", 1.0, 3.0, 2.0), Some(2.0));
        assert_eq!(value("m1 / METRIC_COUNT(METRICS())", 6.0, 3.0, 2.0), Some(2.0));
        assert_eq!(value("m1 * 60 / PERIOD(m1)", 6.0, 0.0, 1.0), Some(6.0));
        assert_eq!(value("IF(m1 >= 1 AND m3 == 0, 1, m1 / m3)", 5.0, 0.0, 0.0), Some(1.0));
        assert_eq!(value("IF(m1 >= 1 && m3 == 0, 1, m1 / m3)", 5.0, 0.0, 2.0), Some(2.5));
        assert_eq!(value("IF(NOT (m1 > 0) || m2 > 0, 7, 8) + m1 * 0", 5.0, 0.0, 2.0), Some(8.0));
        assert_eq!(value("DIFF(m1)", 5.0, 0.0, 2.0), Some(0.0), "a steady state does not change");
    }

    #[test]
    fn division_by_zero_drops_the_datapoint_and_fill_replaces_it() {
        assert_eq!(value("m1 / m3", 10.0, 0.0, 0.0), None);
        assert_eq!(value("FILL(m1 / m3, 0)", 10.0, 0.0, 0.0), Some(0.0));
        assert_eq!(value("IF(m1 > 0, m1)", 0.0, 0.0, 1.0), None, "IF without a false value drops the point");
    }

    #[test]
    fn what_is_not_simulated_is_refused_by_name() {
        for (text, message) in [
            ("MAX(m1)", "MAX of one series is a single number"),
            ("RUNNING_SUM(m1)", "function RUNNING_SUM is not simulated"),
            ("SEARCH('x', 'Average', 60)", "not part of metric math"),
            ("ANOMALY_DETECTION_BAND(m1)", "function ANOMALY_DETECTION_BAND is not simulated"),
            ("m1 + m9", "`m9` is not the Id of a query"),
            ("3 + 4", "the value a policy watches must be a single time series"),
            ("METRICS()", "an array of time series"),
            ("m1 +", "ends too early"),
            ("sqrt(m1)", "not a metric math function"),
        ] {
            let err = metric(text).unwrap_err();
            assert!(err.contains(message), "{text}: {err}");
        }
    }

    #[test]
    fn statistics_run_over_one_minute_samples_of_the_period() {
        let mut q = query("m1", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Sum");
        q.metric_stat.as_mut().unwrap().period = Some(180);
        let m = Metric::math(&[q, expr("e1", "m1 / 3")], None).unwrap();
        let mut state = m.state();
        let mut points = Vec::new();
        for v in [10.0, 20.0, 30.0, 5.0, 5.0, 5.0, 0.0] {
            if let Some(p) = state.sample(&m, &|q| (*q == Quantity::Visible).then_some(v)) {
                points.push(p);
            }
        }
        assert_eq!(points, vec![Some(20.0), Some(5.0)], "the Sum of three minutes, over 3");
    }

    #[test]
    fn cpu_and_custom_metrics_are_unknown_until_bound() {
        let mut m = Metric::math(
            &[
                query("cpu", "AWS/ECS", "CPUUtilization", "Average"),
                query("m1", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Sum"),
                expr("e1", "cpu + m1"),
            ],
            None,
        )
        .unwrap();
        let unknown = m.unknown();
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].metric.to_string(), "AWS/ECS CPUUtilization");
        assert_eq!(m.bind("cpu_pct", &|_, metric| metric.name == "CPUUtilization"), 1);
        assert!(m.unknown().is_empty());
        let v = m.steady(&|q| match q {
            Quantity::Column(c) if c == "cpu_pct" => Some(50.0),
            Quantity::Visible => Some(2.0),
            _ => None,
        });
        assert_eq!(v, Some(52.0));
    }

    #[test]
    fn exactly_one_query_returns_data() {
        let mut both = expr("e2", "m1 * 2");
        both.return_data = None;
        let err = Metric::math(
            &[query("m1", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Sum"), expr("e1", "m1"), both],
            None,
        )
        .unwrap_err();
        assert!(err.contains("2 queries return data"), "{err}");
    }
}
