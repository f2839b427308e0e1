//! Incremental runs: what earlier runs in an output already committed (`--skip-done OUTPUT`),
//! so a daily re-plan of the same prefix processes only new or changed objects.

use std::collections::HashMap;

use futures_util::{StreamExt, TryStreamExt};

use crate::contract::{self, Item, META_DIR, Marker, RUN_RECORD_NAME};
use crate::error::{Error, Result};
use crate::manifest::ManifestReader;
use crate::plan::{Plan, PlanOptions};
use crate::registry::StoreRegistry;
use crate::store::{ObjectMeta, read_all};
use crate::uri::Location;

/// What a run record says that matters here.
#[derive(serde::Deserialize)]
struct RecordFields {
    run_id: String,
    manifest: String,
}

/// Plans `input` (as [`crate::plan::plan`]), leaving out the objects that runs recorded in
/// `options.skip_done` committed.
pub async fn plan(stores: &StoreRegistry, input: &Location, options: &PlanOptions) -> Result<Plan> {
    options.validate()?;
    let mut done = DoneItems::default();
    for output in &options.skip_done {
        done.merge(DoneItems::read(stores, output).await?);
    }
    crate::plan::plan_with(stores, input, options, &|o| done.contains(o)).await
}

/// Markers read at once.
const MARKER_READS: usize = 32;

/// Objects earlier runs committed, by key: the version they had and the byte ranges of them
/// that were committed (whole objects as one range).
#[derive(Debug, Default)]
pub struct DoneItems {
    objects: HashMap<String, Done>,
    runs: usize,
}

#[derive(Debug, Default)]
struct Done {
    version: String,
    size: u64,
    ranges: Vec<[u64; 2]>,
}

impl DoneItems {
    /// Reads every run recorded under `output`: its run record, the completion markers of its
    /// chunks and, for the committed chunks, their items in the run's manifest. Items a chunk
    /// committed without (`exec --item-failures skip`) are not done.
    pub async fn read(stores: &StoreRegistry, output: &str) -> Result<DoneItems> {
        let output = output.trim_end_matches('/');
        let runs_at = Location::parse(&format!("{output}/{META_DIR}/runs/"))?;
        let runs = stores.store(&runs_at)?;
        let records: Vec<String> = match runs
            .list("")
            .try_filter(|m| futures_util::future::ready(m.key.ends_with(&format!("/{RUN_RECORD_NAME}"))))
            .map_ok(|m| m.key)
            .try_collect()
            .await
        {
            Err(Error::NotFound { .. }) => Vec::new(),
            other => other?,
        };
        let out_store = stores.store(&Location::parse(output)?)?;
        let mut done = DoneItems::default();
        for key in records {
            let bytes = read_all(runs.as_ref(), &key, None, None).await?;
            // The two fields needed, read without the run module (which plans through here).
            let record: RecordFields = serde_json::from_slice(&bytes)
                .map_err(|e| unreadable(&runs_at.join_display(&key), "run record", &e))?;
            let marker_keys: Vec<String> = match crate::listing::list(
                out_store.as_ref(),
                &contract::marker_prefix(&record.run_id),
                crate::listing::DEFAULT_CONCURRENCY,
            )
            .map_ok(|m| m.key)
            .try_collect()
            .await
            {
                Err(Error::NotFound { .. }) => Vec::new(),
                other => other?,
            };
            if marker_keys.is_empty() {
                continue;
            }
            let markers: Vec<Marker> = futures_util::stream::iter(marker_keys)
                .map(|key| {
                    let store = out_store.clone();
                    async move {
                        let bytes = read_all(store.as_ref(), &key, None, None).await?;
                        serde_json::from_slice::<Marker>(&bytes).map_err(|e| unreadable(&key, "completion marker", &e))
                    }
                })
                .buffer_unordered(MARKER_READS)
                .try_collect()
                .await?;
            let manifest = ManifestReader::open(stores, &record.manifest).await?;
            // Each committed chunk's items are a ranged read of the manifest: several at once
            // (10,000 chunks at 30 ms a read: 5 minutes one after another, 10 s 32 at a time).
            let mut chunks = futures_util::stream::iter(markers)
                .map(|marker| {
                    let manifest = &manifest;
                    async move { manifest.chunk(marker.index).await.map(|items| (marker, items)) }
                })
                .buffered(MARKER_READS);
            while let Some((marker, items)) = chunks.try_next().await? {
                let skipped: Vec<(&str, Option<[u64; 2]>)> =
                    marker.skipped.iter().map(|s| (s.key.as_str(), s.range)).collect();
                for item in items {
                    if !skipped.contains(&(item.key.as_str(), item.range)) {
                        done.add(item);
                    }
                }
            }
            done.runs += 1;
        }
        Ok(done)
    }

    /// Adds what `other` knows (outputs read one after the other).
    fn merge(&mut self, other: DoneItems) {
        self.runs += other.runs;
        for (key, done) in other.objects {
            match self.objects.get_mut(&key) {
                Some(mine) if mine.version == done.version => mine.ranges.extend(done.ranges),
                _ => {
                    self.objects.insert(key, done);
                }
            }
        }
    }

    fn add(&mut self, item: Item) {
        let version = version_of(&item.key, item.size, item.etag.clone(), item.mtime_ns);
        let range = item.range.unwrap_or([0, item.size]);
        let entry = self.objects.entry(item.key).or_default();
        if entry.version != version {
            // Another version of the object: only the newest sighting's ranges count.
            *entry = Done { version, size: item.size, ranges: Vec::new() };
        }
        entry.ranges.push(range);
    }

    /// Whether `object`, as listed now, was committed whole (every byte range) at this version.
    pub fn contains(&self, object: &ObjectMeta) -> bool {
        let Some(done) = self.objects.get(&object.key) else { return false };
        let now = version_of(&object.key, object.size, object.etag.clone(), object.mtime_ns);
        if done.version != now || done.size != object.size {
            return false;
        }
        let mut ranges = done.ranges.clone();
        ranges.sort_unstable();
        let mut covered = 0;
        for [start, end] in ranges {
            if start > covered {
                return false;
            }
            covered = covered.max(end);
        }
        covered >= object.size
    }

    /// Runs read.
    pub fn runs(&self) -> usize {
        self.runs
    }
}

fn unreadable(what: &str, kind: &str, e: &serde_json::Error) -> Error {
    Error::option(
        "--skip-done",
        what,
        format!("holds a {kind} this batchfan cannot read ({e}): name an output of batchfan runs"),
    )
}

fn version_of(key: &str, size: u64, etag: Option<String>, mtime_ns: Option<u64>) -> String {
    ObjectMeta { key: key.to_string(), size, etag, mtime_ns, content_encoding: None }.version_text()
}
