//! Queue runs against moto's SQS (visibility timeouts, long polling and dead-letter redrive run
//! in real time there), with real worker processes: enqueue, a local pool, heartbeats, kills,
//! SIGTERM drains, poison chunks, bad input.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use batchfan_tests::{
    Moto, bin, command, dataset_in_bucket, download_prefix, merge_counts, moto, part_bodies, reference_wordcount, run,
};

struct Env {
    home: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { home: tempfile::tempdir().unwrap() }
    }

    fn batchfan(&self, moto: &Moto) -> Command {
        let mut cmd = command("batchfan", Some(moto));
        cmd.env("BATCHFAN_HOME", self.home.path());
        cmd
    }

    fn logs(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// `batchfan enqueue --format json` of `s3://BUCKET/in/` to `s3://BUCKET/out/`; the run id.
fn enqueue(env: &Env, moto: &Moto, queue: &str, bucket: &str, extra: &[&str]) -> serde_json::Value {
    let out = run(env
        .batchfan(moto)
        .args(["enqueue", "--queue-url", queue, "--format", "json"])
        .args(["--input", &format!("s3://{bucket}/in/"), "--output", &format!("s3://{bucket}/out/")])
        .args(extra));
    assert_eq!(out.status.code(), Some(0));
    json(&out)
}

/// One worker process (`program[0]` with its arguments) serving `queue`, spooling under
/// `spool`, logging to `log`.
fn worker(moto: &Moto, program: &[&str], queue: &str, vars: &[(&str, &str)], spool: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    command(program[0], Some(moto))
        .args(&program[1..])
        .env("BATCHFAN_QUEUE_URL", queue)
        .env("BATCHFAN_SPOOL_DIR", spool)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// `batchfan workers` over `queue` with `count` workers of `program` until they all exit idle.
fn pool(env: &Env, moto: &Moto, queue: &str, count: u32, program: &[&str], vars: &[(&str, &str)], logs: &Path) -> i32 {
    let out = run(env
        .batchfan(moto)
        .envs(vars.iter().copied())
        .args(["workers", "--queue-url", queue, "--count", &count.to_string(), "--log-dir"])
        .arg(logs)
        .arg("--")
        .arg(bin(program[0]))
        .args(&program[1..]));
    out.status.code().unwrap_or(-1)
}

fn wait_for_file(dir: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while std::fs::read_dir(dir).map_or(0, |d| d.count()) == 0 {
        assert!(Instant::now() < deadline, "no spool file appeared in {}", dir.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines of every `*.log` under `dir` containing `needle`.
fn log_lines(dir: &Path, needle: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            lines.extend(text.lines().filter(|l| l.contains(needle)).map(str::to_string));
        }
    }
    lines
}

/// Lines of the log file `path` containing `needle`.
fn file_lines(path: &Path, needle: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter(|l| l.contains(needle)).map(str::to_string).collect()
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_40_chunk_wordcount_over_a_queue_with_3_workers_equals_the_reference() {
    let moto = moto();
    let env = Env::new();
    let data = dataset_in_bucket(&moto.s3().await, "queue-wc", "in/", 31).await;
    let (queue, _) = moto.queue("wc-work", 30, Some(3)).await;
    let sent = enqueue(&env, moto, &queue, "queue-wc", &["--split-bytes", "1KiB", "--children", "40"]);
    assert_eq!(sent["chunk_count"], 40);
    assert_eq!(sent["sent"], 40);
    assert_eq!(sent["requests"], 4, "10 messages a SendMessageBatch");
    let run_id = sent["run_id"].as_str().unwrap().to_string();
    assert_eq!(moto.queue_counts(&queue).await, (40, 0, 0));

    // Three local workers; they exit 0 once the queue has been empty for 2 s.
    let logs = env.logs("wc-logs");
    let code =
        pool(&env, moto, &queue, 3, &["batchfan-worker", "wordcount"], &[("BATCHFAN_QUEUE_IDLE_EXIT", "2")], &logs);
    assert_eq!(code, 0, "the pool ends when every worker exited idle");

    let out = run(env.batchfan(moto).args(["wait", &run_id, "--interval", "0.2", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let status = json(&out);
    assert_eq!((status["committed"].as_u64(), status["kind"].as_str()), (Some(40), Some("queue")));
    let objects = download_prefix(&moto.s3().await, "queue-wc", "out/").await;
    let parts = part_bodies(&objects, "out/");
    assert_eq!(parts.len(), 40);
    assert_eq!(merge_counts(parts), reference_wordcount(data.path()));
    // Every chunk committed exactly once, by whichever worker took it, and work was shared.
    assert_eq!(log_lines(&logs, "chunk committed").len(), 40);
    let busy = (0..3).filter(|w| {
        std::fs::read_to_string(logs.join(format!("worker-{w:03}.log"))).unwrap_or_default().contains("chunk committed")
    });
    assert!(busy.count() >= 2, "several workers took chunks");
    assert_eq!(moto.queue_counts(&queue).await, (0, 0, 0), "every message deleted after its commit");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_chunk_leaves_its_message_to_another_worker_which_commits_it_once() {
    let moto = moto();
    let env = Env::new();
    dataset_in_bucket(&moto.s3().await, "queue-kill", "in/", 32).await;
    // 10 s: long enough that the count below is read before the message comes back on a busy machine.
    let (queue, _) = moto.queue("kill-work", 10, Some(5)).await;
    let run_id =
        enqueue(&env, moto, &queue, "queue-kill", &["--children", "1"])["run_id"].as_str().unwrap().to_string();
    let spool = env.logs("kill-spool");
    std::fs::create_dir_all(&spool).unwrap();
    let mut first =
        worker(moto, &["fault_worker"], &queue, &[("FAULT_SLEEP_MS", "30000")], &spool, &env.logs("kill-1.log"));
    wait_for_file(&spool, Duration::from_secs(20));
    first.kill().unwrap();
    first.wait().unwrap();
    let s3 = moto.s3().await;
    assert!(download_prefix(&s3, "queue-kill", "out/part-").await.is_empty(), "nothing committed by the killed worker");
    assert_eq!(moto.queue_counts(&queue).await, (0, 1, 0), "the message waits out its visibility timeout");

    // Another worker gets it after the visibility timeout and commits it, once.
    let mut second =
        worker(moto, &["fault_worker"], &queue, &[("BATCHFAN_QUEUE_IDLE_EXIT", "15")], &spool, &env.logs("kill-2.log"));
    assert_eq!(wait_exit(&mut second, Duration::from_secs(60)), Some(0));
    let objects = download_prefix(&s3, "queue-kill", "out/").await;
    assert_eq!(part_bodies(&objects, "out/").len(), 1);
    let marker: serde_json::Value =
        serde_json::from_slice(&objects[&format!("out/_batchfan/runs/{run_id}/done/00000.json")]).unwrap();
    assert_eq!(marker["attempt"], 2, "the second receive committed");
    assert_eq!(log_lines(env.home.path(), "chunk committed").len(), 1);
    assert_eq!(moto.queue_counts(&queue).await, (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_three_times_longer_than_the_visibility_timeout_is_processed_by_one_worker() {
    let moto = moto();
    let env = Env::new();
    dataset_in_bucket(&moto.s3().await, "queue-beat", "in/", 33).await;
    let (queue, _) = moto.queue("beat-work", 4, Some(5)).await;
    enqueue(&env, moto, &queue, "queue-beat", &["--children", "1"]);
    // Two workers: without the heartbeat the message would come back after 4 s and the idle
    // one would take it too. (4 s, not less: a heartbeat on a busy machine may be late.)
    let logs = env.logs("beat-logs");
    let vars = [("FAULT_SLEEP_MS", "12000"), ("BATCHFAN_QUEUE_IDLE_EXIT", "8")];
    assert_eq!(pool(&env, moto, &queue, 2, &["fault_worker"], &vars, &logs), 0);
    assert_eq!(log_lines(&logs, "chunk started").len(), 1, "one worker only");
    assert_eq!(log_lines(&logs, "chunk committed").len(), 1);
    assert_eq!(moto.queue_counts(&queue).await, (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_chunk_lands_in_the_dead_letter_queue_wait_exits_1_and_redrive_completes_the_run() {
    let moto = moto();
    let env = Env::new();
    let data = dataset_in_bucket(&moto.s3().await, "queue-poison", "in/", 34).await;
    let (queue, dlq) = moto.queue("poison-work", 1, Some(2)).await;
    let run_id =
        enqueue(&env, moto, &queue, "queue-poison", &["--children", "3"])["run_id"].as_str().unwrap().to_string();
    let logs = env.logs("poison-logs");
    let vars = [("FAULT_FAIL_CHUNK", "1"), ("BATCHFAN_QUEUE_IDLE_EXIT", "4")];
    assert_eq!(pool(&env, moto, &queue, 2, &["fault_worker"], &vars, &logs), 0);
    assert_eq!(log_lines(&logs, "injected poison in chunk 1").len(), 2, "maxReceiveCount 2: two attempts");

    let out = run(env.batchfan(moto).args(["wait", &run_id, "--interval", "0.2", "--format", "json"]));
    assert_eq!(out.status.code(), Some(1), "a dead-lettered chunk fails the run");
    let status = json(&out);
    assert_eq!(status["committed"], 2);
    assert_eq!(status["dead_lettered"][0]["chunk"], 1);
    assert_eq!(status["failed"][0]["index"], 1);
    assert!(status["failed"][0]["reason"].as_str().unwrap().contains("maxReceiveCount"), "{status}");
    let text = run(env.batchfan(moto).args(["status", &run_id]));
    assert!(String::from_utf8_lossy(&text.stdout).contains("1 dead-lettered"), "text status names it");

    // Redrive sends exactly that chunk back; a healthy worker completes the run.
    let out = run(env.batchfan(moto).args(["redrive", &run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["chunks"], serde_json::json!([1]));
    assert_eq!(moto.queue_counts(dlq.as_deref().unwrap()).await.0, 0, "taken out of the dead-letter queue");
    let logs = env.logs("poison-logs-2");
    assert_eq!(pool(&env, moto, &queue, 1, &["fault_worker"], &[("BATCHFAN_QUEUE_IDLE_EXIT", "2")], &logs), 0);
    let out = run(env.batchfan(moto).args(["wait", &run_id, "--interval", "0.2", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["committed"], 3);
    let objects = download_prefix(&moto.s3().await, "queue-poison", "out/").await;
    let upper: Vec<u8> = part_bodies(&objects, "out/").concat();
    let expected: usize = batchfan_tests::files(data.path())
        .iter()
        .map(|(_, p)| {
            let body = std::fs::read(p).unwrap();
            body.split(|b| *b == b'\n').filter(|l| !l.is_empty() && *l != b"\r").count()
        })
        .sum();
    assert_eq!(upper.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count(), expected, "every record once");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_long_chunk_releases_its_message_at_once_and_commits_nothing() {
    let moto = moto();
    let env = Env::new();
    dataset_in_bucket(&moto.s3().await, "queue-term", "in/", 35).await;
    // A long visibility timeout: the message is visible again only because the worker released it.
    let (queue, _) = moto.queue("term-work", 300, Some(5)).await;
    enqueue(&env, moto, &queue, "queue-term", &["--children", "1"]);
    let spool = env.logs("term-spool");
    std::fs::create_dir_all(&spool).unwrap();
    let vars = [("FAULT_SLEEP_MS", "30000"), ("BATCHFAN_STOP_TIMEOUT", "1")];
    let mut child = worker(moto, &["fault_worker"], &queue, &vars, &spool, &env.logs("term.log"));
    wait_for_file(&spool, Duration::from_secs(20));
    let started = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(143), "released work: exit 143");
    assert!(started.elapsed() < Duration::from_secs(15), "at the 1 s deadline, not after the 30 s chunk");
    let released = Instant::now();
    while moto.queue_counts(&queue).await != (1, 0, 0) {
        assert!(released.elapsed() < Duration::from_secs(30), "visible again long before its 300 s timeout");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(download_prefix(&moto.s3().await, "queue-term", "out/part-").await.is_empty(), "nothing committed");
    assert!(log_lines(env.home.path(), "releasing the unfinished message").len() == 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_queue_input_exits_2_and_sends_nothing() {
    let moto = moto();
    let env = Env::new();
    dataset_in_bucket(&moto.s3().await, "queue-bad", "in/", 36).await;
    let missing = format!("{}/123456789012/no-such-queue", moto.endpoint);
    for (url, message) in [(missing.as_str(), "does not exist"), ("work-queue", "a queue URL")] {
        let out = run(env.batchfan(moto).args([
            "enqueue",
            "--queue-url",
            url,
            "--input",
            "s3://queue-bad/in/",
            "--output",
            "s3://queue-bad/out/",
        ]));
        assert_eq!(out.status.code(), Some(2), "{url}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(message), "{url}");
    }
    assert!(download_prefix(&moto.s3().await, "queue-bad", "out/").await.is_empty(), "nothing written");
    let logs = env.logs("bad-logs");
    let out = run(env
        .batchfan(moto)
        .args(["workers", "--queue-url", &missing, "--count", "2", "--log-dir"])
        .arg(&logs)
        .arg("--")
        .arg(bin("batchfan-worker"))
        .arg("wordcount"));
    assert_eq!(out.status.code(), Some(2));
    assert!(!logs.exists(), "no worker started");
    let dry = run(env.batchfan(moto).args(["enqueue", "--queue-url", &missing, "--dry-run"]).args([
        "--input",
        "s3://queue-bad/in/",
        "--output",
        "s3://queue-bad/out/",
    ]));
    assert_eq!(dry.status.code(), Some(2), "a dry run checks the queue too");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_queue_runs_every_chunk_once() {
    let moto = moto();
    let env = Env::new();
    let data = dataset_in_bucket(&moto.s3().await, "queue-fifo", "in/", 37).await;
    let (queue, _) = moto.queue("fifo-work.fifo", 30, Some(3)).await;
    let dry = run(env.batchfan(moto).args(["enqueue", "--queue-url", &queue, "--dry-run", "--children", "4"]).args([
        "--input",
        "s3://queue-fifo/in/",
        "--output",
        "s3://queue-fifo/out/",
    ]));
    assert_eq!(json(&dry)["queue"]["fifo"], true);
    let sent = enqueue(&env, moto, &queue, "queue-fifo", &["--children", "4"]);
    assert_eq!(sent["sent"], 4);
    let logs = env.logs("fifo-logs");
    let vars = [("BATCHFAN_QUEUE_IDLE_EXIT", "2")];
    assert_eq!(pool(&env, moto, &queue, 2, &["batchfan-worker", "wordcount"], &vars, &logs), 0);
    let out = run(env.batchfan(moto).args(["wait", sent["run_id"].as_str().unwrap(), "--interval", "0.2"]));
    assert_eq!(out.status.code(), Some(0));
    let objects = download_prefix(&moto.s3().await, "queue-fifo", "out/").await;
    assert_eq!(merge_counts(part_bodies(&objects, "out/")), reference_wordcount(data.path()));
    assert_eq!(log_lines(&logs, "chunk committed").len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_is_not_a_chunk_goes_to_the_dead_letter_queue_with_the_reason() {
    let moto = moto();
    let env = Env::new();
    let (queue, dlq) = moto.queue("junk-work", 30, Some(5)).await;
    let sqs = moto.sqs();
    sqs.send_message().queue_url(&queue).message_body("hello, not a chunk").send().await.unwrap();
    let vars = [("BATCHFAN_QUEUE_IDLE_EXIT", "2")];
    let program = ["batchfan-worker", "wordcount"];
    let mut child = worker(moto, &program, &queue, &vars, &env.logs("junk-spool"), &env.logs("junk.log"));
    assert_eq!(wait_exit(&mut child, Duration::from_secs(30)), Some(0));
    assert!(!log_lines(env.home.path(), "not a batchfan chunk message").is_empty(), "the log says why");
    assert_eq!(moto.queue_counts(&queue).await, (0, 0, 0));
    let moved =
        sqs.receive_message().queue_url(dlq.as_deref().unwrap()).message_attribute_names("All").send().await.unwrap();
    let message = &moved.messages()[0];
    assert_eq!(message.body(), Some("hello, not a chunk"));
    let reason = message.message_attributes().unwrap()["batchfan_error"].string_value().unwrap();
    assert!(reason.contains("not a batchfan chunk message"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_queue_service_example_handles_arbitrary_messages_and_dead_letters_poison_at_once() {
    let moto = moto();
    let env = Env::new();
    let (queue, dlq) = moto.queue("service-work", 30, Some(5)).await;
    let sqs = moto.sqs();
    for body in ["first line", "second line", "poison pill", "third line"] {
        sqs.send_message().queue_url(&queue).message_body(body).send().await.unwrap();
    }
    let out_dir = env.logs("service-out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let vars = [("BATCHFAN_QUEUE_IDLE_EXIT", "2"), ("OUT_DIR", out_dir.to_str().unwrap())];
    let mut child = worker(moto, &["queue_service"], &queue, &vars, &env.logs("spool"), &env.logs("service.log"));
    assert_eq!(wait_exit(&mut child, Duration::from_secs(30)), Some(0));
    let mut written: Vec<String> =
        std::fs::read_dir(&out_dir).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    written.sort();
    assert_eq!(written, ["FIRST LINE", "SECOND LINE", "THIRD LINE"]);
    assert_eq!(moto.queue_counts(&queue).await, (0, 0, 0), "handled messages are deleted");
    assert_eq!(moto.queue_counts(dlq.as_deref().unwrap()).await.0, 1, "the poison pill, at once");
    assert_eq!(log_lines(env.home.path(), "poison pill").len(), 1, "one attempt only");
}

// Regression (issue 10, bug 1): `wait` on a run that does not finish polled forever. With
// `--timeout SECS` it gives up, prints the counts it has and exits 1.
#[tokio::test(flavor = "multi_thread")]
async fn wait_with_a_timeout_on_a_run_nobody_serves_exits_1_with_the_counts() {
    let moto = moto();
    let env = Env::new();
    dataset_in_bucket(&moto.s3().await, "queue-timeout", "in/", 35).await;
    let (queue, _) = moto.queue("timeout-work", 30, None).await;
    let sent = enqueue(&env, moto, &queue, "queue-timeout", &["--children", "3"]);
    let run_id = sent["run_id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let out =
        run(env.batchfan(moto).args(["wait", &run_id, "--interval", "0.2", "--timeout", "1.5", "--format", "json"]));
    assert_eq!(out.status.code(), Some(1));
    // It waited out its timeout (a wait that gave up at once would pass the upper bound alone).
    assert!(started.elapsed() >= Duration::from_millis(1_500), "{:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not finish within --timeout 1.5 s"));
    let status = json(&out);
    assert_eq!(status["committed"], 0, "{status}");
    let out = run(env.batchfan(moto).args(["wait", &run_id, "--timeout", "0"]));
    assert_eq!(out.status.code(), Some(2));
}

// Issue 22, item 9: a queue run holds its output until it finishes or is cancelled. While nobody
// serves it, a second enqueue or a submit to the same output is refused naming it (even with
// --overwrite) and sends nothing; `cancel` releases the claim, and the next enqueue runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_queue_run_holds_its_output_until_cancelled() {
    let moto = moto();
    let env = Env::new();
    dataset_in_bucket(&moto.s3().await, "queue-claim", "in/", 12).await;
    let (queue, _) = moto.queue("claim-work", 30, None).await;
    let first = enqueue(&env, moto, &queue, "queue-claim", &["--children", "3"]);
    let run_id = first["run_id"].as_str().unwrap().to_string();
    assert_eq!(moto.queue_counts(&queue).await.0, 3);
    let output = "s3://queue-claim/out/";
    let second = run(env
        .batchfan(moto)
        .args(["enqueue", "--queue-url", &queue, "--overwrite", "--children", "2"])
        .args(["--input", "s3://queue-claim/in/", "--output", output]));
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by run") && stderr.contains(&run_id), "{stderr}");
    batchfan_tests::batch_queue(moto, "q-claim", false);
    let registered = run(env
        .batchfan(moto)
        .args(["register", "--name", "claimdef", "--image", "batchfan-worker:0.1.0"])
        .args(["--vcpu", "1", "--memory", "2048", "--command", "wordcount"]));
    assert_eq!(registered.status.code(), Some(0));
    let submitted = run(env
        .batchfan(moto)
        .args(["submit", "--job-queue", "q-claim", "--job-definition", "claimdef", "--overwrite"])
        .args(["--input", "s3://queue-claim/in/", "--output", output]));
    assert_eq!(submitted.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&submitted.stderr);
    assert!(stderr.contains("in use by run") && stderr.contains(&run_id), "{stderr}");
    assert_eq!(moto.queue_counts(&queue).await.0, 3, "the refused runs sent nothing");

    let out = run(env.batchfan(moto).args(["cancel", &run_id]));
    assert_eq!(out.status.code(), Some(0));
    let claim = download_prefix(&moto.s3().await, "queue-claim", "out/_batchfan/claim").await;
    assert!(claim.is_empty(), "cancel released the claim: {:?}", claim.keys());
    let third = enqueue(&env, moto, &queue, "queue-claim", &["--children", "2", "--overwrite"]);
    assert_ne!(third["run_id"], first["run_id"]);
}

// Issue 22, item 14: what a queue worker promises about messages it cannot or need not work on.
// A chunk index the manifest does not have and a manifest that does not exist go straight to the
// dead-letter queue (one receive, the reason attached); a chunk already committed is acknowledged
// without work (its marker byte for byte as it was).
#[tokio::test(flavor = "multi_thread")]
async fn hopeless_messages_are_dead_lettered_at_once_and_committed_chunks_acknowledged_without_work() {
    let moto = moto();
    let env = Env::new();
    let s3 = moto.s3().await;
    dataset_in_bucket(&s3, "queue-promise", "in/", 12).await;
    let (queue, dlq) = moto.queue("promise-work", 30, Some(5)).await;
    let sent = enqueue(&env, moto, &queue, "queue-promise", &["--children", "2"]);
    let (run_id, manifest) = (sent["run_id"].as_str().unwrap(), sent["manifest"].as_str().unwrap());
    let vars = [("BATCHFAN_QUEUE_IDLE_EXIT", "2")];
    let program = ["batchfan-worker", "wordcount"];
    let mut child = worker(moto, &program, &queue, &vars, &env.logs("promise-spool"), &env.logs("first.log"));
    assert_eq!(wait_exit(&mut child, Duration::from_secs(60)), Some(0));
    let markers = |objects: &std::collections::BTreeMap<String, Vec<u8>>| {
        objects.iter().filter(|(k, _)| k.contains("/done/")).map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()
    };
    let before = markers(&download_prefix(&s3, "queue-promise", "out/").await);
    assert_eq!(before.len(), 2);

    let sqs = moto.sqs();
    let body = |manifest: &str, chunk: u64| {
        serde_json::to_string(&batchfan::contract::ChunkMessage::new(run_id, manifest, chunk)).unwrap()
    };
    let missing = "s3://queue-promise/nowhere/manifest.jsonl";
    for message in [body(manifest, 1), body(manifest, 999), body(missing, 0)] {
        sqs.send_message().queue_url(&queue).message_body(message).send().await.unwrap();
    }
    let mut child = worker(moto, &program, &queue, &vars, &env.logs("promise-spool"), &env.logs("second.log"));
    assert_eq!(wait_exit(&mut child, Duration::from_secs(60)), Some(0));
    assert_eq!(moto.queue_counts(&queue).await, (0, 0, 0), "every message settled");
    assert_eq!(markers(&download_prefix(&s3, "queue-promise", "out/").await), before, "no work redone");
    assert_eq!(file_lines(&env.logs("second.log"), "already committed").len(), 1);
    let dlq = dlq.unwrap();
    let mut reasons = Vec::new();
    while reasons.len() < 2 {
        let moved = sqs
            .receive_message()
            .queue_url(&dlq)
            .message_attribute_names("All")
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        assert!(!moved.messages().is_empty(), "two messages in the dead-letter queue: {reasons:?}");
        for m in moved.messages() {
            let reason = m.message_attributes().unwrap()["batchfan_error"].string_value().unwrap().to_string();
            sqs.delete_message().queue_url(&dlq).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
            reasons.push(reason);
        }
    }
    reasons.sort();
    assert!(reasons.iter().any(|r| r.contains("999")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains(missing)), "{reasons:?}");
    assert_eq!(
        file_lines(&env.logs("second.log"), "moved to the dead-letter queue").len(),
        2,
        "at once, one receive each"
    );
}

// Issue 22, item 14: SIGTERM lets the chunk in flight finish (exit 0 when the drain completes,
// nothing else received); a second SIGTERM during a drain aborts at once with 143 and releases
// the message.
#[tokio::test(flavor = "multi_thread")]
async fn a_drain_that_finishes_exits_0_and_a_second_sigterm_aborts_with_143() {
    let moto = moto();
    let env = Env::new();
    let s3 = moto.s3().await;
    dataset_in_bucket(&s3, "queue-drain", "in/", 12).await;
    let (queue, _) = moto.queue("drain-work", 300, Some(5)).await;
    enqueue(&env, moto, &queue, "queue-drain", &["--children", "2"]);
    let term = |child: &Child| {
        assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success())
    };

    // A drain that finishes: the chunk in flight (1.5 s of sleep) commits, the other stays queued.
    let spool = env.logs("drain-spool");
    std::fs::create_dir_all(&spool).unwrap();
    let vars = [("FAULT_SLEEP_MS", "1500"), ("BATCHFAN_STOP_TIMEOUT", "120"), ("BATCHFAN_QUEUE_CONCURRENCY", "1")];
    let mut child = worker(moto, &["fault_worker"], &queue, &vars, &spool, &env.logs("drain.log"));
    wait_for_file(&spool, Duration::from_secs(20));
    term(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(60)), Some(0), "a finished drain exits 0");
    assert_eq!(download_prefix(&s3, "queue-drain", "out/part-").await.len(), 1, "the chunk in flight committed");
    assert_eq!(moto.queue_counts(&queue).await, (1, 0, 0), "nothing else was received");

    // A second SIGTERM: abort at once, release the message, commit nothing more.
    let vars = [("FAULT_SLEEP_MS", "60000"), ("BATCHFAN_STOP_TIMEOUT", "120"), ("BATCHFAN_QUEUE_CONCURRENCY", "1")];
    let mut child = worker(moto, &["fault_worker"], &queue, &vars, &spool, &env.logs("abort.log"));
    let sleeping = Instant::now();
    while file_lines(&env.logs("abort.log"), "sleeping").is_empty() {
        assert!(sleeping.elapsed() < Duration::from_secs(30), "the worker started its chunk");
        std::thread::sleep(Duration::from_millis(50));
    }
    term(&child);
    std::thread::sleep(Duration::from_millis(300));
    term(&child);
    // Far less than the 60 s the chunk sleeps or the 120 s drain deadline.
    assert_eq!(wait_exit(&mut child, Duration::from_secs(30)), Some(143));
    assert_eq!(download_prefix(&s3, "queue-drain", "out/part-").await.len(), 1, "nothing more committed");
    let released = Instant::now();
    while moto.queue_counts(&queue).await != (1, 0, 0) {
        assert!(released.elapsed() < Duration::from_secs(30), "released, not left to its 300 s timeout");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
