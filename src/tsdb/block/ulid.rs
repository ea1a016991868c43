//! Block identifiers: ULIDs (48-bit millisecond timestamp + 80 random bits,
//! printed as 26 Crockford base-32 characters), like Prometheus's block
//! directory names. They sort by creation time as strings and as numbers.

use std::fmt;
use std::str::FromStr;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A block's identity and directory name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub u128);

/// A string that is not a ULID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid block id {0:?}: want 26 Crockford base-32 characters")]
pub struct BlockIdError(pub String);

impl BlockId {
    /// A new id for time `now_ms` with random low bits.
    pub fn new(now_ms: u64) -> Self {
        let rand: u128 = rand::random::<u128>() & ((1u128 << 80) - 1);
        BlockId((u128::from(now_ms & ((1 << 48) - 1)) << 80) | rand)
    }

    /// A new id for the current wall-clock time.
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        BlockId::new(ms)
    }

    /// The creation time in milliseconds.
    pub fn timestamp_ms(&self) -> u64 {
        (self.0 >> 80) as u64
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        for (i, c) in out.iter_mut().enumerate() {
            let shift = 125 - 5 * i as u32;
            *c = ALPHABET[((self.0 >> shift) & 31) as usize];
        }
        // Only ASCII from ALPHABET was written.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for BlockId {
    type Err = BlockIdError;

    fn from_str(s: &str) -> Result<Self, BlockIdError> {
        let bad = || BlockIdError(s.to_string());
        if s.len() != 26 {
            return Err(bad());
        }
        let mut v: u128 = 0;
        for (i, b) in s.bytes().enumerate() {
            let d = ALPHABET.iter().position(|&a| a == b.to_ascii_uppercase()).ok_or_else(bad)? as u128;
            // The first character carries only 3 bits (128 = 26*5 - 2).
            if i == 0 && d > 7 {
                return Err(bad());
            }
            v = (v << 5) | d;
        }
        Ok(BlockId(v))
    }
}

impl serde::Serialize for BlockId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for BlockId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts_by_time() {
        let a = BlockId::new(1_700_000_000_000);
        let b = BlockId::new(1_700_000_000_001);
        assert_eq!(a.to_string().parse::<BlockId>().unwrap(), a);
        assert!(a.to_string() < b.to_string() && a < b);
        assert_eq!(a.timestamp_ms(), 1_700_000_000_000);
        assert_eq!(BlockId(0).to_string(), "00000000000000000000000000");
        assert_eq!(BlockId(u128::MAX).to_string(), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    }

    #[test]
    fn rejects_bad_strings() {
        assert!("8ZZZZZZZZZZZZZZZZZZZZZZZZZ".parse::<BlockId>().is_err());
        assert!("0000000000000000000000000U".parse::<BlockId>().is_err());
        assert!("short".parse::<BlockId>().is_err());
        assert!("01ARZ3NDEKTSV4RRFFQ69G5FAV".parse::<BlockId>().is_ok());
    }
}
