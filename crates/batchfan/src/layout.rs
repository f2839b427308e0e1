//! Run ids, and preparing an output location (the keys themselves are in [`crate::contract`]).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::contract::META_DIR;
use crate::error::{Error, Result};
use crate::store::Store;

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
    let noise = fastrand::u32(..1 << 24);
    format!("bf-{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{noise:06x}", t / 3600, t / 60 % 60, t % 60)
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
    store.delete_many(&existing).await?;
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
