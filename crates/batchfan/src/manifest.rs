//! The versioned manifest: what every child reads to find its chunk.
//!
//! Layout (every line is JSON, so `head` shows the header):
//! ```text
//! {"batchfan_manifest":1,"header_bytes":"0000000000000412"}   preamble, fixed length
//! {"format":"batchfan-manifest","version":1,...,"chunks":[[offset,len,items,bytes],...]}
//! {"key":"a.txt","size":12,"etag":"\"...\""}                  items of chunk 0
//! {"key":"b.txt","size":9000,"etag":"\"...\"","range":[0,4096]}
//! ...                                                          items of chunk 1, ...
//! ```
//! Chunk offsets are relative to the first item line. A child reads the preamble and header
//! with one ranged read (two if the header is larger than 64 KiB) and then only its own chunk,
//! so the cost per child does not grow with the number of items. An item line is about
//! 40 bytes plus the key, plus 40 for an S3 ETag or 30 for local mtime, plus 20 for a range.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::contract::{FORMAT_NAME, FORMAT_VERSION, Header, Item, View};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::registry::StoreRegistry;
use crate::store::{self, ByteRange, Store};
use crate::uri::Location;

/// Bytes read on the first request: small manifests arrive whole, and so does the header of a
/// run of up to about 45,000 chunks (22 bytes each), so a child opens its manifest with one GET.
/// An S3 round trip costs more than the extra bytes.
const FIRST_READ: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct Preamble {
    batchfan_manifest: u64,
    header_bytes: String,
}

fn preamble(header_bytes: usize) -> String {
    format!("{{\"batchfan_manifest\":{FORMAT_VERSION},\"header_bytes\":\"{header_bytes:016}\"}}\n")
}

/// Serializes a plan as a manifest, in memory.
pub fn encode(plan: &Plan, run_id: &str, output: &Location) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(plan.items.len() * 96);
    let head = encode_body(plan, run_id, output, false, &mut body)?;
    let mut out = head;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Writes the item lines of `plan` to `body` and returns what goes before them: the preamble
/// and the header, whose chunk table holds the body offsets.
fn encode_body(plan: &Plan, run_id: &str, output: &Location, fenced: bool, body: &mut impl Write) -> Result<Vec<u8>> {
    let mut chunks = Vec::with_capacity(plan.chunks.len());
    let mut offset = 0u64;
    let mut line = Vec::with_capacity(256);
    for chunk in &plan.chunks {
        let start = offset;
        for i in chunk.first..chunk.first + chunk.count {
            line.clear();
            serde_json::to_writer(&mut line, &plan.items.get(i)).map_err(|e| encode_error(output, e))?;
            line.push(b'\n');
            body.write_all(&line).map_err(|e| Error::io("writing the manifest for", output.to_string(), e))?;
            offset += line.len() as u64;
        }
        chunks.push([start, offset - start, chunk.count as u64, chunk.bytes]);
    }
    let header = Header {
        format: FORMAT_NAME.to_string(),
        version: FORMAT_VERSION,
        run_id: run_id.to_string(),
        created_unix_ms: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
        input: plan.input.to_string(),
        output: output.to_string(),
        object_count: plan.objects as u64,
        item_count: plan.items.len() as u64,
        total_bytes: plan.total_bytes(),
        chunk_count: plan.chunks.len() as u64,
        split_bytes: plan.split_bytes,
        chunks,
        fenced,
    };
    let mut header_json = serde_json::to_vec(&header).map_err(|e| encode_error(output, e))?;
    header_json.push(b'\n');
    let mut head = preamble(header_json.len()).into_bytes();
    head.extend_from_slice(&header_json);
    Ok(head)
}

/// Writes `plan` as a manifest to `uri` without holding the encoded manifest in memory: the
/// items are staged in a temporary file, then the header and items go up in one atomic write
/// (a multipart upload on S3 for large manifests).
///
/// Children of such a manifest commit whether or not the output is claimed; a run batchfan
/// starts writes its manifest fenced by the output's claim instead (see [`Header::fenced`]).
pub async fn write_plan(stores: &StoreRegistry, uri: &str, plan: &Plan, run_id: &str, output: &Location) -> Result<()> {
    write_plan_as(stores, uri, plan, run_id, output, false).await
}

/// [`write_plan`], with [`Header::fenced`] as given.
pub(crate) async fn write_plan_as(
    stores: &StoreRegistry,
    uri: &str,
    plan: &Plan,
    run_id: &str,
    output: &Location,
    fenced: bool,
) -> Result<()> {
    let (dir, name) = Location::parse_file(uri)?;
    let store = stores.store(&dir)?;
    // Children of a run read its manifest for as long as the run lasts: never replace one. (Two
    // runs on one output are kept apart by the output's claim; this guards a shared --manifest.)
    if store.head(&name).await?.is_some() {
        return Err(Error::option(
            "--manifest",
            uri,
            "a new location: a manifest already exists there, and a manifest is never overwritten in place (the children of its run read it); choose another --manifest, or delete it if no run uses it",
        ));
    }
    let stem = std::env::temp_dir().join(format!("batchfan-manifest-{run_id}-{}", std::process::id()));
    let (body_path, full_path) = (stem.with_extension("body"), stem.with_extension("jsonl"));
    let _cleanup = crate::store::TempFiles(vec![body_path.clone(), full_path.clone()]);
    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |e| Error::io(op, path, e)
    }
    let mut body = std::io::BufWriter::new(std::fs::File::create(&body_path).map_err(io("creating", &body_path))?);
    let head = encode_body(plan, run_id, output, fenced, &mut body)?;
    body.flush().map_err(io("writing", &body_path))?;
    drop(body);
    let mut full = std::fs::File::create(&full_path).map_err(io("creating", &full_path))?;
    full.write_all(&head).map_err(io("writing", &full_path))?;
    let mut staged = std::fs::File::open(&body_path).map_err(io("reading", &body_path))?;
    std::io::copy(&mut staged, &mut full).map_err(io("writing", &full_path))?;
    full.sync_all().map_err(io("syncing", &full_path))?;
    store.put_file(&name, &full_path).await.map(drop)
}

fn encode_error(output: &Location, e: serde_json::Error) -> Error {
    Error::Manifest { uri: output.to_string(), reason: format!("could not serialize: {e}") }
}

/// Writes a view to `uri`.
pub async fn write_view(stores: &StoreRegistry, uri: &str, view: &View) -> Result<()> {
    let bytes =
        serde_json::to_vec(view).map_err(|e| Error::Manifest { uri: uri.to_string(), reason: e.to_string() })?;
    write(stores, uri, bytes).await
}

/// Writes a manifest to `uri` (a file URI: `s3://bucket/key` or a local path).
pub async fn write(stores: &StoreRegistry, uri: &str, bytes: Vec<u8>) -> Result<()> {
    let (dir, name) = Location::parse_file(uri)?;
    stores.store(&dir)?.put(&name, Bytes::from(bytes)).await
}

/// A manifest opened for reading: the header in memory, chunks read on demand.
#[derive(Debug, Clone)]
pub struct ManifestReader {
    store: Arc<dyn Store>,
    name: String,
    uri: String,
    header: Header,
    body_start: u64,
    view: Option<View>,
}

impl ManifestReader {
    /// Opens the manifest (or view of a manifest) at `uri` and reads its header.
    pub async fn open(stores: &StoreRegistry, uri: &str) -> Result<ManifestReader> {
        let (dir, name) = Location::parse_file(uri)?;
        let store = stores.store(&dir)?;
        let first =
            match store::read_all(store.as_ref(), &name, Some(ByteRange { start: 0, end: Some(FIRST_READ) }), None)
                .await
            {
                Err(Error::NotFound { .. }) => return Err(Error::NotFound { uri: uri.to_string() }),
                other => other?,
            };
        if !first.starts_with(b"{\"batchfan_view\"") {
            return Self::open_base(uri, store, name, first).await;
        }
        let whole = if first.len() as u64 == FIRST_READ {
            store::read_all(store.as_ref(), &name, None, None).await?
        } else {
            first
        };
        let view: View = serde_json::from_slice(&whole)
            .map_err(|e| Error::Manifest { uri: uri.to_string(), reason: format!("unreadable view ({e})") })?;
        if view.batchfan_view != FORMAT_VERSION {
            return Err(Error::ManifestVersion {
                uri: uri.to_string(),
                found: view.batchfan_view.into(),
                supported: FORMAT_VERSION,
            });
        }
        let mut base = Box::pin(Self::open(stores, &view.base)).await?;
        if base.view.is_some() {
            return Err(Error::Manifest {
                uri: uri.to_string(),
                reason: "a view's base must be a manifest, not another view".into(),
            });
        }
        let garbled = |reason: String| Error::Manifest { uri: uri.to_string(), reason };
        if !view.indices.is_empty() && view.indices.len() as u64 != view.count {
            return Err(garbled(format!("count is {} but {} indices are listed", view.count, view.indices.len())));
        }
        let chunks = base.header.chunk_count;
        if let Some(chunk) = (0..view.count).filter_map(|c| view.chunk_of(c)).find(|c| *c >= chunks) {
            return Err(garbled(format!("selects chunk {chunk}, beyond the base's {chunks} chunks")));
        }
        base.uri = uri.to_string();
        base.view = Some(view);
        Ok(base)
    }

    async fn open_base(uri: &str, store: Arc<dyn Store>, name: String, first: Bytes) -> Result<ManifestReader> {
        let garbled = |reason: String| Error::Manifest { uri: uri.to_string(), reason };
        let line_end = memchr::memchr(b'\n', &first).ok_or_else(|| garbled("no preamble line".into()))?;
        let preamble: Preamble = serde_json::from_slice(&first[..line_end])
            .map_err(|e| garbled(format!("the first line is not a batchfan preamble ({e})")))?;
        if preamble.batchfan_manifest != u64::from(FORMAT_VERSION) {
            return Err(Error::ManifestVersion {
                uri: uri.to_string(),
                found: preamble.batchfan_manifest,
                supported: FORMAT_VERSION,
            });
        }
        let header_len: u64 =
            preamble.header_bytes.parse().map_err(|_| garbled("header_bytes is not a number".into()))?;
        let header_start = line_end as u64 + 1;
        let body_start = header_start + header_len;
        let header_bytes = if body_start <= first.len() as u64 {
            first.slice(header_start as usize..body_start as usize)
        } else {
            let range = ByteRange { start: header_start, end: Some(body_start) };
            store::read_all(store.as_ref(), &name, Some(range), None).await?
        };
        if header_bytes.len() as u64 != header_len {
            return Err(garbled(format!("truncated: header of {header_len} bytes announced")));
        }
        let header: Header =
            serde_json::from_slice(&header_bytes).map_err(|e| garbled(format!("unreadable header ({e})")))?;
        if header.format != FORMAT_NAME || header.version != FORMAT_VERSION {
            return Err(Error::ManifestVersion {
                uri: uri.to_string(),
                found: header.version.into(),
                supported: FORMAT_VERSION,
            });
        }
        if header.chunks.len() as u64 != header.chunk_count {
            return Err(garbled(format!(
                "chunk_count is {} but the chunk table has {} entries",
                header.chunk_count,
                header.chunks.len()
            )));
        }
        Ok(ManifestReader { store, name, uri: uri.to_string(), header, body_start, view: None })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Where this manifest is.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The view, when this manifest was opened through one.
    pub fn view(&self) -> Option<&View> {
        self.view.as_ref()
    }

    /// Number of children: the view's count, or the manifest's chunk count.
    pub fn child_count(&self) -> u64 {
        self.view.as_ref().map_or(self.header.chunk_count, |v| v.count)
    }

    /// The chunk child `child` processes (through the view, if any).
    pub fn chunk_index(&self, child: u64) -> Result<u64> {
        let chunk = match &self.view {
            Some(view) => view.chunk_of(child),
            None => Some(child).filter(|c| *c < self.header.chunk_count),
        };
        chunk.ok_or_else(|| Error::IndexOutOfRange { index: child, count: self.child_count(), uri: self.uri.clone() })
    }

    /// Reads the items child `child` processes (and nothing else of the manifest).
    pub async fn chunk(&self, child: u64) -> Result<Vec<Item>> {
        let index = self.chunk_index(child)?;
        let Some(&[offset, len, count, _]) = self.header.chunks.get(index as usize) else {
            return Err(Error::IndexOutOfRange { index, count: self.header.chunk_count, uri: self.uri.clone() });
        };
        let start = self.body_start + offset;
        let range = ByteRange { start, end: Some(start + len) };
        let bytes = store::read_all(self.store.as_ref(), &self.name, Some(range), None).await?;
        let garbled = |reason: String| Error::Manifest { uri: self.uri.clone(), reason };
        if bytes.len() as u64 != len {
            return Err(garbled(format!("truncated: chunk {index} needs {len} bytes, found {}", bytes.len())));
        }
        let items = bytes
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(serde_json::from_slice::<Item>)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| garbled(format!("unreadable item in chunk {index} ({e})")))?;
        if items.len() as u64 != count {
            return Err(garbled(format!("chunk {index} should hold {count} items, found {}", items.len())));
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanOptions, plan_objects};
    use crate::store::ObjectMeta;

    #[tokio::test]
    async fn round_trip_reads_only_the_asked_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let stores = StoreRegistry::for_tests();
        let objects = (0..50)
            .map(|i| ObjectMeta {
                key: format!("f{i:03}"),
                size: i,
                etag: None,
                mtime_ns: Some(7),
                content_encoding: None,
            })
            .collect();
        let input = Location::parse("s3://bkt/in/").unwrap();
        let opts = PlanOptions { max_items_per_chunk: Some(7), ..Default::default() };
        let plan = plan_objects(&input, objects, &opts).unwrap();
        let uri = dir.path().join("m.jsonl").display().to_string();
        let output = Location::parse("s3://bkt/out").unwrap();
        write(&stores, &uri, encode(&plan, "run-1", &output).unwrap()).await.unwrap();
        let streamed = dir.path().join("streamed.jsonl");
        write_plan(&stores, &streamed.display().to_string(), &plan, "run-1", &output).await.unwrap();
        let (a, b) = (std::fs::read(&uri).unwrap(), std::fs::read(&streamed).unwrap());
        // Same bytes but for the creation time in the header.
        assert_eq!(a.len(), b.len());
        assert_eq!(a[a.len() - 2000..], b[b.len() - 2000..]);
        let reader = ManifestReader::open(&stores, &uri).await.unwrap();
        assert_eq!(reader.header().chunk_count, 8);
        assert_eq!(reader.header().run_id, "run-1");
        for i in 0..8 {
            assert_eq!(reader.chunk(i).await.unwrap(), plan.chunk_items(i as usize));
        }
        assert!(matches!(reader.chunk(8).await, Err(Error::IndexOutOfRange { index: 8, count: 8, .. })));

        // Views map child indices to chunks of the base.
        let view_uri = dir.path().join("v.json").display().to_string();
        write_view(&stores, &view_uri, &View::indices(&uri, vec![6, 2])).await.unwrap();
        let view = ManifestReader::open(&stores, &view_uri).await.unwrap();
        assert_eq!(view.child_count(), 2);
        assert_eq!(view.chunk_index(0).unwrap(), 6);
        assert_eq!(view.chunk(1).await.unwrap(), plan.chunk_items(2));
        assert!(matches!(view.chunk(2).await, Err(Error::IndexOutOfRange { index: 2, count: 2, .. })));
        write_view(&stores, &view_uri, &View::range(&uri, 5, 3)).await.unwrap();
        let view = ManifestReader::open(&stores, &view_uri).await.unwrap();
        assert_eq!(view.chunk(2).await.unwrap(), plan.chunk_items(7));
        write_view(&stores, &view_uri, &View::range(&uri, 5, 4)).await.unwrap();
        assert!(matches!(ManifestReader::open(&stores, &view_uri).await, Err(Error::Manifest { .. })));
    }

    #[tokio::test]
    async fn a_header_larger_than_the_first_read_is_read_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let stores = StoreRegistry::for_tests();
        let objects = (0..60_000)
            .map(|i| ObjectMeta {
                key: format!("f{i:05}"),
                size: 1_000_000 + i,
                etag: None,
                mtime_ns: Some(7),
                content_encoding: None,
            })
            .collect();
        let input = Location::parse("s3://bkt/in/").unwrap();
        // Several arrays' worth of chunks: the header outgrows the first read.
        let opts = PlanOptions { max_items_per_chunk: Some(1), max_chunks: 60_000, ..Default::default() };
        let plan = plan_objects(&input, objects, &opts).unwrap();
        let uri = dir.path().join("m.jsonl").display().to_string();
        write_plan(&stores, &uri, &plan, "run-big", &Location::parse("s3://bkt/out").unwrap()).await.unwrap();
        let reader = ManifestReader::open(&stores, &uri).await.unwrap();
        assert!(reader.body_start > FIRST_READ, "the header spans {} bytes", reader.body_start);
        assert_eq!(reader.header().chunk_count, 60_000);
        for i in [0, 29_999, 59_999] {
            assert_eq!(reader.chunk(i).await.unwrap(), plan.chunk_items(i as usize));
        }
    }

    #[tokio::test]
    async fn garbled_and_future_manifests_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let stores = StoreRegistry::for_tests();
        let garbled = dir.path().join("garbled");
        std::fs::write(&garbled, b"{\"hello\":1}\nrest").unwrap();
        let err = ManifestReader::open(&stores, &garbled.display().to_string()).await.unwrap_err();
        assert!(matches!(err, Error::Manifest { .. }), "{err}");
        let future = dir.path().join("future");
        std::fs::write(&future, b"{\"batchfan_manifest\":9,\"header_bytes\":\"0000000000000002\"}\n{}\n").unwrap();
        let err = ManifestReader::open(&stores, &future.display().to_string()).await.unwrap_err();
        assert!(matches!(err, Error::ManifestVersion { found: 9, .. }), "{err}");
        let err = ManifestReader::open(&stores, &dir.path().join("missing").display().to_string()).await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
    }
}
