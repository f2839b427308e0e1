//! The fan-out spine over S3 served by moto: real aws-sdk clients over HTTP, no mocks.

use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;

use batchfan_tests::{
    Moto, command, create_bucket, dataset_in_bucket, download_prefix, merge_counts, moto, part_bodies,
    reference_wordcount, run,
};

fn batchfan(moto: &Moto) -> Command {
    command("batchfan", Some(moto))
}

fn plan_json(moto: &Moto, input: &str, extra: &[&str]) -> serde_json::Value {
    let out = run(batchfan(moto).args(["plan", "--format", "json", "--input", input]).args(extra));
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn planning_an_s3_prefix_and_a_local_folder_with_the_same_files_gives_the_same_chunks() {
    let moto = moto();
    let s3 = moto.s3().await;
    let tmp = dataset_in_bucket(&s3, "plan-same", "data/in/", 11).await;
    for options in [
        vec!["--max-items-per-chunk", "3"],
        vec!["--children", "4", "--split-bytes", "3KiB"],
        vec!["--max-bytes-per-chunk", "2KiB", "--split-bytes", "1KiB", "--exclude", "sub/*"],
    ] {
        let local = plan_json(moto, &tmp.path().display().to_string(), &options);
        let remote = plan_json(moto, "s3://plan-same/data/in", &options);
        assert_eq!(local["chunks"], remote["chunks"], "{options:?}");
        assert_eq!(local["items"], remote["items"]);
        assert_eq!(local["bytes"], remote["bytes"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wordcount_over_s3_equals_the_reference() {
    let moto = moto();
    let s3 = moto.s3().await;
    let tmp = dataset_in_bucket(&s3, "wc-in", "corpus/", 12).await;
    create_bucket(&s3, "wc-out").await;
    let worker = batchfan_tests::bin("batchfan-worker");
    // Small parts: inputs and split ranges are read as several parallel ranged GETs.
    let out = run(batchfan(moto)
        .env("BATCHFAN_READ_PART_SIZE", "500")
        .env("BATCHFAN_READ_CONCURRENCY", "3")
        .args(["run", "--local", "--input", "s3://wc-in/corpus/", "--output", "s3://wc-out/counts/"])
        .args(["--children", "4", "--split-bytes", "2KiB", "--parallel", "4", "--format", "json", "--"])
        .arg(&worker)
        .arg("wordcount"));
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = summary["manifest"].as_str().unwrap();
    assert!(manifest.starts_with("s3://wc-out/counts/_batchfan/runs/"), "{manifest}");
    let objects = download_prefix(&s3, "wc-out", "counts/").await;
    let parts = part_bodies(&objects, "counts/");
    assert_eq!(parts.len() as u64, summary["counts"]["succeeded"].as_u64().unwrap());
    assert!(parts.len() >= 2);
    assert_eq!(objects.keys().filter(|k| k.contains("/done/")).count(), parts.len());
    assert_eq!(merge_counts(parts), reference_wordcount(tmp.path()));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_input_changed_after_planning_fails_with_the_etag_error() {
    let moto = moto();
    let s3 = moto.s3().await;
    let _tmp = dataset_in_bucket(&s3, "etag-in", "", 13).await;
    create_bucket(&s3, "etag-out").await;
    // Plan and write the manifest through `batchfan run` with a no-op program.
    let out = run(batchfan(moto).args([
        "run",
        "--local",
        "--format",
        "json",
        "--max-items-per-chunk",
        "100",
        "--input",
        "s3://etag-in",
        "--output",
        "s3://etag-out/out/",
        "--",
        "true",
    ]));
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = summary["manifest"].as_str().unwrap().to_string();
    s3.put_object()
        .bucket("etag-in")
        .key("big.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"new words\n"))
        .send()
        .await
        .unwrap();
    // Once with one GET per input, once with ranged GETs each carrying If-Match.
    for part_size in ["8MiB", "1KiB"] {
        let out = run(command("batchfan-worker", Some(moto))
            .arg("wordcount")
            .env("BATCHFAN_MANIFEST", &manifest)
            .env("BATCHFAN_READ_PART_SIZE", part_size)
            .env("AWS_BATCH_JOB_ID", "moto-parent:0"));
        assert_eq!(out.status.code(), Some(3), "part size {part_size}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("s3://etag-in/big.txt") && stderr.contains("ETag"), "{stderr}");
    }
    // The output bucket is where a worker that ignored the mismatch would have committed: it
    // holds the run's manifest (so this listing sees the run) and no part or marker.
    let written = download_prefix(&s3, "etag-out", "out/").await;
    assert!(written.keys().any(|k| k.ends_with("manifest.jsonl")), "the run is listed: {:?}", written.keys());
    let committed: Vec<_> = written.keys().filter(|k| k.contains("part-") || k.contains("/done/")).collect();
    assert!(committed.is_empty(), "nothing committed: {committed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_s3_inputs_exit_2_and_write_nothing() {
    let moto = moto();
    let s3 = moto.s3().await;
    let _tmp = dataset_in_bucket(&s3, "bad-in", "data/", 14).await;
    create_bucket(&s3, "bad-out").await;
    let cases = [
        ("s3://no-such-bucket-bf/data/", "s3://bad-out/o/", "bucket `no-such-bucket-bf` does not exist"),
        ("s3://bad-in/nothing-here/", "s3://bad-out/o/", "no input objects under `s3://bad-in/nothing-here/`"),
        ("s3://bad-in/data/", "s3://no-such-bucket-bf/o/", "bucket `no-such-bucket-bf` does not exist"),
        ("s3://Bad_Bucket/data/", "s3://bad-out/o/", "not a valid bucket name"),
    ];
    for (input, output, message) in cases {
        let out = run(batchfan(moto).args(["run", "--local", "--input", input, "--output", output, "--", "true"]));
        assert_eq!(out.status.code(), Some(2), "{input} -> {output}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{input}: {stderr}");
    }
    assert!(download_prefix(&s3, "bad-out", "").await.is_empty());
    // A missing manifest on S3 is a configuration error of the child.
    let out = run(command("batchfan-worker", Some(moto))
        .arg("wordcount")
        .env("BATCHFAN_MANIFEST", "s3://bad-out/missing/manifest.jsonl"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_input_list_selects_keys_and_a_missing_key_is_named() {
    let moto = moto();
    let s3 = moto.s3().await;
    let tmp = dataset_in_bucket(&s3, "list-in", "d/", 15).await;
    let list = tmp.path().join("../keys.txt");
    std::fs::write(&list, "# keys to redo\nf01.txt\ns3://list-in/d/sub/f00.txt\n\nbig.txt\n").unwrap();
    let plan = plan_json(moto, "s3://list-in/d/", &["--input-list", &list.display().to_string()]);
    assert_eq!(plan["objects"], 3);
    assert_eq!(plan["objects_listed"], 3);
    std::fs::write(&list, "f01.txt\nnot-there.txt\n").unwrap();
    let out = run(batchfan(moto).args(["plan", "--input", "s3://list-in/d/", "--input-list"]).arg(&list));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("s3://list-in/d/not-there.txt"));
}

// Rough edges of --input-list (issue 10): every missing key named at once; a URI outside --input
// is an error saying so; keys that start or end with spaces are kept; folder markers skipped.
#[tokio::test(flavor = "multi_thread")]
async fn an_input_list_names_every_missing_key_keeps_spaces_and_refuses_outside_uris() {
    let moto = moto();
    let s3 = moto.s3().await;
    create_bucket(&s3, "list-edges").await;
    for key in ["d/ spaced.txt ", "d/plain.txt"] {
        s3.put_object().bucket("list-edges").key(key).body(ByteStream::from_static(b"x\n")).send().await.unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("keys.txt");
    std::fs::write(&list, " spaced.txt \r\nplain.txt\nsub/\n   \n# comment\n").unwrap();
    let plan = plan_json(moto, "s3://list-edges/d/", &["--input-list", &list.display().to_string()]);
    let keys: Vec<&str> = plan["chunks"][0]["first_key"].as_str().into_iter().collect();
    assert_eq!(plan["objects"], 2, "{plan}");
    assert_eq!(keys, [" spaced.txt "], "{plan}");

    std::fs::write(&list, "plain.txt\ngone-1.txt\ngone-2.txt\n").unwrap();
    let out = run(batchfan(moto).args(["plan", "--input", "s3://list-edges/d/", "--input-list"]).arg(&list));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2 of its keys do not exist") && stderr.contains("gone-1.txt") && stderr.contains("gone-2.txt"),
        "{stderr}"
    );

    std::fs::write(&list, "s3://other-bucket/d/plain.txt\n").unwrap();
    let out = run(batchfan(moto).args(["plan", "--input", "s3://list-edges/d/", "--input-list"]).arg(&list));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is outside --input"));
}

// `--include` globs narrow the S3 listing to their literal prefix (issue 10).
#[tokio::test(flavor = "multi_thread")]
async fn include_globs_list_only_their_literal_prefix() {
    let moto = moto();
    let s3 = moto.s3().await;
    create_bucket(&s3, "narrow").await;
    for day in ["26", "27"] {
        for i in 0..5 {
            let key = format!("events/dt=2026-11-{day}/part-{i}.json");
            s3.put_object().bucket("narrow").key(key).body(ByteStream::from_static(b"{}\n")).send().await.unwrap();
        }
    }
    let plan = plan_json(moto, "s3://narrow/events/", &["--include", "dt=2026-11-27/**"]);
    assert_eq!((plan["objects"].as_u64(), plan["objects_listed"].as_u64()), (Some(5), Some(5)), "{plan}");
    // A file-name glob matches anywhere: everything is listed.
    let plan = plan_json(moto, "s3://narrow/events/", &["--include", "part-1.json"]);
    assert_eq!((plan["objects"].as_u64(), plan["objects_listed"].as_u64()), (Some(2), Some(10)), "{plan}");
}
