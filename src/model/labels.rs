//! Label sets: sorted, immutable, packed into one allocation.
//!
//! A [`Labels`] value holds its pairs sorted by name in a single boxed byte
//! buffer (the idea of Prometheus's `stringlabels` build): each pair is
//! `uvarint(len(name)) name uvarint(len(value)) value`. One allocation per
//! label set keeps the head's memory per series small. An empty value means
//! the label is absent, so pairs with empty values are never stored.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// One borrowed name/value pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label<'a> {
    /// Label name.
    pub name: &'a str,
    /// Label value (never empty inside a [`Labels`]).
    pub value: &'a str,
}

/// An immutable, sorted set of labels with unique names.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// Packed pairs; always valid UTF-8 strings between the varint lengths,
    /// because it is only built from `&str` slices or validated bytes.
    data: Box<[u8]>,
}

/// Errors from building or decoding a label set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    /// The same label name appears twice.
    #[error("duplicate label name {0:?}")]
    DuplicateName(String),
    /// Packed bytes that do not decode (truncated length or bad UTF-8).
    #[error("malformed packed label set at byte {offset}")]
    Malformed {
        /// Offset of the first byte that did not decode.
        offset: usize,
    },
}

fn put_uvarint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Bytes `put_uvarint` writes for `n`.
fn uvarint_len(n: usize) -> usize {
    (usize::BITS - (n | 1).leading_zeros()).div_ceil(7) as usize
}

/// Reads a uvarint at `*pos`; `None` when truncated or longer than 5 bytes.
fn get_uvarint(data: &[u8], pos: &mut usize) -> Option<usize> {
    let mut n: usize = 0;
    for shift in (0..35).step_by(7) {
        let b = *data.get(*pos)?;
        *pos += 1;
        n |= ((b & 0x7f) as usize) << shift;
        if b < 0x80 {
            return Some(n);
        }
    }
    None
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels::default()
    }

    /// Builds a label set from pairs in any order. Pairs with empty values are
    /// dropped; a repeated name is an error.
    pub fn try_from_pairs<N: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, LabelsError> {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            let n = n.as_ref();
            if b.get(n).is_some() {
                return Err(LabelsError::DuplicateName(n.to_string()));
            }
            b.set(n, v.as_ref());
        }
        Ok(b.build())
    }

    /// Builds a label set from pairs; a repeated name keeps the last value.
    /// For literals in code and tests, where names are known to be unique.
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n.as_ref(), v.as_ref());
        }
        b.build()
    }

    /// Packs pairs that are already sorted by name, unique and non-empty.
    fn from_sorted(pairs: &[(String, String)]) -> Self {
        let len: usize = pairs.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        let mut out = Vec::with_capacity(len);
        for (n, v) in pairs {
            put_uvarint(&mut out, n.len());
            out.extend_from_slice(n.as_bytes());
            put_uvarint(&mut out, v.len());
            out.extend_from_slice(v.as_bytes());
        }
        Labels { data: out.into_boxed_slice() }
    }

    /// Packs pairs that are already sorted by name, with unique names and
    /// non-empty values (what remote_write validation produces). Checks those
    /// properties with plain comparisons, without re-validating UTF-8 as
    /// [`Labels::from_bytes`] must. A violation is reported as
    /// [`LabelsError::Malformed`] with the pair's index as `offset`, or
    /// [`LabelsError::DuplicateName`].
    pub fn from_sorted_pairs(pairs: &[(&str, &str)]) -> Result<Self, LabelsError> {
        let mut len = 0;
        for (i, (n, v)) in pairs.iter().enumerate() {
            if v.is_empty() {
                return Err(LabelsError::Malformed { offset: i });
            }
            if i > 0 {
                match pairs[i - 1].0.cmp(n) {
                    Ordering::Less => {}
                    Ordering::Equal => return Err(LabelsError::DuplicateName(n.to_string())),
                    Ordering::Greater => return Err(LabelsError::Malformed { offset: i }),
                }
            }
            len += n.len() + v.len() + 4;
        }
        let mut out = Vec::with_capacity(len);
        for (n, v) in pairs {
            put_uvarint(&mut out, n.len());
            out.extend_from_slice(n.as_bytes());
            put_uvarint(&mut out, v.len());
            out.extend_from_slice(v.as_bytes());
        }
        Ok(Labels { data: out.into_boxed_slice() })
    }

    /// Packs pairs from a source that already keeps them sorted by name,
    /// unique and non-empty (the head's series), in one allocation of exactly
    /// the packed size: the iterator is walked twice, once to size it. Not
    /// checked (only in debug builds); any `&str` input still gives a buffer
    /// that decodes safely.
    pub fn from_sorted_trusted<'a, I>(pairs: I) -> Self
    where
        I: Iterator<Item = (&'a str, &'a str)> + Clone,
    {
        let len: usize =
            pairs.clone().map(|(n, v)| uvarint_len(n.len()) + n.len() + uvarint_len(v.len()) + v.len()).sum();
        let mut out = Vec::with_capacity(len);
        let mut prev: Option<&str> = None;
        for (n, v) in pairs {
            debug_assert!(!v.is_empty() && prev.is_none_or(|p| p < n), "unsorted or empty label {n:?}");
            prev = Some(n);
            put_uvarint(&mut out, n.len());
            out.extend_from_slice(n.as_bytes());
            put_uvarint(&mut out, v.len());
            out.extend_from_slice(v.as_bytes());
        }
        debug_assert_eq!(out.len(), len);
        Labels { data: out.into_boxed_slice() }
    }

    /// The packed encoding (see the module docs); stable, used by the WAL and index.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Decodes a packed encoding, checking lengths, UTF-8, order and uniqueness.
    pub fn from_bytes(data: &[u8]) -> Result<Self, LabelsError> {
        let mut pos = 0;
        let mut prev: Option<&str> = None;
        while pos < data.len() {
            let start = pos;
            let name = read_str(data, &mut pos).ok_or(LabelsError::Malformed { offset: start })?;
            let vstart = pos;
            let value = read_str(data, &mut pos).ok_or(LabelsError::Malformed { offset: vstart })?;
            if value.is_empty() || prev.is_some_and(|p| p >= name) {
                return Err(LabelsError::Malformed { offset: start });
            }
            prev = Some(name);
        }
        Ok(Labels { data: data.into() })
    }

    /// Iterates the pairs in name order.
    pub fn iter(&self) -> LabelsIter<'_> {
        LabelsIter { data: &self.data, pos: 0 }
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|l| l.name == name).map(|l| l.value)
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A stable 64-bit hash of the set (xxh3 of the packed bytes); safe to persist.
    pub fn stable_hash(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&self.data)
    }

    /// Heap bytes held by this set.
    pub fn heap_size(&self) -> usize {
        self.data.len()
    }

    /// A builder seeded with these labels.
    pub fn to_builder(&self) -> LabelsBuilder {
        LabelsBuilder::from_labels(self)
    }

    /// A copy without the metric name.
    pub fn without_metric_name(&self) -> Labels {
        let mut b = self.to_builder();
        b.del(METRIC_NAME);
        b.build()
    }

    /// A copy keeping only the named labels.
    pub fn keep_only(&self, names: &[impl AsRef<str>]) -> Labels {
        let mut b = LabelsBuilder::new();
        for l in self.iter() {
            if names.iter().any(|n| n.as_ref() == l.name) {
                b.set(l.name, l.value);
            }
        }
        b.build()
    }

    /// A copy without the named labels.
    pub fn drop_names(&self, names: &[impl AsRef<str>]) -> Labels {
        let mut b = self.to_builder();
        for n in names {
            b.del(n.as_ref());
        }
        b.build()
    }
}

fn read_str<'a>(data: &'a [u8], pos: &mut usize) -> Option<&'a str> {
    let len = get_uvarint(data, pos)?;
    let end = pos.checked_add(len)?;
    let s = std::str::from_utf8(data.get(*pos..end)?).ok()?;
    *pos = end;
    Some(s)
}

/// Iterator over the pairs of a [`Labels`].
pub struct LabelsIter<'a> {
    data: &'a [u8],
    pos: usize,
}

/// Reads a length-prefixed string from a buffer already known to be valid.
fn read_trusted<'a>(data: &'a [u8], pos: &mut usize) -> Option<&'a str> {
    let len = get_uvarint(data, pos)?;
    let end = pos.checked_add(len)?;
    let bytes = data.get(*pos..end)?;
    *pos = end;
    // SAFETY: a `Labels` buffer is only built by `from_sorted` (from `&str`
    // slices, lengths written by us) or accepted by `from_bytes`, which checks
    // that every string is UTF-8 at these same boundaries. Skipping the check
    // here matters: label iteration is on every query's hot path.
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = Label<'a>;

    fn next(&mut self) -> Option<Label<'a>> {
        if self.pos >= self.data.len() {
            return None;
        }
        // `?` keeps even an impossible malformed length from panicking.
        let name = read_trusted(self.data, &mut self.pos)?;
        let value = read_trusted(self.data, &mut self.pos)?;
        Some(Label { name, value })
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = Label<'a>;
    type IntoIter = LabelsIter<'a>;
    fn into_iter(self) -> LabelsIter<'a> {
        self.iter()
    }
}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.data);
    }
}

impl Ord for Labels {
    /// Pairwise by name then value, a shorter set first on a common prefix
    /// (Prometheus's `labels.Compare`).
    fn cmp(&self, other: &Self) -> Ordering {
        let mut a = self.iter();
        let mut b = other.iter();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => {
                    let c = x.name.cmp(y.name).then_with(|| x.value.cmp(y.value));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
            }
        }
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Writes `s` as a double-quoted string with Go's `%q`-style escapes for `\`, `"` and newline.
pub fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '"' => f.write_str("\\\"")?,
            '\n' => f.write_str("\\n")?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for Labels {
    /// Prometheus's series notation: `name{a="1", b="2"}`, or `{a="1"}` without a name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        if let Some(n) = name {
            f.write_str(n)?;
        }
        let mut first = true;
        for l in self.iter().filter(|l| l.name != METRIC_NAME) {
            f.write_str(if first { "{" } else { ", " })?;
            first = false;
            write!(f, "{}=", l.name)?;
            write_quoted(f, l.value)?;
        }
        if first {
            if name.is_none() {
                f.write_str("{}")?;
            }
        } else {
            f.write_str("}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Builds a [`Labels`] by setting and deleting pairs.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    /// Kept sorted by name; an empty value marks a deletion.
    pairs: Vec<(String, String)>,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        LabelsBuilder::default()
    }

    /// A builder seeded with `labels`.
    pub fn from_labels(labels: &Labels) -> Self {
        LabelsBuilder { pairs: labels.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect() }
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        match self.pairs.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => value.clone_into(&mut self.pairs[i].1),
            Err(i) => self.pairs.insert(i, (name.to_string(), value.to_string())),
        }
        self
    }

    /// Deletes `name`.
    pub fn del(&mut self, name: &str) -> &mut Self {
        if let Ok(i) = self.pairs.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            self.pairs.remove(i);
        }
        self
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) -> &mut Self {
        self.pairs.retain(|(n, v)| keep(n, v));
        self
    }

    /// The current value of `name`, if set and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.pairs[i].1.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The finished, immutable label set.
    pub fn build(&self) -> Labels {
        if self.pairs.iter().any(|(_, v)| v.is_empty()) {
            let kept: Vec<(String, String)> = self.pairs.iter().filter(|(_, v)| !v.is_empty()).cloned().collect();
            return Labels::from_sorted(&kept);
        }
        Labels::from_sorted(&self.pairs)
    }
}

/// Builds a [`Labels`] from literal pairs: `labels!("__name__" => "up", "job" => "x")`.
#[macro_export]
macro_rules! labels {
    ($($n:expr => $v:expr),* $(,)?) => {
        $crate::model::Labels::from_pairs([$(($n, $v)),*])
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_packed_round_trip() {
        let l = Labels::from_pairs([("job", "api"), ("__name__", "up"), ("a", "")]);
        let names: Vec<_> = l.iter().map(|l| l.name).collect();
        assert_eq!(names, ["__name__", "job"]);
        assert_eq!(Labels::from_bytes(l.as_bytes()).unwrap(), l);
        assert_eq!(l.to_string(), "up{job=\"api\"}");
        assert_eq!(Labels::empty().to_string(), "{}");
    }

    #[test]
    fn from_sorted_pairs_checks_order() {
        let l = Labels::from_sorted_pairs(&[("__name__", "up"), ("job", "a")]).unwrap();
        assert_eq!(l, Labels::from_pairs([("job", "a"), ("__name__", "up")]));
        assert!(Labels::from_sorted_pairs(&[("b", "1"), ("a", "1")]).is_err());
        assert!(Labels::from_sorted_pairs(&[("a", "1"), ("a", "2")]).is_err());
        assert!(Labels::from_sorted_pairs(&[("a", "")]).is_err());
    }

    #[test]
    fn from_sorted_trusted_packs_exactly() {
        let long = "v".repeat(200);
        let pairs = [("__name__", "up"), ("a", long.as_str()), ("job", "x")];
        let l = Labels::from_sorted_trusted(pairs.iter().copied());
        assert_eq!(l, Labels::from_pairs(pairs));
        // Two-byte varint for the 200-byte value.
        assert_eq!(l.as_bytes().len(), (1 + 8 + 1 + 2) + (1 + 1 + 2 + 200) + (1 + 3 + 1 + 1));
        assert!(Labels::from_sorted_trusted(std::iter::empty()).is_empty());
        for n in [0, 1, 127, 128, 16383, 16384, 1 << 21, usize::MAX] {
            let mut v = Vec::new();
            put_uvarint(&mut v, n);
            assert_eq!(uvarint_len(n), v.len(), "{n}");
        }
    }

    #[test]
    fn duplicate_names_rejected() {
        let e = Labels::try_from_pairs([("a", "1"), ("a", "2")]).unwrap_err();
        assert_eq!(e, LabelsError::DuplicateName("a".into()));
    }

    #[test]
    fn malformed_bytes_rejected() {
        assert!(Labels::from_bytes(&[5, b'a']).is_err());
        assert!(Labels::from_bytes(&[1, b'b', 1, b'x', 1, b'a', 1, b'y']).is_err());
    }

    #[test]
    fn ordering_matches_prometheus_compare() {
        let a = Labels::from_pairs([("a", "1")]);
        let ab = Labels::from_pairs([("a", "1"), ("b", "1")]);
        let a2 = Labels::from_pairs([("a", "2")]);
        assert!(a < ab && ab < a2);
    }

    #[test]
    fn display_escapes_values() {
        let l = Labels::from_pairs([("a", "x\"y\\z\n")]);
        assert_eq!(l.to_string(), r#"{a="x\"y\\z\n"}"#);
    }
}
