//! Capacity checked before submit (issue 20) and `status` saying why a run is not moving
//! (issue 18), against moto's Batch with managed compute environments: a job no environment
//! can ever give is refused (exit 2, nothing written or sent), so is a queue whose environments
//! are all DISABLED, and `--depends-on RUN:N_TO_N` between arrays of different sizes; children
//! held RUNNABLE by moto's state manager are explained by `status`.

use std::process::Command;
use std::time::{Duration, Instant};

use batchfan_tests::{Moto, batch_client, batch_queue, command, create_bucket, download_prefix, moto, run, start_moto};

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A queue over managed compute environments (see tests/moto_capacity.py).
fn capacity_queue(moto: &Moto, queue: &str, envs: serde_json::Value, docker: bool) {
    let mut cmd = Command::new(root().join(".venv-moto/bin/python"));
    cmd.arg(root().join("tests/moto_capacity.py")).arg(&moto.endpoint).arg(queue).arg(envs.to_string());
    if docker {
        cmd.arg("--docker");
    }
    let out = cmd.output().expect("run moto_capacity.py");
    assert!(out.status.success(), "capacity setup failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn batchfan(moto: &Moto, home: &std::path::Path) -> Command {
    let mut cmd = command("batchfan", Some(moto));
    cmd.env("BATCHFAN_HOME", home).env("BATCHFAN_BATCH_RPS", "1000");
    cmd
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

async fn inputs(moto: &Moto, bucket: &str, n: usize) {
    let s3 = moto.s3().await;
    create_bucket(&s3, bucket).await;
    for i in 0..n {
        s3.put_object()
            .bucket(bucket)
            .key(format!("in/{i:03}.txt"))
            .body(aws_sdk_s3::primitives::ByteStream::from(format!("line {i}\n").into_bytes()))
            .send()
            .await
            .unwrap();
    }
}

fn register(moto: &Moto, home: &std::path::Path, name: &str, extra: &[&str]) {
    let out = run(batchfan(moto, home)
        .args(["register", "--name", name, "--image", "batchfan-worker:0.1.0", "--vcpu", "1", "--memory", "2048"])
        .args(extra));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

fn submit(
    moto: &Moto,
    home: &std::path::Path,
    queue: &str,
    def: &str,
    bucket: &str,
    extra: &[&str],
) -> std::process::Output {
    run(batchfan(moto, home)
        .args(["submit", "--job-queue", queue, "--job-definition", def, "--format", "json"])
        .args(["--input", &format!("s3://{bucket}/in/"), "--output", &format!("s3://{bucket}/out/")])
        .args(extra))
}

async fn jobs_in(moto: &Moto, queue: &str) -> usize {
    let batch = batch_client(&moto.endpoint).await;
    let mut n = 0;
    for status in [aws_sdk_batch::types::JobStatus::Succeeded, aws_sdk_batch::types::JobStatus::Submitted] {
        n += batch.list_jobs().job_queue(queue).job_status(status).send().await.unwrap().job_summary_list().len();
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_no_compute_environment_can_give_is_refused_naming_the_limits() {
    let moto = moto();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    capacity_queue(
        moto,
        "q-small",
        serde_json::json!([{"name": "ce-small", "type": "EC2", "maxvCpus": 4, "instanceTypes": ["m5.large"]}]),
        false,
    );
    capacity_queue(
        moto,
        "q-fargate",
        serde_json::json!([{"name": "ce-fargate", "type": "FARGATE", "maxvCpus": 4}]),
        false,
    );
    capacity_queue(
        moto,
        "q-off",
        serde_json::json!([{"name": "ce-off", "type": "EC2", "state": "DISABLED", "maxvCpus": 16, "instanceTypes": ["m5"]}]),
        false,
    );
    register(moto, home, "wc", &[]);
    register(moto, home, "fg", &["--fargate", "--execution-role", "arn:aws:iam::123456789012:role/exec"]);
    inputs(moto, "capacity", 3).await;
    let cases: Vec<(&str, &str, Vec<&str>, Vec<&str>)> = vec![
        (
            "q-small",
            "wc",
            vec!["--vcpu", "8", "--memory", "4096"],
            vec!["`ce-small` allows at most maxvCpus 4", "8 vCPU"],
        ),
        (
            "q-small",
            "wc",
            vec!["--vcpu", "2", "--memory", "8192"],
            vec!["no instance type of `ce-small` is big enough", "m5.large: 2 vCPU, 8192 MiB installed"],
        ),
        ("q-small", "wc", vec!["--vcpu", "0.5", "--memory", "1024"], vec!["whole vCPUs"]),
        ("q-fargate", "fg", vec!["--vcpu", "8", "--memory", "16384"], vec!["`ce-fargate` allows at most maxvCpus 4"]),
        ("q-fargate", "wc", vec![], vec!["`ce-fargate` is a Fargate environment", "job definition is EC2"]),
        ("q-off", "wc", vec![], vec!["all DISABLED or INVALID", "`ce-off` (DISABLED"]),
    ];
    for (queue, def, args, says) in cases {
        for dry in [true, false] {
            let mut all = args.clone();
            if dry {
                all.push("--dry-run");
            }
            let out = submit(moto, home, queue, def, "capacity", &all);
            assert_eq!(out.status.code(), Some(2), "{queue} {args:?} dry={dry}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            for s in &says {
                assert!(stderr.contains(s), "{queue} {args:?}: `{s}` not in {stderr}");
            }
        }
    }
    assert!(download_prefix(&moto.s3().await, "capacity", "out/").await.is_empty(), "nothing written");
    for queue in ["q-small", "q-fargate", "q-off"] {
        assert_eq!(jobs_in(moto, queue).await, 0, "nothing sent to {queue}");
    }
    // What fits is accepted.
    let out = submit(moto, home, "q-small", "wc", "capacity", &["--vcpu", "2", "--memory", "7000", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    let out = submit(moto, home, "q-fargate", "fg", "capacity", &["--vcpu", "4", "--memory", "8192", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
}

// Regression (issue 20): `--depends-on RUN:N_TO_N` between arrays of 3 and 5 children was
// accepted; child 3 and 4 then wait on children that do not exist.
#[tokio::test(flavor = "multi_thread")]
async fn n_to_n_between_arrays_of_different_sizes_is_refused() {
    let moto = moto();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    batch_queue(moto, "q-nton", false);
    register(moto, home, "wc", &[]);
    inputs(moto, "nton-a", 3).await;
    inputs(moto, "nton-b", 5).await;
    let first = submit(moto, home, "q-nton", "wc", "nton-a", &["--max-items-per-chunk", "1"]);
    assert_eq!(first.status.code(), Some(0));
    let first = json(&first);
    let (run_id, job_id) = (first["run_id"].as_str().unwrap(), first["arrays"][0]["job_id"].as_str().unwrap());
    for dependency in [format!("{run_id}:N_TO_N"), format!("{job_id}:N_TO_N")] {
        for dry in [true, false] {
            let mut args = vec!["--max-items-per-chunk", "1", "--depends-on", &dependency];
            if dry {
                args.push("--dry-run");
            }
            let out = submit(moto, home, "q-nton", "wc", "nton-b", &args);
            assert_eq!(out.status.code(), Some(2), "{dependency} dry={dry}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("has 3 children") && stderr.contains("has 5 children"), "{stderr}");
        }
    }
    assert!(download_prefix(&moto.s3().await, "nton-b", "out/").await.is_empty(), "nothing written");
    // Same sizes are fine.
    let out = submit(
        moto,
        home,
        "q-nton",
        "wc",
        "nton-b",
        &["--children", "3", "--depends-on", &format!("{run_id}:N_TO_N"), "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0));
}

/// Waits until every child of `parents` is RUNNABLE, then holds every job where it is.
async fn hold_when_runnable(moto: &Moto, parents: &[&str]) {
    let batch = batch_client(&moto.endpoint).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut all = true;
        for parent in parents {
            let out = batch
                .list_jobs()
                .array_job_id(*parent)
                .job_status(aws_sdk_batch::types::JobStatus::Runnable)
                .send()
                .await
                .unwrap();
            let described = batch.describe_jobs().jobs(*parent).send().await.unwrap();
            let size = described.jobs()[0].array_properties().and_then(|a| a.size()).unwrap_or(0) as usize;
            all &= out.job_summary_list().len() == size;
        }
        if all {
            break;
        }
        assert!(Instant::now() < deadline, "children did not become RUNNABLE");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Manual progression that never comes: every job stays where it is.
    moto.moto_api(
        "/moto-api/state-manager/set-transition",
        r#"{"model_name": "batch::job", "transition": {"progression": "manual", "times": 1000000000}}"#,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_says_why_runnable_children_are_not_moving() {
    // Docker mode: jobs move through the statuses the state manager lets them (no container
    // starts before STARTING, and these never get there).
    let moto = start_moto(&[]);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    capacity_queue(
        &moto,
        "q-stuck",
        serde_json::json!([
            {"name": "ce-busy", "type": "EC2", "maxvCpus": 4, "desiredvCpus": 4, "instanceTypes": ["m5.large"]},
            {"name": "ce-disabled", "type": "EC2", "state": "DISABLED", "maxvCpus": 64, "instanceTypes": ["m5"]}
        ]),
        true,
    );
    register(&moto, home, "wc", &[]);
    inputs(&moto, "stuck", 3).await;
    // Each status lasts 3 s: RUNNABLE from about 6 s after the submit until we hold it.
    moto.moto_api(
        "/moto-api/state-manager/set-transition",
        r#"{"model_name": "batch::job", "transition": {"progression": "time", "seconds": 3}}"#,
    );
    let out = submit(
        &moto,
        home,
        "q-stuck",
        "wc",
        "stuck",
        &["--max-items-per-chunk", "1", "--vcpu", "2", "--memory", "4096"],
    );
    assert_eq!(out.status.code(), Some(0));
    let record = json(&out);
    let run_id = record["run_id"].as_str().unwrap().to_string();
    let parent = record["arrays"][0]["job_id"].as_str().unwrap().to_string();
    hold_when_runnable(&moto, &[&parent]).await;

    let out = run(batchfan(&moto, home).args(["status", &run_id, "--stuck-after", "0", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let status = json(&out);
    let stuck = &status["stuck"];
    assert_eq!(stuck["stuck"], 3, "{status}");
    assert_eq!(stuck["examples"].as_array().map(Vec::len), Some(3), "{status}");
    assert_eq!(stuck["job"]["vcpu"], 2.0, "{status}");
    let reasons: Vec<&str> = stuck["reasons"].as_array().unwrap().iter().filter_map(|r| r.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("`ce-disabled` (DISABLED")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("`ce-busy` has all its vCPUs in use (desiredvCpus 4 of maxvCpus 4)")),
        "{reasons:?}"
    );
    let out = run(batchfan(&moto, home).args(["status", &run_id, "--stuck-after", "0"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not moving: 3 children RUNNABLE for 0 s or more"), "{text}");
    assert!(
        text.contains(&format!("{parent}:0")) && text.contains("ce-busy  ENABLED VALID MANAGED EC2, maxvCpus 4"),
        "{text}"
    );
    // Below the threshold nothing is said.
    let out = run(batchfan(&moto, home).args(["status", &run_id, "--stuck-after", "3600"]));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not moving"));

    // A run whose job no environment can ever give (submitted before the check, or the queue
    // changed since): a record written as an older batchfan would have left it.
    let batch = batch_client(&moto.endpoint).await;
    moto.moto_api(
        "/moto-api/state-manager/set-transition",
        r#"{"model_name": "batch::job", "transition": {"progression": "time", "seconds": 1}}"#,
    );
    let big = aws_sdk_batch::types::ContainerOverrides::builder()
        .resource_requirements(
            aws_sdk_batch::types::ResourceRequirement::builder()
                .r#type(aws_sdk_batch::types::ResourceType::Vcpu)
                .value("16")
                .build(),
        )
        .build();
    let sent = batch
        .submit_job()
        .job_name("too-big")
        .job_queue("q-stuck")
        .job_definition("wc")
        .array_properties(aws_sdk_batch::types::ArrayProperties::builder().size(2).build())
        .container_overrides(big)
        .send()
        .await
        .unwrap();
    let big_id = sent.job_id().unwrap().to_string();
    hold_when_runnable(&moto, &[&big_id]).await;
    let big_run = "bf-20261130-000000-b16b16";
    let record = serde_json::json!({
        "batchfan_run": 1, "run_id": big_run,
        "record_uri": format!("s3://stuck/big/_batchfan/runs/{big_run}/run.json"),
        "manifest": format!("s3://stuck/big/_batchfan/runs/{big_run}/manifest.jsonl"),
        "output": "s3://stuck/big/", "chunk_count": 2, "created_unix_ms": 1,
        "arrays": [{"job_id": big_id, "job_name": "too-big", "manifest": "m", "size": 2, "first": 0, "redrive": 0}],
        "template": {"jobName": "too-big", "jobQueue": "q-stuck", "jobDefinition": "wc"},
        "options": {"job_queue": "q-stuck", "job_definition": "wc", "vcpu": 16.0}
    });
    moto.s3()
        .await
        .put_object()
        .bucket("stuck")
        .key(format!("big/_batchfan/runs/{big_run}/run.json"))
        .body(aws_sdk_s3::primitives::ByteStream::from(record.to_string().into_bytes()))
        .send()
        .await
        .unwrap();
    let out = run(batchfan(&moto, home).args(["status", "s3://stuck/big/", "--stuck-after", "0", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let status = json(&out);
    let reasons = status["stuck"]["reasons"].to_string();
    assert!(
        reasons.contains("no compute environment can ever run a job of 16 vCPU")
            && reasons.contains("`ce-busy` allows at most maxvCpus 4"),
        "{status}"
    );
}
