//! The embedded executor: each chunk a local process with the environment AWS Batch gives.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::contract::{Header, env};
use crate::error::{Error, Result};
use crate::status::{ChunkFailure, StatusCounts};

/// How to run a plan's chunks as processes on this machine (`batchfan run --local`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LocalOptions {
    /// The program each child runs: a path, or a name looked up on `PATH` (see
    /// [`resolve_program`]).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Children at a time (default: the CPUs).
    pub parallel: usize,
    /// Attempts per child (a failed child is retried until this many; default 1).
    pub attempts: u32,
    /// Where each attempt's stdout and stderr go (`child-00000.attempt-1.log`); default a
    /// folder of this user's under the temp dir, `/tmp/batchfan-UID/RUN`.
    pub log_dir: Option<PathBuf>,
    /// How long children get after SIGTERM (on cancel) before their process groups are killed;
    /// default [`default_stop_deadline`].
    pub stop_deadline: Duration,
    /// Continue the newest run in the output instead of starting one: only its chunks without
    /// a completion marker run (refused when the plan, program or arguments changed, or while
    /// the process running it is alive).
    pub resume: bool,
}

impl LocalOptions {
    /// Options running `program` with `args`, with the defaults above.
    pub fn new(program: impl Into<PathBuf>, args: Vec<String>) -> LocalOptions {
        LocalOptions {
            program: program.into(),
            args,
            parallel: default_parallel(),
            attempts: 1,
            log_dir: None,
            stop_deadline: default_stop_deadline(),
            resume: false,
        }
    }
}

/// The base of default log folders: a folder of this user's under the temp dir
/// (`/tmp/batchfan-UID`), so users sharing a machine never write into each other's.
pub fn default_log_base() -> PathBuf {
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("batchfan-{uid}"))
}

/// How one execution of a run's chunks goes: [`LocalOptions`] resolved for a run.
#[derive(Debug, Clone)]
pub(crate) struct Children {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) parallel: usize,
    pub(crate) attempts: u32,
    pub(crate) log_dir: PathBuf,
    pub(crate) stop_deadline: Duration,
    /// Run only these chunks (a resumed or redriven run); `None`: all.
    pub(crate) chunks: Option<Vec<u64>>,
}

/// The children's drain time (`BATCHFAN_STOP_TIMEOUT`, default 25 s) plus 5 s to commit and exit.
pub fn default_stop_deadline() -> Duration {
    let drain = std::env::var(env::STOP_TIMEOUT).ok().and_then(|v| crate::contract::parse_seconds(&v));
    drain.unwrap_or(crate::contract::DEFAULT_STOP_TIMEOUT) + Duration::from_secs(5)
}

/// What a local run's record keeps beside the head every run record has (see
/// [`crate::run::RunRecord`]): enough to run its chunks without a marker again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LocalRecord {
    /// The program each child ran.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Children at a time.
    pub parallel: usize,
    /// Attempts per child.
    pub attempts: u32,
    /// Where the children's logs went (a redrive logs there too, its attempts numbered on);
    /// absent in records of earlier releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<String>,
}

impl LocalRecord {
    /// The record part of a run with these options.
    pub fn of(options: &LocalOptions) -> LocalRecord {
        LocalRecord {
            program: options.program.display().to_string(),
            args: options.args.clone(),
            parallel: options.parallel,
            attempts: options.attempts,
            log_dir: options.log_dir.as_ref().map(|d| d.display().to_string()),
        }
    }
}

/// What happens during a local run, for progress displays.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The run is planned and its manifest written (or, resumed, found): nothing ran yet.
    Planned {
        /// The run.
        run_id: String,
        /// Its manifest.
        manifest: String,
        /// Items in the plan.
        items: u64,
        /// Input bytes in the plan.
        bytes: u64,
        /// Chunks in the plan.
        chunks: u64,
        /// Chunks this execution runs (all, or a resumed run's without a marker).
        to_run: u64,
        /// It is an earlier run, resumed.
        resumed: bool,
    },
    /// A child attempt started.
    Started {
        /// Chunk index.
        index: u64,
        /// Attempt number.
        attempt: u32,
    },
    /// A child attempt failed and will be retried.
    Retrying {
        /// Chunk index.
        index: u64,
        /// The attempt that failed.
        attempt: u32,
        /// Why.
        reason: String,
    },
    /// A child finished for good.
    Finished {
        /// Chunk index.
        index: u64,
        /// Whether it succeeded.
        succeeded: bool,
        /// Items of its chunk.
        items: u64,
        /// Input bytes of its chunk.
        bytes: u64,
        /// Counts after this child.
        counts: StatusCounts,
    },
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run id.
    pub run_id: String,
    /// The manifest children read.
    pub manifest: String,
    /// Where outputs went.
    pub output: String,
    /// Final counts.
    pub counts: StatusCounts,
    /// Children that failed, by index.
    pub failed: Vec<ChunkFailure>,
    /// Items in succeeded children.
    pub items: u64,
    /// Input bytes in succeeded children.
    pub bytes: u64,
    /// Wall time in seconds.
    pub wall_seconds: f64,
    /// Where child logs are.
    pub log_dir: String,
    /// The run report's URI, once written (`batchfan::report`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

/// Finds `program` like a shell would (a path, or a name on `PATH`), so a typo fails before
/// anything is written.
pub fn resolve_program(program: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let not_found = |why: &str| Error::Spawn {
        program: program.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, why.to_string()),
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if executable(&path) { Ok(path) } else { Err(not_found("not an executable file")) };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| not_found("not found on PATH; give its path, or install it"))
}

struct Shared<'a> {
    header: &'a Header,
    manifest: &'a str,
    options: &'a Children,
    next: AtomicU64,
    state: Mutex<(StatusCounts, Vec<ChunkFailure>, u64, u64)>,
    on_event: &'a (dyn Fn(&Event) + Send + Sync),
    /// Set on cancel: start no child or attempt.
    stopping: AtomicBool,
    /// Pids of the children running now, for the SIGTERM on cancel.
    running: Mutex<HashSet<u32>>,
    /// The run's spool folder, handed to every child and removed at the end.
    spool: PathBuf,
}

/// Runs every chunk of a manifest as a local process, `parallel` at a time, retrying failures.
///
/// Children get `AWS_BATCH_JOB_ARRAY_INDEX` (for two or more chunks, as AWS Batch arrays do),
/// `AWS_BATCH_JOB_ID=<run-id>:<index>`, `AWS_BATCH_JOB_ATTEMPT` and `BATCHFAN_MANIFEST`, plus this
/// process's environment, and `BATCHFAN_SPOOL_DIR` set to a folder of this run (under the
/// variable's value, or the temp dir) that is removed when the run ends, however it ends.
///
/// When `cancel` completes (the CLI passes Ctrl-C and SIGTERM; the library installs no signal
/// handler) no new child starts, the running ones get SIGTERM (their drain path: a chunk that
/// finishes within its drain time commits), and the process groups of those still running after
/// the stop deadline are killed; then [`Error::Interrupted`] is returned. No child outlives the
/// call.
///
/// Temporary files that killed children left in a local output folder (`.NAME.batchfan-tmp-PID-N`
/// of processes no longer running) are removed at the end.
pub(crate) async fn run_children(
    header: &Header,
    manifest: &str,
    options: &Children,
    on_event: &(dyn Fn(&Event) + Send + Sync),
    cancel: impl std::future::Future<Output = ()>,
) -> Result<RunSummary> {
    std::fs::create_dir_all(&options.log_dir).map_err(|e| Error::io("creating log folder", &options.log_dir, e))?;
    let started = Instant::now();
    let total = options.chunks.as_ref().map_or(header.chunk_count, |c| c.len() as u64);
    let counts = StatusCounts { runnable: total, ..Default::default() };
    let spool = std::env::var_os(env::SPOOL_DIR).map(PathBuf::from).unwrap_or_else(std::env::temp_dir).join(format!(
        "batchfan-spool-{}-{}",
        header.run_id,
        std::process::id()
    ));
    std::fs::create_dir_all(&spool).map_err(|e| Error::io("creating spool folder", &spool, e))?;
    let shared = Shared {
        header,
        manifest,
        options,
        next: AtomicU64::new(0),
        state: Mutex::new((counts, Vec::new(), 0, 0)),
        on_event,
        stopping: AtomicBool::new(false),
        running: Mutex::new(HashSet::new()),
        spool,
    };
    let result = run_all(&shared, total, cancel).await;
    let _ = std::fs::remove_dir_all(&shared.spool);
    sweep_output(header);
    result?;
    let (counts, mut failed, items, bytes) = shared.state.into_inner().unwrap_or_else(|p| p.into_inner());
    failed.sort_by_key(|f| f.index);
    Ok(RunSummary {
        run_id: header.run_id.clone(),
        manifest: manifest.to_string(),
        output: header.output.clone(),
        counts,
        failed,
        items,
        bytes,
        wall_seconds: started.elapsed().as_secs_f64(),
        log_dir: options.log_dir.display().to_string(),
        report: None,
    })
}

/// Runs the workers; on cancel, SIGTERM to the running children, then SIGKILL at the deadline.
async fn run_all(shared: &Shared<'_>, total: u64, cancel: impl std::future::Future<Output = ()>) -> Result<()> {
    let workers = (0..shared.options.parallel.max(1).min(total.max(1) as usize)).map(|_| worker(shared));
    let all = futures_util::future::try_join_all(workers);
    tokio::pin!(all);
    tokio::select! {
        result = &mut all => return result.map(drop),
        () = cancel => {}
    }
    shared.stopping.store(true, Ordering::SeqCst);
    let pids: Vec<u32> = shared.running.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
    for pid in pids {
        if let Ok(pid) = i32::try_from(pid) {
            // SAFETY: kill only sends a signal to our own child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    if tokio::time::timeout(shared.options.stop_deadline, &mut all).await.is_err() {
        // Out of time: every process of every child's group goes, grandchildren that ignore
        // SIGTERM among them (the children themselves are killed when `all` is dropped).
        let pids: Vec<u32> = shared.running.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
        for pid in pids {
            kill_group(pid);
        }
    }
    Err(Error::Interrupted)
}

/// SIGKILL to the process group a child leads (each child runs in its own group).
fn kill_group(pid: u32) {
    if let Ok(pgid) = i32::try_from(pid) {
        // SAFETY: killpg only sends a signal; a group that is gone is ESRCH.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
    }
}

/// Makes the process about to be exec'd get SIGKILL when its parent (this process) dies, however
/// it dies (SIGKILL, a crash): an orphaned child would go on writing into an output that a
/// later run may own. Called between fork and exec.
pub fn die_with_parent(parent: libc::pid_t) -> std::io::Result<()> {
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of ours.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The parent died between the fork and the prctl: the signal will never come.
        if libc::getppid() != parent {
            libc::_exit(137);
        }
    }
    Ok(())
}

/// Blocks SIGTERM in the process about to be exec'd; the mask survives exec and a batchfan worker
/// unblocks it once its handler is installed. A SIGTERM in the worker's first milliseconds (the
/// loader, before `main`) then waits for the handler and starts a drain instead of killing the
/// worker by signal 15 with no log line (7 of 32 early signals did). Called between fork and exec.
pub fn hold_sigterm_across_exec() -> std::io::Result<()> {
    // SAFETY: sigemptyset, sigaddset and pthread_sigmask are async-signal-safe; the set is ours.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Removes temporary files of writers that are gone from a local output folder.
fn sweep_output(header: &Header) {
    if let Ok(crate::uri::Location::Local { path }) = header.output_location() {
        crate::store::LocalStore::new(crate::uri::Location::Local { path }).sweep_stale_temps();
    }
}

async fn worker(shared: &Shared<'_>) -> Result<()> {
    let only = shared.options.chunks.as_deref();
    let total = only.map_or(shared.header.chunk_count, |c| c.len() as u64);
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        if n >= total {
            return Ok(());
        }
        let index = only.map_or(n, |c| c[n as usize]);
        update(shared, |c| {
            c.runnable -= 1;
            c.running += 1;
        });
        let mut failure: Option<ChunkFailure> = None;
        let mut history = Vec::new();
        // A redriven or resumed chunk's attempts go on from its earlier ones: every attempt keeps
        // its own log.
        let first = next_attempt(&shared.options.log_dir, index);
        let last = first + shared.options.attempts.max(1) - 1;
        for attempt in first..=last {
            if attempt > first && shared.stopping.load(Ordering::SeqCst) {
                break;
            }
            (shared.on_event)(&Event::Started { index, attempt });
            match run_child(shared, index, attempt).await? {
                None => {
                    failure = None;
                    break;
                }
                Some(mut f) => {
                    if attempt < last {
                        (shared.on_event)(&Event::Retrying { index, attempt, reason: f.reason.clone() });
                    }
                    history.append(&mut f.history);
                    f.history = history.clone();
                    failure = Some(f);
                }
            }
        }
        let items = shared.header.chunk_items(index as usize);
        let bytes = shared.header.chunk_bytes(index as usize);
        let succeeded = failure.is_none();
        let counts = {
            let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            state.0.running -= 1;
            if succeeded {
                state.0.succeeded += 1;
                state.2 += items;
                state.3 += bytes;
            } else {
                state.0.failed += 1;
            }
            state.1.extend(failure);
            state.0
        };
        (shared.on_event)(&Event::Finished { index, succeeded, items, bytes, counts });
    }
}

/// The attempt number after the highest one of chunk `index` with a log in `log_dir` (1 for a
/// chunk that never ran there).
fn next_attempt(log_dir: &Path, index: u64) -> u32 {
    let prefix = format!("child-{index:05}.attempt-");
    std::fs::read_dir(log_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(&prefix)?.strip_suffix(".log")?.parse::<u32>().ok()
        })
        .max()
        .map_or(1, |n| n + 1)
}

fn update(shared: &Shared<'_>, f: impl FnOnce(&mut StatusCounts)) {
    let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut state.0);
}

/// Runs one attempt; `None` on success, the failure otherwise.
async fn run_child(shared: &Shared<'_>, index: u64, attempt: u32) -> Result<Option<ChunkFailure>> {
    let options = shared.options;
    let log_path = options.log_dir.join(format!("child-{index:05}.attempt-{attempt}.log"));
    let log = std::fs::File::create(&log_path).map_err(|e| Error::io("creating log", &log_path, e))?;
    let log_err = log.try_clone().map_err(|e| Error::io("opening log", &log_path, e))?;
    let started = crate::contract::now_ms();
    let mut command = tokio::process::Command::new(&options.program);
    command
        .args(&options.args)
        .env(env::LOG_FILE, &log_path)
        .env(env::MANIFEST, shared.manifest)
        .env(env::ATTEMPT, attempt.to_string())
        .env(env::SPOOL_DIR, &shared.spool)
        .stdin(Stdio::null())
        // Its own process group: a terminal's Ctrl-C reaches only this process, which stops the
        // children through their SIGTERM path instead of killing them mid-write.
        .process_group(0)
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true);
    if shared.header.chunk_count >= 2 {
        command.env(env::ARRAY_INDEX, index.to_string()).env(env::JOB_ID, format!("{}:{index}", shared.header.run_id));
    } else {
        command.env_remove(env::ARRAY_INDEX).env(env::JOB_ID, &shared.header.run_id);
    }
    // SAFETY: getpid(2) cannot fail.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe functions.
    unsafe { command.pre_exec(move || die_with_parent(parent).and_then(|()| hold_sigterm_across_exec())) };
    let mut child =
        command.spawn().map_err(|source| Error::Spawn { program: options.program.display().to_string(), source })?;
    let pid = child.id();
    shared.running.lock().unwrap_or_else(|p| p.into_inner()).extend(pid);
    let status = child.wait().await;
    if let Some(pid) = pid {
        // The child is gone; what it left running in its group goes with it, as processes of
        // a container go when its main process exits.
        kill_group(pid);
        shared.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&pid);
    }
    let status = status.map_err(|e| Error::io("waiting for", &options.program, e))?;
    if status.success() {
        return Ok(None);
    }
    use std::os::unix::process::ExitStatusExt;
    let reason = match (status.code(), status.signal()) {
        (_, Some(signal)) => format!("killed by signal {signal}"),
        (Some(code), _) => last_line(&log_path).unwrap_or_else(|| format!("exit code {code}")),
        _ => "unknown exit status".to_string(),
    };
    let job_id = if shared.header.chunk_count >= 2 {
        format!("{}:{index}", shared.header.run_id)
    } else {
        shared.header.run_id.clone()
    };
    let log = log_path.display().to_string();
    let attempt_report = crate::status::AttemptReport {
        attempt,
        job_id: Some(job_id),
        started_unix_ms: Some(started),
        ended_unix_ms: Some(crate::contract::now_ms()),
        exit_code: status.code(),
        reason: Some(reason.clone()),
        log: Some(crate::contract::LogLocation::File { path: log.clone() }),
        ..Default::default()
    };
    Ok(Some(ChunkFailure {
        index,
        attempts: attempt,
        exit_code: status.code(),
        reason,
        log,
        history: vec![attempt_report],
    }))
}

/// The last non-empty line of a log, for failure tables.
pub(crate) fn last_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    text.lines().rev().map(str::trim).find(|l| !l.is_empty()).map(|l| log_message(l).chars().take(300).collect())
}

/// The message of a harness log line (text or JSON), without its timestamp, level, span and
/// exit code field; any other line as it is.
fn log_message(line: &str) -> String {
    if line.starts_with('{')
        && let Ok(event) = serde_json::from_str::<serde_json::Value>(line)
        && let Some(message) = event["fields"]["message"].as_str()
    {
        return message.to_string();
    }
    // `2026-11-28T09:11:00.844086Z ERROR chunk{run_id=".." chunk=0 attempt=1}: message exit_code=75`
    let Some((stamp, rest)) = line.split_once(' ') else { return line.to_string() };
    if !(stamp.ends_with('Z') && stamp.starts_with(|c: char| c.is_ascii_digit())) {
        return line.to_string();
    }
    let rest = rest.trim_start();
    let rest = ["ERROR ", "WARN ", "INFO ", "DEBUG ", "TRACE "]
        .iter()
        .find_map(|level| rest.strip_prefix(level))
        .unwrap_or(rest)
        .trim_start();
    let rest = match rest.split_once("}: ") {
        Some((span, message)) if !span.contains(' ') || span.contains('{') => message,
        _ => rest,
    };
    let rest = match rest.rsplit_once(" exit_code=") {
        Some((message, code)) if code.chars().all(|c| c.is_ascii_digit()) => message,
        _ => rest,
    };
    rest.to_string()
}

/// What a local run's state is: running while the output's claim names it with a process that
/// is alive (on this host, or on another one: then it cannot be checked), its failures from the
/// report it wrote when its children ended.
pub(crate) async fn observe(
    stores: &crate::registry::StoreRegistry,
    run_id: &str,
    output: &str,
    chunk_count: u64,
    committed: &std::collections::BTreeSet<u64>,
) -> Result<crate::status::Observed> {
    let store = stores.store(&crate::uri::Location::parse(output)?)?;
    let holder = crate::claim::read(store.as_ref()).await?;
    let running_in = holder
        .filter(|c| c.run_id == run_id && !c.is_stale())
        .and_then(|c| c.pid.map(|pid| format!("{}:{pid}", c.host)));
    let written = crate::report::read(store.as_ref(), run_id).await?;
    let failed: Vec<ChunkFailure> =
        if running_in.is_some() { Vec::new() } else { written.map(|r| r.failures()).unwrap_or_default() };
    let failed_count = failed.iter().filter(|f| !committed.contains(&f.index)).count() as u64;
    let left = chunk_count.saturating_sub(committed.len() as u64 + failed_count);
    let counts = StatusCounts {
        running: if running_in.is_some() { left } else { 0 },
        succeeded: committed.len() as u64,
        failed: failed_count,
        ..StatusCounts::default()
    };
    Ok(crate::status::Observed {
        counts,
        complete: running_in.is_none(),
        failed,
        detail: crate::status::StatusDetail::Local { running_in },
    })
}

/// Stops a local run that runs on this host: SIGTERM to the process running it (its own drain
/// path: its children drain, then it exits 130). Returns that process, or nothing when the run
/// does not run here.
pub(crate) async fn cancel(stores: &crate::registry::StoreRegistry, run_id: &str, output: &str) -> Result<Vec<String>> {
    let store = stores.store(&crate::uri::Location::parse(output)?)?;
    let Some(claim) = crate::claim::read(store.as_ref()).await? else { return Ok(Vec::new()) };
    match claim.pid {
        Some(pid) if claim.run_id == run_id && claim.is_local() && crate::store::process_alive(pid) => {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: kill(2) only sends a signal; the claim names this run's own process.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            Ok(vec![format!("process {pid} on {}", claim.host)])
        }
        _ => Ok(Vec::new()),
    }
}

/// Default parallelism: the number of CPUs.
pub fn default_parallel() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::log_message;

    #[test]
    fn reasons_are_the_message_of_a_log_line() {
        let text = r#"2026-11-28T09:11:00.844086Z ERROR chunk{run_id="bf-1" chunk=0 attempt=1}: input `a b` changed: re-plan exit_code=3"#;
        assert_eq!(log_message(text), "input `a b` changed: re-plan");
        let json = r#"{"timestamp":"x","level":"ERROR","fields":{"message":"no space left","exit_code":75},"span":{}}"#;
        assert_eq!(log_message(json), "no space left");
        assert_eq!(log_message("Traceback (most recent call last):"), "Traceback (most recent call last):");
        assert_eq!(log_message("2026-11-28T09:11:00Z WARN drain deadline reached"), "drain deadline reached");
    }
}
