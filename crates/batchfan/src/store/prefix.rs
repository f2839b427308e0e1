//! A store below another: a sub-location of a registered store, with keys relative to it.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;

use super::{ByteRange, ByteStream, ListPage, ObjectMeta, ObjectStream, PageRequest, Store};
use crate::error::Result;
use crate::uri::Location;

/// `inner` seen from `prefix` down: key `k` here is `prefix + k` there. Wraps any store without
/// touching it (object_store's `PrefixStore` is the model).
#[derive(Debug, Clone)]
pub struct PrefixStore {
    inner: Arc<dyn Store>,
    prefix: String,
    location: Location,
}

impl PrefixStore {
    /// The part of `inner` under `prefix` (empty, or ending with `/`), known as `location`.
    pub fn new(inner: Arc<dyn Store>, prefix: &str, location: Location) -> PrefixStore {
        PrefixStore { inner, prefix: prefix.to_string(), location }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn strip(&self, mut meta: ObjectMeta) -> ObjectMeta {
        meta.key = meta.key.strip_prefix(self.prefix.as_str()).unwrap_or(&meta.key).to_string();
        meta
    }
}

#[async_trait]
impl Store for PrefixStore {
    fn location(&self) -> &Location {
        &self.location
    }

    async fn check_root(&self) -> Result<()> {
        self.inner.check_root().await
    }

    fn list<'a>(&'a self, prefix: &str) -> ObjectStream<'a> {
        Box::pin(self.inner.list(&self.full(prefix)).map_ok(move |meta| self.strip(meta)))
    }

    async fn list_page(&self, request: &PageRequest) -> Result<Option<ListPage>> {
        let inner = PageRequest {
            prefix: self.full(&request.prefix),
            start_after: request.start_after.as_deref().map(|k| self.full(k)),
            delimiter: request.delimiter,
            token: request.token.clone(),
            max_keys: request.max_keys,
        };
        let Some(mut page) = self.inner.list_page(&inner).await? else { return Ok(None) };
        let strip = |k: String| k.strip_prefix(self.prefix.as_str()).map(str::to_string).unwrap_or(k);
        page.objects = page.objects.into_iter().map(|m| self.strip(m)).collect();
        page.common_prefixes = page.common_prefixes.into_iter().map(strip).collect();
        page.last_key = page.last_key.map(strip);
        Ok(Some(page))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        Ok(self.inner.head(&self.full(key)).await?.map(|m| self.strip(m)))
    }

    async fn get(&self, key: &str, range: Option<ByteRange>, expect: Option<&ObjectMeta>) -> Result<ByteStream> {
        let expect = expect.map(|m| ObjectMeta { key: self.full(&m.key), ..m.clone() });
        self.inner.get(&self.full(key), range, expect.as_ref()).await
    }

    async fn get_encoded(
        &self,
        key: &str,
        range: Option<ByteRange>,
        expect: Option<&ObjectMeta>,
    ) -> Result<(ByteStream, Option<String>)> {
        let expect = expect.map(|m| ObjectMeta { key: self.full(&m.key), ..m.clone() });
        self.inner.get_encoded(&self.full(key), range, expect.as_ref()).await
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        self.inner.put(&self.full(key), body).await
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        self.inner.put_if_absent(&self.full(key), body).await
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<ObjectMeta> {
        let mut meta = self.inner.put_file(&self.full(key), path).await?;
        meta.key = key.to_string();
        Ok(meta)
    }

    async fn abort_uploads(&self, prefix: &str) -> Result<u64> {
        self.inner.abort_uploads(&self.full(prefix)).await
    }

    fn parallel_reads(&self) -> bool {
        self.inner.parallel_reads()
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(&self.full(key)).await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        let full: Vec<String> = keys.iter().map(|k| self.full(k)).collect();
        self.inner.delete_many(&full).await
    }
}
