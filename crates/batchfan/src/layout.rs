//! Run ids, and preparing an output location (the keys themselves are in [`crate::contract`]).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::contract::{META_DIR, Marker};
use crate::error::{Error, Result};
use crate::store::Store;

pub(crate) use crate::contract::now_ms;

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
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
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

/// What earlier runs left in an output location: what `--overwrite` deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Earlier {
    /// Completion markers of earlier runs.
    pub markers: Vec<String>,
    /// Chunk outputs named as batchfan names them (`part-NNNNN`, `.gz` / `.zst`).
    pub parts: Vec<String>,
    /// Everything to delete: the markers, the parts, and every object the markers list (exec's
    /// mirrored outputs among them). Filled by [`Earlier::read_markers`].
    pub objects: Vec<String>,
}

impl Earlier {
    /// True when no earlier run left outputs.
    pub fn is_empty(&self) -> bool {
        self.markers.is_empty() && self.parts.is_empty()
    }

    /// Outputs and markers found, for messages.
    pub fn found(&self) -> usize {
        self.markers.len() + self.parts.len()
    }

    /// Reads the markers (16 at a time) and fills [`Earlier::objects`] with every object they
    /// list, the markers and the parts.
    pub async fn read_markers(&mut self, store: &dyn Store) -> Result<()> {
        use futures_util::StreamExt;
        let listed: Vec<Result<Option<Marker>>> = futures_util::stream::iter(self.markers.iter())
            .map(|key| async move {
                match crate::store::read_all(store, key, None, None).await {
                    Ok(bytes) => Ok(serde_json::from_slice::<Marker>(&bytes).ok()),
                    Err(Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffered(16)
            .collect()
            .await;
        let mut objects = std::collections::BTreeSet::new();
        for marker in listed {
            if let Some(marker) = marker? {
                objects.extend(marker.objects.into_iter().filter(|k| !k.is_empty() && !is_meta(k)));
                if !marker.output_key.is_empty() && !is_meta(&marker.output_key) {
                    objects.insert(marker.output_key);
                }
            }
        }
        objects.extend(self.parts.iter().cloned());
        objects.extend(self.markers.iter().cloned());
        self.objects = objects.into_iter().collect();
        Ok(())
    }
}

fn is_meta(key: &str) -> bool {
    key == META_DIR || key.starts_with(&format!("{META_DIR}/"))
}

/// True for the names batchfan gives chunk outputs: `part-` and five or more digits, with
/// `.gz` or `.zst` when compressed (a user's `part-00001.bak` is not one).
pub fn is_part_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("part-") else { return false };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits >= 5 && matches!(&rest[digits..], "" | ".gz" | ".zst")
}

/// Finds what earlier runs left under `store`'s location (one listing): their completion
/// markers and batchfan-named chunk outputs, except those of `keep` (a resumed run's own).
pub async fn earlier_outputs(store: &dyn Store, keep: Option<&str>) -> Result<Earlier> {
    let listed = match crate::store::list_all(store, "").await {
        Ok(objects) => objects,
        Err(Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    let own = keep.map(crate::contract::marker_prefix);
    let mut earlier = Earlier::default();
    for key in listed.into_iter().map(|o| o.key) {
        if is_part_key(&key) {
            earlier.parts.push(key);
        } else if is_meta(&key)
            && key.contains("/done/")
            && crate::contract::marker_index(&key).is_some()
            && own.as_deref().is_none_or(|own| !key.starts_with(own))
        {
            earlier.markers.push(key);
        }
    }
    Ok(earlier)
}

/// Refuses an output location that holds outputs of an earlier run: [`Error::OutputNotEmpty`].
pub fn refuse_earlier(store: &dyn Store, earlier: &Earlier) -> Result<()> {
    if earlier.is_empty() {
        Ok(())
    } else {
        Err(Error::OutputNotEmpty { uri: store.location().to_string(), found: earlier.found() })
    }
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
    fn part_keys_are_batchfans_own_names_only() {
        for ok in ["part-00000", "part-12345.gz", "part-1234567.zst"] {
            assert!(is_part_key(ok), "{ok}");
        }
        for not in ["part-00001.bak", "part-1", "part-0000x", "parts-00001", "sub/part-00001", "part-00001.gz.tmp"] {
            assert!(!is_part_key(not), "{not}");
        }
    }

    #[test]
    fn run_ids_are_valid_job_names() {
        let id = new_run_id();
        assert!(id.starts_with("bf-") && id.len() == 25, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
}
