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
    /// Exit codes that mean success (`--ok-exit-codes 0,1`: grep's 1 is "no match"); default 0.
    pub ok_exit_codes: Vec<i32>,
    /// What an item whose program failed does to its chunk (`--item-failures skip|fail`).
    pub item_failures: ItemFailures,
    /// How many skipped items a chunk tolerates (`--tolerated-item-failures N|P%`).
    pub tolerated: Tolerated,
    /// Drop a compression extension from the input key before the suffix
    /// (`--strip-compression-suffix`: `events.jsonl.gz` gives `events.jsonl.errors`).
    pub strip_compression_suffix: bool,
    /// The program and its arguments, with placeholders.
    pub program: Vec<String>,
}

/// What an item whose program failed does to its chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ItemFailures {
    /// The chunk fails (the default).
    #[default]
    Fail,
    /// The item is skipped and listed (exit code, stderr tail) in the chunk's completion marker
    /// and the run report; the chunk commits while the skipped items are within
    /// [`ExecOptions::tolerated`].
    Skip,
}

/// Skipped items a chunk tolerates: a count, or a percent of its items.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Tolerated {
    /// At most this many (default 0 with `--item-failures fail`; with `skip`, every item).
    Count(u64),
    /// At most this percent of the chunk's items.
    Percent(f64),
    /// Any number.
    #[default]
    All,
}

impl Eq for Tolerated {}

impl Tolerated {
    /// Parses `N` or `P%`.
    pub fn parse(value: &str) -> Result<Tolerated, String> {
        let bad = || format!("--tolerated-item-failures `{value}` is not a count (5) or a percent (2.5%)");
        match value.trim().strip_suffix('%') {
            Some(p) => {
                let p: f64 = p.trim().parse().map_err(|_| bad())?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(bad());
                }
                Ok(Tolerated::Percent(p))
            }
            None => value.trim().parse().map(Tolerated::Count).map_err(|_| bad()),
        }
    }

    /// Whether `skipped` of `items` is within this.
    pub fn allows(self, skipped: u64, items: u64) -> bool {
        match self {
            Tolerated::Count(n) => skipped <= n,
            Tolerated::Percent(p) => skipped as f64 * 100.0 <= p * items as f64,
            Tolerated::All => true,
        }
    }
}

/// `batchfan-worker exec --help`.
pub const HELP: &str = "usage: batchfan-worker exec [OPTIONS] -- PROGRAM ARGS...

Runs any program as the worker (it needs to know nothing of S3).

  --per-item (default)   once per item: the input (decompressed unless --raw) is the file {input},
                         or stdin with --stdin; the program writes {output}, or stdout; that is
                         committed as OUTPUT/<input key><EXT> (a 1:1 transform mirrors the input tree)
  --per-chunk            once per chunk: {inputs} is a file listing the local copies of the chunk's
                         inputs; {output} (or stdout) becomes OUTPUT/part-NNNNN
  --stdin                hand the input on stdin (per item)
  --suffix EXT           appended to the input key to make the output key (per item)
  --strip-compression-suffix
                         drop the input key's compression extension (.gz .zst .bz2 .xz .snappy)
                         before EXT, when the input is handed over decompressed: events.jsonl.gz
                         with --suffix .errors gives events.jsonl.errors (without it:
                         events.jsonl.gz.errors)
  --raw                  hand inputs over as stored (compressed ones not decompressed)
  --ok-exit-codes LIST   exit codes that mean success, e.g. 0,1 (grep's 1 is \"no match\"); default 0
  --item-failures skip|fail
                         fail (default): an item whose program fails fails the chunk; skip: the item
                         is skipped and listed, with its exit code and stderr tail, in the chunk's
                         completion marker and the run report
  --tolerated-item-failures N|P%
                         with skip: the chunk still fails past N skipped items, or P% of its items

A split range's output key adds .range-START-END (zero-padded, so keys sort in range order)
before EXT. Placeholders in ARGS: {input} {output} {inputs} {key} {index} {attempt}. A failing
program fails the item with its exit code and last stderr lines; after SIGTERM it runs on until
BATCHFAN_STOP_TIMEOUT, then its process group gets SIGTERM and, 3 s later, SIGKILL.";

/// The placeholders an argument may hold.
pub const PLACEHOLDERS: [&str; 6] = ["{input}", "{output}", "{inputs}", "{key}", "{index}", "{attempt}"];

impl ExecOptions {
    /// Parses the options [`HELP`] lists, then `-- PROGRAM ARGS...`.
    pub fn parse(args: &[String]) -> Result<ExecOptions, String> {
        let mut options = ExecOptions {
            per_chunk: false,
            stdin: false,
            suffix: String::new(),
            raw: false,
            ok_exit_codes: vec![0],
            item_failures: ItemFailures::Fail,
            tolerated: Tolerated::All,
            strip_compression_suffix: false,
            program: Vec::new(),
        };
        let mut per_item = false;
        let mut tolerated = None;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = |example: &str| -> Result<String, String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => it.next().cloned().ok_or(format!("{flag} needs a value, e.g. {flag} {example}")),
                }
            };
            match flag {
                "--per-item" => per_item = true,
                "--per-chunk" => options.per_chunk = true,
                "--stdin" => options.stdin = true,
                "--raw" => options.raw = true,
                "--strip-compression-suffix" => options.strip_compression_suffix = true,
                "--suffix" => options.suffix = value(".out")?,
                "--ok-exit-codes" => {
                    options.ok_exit_codes = value("0,1")?
                        .split(',')
                        .map(|c| c.trim().parse::<i32>().ok().filter(|c| (0..=255).contains(c)))
                        .collect::<Option<Vec<i32>>>()
                        .filter(|c| !c.is_empty())
                        .ok_or("--ok-exit-codes takes exit codes 0 to 255 separated by commas, e.g. 0,1")?;
                }
                "--item-failures" => {
                    options.item_failures = match value("skip")?.as_str() {
                        "skip" => ItemFailures::Skip,
                        "fail" => ItemFailures::Fail,
                        other => return Err(format!("--item-failures `{other}` is not skip or fail")),
                    }
                }
                "--tolerated-item-failures" => tolerated = Some(Tolerated::parse(&value("5")?)?),
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
        match (options.item_failures, tolerated) {
            (ItemFailures::Fail, Some(_)) => {
                return Err("--tolerated-item-failures goes with --item-failures skip".into());
            }
            (ItemFailures::Skip, _) if options.per_chunk => {
                return Err("--item-failures is per item; a --per-chunk program's failure fails its chunk".into());
            }
            (_, Some(t)) => options.tolerated = t,
            _ => {}
        }
        Ok(options)
    }
}

/// The handler that runs `options.program` (see the module docs).
pub async fn handle(options: Arc<ExecOptions>, chunk: Chunk) -> Result<(), BoxError> {
    let work = WorkDir::create(chunk.spool_dir(), chunk.header().run_id.as_str(), chunk.index())?;
    if options.per_chunk {
        return per_chunk(&options, &chunk, &work).await;
    }
    let items = chunk.items().len() as u64;
    let mut skipped = 0u64;
    for (n, item) in chunk.items().iter().enumerate() {
        match per_item(&options, &chunk, &work, n, item).await {
            Ok(()) => {}
            Err(e) if options.item_failures == ItemFailures::Skip => {
                // Only the program's own failure is skipped; a storage fault fails the chunk.
                let Some(WorkerError::Program { message, code }) = e.downcast_ref::<WorkerError>() else {
                    return Err(e);
                };
                skipped += 1;
                tracing::warn!(key = %item.key, exit_code = code, "item skipped: {message}");
                chunk.skip_item(item, *code, message);
                if !options.tolerated.allows(skipped, items) {
                    return Err(Box::new(WorkerError::Program {
                        message: format!(
                            "{skipped} of {items} items failed, more than --tolerated-item-failures allows; the last: {message}"
                        ),
                        code: *code,
                    }));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The output key of an item: its key (without its compression extension with
/// `--strip-compression-suffix`, when the program sees it decompressed) plus the suffix; a byte
/// range of a split object adds `.range-START-END` so the ranges of one object do not overwrite
/// each other, zero-padded to the object size's digits so they sort in range order.
fn output_key(item: &Item, options: &ExecOptions) -> String {
    let mut key = item.key.as_str();
    if options.strip_compression_suffix
        && !options.raw
        && let Some(codec) = Codec::of(&item.key, item.content_encoding.as_deref())
    {
        key = key.strip_suffix(codec.extension()).filter(|k| !k.is_empty()).unwrap_or(key);
    }
    let suffix = &options.suffix;
    match item.range {
        Some([start, end]) => {
            let width = item.size.to_string().len();
            format!("{key}.range-{start:0width$}-{end:0width$}{suffix}")
        }
        None => format!("{key}{suffix}"),
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
    let key = output_key(item, options);
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
            widen_pipe(&pipe);
            // copy_buf writes the reader's own blocks: no second copy through an 8 KiB buffer.
            match tokio::io::copy_buf(&mut reader, &mut pipe).await {
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
    if status.code().is_some_and(|c| options.ok_exit_codes.contains(&c)) {
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

/// Pipe capacity asked for a program's stdin: Linux's default 64 KiB makes a wakeup of the
/// program (and of this worker) per 64 KiB; 1 MiB is the unprivileged maximum
/// (`/proc/sys/fs/pipe-max-size`). Refused sizes keep the default.
const STDIN_PIPE_BYTES: libc::c_int = 1 << 20;

fn widen_pipe(pipe: &tokio::process::ChildStdin) {
    use std::os::fd::AsRawFd;
    // SAFETY: F_SETPIPE_SZ on a pipe this process owns; a failure only leaves the size as it was.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, STDIN_PIPE_BYTES);
    }
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
    // The program starts with no signal blocked: the worker's threads hold SIGTERM (see
    // `hold_sigterm`), a mask that would survive exec and keep the drain's SIGTERM from it.
    unsafe {
        cmd.pre_exec(move || {
            batchfan::local::die_with_parent(parent)?;
            crate::init::clear_signal_mask()
        })
    };
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
        let o = parse(&[
            "--ok-exit-codes",
            "0,1",
            "--item-failures",
            "skip",
            "--tolerated-item-failures=10%",
            "--",
            "grep",
            "x",
        ])
        .unwrap();
        assert_eq!(
            (o.ok_exit_codes.as_slice(), o.item_failures, o.tolerated),
            (&[0, 1][..], ItemFailures::Skip, Tolerated::Percent(10.0))
        );
        assert!(parse(&["--tolerated-item-failures", "3", "--", "x"]).unwrap_err().contains("skip"));
        assert!(parse(&["--ok-exit-codes", "one", "--", "x"]).unwrap_err().contains("0 to 255"));
        assert!(parse(&["--item-failures", "maybe", "--", "x"]).unwrap_err().contains("maybe"));
        assert!(Tolerated::Count(2).allows(2, 10) && !Tolerated::Count(2).allows(3, 10));
        assert!(Tolerated::Percent(25.0).allows(1, 4) && !Tolerated::Percent(25.0).allows(2, 4));
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
        let mut options = parse(&["--suffix", ".out", "--", "x"]).unwrap();
        assert_eq!(output_key(&item, &options), "a/b/data.csv.gz.out");
        options.strip_compression_suffix = true;
        assert_eq!(output_key(&item, &options), "a/b/data.csv.out", "read decompressed: the name says so");
        options.raw = true;
        assert_eq!(output_key(&item, &options), "a/b/data.csv.gz.out", "read raw: still compressed");
        assert_eq!(local_name(&item, false), "data.csv");
        assert_eq!(local_name(&item, true), "data.csv.gz");
        // Ranges sort in range order: zero-padded to the object size's digits.
        item.size = 200_000_000;
        let plain = parse(&["--", "x"]).unwrap();
        let keys: Vec<String> = [[16_777_216, 100_663_296], [100_663_296, 200_000_000]]
            .into_iter()
            .map(|r| output_key(&Item { range: Some(r), ..item.clone() }, &plain))
            .collect();
        assert_eq!(keys[0], "a/b/data.csv.gz.range-016777216-100663296");
        assert!(keys[0] < keys[1], "{keys:?}");
    }
}
