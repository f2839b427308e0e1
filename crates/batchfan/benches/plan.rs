//! Planning and manifest benchmark: plan 1,000,000 listed objects from an in-memory listing,
//! encode the manifest, and read one child's chunk of it. Prints a table.
//!
//! `cargo bench -p batchfan --bench plan` (scripts/bench.sh runs it).

use std::time::Instant;

mod support;
use support::{peak_rss_mib, reset_peak};

use batchfan::contract::Item;
use batchfan::items::Items;
use batchfan::manifest::{self, ManifestReader};
use batchfan::plan::{PlanOptions, plan_items};
use batchfan::uri::Location;

const OBJECTS: usize = 1_000_000;

/// CPU time of this thread in seconds (Linux schedstat).
fn cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    text.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()).map_or(f64::NAN, |ns| ns / 1e9)
}

fn row(what: &str, wall: f64, cpu: f64, rss: f64, note: &str) {
    println!("| {what:<52} | {wall:>8.3} | {cpu:>8.3} | {rss:>9.1} | {note} |");
}

fn variants() -> Vec<(&'static str, PlanOptions)> {
    vec![
        ("plan: --children 10000", PlanOptions { children: Some(10_000), ..Default::default() }),
        ("plan: --max-items-per-chunk 100", PlanOptions { max_items_per_chunk: Some(100), ..Default::default() }),
        (
            "plan: --max-bytes-per-chunk 1GiB --split-bytes 4MiB",
            PlanOptions { max_bytes_per_chunk: Some(1 << 30), split_bytes: Some(4 << 20), ..Default::default() },
        ),
    ]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let variant = std::env::args().any(|a| a.starts_with("--variant="));
    if !variant {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!("machine: {cpus} CPUs; {OBJECTS} objects listed in memory\n");
        println!("| {:<52} | {:>8} | {:>8} | {:>9} | note |", "step", "wall s", "cpu s", "peak MiB");
        println!("|{}|{}|{}|{}|------|", "-".repeat(54), "-".repeat(10), "-".repeat(10), "-".repeat(11));
        row("baseline", 0.0, 0.0, peak_rss_mib(), "");
    }
    // As listing gives it: compact columns (`Items`), not a Vec of `ObjectMeta`.
    let objects = Items::from(support::listing(OBJECTS));
    if !variant {
        row("in-memory listing", 0.0, 0.0, peak_rss_mib(), "the plan's input");
    }

    let input = Location::parse("s3://bench-bucket/events/").expect("location");
    let client = batchfan::Client::from_env().await;
    if let Some(variant) = std::env::args().nth(1).and_then(|a| a.strip_prefix("--variant=").map(str::to_string)) {
        if variant == "write" {
            // The real flow: plan, then stream the manifest to a file; the listing is consumed.
            let dir = std::env::temp_dir().join(format!("batchfan-bench-w-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("tmp dir");
            let uri = dir.join("manifest.jsonl").display().to_string();
            let output = Location::parse("s3://bench-bucket/out/").expect("location");
            let (wall, cpu) = (Instant::now(), cpu_seconds());
            let plan = plan_items(&input, objects, &PlanOptions { children: Some(10_000), ..Default::default() })
                .expect("plan");
            manifest::write_plan(client.stores(), &uri, &plan, "bf-bench", &output).await.expect("write");
            let size = std::fs::metadata(&uri).map_or(0, |m| m.len());
            row(
                "plan + write_plan (streamed) --children 10000",
                wall.elapsed().as_secs_f64(),
                cpu_seconds() - cpu,
                peak_rss_mib(),
                &format!(
                    "manifest {:.1} MiB written through a temp file; peak includes the listing",
                    size as f64 / (1 << 20) as f64
                ),
            );
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        let (name, options) = &variants()[variant.parse::<usize>().expect("variant")];
        let (wall, cpu) = (Instant::now(), cpu_seconds());
        let plan = plan_items(&input, objects, options).expect("plan");
        let note = format!("{} items, {} chunks; peak includes the listing", plan.items.len(), plan.chunks.len());
        row(name, wall.elapsed().as_secs_f64(), cpu_seconds() - cpu, peak_rss_mib(), &note);
        return;
    }
    for variant in (0..variants().len()).map(|i| i.to_string()).chain(["write".to_string()]) {
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .arg(format!("--variant={variant}"))
            .output()
            .expect("run variant");
        let text = String::from_utf8_lossy(&out.stdout);
        print!("{}", text.lines().last().map(|l| format!("{l}\n")).unwrap_or_default());
    }

    reset_peak();
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let plan =
        plan_items(&input, objects, &PlanOptions { children: Some(10_000), ..Default::default() }).expect("plan");
    let plan_cpu = cpu_seconds() - cpu;
    let output = Location::parse("s3://bench-bucket/out/").expect("location");
    let (wall_e, cpu_e) = (Instant::now(), cpu_seconds());
    let encoded = manifest::encode(&plan, "bf-bench", &output).expect("encode");
    let size = encoded.len();
    row(
        "plan + encode manifest in memory (--children 10000)",
        wall.elapsed().as_secs_f64(),
        plan_cpu + cpu_seconds() - cpu_e,
        peak_rss_mib(),
        &format!(
            "encode alone {:.3} s; manifest {:.1} MiB, {:.0} B/item",
            wall_e.elapsed().as_secs_f64(),
            size as f64 / (1 << 20) as f64,
            size as f64 / plan.items.len() as f64
        ),
    );
    drop(plan);

    let dir = std::env::temp_dir().join(format!("batchfan-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("manifest.jsonl");
    let uri = path.display().to_string();
    manifest::write(client.stores(), &uri, encoded).await.expect("write");

    let children = 200u64;
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let mut items = 0;
    for i in 0..children {
        let reader = ManifestReader::open(client.stores(), &uri).await.expect("open");
        items += reader.chunk(i * 49).await.expect("chunk").len();
    }
    let per_child = wall.elapsed().as_secs_f64() / children as f64;
    row(
        "child reads its chunk (open + chunk), mean",
        per_child,
        (cpu_seconds() - cpu) / children as f64,
        peak_rss_mib(),
        &format!("{} children sampled, {:.0} items each; local file", children, items as f64 / children as f64),
    );

    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let whole = std::fs::read(&path).expect("read");
    let parsed = whole
        .split(|b| *b == b'\n')
        .skip(2)
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<Item>(l).ok())
        .count();
    row(
        "for contrast: a child parsing the whole manifest",
        wall.elapsed().as_secs_f64(),
        cpu_seconds() - cpu,
        peak_rss_mib(),
        &format!("{parsed} items parsed"),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
