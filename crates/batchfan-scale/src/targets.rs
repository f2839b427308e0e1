//! The controller's real ends: an SQS queue as the metric source, and the capacity targets
//! `local` (the `batchfan workers` pool), `batch` (worker jobs on AWS Batch) and `print`.

use std::time::Duration;

use async_trait::async_trait;
use batchfan::Client;
use batchfan::batch::WorkerJobs;
use batchfan::pool::{Pool, PoolEvent};

use crate::controller::{CapacityTarget, MetricSource};
use crate::engine::Observation;
use crate::error::ScaleError;

fn io(e: batchfan::Error) -> ScaleError {
    if e.is_bad_input() {
        ScaleError::Option { field: "queue or target".into(), value: String::new(), allowed: e.to_string() }
    } else {
        ScaleError::Io(Box::new(e))
    }
}

/// An SQS queue's attributes (visible, in flight, delayed), read with GetQueueAttributes.
#[derive(Debug, Clone)]
pub struct SqsSource {
    client: Client,
    url: String,
}

impl SqsSource {
    /// A source over `url`; the queue must exist.
    pub async fn new(client: Client, url: &str) -> Result<SqsSource, ScaleError> {
        client.queue(url).describe().await.map_err(io)?;
        Ok(SqsSource { client, url: url.to_string() })
    }
}

#[async_trait]
impl MetricSource for SqsSource {
    async fn observe(&mut self) -> Result<Observation, ScaleError> {
        let counts = self.client.queue(&self.url).counts().await.map_err(io)?;
        Ok(Observation {
            visible: counts.visible as f64,
            in_flight: counts.in_flight as f64,
            delayed: counts.delayed as f64,
            ..Default::default()
        })
    }
}

/// The local worker pool: scale-in sends SIGTERM to the newest workers, which drain and count
/// as capacity until they exit.
#[derive(Debug)]
pub struct PoolTarget {
    pool: Pool,
    on_event: fn(&PoolEvent),
}

impl PoolTarget {
    /// A target over `pool`; `on_event` sees every start, stop and exit.
    pub fn new(pool: Pool, on_event: fn(&PoolEvent)) -> PoolTarget {
        PoolTarget { pool, on_event }
    }

    /// Stops every worker through its drain path (see [`Pool::stop`]).
    pub async fn stop(&mut self, deadline: Duration) -> Result<usize, ScaleError> {
        let killed = self.pool.stop(deadline).await.map_err(io)?;
        self.pool.take_events().iter().for_each(self.on_event);
        Ok(killed)
    }
}

#[async_trait]
impl CapacityTarget for PoolTarget {
    async fn capacity(&mut self) -> Result<u32, ScaleError> {
        self.pool.supervise().map_err(io)?;
        self.pool.take_events().iter().for_each(self.on_event);
        Ok(self.pool.capacity() as u32)
    }

    async fn set_capacity(&mut self, n: u32) -> Result<(), ScaleError> {
        let (capacity, active) = (self.pool.capacity(), self.pool.active());
        let n = n as usize;
        // Draining workers count until they exit: only the difference moves.
        let active_target = if n >= capacity { active + (n - capacity) } else { active.saturating_sub(capacity - n) };
        self.pool.scale_to(active_target).map_err(io)?;
        self.pool.take_events().iter().for_each(self.on_event);
        Ok(())
    }
}

/// What the `batch` target did, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchEvent {
    /// Worker jobs were submitted (one array job, or a plain job for one).
    Submitted {
        /// How many workers.
        count: u32,
        /// The job id.
        job_id: String,
    },
    /// Worker jobs were terminated (they get SIGTERM and drain).
    Terminated {
        /// Their job ids.
        job_ids: Vec<String>,
    },
}

/// Queue workers as AWS Batch jobs (see [`WorkerJobs`]).
#[derive(Debug, Clone)]
pub struct BatchTarget {
    client: Client,
    jobs: WorkerJobs,
    on_event: fn(&BatchEvent),
    running: u32,
}

impl BatchTarget {
    /// A target submitting `jobs` through `client`; `on_event` sees every submission and
    /// termination.
    pub fn new(client: Client, jobs: WorkerJobs, on_event: fn(&BatchEvent)) -> BatchTarget {
        BatchTarget { client, jobs, on_event, running: 0 }
    }
}

#[async_trait]
impl CapacityTarget for BatchTarget {
    async fn capacity(&mut self) -> Result<u32, ScaleError> {
        let live = self.client.live_workers(&self.jobs).await.map_err(io)?;
        self.running = live.iter().filter(|w| w.running).count() as u32;
        Ok(live.len() as u32)
    }

    /// The RUNNING jobs seen by the last [`CapacityTarget::capacity`].
    async fn running(&mut self) -> Result<u32, ScaleError> {
        Ok(self.running)
    }

    async fn set_capacity(&mut self, n: u32) -> Result<(), ScaleError> {
        let live: Vec<String> =
            self.client.live_workers(&self.jobs).await.map_err(io)?.into_iter().map(|w| w.job_id).collect();
        let have = live.len() as u32;
        if n > have {
            let job_id = self.client.add_workers(&self.jobs, n - have).await.map_err(io)?;
            (self.on_event)(&BatchEvent::Submitted { count: n - have, job_id });
        } else if n < have {
            let stop = &live[..(have - n) as usize];
            self.client.stop_workers(&self.jobs, stop).await.map_err(io)?;
            (self.on_event)(&BatchEvent::Terminated { job_ids: stop.to_vec() });
        }
        Ok(())
    }
}

/// A dry run: remembers the capacity it was asked for and changes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrintTarget {
    /// The capacity last asked for.
    pub capacity: u32,
}

#[async_trait]
impl CapacityTarget for PrintTarget {
    async fn capacity(&mut self) -> Result<u32, ScaleError> {
        Ok(self.capacity)
    }

    async fn set_capacity(&mut self, n: u32) -> Result<(), ScaleError> {
        self.capacity = n;
        Ok(())
    }
}
