//! Prometheus-syntax durations (`1h30m`, `15s`, `1d`) and byte sizes (`10MB`).

use std::fmt;

use serde::Deserialize;

/// A duration written in Prometheus syntax, kept in milliseconds.
///
/// Parsing follows `model.ParseDuration` from prometheus/common: units `y`
/// (365d), `w`, `d`, `h`, `m`, `s`, `ms`, each at most once and in that
/// order; `0` alone is zero. Floats are not durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

/// Why a duration or size string does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {what} string: {input:?}")]
pub struct UnitError {
    /// "duration" or "size".
    pub what: &'static str,
    /// The text.
    pub input: String,
}

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

impl Duration {
    /// Zero.
    pub const ZERO: Duration = Duration(0);

    /// From whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Duration(s * 1000)
    }

    /// Milliseconds.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// As a std duration.
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }

    /// Parses Prometheus duration syntax.
    pub fn parse(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError { what: "duration", input: s.to_string() };
        if s == "0" {
            return Ok(Duration(0));
        }
        if s.is_empty() {
            return Err(err());
        }
        let b = s.as_bytes();
        let mut pos = 0;
        let mut next_unit = 0; // index into UNITS: units must appear in order, once
        let mut total: u64 = 0;
        while pos < b.len() {
            let start = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            if pos == start {
                return Err(err());
            }
            let n: u64 = s[start..pos].parse().map_err(|_| err())?;
            let ustart = pos;
            while pos < b.len() && b[pos].is_ascii_alphabetic() {
                pos += 1;
            }
            let unit = &s[ustart..pos];
            let idx = UNITS[next_unit..].iter().position(|(u, _)| *u == unit).ok_or_else(err)? + next_unit;
            next_unit = idx + 1;
            let ms = n.checked_mul(UNITS[idx].1).ok_or_else(err)?;
            total = total.checked_add(ms).ok_or_else(err)?;
        }
        // Go durations are int64 nanoseconds; larger values overflow there.
        if total > (i64::MAX as u64) / 1_000_000 {
            return Err(err());
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    /// Formats as `model.Duration.String()`: `0s`, `1m30s`, `90d`, `2w`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (i, (unit, mult)) in UNITS.iter().enumerate() {
            // Years and weeks only when exact: "90d" reads better than "12w6d".
            if i < 2 && !ms.is_multiple_of(*mult) {
                continue;
            }
            let v = ms / mult;
            if v > 0 {
                write!(f, "{v}{unit}")?;
                ms -= v * mult;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A byte size as Prometheus writes it (`units.Base2Bytes`): `512`, `10KB`,
/// `64MiB`, `1GB`; the `B` suffixes are powers of 1024 as in Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses a size.
    pub fn parse(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError { what: "size", input: s.to_string() };
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        if split == 0 {
            return Err(err());
        }
        let n: u64 = t[..split].parse().map_err(|_| err())?;
        let mult: u64 = match &t[split..] {
            "" | "B" => 1,
            "KB" | "KiB" | "K" => 1 << 10,
            "MB" | "MiB" | "M" => 1 << 20,
            "GB" | "GiB" | "G" => 1 << 30,
            "TB" | "TiB" | "T" => 1 << 40,
            "PB" | "PiB" | "P" => 1 << 50,
            "EB" | "EiB" | "E" => 1 << 60,
            _ => return Err(err()),
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(err)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_as_prometheus() {
        let cases = [
            ("0", 0, "0s"),
            ("0s", 0, "0s"),
            ("15s", 15_000, "15s"),
            ("1m", 60_000, "1m"),
            ("1h30m", 5_400_000, "1h30m"),
            ("90m", 5_400_000, "1h30m"),
            ("1d", 86_400_000, "1d"),
            ("2w", 14 * 86_400_000, "2w"),
            ("1y", 365 * 86_400_000, "1y"),
            ("500ms", 500, "500ms"),
            ("1m500ms", 60_500, "1m500ms"),
        ];
        for (s, ms, back) in cases {
            let d = Duration::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(d.as_millis(), ms, "{s}");
            assert_eq!(d.to_string(), back, "{s}");
        }
        for bad in ["", "1", "1.5s", "s", "1x", "1s1m", "1m1m", "-1s", "1 s", "99999999999999999999y"] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn sizes_parse_base2() {
        assert_eq!(ByteSize::parse("512").ok(), Some(ByteSize(512)));
        assert_eq!(ByteSize::parse("10KB").ok(), Some(ByteSize(10 * 1024)));
        assert_eq!(ByteSize::parse("64MiB").ok(), Some(ByteSize(64 << 20)));
        assert_eq!(ByteSize::parse("1GB").ok(), Some(ByteSize(1 << 30)));
        assert!(ByteSize::parse("1.5GB").is_err());
        assert!(ByteSize::parse("GB").is_err());
        assert!(ByteSize::parse("1XB").is_err());
    }
}
