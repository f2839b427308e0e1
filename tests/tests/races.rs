//! No run can destroy or corrupt another's output (issue 14): kills, signals and races between
//! runs on one output, each ending in an exact output or a clean refusal, with nothing lost.
//! Real processes, real signals, the real CLI; S3 and SQS on moto.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use batchfan_tests::{
    alive, bin, command, create_bucket, eventually, files, hold_output, moto, processes_matching, run, upload_dir,
};

fn worker() -> String {
    bin("batchfan-worker").display().to_string()
}

/// `count` small text files `doc-0001.txt`...
fn docs(dir: &Path, count: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 1..=count {
        std::fs::write(dir.join(format!("doc-{i:04}.txt")), format!("line one of {i}\nline two of {i}\n")).unwrap();
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Every file of a folder (batchfan's own folder aside) with its bytes.
fn outputs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files(dir)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("_batchfan/"))
        .map(|(k, p)| (k, std::fs::read(p).unwrap()))
        .collect()
}

fn run_local(input: &Path, output: &Path, extra: &[&str], program: &[&str]) -> Command {
    let mut cmd = command("batchfan", None);
    cmd.args(["run", "--local", "--input"]).arg(input).arg("--output").arg(output).args(extra).arg("--").args(program);
    cmd
}

fn spawn_quiet(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

fn signal(pid: u32, name: &str) {
    assert!(Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap().success());
}

fn wait_code(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// An exec program per chunk that notes its start in `$STARTED`, sleeps, then writes `TEXT`.
fn slow_writer(text: &str, sleep: &str) -> Vec<String> {
    let script = format!(r#"touch "$STARTED/$$"; sleep {sleep}; echo {text} > "$1""#);
    [worker().as_str(), "exec", "--per-chunk", "--", "sh", "-c", &script, "sh", "{output}"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

// Regression (issue 14, bug 1): `--overwrite` deleted the previous output, then refused the
// run (a manifest already there, a manifest under a regular file): 0 of 260 parts were left.
#[test]
fn overwrite_checks_every_location_before_it_deletes_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    docs(&input, 6);
    let wordcount = |manifest: &str, overwrite: bool| {
        let mut cmd = command("batchfan", None);
        cmd.args(["run", "--local", "--max-items-per-chunk", "1", "--input"]).arg(&input).arg("--output").arg(&output);
        if overwrite {
            cmd.arg("--overwrite");
        }
        cmd.args(["--manifest", manifest, "--", &worker(), "wordcount"]);
        run(&mut cmd)
    };
    let manifest = tmp.path().join("m/manifest.jsonl").display().to_string();
    assert_eq!(wordcount(&manifest, false).status.code(), Some(0));
    let before = outputs(&output);
    assert_eq!(before.keys().filter(|k| k.starts_with("part-")).count(), 6, "{before:?}");

    let afile = tmp.path().join("afile");
    std::fs::write(&afile, b"not a folder").unwrap();
    let folder = tmp.path().join("m").display().to_string();
    let manifest_bytes = std::fs::read(&manifest).unwrap();
    let refused = [
        (manifest.clone(), "a manifest already exists"),
        (afile.display().to_string(), "already exists"),
        (format!("{}/m.jsonl", afile.display()), "regular file"),
        (folder.clone(), "a folder already exists"),
        (format!("{folder}/"), "names a folder"),
    ];
    for (bad, why) in refused {
        let out = wordcount(&bad, true);
        assert_eq!(out.status.code(), Some(2), "{why}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{why}: {stderr}");
        assert_eq!(outputs(&output), before, "{why}: nothing may be deleted before every check passed");
    }
    // An existing file named as --manifest is refused and left byte for byte as it was.
    assert_eq!(std::fs::read(&afile).unwrap(), b"not a folder");
    assert_eq!(std::fs::read(&manifest).unwrap(), manifest_bytes);
    let elsewhere = tmp.path().join("m2/manifest.jsonl").display().to_string();
    assert_eq!(wordcount(&elsewhere, true).status.code(), Some(0));
    assert_eq!(outputs(&output), before, "the same plan gives the same parts");
}

// Regression (issue 14, bug 1, S3): with an S3 output and a --manifest in a missing bucket,
// `run --local --overwrite` and `enqueue --overwrite` deleted the earlier run's parts first.
#[tokio::test(flavor = "multi_thread")]
async fn overwrite_of_an_s3_output_with_a_manifest_in_a_missing_bucket_deletes_nothing() {
    let moto = moto();
    let s3 = moto.s3().await;
    let tmp = tempfile::tempdir().unwrap();
    docs(tmp.path(), 5);
    create_bucket(&s3, "fence-s3").await;
    upload_dir(&s3, "fence-s3", "in/", tmp.path()).await;
    let (input, output) = ("s3://fence-s3/in/", "s3://fence-s3/out/");
    let home = tempfile::tempdir().unwrap();
    let batchfan = || {
        let mut cmd = command("batchfan", Some(moto));
        cmd.env("BATCHFAN_HOME", home.path());
        cmd
    };
    let first = run(batchfan()
        .args(["run", "--local", "--max-items-per-chunk", "1", "--input", input, "--output", output, "--"])
        .args([&worker(), "wordcount"]));
    assert_eq!(first.status.code(), Some(0));
    let before = batchfan_tests::download_prefix(&s3, "fence-s3", "out/part-").await;
    assert_eq!(before.len(), 5);
    let out = run(batchfan()
        .args(["run", "--local", "--overwrite", "--max-items-per-chunk", "1", "--input", input, "--output", output])
        .args(["--manifest", "s3://no-such-bucket-here/m.jsonl", "--"])
        .args([&worker(), "wordcount"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-bucket-here"));
    assert_eq!(batchfan_tests::download_prefix(&s3, "fence-s3", "out/part-").await, before);

    let (queue, _) = moto.queue("fence-overwrite", 30, None).await;
    let out = run(batchfan()
        .args(["enqueue", "--overwrite", "--queue-url", &queue, "--input", input, "--output", output])
        .args(["--manifest", "s3://no-such-bucket-here/m.jsonl"]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(batchfan_tests::download_prefix(&s3, "fence-s3", "out/part-").await, before);
    assert_eq!(moto.queue_counts(&queue).await, (0, 0, 0), "nothing was sent");
}

// Regression (issue 14, bug 2): children of a SIGKILLed `run --local` went on and wrote their
// parts into the output of the next run (`--overwrite`, another plan) after it had finished.
#[test]
fn children_of_a_killed_run_die_with_it_and_never_write_into_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, started) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("started"));
    docs(&input, 4);
    std::fs::create_dir_all(&started).unwrap();
    let sleep = format!("3.3{}", std::process::id());
    let first = slow_writer("FIRST", &sleep);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let mut parent = spawn_quiet(
        run_local(&input, &output, &["--max-items-per-chunk", "1", "--parallel", "4"], &first).env("STARTED", &started),
    );
    assert!(eventually(Duration::from_secs(30), || count_files(&started) == 4), "the children did not start");
    parent.kill().unwrap();
    parent.wait().unwrap();
    // The children, and the programs they run, die with the parent: none waits out its sleep.
    // (What those programs started themselves, the `sleep`, may run on: it can commit nothing.)
    // The harness's and the program's command lines hold the script; the `sleep`'s does not.
    let orphans = || processes_matching(&format!("sleep {sleep}; echo FIRST"));
    assert!(eventually(Duration::from_secs(2), || orphans().is_empty()), "orphans of the killed run: {:?}", orphans());
    let second = slow_writer("SECOND", "0");
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let out =
        run(run_local(&input, &output, &["--overwrite", "--max-items-per-chunk", "2"], &second)
            .env("STARTED", &started));
    assert_eq!(out.status.code(), Some(0));
    // Past the moment the first run's children would have written.
    std::thread::sleep(Duration::from_millis(3500));
    let parts = outputs(&output);
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(parts.values().all(|b| b == b"SECOND\n"), "{parts:?}");
    let status = run(command("batchfan", None).args(["status", "--exit-status"]).arg(&output));
    assert_eq!(status.status.code(), Some(0));
}

// Regression (issue 14, bug 2, fencing): a child of a replaced run commits nothing, whoever
// holds the output now; a write that slips through the window is seen, never trusted.
#[test]
fn a_child_of_a_replaced_run_is_refused_and_a_late_write_is_seen_and_redriven() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
    docs(&input, 3);
    let first = run(&mut run_local(
        &input,
        &output,
        &["--format", "json", "--max-items-per-chunk", "1"],
        &[&worker(), "wordcount"],
    ));
    assert_eq!(first.status.code(), Some(0));
    let old_manifest = json(&first)["manifest"].as_str().unwrap().to_string();
    let second = slow_writer("SECOND", "0");
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let out =
        run(run_local(&input, &output, &["--format", "json", "--overwrite", "--max-items-per-chunk", "1"], &second)
            .env("STARTED", tmp.path()));
    assert_eq!(out.status.code(), Some(0));
    let second_run = json(&out)["run_id"].as_str().unwrap().to_string();
    let expected = outputs(&output);
    assert!(expected.values().all(|b| b == b"SECOND\n"));

    // A straggler of the first run, once the output is free and once the second run holds it.
    for held in [false, true] {
        if held {
            hold_output(&output, &second_run);
        }
        let straggler = run(Command::new(worker())
            .arg("wordcount")
            .env("BATCHFAN_MANIFEST", &old_manifest)
            .env("AWS_BATCH_JOB_ARRAY_INDEX", "1")
            .env("BATCHFAN_SPOOL_DIR", &spool)
            .env_remove("AWS_BATCH_JOB_ID"));
        assert_eq!(straggler.status.code(), Some(4), "exit::FENCED");
        let stderr = String::from_utf8_lossy(&straggler.stderr);
        assert!(stderr.contains("no longer holds output"), "{stderr}");
        if held {
            assert!(stderr.contains(&format!("run {second_run} holds it now")), "{stderr}");
        }
        assert_eq!(outputs(&output), expected, "the straggler wrote nothing");
    }
    std::fs::remove_file(output.join("_batchfan/claim.json")).unwrap();

    // A write that slipped through the window between a check and its write.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(output.join("part-00001"), b"late write of a replaced run\n").unwrap();
    let status = run(command("batchfan", None).args(["status", "--format", "json"]).arg(&output));
    let status = json(&status);
    let report = &status["report"];
    assert_eq!(report["chunks"][1]["status"], "NOT_COMMITTED", "{status}");
    assert!(report["chunks"][1]["reason"].as_str().unwrap().contains("changed after the commit"), "{status}");
    assert_eq!(report["chunks"][0]["status"], "SUCCEEDED");
    let exit = run(command("batchfan", None).args(["status", "--exit-status"]).arg(&output));
    assert_eq!(exit.status.code(), Some(1));
    let dry = run(command("batchfan", None).args(["redrive", "--dry-run", "--format", "json"]).arg(&output));
    assert_eq!(json(&dry)["chunks"], serde_json::json!([1]));
    let redrive = run(command("batchfan", None).args(["redrive"]).arg(&output).env("STARTED", tmp.path()));
    assert_eq!(redrive.status.code(), Some(0));
    assert_eq!(outputs(&output), expected);
}

// Regression (issue 14, bugs 2 and 6): SIGHUP (a closed terminal) killed `run --local` with
// exit 129 and orphaned its children; at the stop deadline grandchildren that ignore SIGTERM
// (`sh -c 'trap "" TERM; sleep ...'`) kept running with ppid 1.
#[test]
fn sighup_and_sigterm_stop_a_local_run_and_no_process_of_it_outlives_the_deadline() {
    // Sleep lengths of this test process alone, so processes of another test run never count.
    let id = std::process::id();
    for (sig, sleep) in [("HUP", format!("61.1{id}")), ("TERM", format!("61.2{id}"))] {
        let tmp = tempfile::tempdir().unwrap();
        let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
        docs(&input, 3);
        let script = format!(r#"trap "" TERM; sleep {sleep}"#);
        let mut parent = spawn_quiet(
            run_local(&input, &output, &["--max-items-per-chunk", "1", "--parallel", "3"], &["sh", "-c", &script])
                .env("BATCHFAN_STOP_TIMEOUT", "1"),
        );
        let needle = format!("sleep {sleep}");
        // Three children, each a `sleep` (and its `sh`, unless the shell exec'd the sleep).
        assert!(eventually(Duration::from_secs(20), || processes_matching(&needle).len() >= 3));
        signal(parent.id(), sig);
        // The deadline is the drain (1 s) + 5 s.
        assert_eq!(wait_code(&mut parent, Duration::from_secs(20)), Some(130), "SIG{sig}");
        assert!(
            eventually(Duration::from_secs(1), || processes_matching(&needle).is_empty()),
            "SIG{sig}: survivors {:?}",
            processes_matching(&needle)
        );
    }
}

// Regression (issue 14, bug 3): `--resume` was accepted while the run it resumed still ran:
// both ran chunks at once in one spool folder, and the first to end freed the output.
#[test]
fn resume_of_a_run_that_still_runs_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, started) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("started"));
    docs(&input, 3);
    std::fs::create_dir_all(&started).unwrap();
    let program = slow_writer("ONE", "1");
    let program: Vec<&str> = program.iter().map(String::as_str).collect();
    let args = ["--max-items-per-chunk", "1", "--parallel", "1"];
    let mut original = spawn_quiet(run_local(&input, &output, &args, &program).env("STARTED", &started));
    assert!(eventually(Duration::from_secs(20), || count_files(&started) >= 1));
    let resume =
        run(run_local(&input, &output, &[&args[..], &["--resume"]].concat(), &program).env("STARTED", &started));
    assert_eq!(resume.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&resume.stderr);
    assert!(stderr.contains("still running"), "{stderr}");
    // A third run cannot take the output either while the first runs.
    let third = run(&mut run_local(&input, &output, &["--overwrite"], &["true"]));
    assert_eq!(third.status.code(), Some(2));
    assert_eq!(wait_code(&mut original, Duration::from_secs(60)), Some(0));
    let parts = outputs(&output);
    assert_eq!(parts.len(), 3);
    assert!(parts.values().all(|b| b == b"ONE\n"), "{parts:?}");
}

// Regression (issue 14, bug 4): `--resume` with another program mixed two programs' parts.
#[test]
fn resume_with_another_program_is_refused_and_with_the_same_one_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, started) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("started"));
    docs(&input, 4);
    std::fs::create_dir_all(&started).unwrap();
    let program = slow_writer("SAME", "0.4");
    let program: Vec<&str> = program.iter().map(String::as_str).collect();
    let args = ["--max-items-per-chunk", "1", "--parallel", "1"];
    let mut original = spawn_quiet(run_local(&input, &output, &args, &program).env("STARTED", &started));
    let markers = output.join("_batchfan/runs");
    let committed =
        || if markers.exists() { files(&markers).iter().filter(|(k, _)| k.contains("/done/")).count() } else { 0 };
    assert!(eventually(Duration::from_secs(30), || committed() >= 1), "no chunk committed");
    original.kill().unwrap();
    original.wait().unwrap();
    let other = slow_writer("OTHER", "0");
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    let refused =
        run(run_local(&input, &output, &[&args[..], &["--resume"]].concat(), &other).env("STARTED", &started));
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("same program"));
    let resumed =
        run(run_local(&input, &output, &[&args[..], &["--resume"]].concat(), &program).env("STARTED", &started));
    assert_eq!(resumed.status.code(), Some(0));
    let parts = outputs(&output);
    assert_eq!(parts.len(), 4, "{parts:?}");
    assert!(parts.values().all(|b| b == b"SAME\n"), "{parts:?}");
}

// Regression (issue 14, bug 5): `--overwrite` left an earlier run's mirrored output of a
// removed input behind, and deleted a user's `part-00001.bak`.
#[test]
fn overwrite_deletes_exactly_what_earlier_runs_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    docs(&input, 4);
    let upper = [
        worker(),
        "exec".into(),
        "--stdin".into(),
        "--suffix".into(),
        ".upper".into(),
        "--".into(),
        "tr".into(),
        "a-z".into(),
        "A-Z".into(),
    ];
    let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
    assert_eq!(run(&mut run_local(&input, &output, &["--max-items-per-chunk", "2"], &upper)).status.code(), Some(0));
    assert!(output.join("doc-0004.txt.upper").exists());
    std::fs::write(output.join("part-00001.bak"), b"the user's").unwrap();
    std::fs::write(output.join("notes.txt"), b"also the user's").unwrap();
    std::fs::remove_file(input.join("doc-0004.txt")).unwrap();
    assert_eq!(
        run(&mut run_local(&input, &output, &["--overwrite", "--max-items-per-chunk", "2"], &upper)).status.code(),
        Some(0)
    );
    let now: Vec<String> = outputs(&output).into_keys().collect();
    assert_eq!(
        now,
        ["doc-0001.txt.upper", "doc-0002.txt.upper", "doc-0003.txt.upper", "notes.txt", "part-00001.bak"],
        "the removed input's output is gone, the user's files stay"
    );
}

// Regression (issue 14, bug 11): a start that failed after the manifest was written (its
// read-back cut, exit 75) left the manifest, and the same command was then refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_start_takes_back_its_manifest_and_the_same_command_then_runs() {
    use batchfan_tests::proxy::{S3Faults, start_s3_fault_proxy};
    let moto = moto();
    let s3 = moto.s3().await;
    let tmp = tempfile::tempdir().unwrap();
    docs(tmp.path(), 3);
    create_bucket(&s3, "fence-start").await;
    upload_dir(&s3, "fence-start", "in/", tmp.path()).await;
    let proxy = start_s3_fault_proxy(
        &moto.endpoint,
        S3Faults { fail_gets_of: Some("daily.jsonl"), seed: 5, ..Default::default() },
    );
    let home = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--local",
        "--input",
        "s3://fence-start/in/",
        "--output",
        "s3://fence-start/out/",
        "--manifest",
        "s3://fence-start/manifests/daily.jsonl",
        "--",
    ];
    let failed = run(command("batchfan", Some(moto))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_MAX_ATTEMPTS", "2")
        .env("BATCHFAN_HOME", home.path())
        .args(args)
        .args([&worker(), "wordcount"]));
    assert_eq!(failed.status.code(), Some(75), "the manifest cannot be read back: transient");
    let left = batchfan_tests::download_prefix(&s3, "fence-start", "").await;
    assert!(!left.keys().any(|k| k.starts_with("manifests/") || k.ends_with("claim.json")), "{:?}", left.keys());
    let again = run(command("batchfan", Some(moto))
        .env("BATCHFAN_HOME", home.path())
        .args(args)
        .args([&worker(), "wordcount"]));
    assert_eq!(again.status.code(), Some(0));
}

// Regression (issue 14, bug 10): an incomplete multipart upload of a killed child stayed under
// the output; a run aborts those under its output at its start and end.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_aborts_unfinished_multipart_uploads_under_its_output() {
    let moto = moto();
    let s3 = moto.s3().await;
    let tmp = tempfile::tempdir().unwrap();
    docs(tmp.path(), 2);
    create_bucket(&s3, "fence-mpu").await;
    upload_dir(&s3, "fence-mpu", "in/", tmp.path()).await;
    // What a child SIGKILLed during a 100 MB commit leaves.
    let upload = s3.create_multipart_upload().bucket("fence-mpu").key("out/part-00000").send().await.unwrap();
    s3.upload_part()
        .bucket("fence-mpu")
        .key("out/part-00000")
        .upload_id(upload.upload_id().unwrap())
        .part_number(1)
        .body(vec![b'x'; 5 << 20].into())
        .send()
        .await
        .unwrap();
    let elsewhere = s3.create_multipart_upload().bucket("fence-mpu").key("other/big").send().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = run(command("batchfan", Some(moto))
        .env("BATCHFAN_HOME", home.path())
        .args(["run", "--local", "--input", "s3://fence-mpu/in/", "--output", "s3://fence-mpu/out/", "--"])
        .args([&worker(), "wordcount"]));
    assert_eq!(out.status.code(), Some(0));
    let uploads = s3.list_multipart_uploads().bucket("fence-mpu").send().await.unwrap();
    let keys: Vec<&str> = uploads.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, ["other/big"], "only the upload outside the output is left");
    let _ = elsewhere;
}

// Regression (issue 14, bug 7): `batchfan workers` took workers stopped one by one by someone
// else's SIGTERM for idle exits and said the queue was drained with 48 of 52 chunks pending.
#[tokio::test(flavor = "multi_thread")]
async fn the_pool_restarts_workers_others_stop_and_says_drained_only_when_the_queue_is() {
    let moto = moto();
    let s3 = moto.s3().await;
    let tmp = tempfile::tempdir().unwrap();
    docs(tmp.path(), 24);
    create_bucket(&s3, "fence-pool").await;
    upload_dir(&s3, "fence-pool", "in/", tmp.path()).await;
    let (queue, _) = moto.queue("fence-pool", 5, None).await;
    let home = tempfile::tempdir().unwrap();
    let batchfan = || {
        let mut cmd = command("batchfan", Some(moto));
        cmd.env("BATCHFAN_HOME", home.path());
        cmd
    };
    let sent = run(batchfan().args(["enqueue", "--queue-url", &queue, "--max-items-per-chunk", "1"]).args([
        "--input",
        "s3://fence-pool/in/",
        "--output",
        "s3://fence-pool/out/",
    ]));
    assert_eq!(sent.status.code(), Some(0));
    let logs = tmp.path().join("logs");
    let mut pool = spawn_quiet(
        batchfan()
            .env("BATCHFAN_QUEUE_IDLE_EXIT", "2")
            .env("FAULT_SLEEP_MS", "600")
            .args(["workers", "--queue-url", &queue, "--count", "2", "--log-dir"])
            .arg(&logs)
            .arg("--")
            .arg(bin("fault_worker")),
    );
    // SIGTERM every worker the pool runs, three rounds, as a scale-in from outside would.
    let mut stopped = 0;
    for _ in 0..3 {
        assert!(eventually(Duration::from_secs(20), || !batchfan_tests::children_of(pool.id()).is_empty()));
        for pid in batchfan_tests::children_of(pool.id()) {
            signal(pid, "TERM");
            stopped += 1;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(stopped >= 3, "{stopped}");
    assert_eq!(wait_code(&mut pool, Duration::from_secs(120)), Some(0), "drained at last");
    let status = run(batchfan().args(["status", "--format", "json", "s3://fence-pool/out/"]));
    let report = json(&status);
    assert_eq!(report["committed"], 24, "{report}");
    assert_eq!(moto.queue_counts(&queue).await, (0, 0, 0));
}

// Regression (issue 14, bug 8): with its queue deleted, every worker exited 2 and the pool
// restarted them forever (12 times in 40 s).
#[tokio::test(flavor = "multi_thread")]
async fn the_pool_stops_with_exit_2_when_a_worker_exits_2() {
    let moto = moto();
    let (queue, _) = moto.queue("fence-gone", 5, None).await;
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let mut pool = spawn_quiet(
        command("batchfan", Some(moto))
            .env("BATCHFAN_HOME", tmp.path())
            .args(["workers", "--queue-url", &queue, "--count", "3", "--log-dir"])
            .arg(&logs)
            .arg("--")
            .args([&worker(), "wordcount"]),
    );
    let logged = |needle: &str| -> usize {
        if !logs.exists() {
            return 0;
        }
        files(&logs).iter().map(|(_, p)| std::fs::read_to_string(p).unwrap_or_default().matches(needle).count()).sum()
    };
    assert!(eventually(Duration::from_secs(30), || logged("serving the queue") == 3), "the workers did not start");
    moto.sqs().delete_queue().queue_url(&queue).send().await.unwrap();
    let started = Instant::now();
    assert_eq!(wait_code(&mut pool, Duration::from_secs(90)), Some(2));
    // Long polls of 20 s end with the error; no restart loop follows.
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    assert_eq!(logged("serving the queue"), 3, "no worker was restarted");
}

// Regression (issue 14, bug 2): SIGKILL or SIGHUP of `batchfan workers` left its workers
// serving the queue.
#[tokio::test(flavor = "multi_thread")]
async fn workers_of_the_pool_die_with_it() {
    let moto = moto();
    let (queue, _) = moto.queue("fence-orphans", 5, None).await;
    for sig in ["KILL", "HUP"] {
        let tmp = tempfile::tempdir().unwrap();
        let mut pool = spawn_quiet(
            command("batchfan", Some(moto))
                .env("BATCHFAN_HOME", tmp.path())
                .args(["workers", "--queue-url", &queue, "--count", "2", "--log-dir"])
                .arg(tmp.path().join("logs"))
                .arg("--")
                .args([&worker(), "wordcount"]),
        );
        assert!(eventually(Duration::from_secs(20), || batchfan_tests::children_of(pool.id()).len() == 2));
        let workers = batchfan_tests::children_of(pool.id());
        signal(pool.id(), sig);
        let code = wait_code(&mut pool, Duration::from_secs(60));
        if sig == "HUP" {
            assert_eq!(code, Some(130), "SIGHUP drains like SIGTERM");
        }
        assert!(
            eventually(Duration::from_secs(5), || workers.iter().all(|&p| !alive(p))),
            "SIG{sig}: workers outlived the pool"
        );
    }
}

// Regression (issue 14, bug 9): queue workers left spool files after SIGKILL (32 after one
// storm) and after a drain-deadline abort.
#[tokio::test(flavor = "multi_thread")]
async fn queue_workers_leave_no_spool_files_after_a_kill_or_an_abort() {
    let moto = moto();
    let s3 = moto.s3().await;
    let tmp = tempfile::tempdir().unwrap();
    docs(&tmp.path().join("data"), 3);
    create_bucket(&s3, "fence-spool").await;
    upload_dir(&s3, "fence-spool", "in/", &tmp.path().join("data")).await;
    let (queue, _) = moto.queue("fence-spool", 5, None).await;
    let home = tempfile::tempdir().unwrap();
    let sent = run(command("batchfan", Some(moto)).env("BATCHFAN_HOME", home.path()).args([
        "enqueue",
        "--queue-url",
        &queue,
        "--max-items-per-chunk",
        "1",
        "--input",
        "s3://fence-spool/in/",
        "--output",
        "s3://fence-spool/out/",
    ]));
    assert_eq!(sent.status.code(), Some(0));
    let spool = tmp.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let start = |vars: &[(&str, &str)]| {
        spawn_quiet(
            command("fault_worker", Some(moto))
                .env("BATCHFAN_QUEUE_URL", &queue)
                .env("BATCHFAN_SPOOL_DIR", &spool)
                .envs(vars.iter().copied()),
        )
    };
    // SIGKILL mid-chunk leaves a spool file; the next worker on this host removes it.
    let mut killed = start(&[("FAULT_SLEEP_MS", "60000")]);
    assert!(eventually(Duration::from_secs(30), || count_files(&spool) > 0), "no spool file");
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert!(count_files(&spool) > 0, "the killed worker left its spool file");
    // An abort at the drain deadline (a chunk far longer than the stop timeout).
    let mut aborted = start(&[("FAULT_SLEEP_MS", "60000"), ("BATCHFAN_STOP_TIMEOUT", "0.5")]);
    assert!(
        eventually(Duration::from_secs(30), || {
            std::fs::read_dir(&spool)
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains(&format!("-{}-", aborted.id())))
        }),
        "the second worker did not start a chunk"
    );
    assert!(count_files(&spool) == 1, "the new worker swept the killed one's spool file at its start");
    signal(aborted.id(), "TERM");
    assert_eq!(wait_code(&mut aborted, Duration::from_secs(30)), Some(143));
    assert_eq!(count_files(&spool), 0, "{:?}", files(&spool));
}

// Regression (issue 14, bug 14): `wait` showed ATTEMPTS 0 for chunks a worker sent straight to
// the dead-letter queue.
#[tokio::test(flavor = "multi_thread")]
async fn chunks_sent_straight_to_the_dead_letter_queue_show_their_attempt() {
    let moto = moto();
    let s3 = moto.s3().await;
    let tmp = tempfile::tempdir().unwrap();
    docs(&tmp.path().join("data"), 2);
    create_bucket(&s3, "fence-dlq").await;
    upload_dir(&s3, "fence-dlq", "in/", &tmp.path().join("data")).await;
    let (queue, _) = moto.queue("fence-dlq", 5, Some(3)).await;
    let home = tempfile::tempdir().unwrap();
    let batchfan = || {
        let mut cmd = command("batchfan", Some(moto));
        cmd.env("BATCHFAN_HOME", home.path());
        cmd
    };
    let sent = run(batchfan()
        .args(["enqueue", "--format", "json", "--queue-url", &queue, "--max-items-per-chunk", "1"])
        .args(["--input", "s3://fence-dlq/in/", "--output", "s3://fence-dlq/out/"]));
    let run_id = json(&sent)["run_id"].as_str().unwrap().to_string();
    // An input changed since planning: the worker dead-letters its chunk at once.
    s3.put_object().bucket("fence-dlq").key("in/doc-0001.txt").body(b"changed\n".to_vec().into()).send().await.unwrap();
    let mut worker = spawn_quiet(
        command("batchfan-worker", Some(moto))
            .arg("wordcount")
            .env("BATCHFAN_QUEUE_URL", &queue)
            .env("BATCHFAN_QUEUE_IDLE_EXIT", "2")
            .env("BATCHFAN_SPOOL_DIR", tmp.path().join("spool")),
    );
    assert_eq!(wait_code(&mut worker, Duration::from_secs(60)), Some(0));
    let waited = run(batchfan().args(["wait", "--format", "json", &run_id]));
    assert_eq!(waited.status.code(), Some(1));
    let report = json(&waited);
    let dead = &report["dead_lettered"][0];
    assert_eq!(dead["chunk"], 0, "{report}");
    assert_eq!(dead["receive_count"], 1, "one receive, in the work queue: {report}");
}
