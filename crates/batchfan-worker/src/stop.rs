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
