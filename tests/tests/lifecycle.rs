//! The run as one thing the library owns (issue 15): a pipeline that only calls the library
//! submits, waits and submits again on one output, for AWS Batch and for a queue; runs are found
//! by their output wherever their manifest is, by relative paths too; what a run committed is
//! listed and gathered in one pipe. AWS Batch on moto without Docker (children "succeed"
//! without running), SQS on moto, real worker processes.

use std::path::Path;
use std::process::Command;

use batchfan::{
    Client, EnqueueOptions, LocalOptions, Location, PlanOptions, RunKind, RunSpec, SubmitOptions, WaitOptions,
};
use batchfan_tests::{
    Moto, batch_queue, bin, command, create_bucket, dataset_in_bucket, merge_counts, moto, reference_wordcount, run,
    write_dataset,
};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn batchfan(moto: Option<&Moto>, home: &Path) -> Command {
    let mut cmd = command("batchfan", moto);
    cmd.env("BATCHFAN_HOME", home).env("BATCHFAN_BATCH_RPS", "1000");
    cmd
}

fn spec(bucket: &str, overwrite: bool) -> RunSpec {
    RunSpec {
        input: Location::parse(&format!("s3://{bucket}/in/")).unwrap(),
        options: PlanOptions { max_items_per_chunk: Some(5), ..Default::default() },
        output: Location::parse(&format!("s3://{bucket}/out/")).unwrap(),
        manifest: None,
        overwrite,
    }
}

fn quick() -> WaitOptions {
    let mut wait = WaitOptions::default();
    wait.interval = std::time::Duration::from_millis(100);
    wait
}

// Issue 15: `client.submit` left the output claimed until the CLI's `wait`; a pipeline calling
// `submit` then `wait` then `submit` (overwrite) on one output was refused with OutputClaimed.
#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_submits_waits_and_submits_again_on_one_output() {
    let moto = moto();
    let s3 = moto.s3().await;
    let _data = dataset_in_bucket(&s3, "life-batch", "in/", 3).await;
    batch_queue(moto, "q-life", false);
    let home = tempfile::tempdir().unwrap();
    let registered = run(batchfan(Some(moto), home.path()).args([
        "register",
        "--name",
        "life",
        "--image",
        "batchfan-worker:0.1.0",
        "--vcpu",
        "1",
        "--memory",
        "2048",
    ]));
    assert_eq!(registered.status.code(), Some(0));
    let client = moto.client();
    let options = SubmitOptions { job_queue: "q-life".into(), job_definition: "life".into(), ..Default::default() };
    let first = client.submit(&spec("life-batch", false), &options).await.unwrap();
    assert_eq!(first.kind(), RunKind::Batch);
    let status = first.wait(&quick()).await.unwrap();
    // moto without Docker runs no container: every child "succeeded" and none committed.
    assert!(status.complete && status.committed == 0, "{status:?}");
    assert_eq!(status.not_committed.len() as u64, status.chunk_count);
    assert!(!status.succeeded(&quick()), "done means committed");
    let report = first.report().await.unwrap();
    assert_eq!(report.not_committed, status.chunk_count);
    // Seen finished: its output is free, and the report is where it should be.
    let second = client.submit(&spec("life-batch", true), &options).await.unwrap();
    assert_eq!(second.replaced(), None, "the first run released the output when wait saw it finished");
    let found = client.find_run(first.id()).await;
    assert!(found.is_err(), "a client without run notes finds runs by URI, not by id");
    let again = client.find_run(&first.record().record_uri).await.unwrap();
    assert_eq!(again.id(), first.id());
    // The second run is never waited for: a third start takes the output over from it, since
    // Batch says it finished, and says so.
    let third = client.submit(&spec("life-batch", true), &options).await.unwrap();
    assert_eq!(third.replaced(), Some(second.id()));
    let reopened = client.find_run(&second.record().record_uri).await.unwrap();
    assert!(reopened.report().await.is_ok());
    // And the redrive of a run whose children ended without committing runs every chunk again.
    let mut redriven = client.find_run(&third.record().record_uri).await.unwrap();
    third.wait(&quick()).await.unwrap();
    let out = redriven.redrive(false).await.unwrap();
    assert_eq!(out.chunks, (0..third.record().chunk_count).collect::<Vec<_>>());
    assert_eq!(out.requests.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_enqueues_waits_and_enqueues_again_on_one_output() {
    let moto = moto();
    let s3 = moto.s3().await;
    let data = dataset_in_bucket(&s3, "life-queue", "in/", 4).await;
    let (queue, _) = moto.queue("life-queue", 5, None).await;
    let client = moto.client();
    for round in 0..2 {
        let run = client.enqueue(&spec("life-queue", round > 0), &EnqueueOptions::new(queue.clone())).await.unwrap();
        assert_eq!(run.send_stats().map(|s| s.sent), Some(run.record().chunk_count));
        let tmp = tempfile::tempdir().unwrap();
        let mut worker = command("batchfan-worker", Some(moto))
            .arg("wordcount")
            .env("BATCHFAN_QUEUE_URL", &queue)
            .env("BATCHFAN_QUEUE_IDLE_EXIT", "2")
            .env("BATCHFAN_SPOOL_DIR", tmp.path())
            .spawn()
            .unwrap();
        let status = run.wait(&quick()).await.unwrap();
        assert!(status.succeeded(&quick()), "round {round}: {status:?}");
        assert_eq!(worker.wait().unwrap().code(), Some(0));
        let mut gathered = Vec::new();
        for output in run.outputs().await.unwrap() {
            use futures_util::TryStreamExt;
            let body: Vec<bytes::Bytes> = run.open_output(&output).await.unwrap().try_collect().await.unwrap();
            gathered.push(body.concat());
        }
        assert_eq!(merge_counts(gathered.iter().map(Vec::as_slice)), reference_wordcount(data.path()), "round {round}");
    }
}

// Issue 15: a run submitted with `--manifest` elsewhere could not be found by its output.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_with_its_manifest_elsewhere_is_found_by_its_output() {
    let moto = moto();
    let s3 = moto.s3().await;
    let _data = dataset_in_bucket(&s3, "life-elsewhere", "in/", 5).await;
    create_bucket(&s3, "life-manifests").await;
    batch_queue(moto, "q-elsewhere", false);
    let home = tempfile::tempdir().unwrap();
    let b = || batchfan(Some(moto), home.path());
    assert_eq!(
        run(b().args(["register", "--name", "elsewhere", "--image", "i:1", "--vcpu", "1", "--memory", "512"]))
            .status
            .code(),
        Some(0)
    );
    let out =
        run(b().args(["submit", "--job-queue", "q-elsewhere", "--job-definition", "elsewhere", "--format"]).args([
            "json",
            "--input",
            "s3://life-elsewhere/in/",
            "--output",
            "s3://life-elsewhere/out/",
            "--manifest",
            "s3://life-manifests/daily/m.jsonl",
        ]));
    assert_eq!(out.status.code(), Some(0));
    let record = json(&out);
    assert!(record["record_uri"].as_str().unwrap().starts_with("s3://life-elsewhere/out/_batchfan/runs/"), "{record}");
    // From a machine without the run notes: by the output, and by the manifest.
    for by in ["s3://life-elsewhere/out/", "s3://life-manifests/daily/m.jsonl"] {
        let out = run(batchfan(Some(moto), Path::new("/nonexistent")).args(["status", by, "--format", "json"]));
        assert_eq!(out.status.code(), Some(0), "{by}");
        assert_eq!(json(&out)["run_id"], record["run_id"], "{by}");
    }
}

// Issue 15: `batchfan status out/flaky` was refused as a bad run id (a relative path with `/`).
#[test]
fn a_local_run_is_found_by_a_relative_output_path() {
    let tmp = tempfile::tempdir().unwrap();
    write_dataset(&tmp.path().join("in"), 4);
    let home = tmp.path().join("home");
    let out = run(batchfan(None, &home).current_dir(tmp.path()).args([
        "run",
        "--local",
        "--format",
        "json",
        "--input",
        "in",
        "--output",
        "out/flaky",
        "--",
        &bin("batchfan-worker").display().to_string(),
        "wordcount",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let run_id = json(&out)["run_id"].as_str().unwrap().to_string();
    for by in ["out/flaky", "out/flaky/", "./out/flaky"] {
        let status = run(batchfan(None, &home).current_dir(tmp.path()).args(["status", by, "--format", "json"]));
        assert_eq!(status.status.code(), Some(0), "{by}");
        assert_eq!(json(&status)["run_id"], run_id.as_str(), "{by}");
    }
}

// Issue 15: reading results was left to the caller; `batchfan cat RUN | ...` gathers a run.
#[test]
fn outputs_lists_and_cat_gathers_what_a_run_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_dataset(&input, 11);
    let home = tmp.path().join("home");
    for compression in ["", "gzip"] {
        let output = tmp.path().join(format!("out-{compression}"));
        let out = run(batchfan(None, &home)
            .env("BATCHFAN_OUTPUT_COMPRESSION", compression)
            .args(["run", "--local", "--children", "5", "--format", "json", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .args(["--", &bin("batchfan-worker").display().to_string(), "wordcount"]));
        assert_eq!(out.status.code(), Some(0));
        let run_id = json(&out)["run_id"].as_str().unwrap().to_string();
        let listed = run(batchfan(None, &home).args(["outputs", &run_id, "--format", "json"]));
        let listed = json(&listed);
        let keys: Vec<&str> = listed.as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap()).collect();
        let ext = if compression.is_empty() { "" } else { ".gz" };
        let expected: Vec<String> = (0..5).map(|i| format!("part-{i:05}{ext}")).collect();
        assert_eq!(keys, expected, "in chunk order, with the compression suffix");
        // `batchfan cat RUN --decompress | ...`: one pipe gathers the run.
        let cat = run(batchfan(None, &home).args(["cat", &run_id, "--decompress"]));
        assert_eq!(cat.status.code(), Some(0));
        assert_eq!(merge_counts([cat.stdout.as_slice()]), reference_wordcount(&input), "{compression}");
        if !compression.is_empty() {
            let raw = run(batchfan(None, &home).args(["cat", &run_id]));
            assert!(raw.stdout.starts_with(&[0x1f, 0x8b]), "without --decompress, bytes as stored");
        }
    }
    // exec's mirrored outputs are what the run committed too.
    let output = tmp.path().join("mirrored");
    let out = run(batchfan(None, &home)
        .args(["run", "--local", "--max-items-per-chunk", "3", "--format", "json", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--", &bin("batchfan-worker").display().to_string(), "exec", "--stdin", "--suffix", ".up"])
        .args(["--", "tr", "a-z", "A-Z"]));
    assert_eq!(out.status.code(), Some(0));
    let run_id = json(&out)["run_id"].as_str().unwrap().to_string();
    let listed = json(&run(batchfan(None, &home).args(["outputs", &run_id, "--format", "json"])));
    let keys: Vec<&str> = listed.as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap()).collect();
    assert!(keys.contains(&"big.txt.up") && keys.contains(&"sub/f00.txt.up"), "{keys:?}");
    assert!(!keys.iter().any(|k| k.starts_with("part-")), "{keys:?}");
}

// Issue 15: the library runs a local run end to end and gives its outputs back.
#[tokio::test(flavor = "multi_thread")]
async fn a_local_run_through_the_library_reads_back_its_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_dataset(&input, 12);
    let client = Client::builder(&aws_config::SdkConfig::builder().build()).runs_dir(tmp.path().join("runs")).build();
    let spec = RunSpec {
        input: Location::parse(&input.display().to_string()).unwrap(),
        options: PlanOptions { children: Some(3), ..Default::default() },
        output: Location::parse(&tmp.path().join("out").display().to_string()).unwrap(),
        manifest: None,
        overwrite: false,
    };
    let options = LocalOptions::new(bin("batchfan-worker"), vec!["wordcount".into()]);
    let local = client.run_local(&spec, &options, &|_| {}, std::future::pending()).await.unwrap();
    assert!(local.summary.failed.is_empty());
    let status = local.run.status().await.unwrap();
    assert!(status.complete && status.succeeded(&WaitOptions::default()), "{status:?}");
    let found = client.find_run(local.run.id()).await.unwrap();
    assert_eq!(found.outputs().await.unwrap().len(), 3);
}
