//! S3 (and S3-compatible servers such as moto) as a store, through aws-sdk-s3.

use std::path::Path;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use futures_util::{StreamExt, TryStreamExt};

use super::{ByteRange, ByteStream, ObjectMeta, ObjectStream, Store};
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
}

/// The SDK client a store uses: given, or a batchfan client's, made on its first request.
#[derive(Debug, Clone)]
enum S3Client {
    Sdk(Client),
    Batchfan(crate::Client),
}

impl S3Store {
    /// A store over `s3://bucket/prefix` (prefix empty or ending with `/`) through `client`.
    pub fn new(client: Client, bucket: &str, prefix: &str) -> Self {
        Self::build(S3Client::Sdk(client), bucket, prefix)
    }

    /// A store through a batchfan client's S3 client, which is made on the first request.
    pub fn with_client(client: crate::Client, bucket: &str, prefix: &str) -> Self {
        Self::build(S3Client::Batchfan(client), bucket, prefix)
    }

    fn build(client: S3Client, bucket: &str, prefix: &str) -> Self {
        let location = Location::S3 { bucket: bucket.to_string(), prefix: prefix.to_string() };
        S3Store { client, bucket: bucket.to_string(), prefix: prefix.to_string(), location }
    }

    async fn sdk(&self) -> &Client {
        match &self.client {
            S3Client::Sdk(client) => client,
            S3Client::Batchfan(client) => client.s3().await,
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn error<E>(&self, op: &'static str, key: &str, err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
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
                    _ => DisplayErrorContext(&err).to_string(),
                };
                Error::Storage { op, uri, message, transient, source: Some(Box::new(err)) }
            }
            (SdkError::ConstructionFailure(_), _, _) => {
                let message = DisplayErrorContext(&err).to_string();
                Error::Storage { op, uri, message, transient: false, source: Some(Box::new(err)) }
            }
            _ => {
                let message = DisplayErrorContext(&err).to_string();
                Error::Storage { op, uri, message, transient: true, source: Some(Box::new(err)) }
            }
        }
    }
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
        let full = self.full(prefix);
        let prefix = prefix.to_string();
        let pages = futures_util::stream::once(async move {
            self.sdk().await.list_objects_v2().bucket(&self.bucket).prefix(full).into_paginator().send()
        });
        let pages = pages.flat_map(|pages| {
            futures_util::stream::unfold(pages, |mut pages| async move { pages.next().await.map(|p| (p, pages)) })
        });
        let objects = pages.map(move |page| {
            let page = page.map_err(|e| self.error("ListObjectsV2", &prefix, e))?;
            let objects: Vec<ObjectMeta> = page
                .contents()
                .iter()
                .filter_map(|object| {
                    let rel = object.key()?.strip_prefix(&self.prefix)?;
                    // Folder markers made by consoles are not objects to process.
                    (!rel.is_empty() && !rel.ends_with('/')).then(|| ObjectMeta {
                        key: rel.to_string(),
                        size: object.size().unwrap_or(0).max(0) as u64,
                        etag: object.e_tag().map(str::to_string),
                        mtime_ns: None,
                    })
                })
                .collect();
            Ok(futures_util::stream::iter(objects.into_iter().map(Ok)))
        });
        Box::pin(objects.try_flatten())
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        match self.sdk().await.head_object().bucket(&self.bucket).key(self.full(key)).send().await {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
                etag: out.e_tag().map(str::to_string),
                mtime_ns: None,
            })),
            Err(e) => match self.error("HeadObject", key, e) {
                Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn get(&self, key: &str, range: Option<ByteRange>, expect: Option<&ObjectMeta>) -> Result<ByteStream> {
        let mut request = self.sdk().await.get_object().bucket(&self.bucket).key(self.full(key));
        if let Some(range) = range {
            match range.end {
                Some(end) if end <= range.start => return Ok(Box::pin(futures_util::stream::empty())),
                Some(end) => request = request.range(format!("bytes={}-{}", range.start, end - 1)),
                None => request = request.range(format!("bytes={}-", range.start)),
            }
        }
        if let Some(etag) = expect.and_then(|m| m.etag.as_deref()) {
            request = request.if_match(etag);
        }
        let output = match request.send().await {
            Ok(output) => output,
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                // A pinned object that is gone (404) changed since planning, as one whose ETag differs.
                if status == Some(412) || (status == Some(404) && expect.is_some()) {
                    return Err(Error::InputChanged {
                        uri: self.location.join_display(key),
                        expected: expect.map(ObjectMeta::version_text).unwrap_or_default(),
                    });
                }
                if status == Some(416) {
                    return Ok(Box::pin(futures_util::stream::empty())); // range starts at the end
                }
                return Err(self.error("GetObject", key, e));
            }
        };
        let uri = self.location.join_display(key);
        let stream = futures_util::stream::unfold(Some(output.body), move |body| {
            let uri = uri.clone();
            async move {
                let mut body = body?;
                match body.try_next().await {
                    Ok(Some(bytes)) => Some((Ok(bytes), Some(body))),
                    Ok(None) => None,
                    Err(e) => Some((
                        Err(Error::Storage {
                            op: "GetObject",
                            uri,
                            message: DisplayErrorContext(&e).to_string(),
                            transient: true,
                            source: Some(Box::new(e)),
                        }),
                        None,
                    )),
                }
            }
        });
        Ok(Box::pin(stream))
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

    async fn put_file(&self, key: &str, path: &Path) -> Result<()> {
        let size = tokio::fs::metadata(path).await.map_err(|e| Error::io("reading metadata of", path, e))?.len();
        if size <= MULTIPART_THRESHOLD {
            let body = tokio::fs::read(path).await.map_err(|e| Error::io("reading", path, e))?;
            return self.put(key, Bytes::from(body)).await;
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
        let result = self.upload_parts(key, &full, &upload_id, path).await;
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
    async fn upload_parts(&self, key: &str, full: &str, upload_id: &str, path: &Path) -> Result<()> {
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
        self.sdk()
            .await
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| self.error("CompleteMultipartUpload", key, e))?;
        Ok(())
    }
}
