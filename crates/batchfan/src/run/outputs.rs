//! What a run committed, read from its completion markers: the objects each chunk committed,
//! listed and streamed in chunk order (what `batchfan outputs` and `batchfan cat` show).

use serde::Serialize;

use super::record::RunRecord;
use crate::error::{Error, Result};
use crate::registry::StoreRegistry;
use crate::report;
use crate::store::{ByteStream, ObjectMeta};
use crate::uri::Location;

/// One object a run committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RunOutput {
    /// The chunk that committed it.
    pub chunk: u64,
    /// Its key under the run's output location.
    pub key: String,
    /// Its URI.
    pub uri: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its version as the commit wrote it (S3 ETag, or local `MTIME_NS/SIZE`), when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip)]
    meta: ObjectMeta,
}

/// Every object the run's trusted markers list, in chunk order (within a chunk: its
/// `part-NNNNN`, then the objects in the order they were committed).
pub(crate) async fn list(stores: &StoreRegistry, record: &RunRecord) -> Result<Vec<RunOutput>> {
    let output = Location::parse(&record.output)?;
    let store = stores.store(&output)?;
    let markers = report::read_markers(store.as_ref(), &record.run_id).await?;
    let now = report::versions_now(store.as_ref(), &markers).await?;
    let mut outputs = Vec::new();
    for (chunk, marker) in &markers {
        if report::untrusted(marker, &now).is_some() {
            continue;
        }
        let keys = std::iter::once(&marker.output_key).chain(marker.objects.iter()).filter(|k| !k.is_empty());
        for key in keys {
            // A marker of an earlier release records no versions: what is there now is listed.
            let Some(Some(meta)) = now.get(key) else { continue };
            outputs.push(RunOutput {
                chunk: *chunk,
                key: key.clone(),
                uri: output.join_display(key),
                bytes: meta.size,
                version: marker.versions.get(key).cloned(),
                meta: meta.clone(),
            });
        }
    }
    Ok(outputs)
}

/// Streams one output, pinned to the version it was listed with.
pub(crate) async fn open(stores: &StoreRegistry, record: &RunRecord, output: &RunOutput) -> Result<ByteStream> {
    let store = stores.store(&Location::parse(&record.output)?)?;
    store.get(&output.key, None, Some(&output.meta)).await.map_err(|e| match e {
        Error::NotFound { .. } => Error::InputChanged { uri: output.uri.clone(), expected: output.meta.version_text() },
        other => other,
    })
}
