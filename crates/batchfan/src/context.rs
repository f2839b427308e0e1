//! What a client hands down to the executors and the run lifecycle: its AWS side, its store
//! registry and where run notes go. The [`crate::Client`] is a handle on one of these.

use std::path::PathBuf;
use std::sync::Arc;

use crate::aws::Aws;
use crate::registry::StoreRegistry;

/// A client's shared state (the `Arc` a [`crate::Client`] holds).
pub(crate) struct Context {
    /// The AWS clients, limiters and counters.
    #[cfg_attr(not(any(feature = "batch", feature = "queue")), allow(dead_code))]
    pub(crate) aws: Arc<Aws>,
    /// Locations to stores.
    pub(crate) stores: StoreRegistry,
    /// Where run notes (`RUN` -> run record URI) are kept, if anywhere.
    pub(crate) runs_dir: Option<PathBuf>,
}
