//! A chunk's output, staged in a local spool file until the harness commits it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::WorkerError;

/// Where a handler writes its chunk's output. Cloning gives another handle to the same output.
///
/// Nothing is visible at the output location until the handler returns `Ok` and the harness
/// commits the whole output at once.
#[derive(Debug, Clone)]
pub struct Output {
    inner: Arc<Mutex<Spool>>,
}

#[derive(Debug)]
struct Spool {
    path: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    bytes: u64,
}

impl Output {
    pub(crate) fn create(dir: &Path, name: &str) -> Result<Output, WorkerError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("creating spool folder", dir, e))?;
        let path = dir.join(name);
        let file = std::fs::File::create(&path).map_err(|e| io_error("creating spool file", &path, e))?;
        let spool = Spool { path, file: Some(std::io::BufWriter::with_capacity(1 << 20, file)), bytes: 0 };
        Ok(Output { inner: Arc::new(Mutex::new(spool)) })
    }

    /// Appends bytes to the output.
    pub async fn write(&self, bytes: &[u8]) -> Result<(), WorkerError> {
        let mut spool = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let path = spool.path.clone();
        let file = spool.file.as_mut().ok_or_else(|| WorkerError::Config("output already committed".into()))?;
        file.write_all(bytes).map_err(|e| io_error("writing spool file", &path, e))?;
        spool.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flushes and closes the spool; returns its path and size.
    pub(crate) fn finish(&self) -> Result<(PathBuf, u64), WorkerError> {
        let mut spool = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let path = spool.path.clone();
        if let Some(mut file) = spool.file.take() {
            file.flush().map_err(|e| io_error("flushing spool file", &path, e))?;
        }
        Ok((path, spool.bytes))
    }

    pub(crate) fn remove(&self) {
        let spool = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let _ = std::fs::remove_file(&spool.path);
    }
}

fn io_error(op: &'static str, path: &Path, source: std::io::Error) -> WorkerError {
    WorkerError::Batchfan(batchfan::Error::Io { op, path: path.to_path_buf(), source })
}
