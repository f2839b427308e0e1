//! `batchfan-worker exec`: programs that know nothing of S3 as workers (tr, gzip, sh, python3),
//! per item and per chunk, with their failures, drains and kills.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use batchfan_tests::{Compress, alive, command, compress, create_bucket, decompress, files, moto, run};

fn worker() -> String {
    batchfan_tests::bin("batchfan-worker").display().to_string()
}

/// A small tree: plain files in folders, one gzip file, an empty file.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let plain: Vec<(String, Vec<u8>)> = vec![
        ("a/x.txt".into(), b"hello world\nsecond line\n".to_vec()),
        ("b/deep/y.log".into(), (0..300).map(|i| format!("row {i} abc\n")).collect::<String>().into_bytes()),
        ("empty.txt".into(), Vec::new()),
        ("z.csv.gz".into(), b"id,name\n1,ann\n2,bob\n".to_vec()),
    ];
    for (key, body) in &plain {
        let path = dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let stored = if key.ends_with(".gz") { compress(body, Compress::Gzip) } else { body.clone() };
        std::fs::write(path, stored).unwrap();
    }
    plain
}

fn exec_run(input: &Path, output: &Path, run_args: &[&str], exec_args: &[&str]) -> std::process::Output {
    run(command("batchfan", None)
        .args(["run", "--local", "--format", "json", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(run_args)
        .args(["--", &worker(), "exec"])
        .args(exec_args))
}

fn markers(output: &Path) -> Vec<serde_json::Value> {
    files(output)
        .into_iter()
        .filter(|(k, _)| k.contains("/done/"))
        .map(|(_, p)| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

#[test]
fn per_item_tr_on_stdin_mirrors_the_input_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    let plain = tree(&input);
    let out =
        exec_run(&input, &output, &["--children", "2"], &["--stdin", "--suffix", ".up", "--", "tr", "a-z", "A-Z"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for (key, body) in &plain {
        let got = std::fs::read(output.join(format!("{key}.up"))).unwrap();
        assert_eq!(got, body.to_ascii_uppercase(), "{key} (gzip inputs are decompressed)");
    }
    // No part files: the chunks' outputs are the mirrored objects, listed in the markers.
    let names: Vec<String> = files(&output).into_iter().map(|(k, _)| k).collect();
    assert!(!names.iter().any(|k| k.starts_with("part-")), "{names:?}");
    let listed: usize = markers(&output).iter().map(|m| m["objects"].as_array().unwrap().len()).sum();
    assert_eq!(listed, plain.len());
    assert!(!names.iter().any(|k| k.contains(".batchfan-tmp-")), "{names:?}");
}

#[test]
fn per_item_gzip_through_files_and_raw_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    let plain = tree(&input);
    let script = r#"gzip -c "$1" > "$2""#;
    let out =
        exec_run(&input, &output, &[], &["--suffix", ".gz", "--", "sh", "-c", script, "sh", "{input}", "{output}"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for (key, body) in &plain {
        let got = std::fs::read(output.join(format!("{key}.gz"))).unwrap();
        assert_eq!(&decompress(&got), body, "{key}");
    }
    // --raw hands over the stored bytes: a copy of a .gz input is still compressed.
    let raw_out = tmp.path().join("raw");
    let out = exec_run(&input, &raw_out, &[], &["--raw", "--suffix", ".copy", "--", "cp", "{input}", "{output}"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read(raw_out.join("z.csv.gz.copy")).unwrap(), std::fs::read(input.join("z.csv.gz")).unwrap());
}

#[test]
fn per_chunk_python_reads_every_input_listed_in_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    let plain = tree(&input);
    let script = "import sys\npaths = open(sys.argv[1]).read().split()\nprint(len(paths), sum(len(open(p, 'rb').read().splitlines()) for p in paths), sys.argv[2])";
    let out = exec_run(
        &input,
        &output,
        &["--children", "2"],
        &["--per-chunk", "--", "python3", "-c", script, "{inputs}", "{index}"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (mut items, mut lines) = (0, 0);
    for index in 0..2 {
        let body = std::fs::read_to_string(output.join(format!("part-{index:05}"))).unwrap();
        let fields: Vec<&str> = body.split_whitespace().collect();
        assert_eq!(fields[2], index.to_string(), "{{index}} is the chunk: {body}");
        items += fields[0].parse::<usize>().unwrap();
        lines += fields[1].parse::<usize>().unwrap();
    }
    assert_eq!(items, plain.len());
    assert_eq!(
        lines,
        plain.iter().map(|(_, b)| b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count()).sum::<usize>()
    );
}

#[test]
fn a_failing_program_fails_its_item_with_its_exit_code_and_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in"), tmp.path().join("out"));
    tree(&input);
    let script = r#"echo "boom on $1" >&2; exit 7"#;
    let out = exec_run(&input, &output, &["--attempts", "1"], &["--", "sh", "-c", script, "sh", "{key}"]);
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["failed"][0]["exit_code"], 7, "{summary}");
    let log = std::fs::read_to_string(summary["failed"][0]["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("exited with code 7") && log.contains("boom on a/x.txt"), "{log}");
    assert!(!files(&output).iter().any(|(k, _)| k.ends_with(".txt") && !k.contains("_batchfan")));

    // A program that does not exist: 127, saying so.
    let out = exec_run(&input, &tmp.path().join("o2"), &["--attempts", "1"], &["--", "no-such-program-x", "{input}"]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["failed"][0]["exit_code"], 127, "{summary}");
    // Bad exec options are exit 2 before anything runs.
    let out = exec_run(&input, &tmp.path().join("o3"), &["--attempts", "1"], &["--per-chunk", "--", "cat", "{input}"]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["failed"][0]["exit_code"], 2, "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_input_key_that_would_leave_the_output_root_fails_its_item() {
    let moto = moto();
    let s3 = moto.s3().await;
    create_bucket(&s3, "escape").await;
    for key in ["in/ok.txt", "in/x/../../../escape.txt"] {
        s3.put_object().bucket("escape").key(key).body(ByteStream::from_static(b"data\n")).send().await.unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let output = tmp.path().join("out");
    let out = run(command("batchfan", Some(moto))
        .args(["run", "--local", "--attempts", "1", "--format", "json", "--max-items-per-chunk", "1"])
        .args(["--input", "s3://escape/in/", "--output"])
        .arg(&output)
        .args(["--", &worker(), "exec", "--", "cp", "{input}", "{output}"]));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{summary}");
    let log = std::fs::read_to_string(summary["failed"][0]["log"].as_str().unwrap()).unwrap();
    assert!(
        log.contains("x/../../../escape.txt") && log.contains("would not stay inside the output location"),
        "{log}"
    );
    assert!(output.join("ok.txt").exists());
    assert!(!tmp.path().join("escape.txt").exists() && !Path::new("/tmp/escape.txt").exists());
}

/// Plans a run of `input` into `output` and returns its manifest, without running a worker.
fn manifest_for(input: &Path, output: &Path) -> String {
    batchfan_tests::manifest_for(input, output, 100)
}

fn exec_child(manifest: &str, spool: &Path, stop_timeout: &str, exec_args: &[&str]) -> Command {
    let mut cmd = Command::new(worker());
    cmd.env("BATCHFAN_MANIFEST", manifest)
        .env("AWS_BATCH_JOB_ARRAY_INDEX", "0")
        .env("BATCHFAN_SPOOL_DIR", spool)
        .env("BATCHFAN_STOP_TIMEOUT", stop_timeout)
        .env_remove("AWS_BATCH_JOB_ID")
        .arg("exec")
        .args(exec_args);
    cmd
}

fn wait_for_lines(path: &Path, n: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pids: Vec<u32> =
            std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.len() >= n {
            return pids;
        }
        assert!(Instant::now() < deadline, "the program did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn at_the_drain_deadline_the_programs_process_group_is_stopped_and_nothing_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
    tree(&input);
    let manifest = manifest_for(&input, &output);
    let pids = tmp.path().join("pids");
    // The program and a background child of it, both ignoring nothing: SIGTERM ends them.
    let script = r#"echo $$ >> "$PIDS"; sleep 60 & echo $! >> "$PIDS"; wait"#;
    let mut child = exec_child(&manifest, &spool, "1", &["--", "sh", "-c", script]).env("PIDS", &pids).spawn().unwrap();
    let started = wait_for_lines(&pids, 2);
    let sent = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(143));
    // Far below the program's 60 s sleep: it was stopped, not waited for (generous for a busy machine).
    assert!(took < Duration::from_secs(30), "drain 1 s + grace 3 s: {took:?}");
    assert!(took >= Duration::from_millis(900), "the program ran on until the drain deadline: {took:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(started.iter().all(|&p| !alive(p)), "no process of the program outlives the worker: {started:?}");
    assert!(!files(&output).iter().any(|(k, _)| k.ends_with(".txt") && !k.contains("_batchfan")));

    // A program that ignores SIGTERM is killed KILL_GRACE later.
    let pids2 = tmp.path().join("pids2");
    let stubborn = r#"trap '' TERM; echo $$ >> "$PIDS"; while true; do sleep 0.1; done"#;
    let mut child =
        exec_child(&manifest, &spool, "1", &["--", "sh", "-c", stubborn]).env("PIDS", &pids2).spawn().unwrap();
    let started = wait_for_lines(&pids2, 1);
    let sent = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(143));
    let took = sent.elapsed();
    // It runs forever unless killed: a lower bound for the grace, a generous upper one.
    assert!(took >= Duration::from_millis(3900) && took < Duration::from_secs(30), "{took:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!alive(started[0]), "SIGKILL after the grace");
}

#[test]
fn a_program_that_finishes_within_the_drain_deadline_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output, spool) = (tmp.path().join("in"), tmp.path().join("out"), tmp.path().join("spool"));
    let plain = tree(&input);
    let manifest = manifest_for(&input, &output);
    let marker: PathBuf = tmp.path().join("started");
    let script = r#"touch "$STARTED"; sleep 1; cat "$1" > "$2""#;
    let mut child = exec_child(&manifest, &spool, "10", &["--", "sh", "-c", script, "sh", "{input}", "{output}"])
        .env("STARTED", &marker)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    for (key, body) in &plain {
        assert_eq!(&std::fs::read(output.join(key)).unwrap(), body, "{key}");
    }
}
