//! A local pool of queue workers (`batchfan workers`): N processes serving one queue, the
//! embedded default of a queue-driven service and the capacity the scaling helper drives.
//!
//! A worker that ends without being asked to (a crash, a signal the pool did not send, exit 143
//! after someone else's SIGTERM) is restarted, with a growing delay when it ends soon after
//! starting. A worker that exits 0 (its idle exit) is not restarted here: whether the queue is
//! drained is for the caller to decide from the queue's counts (`batchfan workers` starts
//! workers again while messages remain). A worker that exits 2 (bad configuration: the queue is
//! gone, a bad setting) stops the pool with [`Error::WorkerConfig`]: every restart would end the
//! same way. Scaling in sends SIGTERM to the newest workers, which drain through their own
//! SIGTERM path; they count as capacity until they exit.
//!
//! Workers run in process groups of their own (a terminal's Ctrl-C reaches the pool, which
//! drains them) and die with the pool's process, however it dies. They spool into a folder of
//! the pool's, removed when the pool stops or is dropped.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::process::{Child, Command};

use crate::contract::env;
use crate::error::{Error, Result};

/// How a pool runs its workers.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// The worker program (on the harness, or any program that serves the queue).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The queue, given to each worker as `BATCHFAN_QUEUE_URL`.
    pub queue_url: String,
    /// Each worker's stdout and stderr go to `LOG_DIR/worker-NNN.log` (appended across restarts).
    pub log_dir: PathBuf,
}

/// A change in the pool, for displays and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum PoolEvent {
    /// A worker started.
    Started {
        /// Its slot number.
        slot: u64,
        /// Its process id.
        pid: u32,
    },
    /// A worker exited.
    Exited {
        /// Its slot number.
        slot: u64,
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
        /// Whether it will be restarted.
        restart: bool,
    },
    /// A worker was asked to stop (scale-in or pool stop).
    Stopping {
        /// Its slot number.
        slot: u64,
    },
}

struct Worker {
    slot: u64,
    child: Child,
    started: Instant,
    crashes: u32,
}

/// A crashed worker waiting for its restart.
struct Restart {
    slot: u64,
    at: Instant,
    crashes: u32,
}

/// The running pool.
pub struct Pool {
    options: PoolOptions,
    /// `BATCHFAN_SPOOL_DIR` of every worker: this pool's own folder.
    spool: PathBuf,
    active: Vec<Worker>,
    draining: Vec<Worker>,
    restarts: Vec<Restart>,
    next_slot: u64,
    events: Vec<PoolEvent>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("active", &self.active.len())
            .field("draining", &self.draining.len())
            .field("restarting", &self.restarts.len())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// An empty pool; [`Pool::scale_to`] starts workers.
    pub fn new(options: PoolOptions) -> Result<Pool> {
        std::fs::create_dir_all(&options.log_dir).map_err(|e| Error::io("creating log folder", &options.log_dir, e))?;
        let spool = std::env::var_os(env::SPOOL_DIR)
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("batchfan-pool-{}-{:08x}", std::process::id(), fastrand::u32(..)));
        std::fs::create_dir_all(&spool).map_err(|e| Error::io("creating spool folder", &spool, e))?;
        Ok(Pool {
            options,
            spool,
            active: Vec::new(),
            draining: Vec::new(),
            restarts: Vec::new(),
            next_slot: 0,
            events: Vec::new(),
        })
    }

    /// Workers serving the queue (started or waiting for a restart).
    pub fn active(&self) -> usize {
        self.active.len() + self.restarts.len()
    }

    /// Workers asked to stop that have not exited yet.
    pub fn draining(&self) -> usize {
        self.draining.len()
    }

    /// The capacity the pool holds: active plus draining workers (a draining worker still
    /// finishes its messages).
    pub fn capacity(&self) -> usize {
        self.active() + self.draining()
    }

    /// Takes the events since the last call.
    pub fn take_events(&mut self) -> Vec<PoolEvent> {
        std::mem::take(&mut self.events)
    }

    fn spawn(&mut self, slot: u64, crashes: u32) -> Result<()> {
        let log_path = self.options.log_dir.join(format!("worker-{slot:03}.log"));
        let open = || OpenOptions::new().create(true).append(true).open(&log_path);
        let log = open().map_err(|e| Error::io("opening log", &log_path, e))?;
        let log_err = open().map_err(|e| Error::io("opening log", &log_path, e))?;
        let mut command = Command::new(&self.options.program);
        command
            .args(&self.options.args)
            .env(env::QUEUE_URL, &self.options.queue_url)
            .env(env::SPOOL_DIR, &self.spool)
            .env_remove(env::MANIFEST)
            .env_remove(env::ARRAY_INDEX)
            .env_remove(env::JOB_ID)
            .stdin(Stdio::null())
            .env(crate::contract::env::LOG_FILE, &log_path)
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: getpid(2) cannot fail.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs between fork and exec and calls only async-signal-safe functions.
        unsafe {
            command.pre_exec(move || {
                crate::local::die_with_parent(parent).and_then(|()| crate::local::hold_sigterm_across_exec())
            })
        };
        let child = command
            .spawn()
            .map_err(|source| Error::Spawn { program: self.options.program.display().to_string(), source })?;
        self.events.push(PoolEvent::Started { slot, pid: child.id().unwrap_or(0) });
        self.active.push(Worker { slot, child, started: Instant::now(), crashes });
        Ok(())
    }

    /// Starts or stops workers until `n` are active. Scale-in sends SIGTERM to the newest
    /// workers; they drain and count as [`Pool::draining`] until they exit.
    pub fn scale_to(&mut self, n: usize) -> Result<()> {
        while self.active() < n {
            let slot = self.next_slot;
            self.next_slot += 1;
            self.spawn(slot, 0)?;
        }
        while self.active() > n {
            if self.restarts.pop().is_some() {
                continue; // a crashed worker not yet restarted: just do not restart it
            }
            let Some(worker) = self.active.pop() else { break };
            self.events.push(PoolEvent::Stopping { slot: worker.slot });
            terminate(&worker.child);
            self.draining.push(worker);
        }
        Ok(())
    }

    /// Reaps workers that exited and restarts crashed ones whose delay is over. Call it
    /// regularly (the CLI does, every 200 ms).
    pub fn supervise(&mut self) -> Result<()> {
        let mut still = Vec::with_capacity(self.active.len());
        let mut config_error = None;
        for mut worker in std::mem::take(&mut self.active) {
            match worker.child.try_wait() {
                Ok(None) => still.push(worker),
                Ok(Some(status)) => {
                    let (code, signal) = describe(status);
                    if code == Some(crate::contract::exit::CONFIG) {
                        self.events.push(PoolEvent::Exited { slot: worker.slot, code, signal, restart: false });
                        let log = self.options.log_dir.join(format!("worker-{:03}.log", worker.slot));
                        let message = crate::local::last_line(&log).unwrap_or_else(|| "no log line".into());
                        config_error.get_or_insert(Error::WorkerConfig { slot: worker.slot, log, message });
                        continue;
                    }
                    // Exit 0 is the worker's idle exit; anything else ended it without the
                    // pool asking (the pool's own SIGTERMs go to draining workers only).
                    let restart = code != Some(0);
                    self.events.push(PoolEvent::Exited { slot: worker.slot, code, signal, restart });
                    if restart {
                        // Ending right after a start backs off (up to 30 s); a worker that ran
                        // a minute starts the count again.
                        let crashes =
                            if worker.started.elapsed() > Duration::from_secs(60) { 1 } else { worker.crashes + 1 };
                        let delay = Duration::from_millis((250u64 << crashes.min(7)).min(30_000));
                        self.restarts.push(Restart { slot: worker.slot, at: Instant::now() + delay, crashes });
                    }
                }
                Err(e) => return Err(Error::io("waiting for worker", &self.options.program, e)),
            }
        }
        self.active = still;
        if let Some(e) = config_error {
            return Err(e);
        }
        let mut draining = Vec::with_capacity(self.draining.len());
        for mut worker in std::mem::take(&mut self.draining) {
            match worker.child.try_wait() {
                Ok(None) => draining.push(worker),
                Ok(Some(status)) => {
                    let (code, signal) = describe(status);
                    self.events.push(PoolEvent::Exited { slot: worker.slot, code, signal, restart: false });
                }
                Err(e) => return Err(Error::io("waiting for worker", &self.options.program, e)),
            }
        }
        self.draining = draining;
        let now = Instant::now();
        let (due, later): (Vec<Restart>, Vec<Restart>) =
            std::mem::take(&mut self.restarts).into_iter().partition(|r| r.at <= now);
        self.restarts = later;
        for restart in due {
            self.spawn(restart.slot, restart.crashes)?;
        }
        Ok(())
    }

    /// True when no worker runs, drains or waits for a restart: every worker took its idle
    /// exit (whether the queue is drained is the queue's counts' to say).
    pub fn is_empty(&self) -> bool {
        self.capacity() == 0
    }

    /// Stops every worker through its drain path: SIGTERM, then up to `deadline` for them to
    /// exit, then SIGKILL for the rest. Returns how many had to be killed.
    pub async fn stop(&mut self, deadline: Duration) -> Result<usize> {
        self.restarts.clear();
        self.scale_to(0)?;
        let until = Instant::now() + deadline;
        while !self.draining.is_empty() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.supervise()?;
        }
        let killed = self.draining.len();
        for mut worker in std::mem::take(&mut self.draining) {
            // The whole group: a worker's exec program and its children too.
            if let Some(pid) = worker.child.id().and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: killpg only sends a signal to the group this pool's child leads.
                unsafe { libc::killpg(pid, libc::SIGKILL) };
            }
            let _ = worker.child.kill().await;
            self.events.push(PoolEvent::Exited { slot: worker.slot, code: None, signal: Some(9), restart: false });
        }
        let _ = std::fs::remove_dir_all(&self.spool);
        Ok(killed)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Workers still held are killed by `kill_on_drop`; their spool files go with the folder.
        let _ = std::fs::remove_dir_all(&self.spool);
    }
}

fn describe(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    (status.code(), status.signal())
}

/// Sends SIGTERM to a child (its own drain path).
fn terminate(child: &Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a pid this process spawned and has not reaped (tokio reaps it
        // only through `try_wait`/`wait`), so the pid cannot have been reused.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
}
