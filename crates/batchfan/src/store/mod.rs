//! One async trait over object storage, with an S3 backend, a local-folder backend and an
//! in-memory one.
//!
//! Keys are relative to the store's root location and use `/` as separator on every backend,
//! so the same plan comes out of an S3 prefix and a local folder holding the same files.

mod list_xml;
mod local;
mod memory;
mod prefix;
mod s3;

use std::fmt;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

pub use self::local::LocalStore;
pub use self::local::process_alive;
pub use self::memory::MemoryStore;
pub use self::prefix::PrefixStore;
pub use self::s3::S3Store;
use crate::error::{Error, Result};
use crate::uri::Location;

/// Temporary files removed when dropped (on every path out, errors included).
pub(crate) struct TempFiles(pub(crate) Vec<std::path::PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A stream of bytes read from a store.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// A stream of listed objects, in no particular order.
pub type ObjectStream<'a> = Pin<Box<dyn Stream<Item = Result<ObjectMeta>> + Send + 'a>>;

/// An object found by listing: its key (relative to the store root), size and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Key relative to the store's root, `/`-separated.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// S3 ETag (with its quotes), when the store is S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Modification time in nanoseconds since the Unix epoch: the file's, or S3's `LastModified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<u64>,
    /// `Content-Encoding` of an S3 object (from HEAD; listings do not carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
}

impl ObjectMeta {
    /// The version an object has as a short string, for comparing two sightings of one key:
    /// the S3 ETag, or `MTIME_NS/SIZE` for local files (a rename keeps the writer's mtime, so
    /// another writer's later file differs). `None` when the store knows neither.
    pub fn version(&self) -> Option<String> {
        match (&self.etag, self.mtime_ns) {
            (Some(etag), _) => Some(etag.clone()),
            (None, Some(mtime)) => Some(format!("{mtime}/{}", self.size)),
            (None, None) => None,
        }
    }

    /// The version as text for messages: the ETag, or `mtime_ns=..,size=..`.
    pub fn version_text(&self) -> String {
        match (&self.etag, self.mtime_ns) {
            (Some(etag), _) => format!("ETag {etag}"),
            (None, Some(mtime)) => format!("mtime_ns={mtime}, size={}", self.size),
            (None, None) => format!("size={}", self.size),
        }
    }
}

/// A byte range `start..end` (end exclusive; `None` reads to the end of the object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte, or `None` for the rest of the object.
    pub end: Option<u64>,
}

/// One request of a listing in key order (S3's ListObjectsV2): keys starting with `prefix`,
/// greater than `start_after`, grouped by `delimiter`, continuing from `token`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageRequest {
    /// Keys start with this (relative to the store's root).
    pub prefix: String,
    /// Only keys greater than this (byte order), relative to the root; ignored with `token`.
    pub start_after: Option<String>,
    /// Group keys by their part up to this character after `prefix` (S3 `Delimiter`).
    pub delimiter: Option<char>,
    /// The `next` of the page before.
    pub token: Option<String>,
    /// Most keys in the page (S3 `MaxKeys`; S3 returns at most 1,000, the default).
    pub max_keys: Option<u32>,
}

impl PageRequest {
    /// The first page of the keys under `prefix`.
    pub fn new(prefix: &str) -> PageRequest {
        PageRequest { prefix: prefix.to_string(), ..PageRequest::default() }
    }

    /// Only keys greater than `key`.
    pub fn start_after(mut self, key: Option<String>) -> PageRequest {
        self.start_after = key;
        self
    }

    /// Keys grouped by `delimiter` (their common prefixes come back instead of them).
    pub fn delimiter(mut self, delimiter: char) -> PageRequest {
        self.delimiter = Some(delimiter);
        self
    }

    /// The page after the one that returned `token`.
    pub fn token(mut self, token: Option<String>) -> PageRequest {
        self.token = token;
        self
    }

    /// At most `keys` keys in the page.
    pub fn max_keys(mut self, keys: Option<u32>) -> PageRequest {
        self.max_keys = keys;
        self
    }
}

/// One page of a listing in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListPage {
    /// The objects of the page, in key order (folder markers left out).
    pub objects: Vec<ObjectMeta>,
    /// Common prefixes (with a delimiter), in key order.
    pub common_prefixes: Vec<String>,
    /// The greatest key the page returned, folder markers included.
    pub last_key: Option<String>,
    /// Continuation token of the next page; `None` on the last one.
    pub next: Option<String>,
}

/// Object storage as batchfan needs it.
///
/// `put` and `put_file` are atomic: readers see the old object, no object, or the whole new one,
/// never a part. `get` with `expect` fails with [`crate::Error::InputChanged`] when the object's
/// version (S3 ETag, or local mtime and size) differs from the one given.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// The root location of this store.
    fn location(&self) -> &Location;

    /// Checks that the root exists (the bucket, or the folder).
    async fn check_root(&self) -> Result<()>;

    /// Lists every object whose key starts with `prefix`, recursively, as it is found.
    fn list<'a>(&'a self, prefix: &str) -> ObjectStream<'a>;

    /// One page of a listing in key order, for listings split into key ranges listed at once
    /// ([`crate::listing`]). `None` (the default) when the store has no such listing; callers
    /// then use [`Store::list`].
    async fn list_page(&self, request: &PageRequest) -> Result<Option<ListPage>> {
        let _ = request;
        Ok(None)
    }

    /// Metadata of one object, or `None` when it does not exist.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>>;

    /// Reads an object (or a range of it), optionally pinned to the version in `expect`.
    async fn get(&self, key: &str, range: Option<ByteRange>, expect: Option<&ObjectMeta>) -> Result<ByteStream>;

    /// Like [`Store::get`], and also returns the object's `Content-Encoding` when the backend
    /// keeps one (S3 does; local files have none).
    async fn get_encoded(
        &self,
        key: &str,
        range: Option<ByteRange>,
        expect: Option<&ObjectMeta>,
    ) -> Result<(ByteStream, Option<String>)> {
        Ok((self.get(key, range, expect).await?, None))
    }

    /// Writes an object atomically from memory.
    async fn put(&self, key: &str, body: Bytes) -> Result<()>;

    /// Writes an object atomically only if no object has the key; `false` when one had. Local:
    /// a complete temporary file linked into place (a link fails when the name exists); S3:
    /// `If-None-Match: *`. The default, for stores of callers, is a check then a write, which
    /// two writers can both pass: override it where the backend has a conditional write.
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        if self.head(key).await?.is_some() {
            return Ok(false);
        }
        self.put(key, body).await?;
        Ok(true)
    }

    /// Writes an object atomically from a local file (multipart on S3 for large files) and
    /// returns what was written: its key, size and version (S3 ETag, or local mtime).
    async fn put_file(&self, key: &str, path: &Path) -> Result<ObjectMeta>;

    /// Aborts the unfinished multipart uploads under `prefix` (what writers killed mid-upload
    /// leave: invisible, but billed until aborted); returns how many. Stores without multipart
    /// uploads have none (the default).
    async fn abort_uploads(&self, prefix: &str) -> Result<u64> {
        let _ = prefix;
        Ok(0)
    }

    /// Whether one object reads faster as parallel ranged GETs than as one stream: true for
    /// network stores, false (the default) for local files, which one stream reads fastest.
    fn parallel_reads(&self) -> bool {
        false
    }

    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Deletes many objects (S3: `DeleteObjects`, 1,000 keys a request); missing ones are fine.
    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }
}

/// How one object is read: in parts of `part_size` bytes with up to `concurrency` ranged GETs in
/// flight, yielded in order. One S3 stream rarely fills a container's network link; a few
/// parallel ranges do, at the cost of holding up to `2 x concurrency` parts in memory (a window
/// twice the requests in flight; measured on s3s-fs, a whole worker reading 1 GiB peaked at 86
/// MiB RSS at 4 x 8 MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Bytes per ranged GET (spans up to this size are read with one GET).
    pub part_size: u64,
    /// Ranged GETs in flight at once (1: one GET per object, streamed).
    pub concurrency: usize,
}

impl Default for ReadOptions {
    /// 8 MiB parts, 4 in flight.
    fn default() -> Self {
        ReadOptions { part_size: 8 << 20, concurrency: 4 }
    }
}

/// Reads `start..end` of `key` as [`ReadOptions`] say, every GET pinned to `expect`. Requests
/// start when the stream is first polled.
pub fn get_parts(
    store: Arc<dyn Store>,
    key: &str,
    start: u64,
    end: u64,
    expect: Option<&ObjectMeta>,
    read: ReadOptions,
) -> ByteStream {
    let key = key.to_string();
    let expect = expect.cloned();
    let part = read.part_size.max(1);
    if read.concurrency <= 1 || end.saturating_sub(start) <= part {
        let one = async move { store.get(&key, Some(ByteRange { start, end: Some(end) }), expect.as_ref()).await };
        return Box::pin(futures_util::stream::once(one).try_flatten());
    }
    let ranges =
        (start..end).step_by(part as usize).map(move |s| ByteRange { start: s, end: Some((s + part).min(end)) });
    // `concurrency` requests in flight, but a window of twice as many parts: a part that arrived
    // before the one the reader waits for frees its request slot at once, so a slow part does
    // not stall the others (measured on s3s-fs, 1 GiB at 4 x 8 MiB: 241 MiB/s with the window
    // equal to the requests, 0.62x four raw curl streams).
    let in_flight = Arc::new(tokio::sync::Semaphore::new(read.concurrency));
    let parts = futures_util::stream::iter(ranges)
        .map(move |range| {
            let (store, key, expect, in_flight) = (store.clone(), key.clone(), expect.clone(), in_flight.clone());
            // A part is buffered as the blocks it arrived in: no copy into one buffer.
            async move {
                let _slot = in_flight.acquire_owned().await.map_err(|_| Error::Interrupted)?;
                store.get(&key, Some(range), expect.as_ref()).await?.try_collect::<Vec<Bytes>>().await
            }
        })
        .buffered(read.concurrency * 2)
        .map_ok(|blocks| futures_util::stream::iter(blocks.into_iter().map(Ok)))
        .try_flatten();
    Box::pin(parts)
}

/// Lists everything under `prefix` into memory.
pub async fn list_all(store: &dyn Store, prefix: &str) -> Result<Vec<ObjectMeta>> {
    store.list(prefix).try_collect().await
}

/// Reads a whole object (or range) into memory.
pub async fn read_all(
    store: &dyn Store,
    key: &str,
    range: Option<ByteRange>,
    expect: Option<&ObjectMeta>,
) -> Result<Bytes> {
    let mut stream = store.get(key, range, expect).await?;
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
    }
    Ok(buf.freeze())
}
