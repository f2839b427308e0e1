//! Stopping: SIGTERM (Spot reclaim, scale-in) asks work in flight to finish; at the drain
//! deadline, or on a second SIGTERM, it is aborted.

use std::time::Duration;

use tokio::sync::watch;

/// Where a worker is in its stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Working.
    Running,
    /// Asked to stop: take no new work, let work in flight finish.
    Draining,
    /// Out of time: abort work in flight, commit nothing more.
    Abort,
}

/// A view of the stop, cheap to clone into every task.
#[derive(Debug, Clone)]
pub(crate) struct StopSignal(watch::Receiver<Phase>);

impl StopSignal {
    /// A signal that never fires (embedding without signal handling).
    pub(crate) fn never() -> StopSignal {
        let (tx, rx) = watch::channel(Phase::Running);
        // The sender lives as long as the process: the phase stays Running.
        std::mem::forget(tx);
        StopSignal(rx)
    }

    pub(crate) fn phase(&self) -> Phase {
        *self.0.borrow()
    }

    /// Resolves once the phase is at least `phase`.
    pub(crate) async fn reached(&self, phase: Phase) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|p| *p >= phase).await;
    }
}

/// `BATCHFAN_STOP_TIMEOUT` as far as it parses, else the default: read before the
/// configuration is checked, because the SIGTERM handler is installed first (a bad value is
/// still reported by the configuration check).
pub(crate) fn timeout_from_env() -> Duration {
    std::env::var(batchfan::contract::env::STOP_TIMEOUT)
        .ok()
        .and_then(|v| batchfan::contract::parse_seconds(&v))
        .unwrap_or(batchfan::contract::DEFAULT_STOP_TIMEOUT)
}

/// Drives the phases from SIGTERM: the first starts the drain and its deadline, the second (or
/// the deadline) aborts. Returns the signal and the moment the drain started, when it has.
pub(crate) fn on_sigterm(stop_timeout: Duration) -> std::io::Result<StopSignal> {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // A SIGTERM held since start (see `hold_sigterm`) is delivered now, to the handler.
    sigterm_mask(libc::SIG_UNBLOCK);
    let (tx, rx) = watch::channel(Phase::Running);
    tokio::spawn(async move {
        if sigterm.recv().await.is_none() {
            return;
        }
        tracing::warn!(stop_timeout_s = stop_timeout.as_secs_f64(), "SIGTERM: draining work in flight");
        let _ = tx.send(Phase::Draining);
        tokio::select! {
            _ = tokio::time::sleep(stop_timeout) => tracing::warn!("drain deadline reached: aborting"),
            _ = sigterm.recv() => tracing::warn!("second SIGTERM: aborting"),
        }
        let _ = tx.send(Phase::Abort);
        // Keep the sender alive: later receivers still see Abort.
        std::future::pending::<()>().await;
    });
    Ok(StopSignal(rx))
}

/// Holds SIGTERM in the calling thread and in every thread it starts from now on, until the
/// worker's handler is installed (by [`crate::run`]). Call it first in `main`, before the async
/// runtime starts its threads: a SIGTERM in a worker's first milliseconds (Spot, scale-in, a
/// local run stopped at once) then starts a drain like any other instead of killing the process
/// by signal 15 with no log line. Processes the worker starts do not inherit the hold (the
/// standard library clears the signal mask of every child it spawns).
///
/// As a container's PID 1 (the image's ENTRYPOINT) it first forks: the parent stays an init that
/// passes signals on to the worker and reaps every orphan, so the programs `exec` runs get their
/// signals and leave no zombies (`BATCHFAN_NO_INIT=1` turns that off).
///
/// ```no_run
/// use batchfan_worker::{BoxError, Chunk, exit, handler_fn};
///
/// fn main() -> std::process::ExitCode {
///     batchfan_worker::hold_sigterm();
///     let Ok(runtime) = tokio::runtime::Runtime::new() else {
///         return std::process::ExitCode::from(exit::TRANSIENT as u8);
///     };
///     runtime.block_on(batchfan_worker::run(handler_fn(|chunk: Chunk| async move {
///         let _ = chunk;
///         Ok::<(), BoxError>(())
///     })))
/// }
/// ```
pub fn hold_sigterm() {
    crate::init::become_init_if_pid_1();
    sigterm_mask(libc::SIG_BLOCK);
}

fn sigterm_mask(how: libc::c_int) {
    // SAFETY: a zeroed sigset_t filled by sigemptyset/sigaddset, then pthread_sigmask on this
    // thread only; failures (impossible for SIGTERM) leave the mask as it was.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}
