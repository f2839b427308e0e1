//! HTML report benchmark: render the page of synthetic runs of 1,000, 10,000 and 100,000
//! chunks (times, items, bytes and memory per chunk; some retried, some failed, some
//! stragglers) and print its size. Prints a table; with BENCH_REPORT_HTML_DIR set, writes
//! each page there (scripts/bench.sh opens the 100,000-chunk one in headless Chromium).
//!
//! `cargo bench -p batchfan --bench report_html`

use std::time::Instant;

use batchfan::report_html::{self, Extras};

fn main() {
    let dir = std::env::var_os("BENCH_REPORT_HTML_DIR").map(std::path::PathBuf::from);
    println!("| chunks  | render s | page KiB | timeline |");
    println!("|---------|----------|----------|----------|");
    for chunks in [1_000u64, 10_000, 100_000] {
        let (record, report) = report_html::synthetic(chunks);
        let extras = Extras::default();
        // Best of three: the page is made once per report written.
        let mut best = f64::INFINITY;
        let mut page = String::new();
        for _ in 0..3 {
            let started = Instant::now();
            page = report_html::render(&record, &report, &extras).expect("render");
            best = best.min(started.elapsed().as_secs_f64());
        }
        let shape = if chunks as usize > report_html::TIMELINE_BARS {
            format!("{} lanes", report_html::LANES)
        } else {
            format!("{chunks} bars")
        };
        println!("| {chunks:>7} | {best:>8.3} | {:>8.0} | {shape} |", page.len() as f64 / 1024.0);
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).expect("bench dir");
            std::fs::write(dir.join(format!("report-{chunks}.html")), &page).expect("write page");
        }
    }
}
