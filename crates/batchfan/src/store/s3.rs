//! S3 (and S3-compatible servers such as moto) as a store, through aws-sdk-s3.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use futures_util::TryStreamExt;

use super::list_xml::ListXml;
use super::{ByteRange, ByteStream, ListPage, ObjectMeta, ObjectStream, PageRequest, Store};
use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::uri::Location;

/// Files above this size are uploaded in parts (each part a request; the object appears
/// only when the upload completes, so the commit stays atomic).
const MULTIPART_THRESHOLD: u64 = 64 << 20;
const PART_SIZE: usize = 16 << 20;
/// Most keys one DeleteObjects request takes.
const DELETE_BATCH: usize = 1_000;

/// An S3 prefix; keys are relative to it.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: S3Client,
    bucket: String,
    prefix: String,
    location: Location,
    /// Listing pages whose XML the SDK's decoder read (`list_xml` did not understand them).
    sdk_pages: Arc<AtomicU64>,
}

/// The SDK client a store uses: given, or a batchfan client's, made on its first request.
#[derive(Clone)]
enum S3Client {
    Sdk(Client),
    Lazy(Arc<Aws>),
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            S3Client::Sdk(_) => "Sdk",
            S3Client::Lazy(_) => "Lazy",
        })
    }
}

impl S3Store {
    /// A store over `s3://bucket/prefix` (prefix empty or ending with `/`) through `client`.
    pub fn new(client: Client, bucket: &str, prefix: &str) -> Self {
        Self::build(S3Client::Sdk(client), bucket, prefix)
    }

    /// A store through a batchfan client's S3 client, which is made on the first request.
    pub(crate) fn lazy(aws: Arc<Aws>, bucket: &str, prefix: &str) -> Self {
        Self::build(S3Client::Lazy(aws), bucket, prefix)
    }

    fn build(client: S3Client, bucket: &str, prefix: &str) -> Self {
        let location = Location::S3 { bucket: bucket.to_string(), prefix: prefix.to_string() };
        S3Store { client, bucket: bucket.to_string(), prefix: prefix.to_string(), location, sdk_pages: Arc::default() }
    }

    /// Pages of listings this store (and its clones) left to the SDK's XML decoder: 0 unless a
    /// server answers ListObjectsV2 with XML the fast reader does not take (CDATA, a DTD,
    /// url-encoded keys). Such pages are read correctly, at about four times the CPU.
    pub fn listing_pages_read_by_sdk(&self) -> u64 {
        self.sdk_pages.load(Ordering::Relaxed)
    }

    async fn sdk(&self) -> &Client {
        match &self.client {
            S3Client::Sdk(client) => client,
            S3Client::Lazy(aws) => aws.s3().await,
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// One GetObject, pinned by If-Match when `etag` is given; `None` when the range starts at
    /// the object's end.
    async fn send_get(
        &self,
        key: &str,
        range: Option<ByteRange>,
        etag: Option<&str>,
        expect: Option<&ObjectMeta>,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>> {
        let mut request = self.sdk().await.get_object().bucket(&self.bucket).key(self.full(key));
        if let Some(range) = range {
            request = request.range(match range.end {
                Some(end) => format!("bytes={}-{}", range.start, end - 1),
                None => format!("bytes={}-", range.start),
            });
        }
        if let Some(etag) = etag {
            request = request.if_match(etag);
        }
        match request.send().await {
            Ok(output) => Ok(Some(output)),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                // A pinned object that is gone (404) changed since planning, as one whose ETag differs.
                if status == Some(412) || (status == Some(404) && expect.is_some()) {
                    return Err(Error::InputChanged {
                        uri: self.location.join_display(key),
                        expected: expect
                            .map(ObjectMeta::version_text)
                            .unwrap_or_else(|| format!("ETag {}", etag.unwrap_or("?"))),
                    });
                }
                if status == Some(416) {
                    return Ok(None);
                }
                Err(self.error("GetObject", key, e))
            }
        }
    }

    /// ` (endpoint URL)` when the client has a custom endpoint, for messages about failures to reach it.
    fn endpoint_note(&self) -> String {
        let endpoint = match &self.client {
            S3Client::Sdk(_) => None, // the SDK's Config does not tell its endpoint
            S3Client::Lazy(aws) => aws.endpoint_if_made(),
        };
        endpoint.map(|u| format!(" (endpoint {u})")).unwrap_or_default()
    }

    fn error<E>(&self, op: &'static str, key: &str, err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let Some(e) = crate::error::environment_error(&err) {
            return e;
        }
        let uri = self.location.join_display(key);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_string);
        match (&err, code.as_deref(), status) {
            (_, Some("NoSuchBucket"), _) => Error::NoSuchBucket { bucket: self.bucket.clone() },
            (_, Some("NoSuchKey" | "NotFound"), _) | (_, _, Some(404)) => Error::NotFound { uri },
            (SdkError::ServiceError(_), _, _) => {
                let transient = matches!(status, Some(429 | 500..=599))
                    || matches!(code.as_deref(), Some("SlowDown" | "RequestTimeout" | "InternalError"));
                let message = match (code, err.message()) {
                    (Some(code), Some(msg)) => format!("{code}: {msg}"),
                    (Some(code), None) => format!("{code} (HTTP {})", status.unwrap_or(0)),
                    // HEAD responses carry no body, so no error code: name the status instead.
                    (None, _) => match status {
                        Some(s) => format!("{} (HTTP {s})", status_name(s)),
                        None => crate::error::one_line(&err),
                    },
                };
                Error::Storage { op, uri, message, transient, source: Some(Box::new(err)) }
                    .with_endpoint(&self.endpoint_note())
            }
            (SdkError::ConstructionFailure(_), _, _) => {
                let message = crate::error::one_line(&err);
                Error::Storage { op, uri, message, transient: false, source: Some(Box::new(err)) }
            }
            _ => {
                let message = crate::error::one_line(&err);
                Error::Storage { op, uri, message, transient: true, source: Some(Box::new(err)) }
                    .with_endpoint(&self.endpoint_note())
            }
        }
    }
}

/// The S3 error code a bodiless response's status stands for.
fn status_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        403 => "AccessDenied",
        409 => "Conflict",
        429 => "TooManyRequests",
        500 => "InternalError",
        501 => "NotImplemented",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "HTTP error",
    }
}

/// How long a GET body may send nothing before the read counts as broken and resumes.
const BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Resumes of one GET body before the read fails (transient, so the chunk is retried).
const MAX_RESUMES: u32 = 8;

/// Where a broken GET body resumes from.
struct Resume {
    store: S3Store,
    key: String,
    etag: Option<String>,
    expect: Option<ObjectMeta>,
    /// The first byte not yet handed out.
    pos: u64,
    /// One past the last byte of the read.
    end: u64,
    resumes: u32,
}

impl Resume {
    async fn next_body(&mut self, broken: &str) -> Result<SdkByteStream> {
        loop {
            if self.resumes >= MAX_RESUMES {
                return Err(Error::Storage {
                    op: "GetObject",
                    uri: self.store.location.join_display(&self.key),
                    message: format!(
                        "the response body broke {} times, last at byte {} ({broken}){}",
                        self.resumes + 1,
                        self.pos,
                        self.store.endpoint_note()
                    ),
                    transient: true,
                    source: None,
                });
            }
            self.resumes += 1;
            // Full jitter, 100 ms doubling to 5 s, as the SDK's own retries.
            let cap = (100u64 << self.resumes.min(6)).min(5_000);
            tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(0..=cap))).await;
            tracing::debug!(key = %self.key, at = self.pos, resume = self.resumes, %broken, "resuming a broken GetObject body");
            let range = ByteRange { start: self.pos, end: Some(self.end) };
            match self.store.send_get(&self.key, Some(range), self.etag.as_deref(), self.expect.as_ref()).await {
                Ok(Some(output)) => return Ok(output.body),
                Ok(None) => return Ok(SdkByteStream::from_static(b"")),
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A listed object as an [`ObjectMeta`] relative to `prefix`; `None` for folder markers and
/// keys outside it.
fn listed(prefix: &str, object: &aws_sdk_s3::types::Object) -> Option<ObjectMeta> {
    let rel = object.key()?.strip_prefix(prefix)?;
    (!rel.is_empty() && !rel.ends_with('/')).then(|| ObjectMeta {
        key: rel.to_string(),
        size: object.size().unwrap_or(0).max(0) as u64,
        etag: object.e_tag().map(str::to_string),
        mtime_ns: object.last_modified().and_then(unix_ns),
        content_encoding: None,
    })
}

#[async_trait]
impl Store for S3Store {
    fn location(&self) -> &Location {
        &self.location
    }

    async fn check_root(&self) -> Result<()> {
        self.sdk().await.head_bucket().bucket(&self.bucket).send().await.map_err(|e| {
            match self.error("HeadBucket", "", e) {
                Error::NotFound { .. } => Error::NoSuchBucket { bucket: self.bucket.clone() },
                other => other,
            }
        })?;
        Ok(())
    }

    fn list<'a>(&'a self, prefix: &str) -> ObjectStream<'a> {
        // One stream of pages, each read as `list_page` reads it.
        let first = Some(PageRequest::new(prefix));
        let pages = futures_util::stream::try_unfold(first, move |request| async move {
            let Some(request) = request else { return Ok(None) };
            let Some(page) = self.list_page(&request).await? else { return Ok(None) };
            let next = page.next.map(|token| PageRequest::new(&request.prefix).token(Some(token)));
            Ok(Some((futures_util::stream::iter(page.objects.into_iter().map(Ok)), next)))
        });
        Box::pin(pages.try_flatten())
    }

    async fn list_page(&self, request: &PageRequest) -> Result<Option<ListPage>> {
        // S3 directory buckets (`name--azid--x-s3`) ignore StartAfter and list out of key order:
        // no ranges there, one stream (`list`) instead.
        if self.bucket.ends_with("--x-s3") && (request.start_after.is_some() || request.delimiter.is_some()) {
            return Ok(None);
        }
        let mut send = self.sdk().await.list_objects_v2().bucket(&self.bucket).prefix(self.full(&request.prefix));
        if let Some(after) = &request.start_after {
            send = send.start_after(self.full(after));
        }
        if let Some(delimiter) = request.delimiter {
            send = send.delimiter(delimiter.to_string());
        }
        if let Some(token) = &request.token {
            send = send.continuation_token(token);
        }
        if let Some(keys) = request.max_keys {
            send = send.max_keys(i32::try_from(keys).unwrap_or(i32::MAX));
        }
        let prefix = self.prefix.clone();
        let (read, sdk_pages) = (Arc::new(Mutex::new(None)), self.sdk_pages.clone());
        let send = send.customize().interceptor(ListXml::new(prefix.clone(), read.clone()));
        let work = async move {
            let page = send.send().await?;
            if let Some(page) = read.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Ok(page);
            }
            // A body the fast reader left to the SDK.
            sdk_pages.fetch_add(1, Ordering::Relaxed);
            let relative = |k: &str| k.strip_prefix(prefix.as_str()).map(str::to_string);
            Ok(ListPage {
                objects: page.contents().iter().filter_map(|object| listed(&prefix, object)).collect(),
                common_prefixes: page.common_prefixes().iter().filter_map(|p| relative(p.prefix()?)).collect(),
                last_key: page.contents().last().and_then(|o| relative(o.key()?)),
                // A truncated page without a token: an empty one, refused below.
                next: (page.is_truncated() == Some(true))
                    .then(|| page.next_continuation_token().unwrap_or_default().to_string()),
            })
        };
        // Reading a page of 1,000 keys costs CPU (3.5 ms through the SDK's XML decoder, before
        // `list_xml`). Ranges listed at once are polled by one task; on a runtime with worker
        // threads each page is a task of its own, so pages are read on every core.
        let page = match tokio::runtime::Handle::try_current() {
            Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                runtime.spawn(work).await.map_err(|e| Error::Storage {
                    op: "ListObjectsV2",
                    uri: self.location.join_display(&request.prefix),
                    message: format!("the listing task stopped: {e}"),
                    transient: false,
                    source: Some(Box::new(e)),
                })?
            }
            _ => work.await,
        };
        let page = page.map_err(|e| self.error("ListObjectsV2", &request.prefix, e))?;
        // Paging on without a new token would list the same page again, or stop short silently.
        if let Some(next) = &page.next
            && (next.is_empty() || request.token.as_ref() == Some(next))
        {
            return Err(Error::Storage {
                op: "ListObjectsV2",
                uri: self.location.join_display(&request.prefix),
                message: format!(
                    "the server said the listing goes on but gave {} continuation token; the listing would be cut short or never end (a fault of the S3-compatible server)",
                    if next.is_empty() { "no" } else { "the same" }
                ),
                transient: false,
                source: None,
            });
        }
        Ok(Some(page))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        match self.sdk().await.head_object().bucket(&self.bucket).key(self.full(key)).send().await {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
                etag: out.e_tag().map(str::to_string),
                mtime_ns: out.last_modified().and_then(unix_ns),
                content_encoding: out.content_encoding().map(str::to_string),
            })),
            Err(e) => match self.error("HeadObject", key, e) {
                Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn get(&self, key: &str, range: Option<ByteRange>, expect: Option<&ObjectMeta>) -> Result<ByteStream> {
        Ok(self.get_encoded(key, range, expect).await?.0)
    }

    /// A GET whose body breaks mid-way (a cut connection, or 30 s without data)
    /// resumes with a ranged GET from the first byte not yet handed out, pinned by If-Match to the
    /// version the read started on, so no byte is handed out twice or from another version.
    async fn get_encoded(
        &self,
        key: &str,
        range: Option<ByteRange>,
        expect: Option<&ObjectMeta>,
    ) -> Result<(ByteStream, Option<String>)> {
        let start = range.map_or(0, |r| r.start);
        if let Some(ByteRange { end: Some(end), .. }) = range
            && end <= start
        {
            return Ok((Box::pin(futures_util::stream::empty()), None));
        }
        let expect_etag = expect.and_then(|m| m.etag.clone());
        let Some(output) = self.send_get(key, range, expect_etag.as_deref(), expect).await? else {
            return Ok((Box::pin(futures_util::stream::empty()), None)); // the range starts at the end
        };
        let encoding = output.content_encoding().map(str::to_string);
        let length = output.content_length().unwrap_or(0).max(0) as u64;
        let resume = Resume {
            store: self.clone(),
            key: key.to_string(),
            etag: expect_etag.or_else(|| output.e_tag().map(str::to_string)),
            expect: expect.cloned(),
            pos: start,
            end: range.and_then(|r| r.end).unwrap_or(start + length),
            resumes: 0,
        };
        let stream = futures_util::stream::unfold(Some((output.body, resume)), |state| async move {
            let (mut body, mut resume) = state?;
            loop {
                let next = tokio::time::timeout(BODY_IDLE_TIMEOUT, body.try_next()).await;
                let broken = match next {
                    Ok(Ok(Some(bytes))) => {
                        resume.pos += bytes.len() as u64;
                        return Some((Ok(bytes), Some((body, resume))));
                    }
                    Ok(Ok(None)) => return None,
                    Ok(Err(e)) => crate::error::one_line(&e),
                    Err(_) => format!("no data for {} s", BODY_IDLE_TIMEOUT.as_secs()),
                };
                if resume.pos >= resume.end {
                    return None; // every byte arrived; the connection broke after the last one
                }
                match resume.next_body(&broken).await {
                    Ok(next) => body = next,
                    Err(e) => return Some((Err(e), None)),
                }
            }
        });
        Ok((Box::pin(stream), encoding))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        self.sdk()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .body(SdkByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error("PutObject", key, e))?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        let sent = self
            .sdk()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .if_none_match("*")
            .body(SdkByteStream::from(body))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            // 412: the key exists; 409: a concurrent conditional write won.
            Err(e) if matches!(e.raw_response().map(|r| r.status().as_u16()), Some(412 | 409)) => Ok(false),
            Err(e) => Err(self.error("PutObject", key, e)),
        }
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<ObjectMeta> {
        let size = tokio::fs::metadata(path).await.map_err(|e| Error::io("reading metadata of", path, e))?.len();
        let written = |etag: Option<&str>| ObjectMeta {
            key: key.to_string(),
            size,
            etag: etag.map(str::to_string),
            mtime_ns: None,
            content_encoding: None,
        };
        if size <= MULTIPART_THRESHOLD {
            let body = tokio::fs::read(path).await.map_err(|e| Error::io("reading", path, e))?;
            let out = self
                .sdk()
                .await
                .put_object()
                .bucket(&self.bucket)
                .key(self.full(key))
                .body(SdkByteStream::from(Bytes::from(body)))
                .send()
                .await
                .map_err(|e| self.error("PutObject", key, e))?;
            return Ok(written(out.e_tag()));
        }
        let full = self.full(key);
        let created = self
            .sdk()
            .await
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.error("CreateMultipartUpload", key, e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let result = self.upload_parts(key, &full, &upload_id, path).await.map(|etag| written(etag.as_deref()));
        if result.is_err() {
            // An abandoned upload is invisible, but costs storage until aborted.
            let _ = self
                .sdk()
                .await
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&full)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    fn parallel_reads(&self) -> bool {
        true
    }

    async fn abort_uploads(&self, prefix: &str) -> Result<u64> {
        let full = self.full(prefix);
        let mut aborted = 0;
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .sdk()
                .await
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&full)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| self.error("ListMultipartUploads", prefix, e))?;
            for upload in page.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else { continue };
                let sent =
                    self.sdk().await.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(id).send().await;
                match sent {
                    Ok(_) => aborted += 1,
                    // Completed or aborted meanwhile.
                    Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {}
                    Err(e) => return Err(self.error("AbortMultipartUpload", key, e)),
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() && id_marker.is_none() {
                break;
            }
        }
        Ok(aborted)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.sdk()
            .await
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
            .map_err(|e| self.error("DeleteObject", key, e))?;
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        for batch in keys.chunks(DELETE_BATCH) {
            let unbuildable = |e: aws_sdk_s3::error::BuildError| Error::Storage {
                op: "DeleteObjects",
                uri: self.location.to_string(),
                message: e.to_string(),
                transient: false,
                source: Some(Box::new(e)),
            };
            let objects = batch
                .iter()
                .map(|k| ObjectIdentifier::builder().key(self.full(k)).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(unbuildable)?;
            let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build().map_err(unbuildable)?;
            let out = self
                .sdk()
                .await
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.error("DeleteObjects", &batch[0], e))?;
            // DeleteObjects answers 200 and lists per-key failures.
            if let Some(failed) = out.errors().first() {
                let key = failed.key().unwrap_or_default();
                return Err(Error::Storage {
                    op: "DeleteObjects",
                    uri: format!("s3://{}/{key}", self.bucket),
                    message: format!(
                        "{} ({} of {} keys failed)",
                        failed.message().or(failed.code()).unwrap_or("no message"),
                        out.errors().len(),
                        batch.len()
                    ),
                    transient: failed.code().is_some_and(|c| matches!(c, "SlowDown" | "InternalError")),
                    source: None,
                });
            }
        }
        Ok(())
    }
}

impl S3Store {
    /// Uploads the parts and completes the upload; returns the object's ETag.
    async fn upload_parts(&self, key: &str, full: &str, upload_id: &str, path: &Path) -> Result<Option<String>> {
        let mut file = tokio::fs::File::open(path).await.map_err(|e| Error::io("opening", path, e))?;
        let mut parts = Vec::new();
        for number in 1.. {
            let mut buf = Vec::with_capacity(PART_SIZE);
            let read = (&mut file)
                .take(PART_SIZE as u64)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| Error::io("reading", path, e))?;
            if read == 0 {
                break;
            }
            let part = self
                .sdk()
                .await
                .upload_part()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(upload_id)
                .part_number(number)
                .body(SdkByteStream::from(buf))
                .send()
                .await
                .map_err(|e| self.error("UploadPart", key, e))?;
            parts
                .push(CompletedPart::builder().part_number(number).set_e_tag(part.e_tag().map(str::to_string)).build());
        }
        let done = self
            .sdk()
            .await
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| self.error("CompleteMultipartUpload", key, e))?;
        Ok(done.e_tag().map(str::to_string))
    }
}

/// S3's `LastModified` in nanoseconds since the epoch (`None` before it).
fn unix_ns(t: &aws_sdk_s3::primitives::DateTime) -> Option<u64> {
    let secs = u64::try_from(t.secs()).ok()?;
    Some(secs * 1_000_000_000 + u64::from(t.subsec_nanos()))
}
