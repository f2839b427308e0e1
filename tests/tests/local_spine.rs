//! The fan-out spine on local folders: wordcount against a reference, exactly-once commits under
//! kills, SIGTERM, panics, retries, and every bad input exiting 2 with nothing written.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use batchfan_tests::{alive, children_of, command, files, merge_counts, reference_wordcount, run, write_dataset};

/// `batchfan run --local --input INPUT --output OUTPUT EXTRA... -- PROGRAM...`
fn local_cmd(input: &Path, output: &Path, extra: &[&str], program: &[&str]) -> Command {
    let mut cmd = command("batchfan", None);
    cmd.args(["run", "--local", "--input"]).arg(input).arg("--output").arg(output);
    cmd.args(extra).arg("--").args(program);
    cmd
}

fn run_local(input: &Path, output: &Path, extra: &[&str], program: &[&str]) -> std::process::Output {
    run(&mut local_cmd(input, output, extra, program))
}

fn worker() -> String {
    batchfan_tests::bin("batchfan-worker").display().to_string()
}

fn part_bodies(output: &Path) -> Vec<Vec<u8>> {
    files(output)
        .into_iter()
        .filter(|(k, _)| k.starts_with("part-"))
        .map(|(_, p)| std::fs::read(p).expect("read part"))
        .collect()
}

/// Everything under a folder, names only: "nothing written" means this stays empty.
fn listing(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    files(dir).into_iter().map(|(k, _)| k).collect()
}

#[test]
fn wordcount_over_a_local_folder_equals_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 1);
    let out = run_local(
        &input,
        &output,
        &["--children", "5", "--split-bytes", "4KiB", "--parallel", "3"],
        &[&worker(), "wordcount"],
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 failed"), "{stdout}");
    // Without a terminal the progress is a log line (at most one per 10 s) instead of a bar.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("progress: 1/5 children done (1 ok"), "{stderr}");
    let parts = part_bodies(&output);
    assert!(parts.len() >= 2, "expected several chunks, got {}", parts.len());
    assert_eq!(merge_counts(parts.iter().map(Vec::as_slice)), reference_wordcount(&input));
    // Each chunk has exactly one marker; nothing temporary is left in the output.
    let names = listing(&output);
    let markers = names.iter().filter(|k| k.contains("/done/")).count();
    assert_eq!(markers, parts.len());
    assert!(names.iter().all(|k| !k.contains(".batchfan-tmp-")), "{names:?}");
}

#[test]
fn json_summary_and_retries_until_success() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 2);
    let fault = batchfan_tests::bin("fault_worker").display().to_string();
    let extra = ["--format", "json", "--attempts", "3", "--max-items-per-chunk", "5"];
    let out = run(local_cmd(&input, &output, &extra, &[&fault]).env("FAULT_FAIL_UNTIL_ATTEMPT", "3"));
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["counts"]["succeeded"], 3);
    assert_eq!(summary["counts"]["failed"], 0);
    // Attempts 1 and 2 failed and left logs; attempt 3 committed.
    let logs = Path::new(summary["log_dir"].as_str().unwrap());
    assert!(logs.join("child-00000.attempt-2.log").exists());
    assert!(std::fs::read_to_string(logs.join("child-00000.attempt-1.log")).unwrap().contains("injected failure"));
}

#[test]
fn failed_children_exit_1_with_a_table() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 3);
    let fault = batchfan_tests::bin("fault_worker").display().to_string();
    let extra = ["--children", "2", "--attempts", "2"];
    let out = run(local_cmd(&input, &output, &extra, &[&fault]).env("FAULT_PANIC", "1"));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 failed"), "{stdout}");
    assert!(stdout.contains("handler panicked: injected panic"), "{stdout}");
    assert!(part_bodies(&output).is_empty());
}

/// Plans a manifest with `batchfan run` into `out` and returns its URI (wordcount over `input`).
fn manifest_for(input: &Path, output: &Path) -> String {
    batchfan_tests::manifest_for(input, output, 4)
}

fn worker_cmd(program: &str, manifest: &str, index: u64, spool: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("BATCHFAN_MANIFEST", manifest)
        .env("AWS_BATCH_JOB_ARRAY_INDEX", index.to_string())
        .env("AWS_BATCH_JOB_ATTEMPT", "1")
        .env("BATCHFAN_SPOOL_DIR", spool)
        .env_remove("AWS_BATCH_JOB_ID");
    cmd
}

fn wait_for_file(dir: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while listing(dir).is_empty() {
        assert!(Instant::now() < deadline, "no spool file appeared in {}", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_child_killed_mid_run_and_rerun_leaves_no_partial_or_duplicate_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
    write_dataset(&input, 4);
    let manifest = manifest_for(&input, &output);
    let fault = batchfan_tests::bin("fault_worker").display().to_string();
    let part = output.join("part-00001");

    // SIGKILL while the handler holds partial output.
    let mut child = worker_cmd(&fault, &manifest, 1, &spool).env("FAULT_SLEEP_MS", "30000").spawn().unwrap();
    wait_for_file(&spool, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!part.exists(), "a killed child must not leave output");
    assert!(listing(&output).iter().all(|k| !k.contains("/done/00001")));

    // The re-run commits once; a third run finds the marker and does nothing.
    let out = run(&mut worker_cmd(&fault, &manifest, 1, &spool));
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read(&part).unwrap();
    let modified = std::fs::metadata(&part).unwrap().modified().unwrap();
    assert!(!committed.is_empty());
    let out = run(&mut worker_cmd(&fault, &manifest, 1, &spool));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already committed"));
    assert_eq!(std::fs::read(&part).unwrap(), committed);
    assert_eq!(std::fs::metadata(&part).unwrap().modified().unwrap(), modified);
    let names = listing(&output);
    assert_eq!(names.iter().filter(|k| k.starts_with("part-00001")).count(), 1, "{names:?}");
    assert!(names.iter().all(|k| !k.contains(".batchfan-tmp-")), "{names:?}");
}

/// SIGTERMs a fault_worker on chunk 0 once its handler holds partial output (it then sleeps
/// `sleep_ms`); returns its exit code and how long it took to exit after the signal.
fn sigterm_mid_chunk(
    sleep_ms: &str,
    stop_timeout: &str,
) -> (Option<i32>, Duration, std::path::PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
    write_dataset(&input, 5);
    let manifest = manifest_for(&input, &output);
    let fault = batchfan_tests::bin("fault_worker").display().to_string();
    let mut child = worker_cmd(&fault, &manifest, 0, &spool)
        .env("FAULT_SLEEP_MS", sleep_ms)
        .env("BATCHFAN_STOP_TIMEOUT", stop_timeout)
        .spawn()
        .unwrap();
    wait_for_file(&spool, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(listing(&spool).is_empty(), "the spool file is removed");
    (status.code(), started.elapsed(), output, tmp)
}

// Issue 9: SIGTERM lets the chunk go on until BATCHFAN_STOP_TIMEOUT; past it the child exits
// 143 within the deadline plus a second, with nothing committed.
#[test]
fn sigterm_stops_the_chunk_with_143_and_commits_nothing() {
    let (code, took, output, _tmp) = sigterm_mid_chunk("30000", "1");
    assert_eq!(code, Some(143));
    // Far below the 30 s the chunk would sleep; generous for a busy machine.
    assert!(took < Duration::from_secs(15), "exit at the 1 s deadline, not after the chunk: {took:?}");
    assert!(took >= Duration::from_millis(900), "the drain waited for the deadline: {took:?}");
    assert!(!output.join("part-00000").exists());
}

// Issue 9: a chunk that finishes within the drain deadline after SIGTERM commits and exits 0,
// where before SIGTERM aborted it at once and a 95%-done chunk was lost.
#[test]
fn sigterm_with_a_second_of_work_left_lets_the_chunk_commit() {
    let (code, took, output, _tmp) = sigterm_mid_chunk("1500", "10");
    assert_eq!(code, Some(0), "the chunk finished within the drain deadline");
    assert!(took < Duration::from_secs(9), "the drain ended with the chunk, before its 10 s deadline: {took:?}");
    assert!(output.join("part-00000").exists(), "committed");
}

#[test]
fn an_input_changed_after_planning_fails_with_the_version_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
    write_dataset(&input, 6);
    let manifest = manifest_for(&input, &output);
    // f01.txt sits in chunk 0 (keys sorted: big.txt, bytes.txt, empty.txt, f01.txt, ...).
    std::fs::write(input.join("f01.txt"), b"changed content\n").unwrap();
    let out = run(worker_cmd(&worker(), &manifest, 0, &spool).arg("wordcount"));
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("f01.txt") && stderr.contains("changed since the plan"), "{stderr}");
    assert!(!output.join("part-00000").exists());
}

// Issue 6: keys are validated where stores resolve them: an item key with `..` in a crafted
// manifest makes the worker exit 2 without reading the file it names.
#[tokio::test(flavor = "multi_thread")]
async fn a_crafted_manifest_cannot_make_a_worker_read_outside_its_input() {
    use batchfan::plan::{PlanOptions, plan_objects};
    use batchfan::store::ObjectMeta;
    use batchfan::uri::Location;
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(tmp.path().join("secret.txt"), b"secret words\n").unwrap();
    let crafted =
        ObjectMeta { key: "../secret.txt".into(), size: 13, etag: None, mtime_ns: None, content_encoding: None };
    let input_location = Location::parse(&input.display().to_string()).unwrap();
    let plan = plan_objects(&input_location, vec![crafted], &PlanOptions::default()).unwrap();
    let manifest = tmp.path().join("crafted.jsonl").display().to_string();
    let client = batchfan::Client::from_env().await;
    let output_location = Location::parse(&output.display().to_string()).unwrap();
    batchfan::manifest::write_plan(client.stores(), &manifest, &plan, "bf-crafted", &output_location).await.unwrap();
    let out = run(worker_cmd(&worker(), &manifest, 0, &spool).arg("wordcount"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("../secret.txt") && stderr.contains("not allowed"), "{stderr}");
    assert!(!output.join("part-00000").exists(), "nothing committed");
}

#[test]
fn worker_configuration_errors_exit_2_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
    write_dataset(&input, 7);
    let manifest = manifest_for(&input, &output);
    let before = listing(&output);
    let garbled = tmp.path().join("garbled.jsonl");
    std::fs::write(&garbled, b"not a manifest\n").unwrap();
    let cases: Vec<(String, u64, &str)> = vec![
        (tmp.path().join("missing.jsonl").display().to_string(), 0, "does not exist"),
        (garbled.display().to_string(), 0, "not a valid batchfan manifest"),
        (manifest.clone(), 999, "out of range"),
        ("gs://bucket/m.jsonl".to_string(), 0, "unsupported scheme"),
    ];
    for (uri, index, message) in cases {
        let out = run(worker_cmd(&worker(), &uri, index, &spool).arg("wordcount"));
        assert_eq!(out.status.code(), Some(2), "{uri}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{uri}: {stderr}");
        // The worker's version line, then one clear error line.
        let lines: Vec<&str> = stderr.trim().lines().filter(|l| !l.contains("batchfan worker starting")).collect();
        assert_eq!(lines.len(), 1, "one clear error line: {stderr}");
    }
    let mut unset = worker_cmd(&worker(), &manifest, 0, &spool);
    unset.env_remove("BATCHFAN_MANIFEST").arg("wordcount");
    let out = run(&mut unset);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BATCHFAN_MANIFEST is not set"));
    assert_eq!(listing(&output), before);
}

#[test]
fn bad_run_inputs_exit_2_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_dataset(&input, 8);
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let output = tmp.path().join("out");
    let w = worker();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--input".into(), "s3:///nobucket".into()], "invalid location"),
        (vec!["--input".into(), "gs://b/x".into()], "unsupported scheme"),
        (vec!["--input".into(), tmp.path().join("missing").display().to_string()], "does not exist"),
        (vec!["--input".into(), empty.display().to_string()], "no input objects"),
        (vec!["--max-items-per-chunk".into(), "0".into()], "--max-items-per-chunk = 0"),
        (vec!["--max-bytes-per-chunk".into(), "0B".into()], "--max-bytes-per-chunk = 0"),
        (vec!["--split-bytes".into(), "0".into()], "--split-bytes = 0"),
        (vec!["--children".into(), "0".into()], "--children = 0"),
        (vec!["--children".into(), "20000".into()], "between 1 and 10000"),
        (vec!["--max-bytes-per-chunk".into(), "12XB".into()], "unknown unit"),
        (vec!["--include".into(), "[".into()], "not a valid glob"),
        (vec!["--attempts".into(), "11".into()], "--attempts = 11"),
        (vec!["--parallel".into(), "0".into()], "--parallel = 0"),
        (vec!["--include".into(), "*.csv".into()], "none left after --include"),
    ];
    for (args, message) in cases {
        let mut cmd = command("batchfan", None);
        cmd.args(["run", "--local"]);
        if !args.contains(&"--input".to_string()) {
            cmd.arg("--input").arg(&input);
        }
        cmd.args(&args).arg("--output").arg(&output).args(["--", &w, "wordcount"]);
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!output.exists(), "{args:?} wrote {:?}", listing(&output));
    }
    // A program that does not exist is caught before anything is written.
    let out = run_local(&input, &output, &[], &["no-such-program-batchfan"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found on PATH"));
    assert!(!output.exists());
}

#[test]
fn more_than_10000_chunks_is_an_error_naming_the_option() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir_all(&input).unwrap();
    for i in 0..10_001 {
        std::fs::write(input.join(format!("{i:05}")), b"").unwrap();
    }
    let out = run_local(&input, &output, &["--max-items-per-chunk", "1"], &["true"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("10001 chunks") && stderr.contains("--max-items-per-chunk"), "{stderr}");
    assert!(!output.exists());
}

#[test]
fn an_output_holding_an_earlier_run_needs_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 9);
    let w = worker();
    assert_eq!(run_local(&input, &output, &["--children", "4"], &[&w, "wordcount"]).status.code(), Some(0));
    let before = listing(&output);
    let out = run_local(&input, &output, &["--children", "2"], &[&w, "wordcount"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--overwrite"));
    assert_eq!(listing(&output), before);
    let out = run_local(&input, &output, &["--children", "2", "--overwrite"], &[&w, "wordcount"]);
    assert_eq!(out.status.code(), Some(0));
    let parts = part_bodies(&output);
    assert_eq!(parts.len(), 2, "old parts were removed");
    assert_eq!(merge_counts(parts.iter().map(Vec::as_slice)), reference_wordcount(&input));
}

#[test]
fn plan_prints_json_without_running() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_dataset(&input, 10);
    // Everything plan could write to: the input's folder, the run notes and the log folder.
    let home = tmp.path().join("home");
    let before = tree(tmp.path());
    let mut cmd = command("batchfan", None);
    cmd.args(["plan", "--format", "json", "--max-items-per-chunk", "5", "--exclude", "sub/*", "--input"])
        .arg(&input)
        .env("BATCHFAN_HOME", &home)
        .env("TMPDIR", tmp.path());
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(0));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = files(&input).into_iter().filter(|(k, _)| !k.starts_with("sub/")).count();
    assert_eq!(plan["objects"], kept);
    assert_eq!(plan["chunk_count"], kept.div_ceil(5));
    assert_eq!(tree(tmp.path()), before, "plan writes nothing");
}

/// Every file and folder under `dir` with its size, sorted.
fn tree(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            let name = entry.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if meta.is_dir() {
                stack.push(entry.path());
                out.push((format!("{name}/"), 0));
            } else {
                out.push((name, meta.len()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn ctrl_c_stops_a_local_run_with_130_and_leaves_no_partial_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
    write_dataset(&input, 30);
    let fault = batchfan_tests::bin("fault_worker").display().to_string();
    let mut child = local_cmd(&input, &output, &["--children", "2", "--parallel", "2"], &[&fault])
        .env("FAULT_SLEEP_MS", "30000")
        // Ctrl-C stops the children through their drain: 1 s here, then exit 143.
        .env("BATCHFAN_STOP_TIMEOUT", "1")
        .env("BATCHFAN_SPOOL_DIR", &spool)
        .spawn()
        .unwrap();
    wait_for_file(&spool, Duration::from_secs(20));
    let started = Instant::now();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(10), "Ctrl-C stops the run promptly");
    assert!(part_bodies(&output).is_empty(), "no chunk was committed");
}

#[test]
fn an_unreachable_store_is_a_transient_failure_with_exit_75() {
    let mut cmd = command("batchfan-worker", None);
    cmd.arg("wordcount")
        .env("BATCHFAN_MANIFEST", "s3://unreachable-bucket/m.jsonl")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(75), "a retry may succeed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("s3://unreachable-bucket"));
}

/// Records of a newline-delimited file as the harness splits them: `\n` or `\r\n` endings, a
/// final record without a newline counts.
fn records(bytes: &[u8]) -> Vec<&[u8]> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    body.split(|b| *b == b'\n').map(|r| r.strip_suffix(b"\r").unwrap_or(r)).collect()
}

#[test]
fn the_examples_run_a_pipeline_of_custom_workers_with_logs_in_the_chunk_span() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 9);
    let worker = batchfan_tests::bin("custom_worker");
    let out = run(command("pipeline", None)
        .arg(&input)
        .arg(&output)
        .arg(&worker)
        .env("BATCHFAN_LOG_FORMAT", "json")
        .env("TMPDIR", tmp.path()));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run_id = stdout.split_whitespace().nth(1).unwrap().trim_end_matches(':').to_string();
    assert!(run_id.starts_with("bf-"), "{stdout}");

    // Per item `key, range start, records, bytes`; summed per key they match the files.
    let mut seen: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for body in part_bodies(&output) {
        for line in String::from_utf8(body).unwrap().lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let entry = seen.entry(f[0].to_string()).or_default();
            entry.0 += f[2].parse::<u64>().unwrap();
            entry.1 += f[3].parse::<u64>().unwrap();
        }
    }
    let expected: std::collections::BTreeMap<String, (u64, u64)> = files(&input)
        .into_iter()
        .map(|(key, path)| {
            let bytes = std::fs::read(path).unwrap();
            let recs = records(&bytes);
            (key, (recs.len() as u64, recs.iter().map(|r| r.len() as u64).sum()))
        })
        .collect();
    assert_eq!(seen, expected);
    assert!(stdout.contains("chunk 3: ok"), "four chunks ran: {stdout}");

    // The handler's own events are JSON lines in the harness's span.
    // Logs default to a folder of this user's under the temp dir: `TMPDIR/batchfan-UID/RUN`.
    let logs = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path().join(&run_id))
        .find(|p| p.is_dir())
        .expect("the run's log folder");
    let log = std::fs::read_to_string(logs.join("child-00001.attempt-1.log")).unwrap();
    let events: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let item = events.iter().find(|e| e["message"] == "item done").expect("an item event");
    assert_eq!(item["span"]["run_id"], run_id.as_str());
    assert_eq!(item["span"]["chunk"], 1);
    assert_eq!(item["span"]["attempt"], 1);
    assert!(item["records"].as_u64().is_some() && item["key"].is_string(), "{item}");
    assert!(events.iter().any(|e| e["message"] == "chunk committed" && e["span"]["chunk"] == 1));
}

// Regression (issue 10, bug 6): printing into a closed pipe (`batchfan plan ... --format json |
// head`) panicked with exit 101. The CLI now ends quietly, by SIGPIPE, as `cat` does.
#[test]
fn a_closed_stdout_pipe_ends_the_cli_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for i in 0..3000 {
        std::fs::write(input.join(format!("{i:05}.txt")), "x\n").unwrap();
    }
    let mut child = command("batchfan", None)
        .args(["plan", "--max-items-per-chunk", "1", "--format", "json", "--input"])
        .arg(&input)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `head -c 1`: read a byte, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    std::io::Read::read_exact(&mut stdout, &mut byte).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    assert!(out.status.success() || out.status.signal() == Some(13), "quiet end: {:?}", out.status);
}

/// Starts `run --local` of fault_worker, waits for `n` children, SIGTERMs the parent; returns its
/// exit code, how long it took, the children it had, and the folders.
fn sigterm_parent(sleep_ms: &str, stop_timeout: &str) -> (Option<i32>, Duration, Vec<u32>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
    write_dataset(&input, 21);
    let fault = batchfan_tests::bin("fault_worker").display().to_string();
    let mut parent = local_cmd(&input, &output, &["--parallel", "2", "--max-items-per-chunk", "2"], &[&fault])
        .env("FAULT_SLEEP_MS", sleep_ms)
        .env("BATCHFAN_STOP_TIMEOUT", stop_timeout)
        .env("BATCHFAN_SPOOL_DIR", &spool)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let kids = loop {
        let kids = children_of(parent.id());
        // Both children hold partial output (their spool files exist) before the signal.
        let spooled = std::fs::read_dir(&spool)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|run| run.ok())
            .map_or(0, |run| std::fs::read_dir(run.path()).map_or(0, |d| d.count()));
        if kids.len() == 2 && spooled == 2 {
            break kids;
        }
        assert!(Instant::now() < deadline, "two children did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let sent = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &parent.id().to_string()]).status().unwrap().success());
    let status = parent.wait().unwrap();
    (status.code(), sent.elapsed(), kids, tmp)
}

// Regression (issue 10, bug 2): SIGTERM to `batchfan run --local` exited 143 at once and its
// children went on writing outputs. Now the children get SIGTERM (their drain path), the parent
// waits for them, and none outlives it; the run's spool folder is removed.
#[test]
fn sigterm_to_run_local_stops_its_children_and_none_outlives_it() {
    // Work longer than the drain: the children exit 143 after 1 s, nothing of theirs committed.
    let (code, took, kids, tmp) = sigterm_parent("30000", "1");
    assert_eq!(code, Some(130));
    assert!(took < Duration::from_secs(15), "at the 1 s deadline, not after the 30 s chunk: {took:?}");
    assert!(kids.iter().all(|&k| !alive(k)), "a child outlived the parent: {kids:?}");
    assert!(!tmp.path().join("out/part-00000").exists() && !tmp.path().join("out/part-00001").exists());
    assert_eq!(listing(&tmp.path().join("spool")), Vec::<String>::new(), "the run's spool folder is removed");

    // Work that ends within the drain: the running chunks commit, no new chunk starts.
    let (code, _, kids, tmp) = sigterm_parent("1500", "10");
    assert_eq!(code, Some(130));
    assert!(kids.iter().all(|&k| !alive(k)));
    let names = listing(&tmp.path().join("out"));
    let parts: Vec<&String> = names.iter().filter(|k| k.starts_with("part-")).collect();
    assert_eq!(parts, ["part-00000", "part-00001"], "the two running chunks drained and committed");
}

// Regression (issue 10, bug 8): after a storm of SIGKILLs, hidden temp files of dead writers sat
// in the output and spool files in the temp folder, and nothing removed them.
#[test]
fn a_kill_storm_leaves_no_stray_file_once_the_run_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
    write_dataset(&input, 22);
    // What earlier killed writers left: temp files of processes that no longer exist.
    std::fs::create_dir_all(output.join("_batchfan/runs/bf-old/done")).unwrap();
    std::fs::write(output.join(".part-00003.batchfan-tmp-4194000-00000000deadbeef"), b"partial").unwrap();
    std::fs::write(output.join("_batchfan/runs/bf-old/done/.00001.json.batchfan-tmp-4194001-1"), b"{").unwrap();
    // A temp file of a writer that still runs (another process writing into this folder) is
    // never swept: a sweep that removed it would break that writer's rename.
    let mut live = Command::new("sleep").arg("600").spawn().unwrap();
    let live_temp = format!(".notes.txt.batchfan-tmp-{}-1", live.id());
    std::fs::write(output.join(&live_temp), b"in progress").unwrap();
    let fault = batchfan_tests::bin("fault_worker").display().to_string();
    let mut parent = local_cmd(
        &input,
        &output,
        &["--parallel", "3", "--max-items-per-chunk", "1", "--attempts", "10", "--format", "json"],
        &[&fault],
    )
    .env("FAULT_SLEEP_MS", "150")
    .env("BATCHFAN_SPOOL_DIR", &spool)
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut rng = batchfan_tests::Rng::new(5);
    let mut kills = 0;
    // At most 5 kills per chunk, so every chunk keeps attempts left (a loaded machine runs few
    // chunks at once, and a storm could otherwise spend all 10 attempts of one).
    let mut per_chunk = std::collections::HashMap::<String, u32>::new();
    while kills < 25 && parent.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(rng.below(60)));
        let kids = children_of(parent.id());
        let Some(&pid) = kids.get(rng.below(kids.len().max(1) as u64) as usize) else { continue };
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let chunk = environ
            .split(|b| *b == 0)
            .find_map(|v| v.strip_prefix(b"AWS_BATCH_JOB_ARRAY_INDEX="))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        let count = per_chunk.entry(chunk).or_default();
        if *count < 5 && Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success() {
            *count += 1;
            kills += 1;
        }
    }
    let out = parent.wait_with_output().unwrap();
    assert!(kills >= 10, "only {kills} kills landed");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let names = listing(&output);
    let _ = live.kill();
    let _ = live.wait();
    let temps: Vec<&String> = names.iter().filter(|k| k.contains(".batchfan-tmp-")).collect();
    assert_eq!(temps, [&live_temp], "stray temp files swept, the live writer's kept");
    assert_eq!(listing(&spool), Vec::<String>::new(), "stray spool files");
}

// Regression (issue 10, bug 4): an output equal to, or inside, the input wrote part-* and
// _batchfan/ into the dataset; the next plan counted them as data. Overlaps are refused (exit 2,
// nothing written), and `_batchfan/` folders are never planned.
#[test]
fn an_output_overlapping_the_input_is_refused_and_batchfan_files_are_never_input() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_dataset(&input, 23);
    let before = listing(&input);
    for (output, how) in [
        (input.clone(), "is the input location"),
        (input.join("out"), "lies inside the input location"),
        (tmp.path().to_path_buf(), "holds the input location"),
    ] {
        let out = run_local(&input, &output, &[], &["true"]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--output") && stderr.contains(how), "{stderr}");
        assert_eq!(listing(&input), before, "nothing written");
    }
    // An old output copied into a dataset: its _batchfan/ files are not inputs.
    let old = input.join("copied/_batchfan/runs/bf-x");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("manifest.jsonl"), b"{}\n").unwrap();
    let out = run(command("batchfan", None).args(["plan", "--format", "json", "--input"]).arg(&input));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["objects"], before.len(), "{plan}");
}

// Regression (issue 10, bug 5): a non-UTF-8 file name planned as `bad\u{fffd}name.txt`, and its
// chunk then failed. It is refused at planning (exit 2) naming the path.
#[test]
fn a_non_utf8_file_name_is_refused_at_planning_naming_the_path() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 24);
    let bad = input.join(std::ffi::OsStr::from_bytes(b"bad\xffname.txt"));
    std::fs::write(&bad, b"words\n").unwrap();
    let out = run_local(&input, &output, &[], &[&worker(), "wordcount"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not valid UTF-8") && stderr.contains("bad\u{fffd}name.txt"), "{stderr}");
    assert!(listing(&output).is_empty(), "nothing written");
}

// Regression (issue 10, bug 9): two runs on one output. Without --overwrite both passed the
// "output is empty" check when they started within ~5 ms; with it, run B deleted run A's parts
// while A still reported success. A run now claims its output (a conditional create) before
// anything else: 20 pairs started 0 to 50 ms apart each end exact or refused, never mixed.
#[test]
fn twenty_pairs_of_runs_on_one_output_end_exact_or_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_dataset(&input, 25);
    let reference = reference_wordcount(&input);
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for pair in 0..20u64 {
        let output = tmp.path().join(format!("out-{pair}"));
        let extra: &[&str] = if pair % 2 == 0 { &["--children", "4"] } else { &["--children", "4", "--overwrite"] };
        let start = || {
            local_cmd(&input, &output, extra, &[&worker(), "wordcount"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let a = start();
        std::thread::sleep(Duration::from_micros(pair * 2_500));
        let b = start();
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let mut codes = Vec::new();
        for out in [&a, &b] {
            let code = out.status.code();
            let stderr = String::from_utf8_lossy(&out.stderr);
            match code {
                Some(0) => {}
                Some(2) => assert!(
                    stderr.contains("is in use by run") || stderr.contains("already holds"),
                    "pair {pair}: refused for another reason: {stderr}"
                ),
                other => panic!("pair {pair}: exit {other:?}: {stderr}"),
            }
            codes.push(code.unwrap_or(-1));
        }
        assert!(codes.contains(&0), "pair {pair}: one of the two runs completes");
        *outcomes.entry(format!("{codes:?}")).or_default() += 1;
        // Exact: the parts are one run's, each once, and they count the input.
        let names = listing(&output);
        let runs: std::collections::BTreeSet<&str> =
            names.iter().filter(|k| k.contains("/done/")).filter_map(|k| k.split('/').nth(2)).collect();
        assert_eq!(runs.len(), 1, "pair {pair}: markers of one run only: {names:?}");
        assert_eq!(names.iter().filter(|k| k.contains("/done/")).count(), 4, "pair {pair}: {names:?}");
        let parts = part_bodies(&output);
        assert_eq!(parts.len(), 4, "pair {pair}: {names:?}");
        assert_eq!(merge_counts(parts.iter().map(Vec::as_slice)), reference, "pair {pair}");
        assert!(!names.iter().any(|k| k.ends_with("claim.json")), "pair {pair}: the claim is released");
    }
    eprintln!("outcomes (exit codes of A, B): {outcomes:?}");
    // The pairs overlapped (each run takes far longer than the 0-50 ms between starts): the claim
    // was exercised, not just two runs one after the other.
    let refused: usize = outcomes.iter().filter(|(codes, _)| codes.contains('2')).map(|(_, n)| n).sum();
    assert!(refused >= 1, "at least one pair was refused as in use: {outcomes:?}");
}

// Rough edges (issue 10): completions for four shells, every --help ends with the exit codes,
// submit's --input says a local folder is not allowed, `plan` of more than 10,000 chunks shows
// the arrays a submit needs instead of failing.
#[test]
fn completions_help_texts_and_plans_past_one_array() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = run(command("batchfan", None).args(["completions", shell]));
        assert_eq!(out.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&out.stdout).contains("batchfan"), "{shell}");
    }
    for cmd in [&[][..], &["plan"], &["run"], &["submit"], &["status"], &["wait"], &["scale", "simulate"]] {
        let out = run(command("batchfan", None).args(cmd).arg("--help"));
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.trim_end().lines().last().unwrap_or_default().starts_with("Exit codes: 0 ok, 1 work failed"),
            "{cmd:?}: {help}"
        );
    }
    let help = run(command("batchfan", None).args(["submit", "--help"]));
    assert!(String::from_utf8_lossy(&help.stdout).contains("A local folder is not allowed"));

    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("many");
    std::fs::create_dir_all(&input).unwrap();
    for i in 0..10_001 {
        std::fs::File::create(input.join(format!("{i:05}"))).unwrap();
    }
    let out = run(command("batchfan", None)
        .args(["plan", "--format", "json", "--max-items-per-chunk", "1", "--input"])
        .arg(&input));
    assert_eq!(out.status.code(), Some(0));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((plan["chunk_count"].as_u64(), plan["arrays"].as_u64()), (Some(10_001), Some(2)));
    let out = run(command("batchfan", None).args(["plan", "--max-items-per-chunk", "1", "--input"]).arg(&input));
    assert!(String::from_utf8_lossy(&out.stdout).contains("arrays:  2"));
}

// The run report (issue 10): when a local run ends, `_batchfan/runs/RUN/report.json` lists each
// chunk with its status, attempts, exit code, reason, output key and bytes.
#[test]
fn a_local_run_leaves_a_report_of_every_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 26);
    let fault = batchfan_tests::bin("fault_worker").display().to_string();
    let out = run(local_cmd(&input, &output, &["--children", "3", "--attempts", "2", "--format", "json"], &[&fault])
        .env("FAULT_FAIL_CHUNK", "1"));
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report_path = summary["report"].as_str().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(report_path).unwrap()).unwrap();
    assert_eq!((report["succeeded"].as_u64(), report["failed"].as_u64()), (Some(2), Some(1)), "{report}");
    let chunks = report["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[1]["status"], "FAILED");
    assert_eq!((chunks[1]["attempts"].as_u64(), chunks[1]["exit_code"].as_i64()), (Some(2), Some(1)));
    assert_eq!(chunks[1]["reason"], "handler failed: injected poison in chunk 1", "{report}");
    for i in [0usize, 2] {
        assert_eq!(chunks[i]["status"], "SUCCEEDED");
        let key = format!("part-{i:05}");
        assert_eq!(chunks[i]["output_key"], key.as_str());
        assert_eq!(chunks[i]["bytes_out"].as_u64(), Some(std::fs::metadata(output.join(&key)).unwrap().len()));
    }
}

// `run --local --resume` (issue 10): after a failed run, only the chunks without a completion
// marker run again, under the same run id; a changed plan is refused.
#[test]
fn resume_reruns_only_the_chunks_without_a_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 27);
    let fault = batchfan_tests::bin("fault_worker").display().to_string();
    let extra = ["--children", "4", "--format", "json"];
    let out = run(local_cmd(&input, &output, &extra, &[&fault]).env("FAULT_FAIL_CHUNK", "2"));
    assert_eq!(out.status.code(), Some(1));
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let before = std::fs::metadata(output.join("part-00000")).unwrap().modified().unwrap();

    let resumed = [&extra[..], &["--resume"]].concat();
    let out = run(&mut local_cmd(&input, &output, &resumed, &[&fault]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(second["run_id"], first["run_id"], "the same run goes on");
    assert_eq!(second["counts"]["succeeded"], 1, "only chunk 2 ran: {second}");
    assert_eq!(std::fs::metadata(output.join("part-00000")).unwrap().modified().unwrap(), before, "chunk 0 untouched");
    assert_eq!(part_bodies(&output).len(), 4);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(second["report"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(report["succeeded"], 4);

    // The input changed: the plan is not the run's any more.
    std::fs::write(input.join("new.txt"), b"more words\n").unwrap();
    let out = run(&mut local_cmd(&input, &output, &resumed, &[&fault]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a run of the same plan"));
    // Nothing to resume in an empty output.
    let out = run(&mut local_cmd(&input, &tmp.path().join("empty"), &resumed, &[&fault]));
    assert_eq!(out.status.code(), Some(2));
}

// `status` and `redrive` take a local run's output location or id (issue 10): status shows the
// report, redrive runs the chunks without a marker with the program the run was started with.
// One chunk of three fails (issue 22): the dry run lists just it, and redriving it leaves the
// other chunks' outputs untouched (a redrive of everything would rewrite them).
#[test]
fn status_and_redrive_take_a_local_runs_output_location() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 28);
    let fault = batchfan_tests::bin("fault_worker").display().to_string();
    let home = tmp.path().join("home");
    let batchfan = || {
        let mut cmd = command("batchfan", None);
        cmd.env("BATCHFAN_HOME", &home);
        cmd
    };
    let out = run(batchfan()
        .args(["run", "--local", "--children", "3", "--format", "json", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--", &fault])
        .env("FAULT_FAIL_CHUNK", "1"));
    assert_eq!(out.status.code(), Some(1));
    let run_id =
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["run_id"].as_str().unwrap().to_string();

    let out = run(batchfan().args(["status", "--exit-status", "--format", "json"]).arg(&output));
    assert_eq!(out.status.code(), Some(1));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &status["report"];
    assert_eq!((status["run_id"].as_str(), report["failed"].as_u64()), (Some(run_id.as_str()), Some(1)), "{status}");
    assert_eq!(status["failed"].as_array().map(Vec::len), Some(1), "{status}");
    let failed = report["chunks"].as_array().unwrap().iter().find(|c| c["status"] == "FAILED").unwrap();
    assert_eq!(failed["index"], 1);
    assert!(failed["reason"].as_str().unwrap().contains("injected poison in chunk 1"), "{failed}");
    let kept = committed_files(&output);
    assert_eq!(kept.len(), 2, "chunks 0 and 2 committed: {kept:?}");

    // Redrive by run id; its children inherit its environment, here without the injected failure.
    let out = run(batchfan().args(["redrive", "--dry-run", "--format", "json", &run_id]));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["chunks"], serde_json::json!([1]));
    let out = run(batchfan().args(["redrive", &run_id]).env("FAULT_FAIL_CHUNK", "99"));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(batchfan().args(["status", "--exit-status"]).arg(&output));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 of 3 chunks committed, 0 failed"));
    let after = committed_files(&output);
    assert_eq!(after.len(), 3);
    for (name, stamp) in &kept {
        assert_eq!(after.get(name), Some(stamp), "{name} was not rewritten by the redrive");
    }
}

/// Parts and completion markers with their inode and modification time: a file rewritten by a
/// later attempt changes both.
fn committed_files(output: &Path) -> std::collections::BTreeMap<String, (u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    files(output)
        .into_iter()
        .filter(|(k, _)| k.contains("part-"))
        .map(|(k, p)| {
            let meta = std::fs::metadata(&p).unwrap();
            (k, (meta.ino(), meta.modified().unwrap()))
        })
        .collect()
}
