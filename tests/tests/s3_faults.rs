//! S3 faults survived: a proxy in front of moto answers S3 requests with 500 / 503 SlowDown and
//! cuts GetObject bodies mid-way; with `--attempts 1` the run still commits exactly the output of
//! a clean run. When every input GET fails, children exit 75 naming the endpoint.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use batchfan_tests::proxy::{S3Faults, start_s3_fault_proxy};
use batchfan_tests::{Moto, command, create_bucket, dataset_in_bucket, download_prefix, moto, run};

/// Runs wordcount from `s3://bucket/in/` to `s3://bucket/<out>/` through `endpoint`; returns the
/// exit code, the JSON summary and the part bodies by key.
async fn wordcount(
    moto: &Moto,
    endpoint: &str,
    bucket: &str,
    out: &str,
    env: &[(&str, &str)],
) -> (Option<i32>, serde_json::Value, BTreeMap<String, Vec<u8>>) {
    let worker = batchfan_tests::bin("batchfan-worker");
    let output = format!("s3://{bucket}/{out}/");
    let result = run(command("batchfan", Some(moto))
        .env("AWS_ENDPOINT_URL", endpoint)
        // Small parts: every input is several ranged GETs, each a chance for a fault.
        .env("BATCHFAN_READ_PART_SIZE", "700")
        .env("BATCHFAN_READ_CONCURRENCY", "3")
        .envs(env.iter().copied())
        .args(["run", "--local", "--attempts", "1", "--children", "6", "--split-bytes", "3KiB", "--parallel", "3"])
        .args(["--format", "json", "--input", &format!("s3://{bucket}/in/"), "--output", &output, "--"])
        .arg(&worker)
        .arg("wordcount"));
    let summary = serde_json::from_slice(&result.stdout).unwrap_or_default();
    let s3 = moto.s3().await;
    let parts = download_prefix(&s3, bucket, &format!("{out}/"))
        .await
        .into_iter()
        .filter(|(k, _)| k.contains("/part-"))
        .map(|(k, v)| (k.rsplit('/').next().unwrap_or_default().to_string(), v))
        .collect();
    (result.status.code(), summary, parts)
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_percent_s3_errors_and_cut_bodies_leave_the_output_of_a_clean_run() {
    let moto = moto();
    let s3 = moto.s3().await;
    let _data = dataset_in_bucket(&s3, "faults", "in/", 41).await;
    let (code, _, clean) = wordcount(moto, &moto.endpoint, "faults", "clean", &[]).await;
    assert_eq!(code, Some(0));
    assert!(clean.len() >= 3, "{clean:?}");

    let errors = start_s3_fault_proxy(&moto.endpoint, S3Faults { error_percent: 10, seed: 7, ..Default::default() });
    let (code, summary, faulty) = wordcount(moto, &errors.endpoint, "faults", "errors", &[]).await;
    assert_eq!(code, Some(0), "{summary}");
    assert!(errors.stats.errors.load(Ordering::SeqCst) >= 3, "too few faults injected to mean anything");
    assert_eq!(faulty, clean, "500/503 answers changed the output");

    let cuts = start_s3_fault_proxy(&moto.endpoint, S3Faults { cut_percent: 10, seed: 9, ..Default::default() });
    let (code, summary, cut) = wordcount(moto, &cuts.endpoint, "faults", "cuts", &[]).await;
    assert_eq!(code, Some(0), "{summary}");
    assert!(cuts.stats.cuts.load(Ordering::SeqCst) >= 3, "too few bodies cut to mean anything");
    assert_eq!(cut, clean, "bodies cut mid-way changed the output");
}

#[tokio::test(flavor = "multi_thread")]
async fn when_every_input_get_fails_the_children_exit_75_naming_the_endpoint() {
    let moto = moto();
    let s3 = moto.s3().await;
    let _data = dataset_in_bucket(&s3, "down", "in/", 42).await;
    create_bucket(&s3, "down-out").await;
    let proxy = start_s3_fault_proxy(
        &moto.endpoint,
        S3Faults { error_percent: 100, data_gets_only: true, seed: 3, ..Default::default() },
    );
    let (code, summary, parts) = wordcount(moto, &proxy.endpoint, "down", "out", &[("AWS_MAX_ATTEMPTS", "2")]).await;
    assert_eq!(code, Some(1), "{summary}");
    assert!(parts.is_empty(), "nothing may be committed: {parts:?}");
    let failures = summary["failed"].as_array().cloned().unwrap_or_default();
    assert!(!failures.is_empty(), "{summary}");
    assert!(failures.iter().all(|f| f["exit_code"] == 75), "{summary}");
    let log_dir = summary["log_dir"].as_str().unwrap();
    let logs: String = batchfan_tests::files(std::path::Path::new(log_dir))
        .into_iter()
        .map(|(_, p)| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(logs.contains(&format!("(endpoint {})", proxy.endpoint)), "{logs}");
    assert!(logs.contains("SlowDown") || logs.contains("InternalError"), "{logs}");
}
