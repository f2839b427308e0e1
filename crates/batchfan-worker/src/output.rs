//! A chunk's output, staged in a local spool file until the harness commits it.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use async_compression::tokio::write::{GzipEncoder, ZstdEncoder};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

use crate::error::WorkerError;

/// How committed outputs are compressed (`BATCHFAN_OUTPUT_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// gzip; the output key gets `.gz`.
    Gzip,
    /// Zstandard; the output key gets `.zst`.
    Zstd,
}

impl Compression {
    /// Parses `gzip`, `zstd` (or `none`/empty: no compression).
    pub fn parse(value: &str) -> Result<Option<Compression>, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Ok(None),
            "gzip" | "gz" => Ok(Some(Compression::Gzip)),
            "zstd" | "zst" => Ok(Some(Compression::Zstd)),
            other => Err(format!("`{other}` is not an output compression: use gzip, zstd or none")),
        }
    }

    /// The extension output keys get, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }
}

/// Where a handler writes its chunk's output. Cloning gives another handle to the same output.
///
/// Nothing is visible at the output location until the handler returns `Ok` and the harness
/// commits the whole output at once. `Output` is a [`tokio::io::AsyncWrite`], so encoders and
/// serializers stack on it; file writes run on tokio's blocking pool, never on the runtime's
/// threads. Writes from several clones at once interleave at unspecified points: give each
/// writer its own output, or join the pieces first.
#[derive(Debug, Clone)]
pub struct Output {
    inner: Arc<Mutex<Spool>>,
}

#[derive(Debug)]
struct Spool {
    path: PathBuf,
    dir: PathBuf,
    sink: Option<Sink>,
    /// Bytes the handler wrote (before compression).
    written: u64,
    compression: Option<Compression>,
}

type File = BufWriter<tokio::fs::File>;

#[derive(Debug)]
enum Sink {
    Plain(File),
    Gzip(GzipEncoder<File>),
    Zstd(ZstdEncoder<File>),
}

impl Sink {
    fn pin(&mut self) -> Pin<&mut (dyn AsyncWrite + Send + Unpin)> {
        match self {
            Sink::Plain(w) => Pin::new(w),
            Sink::Gzip(w) => Pin::new(w),
            Sink::Zstd(w) => Pin::new(w),
        }
    }
}

impl Output {
    pub(crate) async fn create(
        dir: &Path,
        name: &str,
        compression: Option<Compression>,
    ) -> Result<Output, WorkerError> {
        tokio::fs::create_dir_all(dir).await.map_err(|e| spool_error("creating spool folder", dir, dir, e))?;
        let path = dir.join(name);
        let file =
            tokio::fs::File::create(&path).await.map_err(|e| spool_error("creating spool file", &path, dir, e))?;
        let file = BufWriter::with_capacity(1 << 20, file);
        let sink = match compression {
            None => Sink::Plain(file),
            Some(Compression::Gzip) => Sink::Gzip(GzipEncoder::new(file)),
            Some(Compression::Zstd) => Sink::Zstd(ZstdEncoder::new(file)),
        };
        let spool = Spool { path, dir: dir.to_path_buf(), sink: Some(sink), written: 0, compression };
        Ok(Output { inner: Arc::new(Mutex::new(spool)) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends bytes to the output.
    pub async fn write(&self, bytes: &[u8]) -> Result<(), WorkerError> {
        let mut this = self.clone();
        this.write_all(bytes).await.map_err(|e| self.error("writing spool file", e))
    }

    /// Bytes written so far (before compression).
    pub fn len(&self) -> u64 {
        self.lock().written
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The compression outputs are committed with.
    pub fn compression(&self) -> Option<Compression> {
        self.lock().compression
    }

    fn error(&self, op: &'static str, e: io::Error) -> WorkerError {
        let spool = self.lock();
        spool_error(op, &spool.path, &spool.dir, e)
    }

    /// Flushes and closes the spool (ending the compressed stream); returns its path and the
    /// size to commit.
    pub(crate) async fn finish(&self) -> Result<(PathBuf, u64), WorkerError> {
        let mut this = self.clone();
        this.shutdown().await.map_err(|e| self.error("flushing spool file", e))?;
        let path = self.lock().path.clone();
        let size = tokio::fs::metadata(&path).await.map_err(|e| self.error("reading spool file size", e))?.len();
        Ok((path, size))
    }

    /// A guard that removes the spool file when dropped (a chunk aborted at the drain deadline
    /// is dropped before it can remove its spool itself).
    pub(crate) fn remove_on_drop(&self) -> RemoveOnDrop {
        RemoveOnDrop(self.lock().path.clone())
    }

    pub(crate) async fn remove(&self) {
        let path = {
            let mut spool = self.lock();
            spool.sink = None;
            spool.path.clone()
        };
        let _ = tokio::fs::remove_file(&path).await;
    }
}

/// Removes what workers of this host that are gone left in `spool_dir`: spool files
/// (`batchfan-RUN-INDEX-PID-N.spool`) and exec folders (`batchfan-exec-RUN-INDEX-PID-N`) whose
/// process no longer runs. Returns how many. A spool folder shared by workers of other hosts or
/// PID namespaces must not be swept: give each its own.
pub(crate) fn sweep_stale_spools(spool_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(spool_dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = spool_owner(&name) else { continue };
        if batchfan::store::process_alive(pid) {
            continue;
        }
        let path = entry.path();
        let gone = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed += usize::from(gone.is_ok());
    }
    removed
}

/// The pid in a spool file's or exec folder's name: the second-to-last `-` field.
fn spool_owner(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".spool").unwrap_or(name);
    if !name.starts_with("batchfan-") || (stem.len() == name.len() && !name.starts_with("batchfan-exec-")) {
        return None;
    }
    let mut fields = stem.rsplit('-');
    fields.next()?; // the random part
    fields.next()?.parse().ok()
}

/// Removes a spool file when dropped; see [`Output::remove_on_drop`].
#[derive(Debug)]
pub(crate) struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn closed() -> io::Error {
    io::Error::other("the output was already committed")
}

impl AsyncWrite for Output {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut spool = self.lock();
        let Some(sink) = spool.sink.as_mut() else { return Poll::Ready(Err(closed())) };
        let n = ready!(sink.pin().poll_write(cx, buf))?;
        spool.written += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut spool = self.lock();
        match spool.sink.as_mut() {
            Some(sink) => sink.pin().poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Ends the output: the harness commits it after the handler returns, and also shuts it
    /// down itself, so a handler need not (writes after this fail).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut spool = self.lock();
        match spool.sink.as_mut() {
            Some(sink) => {
                ready!(sink.pin().poll_shutdown(cx))?;
                spool.sink = None;
                Poll::Ready(Ok(()))
            }
            None => Poll::Ready(Ok(())),
        }
    }
}

/// A spool write error; a full disk names the spool folder and how to move it.
pub(crate) fn spool_error(op: &'static str, path: &Path, dir: &Path, e: io::Error) -> WorkerError {
    WorkerError::Batchfan(batchfan::Error::write_io(
        op,
        path,
        dir.display(),
        " (the worker's spool folder; BATCHFAN_SPOOL_DIR moves it)",
        e,
    ))
}
