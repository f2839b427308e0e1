//! Every input checked before anything is written, and bad input is exit 2 (issue 16): every
//! place a command writes, paths that are files or unreadable, symlinks around the overlap check,
//! splits too fine to plan, empty inputs, logs of redriven attempts, exec for real programs.
//! Unwritable and unreadable folders are real: the commands run as uid 65534 (`setpriv`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use batchfan_tests::{bin, command, files, moto, run, write_dataset};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn worker() -> String {
    bin("batchfan-worker").display().to_string()
}

/// `batchfan run --local` of wordcount from `input` to `output`, with `extra` options.
fn local(input: &Path, output: &Path, extra: &[&str]) -> Command {
    let mut cmd = command("batchfan", None);
    cmd.args(["run", "--local", "--format", "json", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(extra)
        .args(["--", &worker(), "wordcount"]);
    cmd
}

/// A folder the unprivileged user may enter and read (temp dirs are 0700).
fn open_to_all(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `cmd` as uid 65534 (nobody), when `setpriv` can do that here.
fn as_nobody(cmd: &Command) -> Option<Command> {
    let probe = Command::new("setpriv").args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: setpriv cannot run a command as uid 65534 here");
        return None;
    }
    let mut nobody = Command::new("setpriv");
    nobody
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(reachable(cmd.get_program()))
        .args(cmd.get_args().map(reachable));
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => nobody.env(k, v),
            None => nobody.env_remove(k),
        };
    }
    nobody.env("HOME", "/tmp");
    Some(nobody)
}

/// `path` where uid 65534 can run it: a workspace binary in a folder it cannot enter (a clone
/// in a private temp folder) is linked (or copied) into a folder open to all, once per binary.
fn reachable(path: &std::ffi::OsStr) -> std::ffi::OsString {
    static OPEN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let file = Path::new(path);
    let runs = |p: &Path| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "test", "-x"])
            .arg(p)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !file.is_absolute() || !file.is_file() || runs(file) {
        return path.to_os_string();
    }
    let open = OPEN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("batchfan-tests-bins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        open_to_all(&dir);
        dir
    });
    let copy = open.join(file.file_name().unwrap());
    if !copy.exists() && std::fs::hard_link(file, &copy).is_err() {
        std::fs::copy(file, &copy).unwrap();
    }
    copy.into_os_string()
}

/// Asserts exit 2, a message naming `needle`, and nothing of batchfan's written under `output`.
fn refused(out: &std::process::Output, needle: &str, output: &Path) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{needle}: {stderr}");
    assert!(stderr.contains(needle), "{needle}: {stderr}");
    let written = if output.is_dir() { files(output) } else { Vec::new() };
    assert!(written.is_empty(), "{needle}: nothing may be written, found {written:?}");
}

// Regression (issue 16): `--log-dir afile` wrote the manifest and run.json, then exited 1; the
// same audit for every place a start writes: a file in the way, and a folder this user cannot
// write, each exit 2 with nothing written.
#[test]
fn every_place_a_local_run_writes_is_checked_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    open_to_all(tmp.path());
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 1);
    let afile = tmp.path().join("afile");
    std::fs::write(&afile, b"x").unwrap();
    let under = afile.join("below");
    for (what, bad) in [("--log-dir", &afile), ("--log-dir", &under)] {
        let out = run(&mut local(&input, &output, &["--log-dir", &bad.display().to_string()]));
        refused(&out, what, &output);
    }
    for var in ["BATCHFAN_SPOOL_DIR", "BATCHFAN_HOME"] {
        let out = run(local(&input, &output, &[]).env(var, &afile));
        refused(&out, var, &output);
    }
    let folder = tmp.path().join("a-folder");
    std::fs::create_dir_all(&folder).unwrap();
    for manifest in [&folder, &under] {
        let out = run(&mut local(&input, &output, &["--manifest", &manifest.display().to_string()]));
        refused(&out, "--manifest", &output);
    }
    let out = run(&mut local(&input, &afile, &[]));
    assert_eq!(out.status.code(), Some(2), "--output a file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output"));
    // Folders root owns, as uid 65534: the default log folder is this user's own.
    let locked = tmp.path().join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let shared_tmp = tmp.path().join("tmp");
    std::fs::create_dir_all(shared_tmp.join("batchfan")).unwrap();
    std::fs::set_permissions(&shared_tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let nobody_out = tmp.path().join("nobody-out");
    std::fs::create_dir_all(&nobody_out).unwrap();
    std::fs::set_permissions(&nobody_out, std::fs::Permissions::from_mode(0o777)).unwrap();
    for (what, var, value) in [
        ("--log-dir", None, Some(locked.join("logs"))),
        ("BATCHFAN_SPOOL_DIR", Some("BATCHFAN_SPOOL_DIR"), None),
        ("BATCHFAN_HOME", Some("BATCHFAN_HOME"), None),
    ] {
        let mut cmd = match &value {
            Some(dir) => local(&input, &nobody_out, &["--log-dir", &dir.display().to_string()]),
            None => local(&input, &nobody_out, &[]),
        };
        if let Some(var) = var {
            cmd.env(var, &locked);
        }
        cmd.env("TMPDIR", &shared_tmp);
        let Some(mut cmd) = as_nobody(&cmd) else { return };
        let out = run(&mut cmd);
        refused(&out, what, &nobody_out);
    }
    let Some(mut cmd) = as_nobody(local(&input, &locked.join("out"), &[]).env("TMPDIR", &shared_tmp)) else { return };
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(2), "an unwritable output folder");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not writable"));
    // With everything writable, uid 65534 runs: its default log folder is its own, under TMPDIR.
    let Some(mut cmd) = as_nobody(local(&input, &nobody_out, &[]).env("TMPDIR", &shared_tmp)) else { return };
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(json(&out)["log_dir"].as_str().unwrap().contains("batchfan-65534"));
}

// Regression (issue 16): these were exit 1, "work failed", though the input was bad.
#[test]
fn bad_paths_are_exit_2_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    open_to_all(tmp.path());
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 2);
    let list_dir = tmp.path().join("a-folder");
    std::fs::create_dir_all(&list_dir).unwrap();
    let out = run(&mut local(&input, &output, &["--input-list", &list_dir.display().to_string()]));
    refused(&out, "--input-list", &output);
    let out =
        run(&mut local(&input, &output, &["--input-list", &tmp.path().join("no-list.txt").display().to_string()]));
    refused(&out, "--input-list", &output);
    // An input subfolder this user cannot read.
    let secret = input.join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("s.txt"), b"hidden").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).unwrap();
    let nobody_out = tmp.path().join("nobody-out");
    std::fs::create_dir_all(&nobody_out).unwrap();
    std::fs::set_permissions(&nobody_out, std::fs::Permissions::from_mode(0o777)).unwrap();
    // A TMPDIR that user may write, so the listing is what is refused, not the log folder.
    let shared_tmp = tmp.path().join("tmp");
    std::fs::create_dir_all(&shared_tmp).unwrap();
    std::fs::set_permissions(&shared_tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let Some(mut cmd) = as_nobody(local(&input, &nobody_out, &[]).env("TMPDIR", &shared_tmp)) else { return };
    let out = run(&mut cmd);
    refused(&out, &secret.display().to_string(), &nobody_out);
}

// Regression (issue 16): `ln -s data/sales linkout; --input data/sales --output linkout/x` ran,
// and the next plan of the input counted the outputs as input.
#[test]
fn an_output_inside_the_input_through_a_symlink_is_refused_naming_the_link() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("data/sales");
    write_dataset(&input, 3);
    let link = tmp.path().join("linkout");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let output = link.join("x");
    let out = run(&mut local(&input, &output, &[]));
    refused(&out, "symbolic link", &input.join("x"));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&link.display().to_string()));
    // A link to the input as the input itself is fine.
    let out = run(&mut local(&link, &tmp.path().join("elsewhere"), &[]));
    assert_eq!(out.status.code(), Some(0));
}

// Regression (issue 16): `--split-bytes 1` was OOM-killed (exit 137) planning 155 MiB.
#[test]
fn a_split_finer_than_the_range_cap_is_refused_naming_a_size_that_fits() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("big.txt"), "a line of text\n".repeat(200_000)).unwrap(); // 3 MB
    let out = run(command("batchfan", None).args(["plan", "--split-bytes", "1", "--input"]).arg(&input));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--split-bytes") && stderr.contains("1000000 ranges") && stderr.contains("or more fits"),
        "{stderr}"
    );
    // The size it names fits.
    let size = stderr.split("; ").last().unwrap().split(" or more").next().unwrap().trim().to_string();
    let out = run(command("batchfan", None)
        .args(["plan", "--format", "json", "--split-bytes", &size, "--input"])
        .arg(&input));
    assert_eq!(out.status.code(), Some(0), "{size}");
    assert!(json(&out)["items"].as_u64().unwrap() <= 1_000_000);
}

// Issue 16: an empty daily partition is a run of zero chunks with --allow-empty.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_input_is_exit_2_or_with_allow_empty_a_run_of_zero_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    std::fs::create_dir_all(&input).unwrap();
    let out = run(&mut local(&input, &output, &[]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to plan"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&mut local(&input, &output, &["--allow-empty"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let run_id = json(&out)["run_id"].as_str().unwrap().to_string();
    let status = run(command("batchfan", None).args(["status", "--exit-status", "--format", "json"]).arg(&output));
    assert_eq!(status.status.code(), Some(0));
    let status = json(&status);
    assert_eq!((status["run_id"].as_str(), status["chunk_count"].as_u64()), (Some(run_id.as_str()), Some(0)));
    assert!(output.join(format!("_batchfan/runs/{run_id}/report.json")).exists());
    // On AWS Batch: a record and a report, nothing submitted.
    let moto = moto();
    let s3 = moto.s3().await;
    batchfan_tests::create_bucket(&s3, "empty-day").await;
    batchfan_tests::batch_queue(moto, "q-empty", false);
    let home = tempfile::tempdir().unwrap();
    let b = || {
        let mut cmd = command("batchfan", Some(moto));
        cmd.env("BATCHFAN_HOME", home.path());
        cmd
    };
    let reg = run(b().args(["register", "--name", "empty", "--image", "i:1", "--vcpu", "1", "--memory", "512"]));
    assert_eq!(reg.status.code(), Some(0));
    let submit = |extra: &[&str]| {
        run(b()
            .args(["submit", "--job-queue", "q-empty", "--job-definition", "empty", "--format", "json"])
            .args(["--input", "s3://empty-day/dt=2026-11-30/", "--output", "s3://empty-day/out/"])
            .args(extra))
    };
    assert_eq!(submit(&[]).status.code(), Some(2));
    let out = submit(&["--allow-empty"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let record = json(&out);
    assert_eq!(record["arrays"].as_array().map(Vec::len), Some(0), "nothing submitted: {record}");
    let waited = run(b().args(["wait", record["run_id"].as_str().unwrap(), "--interval", "0.1"]));
    assert_eq!(waited.status.code(), Some(0));
}

// Regression (issue 16): a local redrive overwrote the failed attempt's log.
#[test]
fn a_local_redrive_keeps_every_attempts_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, logs) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("logs"));
    write_dataset(&input, 5);
    let out = run(command("batchfan", None)
        .env("FAULT_FAIL_UNTIL_ATTEMPT", "2")
        .args(["run", "--local", "--children", "2", "--format", "json", "--log-dir"])
        .arg(&logs)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--", &bin("fault_worker").display().to_string()]));
    assert_eq!(out.status.code(), Some(1));
    let run_id = json(&out)["run_id"].as_str().unwrap().to_string();
    let first = std::fs::read_to_string(logs.join("child-00001.attempt-1.log")).unwrap();
    assert!(first.contains("injected failure on attempt 1"), "{first}");
    // The redrive's children see attempt 2 (AWS_BATCH_JOB_ATTEMPT), and succeed.
    let out = run(command("batchfan", None).env("FAULT_FAIL_UNTIL_ATTEMPT", "2").args(["redrive", &run_id]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(logs.join("child-00001.attempt-1.log")).unwrap(), first, "kept as it was");
    let second = std::fs::read_to_string(logs.join("child-00001.attempt-2.log")).unwrap();
    assert!(second.contains("chunk committed"), "{second}");
}

/// `batchfan run --local` of `batchfan-worker exec OPTIONS -- PROGRAM` over `input`.
fn exec(input: &Path, output: &Path, exec_args: &[&str]) -> std::process::Output {
    run(command("batchfan", None)
        .args(["run", "--local", "--max-items-per-chunk", "3", "--format", "json", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(["--", &worker(), "exec"])
        .args(exec_args))
}

// Issue 16: grep's exit 1 means "no match"; items whose program fails can be skipped, within a
// tolerance, and are listed in the marker and the report; outputs of compressed inputs read.
#[test]
fn exec_runs_real_programs_exit_codes_skips_and_readable_names() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for (name, body) in
        [("a.log", "ERROR one\nok\n"), ("b.log", "ok\nok\n"), ("c.log", "ERROR two\n"), ("bad.log", "x\n")]
    {
        std::fs::write(input.join(name), body).unwrap();
    }
    let grep = ["--stdin", "--suffix", ".errors", "--", "grep", "ERROR"];
    // grep finds nothing in b.log: exit 1, a failure by default...
    let out = exec(&input, &tmp.path().join("strict"), &grep);
    assert_eq!(out.status.code(), Some(1));
    // ...and success with --ok-exit-codes 0,1.
    let lenient = tmp.path().join("lenient");
    let out = exec(&input, &lenient, &[&["--ok-exit-codes", "0,1"], &grep[..]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(lenient.join("a.log.errors")).unwrap(), "ERROR one\n");
    assert_eq!(std::fs::read_to_string(lenient.join("b.log.errors")).unwrap(), "");
    // A program that fails on one item: skipped and listed, the rest committed.
    let script = r#"case "$1" in *bad*) echo "cannot parse $1" >&2; exit 7;; esac; cp "$1" "$2""#;
    let program = ["--", "sh", "-c", script, "sh", "{input}", "{output}"];
    let skipping = tmp.path().join("skipping");
    let out = exec(&input, &skipping, &[&["--item-failures", "skip"], &program[..]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(skipping.join("a.log").exists() && !skipping.join("bad.log").exists());
    let run_id = json(&out)["run_id"].as_str().unwrap().to_string();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(skipping.join(format!("_batchfan/runs/{run_id}/report.json"))).unwrap())
            .unwrap();
    let skipped: Vec<serde_json::Value> = report["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["skipped"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(skipped.len(), 1, "{report}");
    assert_eq!((skipped[0]["key"].as_str(), skipped[0]["exit_code"].as_i64()), (Some("bad.log"), Some(7)));
    assert!(skipped[0]["reason"].as_str().unwrap().contains("cannot parse"), "{report}");
    // Past the tolerance, the chunk fails.
    let out = exec(
        &input,
        &tmp.path().join("intolerant"),
        &[&["--item-failures", "skip", "--tolerated-item-failures", "0"], &program[..]].concat(),
    );
    assert_eq!(out.status.code(), Some(1));
    // A compressed input keeps a readable output name with --strip-compression-suffix.
    let gz = tmp.path().join("gz");
    std::fs::create_dir_all(&gz).unwrap();
    std::fs::write(
        gz.join("events.jsonl.gz"),
        batchfan_tests::compress(b"{\"a\":1}\n", batchfan_tests::Compress::Gzip),
    )
    .unwrap();
    let named = tmp.path().join("named");
    let out = exec(&gz, &named, &["--stdin", "--strip-compression-suffix", "--suffix", ".errors", "--", "cat"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(named.join("events.jsonl.errors")).unwrap(), "{\"a\":1}\n");
    // Every subcommand's --help is its own.
    let help = run(Command::new(worker()).args(["exec", "--help"]));
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--item-failures"));
    let help = run(Command::new(worker()).args(["wordcount", "--help"]));
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("wordcount"));
}

// Issue 16: messages people read: a long reason is cut with an ellipsis in the table (whole in
// the report), a missing program is named once, Fargate memory errors list the values.
#[test]
fn messages_read_as_people_read_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 6);
    let long = "x".repeat(300);
    let out = run(command("batchfan", None)
        .args(["run", "--local", "--children", "2", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--", "sh", "-c", &format!("echo {long} >&2; exit 9")]));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = stdout.lines().filter(|l| l.contains("xxxx")).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(rows.iter().all(|r| r.contains('…') && !r.contains(&long)), "{stdout}");
    let log_column: Vec<usize> = rows.iter().map(|r| r.find(".log").unwrap()).collect();
    assert_eq!(log_column[0], log_column[1], "columns stay aligned: {stdout}");
    let out = run(command("batchfan", None)
        .args(["run", "--local", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--", "no-such-program-xyz"]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("PATH").count(), 1, "{stderr}");
}

// Issue 16: the same audit for the commands that start runs on AWS: the run notes folder
// (BATCHFAN_HOME) and the manifest are checked before the claim, the manifest and the record;
// nothing is written to the bucket and nothing is submitted or sent.
#[tokio::test(flavor = "multi_thread")]
async fn submit_and_enqueue_check_every_place_they_write_first() {
    let moto = moto();
    let s3 = moto.s3().await;
    let _data = batchfan_tests::dataset_in_bucket(&s3, "audit", "in/", 2).await;
    batchfan_tests::batch_queue(moto, "q-audit", false);
    let (queue, _) = moto.queue("audit", 5, None).await;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let afile = tmp.path().join("afile");
    std::fs::write(&afile, b"x").unwrap();
    let reg = run(command("batchfan", Some(moto))
        .env("BATCHFAN_HOME", &home)
        .args(["register", "--name", "audit", "--image", "i:1", "--vcpu", "1", "--memory", "512"]));
    assert_eq!(reg.status.code(), Some(0), "{}", String::from_utf8_lossy(&reg.stderr));
    let input = ["--input", "s3://audit/in/", "--output", "s3://audit/out/"];
    let submit = ["submit", "--job-queue", "q-audit", "--job-definition", "audit"];
    let enqueue = ["enqueue", "--queue-url", queue.as_str()];
    let local_manifest = tmp.path().join("m.json").display().to_string();
    let under_a_file = afile.join("m.json").display().to_string();
    let cases: [(&[&str], &[&str], &Path, &str); 6] = [
        (&submit, &[], &afile, "BATCHFAN_HOME"),
        (&enqueue, &[], &afile, "BATCHFAN_HOME"),
        (&submit, &["--manifest", "s3://audit/in/"], &home, "--manifest"),
        (&enqueue, &["--manifest", "s3://audit/in/"], &home, "--manifest"),
        (&submit, &["--manifest", &local_manifest], &home, "--manifest"),
        (&enqueue, &["--manifest", &under_a_file], &home, "--manifest"),
    ];
    for (cmd, extra, home, needle) in cases {
        let out = run(command("batchfan", Some(moto)).env("BATCHFAN_HOME", home).args(cmd).args(input).args(extra));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?} {extra:?}: {stderr}");
        assert!(stderr.contains(needle), "{cmd:?} {extra:?}: {stderr}");
        let written = batchfan_tests::download_prefix(&s3, "audit", "out/").await;
        assert!(written.is_empty(), "{cmd:?} {extra:?}: nothing written, found {:?}", written.keys());
    }
    assert!(!Path::new(&local_manifest).exists());
    let batch = batchfan_tests::batch_client(&moto.endpoint).await;
    let jobs = batch.list_jobs().job_queue("q-audit").send().await.unwrap();
    assert!(jobs.job_summary_list().is_empty(), "nothing submitted");
    assert_eq!(moto.queue_counts(&queue).await, (0, 0, 0), "nothing sent");
}
