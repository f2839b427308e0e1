//! Data-plane read throughput through batchfan's S3 store, on the server in `AWS_ENDPOINT_URL`
//! (scripts/bench.sh starts s3s-fs, a fast S3 server from crates.io; moto is too slow for this).
//! Uploads a text object of `BENCH_MIB` MiB (default 256) once, then reads it whole and as the
//! record-aligned split ranges children read. Prints table rows; the script adds curl and awscli.

use std::time::Instant;

mod support;

use batchfan::contract::Item;
use batchfan::manifest::{self, ManifestReader};
use batchfan::plan::{PlanOptions, plan_objects, split_ranges};
use batchfan::records::ItemReader;
use batchfan::store::{ReadOptions, Store, read_all};
use batchfan::uri::Location;

fn row(what: &str, bytes: u64, seconds: f64, note: &str) {
    let mib = bytes as f64 / (1 << 20) as f64;
    println!("| {what:<40} | {seconds:>8.2} | {:>8.0} | {note} |", mib / seconds);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        println!("skipped: needs an S3 endpoint; run scripts/bench.sh");
        return Ok(());
    }
    let bucket = std::env::var("BENCH_BUCKET").unwrap_or_else(|_| "bench-data".into());
    let mib: u64 = std::env::var("BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let client = batchfan::Client::from_env().await;
    let _ = client.s3().await.create_bucket().bucket(&bucket).send().await;
    let store = client.store(&Location::parse(&format!("s3://{bucket}/"))?)?;
    let meta = match store.head("text.txt").await? {
        Some(meta) if meta.size >= mib << 20 => meta,
        _ => {
            let path = std::env::temp_dir().join(format!("batchfan-bench-{}.txt", std::process::id()));
            let line = b"the quick brown fox jumps over the lazy dog 0123456789 batchfan data plane\n";
            let body: Vec<u8> = line.iter().copied().cycle().take((mib << 20) as usize).collect();
            std::fs::write(&path, &body)?;
            store.put_file("text.txt", &path).await?;
            std::fs::remove_file(&path)?;
            store.head("text.txt").await?.ok_or("upload failed")?
        }
    };

    // Each reader row runs in a process of its own, so its memory peak is its own.
    let variant =
        std::env::args().find_map(|a| a.strip_prefix("--read-variant=").and_then(|v| v.parse::<usize>().ok()));
    if variant.is_none() {
        let start = Instant::now();
        let whole = read_all(store.as_ref(), "text.txt", None, Some(&meta)).await?;
        let seconds = start.elapsed().as_secs_f64();
        row("batchfan store: one GET, whole object", whole.len() as u64, seconds, "If-Match pinned");
    }

    let single = ReadOptions { concurrency: 1, ..ReadOptions::default() };
    let reads = [
        ("one GET", single),
        ("4 x 8 MiB ranged GETs", ReadOptions::default()),
        ("8 x 8 MiB ranged GETs", ReadOptions { part_size: 8 << 20, concurrency: 8 }),
    ];
    let rows: Vec<(Option<u64>, &str, ReadOptions)> = [None, Some(64u64 << 20), Some(8 << 20)]
        .into_iter()
        .flat_map(|split| reads.iter().map(move |&(how, read)| (split, how, read)))
        .filter(|&(split, _, read)| split != Some(8 << 20) || read == single) // 8 MiB ranges are one part each
        .collect();
    // Each reader row runs in a process of its own, so its memory peak is its own.
    let variant =
        std::env::args().find_map(|a| a.strip_prefix("--read-variant=").and_then(|v| v.parse::<usize>().ok()));
    let Some(variant) = variant else {
        for i in 0..rows.len() {
            let out =
                std::process::Command::new(std::env::current_exe()?).arg(format!("--read-variant={i}")).output()?;
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
        return child_chunk_reads(&client, &bucket, store.as_ref()).await;
    };
    let (split, how, read) = rows[variant];
    let ranges = match split {
        Some(split) => split_ranges(meta.size, split).into_iter().map(Some).collect(),
        None => vec![None],
    };
    let base_rss = support::peak_rss_mib();
    let start = Instant::now();
    let mut bytes = 0u64;
    for range in &ranges {
        let item = Item::from_meta(meta.clone(), *range);
        let mut reader = ItemReader::open(&store, &item, read).await?;
        while let Some(block) = reader.next_bytes().await? {
            bytes += block.len() as u64;
        }
    }
    assert_eq!(bytes, meta.size, "every byte read exactly once");
    let what = match split {
        Some(split) => format!("batchfan ItemReader: {} MiB ranges", split >> 20),
        None => "batchfan ItemReader: whole object".to_string(),
    };
    let note = format!(
        "{} item(s) one after another, each by {how}; peak memory +{:.0} MiB",
        ranges.len(),
        support::peak_rss_mib() - base_rss
    );
    row(&what, bytes, start.elapsed().as_secs_f64(), &note);
    Ok(())
}

/// A child's start: its chunk of a 1,000,000-item manifest, read from S3.
async fn child_chunk_reads(
    client: &batchfan::Client,
    bucket: &str,
    store: &dyn Store,
) -> Result<(), Box<dyn std::error::Error>> {
    let uri = format!("s3://{bucket}/manifest-1m/manifest.jsonl");
    if store.head("manifest-1m/manifest.jsonl").await?.is_none() {
        let input = Location::parse("s3://bench-bucket/events/")?;
        let plan = plan_objects(
            &input,
            support::listing(1_000_000),
            &PlanOptions { children: Some(10_000), ..Default::default() },
        )?;
        manifest::write_plan(client.stores(), &uri, &plan, "bf-bench", &Location::parse("s3://bench-bucket/out/")?)
            .await?;
    }
    let children = 100u64;
    let start = Instant::now();
    let mut items = 0;
    for i in 0..children {
        let reader = ManifestReader::open(client.stores(), &uri).await?;
        items += reader.chunk(i * 97).await?.len();
    }
    let per_child = start.elapsed().as_secs_f64() / children as f64;
    println!(
        "| {:<40} | {per_child:>8.4} | {:>8} | {children} children sampled, {} items each; 1,000,000 items, 10,000 chunks; one S3 client (connections reused) |",
        "child reads its chunk of the manifest",
        "-",
        items / children as usize
    );
    Ok(())
}
