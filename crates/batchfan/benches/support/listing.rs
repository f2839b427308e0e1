//! The synthetic listing the benches plan: `n` S3-like objects with ETags, in no order.

use batchfan::store::ObjectMeta;

/// `n` objects under 30 day folders, 1 kB to 5 MB each.
pub fn listing(n: usize) -> Vec<ObjectMeta> {
    (0..n)
        .map(|i| ObjectMeta {
            key: format!("events/2026/11/{:02}/part-{i:07}.json.gz", i % 30),
            size: 1_000 + (i as u64 * 7919) % 5_000_000,
            etag: Some(format!("\"{:032x}\"", (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_u128))),
            mtime_ns: None,
        })
        .collect()
}
