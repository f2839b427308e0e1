//! What the benches share: the synthetic listing they plan, and peak memory readings.
#![allow(dead_code)] // each bench uses a part

use batchfan::store::ObjectMeta;

/// `n` objects under 30 day folders, 1 kB to 5 MB each.
pub fn listing(n: usize) -> Vec<ObjectMeta> {
    (0..n)
        .map(|i| ObjectMeta {
            key: format!("events/2026/11/{:02}/part-{i:07}.json.gz", i % 30),
            size: 1_000 + (i as u64 * 7919) % 5_000_000,
            etag: Some(format!("\"{:032x}\"", (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_u128))),
            mtime_ns: None,
            content_encoding: None,
        })
        .collect()
}

/// Peak resident set size in MiB since the last [`reset_peak`] (Linux).
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.map_or(f64::NAN, |k| k / 1024.0)
}

/// Resets the peak to the current resident set size.
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
