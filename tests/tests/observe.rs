//! Seeing what a run did (issue 18): per-chunk metrics in the markers and the report (every
//! attempt of a failed chunk too), `batchfan logs` over local attempt files and CloudWatch Logs
//! streams (moto), and `batchfan runs` listing past runs.

use std::path::Path;
use std::process::Command;

use batchfan_tests::proxy::start_fixed_answer;
use batchfan_tests::{Moto, bin, command, dataset_in_bucket, moto, run, write_dataset};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn batchfan(home: &Path) -> Command {
    let mut cmd = command("batchfan", None);
    cmd.env("BATCHFAN_HOME", home);
    cmd
}

/// `batchfan` with moto's environment and its own notes folder.
fn batchfan_on(moto: &Moto, home: &Path) -> Command {
    let mut cmd = command("batchfan", Some(moto));
    cmd.env("BATCHFAN_HOME", home);
    cmd
}

/// A queue run over a dataset (`seed`) put under `bucket/in/`, enqueued as `children` chunks to
/// a new queue `queue_name` with its output under `bucket/out/`: the queue's URL and the run id.
async fn enqueued(
    moto: &Moto,
    home: &Path,
    bucket: &str,
    queue_name: &str,
    seed: u64,
    children: &str,
) -> (String, String) {
    dataset_in_bucket(&moto.s3().await, bucket, "in/", seed).await;
    let (queue, _) = moto.queue(queue_name, 30, Some(3)).await;
    let (input, output) = (format!("s3://{bucket}/in/"), format!("s3://{bucket}/out/"));
    let out = run(batchfan_on(moto, home)
        .args(["enqueue", "--queue-url", &queue, "--format", "json", "--children", children])
        .args(["--input", &input, "--output", &output]));
    assert_eq!(out.status.code(), Some(0));
    (queue, json(&out)["run_id"].as_str().unwrap().to_string())
}

/// A local run of `fault_worker` over 3 chunks whose chunk 1 fails both attempts; its run id.
fn failing_local_run(home: &Path, input: &Path, output: &Path) -> String {
    let fault = bin("fault_worker").display().to_string();
    let out = run(batchfan(home)
        .args(["run", "--local", "--children", "3", "--attempts", "2", "--format", "json", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(["--", &fault])
        .env("FAULT_FAIL_CHUNK", "1"));
    assert_eq!(out.status.code(), Some(1));
    json(&out)["run_id"].as_str().unwrap().to_string()
}

#[test]
fn the_report_carries_each_chunks_figures_and_every_failed_attempt() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, input, output) = (tmp.path().join("home"), tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 41);
    let run_id = failing_local_run(&home, &input, &output);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(output.join(format!("_batchfan/runs/{run_id}/report.json"))).unwrap())
            .unwrap();
    let chunks = report["chunks"].as_array().unwrap();
    for i in [0usize, 2] {
        let c = &chunks[i];
        assert_eq!(c["status"], "SUCCEEDED", "{c}");
        let (started, ended) = (c["started_unix_ms"].as_u64().unwrap(), c["ended_unix_ms"].as_u64().unwrap());
        assert!(started > 1_700_000_000_000 && started <= ended, "{c}");
        assert!(c["items"].as_u64().unwrap() > 0 && c["bytes_in"].as_u64().unwrap() > 0, "{c}");
        // CPU can round to 0 ms for a tiny chunk; the fields are there, RSS is never 0.
        assert!(c["cpu_user_ms"].is_u64() && c["cpu_system_ms"].is_u64(), "{c}");
        assert!(c["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{c}");
        let history = c["attempt_history"].as_array().unwrap();
        assert_eq!(history.len(), 1, "{c}");
        assert_eq!((history[0]["attempt"].as_u64(), history[0]["committed"].as_bool()), (Some(1), Some(true)));
        let log = history[0]["log"]["path"].as_str().unwrap();
        assert!(log.ends_with(&format!("child-{i:05}.attempt-1.log")) && Path::new(log).exists(), "{c}");
        assert_eq!(history[0]["job_id"].as_str(), Some(format!("{run_id}:{i}").as_str()));
    }
    let failed = &chunks[1];
    assert_eq!(failed["status"], "FAILED");
    let history = failed["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "both failed attempts are in the report: {failed}");
    for (n, attempt) in history.iter().enumerate() {
        assert_eq!(attempt["attempt"].as_u64(), Some(n as u64 + 1));
        assert_eq!(attempt["exit_code"].as_i64(), Some(1));
        assert_eq!(attempt["reason"], "handler failed: injected poison in chunk 1");
        assert!(attempt["started_unix_ms"].as_u64() <= attempt["ended_unix_ms"].as_u64());
        assert!(attempt["log"]["path"].as_str().unwrap().ends_with(&format!("child-00001.attempt-{}.log", n + 1)));
    }
    // The marker is where the figures come from.
    let marker: serde_json::Value = serde_json::from_slice(
        &std::fs::read(output.join(format!("_batchfan/runs/{run_id}/done/00000.json"))).unwrap(),
    )
    .unwrap();
    assert!(marker["started_unix_ms"].is_u64() && marker["peak_rss_bytes"].is_u64(), "{marker}");
    assert_eq!(marker["log"]["kind"], "file", "{marker}");
}

#[test]
fn logs_of_the_failed_chunks_show_their_error_lines_prefixed_by_chunk_and_attempt() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, input, output) = (tmp.path().join("home"), tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 42);
    let run_id = failing_local_run(&home, &input, &output);

    let out = run(batchfan(&home).args(["logs", &run_id, "--failed"]));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for attempt in [1, 2] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("[00001/{attempt}] "))
                && l.contains("handler failed: injected poison in chunk 1")),
            "attempt {attempt}'s error line: {stdout}"
        );
    }
    assert!(stdout.lines().all(|l| l.starts_with("[00001/")), "only the failed chunk: {stdout}");

    // One attempt, as JSON lines; by the output location too.
    let out = run(batchfan(&home).args(["logs", "--attempt", "2", "--chunk", "1", "--format", "json"]).arg(&output));
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l["chunk"] == 1 && l["attempt"] == 2 && l["timestamp_unix_ms"].is_u64()), "{lines:?}");

    // Every chunk, merged in time order; --tail keeps the last line of each attempt.
    let out = run(batchfan(&home).args(["logs", &run_id, "--tail", "1", "--format", "json"]));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "chunks 0 and 2 once, chunk 1 twice: {lines:?}");
    let times: Vec<u64> = lines.iter().map(|l| l["timestamp_unix_ms"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order: {times:?}");

    // A chunk the run does not have is bad input naming the option.
    let out = run(batchfan(&home).args(["logs", &run_id, "--chunk", "3"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--chunk"));
    // --since in the future of every line: nothing.
    let out = run(batchfan(&home).args(["logs", &run_id, "--since", "0s"]));
    assert_eq!((out.status.code(), out.stdout.len()), (Some(0), 0));
}

#[test]
fn runs_lists_past_runs_newest_first_from_the_notes_and_an_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, input) = (tmp.path().join("home"), tmp.path().join("in"));
    write_dataset(&input, 43);
    let (first_out, second_out) = (tmp.path().join("out-a"), tmp.path().join("out-b"));
    let first = failing_local_run(&home, &input, &first_out);
    let out = run(batchfan(&home)
        .args(["run", "--local", "--children", "2", "--format", "json", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&second_out)
        .args(["--", &bin("batchfan-worker").display().to_string(), "wordcount"]));
    assert_eq!(out.status.code(), Some(0));
    let second = json(&out)["run_id"].as_str().unwrap().to_string();

    let out = run(batchfan(&home).args(["runs", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let runs = json(&out);
    let ids: Vec<&str> = runs.as_array().unwrap().iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
    let (newest, older) = (&runs[0], &runs[1]);
    assert_eq!((newest["kind"].as_str(), newest["status"].as_str()), (Some("local"), Some("succeeded")));
    assert_eq!((newest["committed"].as_u64(), newest["failed"].as_u64()), (Some(2), Some(0)));
    assert!(newest["duration_ms"].is_u64(), "{newest}");
    assert_eq!((older["status"].as_str(), older["committed"].as_u64()), (Some("failed"), Some(2)));
    assert_eq!((older["failed"].as_u64(), older["pending"].as_u64()), (Some(1), Some(0)));

    // Another machine (no notes) finds a run from its output's records.
    let elsewhere = tmp.path().join("elsewhere");
    let out = run(batchfan(&elsewhere).args(["runs", "--format", "json", "--output"]).arg(&first_out));
    let runs = json(&out);
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    assert_eq!(runs[0]["run_id"].as_str(), Some(first.as_str()));
    let out = run(batchfan(&elsewhere).args(["runs"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1, "only the header: no notes here");
    let out = run(batchfan(&home).args(["runs"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with(&second) && l.contains("succeeded")), "{text}");
}

/// Puts `messages` into CloudWatch Logs stream `stream` of `group` on moto (creating both).
async fn put_log_events(moto: &Moto, group: &str, stream: &str, messages: &[(i64, &str)]) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&moto.sdk_config());
    let _ = logs.create_log_group().log_group_name(group).send().await;
    logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await.unwrap();
    let events = messages
        .iter()
        .map(|(t, m)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(*t).message(*m).build().unwrap()
        })
        .collect::<Vec<_>>();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();
}

// A queue run's logs are where each chunk's marker says: a pool worker's log file, or (a worker
// on ECS / AWS Batch) a CloudWatch Logs stream, read with GetLogEvents. Here two markers are
// pointed at streams on moto, one that exists and one that does not.
#[tokio::test(flavor = "multi_thread")]
async fn queue_run_logs_come_from_the_files_and_cloudwatch_streams_the_markers_name() {
    let moto = moto();
    let home = tempfile::tempdir().unwrap();
    let cli = || batchfan_on(moto, home.path());
    let (queue, run_id) = enqueued(moto, home.path(), "observe-q", "observe-work", 44, "3").await;
    let logs_dir = home.path().join("pool");
    let out = run(cli()
        .env("BATCHFAN_QUEUE_IDLE_EXIT", "2")
        .args(["workers", "--queue-url", &queue, "--count", "2", "--log-dir"])
        .arg(&logs_dir)
        .arg("--")
        .arg(bin("batchfan-worker"))
        .arg("wordcount"));
    assert_eq!(out.status.code(), Some(0));

    // Chunk 0: the pool worker's log file its marker names.
    let out = run(cli().args(["logs", &run_id, "--chunk", "0"]));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("[00000/1] ") && l.contains("chunk committed")), "{stdout}");

    // Chunks 1 and 2: markers naming CloudWatch streams, as a worker on AWS would.
    let s3 = moto.s3().await;
    for (chunk, stream) in [(1u64, "wordcount/default/task-1"), (2, "wordcount/default/gone")] {
        let key = format!("out/_batchfan/runs/{run_id}/done/{chunk:05}.json");
        let body = s3.get_object().bucket("observe-q").key(&key).send().await.unwrap().body.collect().await.unwrap();
        let mut marker: serde_json::Value = serde_json::from_slice(&body.into_bytes()).unwrap();
        marker["log"] = serde_json::json!({"kind": "cloudwatch", "group": "/aws/batch/job", "stream": stream});
        let body = aws_sdk_s3::primitives::ByteStream::from(serde_json::to_vec(&marker).unwrap());
        s3.put_object().bucket("observe-q").key(&key).body(body).send().await.unwrap();
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    put_log_events(
        moto,
        "/aws/batch/job",
        "wordcount/default/task-1",
        &[(now - 2000, "first line of chunk 1"), (now - 1000, "ERROR input changed: re-plan")],
    )
    .await;
    let out = run(cli().args(["logs", &run_id, "--chunk", "1", "--chunk", "2", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let texts: Vec<(u64, &str)> =
        lines.iter().map(|l| (l["chunk"].as_u64().unwrap(), l["text"].as_str().unwrap())).collect();
    let gone: Vec<&(u64, &str)> = texts.iter().filter(|(c, _)| *c == 2).collect();
    assert_eq!(gone.len(), 1, "a missing stream is one line: {texts:?}");
    assert!(gone[0].1.contains("does not exist") && gone[0].1.contains("wordcount/default/gone"), "{texts:?}");
    let found: Vec<&str> = texts.iter().filter(|(c, _)| *c == 1).map(|(_, t)| *t).collect();
    assert_eq!(found, ["first line of chunk 1", "ERROR input changed: re-plan"]);
    assert_eq!(lines.iter().find(|l| l["chunk"] == 1).unwrap()["timestamp_unix_ms"].as_i64(), Some(now - 2000));
    // Text: the notice goes to stderr, the lines to stdout, prefixed.
    let out = run(cli().args(["logs", &run_id, "--chunk", "1", "--chunk", "2", "--tail", "1"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "[00001/1] ERROR input changed: re-plan");
    assert!(String::from_utf8_lossy(&out.stderr).contains("[00002/1] log stream `wordcount/default/gone`"));
}

// A worker in a container on AWS (Batch, ECS, Fargate) names its CloudWatch Logs stream in its
// markers, from the container's metadata endpoint (`ECS_CONTAINER_METADATA_URI_V4`, here a
// local server answering as the ECS agent does): `batchfan logs` of a queue run reads it.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_on_aws_names_its_log_stream_in_its_markers() {
    let moto = moto();
    let home = tempfile::tempdir().unwrap();
    let cli = || batchfan_on(moto, home.path());
    let (queue, run_id) = enqueued(moto, home.path(), "observe-meta", "observe-meta", 12, "1").await;
    let metadata = start_fixed_answer(
        r#"{"DockerId":"cd18","Name":"default","LogDriver":"awslogs","LogOptions":{"awslogs-create-group":"true","awslogs-group":"/aws/batch/job","awslogs-region":"us-east-1","awslogs-stream":"wordcount/default/meta-task"}}"#,
    );
    let out = run(command("batchfan-worker", Some(moto))
        .env("BATCHFAN_QUEUE_URL", &queue)
        .env("BATCHFAN_QUEUE_IDLE_EXIT", "1")
        .env("ECS_CONTAINER_METADATA_URI_V4", format!("{metadata}/v4/cd18"))
        .env_remove("BATCHFAN_LOG_FILE")
        .arg("wordcount"));
    assert_eq!(out.status.code(), Some(0));
    let key = format!("out/_batchfan/runs/{run_id}/done/00000.json");
    let s3 = moto.s3().await;
    let body = s3.get_object().bucket("observe-meta").key(&key).send().await.unwrap().body.collect().await.unwrap();
    let marker: serde_json::Value = serde_json::from_slice(&body.into_bytes()).unwrap();
    assert_eq!(
        marker["log"],
        serde_json::json!({"kind": "cloudwatch", "group": "/aws/batch/job", "stream": "wordcount/default/meta-task"}),
        "{marker}"
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    put_log_events(moto, "/aws/batch/job", "wordcount/default/meta-task", &[(now - 1000, "committed in the task")])
        .await;
    let out = run(cli().args(["logs", &run_id, "--chunk", "0"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[00000/1] committed in the task");
}

#[test]
fn logs_follow_prints_a_running_local_runs_lines_and_ends_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, input, output) = (tmp.path().join("home"), tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 46);
    let fault = bin("fault_worker").display().to_string();
    let mut running = batchfan(&home)
        .args(["run", "--local", "--children", "2", "--format", "json", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--", &fault])
        .env("FAULT_SLEEP_MS", "1500")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The run's note appears once it is planned and claimed.
    let notes = home.join("runs");
    assert!(
        batchfan_tests::eventually(std::time::Duration::from_secs(60), || std::fs::read_dir(&notes)
            .is_ok_and(|mut d| d.next().is_some())),
        "the run was noted"
    );
    let run_id = std::fs::read_dir(&notes).unwrap().next().unwrap().unwrap().file_name().into_string().unwrap();
    let out = run(batchfan(&home).args(["logs", &run_id, "--follow", "--interval", "0.2"]));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for chunk in [0, 1] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("[{chunk:05}/1] ")) && l.contains("chunk started")),
            "{stdout}"
        );
    }
    // --follow ended because the chunks were committed.
    for chunk in [0, 1] {
        assert!(output.join(format!("_batchfan/runs/{run_id}/done/{chunk:05}.json")).exists());
    }
    assert_eq!(running.wait().unwrap().code(), Some(0));
}

// A chunk that committed on its second attempt keeps its failed first attempt in the report,
// also when the report is built again (`status` of the finished run).
#[test]
fn a_chunk_committed_after_a_retry_keeps_its_failed_attempt_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, input, output) = (tmp.path().join("home"), tmp.path().join("in"), tmp.path().join("out"));
    write_dataset(&input, 47);
    let fault = bin("fault_worker").display().to_string();
    let out = run(batchfan(&home)
        .args(["run", "--local", "--children", "2", "--attempts", "2", "--format", "json", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--", &fault])
        .env("FAULT_FAIL_UNTIL_ATTEMPT", "2"));
    assert_eq!(out.status.code(), Some(0));
    let run_id = json(&out)["run_id"].as_str().unwrap().to_string();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(output.join(format!("_batchfan/runs/{run_id}/report.json"))).unwrap())
            .unwrap();
    let out = run(batchfan(&home).args(["status", &run_id, "--format", "json"]));
    let rebuilt = json(&out)["report"].clone();
    for report in [&written, &rebuilt] {
        for chunk in report["chunks"].as_array().unwrap() {
            assert_eq!(chunk["status"], "SUCCEEDED", "{chunk}");
            let history = chunk["attempt_history"].as_array().unwrap();
            assert_eq!(history.len(), 2, "{chunk}");
            assert_eq!((history[0]["attempt"].as_u64(), history[0]["exit_code"].as_i64()), (Some(1), Some(1)));
            assert!(history[0]["reason"].as_str().unwrap().contains("injected failure on attempt 1"), "{chunk}");
            assert_eq!((history[1]["attempt"].as_u64(), history[1]["committed"].as_bool()), (Some(2), Some(true)));
        }
    }
}
