//! The worker image end to end: built FROM scratch by worker-image/build.sh, run by moto's AWS
//! Batch in Docker mode as the children of one array job, counting words of S3 inputs into S3.

use std::process::Command;

use batchfan_tests::{
    Moto, batch_queue, command, dataset_in_bucket, download_prefix, merge_counts, part_bodies, reference_wordcount,
    run, start_moto,
};

const TAG: &str = "batchfan-worker:integration";

/// Builds the image once per test binary.
fn image() {
    static BUILT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *BUILT.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
        let script = root.join("worker-image/build.sh");
        run(Command::new("bash").arg(script).args(["--debug", "--no-build", "--tag", TAG])).status.success()
    });
    assert!(ok, "the image builds (a Docker engine is required)");
}

fn batchfan(moto: &Moto, home: &std::path::Path) -> Command {
    let mut cmd = command("batchfan", Some(moto));
    cmd.env("BATCHFAN_HOME", home).env("BATCHFAN_BATCH_RPS", "1000");
    cmd
}

/// A moto server whose Batch runs containers (host networking lets them reach moto on
/// 127.0.0.1), a queue, and the wordcount job definition on the image.
fn docker_batch(home: &std::path::Path) -> Moto {
    image();
    let moto = start_moto(&[("MOTO_DOCKER_NETWORK_MODE", "host")]);
    batch_queue(&moto, "q-docker", true);
    let jobdef = serde_json::json!({
        "jobDefinitionName": "wordcount-image",
        "type": "container",
        "platformCapabilities": ["EC2"],
        "containerProperties": {
            "image": TAG,
            "command": ["wordcount"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
            "environment": [
                {"name": "AWS_ENDPOINT_URL", "value": moto.endpoint},
                {"name": "AWS_ACCESS_KEY_ID", "value": "testing"},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": "testing"},
                {"name": "AWS_REGION", "value": "us-east-1"},
                {"name": "AWS_EC2_METADATA_DISABLED", "value": "true"},
                {"name": "BATCHFAN_LOG_FORMAT", "value": "json"}
            ]
        },
        "timeout": {"attemptDurationSeconds": 300}
    });
    let file = home.join("jobdef.json");
    std::fs::write(&file, jobdef.to_string()).unwrap();
    // The moto credentials in the environment are test values: allowed past the lint.
    let out =
        run(batchfan(&moto, home).args(["register", "--allow", "plaintext-secret", "--cli-input-json"]).arg(&file));
    assert_eq!(out.status.code(), Some(0));
    moto
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_image_runs_a_wordcount_array_on_moto_batch_in_docker_mode() {
    let home = tempfile::tempdir().unwrap();
    let moto = docker_batch(home.path());
    let batchfan = || batchfan(&moto, home.path());
    let s3 = moto.s3().await;
    let data = dataset_in_bucket(&s3, "image-data", "in/", 21).await;
    let out = run(batchfan().args([
        "submit",
        "--allow",
        "plaintext-secret",
        "--job-queue",
        "q-docker",
        "--job-definition",
        "wordcount-image",
        "--input",
        "s3://image-data/in/",
        "--output",
        "s3://image-data/out/",
        "--children",
        "3",
        "--split-bytes",
        "4KiB",
        "--wait",
        "--interval",
        "0.5",
    ]));
    assert_eq!(out.status.code(), Some(0), "every child container succeeded");
    let objects = download_prefix(&s3, "image-data", "out/").await;
    let parts = part_bodies(&objects, "out/");
    assert!(parts.len() >= 2, "several children: {:?}", objects.keys());
    assert_eq!(objects.keys().filter(|k| k.contains("/done/")).count(), parts.len());
    assert_eq!(merge_counts(parts), reference_wordcount(data.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_child_whose_input_changed_fails_with_exit_3_and_redrive_reruns_only_its_chunk() {
    let home = tempfile::tempdir().unwrap();
    let moto = docker_batch(home.path());
    let batchfan = || batchfan(&moto, home.path());
    let s3 = moto.s3().await;
    let data = dataset_in_bucket(&s3, "image-redrive", "in/", 22).await;
    // Jobs move one status every 2 s until the input is edited, so no container reads it first.
    let slow = r#"{"model_name": "batch::job", "transition": {"progression": "time", "seconds": 2}}"#;
    moto.moto_api("/moto-api/state-manager/set-transition", slow);
    let out = run(batchfan().args([
        "submit",
        "--allow",
        "plaintext-secret",
        "--job-queue",
        "q-docker",
        "--job-definition",
        "wordcount-image",
        "--input",
        "s3://image-redrive/in/",
        "--output",
        "s3://image-redrive/out/",
        "--max-items-per-chunk",
        "4",
        "--format",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = record["run_id"].as_str().unwrap().to_string();
    // Change one input before the containers start (moto takes over a second to start them).
    let original = std::fs::read(data.path().join("f01.txt")).unwrap();
    let put = |body: Vec<u8>| {
        s3.put_object()
            .bucket("image-redrive")
            .key("in/f01.txt")
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
    };
    put(b"edited after planning\n".to_vec()).await.unwrap();
    moto.moto_api("/moto-api/state-manager/unset-transition", r#"{"model_name": "batch::job"}"#);

    // Which chunk holds f01.txt: from the manifest, as a child would read it.
    let manifest = moto.client().open_manifest(record["manifest"].as_str().unwrap()).await.unwrap();
    let mut expected = None;
    for i in 0..manifest.header().chunk_count {
        if manifest.chunk(i).await.unwrap().iter().any(|item| item.key == "f01.txt") {
            expected = Some(i);
        }
    }
    let expected = expected.expect("f01.txt is planned");

    let out = run(batchfan().args(["wait", &run_id, "--interval", "0.5", "--format", "json"]));
    assert_eq!(out.status.code(), Some(1), "one child failed");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed = status["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["index"], expected);
    assert_eq!(failed[0]["exit_code"], 3, "exit 3: input changed since planning");

    // Same bytes, same ETag: the redrive of exactly that chunk succeeds, and the run is whole.
    put(original).await.unwrap();
    let out = run(batchfan().args(["redrive", &run_id, "--format", "json"]));
    assert_eq!(out.status.code(), Some(0));
    let redrive: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(redrive["chunks"], serde_json::json!([expected]));
    let out = run(batchfan().args(["wait", &run_id, "--interval", "0.5"]));
    assert_eq!(out.status.code(), Some(0), "after the redrive every chunk succeeded");
    let objects = download_prefix(&s3, "image-redrive", "out/").await;
    let parts = part_bodies(&objects, "out/");
    assert_eq!(parts.len() as u64, manifest.header().chunk_count);
    assert_eq!(merge_counts(parts), reference_wordcount(data.path()));
}

// Issue 6: a pipeline that builds its own SdkConfig (explicit region, endpoint, static
// credentials; no AWS_* variables) registers, submits to AWS Batch, waits and reads the outputs.
#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_pipeline_example_registers_submits_waits_and_reads_the_outputs() {
    let home = tempfile::tempdir().unwrap();
    let moto = docker_batch(home.path());
    let s3 = moto.s3().await;
    let data = dataset_in_bucket(&s3, "image-sdk", "in/", 23).await;
    // Twice in a row on one output: the first run's wait finished it (report written, output
    // released), so the second (overwrite) is not refused (issue 15).
    for round in 0..2 {
        let mut cmd = command("sdk_pipeline", None);
        cmd.env_remove("AWS_ENDPOINT_URL")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PIPELINE_ACCESS_KEY_ID", "testing")
            .env("PIPELINE_SECRET_ACCESS_KEY", "testing")
            .args(["--region", "us-east-1", "--endpoint", &moto.endpoint, "--job-queue", "q-docker"])
            .arg("--job-definition")
            .arg(home.path().join("jobdef.json"))
            .args(["--input", "s3://image-sdk/in/", "--output", "s3://image-sdk/out/", "--children", "3"]);
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(0), "round {round}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("job definition wordcount-image:") && stderr.contains("3 chunk outputs read"),
            "{stderr}"
        );
        // stdout is the concatenation of the chunk outputs: together, the reference count.
        assert_eq!(merge_counts([out.stdout.as_slice()]), reference_wordcount(data.path()), "round {round}");
    }
}
