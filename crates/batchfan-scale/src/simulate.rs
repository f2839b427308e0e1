//! Replaying an arrival trace through a queue, a pool of workers and the policy engine.
//!
//! The model, in 1-second ticks: messages arrive as the trace says and wait in FIFO order; each
//! ready worker takes the oldest message and works on it for `service_time` seconds (a worker
//! finishes several short messages in one tick); a new worker is ready `startup_delay` seconds
//! after the engine asks for it; a worker scaled in finishes its message first (the harness's
//! drain). Every 10 seconds the engine observes the queue and the workers as SQS and Container
//! Insights would report them (visible = waiting, not visible = being worked on, the age of the
//! oldest message not yet deleted, messages sent, received and deleted, workers running and
//! starting, and any trace columns) and its decision is applied at once. Workers cost from the
//! moment they are asked for until they exit (task-hours).
//!
//! Every message is accounted for: it finished, is being worked on, or is still waiting when the
//! simulation ends (the queue empty after the trace, or [`DRAIN_LIMIT`] later), with its age then.

use std::collections::VecDeque;

use serde::Serialize;

use crate::engine::{Decision, Observation, Scaler};
use crate::error::ScaleError;
use crate::policy::{Capacity, ScalingConfig};

/// Seconds between the engine's observations.
pub const OBSERVE_EVERY: u64 = 10;
/// The simulation goes on after the trace until the queue is empty, at most this long.
pub const DRAIN_LIMIT: u64 = 6 * 3600;

/// Messages arriving over time, and the values of any extra columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trace {
    /// `(second, messages)`, sorted by second.
    pub arrivals: Vec<(u64, u64)>,
    /// Names of the extra columns (from the header line).
    pub columns: Vec<String>,
    /// `(second, value of each column)`, sorted by second; an empty cell keeps the last value.
    pub values: Vec<(u64, Vec<Option<f64>>)>,
}

impl Trace {
    /// Parses CSV lines `seconds,messages[,COLUMN...]` (`#` comments are skipped; a first line
    /// starting with a letter is the header, which names extra columns).
    pub fn parse_csv(text: &str) -> Result<Trace, ScaleError> {
        let mut rows: Vec<(u64, u64, Vec<Option<f64>>)> = Vec::new();
        let mut columns: Option<Vec<String>> = None;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: String| ScaleError::Trace { line: i + 1, message };
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if rows.is_empty() && columns.is_none() && line.starts_with(|c: char| c.is_alphabetic()) {
                if cells.len() < 2 {
                    return Err(bad(format!("header `{line}`: expected `seconds,messages[,COLUMN...]`")));
                }
                let extra: Vec<String> = cells[2..].iter().map(|c| c.to_string()).collect();
                if let Some(empty) = extra.iter().position(String::is_empty) {
                    return Err(bad(format!("header column {} has no name", empty + 3)));
                }
                columns = Some(extra);
                continue;
            }
            let width = columns.as_ref().map_or(0, Vec::len);
            if cells.len() < 2 {
                return Err(bad(format!("`{line}` is not `seconds,messages`")));
            }
            if cells.len() > 2 + width {
                return Err(bad(if width == 0 {
                    format!(
                        "`{line}` has more than `seconds,messages`: name extra columns in a header line (seconds,messages,NAME)"
                    )
                } else {
                    format!("`{line}` has {} cells; the header names {}", cells.len(), 2 + width)
                }));
            }
            let number = |cell: &str, what: &str| -> Result<f64, ScaleError> {
                let v: f64 = cell.parse().map_err(|_| bad(format!("{what} `{cell}` is not a number")))?;
                if v.is_finite() { Ok(v) } else { Err(bad(format!("{what} `{cell}` is not a number"))) }
            };
            let s = number(cells[0], "seconds")?;
            let m = number(cells[1], "messages")?;
            if s < 0.0 || m < 0.0 {
                return Err(bad("seconds and messages must be 0 or more".into()));
            }
            let mut values = Vec::new();
            for (k, cell) in cells[2..].iter().enumerate() {
                let name = columns.as_ref().map_or("", |c| c[k].as_str());
                values.push(if cell.is_empty() { None } else { Some(number(cell, name)?) });
            }
            values.resize(width, None);
            rows.push((s as u64, m.round() as u64, values));
        }
        if rows.is_empty() {
            return Err(ScaleError::Trace { line: 0, message: "no `seconds,messages` line".into() });
        }
        rows.sort_by_key(|r| r.0);
        let columns = columns.unwrap_or_default();
        let values = if columns.is_empty() { Vec::new() } else { rows.iter().map(|r| (r.0, r.2.clone())).collect() };
        Ok(Trace { arrivals: rows.iter().map(|r| (r.0, r.1)).collect(), columns, values })
    }

    /// All messages.
    pub fn messages(&self) -> u64 {
        self.arrivals.iter().map(|a| a.1).sum()
    }

    /// The last arrival's second.
    pub fn end(&self) -> u64 {
        self.arrivals.last().map_or(0, |a| a.0)
    }
}

/// How the workers behave.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SimOptions {
    /// Seconds of work per message.
    pub service_time: f64,
    /// Seconds from asking for a worker to its first message.
    pub startup_delay: f64,
    /// Workers at the start (default: the lower bound).
    pub initial_capacity: Option<u32>,
    /// The latency objective: a message waiting longer than this is a violation.
    pub slo: Option<f64>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions { service_time: 1.0, startup_delay: 60.0, initial_capacity: None, slo: None }
    }
}

/// One minute of a simulation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Minute {
    /// Minute number from 0.
    pub minute: u64,
    /// Workers asked for at the minute's end.
    pub capacity: u32,
    /// Workers ready (started and not draining) at the fewest in the minute: below `capacity`
    /// while asked-for workers are still starting.
    pub ready: u32,
    /// Messages waiting or in flight at the minute's end.
    pub backlog: u64,
    /// Messages waiting at the minute's end.
    pub waiting: u64,
    /// The oldest waiting message's age at its worst in the minute (seconds).
    pub oldest_age: f64,
    /// Messages waiting at the minute's end that have waited longer than the SLO.
    pub over_slo: u64,
    /// Messages that arrived.
    pub arrived: u64,
    /// Messages that were finished.
    pub finished: u64,
}

impl Minute {
    fn new(minute: u64) -> Minute {
        Minute {
            minute,
            capacity: 0,
            ready: 0,
            backlog: 0,
            waiting: 0,
            oldest_age: 0.0,
            over_slo: 0,
            arrived: 0,
            finished: 0,
        }
    }
}

/// A simulation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimResult {
    /// Per minute.
    pub minutes: Vec<Minute>,
    /// The decisions that changed capacity.
    pub changes: Vec<Decision>,
    /// Worker-hours paid for.
    pub task_hours: f64,
    /// The longest any message waited to start, messages still waiting at the end included
    /// (their age then): the oldest waiting age seen anywhere.
    pub worst_age: f64,
    /// Messages that waited longer than the SLO: started late, or still waiting at the end
    /// older than it.
    pub slo_violations: u64,
    /// Messages in the trace.
    pub messages: u64,
    /// Messages finished.
    pub finished: u64,
    /// Messages being worked on when the simulation ended.
    pub in_flight: u64,
    /// Messages still waiting when the simulation ended.
    pub waiting: u64,
    /// The age of the oldest message still waiting when the simulation ended (0: none).
    pub oldest_waiting_age: f64,
    /// When the simulation ended (seconds): the queue empty after the trace, or the trace's end
    /// plus [`DRAIN_LIMIT`].
    pub end: u64,
    /// The highest capacity.
    pub peak_capacity: u32,
}

impl SimResult {
    /// Nothing done yet over `trace`, with `capacity` workers.
    fn start(trace: &Trace, capacity: u32) -> SimResult {
        SimResult {
            minutes: Vec::new(),
            changes: Vec::new(),
            task_hours: 0.0,
            worst_age: 0.0,
            slo_violations: 0,
            messages: trace.messages(),
            finished: 0,
            in_flight: 0,
            waiting: 0,
            oldest_waiting_age: 0.0,
            end: 0,
            peak_capacity: capacity,
        }
    }

    /// Every message finished and none waited longer than the SLO.
    pub fn kept_slo(&self) -> bool {
        self.slo_violations == 0 && self.finished == self.messages
    }
}

#[derive(Debug, Clone, Copy)]
struct Worker {
    ready_at: f64,
    busy: f64,
    draining: bool,
    /// The arrival second of the message it works on.
    message: Option<u64>,
}

/// Replays `trace` through `config`'s policies (bounds from the file unless `bounds`). Metrics
/// bound to trace columns ([`ScalingConfig::bind`]) read them; check
/// [`ScalingConfig::require`] first: a metric nothing feeds is a missing datapoint.
pub fn simulate(config: &ScalingConfig, bounds: Option<Capacity>, trace: &Trace, options: &SimOptions) -> SimResult {
    let mut scaler = Scaler::new(config, bounds);
    let bounds = scaler.bounds();
    let initial = options.initial_capacity.unwrap_or(bounds.min).clamp(bounds.min, bounds.max);
    let mut workers: Vec<Worker> =
        (0..initial).map(|_| Worker { ready_at: 0.0, busy: 0.0, draining: false, message: None }).collect();
    let mut queue: VecDeque<(u64, u64)> = VecDeque::new();
    let mut next_arrival = 0;
    let mut next_value = 0;
    let mut column_values: Vec<Option<f64>> = vec![None; trace.columns.len()];
    let (mut sent, mut received) = (0u64, 0u64);
    let mut result = SimResult::start(trace, initial);
    let mut minute = Minute::new(0);
    let mut fewest_ready = u32::MAX;
    let service = options.service_time.max(1e-6);
    let slo = options.slo;
    let mut t: u64 = 0;
    loop {
        let now = t as f64;
        while next_arrival < trace.arrivals.len() && trace.arrivals[next_arrival].0 <= t {
            let (at, n) = trace.arrivals[next_arrival];
            if n > 0 {
                queue.push_back((at, n));
                minute.arrived += n;
                sent += n;
            }
            next_arrival += 1;
        }
        while next_value < trace.values.len() && trace.values[next_value].0 <= t {
            for (slot, v) in column_values.iter_mut().zip(&trace.values[next_value].1) {
                if v.is_some() {
                    *slot = *v;
                }
            }
            next_value += 1;
        }
        // Work for one second.
        for w in workers.iter_mut() {
            if w.ready_at > now {
                continue;
            }
            let mut budget = 1.0;
            while budget > 1e-12 {
                if w.busy > 0.0 {
                    let used = w.busy.min(budget);
                    w.busy -= used;
                    budget -= used;
                    if w.busy <= 1e-12 {
                        w.busy = 0.0;
                        w.message = None;
                        result.finished += 1;
                        minute.finished += 1;
                    }
                    continue;
                }
                if w.draining {
                    break;
                }
                let Some(front) = queue.front_mut() else { break };
                let wait = now + (1.0 - budget) - front.0 as f64;
                result.worst_age = result.worst_age.max(wait);
                if slo.is_some_and(|slo| wait > slo) {
                    result.slo_violations += 1;
                }
                w.message = Some(front.0);
                front.1 -= 1;
                if front.1 == 0 {
                    queue.pop_front();
                }
                received += 1;
                w.busy = service;
            }
        }
        workers.retain(|w| !(w.draining && w.busy == 0.0));
        result.task_hours += workers.len() as f64 / 3600.0;
        let oldest_waiting = queue.front().map_or(0.0, |f| now + 1.0 - f.0 as f64);
        result.worst_age = result.worst_age.max(oldest_waiting);
        minute.oldest_age = minute.oldest_age.max(oldest_waiting);
        let active = workers.iter().filter(|w| !w.draining).count() as u32;
        if t.is_multiple_of(OBSERVE_EVERY) {
            let in_flight = workers.iter().filter(|w| w.busy > 0.0).count() as f64;
            let oldest_message = workers.iter().filter_map(|w| w.message).chain(queue.front().map(|f| f.0)).min();
            let obs = Observation {
                visible: queue.iter().map(|q| q.1 as f64).sum(),
                in_flight,
                delayed: 0.0,
                oldest_age: Some(oldest_message.map_or(0.0, |a| now + 1.0 - a as f64)),
                sent: Some(sent as f64),
                received: Some(received as f64),
                deleted: Some(result.finished as f64),
                running: Some(workers.iter().filter(|w| w.ready_at <= now).count() as f64),
                pending: Some(workers.iter().filter(|w| !w.draining && w.ready_at > now).count() as f64),
                columns: trace
                    .columns
                    .iter()
                    .zip(&column_values)
                    .filter_map(|(name, v)| v.map(|v| (name.clone(), v)))
                    .collect(),
            };
            if let Some(decision) = scaler.observe(now, &obs, active) {
                let target = decision.new_capacity;
                if target != active {
                    apply(&mut workers, target, now + options.startup_delay, now);
                    result.peak_capacity = result.peak_capacity.max(target);
                    result.changes.push(decision);
                }
            }
        }
        let ready = workers.iter().filter(|w| !w.draining && w.ready_at <= now + 1.0).count() as u32;
        fewest_ready = fewest_ready.min(ready);
        t += 1;
        if t.is_multiple_of(60) {
            minute.capacity = workers.iter().filter(|w| !w.draining).count() as u32;
            minute.ready = fewest_ready;
            fewest_ready = u32::MAX;
            minute.waiting = queue.iter().map(|q| q.1).sum::<u64>();
            minute.backlog = minute.waiting + workers.iter().filter(|w| w.busy > 0.0).count() as u64;
            minute.over_slo =
                slo.map_or(0, |slo| queue.iter().filter(|q| t as f64 - q.0 as f64 > slo).map(|q| q.1).sum::<u64>());
            result.minutes.push(minute);
            minute = Minute::new(t / 60);
            let empty =
                queue.is_empty() && workers.iter().all(|w| w.busy == 0.0) && next_arrival >= trace.arrivals.len();
            if (empty && t > trace.end()) || t > trace.end() + DRAIN_LIMIT {
                break;
            }
        }
    }
    // Every message not finished is counted: waiting ones with their age now, as violations when
    // older than the SLO (in-flight ones were counted when they started).
    result.end = t;
    result.in_flight = workers.iter().filter(|w| w.busy > 0.0).count() as u64;
    result.waiting = queue.iter().map(|q| q.1).sum();
    result.oldest_waiting_age = queue.front().map_or(0.0, |f| t as f64 - f.0 as f64);
    result.worst_age = result.worst_age.max(result.oldest_waiting_age);
    if let Some(slo) = slo {
        result.slo_violations += queue.iter().filter(|q| t as f64 - q.0 as f64 > slo).map(|q| q.1).sum::<u64>();
    }
    result
}

/// Sets the number of active workers: new ones are ready at `ready_at`; scale-in cancels
/// workers still starting first (newest first), then stops idle ones, then asks busy ones to
/// drain (they finish their message, then exit).
fn apply(workers: &mut Vec<Worker>, target: u32, ready_at: f64, now: f64) {
    let active = workers.iter().filter(|w| !w.draining).count() as u32;
    if target > active {
        workers.extend((active..target).map(|_| Worker { ready_at, busy: 0.0, draining: false, message: None }));
        return;
    }
    let mut surplus = active - target;
    for starting in [true, false] {
        let mut i = workers.len();
        while surplus > 0 && i > 0 {
            i -= 1;
            let w = workers[i];
            if !w.draining && w.busy == 0.0 && (w.ready_at > now) == starting {
                workers.remove(i);
                surplus -= 1;
            }
        }
    }
    for w in workers.iter_mut().rev() {
        if surplus == 0 {
            break;
        }
        if !w.draining {
            w.draining = true;
            surplus -= 1;
        }
    }
}

/// A lower bound on the task-hours of any schedule that starts every message of `trace` within
/// `slo` seconds when a worker costs `startup` seconds before its first message: the work itself
/// (messages × `service_time`) plus the start-up of the fewest workers that must run at once.
/// For arrival times `a <= b`, the messages arriving in `[a, b]` all start within
/// `[a, b + slo]` and each keeps a worker busy for `service_time`, so at least
/// `N × service_time / (b + slo + service_time - a)` workers run then, each launched (and its
/// start-up paid) at some point. Returns the task-hours and that number of workers.
pub fn lower_bound(trace: &Trace, service_time: f64, slo: f64, startup: f64) -> (f64, u32) {
    let arrivals: Vec<(u64, u64)> = trace.arrivals.iter().copied().filter(|a| a.1 > 0).collect();
    let mut peak = 0u32;
    for (i, (a, _)) in arrivals.iter().enumerate() {
        let mut messages = 0u64;
        for (b, n) in &arrivals[i..] {
            messages += n;
            let window = (*b - *a) as f64 + slo + service_time;
            peak = peak.max((messages as f64 * service_time / window - 1e-9).ceil() as u32);
        }
    }
    let work = trace.messages() as f64 * service_time;
    ((work + f64::from(peak) * startup) / 3600.0, peak)
}

/// The oracle: capacity chosen per minute with the whole trace known in advance (workers
/// already warm when needed), as few as keep every message's wait within `slo`. Each minute it
/// takes the fewest workers that start every message whose deadline (arrival + slo) falls in
/// that minute, and uses them fully on the oldest messages (so later minutes need fewer). A
/// fluid model: a worker starts 60 / `service_time` messages a minute.
pub fn oracle(trace: &Trace, service_time: f64, slo: f64) -> SimResult {
    let per_worker_minute = 60.0 / service_time.max(1e-6);
    let mut queue: VecDeque<(u64, f64)> = VecDeque::new();
    let mut next = 0;
    let mut result = SimResult::start(trace, 0);
    let mut m = 0u64;
    loop {
        let (start, end) = (m * 60, (m + 1) * 60);
        let mut arrived = 0;
        while next < trace.arrivals.len() && trace.arrivals[next].0 < end {
            queue.push_back((trace.arrivals[next].0, trace.arrivals[next].1 as f64));
            arrived += trace.arrivals[next].1;
            next += 1;
        }
        // The fewest workers that start, within this minute, every message due (arrival + slo)
        // before the end of the next minute, each by its own deadline: by second d of the
        // minute, w workers have started w * (1 + d / service) messages. Looking a minute ahead
        // keeps every deadline at least a minute away, so no minute needs a spike.
        let mut due = 0.0;
        let mut workers = 0u32;
        for (at, n) in &queue {
            let deadline = *at as f64 + slo;
            if deadline >= (end + 60) as f64 {
                break;
            }
            due += n;
            let seconds = (deadline - start as f64).clamp(0.0, 59.0);
            let per_worker = 1.0 + (seconds / service_time.max(1e-6)).floor();
            workers = workers.max((due / per_worker - 1e-9).ceil() as u32);
        }
        let mut capacity = f64::from(workers) * per_worker_minute;
        let mut finished = 0.0;
        while capacity > 1e-9 {
            let Some(front) = queue.front_mut() else { break };
            let take = front.1.min(capacity);
            // The slice's last message starts when the workers have started all before it.
            let before = f64::from(workers) * per_worker_minute - capacity + take - 1.0;
            let last_start = start as f64 + (before.max(0.0) / f64::from(workers.max(1))).floor() * service_time;
            let wait = (last_start - front.0 as f64).max(0.0);
            result.worst_age = result.worst_age.max(wait);
            front.1 -= take;
            capacity -= take;
            finished += take;
            if front.1 <= 1e-9 {
                queue.pop_front();
            }
        }
        result.finished += finished.round() as u64;
        result.task_hours += f64::from(workers) / 60.0;
        result.peak_capacity = result.peak_capacity.max(workers);
        let backlog = queue.iter().map(|q| q.1).sum::<f64>();
        result.minutes.push(Minute {
            minute: m,
            capacity: workers,
            ready: workers,
            backlog: backlog.round() as u64,
            waiting: backlog.round() as u64,
            oldest_age: queue.front().map_or(0.0, |f| end as f64 - f.0 as f64),
            over_slo: 0,
            arrived,
            finished: finished.round() as u64,
        });
        m += 1;
        if next >= trace.arrivals.len() && backlog <= 1e-9 {
            result.end = m * 60;
            break;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_parse_and_bad_lines_are_named() {
        let t = Trace::parse_csv("seconds,messages\n# burst\n0,10\n60,5\n").unwrap();
        assert_eq!(t.arrivals, vec![(0, 10), (60, 5)]);
        assert_eq!(t.messages(), 15);
        let err = Trace::parse_csv("0,10\nten,5\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn the_lower_bound_pays_the_work_and_the_start_up_of_the_workers_a_burst_needs() {
        // 600 messages at once, 1 s each, within 300 s: 600 / 301 -> 2 workers at once.
        let (hours, workers) = lower_bound(&Trace { arrivals: vec![(0, 600)], ..Default::default() }, 1.0, 300.0, 60.0);
        assert_eq!(workers, 2);
        assert!((hours - (600.0 + 120.0) / 3600.0).abs() < 1e-9, "{hours}");
    }

    #[test]
    fn the_oracle_pays_for_the_work_and_meets_the_slo() {
        // 600 messages a minute for 10 minutes, 1 s each: 10 workers keep up exactly.
        let trace = Trace { arrivals: (0..600).map(|s| (s, 10)).collect(), ..Default::default() };
        let o = oracle(&trace, 1.0, 120.0);
        assert_eq!(o.finished, 6000);
        assert!(o.worst_age <= 120.0 + 1e-6, "{}", o.worst_age);
        // The work is 6000 task-seconds = 1.67 task-hours; the oracle pays little more.
        assert!(o.task_hours >= 6000.0 / 3600.0 - 1e-9 && o.task_hours < 1.9, "{}", o.task_hours);
    }
}
