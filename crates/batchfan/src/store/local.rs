//! Local folders as a store.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use futures_util::TryStreamExt;

use super::{ByteRange, ByteStream, ObjectMeta, ObjectStream, Store};
use crate::error::{Error, Result};
use crate::uri::Location;

/// Marks in-flight temporary files; listings skip them.
pub(crate) const TMP_MARK: &str = ".batchfan-tmp-";
const READ_BUF: usize = 256 * 1024;

/// A local folder; keys are paths relative to it.
#[derive(Debug, Clone)]
pub struct LocalStore {
    location: Location,
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at a local location (other location kinds give an empty root).
    pub fn new(location: Location) -> Self {
        let root = match &location {
            Location::Local { path } => path.clone(),
            Location::S3 { .. } => PathBuf::new(),
        };
        LocalStore { location, root }
    }

    /// The path of `key`, which must stay inside the root: a crafted manifest must not make a
    /// worker read or write elsewhere (object_store's `Path` is the model).
    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

fn meta_of(key: String, md: &std::fs::Metadata) -> ObjectMeta {
    let mtime_ns = md.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos() as u64);
    ObjectMeta { key, size: md.len(), etag: None, mtime_ns, content_encoding: None }
}

/// A listing error: a folder this user may not read is bad input, naming it.
fn listing_error(dir: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        Error::NotReadable { path: dir.to_path_buf(), source: e }
    } else {
        Error::io("listing", dir, e)
    }
}

/// Reads one folder: the objects in it under `prefix` go to `out`, the folders to descend to
/// `dirs`.
fn walk_dir(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<ObjectMeta>, dirs: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| listing_error(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| listing_error(dir, e))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().contains(TMP_MARK) {
            continue; // a write in progress (or a dead writer's leftover), never an object
        }
        let md = match std::fs::metadata(&path) {
            Ok(md) => md,
            // Gone between the directory read and now (renamed or deleted by a writer).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("reading metadata of", &path, e)),
        };
        let rel = path.strip_prefix(root).unwrap_or(&path);
        // Keys are UTF-8 (as S3 keys are); a lossy name would plan a file that does not exist.
        let Some(key) = rel.components().map(|c| c.as_os_str().to_str()).collect::<Option<Vec<_>>>() else {
            return Err(Error::InvalidKey {
                key: rel.to_string_lossy().into_owned(),
                reason: format!(
                    "the name of `{}` is not valid UTF-8: rename it (keys are UTF-8, as S3 keys are), or move it out of the input folder",
                    path.display()
                ),
            });
        };
        let key = key.join("/");
        if md.is_dir() {
            if prefix.starts_with(&format!("{key}/")) || key.starts_with(prefix) || prefix.is_empty() {
                dirs.push(path);
            }
        } else if md.is_file() && key.starts_with(prefix) {
            out.push(meta_of(key, &md));
        }
    }
    Ok(())
}

/// Walks the tree under `root` with up to 8 threads taking folders from one stack: reading
/// folders and their entries' metadata are system calls that overlap (a tree of many small
/// folders lists several times faster than one thread walks it). The first error stops the walk.
fn walk(root: &Path, prefix: &str) -> Result<Vec<ObjectMeta>> {
    struct Walk {
        dirs: Vec<PathBuf>,
        busy: usize,
        out: Vec<ObjectMeta>,
        error: Option<Error>,
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let shared = std::sync::Mutex::new(Walk { dirs: vec![root.to_path_buf()], busy: 0, out: Vec::new(), error: None });
    let changed = std::sync::Condvar::new();
    let lock = || shared.lock().unwrap_or_else(|p| p.into_inner());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let dir = {
                        let mut walk = lock();
                        loop {
                            if walk.error.is_some() || (walk.dirs.is_empty() && walk.busy == 0) {
                                changed.notify_all();
                                return;
                            }
                            if let Some(dir) = walk.dirs.pop() {
                                walk.busy += 1;
                                break dir;
                            }
                            walk = changed.wait(walk).unwrap_or_else(|p| p.into_inner());
                        }
                    };
                    let (mut out, mut dirs) = (Vec::new(), Vec::new());
                    let result = walk_dir(root, &dir, prefix, &mut out, &mut dirs);
                    let mut walk = lock();
                    walk.busy -= 1;
                    match result {
                        Ok(()) => {
                            walk.out.append(&mut out);
                            walk.dirs.append(&mut dirs);
                        }
                        Err(e) => {
                            walk.error.get_or_insert(e);
                        }
                    }
                    changed.notify_all();
                }
            });
        }
    });
    let walk = shared.into_inner().unwrap_or_else(|p| p.into_inner());
    match walk.error {
        Some(e) => Err(e),
        None => Ok(walk.out),
    }
}

#[async_trait]
impl Store for LocalStore {
    fn location(&self) -> &Location {
        &self.location
    }

    async fn check_root(&self) -> Result<()> {
        match tokio::fs::metadata(&self.root).await {
            Ok(md) if md.is_dir() => Ok(()),
            Ok(_) => Err(Error::InvalidUri {
                uri: self.location.to_string(),
                reason: "is a file, not a folder (give the folder that holds the inputs, or use --input-list)".into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotFound { uri: self.location.to_string() })
            }
            Err(e) => Err(Error::io("reading", &self.root, e)),
        }
    }

    fn list<'a>(&'a self, prefix: &str) -> ObjectStream<'a> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let listing = async move {
            if !root.exists() {
                return Err(Error::NotFound { uri: self.location.to_string() });
            }
            let walked = tokio::task::spawn_blocking(move || walk(&root, &prefix));
            let objects: Vec<ObjectMeta> =
                walked.await.map_err(|e| Error::io("listing", &self.root, std::io::Error::other(e)))??;
            Ok(futures_util::stream::iter(objects.into_iter().map(Ok)))
        };
        Box::pin(futures_util::stream::once(listing).try_flatten())
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(md) if md.is_file() => Ok(Some(meta_of(key.to_string(), &md))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading metadata of", path, e)),
        }
    }

    async fn get(&self, key: &str, range: Option<ByteRange>, expect: Option<&ObjectMeta>) -> Result<ByteStream> {
        let path = self.path(key)?;
        let uri = self.location.join_display(key);
        let changed = |expect: &ObjectMeta| Error::InputChanged { uri: uri.clone(), expected: expect.version_text() };
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            // A pinned input that is gone changed since planning; an unpinned one is just missing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(expect.map_or_else(|| Error::NotFound { uri: uri.clone() }, changed));
            }
            Err(e) => return Err(Error::io("opening", path, e)),
        };
        if let Some(expect) = expect
            && !same_version(&file, key, expect).await?
        {
            return Err(changed(expect));
        }
        let start = range.map_or(0, |r| r.start);
        // A pinned read never goes past the planned size: bytes appended since are not the input.
        let end = match (range.and_then(|r| r.end), expect) {
            (Some(end), Some(expect)) => Some(end.min(expect.size)),
            (end, None) => end,
            (None, Some(expect)) => Some(expect.size),
        };
        let remaining = end.map(|end| end.saturating_sub(start));
        if start > 0 {
            file.seek(SeekFrom::Start(start)).await.map_err(|e| Error::io("seeking in", &path, e))?;
        }
        let pinned = expect.cloned().map(|meta| (meta, uri));
        let state = Read { file, path, key: key.to_string(), remaining, pinned };
        let stream = futures_util::stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            match state.next().await {
                Ok(Some(bytes)) => Some((Ok(bytes), Some(state))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        });
        Ok(Box::pin(stream))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        let path = self.path(key)?;
        let tmp = tmp_path(&path)?;
        let result = async {
            self.write_tmp(&tmp, &body).await?;
            tokio::fs::rename(&tmp, &path).await.map_err(|e| Error::io("renaming into place", &path, e))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        let path = self.path(key)?;
        let tmp = tmp_path(&path)?;
        let result = async {
            self.write_tmp(&tmp, &body).await?;
            // A hard link fails when the name exists: the object appears whole, once.
            match tokio::fs::hard_link(&tmp, &path).await {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(Error::io("linking into place", &path, e)),
            }
        }
        .await;
        let _ = tokio::fs::remove_file(&tmp).await;
        result
    }

    async fn put_file(&self, key: &str, source: &Path) -> Result<ObjectMeta> {
        let path = self.path(key)?;
        let tmp = tmp_path(&path)?;
        let result = async {
            // A full disk names the output location, not the spool file being copied.
            let full = |op, e| Error::write_io(op, source, &self.location, "", e);
            tokio::fs::copy(source, &tmp).await.map_err(|e| full("copying", e))?;
            let file = tokio::fs::File::open(&tmp).await.map_err(|e| Error::io("opening", &tmp, e))?;
            file.sync_all().await.map_err(|e| full("syncing", e))?;
            // The version is the temporary file's: a rename keeps its mtime.
            let md = file.metadata().await.map_err(|e| Error::io("reading metadata of", &tmp, e))?;
            tokio::fs::rename(&tmp, &path).await.map_err(|e| Error::io("renaming into place", &path, e))?;
            Ok(meta_of(key.to_string(), &md))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("deleting", path, e)),
            _ => Ok(()),
        }
    }
}

/// Refuses keys that would leave a local store's root: absolute paths, `..` segments, NUL.
pub(crate) fn check_key(key: &str) -> Result<()> {
    let reason = if key.starts_with('/') {
        "is an absolute path"
    } else if key.split('/').any(|segment| segment == "..") {
        "has a `..` segment"
    } else if key.contains('\0') {
        "contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(Error::InvalidKey { key: key.to_string(), reason: format!("{reason}: keys must stay inside their location") })
}

/// One read of a local file. A pinned read (`pinned`) checks the open file again after every
/// block (one fstat per 256 KiB), so a file truncated, appended to or overwritten while it is
/// read fails with [`Error::InputChanged`] instead of handing the reader a mix of two versions;
/// split ranges, whose readers stop before the end, are covered as well as whole files.
struct Read {
    file: tokio::fs::File,
    path: PathBuf,
    key: String,
    remaining: Option<u64>,
    pinned: Option<(ObjectMeta, String)>,
}

impl Read {
    async fn next(&mut self) -> Result<Option<Bytes>> {
        let want = self.remaining.map_or(READ_BUF, |r| r.min(READ_BUF as u64) as usize);
        if want == 0 {
            return Ok(None);
        }
        let mut buf = BytesMut::zeroed(want);
        let n = self.file.read(&mut buf).await.map_err(|e| Error::io("reading", &self.path, e))?;
        if let Some((expect, uri)) = &self.pinned {
            // n == 0 with planned bytes left: the file was truncated.
            let short = n == 0 && self.remaining.is_some_and(|r| r > 0);
            if short || !same_version(&self.file, &self.key, expect).await? {
                return Err(Error::InputChanged { uri: uri.clone(), expected: expect.version_text() });
            }
        }
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        if let Some(r) = self.remaining.as_mut() {
            *r -= n as u64;
        }
        Ok(Some(buf.freeze()))
    }
}

/// Whether the open file still has the planned size and modification time.
async fn same_version(file: &tokio::fs::File, key: &str, expect: &ObjectMeta) -> Result<bool> {
    let md = file.metadata().await.map_err(|e| Error::io("reading metadata of", key, e))?;
    let now = meta_of(key.to_string(), &md);
    Ok(now.size == expect.size && (expect.mtime_ns.is_none() || now.mtime_ns == expect.mtime_ns))
}

/// A hidden temporary sibling of `path` (same folder, so the final rename is atomic).
impl LocalStore {
    /// Writes `body` to the temporary file `tmp` and syncs it; a full disk names this store.
    async fn write_tmp(&self, tmp: &Path, body: &[u8]) -> Result<()> {
        let full = |op, e| Error::write_io(op, tmp, &self.location, "", e);
        let mut file = tokio::fs::File::create(tmp).await.map_err(|e| full("creating", e))?;
        file.write_all(body).await.map_err(|e| full("writing", e))?;
        file.sync_all().await.map_err(|e| full("syncing", e))
    }

    /// Removes temporary files (`.NAME.batchfan-tmp-PID-N`) whose writer process is no longer
    /// running: what a writer killed mid-write leaves. Listing skips them, so nothing else would.
    /// Returns how many were removed.
    pub fn sweep_stale_temps(&self) -> usize {
        let Location::Local { path } = &self.location else { return 0 };
        let mut removed = 0;
        let mut dirs = vec![path.clone()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let p = entry.path();
                match entry.file_type() {
                    Ok(t) if t.is_dir() => dirs.push(p),
                    Ok(t) if t.is_file() => {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        if let Some(pid) = tmp_writer(&name)
                            && !process_alive(pid)
                            && std::fs::remove_file(&p).is_ok()
                        {
                            removed += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
        removed
    }
}

/// The writer pid of a temporary file name, if it is one.
fn tmp_writer(name: &str) -> Option<u32> {
    let rest = &name[name.find(TMP_MARK)? + TMP_MARK.len()..];
    rest.split('-').next()?.parse().ok()
}

/// True while process `pid` of this host runs (a zombie, exited and not yet reaped, does not).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.split_whitespace().next() != Some("Z")))
        .unwrap_or(false)
}

fn tmp_path(path: &Path) -> Result<PathBuf> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io("creating folder", parent, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // The pid says which process wrote it; the random part keeps concurrent writers apart.
    Ok(parent.join(format!(".{name}{TMP_MARK}{}-{:016x}", std::process::id(), fastrand::u64(..))))
}
