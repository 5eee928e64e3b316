//! Unix milliseconds as calendar text, by Howard Hinnant's days-to-civil
//! algorithm, to avoid a date crate for two formats.

/// `(year, month, day, hour, minute, second, millisecond)` in UTC.
fn civil(ms: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60, ms.rem_euclid(1000))
}

/// `YYYY-MM-DD HH:MM:SS UTC`, for people.
pub fn utc(ms: i64) -> String {
    let (year, month, day, hour, minute, second, _) = civil(ms);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}

/// RFC 3339 with milliseconds, `YYYY-MM-DDTHH:MM:SS.mmmZ`, for machines.
pub fn rfc3339(ms: i64) -> String {
    let (year, month, day, hour, minute, second, millis) = civil(ms);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_known_instants() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_614_265_330_000), "2021-02-25 15:02:10 UTC");
        assert_eq!(super::utc(951_825_600_000), "2000-02-29 12:00:00 UTC");
        assert_eq!(super::rfc3339(951_825_600_007), "2000-02-29T12:00:00.007Z");
    }
}
