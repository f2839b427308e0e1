//! Replaying an arrival trace through a queue, a pool of workers and the policy engine.
//!
//! The model, in 1-second ticks: messages arrive as the trace says and wait in FIFO order; each
//! ready worker takes the oldest message and works on it for `service_time` seconds (a worker
//! finishes several short messages in one tick); a new worker is ready `startup_delay` seconds
//! after the engine asks for it; a worker scaled in finishes its message first (the harness's
//! drain). Every 10 seconds the engine observes the queue (visible = waiting, in flight = being
//! worked on, the oldest waiting message's age) and its decision is applied at once. Workers
//! cost from the moment they are asked for until they exit (task-hours).

use std::collections::VecDeque;

use serde::Serialize;

use crate::engine::{Decision, Observation, Scaler};
use crate::error::ScaleError;
use crate::policy::{Capacity, ScalingConfig};

/// Seconds between the engine's observations.
pub const OBSERVE_EVERY: u64 = 10;
/// The simulation goes on after the trace until the queue is empty, at most this long.
pub const DRAIN_LIMIT: u64 = 6 * 3600;

/// Messages arriving over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trace {
    /// `(second, messages)`, sorted by second.
    pub arrivals: Vec<(u64, u64)>,
}

impl Trace {
    /// Parses CSV lines `seconds,messages` (a header line and `#` comments are skipped).
    pub fn parse_csv(text: &str) -> Result<Trace, ScaleError> {
        let mut arrivals = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            let header = arrivals.is_empty() && line.starts_with(|c: char| c.is_alphabetic());
            if line.is_empty() || line.starts_with('#') || header {
                continue;
            }
            let bad = |message: String| ScaleError::Trace { line: i + 1, message };
            let (s, m) = line.split_once(',').ok_or_else(|| bad(format!("`{line}` is not `seconds,messages`")))?;
            let s: f64 = s.trim().parse().map_err(|_| bad(format!("seconds `{}` is not a number", s.trim())))?;
            let m: f64 = m.trim().parse().map_err(|_| bad(format!("messages `{}` is not a number", m.trim())))?;
            if !(s >= 0.0 && s.is_finite() && m >= 0.0 && m.is_finite()) {
                return Err(bad("seconds and messages must be 0 or more".into()));
            }
            arrivals.push((s as u64, m.round() as u64));
        }
        if arrivals.is_empty() {
            return Err(ScaleError::Trace { line: 0, message: "no `seconds,messages` line".into() });
        }
        arrivals.sort_by_key(|a| a.0);
        Ok(Trace { arrivals })
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
    /// Workers ready at the minute's end.
    pub ready: u32,
    /// Messages waiting or in flight at the minute's end.
    pub backlog: u64,
    /// The oldest waiting message's age at its worst in the minute (seconds).
    pub oldest_age: f64,
    /// Messages that arrived.
    pub arrived: u64,
    /// Messages that were finished.
    pub finished: u64,
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
    /// The longest a message waited (seconds).
    pub worst_age: f64,
    /// Messages that waited longer than the SLO.
    pub slo_violations: u64,
    /// Messages in the trace.
    pub messages: u64,
    /// Messages finished (all of them, unless the drain limit ran out).
    pub finished: u64,
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
            peak_capacity: capacity,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Worker {
    ready_at: f64,
    busy: f64,
    draining: bool,
}

/// Replays `trace` through `config`'s policies (bounds from the file unless `bounds`).
pub fn simulate(config: &ScalingConfig, bounds: Option<Capacity>, trace: &Trace, options: &SimOptions) -> SimResult {
    let mut scaler = Scaler::new(config, bounds);
    let bounds = scaler.bounds();
    let initial = options.initial_capacity.unwrap_or(bounds.min).clamp(bounds.min, bounds.max);
    let mut workers: Vec<Worker> = (0..initial).map(|_| Worker { ready_at: 0.0, busy: 0.0, draining: false }).collect();
    let mut queue: VecDeque<(u64, u64)> = VecDeque::new();
    let mut next_arrival = 0;
    let mut result = SimResult::start(trace, initial);
    let mut minute =
        Minute { minute: 0, capacity: initial, ready: 0, backlog: 0, oldest_age: 0.0, arrived: 0, finished: 0 };
    let service = options.service_time.max(1e-6);
    let mut t: u64 = 0;
    loop {
        let now = t as f64;
        while next_arrival < trace.arrivals.len() && trace.arrivals[next_arrival].0 <= t {
            let (at, n) = trace.arrivals[next_arrival];
            if n > 0 {
                queue.push_back((at, n));
                minute.arrived += n;
            }
            next_arrival += 1;
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
                if options.slo.is_some_and(|slo| wait > slo) {
                    result.slo_violations += 1;
                }
                front.1 -= 1;
                if front.1 == 0 {
                    queue.pop_front();
                }
                w.busy = service;
            }
        }
        workers.retain(|w| !(w.draining && w.busy == 0.0));
        result.task_hours += workers.len() as f64 / 3600.0;
        let oldest = queue.front().map_or(0.0, |f| now + 1.0 - f.0 as f64);
        minute.oldest_age = minute.oldest_age.max(oldest);
        let active = workers.iter().filter(|w| !w.draining).count() as u32;
        if t.is_multiple_of(OBSERVE_EVERY) {
            let in_flight = workers.iter().filter(|w| w.busy > 0.0).count() as f64;
            let obs = Observation {
                visible: queue.iter().map(|q| q.1 as f64).sum(),
                in_flight,
                delayed: 0.0,
                oldest_age: oldest,
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
        t += 1;
        if t.is_multiple_of(60) {
            minute.capacity = workers.iter().filter(|w| !w.draining).count() as u32;
            minute.ready = workers.iter().filter(|w| !w.draining && w.ready_at <= now + 1.0).count() as u32;
            minute.backlog =
                queue.iter().map(|q| q.1).sum::<u64>() + workers.iter().filter(|w| w.busy > 0.0).count() as u64;
            result.minutes.push(minute);
            minute =
                Minute { minute: t / 60, capacity: 0, ready: 0, backlog: 0, oldest_age: 0.0, arrived: 0, finished: 0 };
            let empty =
                queue.is_empty() && workers.iter().all(|w| w.busy == 0.0) && next_arrival >= trace.arrivals.len();
            if (empty && t > trace.end()) || t > trace.end() + DRAIN_LIMIT {
                break;
            }
        }
    }
    result
}

/// Sets the number of active workers: new ones are ready at `ready_at`; scale-in cancels
/// workers still starting first (newest first), then stops idle ones, then asks busy ones to
/// drain (they finish their message, then exit).
fn apply(workers: &mut Vec<Worker>, target: u32, ready_at: f64, now: f64) {
    let active = workers.iter().filter(|w| !w.draining).count() as u32;
    if target > active {
        workers.extend((active..target).map(|_| Worker { ready_at, busy: 0.0, draining: false }));
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
            oldest_age: queue.front().map_or(0.0, |f| end as f64 - f.0 as f64),
            arrived,
            finished: finished.round() as u64,
        });
        m += 1;
        if next >= trace.arrivals.len() && backlog <= 1e-9 {
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
    fn the_oracle_pays_for_the_work_and_meets_the_slo() {
        // 600 messages a minute for 10 minutes, 1 s each: 10 workers keep up exactly.
        let trace = Trace { arrivals: (0..600).map(|s| (s, 10)).collect() };
        let o = oracle(&trace, 1.0, 120.0);
        assert_eq!(o.finished, 6000);
        assert!(o.worst_age <= 120.0 + 1e-6, "{}", o.worst_age);
        // The work is 6000 task-seconds = 1.67 task-hours; the oracle pays little more.
        assert!(o.task_hours >= 6000.0 / 3600.0 - 1e-9 && o.task_hours < 1.9, "{}", o.task_hours);
    }
}
