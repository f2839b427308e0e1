//! `batchfan logs` of an AWS Batch run (issue 18), end to end on moto's Batch in Docker mode:
//! the worker image runs as the array's children, moto writes each container's output to
//! CloudWatch Logs (`/aws/batch/job`, stream `JOBDEF/default/JOBID`) when it exits, and `logs`
//! finds the streams from DescribeJobs of the chunks asked for.

use std::process::Command;

use batchfan_tests::{Moto, batch_queue, command, dataset_in_bucket, run, start_moto};

const TAG: &str = "batchfan-worker:observe";

fn batchfan(moto: &Moto, home: &std::path::Path) -> Command {
    let mut cmd = command("batchfan", Some(moto));
    cmd.env("BATCHFAN_HOME", home).env("BATCHFAN_BATCH_RPS", "1000");
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_childs_error_line_comes_back_through_logs_failed() {
    if !batchfan_tests::docker("a_failing_childs_error_line_comes_back_through_logs_failed") {
        return;
    }
    assert!(batchfan_tests::build_worker_image(TAG), "the image builds (a Docker engine is required)");
    let home = tempfile::tempdir().unwrap();
    let moto = start_moto(&[("MOTO_DOCKER_NETWORK_MODE", "host")]);
    batch_queue(&moto, "q-logs", true);
    // Children that fail at start-up with a configuration error (exit 2), one line saying why.
    let env = [("BATCHFAN_READ_CONCURRENCY", "999")];
    batchfan_tests::register_image_definition(&moto, home.path(), "wordcount-bad-env", TAG, &["wordcount"], &env, 300);
    dataset_in_bucket(&moto.s3().await, "logs-data", "in/", 45).await;
    let out = run(batchfan(&moto, home.path()).args([
        "submit",
        "--allow",
        "plaintext-secret",
        "--job-queue",
        "q-logs",
        "--job-definition",
        "wordcount-bad-env",
        "--input",
        "s3://logs-data/in/",
        "--output",
        "s3://logs-data/out/",
        "--children",
        "2",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let run_id =
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["run_id"].as_str().unwrap().to_string();
    let out = run(batchfan(&moto, home.path()).args(["wait", &run_id, "--interval", "0.5", "--timeout", "240"]));
    assert_eq!(out.status.code(), Some(1), "both children failed");

    let out = run(batchfan(&moto, home.path()).args(["logs", &run_id, "--failed"]));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for chunk in [0, 1] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("[{chunk:05}/1] "))
                && l.contains("BATCHFAN_READ_CONCURRENCY=`999` is not an integer from 1 to 64")),
            "chunk {chunk}'s error line from its CloudWatch stream: {stdout}"
        );
    }
    // The report names each attempt's stream.
    let out = run(batchfan(&moto, home.path()).args(["status", &run_id, "--format", "json"]));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let attempt = &status["report"]["chunks"][0]["attempt_history"][0];
    assert_eq!(attempt["log"]["group"], "/aws/batch/job", "{status}");
    assert!(attempt["log"]["stream"].as_str().is_some_and(|s| s.starts_with("wordcount-bad-env/default/")), "{status}");
}
