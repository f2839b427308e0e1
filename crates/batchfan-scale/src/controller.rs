//! The controller: observe the queue each period, let the engine decide, apply the decision to
//! a capacity target. The loop is I/O-free itself: it works over two traits, so tests and the
//! simulator's engine are the same code the real controller runs.

use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::engine::{Decision, Observation, Scaler};
use crate::error::ScaleError;
use crate::metric::Quantity;

/// Whether `run` can observe `q`: what GetQueueAttributes returns (visible, in flight, delayed)
/// and the capacity target's counts (running, asked for, starting). The age of the oldest
/// message and the per-minute counters are CloudWatch metrics only.
pub fn observable(q: &Quantity) -> bool {
    matches!(
        q,
        Quantity::Visible
            | Quantity::NotVisible
            | Quantity::Delayed
            | Quantity::RunningTasks
            | Quantity::DesiredTasks
            | Quantity::PendingTasks
    )
}

/// Where observations come from (an SQS queue's attributes).
#[async_trait]
pub trait MetricSource: Send {
    /// One observation now.
    async fn observe(&mut self) -> Result<Observation, ScaleError>;
}

/// What the decisions change (a local pool, AWS Batch worker jobs, or nothing but a log).
#[async_trait]
pub trait CapacityTarget: Send {
    /// The capacity now, workers that are still draining included.
    async fn capacity(&mut self) -> Result<u32, ScaleError>;
    /// Workers running now (ECS's `RunningTaskCount`); by default all of the capacity.
    async fn running(&mut self) -> Result<u32, ScaleError> {
        self.capacity().await
    }
    /// Moves the capacity to `n`.
    async fn set_capacity(&mut self, n: u32) -> Result<(), ScaleError>;
}

/// Observes every `every`, decides, applies, and reports each decision (changed or not) to
/// `on_decision`, until `stop` completes. Returns how many times the capacity changed.
pub async fn run(
    scaler: &mut Scaler,
    source: &mut dyn MetricSource,
    target: &mut dyn CapacityTarget,
    every: Duration,
    stop: impl Future<Output = ()>,
    on_decision: &mut (dyn FnMut(&Observation, &Decision) + Send),
) -> Result<u64, ScaleError> {
    let started = Instant::now();
    let mut changes = 0;
    tokio::pin!(stop);
    loop {
        let mut observation = source.observe().await?;
        let capacity = target.capacity().await?;
        let running = target.running().await?.min(capacity);
        observation.running = Some(f64::from(running));
        observation.pending = Some(f64::from(capacity - running));
        if let Some(decision) = scaler.observe(started.elapsed().as_secs_f64(), &observation, capacity) {
            on_decision(&observation, &decision);
            if decision.new_capacity != capacity {
                target.set_capacity(decision.new_capacity).await?;
                changes += 1;
            }
        }
        tokio::select! {
            () = &mut stop => return Ok(changes),
            () = tokio::time::sleep(every) => {}
        }
    }
}
