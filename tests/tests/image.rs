//! The worker image end to end: built FROM scratch by worker-image/build.sh, run by moto's AWS
//! Batch in Docker mode as the children of one array job, counting words of S3 inputs into S3.

use std::process::Command;

use batchfan_tests::{
    batch_queue, command, create_bucket, download_prefix, merge_counts, reference_wordcount, run, start_moto,
    upload_dir, write_dataset,
};

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_image_runs_a_wordcount_array_on_moto_batch_in_docker_mode() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let tag = "batchfan-worker:integration";
    let built =
        run(Command::new("bash").arg(root.join("worker-image/build.sh")).args(["--debug", "--no-build", "--tag", tag]));
    assert!(built.status.success(), "the image builds (a Docker engine is required)");

    // Host networking lets the containers reach moto on 127.0.0.1.
    let moto = start_moto(&[("MOTO_DOCKER_NETWORK_MODE", "host")]);
    batch_queue(&moto, "q-docker", true);
    let home = tempfile::tempdir().unwrap();
    let batchfan = || {
        let mut cmd = command("batchfan", Some(&moto));
        cmd.env("BATCHFAN_HOME", home.path()).env("BATCHFAN_BATCH_RPS", "1000");
        cmd
    };
    let jobdef = serde_json::json!({
        "jobDefinitionName": "wordcount-image",
        "type": "container",
        "platformCapabilities": ["EC2"],
        "containerProperties": {
            "image": tag,
            "command": ["wordcount"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
            "environment": [
                {"name": "AWS_ENDPOINT_URL", "value": moto.endpoint},
                {"name": "AWS_ACCESS_KEY_ID", "value": "testing"},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": "testing"},
                {"name": "AWS_REGION", "value": "us-east-1"},
                {"name": "AWS_EC2_METADATA_DISABLED", "value": "true"},
                {"name": "BATCHFAN_LOG_FORMAT", "value": "json"}
            ],
            "readonlyRootFilesystem": false
        },
        "timeout": {"attemptDurationSeconds": 300}
    });
    let file = home.path().join("jobdef.json");
    std::fs::write(&file, jobdef.to_string()).unwrap();
    let out = run(batchfan().args(["register", "--cli-input-json"]).arg(&file));
    assert_eq!(out.status.code(), Some(0));

    let data = tempfile::tempdir().unwrap();
    write_dataset(data.path(), 21);
    let s3 = moto.s3().await;
    create_bucket(&s3, "image-data").await;
    upload_dir(&s3, "image-data", "in/", data.path()).await;
    let out = run(batchfan().args([
        "submit",
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
    let parts: Vec<&[u8]> =
        objects.iter().filter(|(k, _)| k.starts_with("out/part-")).map(|(_, v)| v.as_slice()).collect();
    assert!(parts.len() >= 2, "several children: {:?}", objects.keys());
    assert_eq!(merge_counts(parts), reference_wordcount(data.path()));
    assert_eq!(
        objects.keys().filter(|k| k.contains("/done/")).count(),
        objects.keys().filter(|k| k.starts_with("out/part-")).count()
    );
}
