//! An S3 Inventory delivery of N rows for benchmarks (issue 21), written as AWS writes one but
//! to a local folder standing for the destination bucket:
//! `DIR/BUCKET/bench/2026-11-30T00-00Z/manifest.json` (with `manifest.checksum`) and the data
//! files under `DIR/BUCKET/bench/data/`. Keys are those of `s3_list_sim --shape flat`
//! (`data/00000000` ...), so a plan of `s3://BUCKET/data/` from the inventory holds what listing
//! the simulated bucket would.
//!
//! `inventory_gen --rows N --format csv|parquet --dir DIR [--bucket sim] [--files 10]` prints
//! the manifest's path.

use batchfan_tests::inventory::{CSV_SCHEMA, PARQUET_SCHEMA, Row, csv_gz, md5_hex, parquet_file};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let rows: u64 = arg("--rows").and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let parquet = arg("--format").as_deref() == Some("parquet");
    let dir = std::path::PathBuf::from(arg("--dir").unwrap_or_else(|| "inventory".into()));
    let bucket = arg("--bucket").unwrap_or_else(|| "sim".into());
    let files: u64 = arg("--files").and_then(|n| n.parse().ok()).unwrap_or(10).max(1);
    let stamp = "2026-11-30T00-00Z";
    let config = dir.join(&bucket).join("bench");
    std::fs::create_dir_all(config.join("data")).expect("mkdir data");
    std::fs::create_dir_all(config.join(stamp)).expect("mkdir stamp");
    let per_file = rows.div_ceil(files);
    let mut listed = Vec::new();
    for f in 0..files {
        let part: Vec<Row> = (f * per_file..((f + 1) * per_file).min(rows))
            .map(|i| Row {
                key: format!("data/{i:08}"),
                version: None,
                is_latest: true,
                is_delete_marker: false,
                size: Some((i % 1000 * 4099) as i64),
                last_modified_ms: 1_764_460_800_000 + i as i64,
                etag: Some(format!("{i:032x}")),
            })
            .collect();
        let (body, ext) = if parquet {
            (parquet_file(&bucket, &part), "parquet")
        } else {
            (csv_gz(&bucket, &part, &CSV_SCHEMA), "csv.gz")
        };
        let name = format!("{f:05}.{ext}");
        std::fs::write(config.join("data").join(&name), &body).expect("write data file");
        listed.push(serde_json::json!({
            "key": format!("{bucket}/bench/data/{name}"),
            "size": body.len(),
            "MD5checksum": md5_hex(&body),
        }));
    }
    let manifest = serde_json::json!({
        "sourceBucket": bucket,
        "destinationBucket": "arn:aws:s3:::inventory-bench",
        "version": "2016-11-30",
        "creationTimestamp": "1764460800000",
        "fileFormat": if parquet { "Parquet" } else { "CSV" },
        "fileSchema": if parquet { PARQUET_SCHEMA.to_string() } else { CSV_SCHEMA.join(", ") },
        "files": listed,
    })
    .to_string();
    let path = config.join(stamp).join("manifest.json");
    std::fs::write(&path, &manifest).expect("write manifest");
    std::fs::write(config.join(stamp).join("manifest.checksum"), md5_hex(manifest.as_bytes())).expect("checksum");
    println!("{}", path.display());
}
