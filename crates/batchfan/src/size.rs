//! Byte sizes written like `64MiB`, `1.5GB` or `4096`.

use crate::error::{Error, Result};

/// Parses a size: a number with an optional unit `B`, `K`/`KB`, `KiB`, `M`/`MB`, `MiB`,
/// `G`/`GB`, `GiB`, `T`/`TB`, `TiB` (case-insensitive; `KB` is 1000, `KiB` and `K` are 1024).
///
/// ```
/// assert_eq!(batchfan::size::parse_size("64MiB").unwrap(), 64 << 20);
/// assert_eq!(batchfan::size::parse_size("1.5 KB").unwrap(), 1500);
/// assert!(batchfan::size::parse_size("ten").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64> {
    let bad = |reason: &str| Error::InvalidSize { value: text.to_string(), reason: reason.to_string() };
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    if number.is_empty() {
        return Err(bad("expected a number with an optional unit, e.g. 64MiB or 1000000"));
    }
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "k" | "kib" => 1 << 10,
        "mb" => 1000 * 1000,
        "m" | "mib" => 1 << 20,
        "gb" => 1000 * 1000 * 1000,
        "g" | "gib" => 1 << 30,
        "tb" => 1000 * 1000 * 1000 * 1000,
        "t" | "tib" => 1 << 40,
        _ => return Err(bad("unknown unit; use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB")),
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(factor).ok_or_else(|| bad("too large"));
    }
    let value: f64 = number.parse().map_err(|_| bad("not a number"))?;
    let bytes = (value * factor as f64).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad("too large"));
    }
    Ok(bytes as u64)
}

/// Formats a byte count for people, e.g. `1.5 MiB`.
///
/// ```
/// assert_eq!(batchfan::size::format_size(1536), "1.5 KiB");
/// ```
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// `1 chunk`, `2 chunks`: a count with its noun (singular, plural), for messages.
pub fn count_of(n: u64, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("10").unwrap(), 10);
        assert_eq!(parse_size("10B").unwrap(), 10);
        assert_eq!(parse_size("1KiB").unwrap(), 1024);
        assert_eq!(parse_size("1k").unwrap(), 1024);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size(" 1 GiB ").unwrap(), 1 << 30);
        assert_eq!(parse_size("0.5MiB").unwrap(), 512 << 10);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "MiB", "12XB", "-1", "1.2.3MiB", "99999999999999999999TiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
