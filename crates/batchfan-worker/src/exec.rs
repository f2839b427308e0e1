//! Any program as a worker: `batchfan-worker exec [--per-item | --per-chunk] -- PROGRAM ARGS...`.
//!
//! The program knows nothing of S3. Per item (the default) it gets the item's bytes as a local
//! file (`{input}`) or on stdin (`--stdin`), decompressed unless `--raw`, and writes `{output}` or
//! stdout; that output is committed as the object `<input key><suffix>` under the run's output, so
//! a 1:1 transform mirrors the input tree. Per chunk it runs once over every item's local copy
//! (listed in the file `{inputs}`) and its output is the chunk's `part-NNNNN`.
//!
//! The program runs in its own process group. After SIGTERM it keeps running under the drain
//! rules ([`crate::run`]); at the drain deadline the group gets SIGTERM, then SIGKILL
//! [`KILL_GRACE`] later, so no process of the item outlives the worker.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batchfan::codec::Codec;
use batchfan::contract::Item;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::error::{BoxError, WorkerError};
use crate::runtime::{Chunk, check_output_key};

/// How long a program's process group has between SIGTERM and SIGKILL at the drain deadline.
/// With the default 25 s drain this stays under the 30 s ECS and AWS Batch wait before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(3);

/// Lines of the program's stderr kept for the error message of a failed item.
const STDERR_TAIL: usize = 10;

/// How `exec` runs the program.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecOptions {
    /// Once per chunk (`--per-chunk`) instead of once per item.
    pub per_chunk: bool,
    /// Hand the input on stdin (`--stdin`) instead of as the file `{input}` (per item only).
    pub stdin: bool,
    /// Appended to the input key to make the output key (`--suffix EXT`, per item only).
    pub suffix: String,
    /// Hand inputs over as stored, compressed ones not decompressed (`--raw`).
    pub raw: bool,
    /// The program and its arguments, with placeholders.
    pub program: Vec<String>,
}

/// The placeholders an argument may hold.
pub const PLACEHOLDERS: [&str; 6] = ["{input}", "{output}", "{inputs}", "{key}", "{index}", "{attempt}"];

impl ExecOptions {
    /// Parses `[--per-item | --per-chunk] [--stdin] [--suffix EXT] [--raw] -- PROGRAM ARGS...`.
    pub fn parse(args: &[String]) -> Result<ExecOptions, String> {
        let mut options =
            ExecOptions { per_chunk: false, stdin: false, suffix: String::new(), raw: false, program: Vec::new() };
        let mut per_item = false;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--per-item" => per_item = true,
                "--per-chunk" => options.per_chunk = true,
                "--stdin" => options.stdin = true,
                "--raw" => options.raw = true,
                "--suffix" => {
                    options.suffix = it.next().ok_or("--suffix needs a value, e.g. --suffix .out")?.clone();
                }
                s if s.starts_with("--suffix=") => options.suffix = s["--suffix=".len()..].to_string(),
                "--" => {
                    options.program = it.cloned().collect();
                    break;
                }
                other => return Err(format!("unknown exec option `{other}`; put the program after `--`")),
            }
        }
        if per_item && options.per_chunk {
            return Err("--per-item and --per-chunk exclude each other".into());
        }
        if options.program.is_empty() {
            return Err("no program given: write it after `--`, e.g. exec -- gzip -c {input}".into());
        }
        if options.per_chunk && options.stdin {
            return Err("--stdin is for --per-item; a --per-chunk program reads the files listed in {inputs}".into());
        }
        if options.per_chunk && !options.suffix.is_empty() {
            return Err("--suffix is for --per-item; a --per-chunk output is the chunk's part-NNNNN".into());
        }
        if options.suffix.contains('/') {
            return Err(format!("--suffix `{}` must not hold `/`", options.suffix));
        }
        let uses = |p: &str| options.program.iter().any(|a| a.contains(p));
        if options.per_chunk && uses("{input}") {
            return Err("{input} is per item; a --per-chunk program gets {inputs}, a file listing the inputs".into());
        }
        if !options.per_chunk && uses("{inputs}") {
            return Err("{inputs} is for --per-chunk; a per-item program gets {input}".into());
        }
        if options.stdin && uses("{input}") {
            return Err("--stdin hands the input on stdin: drop {input} from the arguments, or drop --stdin".into());
        }
        Ok(options)
    }
}

/// The handler that runs `options.program` (see the module docs).
pub async fn handle(options: Arc<ExecOptions>, chunk: Chunk) -> Result<(), BoxError> {
    let work = WorkDir::create(chunk.spool_dir(), chunk.header().run_id.as_str(), chunk.index())?;
    if options.per_chunk {
        per_chunk(&options, &chunk, &work).await?;
    } else {
        for (n, item) in chunk.items().iter().enumerate() {
            per_item(&options, &chunk, &work, n, item).await?;
        }
    }
    Ok(())
}

/// The output key of an item: its key plus the suffix; a byte range of a split object adds
/// `.range-START-END` so the ranges of one object do not overwrite each other.
fn output_key(item: &Item, suffix: &str) -> String {
    match item.range {
        Some([start, end]) => format!("{}.range-{start}-{end}{suffix}", item.key),
        None => format!("{}{suffix}", item.key),
    }
}

/// The file name an item's local copy gets: the key's last segment, without the compression
/// extension when it is handed over decompressed.
fn local_name(item: &Item, raw: bool) -> String {
    let name = item.key.rsplit('/').next().unwrap_or("input").to_string();
    match Codec::of(&item.key, item.content_encoding.as_deref()) {
        Some(codec) if !raw => {
            let ext = codec.extension();
            name.strip_suffix(ext).filter(|s| !s.is_empty()).unwrap_or(&name).to_string()
        }
        _ => name,
    }
}

async fn per_item(options: &ExecOptions, chunk: &Chunk, work: &WorkDir, n: usize, item: &Item) -> Result<(), BoxError> {
    let key = output_key(item, &options.suffix);
    check_output_key(&key).map_err(|e| item_error(item, &e.to_string()))?;
    let dir = work.path.join(format!("item-{n:05}"));
    let (in_dir, out_dir) = (dir.join("in"), dir.join("out"));
    for d in [&in_dir, &out_dir] {
        tokio::fs::create_dir_all(d).await.map_err(|e| io_error("creating", d, e))?;
    }
    let input = in_dir.join(local_name(item, options.raw));
    let output = out_dir.join(format!("{}{}", local_name(item, options.raw), options.suffix));
    let mut reader = if options.raw { chunk.open_raw(item).await? } else { chunk.open(item).await? };
    if !options.stdin {
        copy_to_file(&mut reader, &input, chunk.spool_dir()).await?;
    }
    let vars = Vars {
        input: &input,
        output: &output,
        inputs: None,
        key: &item.key,
        chunk,
        work: &work.path,
        spool: chunk.spool_dir(),
    };
    let writes_output = options.program.iter().any(|a| a.contains("{output}"));
    let stdin = if options.stdin { Some(reader) } else { None };
    run_program(options, &vars, stdin, (!writes_output).then_some(output.as_path())).await.map_err(|e| match e {
        ProgramError::Failed(msg, code) => {
            Box::new(WorkerError::Program { message: format!("item `{}`: {msg}", item.key), code }) as BoxError
        }
        ProgramError::Other(e) => e,
    })?;
    if tokio::fs::metadata(&output).await.is_err() {
        return Err(item_error(
            item,
            &format!("the program exited 0 but wrote no {{output}} file at {}", output.display()),
        ));
    }
    chunk.commit_file(&key, &output).await?;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    Ok(())
}

async fn per_chunk(options: &ExecOptions, chunk: &Chunk, work: &WorkDir) -> Result<(), BoxError> {
    let in_dir = work.path.join("inputs");
    let mut list = String::new();
    for (n, item) in chunk.items().iter().enumerate() {
        // Each copy sits under its own numbered folder: keys that differ only in folder, or
        // ranges of one object, never collide, and no key leaves the folder.
        let path = in_dir.join(format!("{n:05}")).join(local_name(item, options.raw));
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| io_error("creating", parent, e))?;
        }
        let mut reader = if options.raw { chunk.open_raw(item).await? } else { chunk.open(item).await? };
        copy_to_file(&mut reader, &path, chunk.spool_dir()).await?;
        list.push_str(&path.display().to_string());
        list.push('\n');
    }
    let inputs = work.path.join("inputs.txt");
    tokio::fs::write(&inputs, list).await.map_err(|e| io_error("writing", &inputs, e))?;
    let output = work.path.join("output");
    let vars = Vars {
        input: Path::new(""),
        output: &output,
        inputs: Some(&inputs),
        key: "",
        chunk,
        work: &work.path,
        spool: chunk.spool_dir(),
    };
    let writes_output = options.program.iter().any(|a| a.contains("{output}"));
    run_program(options, &vars, None, (!writes_output).then_some(output.as_path())).await.map_err(|e| match e {
        ProgramError::Failed(msg, code) => {
            Box::new(WorkerError::Program { message: format!("chunk {}: {msg}", chunk.index()), code }) as BoxError
        }
        ProgramError::Other(e) => e,
    })?;
    let mut file = tokio::fs::File::open(&output)
        .await
        .map_err(|e| format!("the program exited 0 but wrote no {{output}} file at {}: {e}", output.display()))?;
    let mut sink = chunk.output();
    tokio::io::copy(&mut file, &mut sink).await.map_err(|e| io_error("copying the program's output", &output, e))?;
    Ok(())
}

/// What placeholders stand for.
struct Vars<'a> {
    input: &'a Path,
    output: &'a Path,
    inputs: Option<&'a Path>,
    key: &'a str,
    chunk: &'a Chunk,
    /// The chunk's scratch folder, and the spool folder holding it (for disk-full messages).
    work: &'a Path,
    spool: &'a Path,
}

/// What a full spool disk's message adds.
const SPOOL_NOTE: &str = " (the worker's spool folder; BATCHFAN_SPOOL_DIR moves it)";

/// True when the file system holding `dir` has no room left for an unprivileged writer.
fn disk_full(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
    // SAFETY: statvfs(3) writes only into the zeroed struct it is given.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        // Less than one block (or inode) left: the next write fails with ENOSPC.
        libc::statvfs(c.as_ptr(), &mut st) == 0 && (st.f_bavail == 0 || (st.f_files > 0 && st.f_favail == 0))
    }
}

impl Vars<'_> {
    fn expand(&self, arg: &str) -> String {
        arg.replace("{inputs}", &self.inputs.map(|p| p.display().to_string()).unwrap_or_default())
            .replace("{input}", &self.input.display().to_string())
            .replace("{output}", &self.output.display().to_string())
            .replace("{key}", self.key)
            .replace("{index}", &self.chunk.index().to_string())
            .replace("{attempt}", &self.chunk.attempt().to_string())
    }
}

enum ProgramError {
    /// The program ran and failed: the message, and the exit code the worker should end with.
    Failed(String, i32),
    Other(BoxError),
}

impl<E: Into<BoxError>> From<E> for ProgramError {
    fn from(e: E) -> Self {
        ProgramError::Other(e.into())
    }
}

async fn run_program(
    options: &ExecOptions,
    vars: &Vars<'_>,
    stdin: Option<batchfan::records::ItemReader>,
    stdout_to: Option<&Path>,
) -> Result<(), ProgramError> {
    let args: Vec<String> = options.program.iter().map(|a| vars.expand(a)).collect();
    let mut cmd = tokio::process::Command::new(&args[0]);
    cmd.args(&args[1..]).process_group(0).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    match stdout_to {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| io_error("creating", path, e))?;
            cmd.stdout(Stdio::from(file));
        }
        // The program writes {output}; what it prints goes to the worker's log.
        None => {
            cmd.stdout(Stdio::inherit());
        }
    }
    let (mut child, holder) = spawn_held(cmd).map_err(|e| {
        ProgramError::Failed(format!("cannot start `{}`: {e} (is it installed and on PATH?)", args[0]), 127)
    })?;
    let group = GroupGuard::new(child.id(), holder);
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
    let stderr = child.stderr.take().map(|stderr| {
        let tail = tail.clone();
        async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
                let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    });
    let pipe = child.stdin.take();
    let feed = async {
        if let (Some(mut reader), Some(mut pipe)) = (stdin, pipe) {
            match tokio::io::copy(&mut reader, &mut pipe).await {
                Ok(_) => {}
                // The program stopped reading: its exit status says whether that was fine.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(ProgramError::Other(batchfan::Error::from_io(e, Path::new("stdin")).into())),
            }
            let _ = pipe.shutdown().await;
        }
        Ok(())
    };
    let stderr = async {
        if let Some(s) = stderr {
            s.await;
        }
    };
    let (fed, status, ()) = tokio::join!(feed, child.wait(), stderr);
    let status = status.map_err(|e| io_error("waiting for", Path::new(&args[0]), e))?;
    group.disarm();
    fed?;
    if status.success() {
        return Ok(());
    }
    // A program that failed on a full disk says so only in its own words: the disk's state
    // says it the worker's way (exit 75, naming the full location), so the chunk is retried.
    if disk_full(vars.work) {
        return Err(ProgramError::Other(Box::new(WorkerError::Batchfan(batchfan::Error::NoSpace {
            location: vars.spool.display().to_string(),
            what: SPOOL_NOTE.to_string(),
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        }))));
    }
    let tail: Vec<String> = tail.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
    let how = match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "failed".to_string(),
    };
    let code = status.code().filter(|c| (1..=125).contains(c)).unwrap_or(1);
    let stderr =
        if tail.is_empty() { " (no stderr)".to_string() } else { format!("; last stderr lines:\n{}", tail.join("\n")) };
    Err(ProgramError::Failed(format!("`{}` {how}{stderr}", args.join(" ")), code))
}

/// SIGTERM, then SIGKILL after [`KILL_GRACE`], to a program's process group if the item is
/// dropped before the program ended (the handler was aborted at the drain deadline).
struct GroupGuard {
    pgid: Option<i32>,
    /// Dropped after the group is gone (fields drop after `Drop::drop`).
    _holder: Holder,
}

impl GroupGuard {
    fn new(pid: Option<u32>, holder: Holder) -> GroupGuard {
        GroupGuard { pgid: pid.and_then(|p| i32::try_from(p).ok()), _holder: holder }
    }

    fn disarm(mut self) {
        // The leader ended; stray members of its group end with the item too.
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: killpg only sends a signal; a group that is gone is ESRCH.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let Some(pgid) = self.pgid else { return };
        tracing::warn!(pgid, "stopping the program's process group: SIGTERM, SIGKILL in {} s", KILL_GRACE.as_secs());
        // SAFETY: killpg only sends signals.
        unsafe { libc::killpg(pgid, libc::SIGTERM) };
        // Blocking here is deliberate: this runs as the worker shuts down, and the group must be
        // gone before the worker's own exit.
        let deadline = Instant::now() + KILL_GRACE;
        while Instant::now() < deadline && group_alive(pgid) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
    }
}

/// Keeps alive the thread a program was started from; see [`spawn_held`].
struct Holder(Option<std::sync::mpsc::Sender<()>>);

impl Drop for Holder {
    fn drop(&mut self) {
        self.0.take(); // the thread's receive ends, and it exits
    }
}

/// Starts `cmd` so that it dies with the worker, however the worker dies (an orphan would go
/// on working for nobody): SIGKILL on the death of its parent (`PR_SET_PDEATHSIG`). Linux ties
/// that signal to the *thread* that forked, and a runtime's worker threads end at shutdown,
/// possibly before the drain's SIGTERM grace is over; so the fork happens on a thread of its
/// own, which ends only when the returned [`Holder`] is dropped, after the program is gone.
fn spawn_held(mut cmd: tokio::process::Command) -> std::io::Result<(tokio::process::Child, Holder)> {
    // SAFETY: getpid(2) cannot fail.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe functions.
    unsafe { cmd.pre_exec(move || batchfan::local::die_with_parent(parent)) };
    let runtime = tokio::runtime::Handle::current();
    let (spawned_tx, spawned_rx) = std::sync::mpsc::sync_channel(1);
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new().name("batchfan-exec".into()).spawn(move || {
        let spawned = {
            let _runtime = runtime.enter(); // tokio's child reaper belongs to the runtime
            cmd.spawn()
        };
        let started = spawned.is_ok();
        let _ = spawned_tx.send(spawned);
        if started {
            let _ = hold_rx.recv(); // until the holder is dropped
        }
    })?;
    let child = spawned_rx.recv().map_err(|_| std::io::Error::other("the exec spawner thread ended"))??;
    Ok((child, Holder(Some(hold_tx))))
}

/// True while some process of the group runs (a zombie leader nobody reaped yet does not count).
fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { return false };
        // Fields after the command's closing paren: state ppid pgrp ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return false };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) && fields.first() != Some(&"Z")
    })
}

/// The chunk's scratch folder, removed when the handler ends.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create(spool: &Path, run_id: &str, index: u64) -> Result<WorkDir, WorkerError> {
        let path =
            spool.join(format!("batchfan-exec-{run_id}-{index:05}-{}-{}", std::process::id(), fastrand::u32(..)));
        std::fs::create_dir_all(&path)
            .map_err(|e| crate::output::spool_error("creating exec folder", &path, spool, e))?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Copies an item into the local file `path` in the spool folder `spool` (a full disk names it).
async fn copy_to_file(reader: &mut batchfan::records::ItemReader, path: &Path, spool: &Path) -> Result<(), BoxError> {
    let full = |op, e| crate::output::spool_error(op, path, spool, e);
    let mut file = tokio::fs::File::create(path).await.map_err(|e| full("creating", e))?;
    tokio::io::copy(reader, &mut file).await.map_err(|e| {
        // A write that found the disk full; any other error comes from the read side.
        if batchfan::error::is_no_space(&e) { full("writing", e) } else { batchfan::Error::from_io(e, path).into() }
    })?;
    file.flush().await.map_err(|e| full("writing", e))?;
    Ok(())
}

fn io_error(op: &'static str, path: &Path, e: std::io::Error) -> WorkerError {
    let dir = path.parent().unwrap_or(path);
    crate::output::spool_error(op, path, dir, e)
}

fn item_error(item: &Item, reason: &str) -> BoxError {
    format!("item `{}`: {reason}", item.key).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ExecOptions, String> {
        ExecOptions::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_and_their_conflicts() {
        let o = parse(&["--stdin", "--suffix", ".up", "--", "tr", "a-z", "A-Z"]).unwrap();
        assert!(o.stdin && !o.per_chunk && o.suffix == ".up" && o.program == ["tr", "a-z", "A-Z"]);
        assert!(parse(&["--per-chunk", "--", "wc", "{inputs}"]).unwrap().per_chunk);
        assert!(parse(&["--per-item", "--per-chunk", "--", "x"]).unwrap_err().contains("exclude"));
        assert!(parse(&["--per-chunk", "--", "cat", "{input}"]).unwrap_err().contains("{inputs}"));
        assert!(parse(&["--", "cat", "{inputs}"]).unwrap_err().contains("--per-chunk"));
        assert!(parse(&["--stdin", "--", "cat", "{input}"]).unwrap_err().contains("stdin"));
        assert!(parse(&["--"]).unwrap_err().contains("no program"));
        assert!(parse(&["--bogus", "--", "x"]).unwrap_err().contains("--bogus"));
        assert!(parse(&["--suffix", "a/b", "--", "x"]).unwrap_err().contains("/"));
    }

    #[test]
    fn output_keys_and_local_names() {
        let mut item = Item {
            key: "a/b/data.csv.gz".into(),
            size: 10,
            etag: None,
            mtime_ns: None,
            content_encoding: None,
            range: None,
        };
        assert_eq!(output_key(&item, ".out"), "a/b/data.csv.gz.out");
        assert_eq!(local_name(&item, false), "data.csv");
        assert_eq!(local_name(&item, true), "data.csv.gz");
        item.range = Some([0, 5]);
        assert_eq!(output_key(&item, ""), "a/b/data.csv.gz.range-0-5");
    }
}
