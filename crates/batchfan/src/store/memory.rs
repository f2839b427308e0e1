//! A store in memory: for tests of everything above the stores (the run lifecycle, planning,
//! manifests) without a server or a disk, and for callers who want one. Each write gives the
//! object a new version, reported as its ETag, so version-pinned reads behave as on S3.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ByteRange, ByteStream, ObjectMeta, ObjectStream, Store};
use crate::error::{Error, Result};
use crate::uri::Location;

/// Objects in memory under a location (register it with [`crate::ClientBuilder::with_store`]).
#[derive(Debug)]
pub struct MemoryStore {
    location: Location,
    objects: Mutex<Objects>,
}

#[derive(Debug, Default)]
struct Objects {
    by_key: BTreeMap<String, (Bytes, u64)>,
    /// The version the next write gets.
    next: u64,
}

impl MemoryStore {
    /// An empty store known as `location`.
    pub fn new(location: Location) -> MemoryStore {
        MemoryStore { location, objects: Mutex::new(Objects::default()) }
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, Objects> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn meta(key: &str, body: &Bytes, version: u64) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size: body.len() as u64,
            etag: Some(format!("\"v{version}\"")),
            mtime_ns: None,
            content_encoding: None,
        }
    }

    fn write(&self, key: &str, body: Bytes) -> ObjectMeta {
        let mut objects = self.objects();
        objects.next += 1;
        let version = objects.next;
        let meta = Self::meta(key, &body, version);
        objects.by_key.insert(key.to_string(), (body, version));
        meta
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn location(&self) -> &Location {
        &self.location
    }

    async fn check_root(&self) -> Result<()> {
        Ok(())
    }

    fn list<'a>(&'a self, prefix: &str) -> ObjectStream<'a> {
        let listed: Vec<Result<ObjectMeta>> = self
            .objects()
            .by_key
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (body, version))| Ok(Self::meta(k, body, *version)))
            .collect();
        Box::pin(futures_util::stream::iter(listed))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        Ok(self.objects().by_key.get(key).map(|(body, version)| Self::meta(key, body, *version)))
    }

    async fn get(&self, key: &str, range: Option<ByteRange>, expect: Option<&ObjectMeta>) -> Result<ByteStream> {
        let uri = self.location.join_display(key);
        let (body, version) = match self.objects().by_key.get(key) {
            Some((body, version)) => (body.clone(), *version),
            None if expect.is_some() => {
                return Err(Error::InputChanged {
                    uri,
                    expected: expect.map(ObjectMeta::version_text).unwrap_or_default(),
                });
            }
            None => return Err(Error::NotFound { uri }),
        };
        if let Some(expect) = expect
            && Self::meta(key, &body, version).version() != expect.version()
        {
            return Err(Error::InputChanged { uri, expected: expect.version_text() });
        }
        let len = body.len() as u64;
        let (start, end) = range.map_or((0, len), |r| (r.start.min(len), r.end.unwrap_or(len).min(len)));
        let part = body.slice(start as usize..end.max(start) as usize);
        Ok(Box::pin(futures_util::stream::once(async move { Ok(part) })))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        self.write(key, body);
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        let mut objects = self.objects();
        if objects.by_key.contains_key(key) {
            return Ok(false);
        }
        objects.next += 1;
        let version = objects.next;
        objects.by_key.insert(key.to_string(), (body, version));
        Ok(true)
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<ObjectMeta> {
        let body = tokio::fs::read(path).await.map_err(|e| Error::io("reading", path, e))?;
        Ok(self.write(key, Bytes::from(body)))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.objects().by_key.remove(key);
        Ok(())
    }
}
