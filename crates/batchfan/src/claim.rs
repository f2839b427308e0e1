//! A run's claim on its output location: one object, `_batchfan/claim.json`, made with a
//! conditional create before anything else is written, so two runs can never share an output.
//!
//! A local run (`run --local`) holds the claim while it runs and releases it at its end. A run
//! handed to AWS Batch or SQS keeps it after the submitting process exits (the claim then names
//! no process), until `wait` or `status` sees the run complete, or `cancel` ends it. A claim whose
//! process is gone from this host is stale and is broken by the next run.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::contract::META_DIR;
use crate::error::{Error, Result};
use crate::store::{self, Store};

/// The claim's key under the output location.
pub fn claim_key() -> String {
    format!("{META_DIR}/claim.json")
}

/// Who holds an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Format version, 1.
    pub batchfan_claim: u32,
    /// The run holding the output.
    pub run_id: String,
    /// The host of the process holding it.
    pub host: String,
    /// The process holding it; `None` once the run was handed to AWS Batch or SQS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// When it was taken (ms since the epoch).
    pub created_unix_ms: u64,
}

impl Claim {
    /// A claim for `run_id` by this process.
    pub fn new(run_id: &str) -> Claim {
        Claim {
            batchfan_claim: 1,
            run_id: run_id.to_string(),
            host: host_name(),
            pid: Some(std::process::id()),
            created_unix_ms: crate::layout::now_ms(),
        }
    }

    /// True when the holding process is one of this host.
    pub fn is_local(&self) -> bool {
        self.pid.is_some() && self.host == host_name()
    }

    /// True when the holding process is known to be gone (same host, no such process).
    pub fn is_stale(&self) -> bool {
        self.pid.is_some_and(|pid| self.host == host_name() && !crate::store::process_alive(pid))
    }

    fn describe(&self) -> String {
        match self.pid {
            Some(pid) => format!("run {} (process {pid} on {})", self.run_id, self.host),
            None => format!("run {} (submitted from {})", self.run_id, self.host),
        }
    }
}

/// Takes the claim on `store`'s location for `run_id`, breaking a stale one. A location held by
/// another run is [`Error::OutputClaimed`] naming it and saying how to break a stale claim.
///
/// A claim of `run_id` itself (a resumed or redriven run) is taken over only when the process
/// holding it is gone, or it was handed to AWS Batch or SQS: two processes never run one run's
/// chunks at once.
pub(crate) async fn take(store: &dyn Store, run_id: &str) -> Result<()> {
    let key = claim_key();
    let body = |c: &Claim| serde_json::to_vec_pretty(c).map(Bytes::from).unwrap_or_default();
    let mine = Claim::new(run_id);
    let held = |h: &Claim, why: &str| Error::OutputClaimed {
        uri: store.location().to_string(),
        holder: format!("{}{why}", h.describe()),
        claim: store.location().join_display(&key),
    };
    for _ in 0..2 {
        if store.put_if_absent(&key, body(&mine)).await? {
            return Ok(());
        }
        let holder = read(store).await?;
        match holder {
            Some(h) if h.run_id == run_id && h.pid.is_some_and(|p| p != std::process::id()) && !h.is_stale() => {
                return Err(held(&h, ", which is still running"));
            }
            Some(h) if h.run_id == run_id => {
                // Its process is gone (or it is this one): the claim names this process now, so
                // nobody breaks it as stale while this process runs the run.
                store.put(&key, body(&mine)).await?;
                return Ok(());
            }
            Some(h) if h.is_stale() => {
                store.delete(&key).await?; // its process is gone: the claim is stale
            }
            Some(h) => return Err(held(&h, "")),
            None => {} // released meanwhile: try again
        }
    }
    Err(Error::OutputClaimed {
        uri: store.location().to_string(),
        holder: "another run (it took the claim as this one broke a stale one)".into(),
        claim: store.location().join_display(&key),
    })
}

/// The claim on `store`'s location, if any (an unreadable one counts as held by someone).
pub async fn read(store: &dyn Store) -> Result<Option<Claim>> {
    match store::read_all(store, &claim_key(), None, None).await {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| Claim {
            batchfan_claim: 0,
            run_id: "(unreadable claim)".into(),
            host: String::new(),
            pid: None,
            created_unix_ms: 0,
        }))),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Releases `run_id`'s claim (another run's claim is left alone).
pub(crate) async fn release(store: &dyn Store, run_id: &str) -> Result<()> {
    if read(store).await?.is_some_and(|c| c.run_id == run_id) {
        store.delete(&claim_key()).await?;
    }
    Ok(())
}

/// Marks `run_id`'s claim as held by the run itself, not this process (after a submit): it
/// stays until the run is seen complete.
#[cfg_attr(not(any(feature = "batch", feature = "queue")), allow(dead_code))]
pub(crate) async fn detach(store: &dyn Store, run_id: &str) -> Result<()> {
    if let Some(mut claim) = read(store).await?.filter(|c| c.run_id == run_id) {
        claim.pid = None;
        store.put(&claim_key(), serde_json::to_vec_pretty(&claim).map(Bytes::from).unwrap_or_default()).await?;
    }
    Ok(())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}
