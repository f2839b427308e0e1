//! Incremental runs: what earlier runs in an output already committed (`--skip-done OUTPUT`),
//! so a daily re-plan of the same prefix processes only new or changed objects.

use futures_util::{StreamExt, TryStreamExt};

use crate::contract::{self, Item, META_DIR, Marker, RUN_RECORD_NAME};
use crate::error::{Error, Result};
use crate::items::Items;
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

/// Objects earlier runs committed: every committed item (object, or byte range of one) in the
/// compact item store, in the order the runs were read, then sorted by key keeping that order
/// among equal keys (the newest sighting of a key last): the key's bytes plus 44 an object, where
/// the map of strings it replaced took the key plus about 200 (key, version text and ranges on
/// the heap, and the table's slots).
#[derive(Debug, Default)]
pub struct DoneItems {
    items: Items,
    runs: usize,
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
            // What an older run saw of an object a newer one saw again is dropped as runs are
            // read: the store grows with the objects, not with the runs.
            done.settle();
        }
        Ok(done)
    }

    /// Adds what `other` knows after what this knows (outputs read one after the other).
    fn merge(&mut self, other: DoneItems) {
        self.runs += other.runs;
        if self.items.is_empty() {
            self.items = other.items;
            return;
        }
        for i in 0..other.items.len() {
            self.items.push(&other.items.meta(i), other.items.range(i));
        }
        self.settle();
    }

    /// Sorts by key (keeping the order items were seen in among equal keys) and keeps of each
    /// key only its newest sighting: the last item, with the items before it of its version.
    fn settle(&mut self) {
        let items = std::mem::take(&mut self.items).sorted_stable();
        let mut keep = vec![false; items.len()];
        let mut end = items.len();
        while let Some(last) = end.checked_sub(1) {
            let (size, etag, mtime) = (items.size(last), items.etag(last), items.mtime_ns(last));
            let mut first = last;
            while first > 0 && items.key(first - 1) == items.key(last) {
                first -= 1;
            }
            for i in (first..=last).rev() {
                if !same_version(&items, i, size, etag.as_deref(), mtime) {
                    break;
                }
                keep[i] = true;
            }
            end = first;
        }
        self.items = items.filter(|_, i| keep[i]);
    }

    fn add(&mut self, item: Item) {
        let meta = ObjectMeta {
            key: item.key,
            size: item.size,
            etag: item.etag,
            mtime_ns: item.mtime_ns,
            content_encoding: None,
        };
        self.items.push(&meta, item.range);
    }

    /// Whether `object`, as listed now, was committed whole (every byte range) at this version.
    /// Only the newest sighting of the object counts: the last of its items, with the items
    /// before it of the same version.
    pub fn contains(&self, object: &ObjectMeta) -> bool {
        // Settled: a key's items are its newest sighting, all of one version.
        let seen = self.items.equal_range(&object.key);
        let Some(newest) = seen.clone().last() else { return false };
        if !same_version(&self.items, newest, object.size, object.etag.as_deref(), object.mtime_ns) {
            return false;
        }
        let mut ranges: Vec<[u64; 2]> = seen.map(|i| self.items.range(i).unwrap_or([0, object.size])).collect();
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

/// Whether item `i` is the version of an object of `size`, `etag` and `mtime_ns`, as
/// [`ObjectMeta::version_text`] tells versions apart (the ETag, else the modification time), and
/// of the same size.
fn same_version(items: &Items, i: usize, size: u64, etag: Option<&str>, mtime_ns: Option<u64>) -> bool {
    items.size(i) == size
        && match (items.etag(i), etag) {
            (Some(a), Some(b)) => a == b,
            (None, None) => items.mtime_ns(i) == mtime_ns,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, etag: &str, range: Option<[u64; 2]>) -> Item {
        Item {
            key: key.into(),
            size: 100,
            etag: Some(format!("\"{etag}\"")),
            mtime_ns: None,
            content_encoding: None,
            range,
        }
    }

    fn listed(key: &str, etag: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: 100,
            etag: Some(format!("\"{etag}\"")),
            mtime_ns: None,
            content_encoding: None,
        }
    }

    fn done(runs: &[&[Item]]) -> DoneItems {
        let mut all = DoneItems::default();
        for run in runs {
            let mut one = DoneItems::default();
            for item in run.iter().cloned() {
                one.add(item);
            }
            one.settle();
            all.merge(one);
        }
        all
    }

    #[test]
    fn only_whole_objects_of_the_newest_version_are_done() {
        let (v1, v2) = ("0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210");
        let d = done(&[
            &[item("whole", v1, None), item("split", v1, Some([0, 60])), item("split", v1, Some([60, 100]))],
            &[item("half", v1, Some([0, 50])), item("changed", v1, None), item("z", v1, None)],
            &[item("changed", v2, Some([0, 10])), item("back", v2, None)],
            &[item("back", v1, Some([0, 100]))],
        ]);
        // whole, split (2), half, changed (v2's range only), z, back (v1 whole only).
        assert_eq!(d.items.len(), 7, "older sightings dropped");
        assert!(d.contains(&listed("whole", v1)));
        assert!(!d.contains(&listed("whole", v2)), "another version");
        assert!(d.contains(&listed("split", v1)), "every range committed");
        assert!(!d.contains(&listed("half", v1)), "half of it");
        assert!(!d.contains(&listed("changed", v1)), "the newest sighting is v2");
        assert!(!d.contains(&listed("changed", v2)), "v2 only in part");
        assert!(d.contains(&listed("back", v1)), "the newest sighting is v1 again, whole");
        assert!(!d.contains(&listed("back", v2)));
        assert!(!d.contains(&listed("never", v1)));
        assert!(d.contains(&listed("z", v1)));
        assert!(!d.contains(&ObjectMeta { size: 99, ..listed("z", v1) }), "another size");
    }
}
