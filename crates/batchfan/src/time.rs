//! Points in time as users write them: RFC 3339 (`2026-11-30T12:00:00Z`, with a fraction or an
//! offset) or a date (`2026-11-30`, midnight UTC).

/// Milliseconds since the Unix epoch of `text`; `None` when it is not a time.
pub fn parse_time(text: &str) -> Option<u64> {
    u64::try_from(parse(text)? / 1_000_000).ok()
}

/// Nanoseconds since the Unix epoch of `text` (fractions past nanoseconds are cut); `None` when
/// it is not a time or is past what 64 bits of nanoseconds hold (the year 2554).
pub fn parse_time_ns(text: &str) -> Option<u64> {
    u64::try_from(parse(text)?).ok()
}

/// Nanoseconds since the Unix epoch (128 bits: years 0 to 9999 at any offset fit).
fn parse(text: &str) -> Option<i128> {
    let text = text.trim();
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    // RFC 3339 years have four digits (and larger ones would overflow the arithmetic below).
    if parts.next().is_some()
        || !(0..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
    {
        return None;
    }
    let mut ns = i128::from(days_from_civil(year, month, day)) * 86_400_000_000_000;
    if let Some(rest) = rest {
        // The offset: Z, +HH:MM or -HH:MM after the clock time.
        let (clock, offset_ns) = match rest.find(['Z', 'z', '+', '-']) {
            Some(at) => {
                let (clock, zone) = rest.split_at(at);
                (clock, offset(zone)?)
            }
            None => (rest, 0),
        };
        let mut fields = clock.split(':');
        let hour: i64 = fields.next()?.parse().ok()?;
        let minute: i64 = fields.next()?.parse().ok()?;
        let (second, fraction) = match fields.next() {
            Some(s) => match s.split_once('.') {
                Some((whole, frac)) => (whole.parse::<i64>().ok()?, fraction_ns(frac)?),
                None => (s.parse::<i64>().ok()?, 0),
            },
            None => (0, 0),
        };
        if fields.next().is_some() || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        ns += i128::from(((hour * 60 + minute) * 60 + second) * 1_000_000_000 + fraction - offset_ns);
    }
    Some(ns)
}

fn offset(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let (h, m) = zone[1..].split_once(':').unwrap_or((&zone[1..], "0"));
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 23 && m <= 59).then_some(sign * (h * 60 + m) * 60_000_000_000)
}

/// Nanoseconds of a fraction's digits (`789` is 789,000,000; digits past the ninth are cut).
fn fraction_ns(digits: &str) -> Option<i64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ns = 0;
    for place in 0..9 {
        ns = ns * 10 + digits.as_bytes().get(place).map_or(0, |d| i64::from(d - b'0'));
    }
    Some(ns)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::{parse_time, parse_time_ns};

    #[test]
    fn times_past_what_nanoseconds_hold() {
        assert_eq!(parse_time("2300-01-01"), Some(10_413_792_000_000));
        assert_eq!(parse_time_ns("2300-01-01"), Some(10_413_792_000_000_000_000));
        assert_eq!(parse_time_ns("2600-01-01"), None, "past 64 bits of nanoseconds");
        assert_eq!(parse_time("9999-12-31T23:59:59-23:59"), Some(253_402_387_139_000));
        assert_eq!(parse_time_ns("2262-04-11T23:59:59Z"), Some(9_223_372_799_000_000_000));
    }

    #[test]
    fn rfc3339_and_dates() {
        assert_eq!(parse_time("1970-01-01"), Some(0));
        assert_eq!(parse_time("2026-11-30"), Some(1_795_996_800_000));
        assert_eq!(parse_time("2026-11-30T12:00:00Z"), parse_time("2026-11-30").map(|d| d + 43_200_000));
        assert_eq!(parse_time("2026-11-30T13:00:00+01:00"), parse_time("2026-11-30T12:00:00Z"));
        assert_eq!(parse_time("2026-11-30T12:00:00.25Z"), parse_time("2026-11-30T12:00:00Z").map(|t| t + 250));
        assert_eq!(parse_time("2024-02-29"), Some(1_709_164_800_000));
        let noon_ns = parse_time_ns("2026-11-30T12:00:00Z").expect("a time");
        assert_eq!(parse_time_ns("2026-11-30T12:00:00.123456789Z"), Some(noon_ns + 123_456_789));
        assert_eq!(parse_time_ns("2026-11-30T12:00:00.1234567891Z"), Some(noon_ns + 123_456_789), "past ns: cut");
        assert_eq!(parse_time("2026-11-30T12:00:00.9999Z"), parse_time("2026-11-30T12:00:00.999Z"));
        for bad in [
            "",
            "99999999999999-01-01",
            "1969-12-31T23:59:59Z",
            "bf-20261130-000000-abcdef",
            "2026-13-01",
            "2025-02-29",
            "2026-11-30T25:00Z",
            "yesterday",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
