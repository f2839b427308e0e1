//! `batchfan scale run --target batch` end to end, where moto runs containers (its AWS Batch in
//! Docker mode): scale-out submits worker jobs of the worker image built FROM scratch, they
//! drain the queue (every chunk committed once) and exit when idle (BATCHFAN_QUEUE_IDLE_EXIT), and
//! the controller logs readable lines.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batchfan_tests::{
    batch_client, batch_queue, command, dataset_in_bucket, download_prefix, merge_counts, part_bodies,
    reference_wordcount, run, start_moto,
};

/// This branch's own tag: other work may build and remove other tags at the same time.
const TAG: &str = "batchfan-worker:scale";

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

#[tokio::test(flavor = "multi_thread")]
async fn scale_run_batch_submits_worker_jobs_that_drain_the_queue_and_exit_when_idle() {
    if let Some(why) = batchfan_tests::docker_unavailable() {
        eprintln!("skipped: moto's Batch cannot run containers here ({why})");
        return;
    }
    assert!(batchfan_tests::build_worker_image(TAG), "the worker image builds");

    let home = tempfile::tempdir().unwrap();
    let moto = start_moto(&[("MOTO_DOCKER_NETWORK_MODE", "host")]);
    batch_queue(&moto, "q-scale", true);
    let batchfan = || {
        let mut cmd = command("batchfan", Some(&moto));
        cmd.env("BATCHFAN_HOME", home.path()).env("BATCHFAN_BATCH_RPS", "1000");
        cmd
    };
    let env = [("BATCHFAN_QUEUE_IDLE_EXIT", "5")];
    batchfan_tests::register_image_definition(&moto, home.path(), "scale-worker", TAG, &["wordcount"], &env, 600);

    let s3 = moto.s3().await;
    let data = dataset_in_bucket(&s3, "scale-batch", "in/", 31).await;
    let (queue, _) = moto.queue("scale-batch-work", 60, Some(5)).await;
    let out = run(batchfan().args(["enqueue", "--queue-url", &queue, "--format", "json", "--children", "6"]).args([
        "--input",
        "s3://scale-batch/in/",
        "--output",
        "s3://scale-batch/out/",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let run_id = json(&out.stdout)["run_id"].as_str().unwrap().to_string();

    // A worker per 2 counted messages, checked every 2 s, none after 10 idle seconds.
    let policy = home.path().join("keda.json");
    std::fs::write(
        &policy,
        r#"{"Policies": [{"Keda": {"name": "workers", "queueLength": 2, "pollingInterval": 2, "cooldownPeriod": 10}}]}"#,
    )
    .unwrap();
    let decisions = home.path().join("decisions.txt");
    let log = home.path().join("controller.log");
    let mut controller = batchfan()
        .args(["scale", "run", "--queue-url", &queue, "--policy"])
        .arg(&policy)
        .args(["--target", "batch", "--job-queue", "q-scale", "--job-definition", "scale-worker"])
        .args(["--name-prefix", "scale-worker", "--min", "0", "--max", "3", "--interval", "2"])
        .stdout(std::fs::File::create(&decisions).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();

    // Every chunk committed, and every worker job finished by itself.
    let batch = batch_client(&moto.endpoint).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut succeeded, mut live) = (0, usize::MAX);
    loop {
        let status = run(batchfan().args(["status", &run_id, "--format", "json"]));
        let committed = json(&status.stdout)["committed"].as_u64().unwrap_or(0);
        if committed == 6 {
            let mut jobs: Vec<(&str, String)> = Vec::new();
            for s in ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"] {
                let listed = batch
                    .list_jobs()
                    .job_queue("q-scale")
                    .job_status(aws_sdk_batch::types::JobStatus::from(s))
                    .send()
                    .await
                    .unwrap();
                jobs.extend(listed.job_summary_list().iter().filter_map(|j| j.job_id().map(|id| (s, id.to_string()))));
            }
            // moto lists array children beside their parents: count the workers (children and
            // plain jobs), not the parents.
            let parents: Vec<String> =
                jobs.iter().filter_map(|(_, id)| id.split_once(':').map(|(p, _)| p.to_string())).collect();
            let workers: Vec<&(&str, String)> = jobs.iter().filter(|(_, id)| !parents.contains(id)).collect();
            let count = |status: &str| workers.iter().filter(|(s, _)| *s == status).count();
            let statuses: Vec<(&str, usize)> =
                ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"]
                    .into_iter()
                    .map(|s| (s, count(s)))
                    .collect();
            succeeded = count("SUCCEEDED");
            live = statuses.iter().filter(|(s, _)| !matches!(*s, "SUCCEEDED" | "FAILED")).map(|s| s.1).sum();
            let failed = statuses.iter().find(|(s, _)| *s == "FAILED").map_or(0, |s| s.1);
            assert_eq!(failed, 0, "no worker job failed: {statuses:?}");
            if succeeded > 0 && live == 0 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the queue was not drained by worker jobs that exited ({committed} of 6 committed, {succeeded} succeeded, {live} live); controller: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(Command::new("kill").args(["-TERM", &controller.id().to_string()]).status().unwrap().success());
    let status = controller.wait().unwrap();
    let mut stderr = String::new();
    std::fs::File::open(&log).unwrap().read_to_string(&mut stderr).unwrap();
    let stdout = std::fs::read_to_string(&decisions).unwrap();
    eprintln!("scale run stdout:\n{stdout}\nscale run stderr:\n{stderr}");
    assert_eq!(status.code(), Some(130), "{stderr}");

    // What the controller said: what it polls first, then one readable line per decision.
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.contains("polling") && first.contains("first decision in about 0 s"), "{first}");
    assert!(stdout.lines().any(|l| l.contains("capacity 0 -> 3")), "scale-out to --max: {stdout}");
    assert!(stderr.contains("batch: submitted 3 worker job(s)"), "{stderr}");
    assert!(!stdout.contains(" { ") && !stderr.contains(" { "), "no Rust debug structures:\n{stdout}\n{stderr}");
    assert!(succeeded >= 3, "the submitted workers exited by themselves when idle: {succeeded}");

    let objects = download_prefix(&s3, "scale-batch", "out/").await;
    let parts = part_bodies(&objects, "out/");
    assert_eq!(parts.len(), 6, "each chunk committed once: {:?}", objects.keys());
    assert_eq!(merge_counts(parts), reference_wordcount(data.path()));
    assert_eq!(moto.queue_counts(&queue).await, (0, 0, 0), "no message left");
}
