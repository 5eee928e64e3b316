//! The two date formats feeds use, to Unix milliseconds: RFC 822/2822
//! (RSS `pubDate`: `Tue, 10 Jun 2003 04:00:00 GMT`) and RFC 3339 (Atom:
//! `2003-12-13T18:30:02Z`). Anything else is no date, never an error:
//! feeds in the wild get dates wrong, and an entry without one is still an
//! entry.

/// An RFC 2822 or RFC 3339 date, in milliseconds since the Unix epoch.
pub fn parse(text: &str) -> Option<u64> {
    let text = text.trim();
    rfc3339(text).or_else(|| rfc2822(text))
}

fn rfc3339(text: &str) -> Option<u64> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date = date.splitn(3, '-');
    let (year, month, day) = (date.next()?.parse().ok()?, date.next()?.parse().ok()?, date.next()?.parse().ok()?);
    let zone_at = time.find(['Z', 'z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    let clock = clock.split('.').next()?;
    let mut parts = clock.splitn(3, ':');
    let (hour, minute) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    let second = parts.next().map_or(Some(0), |s| s.parse().ok())?;
    let offset = match zone {
        "" | "Z" | "z" => 0,
        _ => offset_minutes(zone)?,
    };
    to_ms(year, month, day, hour, minute, second, offset)
}

fn rfc2822(text: &str) -> Option<u64> {
    // The weekday is optional and says nothing the date does not.
    let text = text.split_once(',').map_or(text, |(_, rest)| rest);
    let mut words = text.split_whitespace();
    let day = words.next()?.parse().ok()?;
    let month = month(words.next()?)?;
    let year: i64 = words.next()?.parse().ok()?;
    let year = if year < 100 { year + if year < 50 { 2000 } else { 1900 } } else { year };
    let mut clock = words.next()?.splitn(3, ':');
    let (hour, minute) = (clock.next()?.parse().ok()?, clock.next()?.parse().ok()?);
    let second = clock.next().map_or(Some(0), |s| s.parse().ok())?;
    let offset = match words.next().unwrap_or("GMT") {
        "GMT" | "UT" | "UTC" | "Z" => 0,
        "EST" => -300,
        "EDT" => -240,
        "CST" => -360,
        "CDT" => -300,
        "MST" => -420,
        "MDT" => -360,
        "PST" => -480,
        "PDT" => -420,
        zone => offset_minutes(zone)?,
    };
    to_ms(year, month, day, hour, minute, second, offset)
}

/// `+hh:mm`, `+hhmm` or `-hh` as minutes east of UTC.
fn offset_minutes(zone: &str) -> Option<i64> {
    let (sign, digits) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    let (hours, minutes) = match digits.len() {
        2 => (digits.parse::<i64>().ok()?, 0),
        4 => (digits[..2].parse::<i64>().ok()?, digits[2..].parse::<i64>().ok()?),
        _ => return None,
    };
    Some(sign * (hours * 60 + minutes))
}

fn month(name: &str) -> Option<i64> {
    let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let name = name.get(..3)?.to_ascii_lowercase();
    months.iter().position(|m| *m == name).and_then(|i| i64::try_from(i + 1).ok())
}

fn to_ms(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64, offset_minutes: i64) -> Option<u64> {
    let valid = (1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60 && second <= 60;
    if !valid || year < 1970 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds).ok().map(|s| s * 1000)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn both_formats_and_their_zones() {
        assert_eq!(parse("2003-12-13T18:30:02Z"), Some(1_071_340_202_000));
        assert_eq!(parse("2003-12-13T18:30:02.25+01:00"), Some(1_071_336_602_000));
        assert_eq!(parse("Sat, 13 Dec 2003 18:30:02 GMT"), Some(1_071_340_202_000));
        assert_eq!(parse("13 Dec 2003 19:30:02 +0100"), Some(1_071_340_202_000));
        assert_eq!(parse("Sat, 13 Dec 03 13:30:02 EST"), Some(1_071_340_202_000));
        assert_eq!(parse("Sat, 13 Dec 2003 18:30 GMT"), Some(1_071_340_200_000));
        for bad in ["", "yesterday", "2003-13-01T00:00:00Z", "Sat, 31 Foo 2003 10:00:00 GMT", "1969-01-01T00:00:00Z"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
