//! Run records (`run.json` next to the manifest), whatever ran the run: saved with a local note
//! under the run id, and found again by the id, the record's URI, its folder, the manifest, or
//! the run's output location (its newest run), from any machine.

use bytes::Bytes;
use futures_util::TryStreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::contract::{META_DIR, RUN_RECORD_NAME, RUN_RECORD_VERSION};
use crate::error::{Error, Result};
use crate::limits;
use crate::store;
use crate::uri::Location;

/// What executed a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// AWS Batch array jobs (records of the first releases have no `kind`: these).
    #[default]
    Batch,
    /// Messages on an SQS queue served by workers.
    Queue,
    /// Processes on one machine (`batchfan run --local`).
    Local,
}

/// The fields every run record has.
#[derive(Deserialize)]
struct Head {
    run_id: String,
    #[serde(default)]
    created_unix_ms: u64,
    #[serde(default = "first_version")]
    batchfan_run: u32,
    #[serde(default)]
    kind: RunKind,
}

fn first_version() -> u32 {
    1
}

/// A run record found by [`find_record`].
#[derive(Debug, Clone)]
pub struct FoundRun {
    /// Where the record is.
    pub uri: String,
    /// The run id.
    pub run_id: String,
    /// What executed the run.
    pub kind: RunKind,
    run: String,
    bytes: Bytes,
}

impl FoundRun {
    /// The record as its kind's type.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.bytes).map_err(|e| Error::UnknownRun {
            run: self.run.clone(),
            reason: format!("{} is not a readable run record ({e})", self.uri),
        })
    }

    /// An error saying the run is of another kind than a command needs.
    pub fn wrong_kind(&self, wanted: &str) -> Error {
        let is = match self.kind {
            RunKind::Batch => "an AWS Batch run (submitted with `batchfan submit`)",
            RunKind::Queue => "a queue run (sent with `batchfan enqueue`)",
            RunKind::Local => "a local run (`batchfan run --local`)",
        };
        Error::UnknownRun { run: self.run.clone(), reason: format!("it is {is}, not {wanted}") }
    }
}

/// Writes a run record to `record_uri` and notes the URI under the run id in the client's run
/// notes (`$BATCHFAN_HOME/runs/RUN` for the CLI), so commands can take the bare run id.
pub async fn save_record<T: Serialize>(client: &Client, run_id: &str, record_uri: &str, record: &T) -> Result<()> {
    let body = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::Manifest { uri: record_uri.to_string(), reason: e.to_string() })?;
    let (dir, name) = Location::parse_file(record_uri)?;
    client.store(&dir)?.put(&name, Bytes::from(body)).await?;
    // The local note is a convenience: the record URI works without it.
    if let Some(registry) = client.runs_dir()
        && std::fs::create_dir_all(registry).is_ok()
    {
        let _ = std::fs::write(registry.join(run_id), record_uri);
    }
    Ok(())
}

/// Finds a run by id (from the client's run notes) or by URI: the record, its folder, the
/// manifest, or an output location (its newest run under `_batchfan/runs/`).
pub async fn find_record(client: &Client, run: &str) -> Result<FoundRun> {
    let unknown = |reason: String| Error::UnknownRun { run: run.to_string(), reason };
    let remote = run.starts_with("s3://") || run.starts_with('/') || run.starts_with("file://") || run.starts_with('.');
    let (uri, folder) = if remote {
        if run.ends_with(".json") {
            (run.to_string(), None)
        } else {
            let folder = run.strip_suffix("manifest.jsonl").unwrap_or(run).trim_end_matches('/');
            (format!("{folder}/{RUN_RECORD_NAME}"), Some(folder))
        }
    } else {
        limits::check_name("RUN", run)?;
        let Some(registry) = client.runs_dir() else {
            return Err(unknown(
                "this client keeps no run notes; give the run record's URI, or the run's output location".into(),
            ));
        };
        let note = registry.join(run);
        let uri = std::fs::read_to_string(&note).map(|s| s.trim().to_string()).map_err(|_| {
            unknown(format!(
                "not started from this machine (no {}); give the run record's URI printed when the run started, or the run's output location",
                note.display()
            ))
        })?;
        (uri, None)
    };
    if let Some(found) = read_record(client, run, &uri).await? {
        return Ok(found);
    }
    let Some(folder) = folder else {
        return Err(unknown(format!("no run record at {uri}")));
    };
    // An output location: its newest run. Ids sort by their second; within one, by the record.
    let runs = Location::parse(&format!("{folder}/{META_DIR}/runs/"))?;
    let ids: Vec<String> = match client
        .store(&runs)?
        .list("")
        .try_filter_map(
            |meta| async move { Ok(meta.key.strip_suffix(&format!("/{RUN_RECORD_NAME}")).map(str::to_string)) },
        )
        .try_collect()
        .await
    {
        Err(Error::NotFound { .. }) => Vec::new(),
        other => other?,
    };
    let second = |id: &str| id.rsplit_once('-').map_or(id.to_string(), |(head, _)| head.to_string());
    let latest = ids.iter().map(|id| second(id)).max();
    let mut newest: Option<(u64, FoundRun)> = None;
    for id in ids.iter().filter(|id| Some(second(id)) == latest) {
        let uri = runs.join_display(&format!("{id}/{RUN_RECORD_NAME}"));
        let Some(found) = read_record(client, run, &uri).await? else { continue };
        let created = serde_json::from_slice::<Head>(&found.bytes).map_or(0, |h| h.created_unix_ms);
        if newest.as_ref().is_none_or(|(t, n)| (created, &found.run_id) > (*t, &n.run_id)) {
            newest = Some((created, found));
        }
    }
    newest
        .map(|(_, found)| found)
        .ok_or_else(|| unknown(format!("no run record at {uri}, and no run under {}", runs.join_display(""))))
}

/// The run record at `uri`, or `None` when there is none.
async fn read_record(client: &Client, run: &str, uri: &str) -> Result<Option<FoundRun>> {
    let (dir, name) = Location::parse_file(uri)?;
    let store = client.store(&dir)?;
    let bytes = match store::read_all(store.as_ref(), &name, None, None).await {
        Err(Error::NotFound { .. }) => return Ok(None),
        other => other?,
    };
    let head: Head = serde_json::from_slice(&bytes)
        .map_err(|e| Error::UnknownRun { run: run.to_string(), reason: format!("{uri} is not a run record ({e})") })?;
    if head.batchfan_run > RUN_RECORD_VERSION {
        return Err(Error::UnknownRun {
            run: run.to_string(),
            reason: format!(
                "{uri} has run record version {}, this batchfan reads up to {RUN_RECORD_VERSION}: use a newer batchfan",
                head.batchfan_run
            ),
        });
    }
    Ok(Some(FoundRun { uri: uri.to_string(), run_id: head.run_id, kind: head.kind, run: run.to_string(), bytes }))
}
