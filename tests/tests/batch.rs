//! The AWS Batch control plane against moto (Batch without Docker): register, submit arrays and
//! plain jobs, several arrays past 10,000 chunks, status/wait, failures and redrive on a server
//! where every job fails, cancel, dry runs and limit violations sending nothing, and throttling
//! plus a lost SubmitJob response through a fault-injecting proxy.

use std::process::Command;

use batchfan_tests::proxy::start_fault_proxy;
use batchfan_tests::{Moto, batch_client, batch_queue, command, create_bucket, download_prefix, moto, run, start_moto};

struct Env {
    home: tempfile::TempDir,
    endpoint: String,
}

impl Env {
    fn new(moto: &Moto) -> Env {
        Env { home: tempfile::tempdir().unwrap(), endpoint: moto.endpoint.clone() }
    }

    fn batchfan(&self, moto: &Moto) -> Command {
        let mut cmd = command("batchfan", Some(moto));
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("BATCHFAN_HOME", self.home.path())
            .env("BATCHFAN_BATCH_RPS", "1000");
        cmd
    }
}

async fn put(moto: &Moto, bucket: &str, key: &str, body: &[u8]) {
    let s3 = moto.s3().await;
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap();
}

/// A bucket with `n` small text objects under `in/`.
async fn bucket_with_inputs(moto: &Moto, bucket: &str, n: usize) {
    create_bucket(&moto.s3().await, bucket).await;
    for i in 0..n {
        put(moto, bucket, &format!("in/{i:03}.txt"), format!("line {i}\nmore words\n").as_bytes()).await;
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn register_short(env: &Env, moto: &Moto, name: &str) {
    let out = run(env.batchfan(moto).args(["register", "--name", name, "--image", "batchfan-worker:0.1.0"]).args([
        "--vcpu",
        "1",
        "--memory",
        "2048",
        "--command",
        "batchfan-worker",
        "--command",
        "wordcount",
    ]));
    assert_eq!(out.status.code(), Some(0));
}

fn submit(env: &Env, moto: &Moto, queue: &str, bucket: &str, extra: &[&str]) -> std::process::Output {
    run(env
        .batchfan(moto)
        .args(["submit", "--job-queue", queue, "--job-definition", "wc", "--format", "json"])
        .args(["--input", &format!("s3://{bucket}/in/"), "--output", &format!("s3://{bucket}/out/")])
        .args(extra))
}

async fn jobs_named(endpoint: &str, queue: &str, prefix: &str) -> Vec<String> {
    let batch = batch_client(endpoint).await;
    let filter = aws_sdk_batch::types::KeyValuesPair::builder().name("JOB_NAME").values(format!("{prefix}*")).build();
    let out = batch.list_jobs().job_queue(queue).filters(filter).send().await.unwrap();
    out.job_summary_list()
        .iter()
        .filter_map(|j| j.job_id())
        .filter(|id| !id.contains(':'))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn register_reuses_an_identical_revision_and_registers_a_changed_one() {
    let moto = moto();
    let env = Env::new(moto);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("jobdef.json");
    let doc = |image: &str| {
        serde_json::json!({
            "jobDefinitionName": "regtest",
            "type": "container",
            "platformCapabilities": ["EC2"],
            "containerProperties": {
                "image": image,
                "command": ["batchfan-worker", "wordcount"],
                "resourceRequirements": [{"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "4096"}],
                "environment": [{"name": "BATCHFAN_LOG_FORMAT", "value": "json"}],
                "jobRoleArn": "arn:aws:iam::123456789012:role/job",
                "readonlyRootFilesystem": true
            },
            "retryStrategy": {"attempts": 3, "evaluateOnExit": [{"action": "RETRY", "onStatusReason": "Host EC2*"}, {"action": "EXIT", "onReason": "*"}]},
            "timeout": {"attemptDurationSeconds": 600},
            "tags": {"team": "data"}
        })
        .to_string()
    };
    let register = |env: &Env| {
        let out = run(env
            .batchfan(moto)
            .args(["register", "--format", "json", "--cli-input-json"])
            .arg(format!("file://{}", file.display())));
        assert_eq!(out.status.code(), Some(0));
        json(&out)
    };
    std::fs::write(&file, doc("worker:1")).unwrap();
    let first = register(&env);
    assert_eq!(first["reused"], false);
    let again = register(&env);
    assert_eq!(again["reused"], true, "identical definition is reused");
    assert_eq!(again["revision"], first["revision"]);
    std::fs::write(&file, doc("worker:2")).unwrap();
    let changed = register(&env);
    assert_eq!(changed["reused"], false);
    assert_eq!(changed["revision"].as_i64().unwrap(), first["revision"].as_i64().unwrap() + 1);
    // Text output says which.
    let out = run(env.batchfan(moto).args(["register", "--cli-input-json"]).arg(&file));
    assert!(String::from_utf8_lossy(&out.stdout).contains("reused regtest:"));
    // A bad document names the problem and registers nothing.
    std::fs::write(&file, r#"{"jobDefinitionName":"regtest","containerProperties":{"image":"i","vcpus":1}}"#).unwrap();
    let out = run(env.batchfan(moto).args(["register", "--cli-input-json"]).arg(&file));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("containerProperties.vcpus") && stderr.contains("resourceRequirements"), "{stderr}");
    // An unknown field is named.
    std::fs::write(&file, r#"{"jobDefinitionName":"regtest","containerProperties":{"image":"i","cpus":1}}"#).unwrap();
    let out = run(env.batchfan(moto).args(["register", "--cli-input-json"]).arg(&file));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `cpus`"));
}

// Regression (issue 6): a Fargate definition that omits fargatePlatformConfiguration registered a
// new revision every time, because the service stores `platformVersion: LATEST` for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_fargate_definition_without_its_defaulted_fields_is_reused() {
    let moto = moto();
    let env = Env::new(moto);
    let file = env.home.path().join("fargate.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "jobDefinitionName": "fargate-defaults",
            "type": "container",
            "platformCapabilities": ["FARGATE"],
            "containerProperties": {
                "image": "batchfan-worker:0.1.0",
                "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
                "executionRoleArn": "arn:aws:iam::123456789012:role/exec"
            }
        })
        .to_string(),
    )
    .unwrap();
    let register = || {
        let out = run(env.batchfan(moto).args(["register", "--format", "json", "--cli-input-json"]).arg(&file));
        assert_eq!(out.status.code(), Some(0));
        json(&out)
    };
    let first = register();
    assert_eq!(first["reused"], false);
    let again = register();
    assert_eq!(again["reused"], true, "the stored revision differs only by service defaults");
    assert_eq!(again["revision"], first["revision"]);
}

// Regression (issue 6): `submit --job-definition ARN --vcpu N` looked the ARN up as a name and
// failed.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_definition_arn_with_resource_overrides_is_looked_up_by_arn() {
    let moto = moto();
    let env = Env::new(moto);
    batch_queue(moto, "q-arn", false);
    bucket_with_inputs(moto, "batch-arn", 3).await;
    let out = run(env
        .batchfan(moto)
        .args(["register", "--format", "json", "--name", "arn-def", "--image", "w:1"])
        .args(["--vcpu", "1", "--memory", "2048"]));
    assert_eq!(out.status.code(), Some(0));
    let arn = json(&out)["arn"].as_str().unwrap().to_string();
    assert!(arn.starts_with("arn:aws:batch:"), "{arn}");
    let out = run(env
        .batchfan(moto)
        .args(["submit", "--job-queue", "q-arn", "--job-definition", &arn, "--vcpu", "2", "--memory", "4096"])
        .args(["--input", "s3://batch-arn/in/", "--output", "s3://batch-arn/out/", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["arrays"].as_array().unwrap().len(), 1);
    // An ARN that names nothing is bad input, and nothing is written.
    let missing = format!("{}:999", arn.rsplit_once(':').unwrap().0);
    let out = run(env
        .batchfan(moto)
        .args(["submit", "--job-queue", "q-arn", "--job-definition", &missing, "--vcpu", "2", "--memory", "4096"])
        .args(["--input", "s3://batch-arn/in/", "--output", "s3://batch-arn/out2/"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist or is not ACTIVE"));
    assert!(download_prefix(&moto.s3().await, "batch-arn", "out2/").await.is_empty(), "nothing written");
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_an_array_then_status_and_wait_report_success() {
    let moto = moto();
    let env = Env::new(moto);
    batch_queue(moto, "q-array", false);
    register_short(&env, moto, "wc");
    bucket_with_inputs(moto, "batch-array", 7).await;
    let out = submit(
        &env,
        moto,
        "q-array",
        "batch-array",
        &["--max-items-per-chunk", "2", "--tag", "team=data", "--attempts", "2"],
    );
    assert_eq!(out.status.code(), Some(0));
    let record = json(&out);
    let run_id = record["run_id"].as_str().unwrap().to_string();
    assert_eq!(record["chunk_count"], 4);
    assert_eq!(record["arrays"].as_array().unwrap().len(), 1);
    let job_id = record["arrays"][0]["job_id"].as_str().unwrap().to_string();

    // The real request: one array of 4 children, the manifest URI in the environment, no items.
    let batch = batch_client(&moto.endpoint).await;
    let described = batch.describe_jobs().jobs(&job_id).send().await.unwrap();
    let job = &described.jobs()[0];
    assert_eq!(job.array_properties().and_then(|a| a.size()), Some(4));
    let env_vars = job.container().map(|c| c.environment().to_vec()).unwrap_or_default();
    let manifest = record["manifest"].as_str().unwrap();
    assert!(env_vars.iter().any(|kv| kv.name() == Some("BATCHFAN_MANIFEST") && kv.value() == Some(manifest)));
    let stored = download_prefix(&moto.s3().await, "batch-array", &format!("out/_batchfan/runs/{run_id}/")).await;
    assert!(stored.keys().any(|k| k.ends_with("manifest.jsonl")) && stored.keys().any(|k| k.ends_with("run.json")));

    // status by run id, wait by record URI.
    let out = run(env.batchfan(moto).args(["status", &run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let status = json(&out);
    assert_eq!(status["counts"]["succeeded"], 4);
    assert_eq!(status["complete"], true);
    // moto without Docker runs no container: Batch says every child succeeded, but no chunk
    // committed, and done means committed (issue 15): wait exits 1 naming them.
    let out = run(env.batchfan(moto).args(["wait", record["record_uri"].as_str().unwrap(), "--interval", "0.1"]));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("4 succeeded, 0 failed") && stdout.contains("not committed: 4 chunks"), "{stdout}");
    // Every option reaches the request: a second run depending N_TO_N on the first.
    let out = submit(
        &env,
        moto,
        "q-array",
        "batch-array",
        &[
            "--max-items-per-chunk",
            "2",
            "--overwrite",
            "--name",
            "options-run",
            "--depends-on",
            &format!("{job_id}:N_TO_N"),
            "--attempts",
            "3",
            "--retry-on-spot",
            "--timeout",
            "600",
            "--tag",
            "team=data",
            "--tag",
            "cost=etl",
            "--propagate-tags",
            "--priority",
            "7",
            "--env",
            "MODE=fast",
            "--vcpu",
            "2",
            "--memory",
            "4096",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let second = json(&out);
    let second_id = second["arrays"][0]["job_id"].as_str().unwrap();
    let described = batch.describe_jobs().jobs(second_id).send().await.unwrap();
    let job = &described.jobs()[0];
    assert_eq!(job.job_name(), Some("options-run"));
    let dep = &job.depends_on()[0];
    assert_eq!((dep.job_id(), dep.r#type().map(|t| t.as_str())), (Some(job_id.as_str()), Some("N_TO_N")));
    // moto does not echo a job's retryStrategy; the dry-run test checks its JSON.
    assert_eq!(job.timeout().and_then(|t| t.attempt_duration_seconds()), Some(600));
    assert_eq!(job.tags().and_then(|t| t.get("cost")).map(String::as_str), Some("etl"));
    let env_vars = job.container().map(|c| c.environment().to_vec()).unwrap_or_default();
    assert!(env_vars.iter().any(|kv| kv.name() == Some("MODE") && kv.value() == Some("fast")));
    assert_eq!(second["options"]["priority"], 7);
    // The output location names its newest run (as from a machine without the local note).
    let out = run(env.batchfan(moto).env("BATCHFAN_HOME", "/nonexistent").args([
        "status",
        "s3://batch-array/out/",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out)["run_id"], second["run_id"]);
    let out = run(env.batchfan(moto).args(["status", "s3://batch-array/in/"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run under s3://batch-array/in/_batchfan/runs/"));

    // Nothing committed (moto without Docker runs no container): redrive runs every chunk
    // again, though Batch said each succeeded (issue 15: done means committed).
    let out = run(env.batchfan(moto).args(["redrive", &run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let redriven = json(&out);
    assert_eq!(redriven["chunks"], serde_json::json!([0, 1, 2, 3]), "{redriven}");
    assert_eq!(redriven["requests"].as_array().map(Vec::len), Some(1), "{redriven}");
    // cancel of a run that finished (moto without Docker finishes jobs at once) terminates nothing.
    let out = run(env.batchfan(moto).args(["cancel", &run_id]));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing was running"));
    // A run id this machine never saw is bad input.
    let out = run(env.batchfan(moto).args(["status", "bf-20000101-000000-000000"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown run"));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_chunk_is_a_plain_job_and_more_than_10000_chunks_are_several_arrays() {
    let moto = moto();
    let env = Env::new(moto);
    batch_queue(moto, "q-sizes", false);
    register_short(&env, moto, "wc");
    bucket_with_inputs(moto, "batch-sizes", 1).await;
    let out = submit(&env, moto, "q-sizes", "batch-sizes", &[]);
    assert_eq!(out.status.code(), Some(0));
    let record = json(&out);
    let job_id = record["arrays"][0]["job_id"].as_str().unwrap();
    let described = batch_client(&moto.endpoint).await.describe_jobs().jobs(job_id).send().await.unwrap();
    assert!(described.jobs()[0].array_properties().is_none(), "a single chunk is a plain job");

    // 10,001 one-byte records split one per range: 10,001 chunks, two arrays chained.
    create_bucket(&moto.s3().await, "batch-big").await;
    put(moto, "batch-big", "in/records.txt", &b"x\n".repeat(10_001)).await;
    let out = submit(
        &env,
        moto,
        "q-sizes",
        "batch-big",
        &["--split-bytes", "2", "--max-items-per-chunk", "1", "--sequential"],
    );
    assert_eq!(out.status.code(), Some(0));
    let record = json(&out);
    assert_eq!(record["chunk_count"], 10_001);
    let arrays = record["arrays"].as_array().unwrap();
    assert_eq!(arrays.len(), 2);
    assert_eq!((arrays[0]["size"].as_u64(), arrays[1]["size"].as_u64()), (Some(10_000), Some(1)));
    assert_eq!(arrays[1]["first"], 10_000);
    let second = arrays[1]["job_id"].as_str().unwrap();
    let described = batch_client(&moto.endpoint).await.describe_jobs().jobs(second).send().await.unwrap();
    let deps = described.jobs()[0].depends_on().to_vec();
    assert_eq!(deps.first().and_then(|d| d.job_id()), arrays[0]["job_id"].as_str(), "--sequential chains the arrays");
    let out = run(env.batchfan(moto).args(["status", record["run_id"].as_str().unwrap(), "--format", "json"]));
    assert_eq!(json(&out)["counts"]["succeeded"], 10_001);
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_make_wait_exit_1_with_a_table_and_redrive_submits_exactly_the_failed_chunks() {
    let failing = start_moto(&[("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")]);
    let env = Env::new(&failing);
    batch_queue(&failing, "q-fail", false);
    register_short(&env, &failing, "wc");
    bucket_with_inputs(&failing, "batch-fail", 5).await;
    let out = submit(&env, &failing, "q-fail", "batch-fail", &["--max-items-per-chunk", "1"]);
    assert_eq!(out.status.code(), Some(0));
    let record = json(&out);
    let run_id = record["run_id"].as_str().unwrap().to_string();
    let out = run(env.batchfan(&failing).args(["wait", &run_id, "--interval", "0.1"]));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 succeeded, 5 failed") && stdout.contains("failed children:"), "{stdout}");
    assert!(
        stdout.contains("INDEX")
            && stdout.lines().filter(|l| l.trim_start().starts_with(char::is_numeric)).count() >= 5
    );
    // Tolerated failures exit 0.
    let out =
        run(env.batchfan(&failing).args(["wait", &run_id, "--interval", "0.1", "--tolerated-failure-count", "5"]));
    assert_eq!(out.status.code(), Some(0));
    let out = run(env.batchfan(&failing).args(["wait", &run_id, "--tolerated-failure-percent", "50"]));
    assert_eq!(out.status.code(), Some(1));
    // The finished run left its report: every chunk FAILED with Batch's reason (issue 10).
    let stored = download_prefix(&failing.s3().await, "batch-fail", &format!("out/_batchfan/runs/{run_id}/")).await;
    let report: serde_json::Value =
        serde_json::from_slice(&stored[&format!("out/_batchfan/runs/{run_id}/report.json")]).unwrap();
    assert_eq!((report["failed"].as_u64(), report["chunks"].as_array().map(Vec::len)), (Some(5), Some(5)));
    assert!(report["chunks"].as_array().unwrap().iter().all(|c| c["status"] == "FAILED" && c["reason"].is_string()));
    let page = format!("out/_batchfan/runs/{run_id}/report.html");
    assert!(stored.contains_key(&page), "the report's page beside it");
    // `status` exits 0 whatever the run did; with --exit-status a failed run exits 1 (issue 10).
    assert_eq!(run(env.batchfan(&failing).args(["status", &run_id])).status.code(), Some(0));
    assert_eq!(run(env.batchfan(&failing).args(["status", &run_id, "--exit-status"])).status.code(), Some(1));

    // Redrive dry run, then for real: a new array over chunks 0..5, part of the run.
    let out = run(env.batchfan(&failing).args(["redrive", &run_id, "--dry-run", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["chunks"], serde_json::json!([0, 1, 2, 3, 4]));
    let out = run(env.batchfan(&failing).args(["redrive", &run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let redriven = json(&out);
    assert_eq!(redriven["chunks"], serde_json::json!([0, 1, 2, 3, 4]));
    // While the redriven chunks run, neither the report nor its page of the run's first end is
    // left to be read as the run's state.
    let stored = download_prefix(&failing.s3().await, "batch-fail", &format!("out/_batchfan/runs/{run_id}/")).await;
    let report = format!("out/_batchfan/runs/{run_id}/report.json");
    assert!(!stored.contains_key(&report) && !stored.contains_key(&page), "{:?}", stored.keys());
    let arrays = redriven["arrays"].as_array().unwrap();
    assert_eq!(arrays.len(), 2);
    assert_eq!(arrays[1]["indices"], serde_json::json!([0, 1, 2, 3, 4]));
    let view = arrays[1]["manifest"].as_str().unwrap();
    let job = arrays[1]["job_id"].as_str().unwrap();
    let described = batch_client(&failing.endpoint).await.describe_jobs().jobs(job).send().await.unwrap();
    let env_vars = described.jobs()[0].container().map(|c| c.environment().to_vec()).unwrap_or_default();
    assert!(env_vars.iter().any(|kv| kv.name() == Some("BATCHFAN_MANIFEST") && kv.value() == Some(view)));
    assert_eq!(described.jobs()[0].array_properties().and_then(|a| a.size()), Some(5));
    // status counts each chunk once, by its latest attempt.
    let out = run(env.batchfan(&failing).args(["status", &run_id, "--format", "json"]));
    let status = json(&out);
    assert_eq!(status["counts"]["failed"], 5);
    assert_eq!(status["report"]["chunks"].as_array().map(Vec::len), Some(5), "status prints the report's shape");
    assert_eq!(status["arrays"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_runs_and_limit_violations_send_nothing() {
    let moto = moto();
    let env = Env::new(moto);
    batch_queue(moto, "q-limits", false);
    // A dry run makes the read-only checks a real submit makes: the definition must exist.
    register_short(&env, moto, "wc");
    bucket_with_inputs(moto, "batch-limits", 3).await;
    let out = submit(
        &env,
        moto,
        "q-limits",
        "batch-limits",
        &[
            "--dry-run",
            "--name",
            "drytest",
            "--retry-on-spot",
            "--attempts",
            "3",
            "--max-items-per-chunk",
            "1",
            "--share-identifier",
            "teamA",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let plan = json(&out);
    let request = &plan["requests"][0];
    assert_eq!(request["jobName"], "drytest");
    assert_eq!(request["arrayProperties"]["size"], 3);
    assert_eq!(request["retryStrategy"]["evaluateOnExit"][0]["onStatusReason"], "Host EC2*");
    assert_eq!(request["retryStrategy"]["evaluateOnExit"][3]["action"], "EXIT");
    assert_eq!(request["retryStrategy"]["attempts"], 3);
    assert_eq!(request["shareIdentifier"], "teamA");
    assert!(jobs_named(&moto.endpoint, "q-limits", "drytest").await.is_empty());

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--attempts", "11"], "attempts"),
        (vec!["--timeout", "30"], "attemptDurationSeconds"),
        (vec!["--priority", "10000"], "schedulingPriorityOverride"),
        (vec!["--name", "bad name"], "jobName"),
        (vec!["--vcpu", "0.25", "--memory", "4096"], "MEMORY"),
        (vec!["--retry-on-spot"], "--retry-on-spot"),
        (vec!["--depends-on", "a:b:c"], "--depends-on"),
        (vec!["--max-items-per-chunk", "0"], "--max-items-per-chunk"),
        (vec!["--tolerated-failure-percent", "150"], "--tolerated-failure-percent"),
    ];
    for (args, field) in cases {
        let name: &[&str] = if args.contains(&"--name") { &[] } else { &["--name", "limittest"] };
        let out = submit(&env, moto, "q-limits", "batch-limits", &[name, args.as_slice()].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(field), "{args:?}");
    }
    let deps: Vec<String> = (0..21).flat_map(|i| ["--depends-on".to_string(), format!("job{i}")]).collect();
    let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
    let out = submit(&env, moto, "q-limits", "batch-limits", &[deps.as_slice(), &["--name", "limittest"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dependsOn"));
    let big = format!("BIG={}", "x".repeat(9000));
    let out = submit(&env, moto, "q-limits", "batch-limits", &["--env", &big, "--name", "limittest"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("containerOverrides"));
    // Local locations cannot reach containers.
    let out = run(env.batchfan(moto).args([
        "submit",
        "--job-queue",
        "q-limits",
        "--job-definition",
        "wc",
        "--input",
        "/tmp",
        "--output",
        "s3://batch-limits/out/",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read local paths"));

    assert!(jobs_named(&moto.endpoint, "q-limits", "limittest").await.is_empty(), "nothing was submitted");
    assert!(download_prefix(&moto.s3().await, "batch-limits", "out/").await.is_empty(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_a_lost_submit_response_still_make_exactly_one_array() {
    let moto = moto();
    batch_queue(moto, "q-proxy", false);
    let proxy = start_fault_proxy(&moto.endpoint, 3, true);
    let mut env = Env::new(moto);
    env.endpoint = proxy.endpoint.clone();
    register_short(&env, moto, "wc");
    bucket_with_inputs(moto, "batch-proxy", 4).await;
    let out = submit(&env, moto, "q-proxy", "batch-proxy", &["--max-items-per-chunk", "1", "--name", "proxied"]);
    assert_eq!(out.status.code(), Some(0));
    let record = json(&out);
    use std::sync::atomic::Ordering::SeqCst;
    assert!(proxy.stats.throttled.load(SeqCst) >= 1, "some requests were answered 429");
    assert_eq!(proxy.stats.dropped.load(SeqCst), 1, "one SubmitJob response was dropped");
    let jobs = jobs_named(&moto.endpoint, "q-proxy", "proxied").await;
    assert_eq!(jobs.len(), 1, "exactly one array: {jobs:?}");
    assert_eq!(record["arrays"][0]["job_id"].as_str(), Some(jobs[0].as_str()));
    // Batch says succeeded; without Docker nothing committed: exit 1 (done means committed).
    let out = run(env.batchfan(moto).args(["wait", record["run_id"].as_str().unwrap(), "--interval", "0.1"]));
    assert_eq!(out.status.code(), Some(1));
}

// Regression (issue 10, bug 1): jobs AWS Batch does not know (history expired, another region
// or account) made `status` print UNKNOWN, exit 0, and `wait` poll forever. Now an error naming
// the ids and the likely cause.
#[tokio::test(flavor = "multi_thread")]
async fn jobs_batch_does_not_know_are_an_error_naming_them() {
    let moto = moto();
    let env = Env::new(moto);
    create_bucket(&moto.s3().await, "batch-forgotten").await;
    let record = serde_json::json!({
        "batchfan_run": 1, "run_id": "bf-20261128-000000-abcdef",
        "record_uri": "s3://batch-forgotten/out/_batchfan/runs/bf-20261128-000000-abcdef/run.json",
        "manifest": "s3://batch-forgotten/out/_batchfan/runs/bf-20261128-000000-abcdef/manifest.jsonl",
        "output": "s3://batch-forgotten/out/", "chunk_count": 3, "created_unix_ms": 1,
        "arrays": [{"job_id": "00000000-dead-beef-0000-000000000000", "job_name": "gone", "manifest": "m", "size": 3, "first": 0, "redrive": 0}],
        "template": {"jobName": "gone", "jobQueue": "q", "jobDefinition": "d"}
    });
    put(
        moto,
        "batch-forgotten",
        "out/_batchfan/runs/bf-20261128-000000-abcdef/run.json",
        record.to_string().as_bytes(),
    )
    .await;
    for command in ["status", "wait", "redrive"] {
        let out = run(env.batchfan(moto).args([command, "s3://batch-forgotten/out/"]));
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("00000000-dead-beef-0000-000000000000") && stderr.contains("expired"),
            "{command}: {stderr}"
        );
    }
}

// Regression (issue 10, bug 3): a submit AWS Batch rejected (unknown queue, unknown definition, a
// revision that does not exist) had already written its manifest. The queue (exists, ENABLED,
// VALID) and the definition (exists, ACTIVE) are checked first, by dry runs too: exit 2, nothing
// written, nothing sent.
#[tokio::test(flavor = "multi_thread")]
async fn a_submit_to_a_missing_or_disabled_queue_or_definition_writes_nothing() {
    let moto = moto();
    let env = Env::new(moto);
    batch_queue(moto, "q-checks", false);
    batch_queue(moto, "q-off", false);
    register_short(&env, moto, "wc");
    bucket_with_inputs(moto, "batch-checks", 3).await;
    let batch = batch_client(&moto.endpoint).await;
    batch.update_job_queue().job_queue("q-off").state(aws_sdk_batch::types::JqState::Disabled).send().await.unwrap();
    let cases: [(&str, &str, &str); 4] = [
        ("q-missing", "wc", "job queue `q-missing` does not exist"),
        ("q-off", "wc", "job queue `q-off` is DISABLED"),
        ("q-checks", "no-such-def", "job definition `no-such-def` does not exist or is not ACTIVE"),
        ("q-checks", "wc:99", "job definition `wc:99` does not exist or is not ACTIVE"),
    ];
    for (queue, definition, says) in cases {
        for dry in [false, true] {
            let mut cmd = env.batchfan(moto);
            cmd.args(["submit", "--job-queue", queue, "--job-definition", definition]).args([
                "--input",
                "s3://batch-checks/in/",
                "--output",
                "s3://batch-checks/out/",
            ]);
            if dry {
                cmd.arg("--dry-run");
            }
            let out = run(&mut cmd);
            assert_eq!(out.status.code(), Some(2), "{queue} {definition} dry={dry}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(says), "{stderr}");
        }
    }
    assert!(download_prefix(&moto.s3().await, "batch-checks", "out/").await.is_empty(), "nothing written");
    assert!(jobs_named(&moto.endpoint, "q-checks", "").await.is_empty(), "nothing sent");
}

// Regression (issue 10, bug 10): `--depends-on RUN` was sent as a job id. A run id (or its
// record's URI) now resolves to the run's job ids, so runs chain by id.
#[tokio::test(flavor = "multi_thread")]
async fn depends_on_a_run_id_resolves_to_its_job_ids() {
    let moto = moto();
    let env = Env::new(moto);
    batch_queue(moto, "q-chain", false);
    register_short(&env, moto, "wc");
    bucket_with_inputs(moto, "batch-chain", 3).await;
    let first = json(&submit(&env, moto, "q-chain", "batch-chain", &["--max-items-per-chunk", "1"]));
    let (run_id, job_id) = (first["run_id"].as_str().unwrap(), first["arrays"][0]["job_id"].as_str().unwrap());
    for (given, kind) in [(run_id.to_string(), None), (format!("{run_id}:N_TO_N"), Some("N_TO_N"))] {
        let out = run(env
            .batchfan(moto)
            .args(["submit", "--job-queue", "q-chain", "--job-definition", "wc", "--format", "json", "--dry-run"])
            .args(["--max-items-per-chunk", "1"])
            .args(["--input", "s3://batch-chain/in/", "--output", "s3://batch-chain/out2/", "--depends-on", &given]));
        assert_eq!(out.status.code(), Some(0));
        let plan = json(&out);
        let deps = &plan["requests"][0]["dependsOn"];
        assert_eq!(deps[0]["jobId"], job_id, "{plan}");
        assert_eq!(deps[0]["type"].as_str(), kind, "{plan}");
    }
    let out = run(env
        .batchfan(moto)
        .args(["submit", "--job-queue", "q-chain", "--job-definition", "wc", "--dry-run"])
        .args([
            "--input",
            "s3://batch-chain/in/",
            "--output",
            "s3://batch-chain/out3/",
            "--depends-on",
            "bf-20990101-000000-abcdef",
        ]));
    assert_eq!(out.status.code(), Some(2), "an unknown run is bad input");
}

// Regression (issue 10, bug 11): `status` trusted Batch over the outputs. moto without Docker
// reports every child SUCCEEDED without running anything, so no chunk has a marker: status now
// shows the committed chunks beside Batch's counts and flags the disagreement.
#[tokio::test(flavor = "multi_thread")]
async fn status_shows_committed_markers_and_flags_children_that_succeeded_without_them() {
    let moto = moto();
    let env = Env::new(moto);
    batch_queue(moto, "q-markers", false);
    register_short(&env, moto, "wc");
    bucket_with_inputs(moto, "batch-markers", 3).await;
    let sent = json(&submit(&env, moto, "q-markers", "batch-markers", &["--max-items-per-chunk", "1"]));
    let run_id = sent["run_id"].as_str().unwrap();
    // One chunk really committed: its marker exists.
    put(moto, "batch-markers", &format!("out/_batchfan/runs/{run_id}/done/00001.json"), b"{}").await;
    let out = run(env.batchfan(moto).args(["status", run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let status = json(&out);
    assert_eq!(status["counts"]["succeeded"], 3, "{status}");
    assert_eq!(status["committed"], 1, "{status}");
    assert!(
        status["disagreement"]
            .as_str()
            .unwrap()
            .contains("reports 3 children succeeded but only 1 chunk with a completion marker"),
        "{status}"
    );
    let out = run(env.batchfan(moto).args(["status", run_id]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("committed: 1 of 3 chunks") && text.contains("warning: AWS Batch reports 3"), "{text}");
}

// Rough edges (issue 10): `cancel` of a finished run says nothing was running and terminates
// nothing; `cancel --format json` and `submit --wait --format json` name the run.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_of_a_finished_run_says_so_and_json_outputs_name_the_run() {
    let moto = moto();
    let env = Env::new(moto);
    batch_queue(moto, "q-cancel", false);
    register_short(&env, moto, "wc");
    bucket_with_inputs(moto, "batch-cancel", 3).await;
    // moto without Docker: every job is SUCCEEDED at once, and nothing committed (exit 1).
    let out = submit(&env, moto, "q-cancel", "batch-cancel", &["--max-items-per-chunk", "1", "--wait"]);
    assert_eq!(out.status.code(), Some(1));
    let waited = json(&out);
    let run_id = waited["run_id"].as_str().unwrap().to_string();
    assert!(waited["record_uri"].as_str().unwrap().ends_with("run.json"), "{waited}");
    assert!(waited["manifest"].as_str().unwrap().ends_with("manifest.jsonl"), "{waited}");
    let out = run(env.batchfan(moto).args(["cancel", &run_id]));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing was running, nothing cancelled"));
    let out = run(env.batchfan(moto).args(["cancel", &run_id, "--format", "json"]));
    let cancelled = json(&out);
    assert_eq!(
        (cancelled["was_complete"].as_bool(), cancelled["terminated"].as_array().map(Vec::len)),
        (Some(true), Some(0))
    );
}

// `register --cli-input-json` takes what users paste (issue 10): `describe-job-definitions`
// output registers with a note on the read-only fields it ignored; legacy vcpus get a hint.
#[tokio::test(flavor = "multi_thread")]
async fn register_accepts_pasted_describe_output_and_hints_at_legacy_fields() {
    let moto = moto();
    let env = Env::new(moto);
    let tmp = tempfile::tempdir().unwrap();
    let described = tmp.path().join("described.json");
    std::fs::write(
        &described,
        r#"{"jobDefinitions": [{"jobDefinitionName": "pasted", "revision": 3, "status": "ACTIVE",
            "jobDefinitionArn": "arn:aws:batch:us-east-1:123456789012:job-definition/pasted:3", "type": "container",
            "containerProperties": {"image": "batchfan-worker:0.1.0", "volumes": [], "mountPoints": [], "ulimits": [],
              "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}]},
            "platformCapabilities": ["EC2"], "containerOrchestrationType": "ECS"}]}"#,
    )
    .unwrap();
    let out = run(env.batchfan(moto).args(["register", "--cli-input-json"]).arg(&described));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("note: ignored read-only fields"));
    let legacy = tmp.path().join("legacy.json");
    std::fs::write(&legacy, r#"{"jobDefinitionName": "old", "containerProperties": {"image": "i", "memory": 2048}}"#)
        .unwrap();
    let out = run(env.batchfan(moto).args(["register", "--cli-input-json"]).arg(&legacy));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("resourceRequirements"));
}

// Volumes, EFS mounts and ulimits are registered as given (issue 10), and an identical
// definition is still reused.
#[tokio::test(flavor = "multi_thread")]
async fn register_carries_volumes_efs_mounts_and_ulimits() {
    let moto = moto();
    let env = Env::new(moto);
    let tmp = tempfile::tempdir().unwrap();
    let doc = tmp.path().join("volumes.json");
    std::fs::write(
        &doc,
        r#"{"jobDefinitionName": "with-volumes", "type": "container", "platformCapabilities": ["EC2"],
            "containerProperties": {"image": "batchfan-worker:0.1.0",
              "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
              "volumes": [{"name": "scratch", "host": {"sourcePath": "/mnt/scratch"}},
                          {"name": "shared", "efsVolumeConfiguration": {"fileSystemId": "fs-12345678",
                            "rootDirectory": "/data", "transitEncryption": "ENABLED",
                            "authorizationConfig": {"accessPointId": "fsap-1234", "iam": "ENABLED"}}}],
              "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch"},
                              {"sourceVolume": "shared", "containerPath": "/shared", "readOnly": true}],
              "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}]}}"#,
    )
    .unwrap();
    let register = || {
        let out = run(env.batchfan(moto).args(["register", "--format", "json", "--cli-input-json"]).arg(&doc));
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        json(&out)
    };
    let first = register();
    let described = batch_client(&moto.endpoint)
        .await
        .describe_job_definitions()
        .job_definition_name("with-volumes")
        .send()
        .await
        .unwrap();
    let container = described.job_definitions()[0].container_properties().unwrap();
    assert_eq!((container.volumes().len(), container.mount_points().len(), container.ulimits().len()), (2, 2, 1));
    let efs = container.volumes()[1].efs_volume_configuration().unwrap();
    assert_eq!((efs.file_system_id(), efs.root_directory()), (Some("fs-12345678"), Some("/data")));
    let again = register();
    assert_eq!((again["reused"].as_bool(), &again["revision"]), (Some(true), &first["revision"]), "{again}");
}

// Regression (issue 10, bug 3): `--vcpu 3` on a Fargate definition passed `--dry-run` and failed
// for real. A dry run makes the read-only checks a real submit makes: both exit 2.
#[tokio::test(flavor = "multi_thread")]
async fn fargate_resource_overrides_are_checked_by_dry_runs_too() {
    let moto = moto();
    let env = Env::new(moto);
    batch_queue(moto, "q-fargate", false);
    bucket_with_inputs(moto, "batch-fargate", 3).await;
    let out = run(env
        .batchfan(moto)
        .args(["register", "--name", "fg", "--image", "w:1", "--vcpu", "1", "--memory", "2048", "--fargate"])
        .args(["--execution-role", "arn:aws:iam::123456789012:role/exec"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for dry in [true, false] {
        let mut cmd = env.batchfan(moto);
        cmd.args(["submit", "--job-queue", "q-fargate", "--job-definition", "fg", "--vcpu", "3", "--memory", "4096"])
            .args(["--input", "s3://batch-fargate/in/", "--output", "s3://batch-fargate/out/"]);
        if dry {
            cmd.arg("--dry-run");
        }
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(2), "dry run {dry}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("VCPU"), "dry run {dry}");
    }
    assert!(download_prefix(&moto.s3().await, "batch-fargate", "out/").await.is_empty(), "nothing written");
}

// Issue 22, items 7 and 11: one chunk of three not committed. Chunks 0 and 2 are committed by the
// real worker against the run's manifest (as the array's children would on AWS; moto without
// Docker runs no container), chunk 1's child "succeeds" without a marker, as a wrong container
// command does. The report says NOT_COMMITTED for it, `status --exit-status` exits 1, and the
// redrive (dry run and real) takes exactly chunk 1: "redrive everything" fails here.
#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_without_its_marker_is_not_committed_and_redrive_takes_only_it() {
    let moto = moto();
    let env = Env::new(moto);
    batch_queue(moto, "q-partial", false);
    register_short(&env, moto, "wc");
    bucket_with_inputs(moto, "batch-partial", 3).await;
    let out = submit(&env, moto, "q-partial", "batch-partial", &["--max-items-per-chunk", "1"]);
    assert_eq!(out.status.code(), Some(0));
    let record = json(&out);
    let run_id = record["run_id"].as_str().unwrap().to_string();
    let manifest = record["manifest"].as_str().unwrap().to_string();
    let job = record["arrays"][0]["job_id"].as_str().unwrap().to_string();
    for index in [0, 2] {
        let out = run(command("batchfan-worker", Some(moto))
            .arg("wordcount")
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("BATCHFAN_MANIFEST", &manifest)
            .env("AWS_BATCH_JOB_ARRAY_INDEX", index.to_string())
            .env("AWS_BATCH_JOB_ID", format!("{job}:{index}")));
        assert_eq!(out.status.code(), Some(0), "chunk {index} commits");
    }
    let s3 = moto.s3().await;
    let parts_before = download_prefix(&s3, "batch-partial", "out/part-").await;
    assert_eq!(parts_before.len(), 2, "{:?}", parts_before.keys());

    let out = run(env.batchfan(moto).args(["wait", &run_id, "--interval", "0.1"]));
    assert_eq!(out.status.code(), Some(1), "a chunk without its marker is a failure");
    assert_eq!(run(env.batchfan(moto).args(["status", &run_id, "--exit-status"])).status.code(), Some(1));
    let stored = download_prefix(&s3, "batch-partial", &format!("out/_batchfan/runs/{run_id}/")).await;
    let report: serde_json::Value =
        serde_json::from_slice(&stored[&format!("out/_batchfan/runs/{run_id}/report.json")]).unwrap();
    let chunks = report["chunks"].as_array().unwrap();
    let status_of = |i: u64| chunks.iter().find(|c| c["index"] == i).map(|c| c["status"].clone());
    assert_eq!(
        (status_of(0), status_of(1), status_of(2)),
        (Some("SUCCEEDED".into()), Some("NOT_COMMITTED".into()), Some("SUCCEEDED".into())),
        "{report}"
    );
    assert_eq!((report["succeeded"].as_u64(), report["not_committed"].as_u64()), (Some(2), Some(1)), "{report}");
    for c in chunks.iter().filter(|c| c["status"] == "SUCCEEDED") {
        assert_eq!(c["attempts"], 1, "a committed chunk shows its attempt: {c}");
    }

    let out = run(env.batchfan(moto).args(["redrive", &run_id, "--dry-run", "--format", "json"]));
    assert_eq!(json(&out)["chunks"], serde_json::json!([1]));
    let out = run(env.batchfan(moto).args(["redrive", &run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let redriven = json(&out);
    assert_eq!(redriven["chunks"], serde_json::json!([1]));
    let arrays = redriven["arrays"].as_array().unwrap();
    assert_eq!(arrays.last().unwrap()["indices"], serde_json::json!([1]), "{redriven}");
    let described =
        batch_client(&moto.endpoint).await.describe_jobs().jobs(arrays.last().unwrap()["job_id"].as_str().unwrap());
    let described = described.send().await.unwrap();
    // One chunk: a plain job (an array needs at least two children), or an array of one.
    let size = described.jobs()[0].array_properties().and_then(|a| a.size());
    assert!(size.is_none() || size == Some(1), "{size:?}");
    assert_eq!(download_prefix(&s3, "batch-partial", "out/part-").await, parts_before, "the others' outputs untouched");
}

/// The `dependsOn` of job `id` as (jobId, type) pairs, as DescribeJobs returns them.
async fn depends_on_of(endpoint: &str, id: &str) -> Vec<(Option<String>, Option<String>)> {
    let described = batch_client(endpoint).await.describe_jobs().jobs(id).send().await.unwrap();
    described.jobs()[0]
        .depends_on()
        .iter()
        .map(|d| (d.job_id().map(str::to_string), d.r#type().map(|t| t.as_str().to_string())))
        .collect()
}

// Issue 20: `submit --max-concurrency K` is K arrays ("lanes") with dependsOn SEQUENTIAL, the
// chunks dealt round-robin through views, one run for status, wait, cancel and redrive. moto
// without Docker records the requests (it finishes every job at once and ignores dependsOn).
#[tokio::test(flavor = "multi_thread")]
async fn max_concurrency_submits_k_sequential_lanes_over_views_and_redrives_under_the_cap() {
    let moto = moto();
    let env = Env::new(moto);
    batch_queue(moto, "q-lanes", false);
    register_short(&env, moto, "wc");
    bucket_with_inputs(moto, "batch-lanes", 7).await;
    let capped = ["--max-items-per-chunk", "1", "--max-concurrency", "3", "--name", "lanes"];

    // The dry run shows the lanes and sends and writes nothing.
    let out = submit(&env, moto, "q-lanes", "batch-lanes", &[&capped[..], &["--dry-run"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let plan = json(&out);
    let lanes = plan["lanes"].as_array().unwrap();
    assert_eq!(lanes.len(), 3);
    assert_eq!(lanes[0]["lane"], 0);
    assert_eq!(lanes[0]["job_name"], "lanes-lane-0");
    assert_eq!(lanes[0]["chunk_count"], 3);
    assert_eq!(lanes[0]["first_chunks"], serde_json::json!([0, 3, 6]));
    assert_eq!(lanes[2]["first_chunks"], serde_json::json!([2, 5]));
    assert_eq!(lanes[1]["dependency"], "SEQUENTIAL");
    assert_eq!(plan["requests"][1]["dependsOn"], serde_json::json!([{"type": "SEQUENTIAL"}]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lane 0: 3 chunks [0, 3, 6], one after another (dependsOn SEQUENTIAL)"), "{stderr}");
    assert!(jobs_named(&moto.endpoint, "q-lanes", "lanes").await.is_empty(), "the dry run sent nothing");
    assert!(download_prefix(&moto.s3().await, "batch-lanes", "out/").await.is_empty(), "nor wrote anything");

    let out = submit(&env, moto, "q-lanes", "batch-lanes", &capped);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let record = json(&out);
    let run_id = record["run_id"].as_str().unwrap().to_string();
    assert_eq!(record["chunk_count"], 7);
    assert_eq!(record["options"]["max_concurrency"], 3, "the cap is kept in the run record");
    let arrays = record["arrays"].as_array().unwrap().clone();
    assert_eq!(arrays.len(), 3);
    let s3 = moto.s3().await;
    let expected = [vec![0, 3, 6], vec![1, 4], vec![2, 5]];
    for (k, array) in arrays.iter().enumerate() {
        assert_eq!(array["indices"], serde_json::json!(expected[k]), "{array}");
        let job_id = array["job_id"].as_str().unwrap();
        // The real request: an array of the lane's size, dependsOn SEQUENTIAL without a job id,
        // reading its view.
        let described = batch_client(&moto.endpoint).await.describe_jobs().jobs(job_id).send().await.unwrap();
        let job = &described.jobs()[0];
        assert_eq!(job.job_name(), Some(format!("lanes-lane-{k}").as_str()));
        assert_eq!(job.array_properties().and_then(|a| a.size()), Some(expected[k].len() as i32));
        assert_eq!(depends_on_of(&moto.endpoint, job_id).await, vec![(None, Some("SEQUENTIAL".to_string()))]);
        let view_uri = array["manifest"].as_str().unwrap();
        assert!(view_uri.ends_with(&format!("/_batchfan/runs/{run_id}/lane-{k:03}.json")), "{view_uri}");
        let env_vars = job.container().map(|c| c.environment().to_vec()).unwrap_or_default();
        assert!(env_vars.iter().any(|kv| kv.name() == Some("BATCHFAN_MANIFEST") && kv.value() == Some(view_uri)));
        // The view selects the lane's chunks, in order, from the run's manifest.
        let key = view_uri.trim_start_matches("s3://batch-lanes/");
        let body = s3.get_object().bucket("batch-lanes").key(key).send().await.unwrap().body.collect().await;
        let view: serde_json::Value = serde_json::from_slice(&body.unwrap().into_bytes()).unwrap();
        assert_eq!(view["indices"], serde_json::json!(expected[k]));
        assert_eq!(view["base"], record["manifest"]);
    }

    // One run: status counts every lane's children; wait says none committed (moto without
    // Docker runs no container) and names all 7 chunks.
    let out = run(env.batchfan(moto).args(["status", &run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let status = json(&out);
    assert_eq!((status["counts"]["succeeded"].as_u64(), status["complete"].as_bool()), (Some(7), Some(true)));
    assert_eq!(status["arrays"].as_array().map(Vec::len), Some(3));
    let out = run(env.batchfan(moto).args(["wait", &run_id, "--interval", "0.1", "--format", "json"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["not_committed"], serde_json::json!([0, 1, 2, 3, 4, 5, 6]));
    // cancel: the run has finished, nothing to stop.
    let out = run(env.batchfan(moto).args(["cancel", &run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["was_complete"], true);

    // Redrive under the same cap: the 7 chunks dealt again over min(3, 7) sequential lanes.
    let out = run(env.batchfan(moto).args(["redrive", &run_id, "--dry-run", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let dry = json(&out);
    assert_eq!(dry["requests"].as_array().map(Vec::len), Some(3), "{dry}");
    assert_eq!(dry["requests"][0]["dependsOn"], serde_json::json!([{"type": "SEQUENTIAL"}]));
    let out = run(env.batchfan(moto).args(["redrive", &run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let redriven = json(&out);
    let arrays = redriven["arrays"].as_array().unwrap();
    assert_eq!(arrays.len(), 6);
    for (k, array) in arrays[3..].iter().enumerate() {
        assert_eq!(array["redrive"], 1);
        assert_eq!(array["indices"], serde_json::json!(expected[k]));
        assert_eq!(array["job_name"], format!("lanes-r1-lane-{k}"));
        let job_id = array["job_id"].as_str().unwrap();
        assert_eq!(depends_on_of(&moto.endpoint, job_id).await, vec![(None, Some("SEQUENTIAL".to_string()))]);
    }
    let out = run(env.batchfan(moto).args(["status", &run_id, "--format", "json"]));
    assert_eq!(json(&out)["arrays"].as_array().map(Vec::len), Some(6));
    let out = run(env.batchfan(moto).args(["status", &run_id]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("lane 2 ") && text.contains("r1 lane 0 "), "status names the lanes: {text}");
}

// A redrive of fewer chunks than the cap makes one lane per chunk (plain jobs, no SEQUENTIAL),
// and a failed capped run reports its failures per chunk through the lanes' indices.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_capped_run_redrives_its_chunks_over_at_most_k_lanes() {
    let failing = start_moto(&[("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")]);
    let env = Env::new(&failing);
    batch_queue(&failing, "q-lanes-fail", false);
    register_short(&env, &failing, "wc");
    bucket_with_inputs(&failing, "batch-lanes-fail", 5).await;
    let out = submit(
        &env,
        &failing,
        "q-lanes-fail",
        "batch-lanes-fail",
        &["--max-items-per-chunk", "1", "--max-concurrency", "2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let run_id = json(&out)["run_id"].as_str().unwrap().to_string();
    let out = run(env.batchfan(&failing).args(["wait", &run_id, "--interval", "0.1", "--format", "json"]));
    assert_eq!(out.status.code(), Some(1));
    let waited = json(&out);
    let failed: Vec<u64> = waited["failed"].as_array().unwrap().iter().map(|f| f["index"].as_u64().unwrap()).collect();
    assert_eq!(failed, vec![0, 1, 2, 3, 4], "each lane's children mapped to their chunks: {waited}");
    let out = run(env.batchfan(&failing).args(["redrive", &run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let arrays = json(&out)["arrays"].as_array().unwrap().clone();
    let redrive: Vec<_> = arrays.iter().filter(|a| a["redrive"] == 1).collect();
    assert_eq!(redrive.len(), 2, "5 chunks over the cap of 2: two lanes");
    assert_eq!(redrive[0]["indices"], serde_json::json!([0, 2, 4]));
    assert_eq!(redrive[1]["indices"], serde_json::json!([1, 3]));
}

// Bad input: K = 0, K with --sequential, and K lanes of 10,000 too few for the chunks are
// refused with exit 2 naming the fix; nothing written, nothing submitted.
#[tokio::test(flavor = "multi_thread")]
async fn bad_max_concurrency_is_refused_before_anything_is_written_or_sent() {
    let moto = moto();
    let env = Env::new(moto);
    batch_queue(moto, "q-lanes-bad", false);
    register_short(&env, moto, "wc");
    create_bucket(&moto.s3().await, "batch-lanes-bad").await;
    put(moto, "batch-lanes-bad", "in/records.txt", &b"x\n".repeat(10_001)).await;
    let cases: [(&[&str], &str); 5] = [
        (&["--max-concurrency", "0"], "1 or more"),
        (&["--max-concurrency", "2", "--depends-on", "0a1b2c3d:N_TO_N"], "cannot pair child by child"),
        (&["--max-concurrency", "2", "--sequential"], "--sequential"),
        (&["--max-concurrency", "2", "--depends-on", "SEQUENTIAL"], "already depends SEQUENTIAL"),
        (
            &["--max-concurrency", "1", "--split-bytes", "2", "--max-items-per-chunk", "1"],
            "--max-concurrency 2 or more",
        ),
    ];
    for (args, fix) in cases {
        let out = submit(&env, moto, "q-lanes-bad", "batch-lanes-bad", &[args, &["--name", "badlanes"]].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--max-concurrency") || stderr.contains("--depends-on"), "{args:?}: {stderr}");
        assert!(stderr.contains(fix), "{args:?}: {stderr}");
    }
    assert!(jobs_named(&moto.endpoint, "q-lanes-bad", "badlanes").await.is_empty(), "nothing was submitted");
    assert!(download_prefix(&moto.s3().await, "batch-lanes-bad", "out/").await.is_empty(), "nothing was written");
}
