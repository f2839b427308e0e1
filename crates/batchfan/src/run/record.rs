//! The run record (`OUTPUT/_batchfan/runs/RUN/run.json`, for every kind of run): one head every
//! record has, and the part its executor keeps. Saved with a local note under the run id, and
//! found again by the id, the record's URI, the manifest's, or the run's output location (its
//! newest run), from any machine.

use bytes::Bytes;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::contract::{META_DIR, RUN_RECORD_NAME, RUN_RECORD_VERSION};
use crate::error::{Error, Result};
use crate::limits;
use crate::local::LocalRecord;
use crate::registry::StoreRegistry;
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

impl RunKind {
    /// `batch`, `queue` or `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Batch => "batch",
            RunKind::Queue => "queue",
            RunKind::Local => "local",
        }
    }
}

impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run's record: what every run has, and what its executor keeps ([`RecordDetail`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunRecord {
    /// Format version, [`RUN_RECORD_VERSION`] (records of the first releases lack it: 1).
    pub batchfan_run: u32,
    /// The run id.
    pub run_id: String,
    /// Where this record is.
    pub record_uri: String,
    /// The manifest.
    pub manifest: String,
    /// The output location.
    pub output: String,
    /// Chunks in the plan.
    pub chunk_count: u64,
    /// Items in the plan (0 in records of earlier releases).
    pub item_count: u64,
    /// Input bytes in the plan (0 in records of earlier releases).
    pub total_bytes: u64,
    /// When the run started (ms since the epoch).
    pub created_unix_ms: u64,
    /// What the executor keeps.
    pub detail: RecordDetail,
}

/// The part of a run record its executor keeps.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RecordDetail {
    /// AWS Batch arrays.
    #[cfg(feature = "batch")]
    Batch(Box<crate::batch::BatchRecord>),
    /// An SQS queue.
    #[cfg(feature = "queue")]
    Queue(crate::queue::QueueRecord),
    /// Processes on one machine.
    Local(LocalRecord),
}

impl RunRecord {
    /// What executed the run.
    pub fn kind(&self) -> RunKind {
        match &self.detail {
            #[cfg(feature = "batch")]
            RecordDetail::Batch(_) => RunKind::Batch,
            #[cfg(feature = "queue")]
            RecordDetail::Queue(_) => RunKind::Queue,
            RecordDetail::Local(_) => RunKind::Local,
        }
    }

    /// A record of a new run, at [`record_uri`] under its output.
    pub(crate) fn new(manifest: &str, header: &crate::contract::Header, detail: RecordDetail) -> Result<RunRecord> {
        Ok(RunRecord {
            batchfan_run: RUN_RECORD_VERSION,
            run_id: header.run_id.clone(),
            record_uri: record_uri(&header.output, &header.run_id)?,
            manifest: manifest.to_string(),
            output: header.output.clone(),
            chunk_count: header.chunk_count,
            item_count: header.item_count,
            total_bytes: header.total_bytes,
            created_unix_ms: crate::layout::now_ms(),
            detail,
        })
    }
}

/// Where the record of run `run_id` with output `output` lives: one rule for every kind.
pub fn record_uri(output: &str, run_id: &str) -> Result<String> {
    Ok(Location::parse(output)?.join_display(&format!("{META_DIR}/runs/{run_id}/{RUN_RECORD_NAME}")))
}

/// The fields every run record has, as written.
#[derive(Serialize, Deserialize)]
struct Head {
    #[serde(default = "first_version")]
    batchfan_run: u32,
    #[serde(default)]
    kind: RunKind,
    run_id: String,
    record_uri: String,
    manifest: String,
    output: String,
    chunk_count: u64,
    #[serde(default)]
    item_count: u64,
    #[serde(default)]
    total_bytes: u64,
    #[serde(default)]
    created_unix_ms: u64,
}

fn first_version() -> u32 {
    1
}

impl Serialize for RunRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Written<'a, D: Serialize> {
            #[serde(flatten)]
            head: Head,
            #[serde(flatten)]
            detail: &'a D,
        }
        let head = Head {
            batchfan_run: self.batchfan_run,
            kind: self.kind(),
            run_id: self.run_id.clone(),
            record_uri: self.record_uri.clone(),
            manifest: self.manifest.clone(),
            output: self.output.clone(),
            chunk_count: self.chunk_count,
            item_count: self.item_count,
            total_bytes: self.total_bytes,
            created_unix_ms: self.created_unix_ms,
        };
        match &self.detail {
            #[cfg(feature = "batch")]
            RecordDetail::Batch(d) => Written { head, detail: d.as_ref() }.serialize(s),
            #[cfg(feature = "queue")]
            RecordDetail::Queue(d) => Written { head, detail: d }.serialize(s),
            RecordDetail::Local(d) => Written { head, detail: d }.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RunRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<RunRecord, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(d)?;
        let head: Head = serde_json::from_value(value.clone()).map_err(D::Error::custom)?;
        let detail = match head.kind {
            #[cfg(feature = "batch")]
            RunKind::Batch => RecordDetail::Batch(Box::new(serde_json::from_value(value).map_err(D::Error::custom)?)),
            #[cfg(feature = "queue")]
            RunKind::Queue => RecordDetail::Queue(serde_json::from_value(value).map_err(D::Error::custom)?),
            RunKind::Local => RecordDetail::Local(serde_json::from_value(value).map_err(D::Error::custom)?),
            #[allow(unreachable_patterns)]
            other => {
                return Err(D::Error::custom(format!(
                    "a {other} run, which this build of batchfan cannot handle (built without the `{other}` feature)"
                )));
            }
        };
        Ok(RunRecord {
            batchfan_run: head.batchfan_run,
            run_id: head.run_id,
            record_uri: head.record_uri,
            manifest: head.manifest,
            output: head.output,
            chunk_count: head.chunk_count,
            item_count: head.item_count,
            total_bytes: head.total_bytes,
            created_unix_ms: head.created_unix_ms,
            detail,
        })
    }
}

/// Writes a run record to its URI and notes the URI under the run id in the client's run notes
/// (`$BATCHFAN_HOME/runs/RUN` for the CLI), so commands can take the bare run id.
pub(crate) async fn save(ctx: &Context, record: &RunRecord) -> Result<()> {
    let body = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::Manifest { uri: record.record_uri.clone(), reason: e.to_string() })?;
    let (store, name) = ctx.stores.file(&record.record_uri)?;
    store.put(&name, Bytes::from(body)).await?;
    // The local note is a convenience: the record URI works without it.
    if let Some(notes) = &ctx.runs_dir
        && std::fs::create_dir_all(notes).is_ok()
    {
        let _ = std::fs::write(notes.join(&record.run_id), &record.record_uri);
    }
    Ok(())
}

/// True for what names a location rather than a run id: a URI, or a path (it has a `/`, or
/// starts with `.`), relative ones such as `out/flaky` included.
fn names_a_location(run: &str) -> bool {
    run.contains('/') || run.starts_with('.') || run.starts_with("s3:") || run.starts_with("file:")
}

/// Finds a run record by the run id (from the client's run notes) or by a URI or path: the
/// record itself, its folder, the run's manifest (its header names the run and its output), or
/// an output location (its newest run under `_batchfan/runs/`).
pub(crate) async fn find(ctx: &Context, run: &str) -> Result<RunRecord> {
    let unknown = |reason: String| Error::UnknownRun { run: run.to_string(), reason };
    if !names_a_location(run) {
        limits::check_name("RUN", run)?;
        let Some(notes) = &ctx.runs_dir else {
            return Err(unknown(
                "this client keeps no run notes; give the run record's URI, or the run's output location".into(),
            ));
        };
        let note = notes.join(run);
        let uri = std::fs::read_to_string(&note).map(|s| s.trim().to_string()).map_err(|_| {
            unknown(format!(
                "not started from this machine (no {}); give the run record's URI printed when the run started, or the run's output location",
                note.display()
            ))
        })?;
        return read(&ctx.stores, run, &uri).await?.ok_or_else(|| unknown(format!("no run record at {uri}")));
    }
    let trimmed = run.trim_end_matches('/');
    if trimmed.ends_with(".json") {
        return read(&ctx.stores, run, trimmed).await?.ok_or_else(|| unknown(format!("no run record at {trimmed}")));
    }
    if trimmed.ends_with(".jsonl") {
        // A manifest: its header names the run and its output, where the record is.
        let manifest = crate::manifest::ManifestReader::open(&ctx.stores, trimmed).await.map_err(|e| match e {
            Error::NotFound { .. } => unknown(format!("no manifest at {trimmed}")),
            other => other,
        })?;
        let header = manifest.header();
        let at_output = record_uri(&header.output, &header.run_id)?;
        if let Some(found) = read(&ctx.stores, run, &at_output).await? {
            return Ok(found);
        }
        // Records of the first releases lived next to the manifest.
        let beside = Location::parse_file(trimmed)?.0.join_display(RUN_RECORD_NAME);
        return read(&ctx.stores, run, &beside)
            .await?
            .ok_or_else(|| unknown(format!("no run record at {at_output} or {beside}")));
    }
    // A folder: the record's own, or an output location and its newest run.
    let beside = format!("{trimmed}/{RUN_RECORD_NAME}");
    if let Some(found) = read(&ctx.stores, run, &beside).await? {
        return Ok(found);
    }
    newest(&ctx.stores, run, trimmed).await
}

/// The newest run under an output location: ids sort by their second; within one, by when the
/// record says the run started.
async fn newest(stores: &StoreRegistry, run: &str, output: &str) -> Result<RunRecord> {
    let runs = Location::parse(&format!("{output}/{META_DIR}/runs/"))?;
    let ids: Vec<String> = match stores
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
    let mut newest: Option<RunRecord> = None;
    for id in ids.iter().filter(|id| Some(second(id)) == latest) {
        let uri = runs.join_display(&format!("{id}/{RUN_RECORD_NAME}"));
        let Some(found) = read(stores, run, &uri).await? else { continue };
        if newest.as_ref().is_none_or(|n| (found.created_unix_ms, &found.run_id) > (n.created_unix_ms, &n.run_id)) {
            newest = Some(found);
        }
    }
    newest.ok_or_else(|| Error::UnknownRun {
        run: run.to_string(),
        reason: format!("no run record at {output}/{RUN_RECORD_NAME}, and no run under {}", runs.join_display("")),
    })
}

/// The run record at `uri`, or `None` when there is none.
pub(crate) async fn read(stores: &StoreRegistry, run: &str, uri: &str) -> Result<Option<RunRecord>> {
    let (store, name) = stores.file(uri)?;
    let bytes = match store::read_all(store.as_ref(), &name, None, None).await {
        Err(Error::NotFound { .. }) => return Ok(None),
        other => other?,
    };
    parse(run, uri, &bytes).map(Some)
}

/// A run record from its bytes; `run` and `uri` name it in errors.
pub(crate) fn parse(run: &str, uri: &str, bytes: &[u8]) -> Result<RunRecord> {
    let unknown = |reason: String| Error::UnknownRun { run: run.to_string(), reason };
    let version: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| unknown(format!("{uri} is not a run record ({e})")))?;
    let found = version.get("batchfan_run").and_then(serde_json::Value::as_u64).unwrap_or(1);
    if found > u64::from(RUN_RECORD_VERSION) {
        return Err(unknown(format!(
            "{uri} has run record version {found}, this batchfan reads up to {RUN_RECORD_VERSION}: use a newer batchfan"
        )));
    }
    serde_json::from_value(version).map_err(|e| unknown(format!("{uri} is not a readable run record ({e})")))
}

#[cfg(all(test, feature = "batch", feature = "queue"))]
mod tests {
    use super::*;

    /// Records as each release wrote them read, and write back as they were read.
    #[test]
    fn records_of_every_kind_and_release_read() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let record = parse("fixture", &path.display().to_string(), &bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(record.run_id.starts_with("bf-"), "{}", path.display());
            let again: RunRecord = serde_json::from_slice(&serde_json::to_vec(&record).unwrap()).unwrap();
            assert_eq!(again, record, "{}", path.display());
            seen.push((path.file_name().unwrap().to_string_lossy().into_owned(), record.kind()));
        }
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        let kinds: Vec<RunKind> = seen.iter().map(|(_, k)| *k).collect();
        assert_eq!(
            kinds,
            [RunKind::Batch, RunKind::Batch, RunKind::Local, RunKind::Queue],
            "fixtures: {seen:?} (batch-first-release, batch, local, queue)"
        );
    }

    #[test]
    fn a_newer_version_is_refused_naming_it() {
        let newer = br#"{"batchfan_run":99,"kind":"local","run_id":"bf-1"}"#;
        let err = parse("bf-1", "s3://b/run.json", newer).unwrap_err();
        assert!(err.to_string().contains("version 99"), "{err}");
    }

    #[test]
    fn relative_paths_name_locations() {
        assert!(names_a_location("out/flaky") && names_a_location("./out") && names_a_location("s3://b/o/"));
        assert!(!names_a_location("bf-20261130-071122-5cc157"));
    }
}
