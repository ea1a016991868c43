//! Go `time.Time` printing for template values (always UTC, as Prometheus
//! converts with `.UTC()`): `Time.String()` and `Time.Format(layout)`.

use chrono::{DateTime, Datelike, Timelike, Utc};

fn to_dt(ms: i64) -> DateTime<Utc> {
    // Out-of-range instants fall back to the epoch; Prometheus's inputs are
    // limited to int64 nanoseconds, which chrono covers.
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

/// Go's `Time.String()` for a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`
/// (the fraction without trailing zeros, omitted when zero).
pub(crate) fn time_string(ms: i64) -> String {
    let dt = to_dt(ms);
    let mut s = dt.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = dt.nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Go's `Time.Format(layout)` for a UTC time, with the reference-time tokens
/// of Go's `time/format.go` (`2006 01 02 15 04 05 Jan Mon MST -0700 Z07:00 .000` ...).
pub(crate) fn format(ms: i64, layout: &str) -> String {
    let dt = to_dt(ms);
    let mut out = String::new();
    let mut rest = layout;
    // Longest tokens first, so that "January" wins over "Jan" and "2006" over "2".
    const TOKENS: [&str; 34] = [
        "January",
        "Monday",
        "-07:00:00",
        "Z07:00:00",
        "-0700",
        "-07:00",
        "Z0700",
        "Z07:00",
        "2006",
        "Jan",
        "Mon",
        "MST",
        "-07",
        "Z07",
        "002",
        "__2",
        "_2",
        "01",
        "02",
        "03",
        "04",
        "05",
        "06",
        "15",
        "PM",
        "pm",
        "1",
        "2",
        "3",
        "4",
        "5",
        ".000",
        ".999",
        ",000",
    ];
    while !rest.is_empty() {
        // Fractions: .0+ / .9+ / ,0+ / ,9+ of any length.
        if let Some(n) = frac_len(rest) {
            let digits = format!("{:09}", dt.nanosecond());
            let sep = &rest[..1];
            let nines = rest.as_bytes()[1] == b'9';
            let take = &digits[..n.min(9)];
            if nines {
                let t = take.trim_end_matches('0');
                if !t.is_empty() {
                    out.push_str(sep);
                    out.push_str(t);
                }
            } else {
                out.push_str(sep);
                out.push_str(take);
            }
            rest = &rest[1 + n..];
            continue;
        }
        let Some(tok) = TOKENS.iter().find(|t| rest.starts_with(**t) && !t.starts_with(['.', ','])) else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        let s = match *tok {
            "January" => MONTHS[dt.month0() as usize].to_string(),
            "Jan" => MONTHS[dt.month0() as usize][..3].to_string(),
            "Monday" => DAYS[dt.weekday().num_days_from_sunday() as usize].to_string(),
            "Mon" => DAYS[dt.weekday().num_days_from_sunday() as usize][..3].to_string(),
            "MST" => "UTC".to_string(),
            "-07:00:00" => "+00:00:00".to_string(),
            "-0700" => "+0000".to_string(),
            "-07:00" => "+00:00".to_string(),
            "-07" => "+00".to_string(),
            "Z07:00:00" | "Z0700" | "Z07:00" | "Z07" => "Z".to_string(),
            "2006" => format!("{:04}", dt.year()),
            "06" => format!("{:02}", dt.year().rem_euclid(100)),
            "01" => format!("{:02}", dt.month()),
            "1" => dt.month().to_string(),
            "02" => format!("{:02}", dt.day()),
            "2" => dt.day().to_string(),
            "_2" => format!("{:>2}", dt.day()),
            "002" => format!("{:03}", dt.ordinal()),
            "__2" => format!("{:>3}", dt.ordinal()),
            "15" => format!("{:02}", dt.hour()),
            "03" => format!("{:02}", dt.hour12().1),
            "3" => dt.hour12().1.to_string(),
            "04" => format!("{:02}", dt.minute()),
            "4" => dt.minute().to_string(),
            "05" => format!("{:02}", dt.second()),
            "5" => dt.second().to_string(),
            "PM" => if dt.hour() >= 12 { "PM" } else { "AM" }.to_string(),
            "pm" => if dt.hour() >= 12 { "pm" } else { "am" }.to_string(),
            other => other.to_string(),
        };
        out.push_str(&s);
        rest = &rest[tok.len()..];
    }
    out
}

/// Length of a fractional-seconds run (`.000`, `.999`, `,000`) at the start, not followed by a digit.
fn frac_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.len() < 2 || !(b[0] == b'.' || b[0] == b',') || !(b[1] == b'0' || b[1] == b'9') {
        return None;
    }
    let d = b[1];
    let n = b[1..].iter().take_while(|&&c| c == d).count();
    if b.get(1 + n).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_like_go() {
        assert_eq!(time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(time_string(1_435_065_584_128), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(time_string(1_500), "1970-01-01 00:00:01.5 +0000 UTC");
    }

    #[test]
    fn layouts() {
        let t = 1_435_065_584_128; // 2015-06-23 13:19:44.128 UTC, a Tuesday
        assert_eq!(format(t, "2006-01-02T15:04:05Z07:00"), "2015-06-23T13:19:44Z");
        assert_eq!(format(t, "Mon Jan _2 3:04PM"), "Tue Jun 23 1:19PM");
        assert_eq!(format(t, "15:04:05.000"), "13:19:44.128");
        assert_eq!(format(t, "January 2, 2006 MST"), "June 23, 2015 UTC");
    }
}
