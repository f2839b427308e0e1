//! S3 (and S3-compatible servers such as moto) as a store, through aws-sdk-s3.

use std::path::Path;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;

use futures_util::{StreamExt, TryStreamExt};

use super::{ByteRange, ByteStream, ObjectMeta, ObjectStream, Store};
use crate::error::{Error, Result};
use crate::uri::Location;

/// Files above this size are uploaded in parts (each part a request; the object appears
/// only when the upload completes, so the commit stays atomic).
const MULTIPART_THRESHOLD: u64 = 64 << 20;
const PART_SIZE: usize = 16 << 20;

static CLIENT: OnceCell<Client> = OnceCell::const_new();

/// The process-wide S3 client from the standard aws-config chain (`AWS_PROFILE`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, credential files, container and instance roles). Path-style addressing
/// is used when an endpoint URL is configured (emulators, S3-compatible servers).
pub async fn s3_client() -> Client {
    CLIENT
        .get_or_init(|| async {
            let config = crate::aws::sdk_config().await;
            let path_style = config.endpoint_url().is_some();
            Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(path_style).build())
        })
        .await
        .clone()
}

/// Makes `client` the process-wide S3 client (for a custom configuration); returns false when a
/// client was already in use.
pub fn set_s3_client(client: Client) -> bool {
    CLIENT.set(client).is_ok()
}

/// An S3 prefix; keys are relative to it.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    location: Location,
}

impl S3Store {
    /// A store over `s3://bucket/prefix` (prefix empty or ending with `/`).
    pub fn new(client: Client, bucket: &str, prefix: &str) -> Self {
        let location = Location::S3 { bucket: bucket.to_string(), prefix: prefix.to_string() };
        S3Store { client, bucket: bucket.to_string(), prefix: prefix.to_string(), location }
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
                Error::Storage { op, uri, message, transient }
            }
            (SdkError::ConstructionFailure(_), _, _) => {
                Error::Storage { op, uri, message: DisplayErrorContext(&err).to_string(), transient: false }
            }
            _ => Error::Storage { op, uri, message: DisplayErrorContext(&err).to_string(), transient: true },
        }
    }
}

#[async_trait]
impl Store for S3Store {
    fn location(&self) -> &Location {
        &self.location
    }

    async fn check_root(&self) -> Result<()> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map_err(|e| {
            match self.error("HeadBucket", "", e) {
                Error::NotFound { .. } => Error::NoSuchBucket { bucket: self.bucket.clone() },
                other => other,
            }
        })?;
        Ok(())
    }

    fn list<'a>(&'a self, prefix: &'a str) -> ObjectStream<'a> {
        let pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(self.full(prefix)).into_paginator().send();
        let pages =
            futures_util::stream::unfold(pages, |mut pages| async move { pages.next().await.map(|p| (p, pages)) });
        let objects = pages.map(move |page| {
            let page = page.map_err(|e| self.error("ListObjectsV2", prefix, e))?;
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
        match self.client.head_object().bucket(&self.bucket).key(self.full(key)).send().await {
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
        let mut request = self.client.get_object().bucket(&self.bucket).key(self.full(key));
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
                        }),
                        None,
                    )),
                }
            }
        });
        Ok(Box::pin(stream))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        self.client
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
            .client
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
            let _ =
                self.client.abort_multipart_upload().bucket(&self.bucket).key(&full).upload_id(&upload_id).send().await;
        }
        result
    }

    fn parallel_reads(&self) -> bool {
        true
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await
            .map_err(|e| self.error("DeleteObject", key, e))?;
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
                .client
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
        self.client
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
