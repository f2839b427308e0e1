//! S3 Inventory as input (`--input-inventory`, issue 21) against moto: inventories written as
//! AWS writes them (CSV.gz and Parquet data files, manifest.json and manifest.checksum under the
//! destination bucket) plan exactly what listing the same objects plans.

use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;
use batchfan::{Location, PlanOptions};
use batchfan_tests::inventory::{CSV_SCHEMA, PARQUET_SCHEMA, Row, csv_gz, md5_hex, parquet_file};
use batchfan_tests::{Moto, command, create_bucket, dataset_in_bucket, download_prefix, moto, run};

fn batchfan(moto: &Moto) -> Command {
    command("batchfan", Some(moto))
}

fn plan_json(moto: &Moto, extra: &[&str]) -> serde_json::Value {
    let out = run(batchfan(moto).args(["plan", "--format", "json"]).args(extra));
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The rows of every object in `bucket` now (ETags without their quotes, as inventories have).
async fn current_rows(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        for o in page.unwrap().contents() {
            let modified = o.last_modified().unwrap();
            rows.push(Row {
                key: o.key().unwrap().to_string(),
                version: None,
                is_latest: true,
                is_delete_marker: false,
                size: o.size(),
                last_modified_ms: modified.secs() * 1000 + i64::from(modified.subsec_nanos() / 1_000_000),
                etag: o.e_tag().map(|e| e.trim_matches('"').to_string()),
            });
        }
    }
    rows
}

/// The rows AWS adds for a versioned bucket: an older version of an object, and the delete
/// marker of a deleted one.
fn history_rows(of: &Row) -> Vec<Row> {
    vec![
        Row { version: Some("v-old".into()), is_latest: false, etag: Some("0123456789abcdef".into()), ..of.clone() },
        Row {
            key: "data/deleted.txt".into(),
            version: Some("v-dm".into()),
            is_latest: true,
            is_delete_marker: true,
            size: None,
            etag: None,
            ..of.clone()
        },
    ]
}

/// Writes one delivery of inventory `config` of `source` into `dest` at `stamp` (split into two
/// data files), as AWS does; returns the manifest's URI.
async fn deliver(
    s3: &aws_sdk_s3::Client,
    source: &str,
    dest: &str,
    config: &str,
    stamp: &str,
    parquet: bool,
    rows: &[Row],
) -> String {
    // Columns by name, not position: the `daily` deliveries write them in another order.
    const CSV_SCHEMA_SHUFFLED: [&str; 9] = [
        "ETag",
        "Key",
        "Size",
        "Bucket",
        "IsDeleteMarker",
        "LastModifiedDate",
        "VersionId",
        "StorageClass",
        "IsLatest",
    ];
    let schema: &[&str] = if config == "daily" { &CSV_SCHEMA_SHUFFLED } else { &CSV_SCHEMA };
    let mut files = Vec::new();
    let half = rows.len() / 2;
    for (n, part) in [&rows[..half], &rows[half..]].into_iter().enumerate() {
        let (body, ext) =
            if parquet { (parquet_file(source, part), "parquet") } else { (csv_gz(source, part, schema), "csv.gz") };
        let key = format!("{source}/{config}/data/{stamp}-{n}.{ext}");
        put(s3, dest, &key, body.clone()).await;
        files.push(serde_json::json!({"key": key, "size": body.len(), "MD5checksum": md5_hex(&body)}));
    }
    let manifest = serde_json::json!({
        "sourceBucket": source,
        "destinationBucket": format!("arn:aws:s3:::{dest}"),
        "version": "2016-11-30",
        "creationTimestamp": "1764464400000",
        "fileFormat": if parquet { "Parquet" } else { "CSV" },
        "fileSchema": if parquet { PARQUET_SCHEMA.to_string() } else { schema.join(", ") },
        "files": files,
    })
    .to_string();
    put(s3, dest, &format!("{source}/{config}/{stamp}/manifest.json"), manifest.clone().into_bytes()).await;
    put(s3, dest, &format!("{source}/{config}/{stamp}/manifest.checksum"), md5_hex(manifest.as_bytes()).into_bytes())
        .await;
    format!("s3://{dest}/{source}/{config}/{stamp}/manifest.json")
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    s3.put_object().bucket(bucket).key(key).body(ByteStream::from(body)).send().await.unwrap();
}

/// A source bucket with a dataset under `data/`, odd keys and an object outside `data/`, and
/// an inventory destination bucket.
async fn source(s3: &aws_sdk_s3::Client, bucket: &str, dest: &str, seed: u64) -> tempfile::TempDir {
    let tmp = dataset_in_bucket(s3, bucket, "data/", seed).await;
    for key in ["data/é, \"quoted\" + 日本.txt", "data/a b/c%2F.txt", "other/outside.txt"] {
        put(s3, bucket, key, format!("words of {key}\n").into_bytes()).await;
    }
    create_bucket(s3, dest).await;
    tmp
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_from_an_inventory_equals_the_plan_from_listing_the_same_objects() {
    let moto = moto();
    let s3 = moto.s3().await;
    let _tmp = source(&s3, "inv-src", "inv-dest", 31).await;
    let mut rows = current_rows(&s3, "inv-src").await;
    let history = history_rows(&rows[0]);
    rows.extend(history);
    // Two complete deliveries (the older one missing objects) and a newer one still being
    // written (no checksum yet): the folder gives the newest complete one.
    deliver(&s3, "inv-src", "inv-dest", "daily", "2026-11-29T01-00Z", false, &rows[..3]).await;
    let csv = deliver(&s3, "inv-src", "inv-dest", "daily", "2026-11-30T01-00Z", false, &rows).await;
    put(&s3, "inv-dest", "inv-src/daily/2026-12-01T01-00Z/manifest.json", b"{}".to_vec()).await;
    let parquet = deliver(&s3, "inv-src", "inv-dest", "weekly", "2026-11-30T02-00Z", true, &rows).await;

    for options in [
        vec!["--max-items-per-chunk", "3"],
        vec!["--children", "4", "--split-bytes", "3KiB"],
        vec!["--max-bytes-per-chunk", "2KiB", "--exclude", "sub/*", "--include", "**/*.txt"],
    ] {
        let listed = plan_json(moto, &[&["--input", "s3://inv-src/data/"][..], &options].concat());
        assert_eq!(listed["source"], "listing");
        for (inventory, manifest) in [("s3://inv-dest/inv-src/daily/", &csv), (parquet.as_str(), &parquet)] {
            let from_inventory = plan_json(
                moto,
                &[&["--input", "s3://inv-src/data/", "--input-inventory", inventory][..], &options].concat(),
            );
            for field in ["chunks", "items", "bytes", "objects", "objects_listed", "chunk_count"] {
                assert_eq!(from_inventory[field], listed[field], "{field} {inventory} {options:?}");
            }
            assert_eq!(from_inventory["source"], "inventory");
            let stats = &from_inventory["inventory"];
            assert_eq!(stats["manifest"].as_str(), Some(manifest.as_str()));
            assert_eq!(stats["rows"].as_u64(), Some(rows.len() as u64));
            assert_eq!(stats["files"].as_u64(), Some(2));
            assert_eq!(stats["skipped"]["not_latest"], 1, "{stats}");
            assert_eq!(stats["skipped"]["delete_marker"], 1, "{stats}");
            assert_eq!(stats["skipped"]["outside_prefix"], 1, "{stats}");
        }
    }

    // Item by item, ETags included: the same plan through the library.
    let client = moto.client();
    let input = Location::parse("s3://inv-src/data/").unwrap();
    let options = PlanOptions { children: Some(3), ..Default::default() };
    let listed = client.plan(&input, &options).await.unwrap();
    assert!(listed.items.iter().all(|i| i.etag.is_some()));
    for inventory in [csv.as_str(), parquet.as_str()] {
        let options = PlanOptions { input_inventory: Some(inventory.to_string()), ..options.clone() };
        let planned = client.plan(&input, &options).await.unwrap();
        assert_eq!(planned.items, listed.items, "{inventory}");
        assert_eq!(planned.chunks, listed.chunks, "{inventory}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn modified_after_reads_the_inventory_dates() {
    let moto = moto();
    let s3 = moto.s3().await;
    let _tmp = source(&s3, "inv-mod", "inv-mod-dest", 32).await;
    let mut rows = current_rows(&s3, "inv-mod").await;
    // The inventory says two objects are old: only it can tell (they were all just written).
    for row in rows.iter_mut().take(2) {
        row.last_modified_ms = 1_600_000_000_000;
    }
    for parquet in [false, true] {
        let config = if parquet { "pq" } else { "csv" };
        let manifest = deliver(&s3, "inv-mod", "inv-mod-dest", config, "2026-11-30T01-00Z", parquet, &rows).await;
        let plan = plan_json(
            moto,
            &["--input", "s3://inv-mod/", "--input-inventory", &manifest, "--modified-after", "2021-01-01"],
        );
        assert_eq!(plan["left_out_unmodified"], 2, "{config}");
        assert_eq!(plan["objects_listed"].as_u64(), Some(rows.len() as u64), "{config}");
        assert_eq!(plan["objects"].as_u64(), Some(rows.len() as u64 - 2), "{config}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_inventory_is_exit_2_and_nothing_is_written() {
    let moto = moto();
    let s3 = moto.s3().await;
    let _tmp = source(&s3, "inv-bad", "inv-bad-dest", 33).await;
    create_bucket(&s3, "inv-bad-out").await;
    let rows = current_rows(&s3, "inv-bad").await;
    let manifest = deliver(&s3, "inv-bad", "inv-bad-dest", "c", "2026-11-30T01-00Z", false, &rows).await;
    let local_run = |inventory: &str, input: &str| {
        run(batchfan(moto).args(["run", "--local", "--input", input, "--input-inventory", inventory]).args([
            "--output",
            "s3://inv-bad-out/o/",
            "--",
            "true",
        ]))
    };
    // The checksum of another manifest.
    put(&s3, "inv-bad-dest", "inv-bad/c/2026-11-30T01-00Z/manifest.checksum", md5_hex(b"{}").into_bytes()).await;
    let out = local_run(&manifest, "s3://inv-bad/");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--input-inventory") && stderr.contains(&manifest) && stderr.contains("MD5"), "{stderr}");
    // An inventory of another bucket.
    let other = deliver(&s3, "inv-src-x", "inv-bad-dest", "c", "2026-11-30T01-00Z", false, &rows).await;
    let out = local_run(&other, "s3://inv-bad/");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`inv-src-x`"));
    // --input-list and --input-inventory together.
    let out = run(batchfan(moto)
        .args(["plan", "--input", "s3://inv-bad/", "--input-inventory", &other])
        .args(["--input-list", "list.txt"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(download_prefix(&s3, "inv-bad-out", "").await.is_empty(), "nothing written");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_overwritten_after_the_inventory_makes_the_worker_exit_3() {
    let moto = moto();
    let s3 = moto.s3().await;
    let _tmp = source(&s3, "inv-stale", "inv-stale-dest", 34).await;
    create_bucket(&s3, "inv-stale-out").await;
    let rows = current_rows(&s3, "inv-stale").await;
    let manifest = deliver(&s3, "inv-stale", "inv-stale-dest", "c", "2026-11-30T01-00Z", false, &rows).await;
    let key = rows.iter().find(|r| r.key.starts_with("data/")).unwrap().key.clone();
    put(&s3, "inv-stale", &key, b"written after the inventory\n".to_vec()).await;
    let worker = batchfan_tests::bin("batchfan-worker");
    let out = run(batchfan(moto)
        .args(["run", "--local", "--format", "json", "--max-items-per-chunk", "1000"])
        .args(["--input", "s3://inv-stale/data/", "--input-inventory", &manifest])
        .args(["--output", "s3://inv-stale-out/o/", "--"])
        .arg(&worker)
        .arg("wordcount"));
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{summary}");
    assert_eq!(failed[0]["exit_code"], 3, "{summary}");
    let log = std::fs::read_to_string(failed[0]["log"].as_str().unwrap()).unwrap_or_default();
    let stale = format!("s3://inv-stale/{key}");
    assert!(log.contains(&stale) && log.contains("ETag"), "{log}");
    // The same plan from a listing now runs: the object's new ETag is pinned.
    let out = run(batchfan(moto)
        .args(["run", "--local", "--format", "json", "--overwrite"])
        .args(["--input", "s3://inv-stale/data/", "--output", "s3://inv-stale-out/o/", "--"])
        .arg(&worker)
        .arg("wordcount"));
    assert_eq!(out.status.code(), Some(0));
}
