//! Where a run keeps things under its output location, and run ids.
//!
//! ```text
//! OUTPUT/part-00000                                 chunk 0's output, committed once
//! OUTPUT/_batchfan/runs/RUN/manifest.jsonl          the manifest (unless --manifest)
//! OUTPUT/_batchfan/runs/RUN/done/00000.json         chunk 0's completion marker
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::Store;

/// The folder under the output location holding batchfan's own files.
pub const META_DIR: &str = "_batchfan";

/// The output key of chunk `index`.
pub fn part_key(index: u64) -> String {
    format!("part-{index:05}")
}

/// The completion marker of chunk `index` of run `run_id`.
pub fn marker_key(run_id: &str, index: u64) -> String {
    format!("{META_DIR}/runs/{run_id}/done/{index:05}.json")
}

/// The default manifest key of a run, under the output location.
pub fn manifest_key(run_id: &str) -> String {
    format!("{META_DIR}/runs/{run_id}/manifest.jsonl")
}

/// What a child writes after its output is committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The run.
    pub run_id: String,
    /// The chunk.
    pub index: u64,
    /// The attempt that committed.
    pub attempt: u32,
    /// `AWS_BATCH_JOB_ID` of the child that committed.
    pub job_id: String,
    /// Items processed.
    pub items: u64,
    /// Input bytes read.
    pub bytes_in: u64,
    /// The output key.
    pub output_key: String,
    /// Output bytes written.
    pub bytes_out: u64,
    /// When the commit finished (ms since the epoch).
    pub committed_unix_ms: u64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A new run id such as `bf-20261127-131500-3f9a2c`: sortable by time, valid as an AWS Batch job name.
pub fn new_run_id() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    let noise = (now.subsec_nanos() as u64 ^ (u64::from(std::process::id()) << 20)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("bf-{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{:06x}", t / 3600, t / 60 % 60, t % 60, noise >> 40)
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Refuses an output location that already holds chunk outputs, unless `overwrite`, in which case
/// the old outputs and completion markers are deleted first. Returns how many objects were deleted.
pub async fn prepare_output(store: &dyn Store, overwrite: bool) -> Result<usize> {
    let existing: Vec<String> = match crate::store::list_all(store, "").await {
        Ok(objects) => objects
            .into_iter()
            .map(|o| o.key)
            .filter(|k| k.starts_with("part-") || (k.starts_with(META_DIR) && k.contains("/done/")))
            .collect(),
        Err(Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    if existing.is_empty() {
        return Ok(0);
    }
    if !overwrite {
        return Err(Error::OutputNotEmpty { uri: store.location().to_string(), found: existing.len() });
    }
    for key in &existing {
        store.delete(key).await?;
    }
    Ok(existing.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_784), (2026, 11, 27));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn run_ids_are_valid_job_names() {
        let id = new_run_id();
        assert!(id.starts_with("bf-") && id.len() == 25, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
}
