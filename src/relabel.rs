//! Relabeling: the `relabel_configs` engine shared by scraping
//! (`relabel_configs`, `metric_relabel_configs`) and alerting
//! (`alert_relabel_configs`).
//!
//! Semantics follow Prometheus's `model/relabel/relabel.go`: source label
//! values are joined with the separator, the regex is fully anchored
//! (`^(?s:re)$`), replacements expand `$1`, `${1}`, `$name` and `${name}` as
//! Go's `Regexp.Expand` does, and a config is validated when it is loaded.

use std::fmt;

use regex::Regex;
use serde::Deserialize;

use crate::model::matcher::compile_anchored;
use crate::model::{Labels, LabelsBuilder};

/// What a relabel step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Sets `target_label` to the expanded `replacement` when the regex matches.
    Replace,
    /// Drops the target/series unless the regex matches.
    Keep,
    /// Drops the target/series when the regex matches.
    Drop,
    /// Drops unless `target_label`'s value equals the joined source values.
    KeepEqual,
    /// Drops when `target_label`'s value equals the joined source values.
    DropEqual,
    /// Sets `target_label` to `md5(joined) mod modulus`.
    HashMod,
    /// Copies every label whose name matches to the expanded replacement name.
    LabelMap,
    /// Removes every label whose name matches.
    LabelDrop,
    /// Removes every label whose name does not match.
    LabelKeep,
    /// Sets `target_label` to the lower-cased joined source values.
    Lowercase,
    /// Sets `target_label` to the upper-cased joined source values.
    Uppercase,
}

impl Action {
    /// Parses an action name, case-insensitively as Prometheus does.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    /// The configuration name of the action.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The default relabel regex as written in configs.
pub const DEFAULT_REGEX: &str = "(.*)";
/// The default separator between joined source label values.
pub const DEFAULT_SEPARATOR: &str = ";";
/// The default replacement.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// One validated relabel step.
#[derive(Clone)]
pub struct RelabelConfig {
    /// Labels whose values are joined into the input string.
    pub source_labels: Vec<String>,
    /// Separator placed between the joined values.
    pub separator: String,
    /// The pattern as written (unanchored).
    pub regex_src: String,
    regex: Regex,
    /// Modulus for `hashmod`.
    pub modulus: u64,
    /// Label written by replace/hashmod/lowercase/uppercase, or compared by keepequal/dropequal.
    pub target_label: String,
    /// Replacement template (Go `Expand` syntax).
    pub replacement: String,
    /// What to do.
    pub action: Action,
}

impl fmt::Debug for RelabelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelabelConfig")
            .field("source_labels", &self.source_labels)
            .field("separator", &self.separator)
            .field("regex", &self.regex_src)
            .field("modulus", &self.modulus)
            .field("target_label", &self.target_label)
            .field("replacement", &self.replacement)
            .field("action", &self.action)
            .finish()
    }
}

/// The relabel config as written in YAML, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelabelConfig {
    #[serde(default)]
    source_labels: Option<Vec<String>>,
    #[serde(default)]
    separator: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    modulus: Option<u64>,
    #[serde(default)]
    target_label: Option<String>,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

/// Why a relabel config is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelabelConfigError {
    /// An action name that does not exist.
    #[error("unknown relabel action {0:?}")]
    UnknownAction(String),
    /// The regex does not compile.
    #[error("invalid relabel regex {pattern:?}: {reason}")]
    BadRegex {
        /// The pattern as written.
        pattern: String,
        /// The compiler's message.
        reason: String,
    },
    /// Any other rule of Prometheus's `relabel.Config.Validate`.
    #[error("{0}")]
    Invalid(String),
}

impl<'de> Deserialize<'de> for RelabelConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawRelabelConfig::deserialize(d)?;
        RelabelConfig::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

fn is_valid_label_name(s: &str) -> bool {
    // Prometheus 3 validates names as UTF-8 by default: any non-empty string.
    !s.is_empty()
}

/// Whether `s` contains a `$` template reference (Prometheus's `varInRegexTemplate`).
fn has_template_var(s: &str) -> bool {
    s.contains('$')
}

impl RelabelConfig {
    /// Builds and validates a config from its parts; `None` means "not set".
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        action: Action,
        source_labels: Option<Vec<String>>,
        separator: Option<&str>,
        regex: Option<&str>,
        modulus: Option<u64>,
        target_label: Option<&str>,
        replacement: Option<&str>,
    ) -> Result<Self, RelabelConfigError> {
        Self::from_raw(RawRelabelConfig {
            source_labels,
            separator: separator.map(str::to_string),
            regex: regex.map(str::to_string),
            modulus,
            target_label: target_label.map(str::to_string),
            replacement: replacement.map(str::to_string),
            action: Some(action.as_str().to_string()),
        })
    }

    fn from_raw(raw: RawRelabelConfig) -> Result<Self, RelabelConfigError> {
        let action = match raw.action.as_deref() {
            None => Action::Replace,
            Some("") => return Err(RelabelConfigError::Invalid("relabel action cannot be empty".into())),
            Some(a) => Action::parse(a).ok_or_else(|| RelabelConfigError::UnknownAction(a.to_string()))?,
        };
        let regex_src = raw.regex.clone().unwrap_or_else(|| DEFAULT_REGEX.to_string());
        let regex = compile_anchored(&regex_src)
            .map_err(|e| RelabelConfigError::BadRegex { pattern: regex_src.clone(), reason: e.reason })?;
        let target_label = raw.target_label.clone().unwrap_or_default();
        let replacement = raw.replacement.clone().unwrap_or_else(|| DEFAULT_REPLACEMENT.to_string());
        let modulus = raw.modulus.unwrap_or(0);
        let inv = |m: String| Err(RelabelConfigError::Invalid(m));

        if action == Action::HashMod && modulus == 0 {
            return inv("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && target_label.is_empty() {
            return inv(format!("relabel configuration for {action} action requires 'target_label' value"));
        }
        if action == Action::Replace && !has_template_var(&target_label) && !is_valid_label_name(&target_label) {
            return inv(format!("{target_label:?} is invalid 'target_label' for {action} action"));
        }
        if matches!(action, Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual)
            && raw.replacement.as_deref().is_some_and(|r| r != DEFAULT_REPLACEMENT)
        {
            return inv(format!("'replacement' can not be set for {action} action"));
        }
        if action == Action::LabelMap && !has_template_var(&replacement) && !is_valid_label_name(&replacement) {
            return inv(format!("{replacement:?} is invalid 'replacement' for {action} action"));
        }
        if matches!(action, Action::KeepEqual | Action::DropEqual)
            && (raw.regex.as_deref().is_some_and(|r| r != DEFAULT_REGEX)
                || raw.modulus.is_some_and(|m| m != 0)
                || raw.separator.as_deref().is_some_and(|s| s != DEFAULT_SEPARATOR)
                || raw.replacement.as_deref().is_some_and(|r| r != DEFAULT_REPLACEMENT))
        {
            return inv(format!(
                "{action} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (raw.source_labels.is_some()
                || !target_label.is_empty()
                || raw.modulus.is_some_and(|m| m != 0)
                || raw.separator.as_deref().is_some_and(|s| s != DEFAULT_SEPARATOR)
                || raw.replacement.as_deref().is_some_and(|r| r != DEFAULT_REPLACEMENT))
        {
            return inv(format!("{action} action requires only 'regex', and no other fields"));
        }

        Ok(RelabelConfig {
            source_labels: raw.source_labels.unwrap_or_default(),
            separator: raw.separator.unwrap_or_else(|| DEFAULT_SEPARATOR.to_string()),
            regex_src,
            regex,
            modulus,
            target_label,
            replacement,
            action,
        })
    }

    /// The compiled, anchored regex.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }

    /// Applies this step to `lb`; `false` means the target/series is dropped.
    pub fn apply(&self, lb: &mut LabelsBuilder) -> bool {
        let val = self.joined_source(lb);
        match self.action {
            Action::Drop => {
                if self.regex.is_match(&val) {
                    return false;
                }
            }
            Action::Keep => {
                if !self.regex.is_match(&val) {
                    return false;
                }
            }
            Action::DropEqual => {
                if lb.get(&self.target_label).unwrap_or("") == val {
                    return false;
                }
            }
            Action::KeepEqual => {
                if lb.get(&self.target_label).unwrap_or("") != val {
                    return false;
                }
            }
            Action::Replace => self.replace(lb, &val),
            Action::Lowercase => {
                lb.set(&self.target_label, &val.to_lowercase());
            }
            Action::Uppercase => {
                lb.set(&self.target_label, &val.to_uppercase());
            }
            Action::HashMod => {
                let m = hashmod(val.as_bytes(), self.modulus);
                lb.set(&self.target_label, &m.to_string());
            }
            Action::LabelMap => {
                let current = lb.build();
                for l in current.iter() {
                    if let Some(caps) = self.regex.captures(l.name) {
                        let mut name = String::new();
                        expand(&self.regex, &caps, &self.replacement, &mut name);
                        lb.set(&name, l.value);
                    }
                }
            }
            Action::LabelDrop => {
                lb.retain(|n, _| !self.regex.is_match(n));
            }
            Action::LabelKeep => {
                lb.retain(|n, _| self.regex.is_match(n));
            }
        }
        true
    }

    fn joined_source(&self, lb: &LabelsBuilder) -> String {
        let mut val = String::new();
        for (i, n) in self.source_labels.iter().enumerate() {
            if i > 0 {
                val.push_str(&self.separator);
            }
            val.push_str(lb.get(n).unwrap_or(""));
        }
        val
    }

    fn replace(&self, lb: &mut LabelsBuilder, val: &str) {
        // Prometheus's fast path: with the default regex and no template
        // variables the replacement is set (or, when empty, deleted) directly.
        if val.is_empty()
            && self.regex_src == DEFAULT_REGEX
            && !has_template_var(&self.target_label)
            && !has_template_var(&self.replacement)
        {
            lb.set(&self.target_label, &self.replacement);
            return;
        }
        let Some(caps) = self.regex.captures(val) else {
            return;
        };
        let mut target = String::new();
        expand(&self.regex, &caps, &self.target_label, &mut target);
        if !is_valid_label_name(&target) {
            return;
        }
        let mut res = String::new();
        expand(&self.regex, &caps, &self.replacement, &mut res);
        if res.is_empty() {
            lb.del(&target);
        } else {
            lb.set(&target, &res);
        }
    }
}

/// Applies `cfgs` in order; `None` when a step drops the label set.
pub fn process(labels: &Labels, cfgs: &[RelabelConfig]) -> Option<Labels> {
    let mut lb = labels.to_builder();
    process_builder(&mut lb, cfgs).then(|| lb.build())
}

/// Applies `cfgs` in order to a builder; `false` when a step drops it.
pub fn process_builder(lb: &mut LabelsBuilder, cfgs: &[RelabelConfig]) -> bool {
    cfgs.iter().all(|c| c.apply(lb))
}

/// Prometheus's hashmod: the last 8 bytes of the MD5 of `val`, read
/// big-endian, modulo `modulus`.
pub fn hashmod(val: &[u8], modulus: u64) -> u64 {
    let h = md5(val);
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&h[8..]);
    u64::from_be_bytes(tail) % modulus.max(1)
}

/// Expands a Go `Regexp.Expand` template: `$$` is a literal `$`, `$name` takes
/// the longest run of letters, digits and `_` as the name (so `$1x` names group
/// "1x", not group 1), `${name}` is braced, a number refers to a group index,
/// and a malformed reference leaves the `$` as text.
pub fn expand(re: &Regex, caps: &regex::Captures<'_>, template: &str, out: &mut String) {
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        match extract_ref(rest) {
            None => out.push('$'),
            Some((name, num, after)) => {
                rest = after;
                let m = match num {
                    Some(i) => caps.get(i),
                    None => re.capture_names().position(|n| n == Some(name)).and_then(|i| caps.get(i)),
                };
                if let Some(m) = m {
                    out.push_str(m.as_str());
                }
            }
        }
    }
    out.push_str(rest);
}

/// Parses a reference after `$`: `(name, group number if numeric, rest)`.
fn extract_ref(s: &str) -> Option<(&str, Option<usize>, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body.char_indices().find(|&(_, c)| !(c.is_alphanumeric() || c == '_')).map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let rest = if brace { body[end..].strip_prefix('}')? } else { &body[end..] };
    let mut num: Option<usize> = Some(0);
    for b in name.bytes() {
        num = match num {
            Some(n) if b.is_ascii_digit() && n < 100_000_000 => Some(n * 10 + usize::from(b - b'0')),
            _ => None,
        };
    }
    if name.len() > 1 && name.starts_with('0') {
        num = None;
    }
    Some((name, num, rest))
}

/// MD5 (RFC 1321), only for `hashmod`, where Prometheus fixes the hash
/// function; it is not used for anything security-related.
pub fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14,
        20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6,
        10, 15, 21,
    ];
    let k: [u32; 64] = std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32);
    let mut a0: u32 = 0x6745_2301;
    let mut b0: u32 = 0xefcd_ab89;
    let mut c0: u32 = 0x98ba_dcfe;
    let mut d0: u32 = 0x1032_5476;

    let mut msg = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());

    for chunk in msg.chunks_exact(64) {
        let m: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes([chunk[4 * i], chunk[4 * i + 1], chunk[4 * i + 2], chunk[4 * i + 3]])
        });
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f2 = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f2.rotate_left(S[i]));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&a0.to_le_bytes());
    out[4..8].copy_from_slice(&b0.to_le_bytes());
    out[8..12].copy_from_slice(&c0.to_le_bytes());
    out[12..].copy_from_slice(&d0.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn md5_matches_rfc1321_vectors() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(&md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(hex(&md5(b"message digest")), "f96b697d7cb7938d525a2f31aaf161d0");
        assert_eq!(
            hex(&md5(b"12345678901234567890123456789012345678901234567890123456789012345678901234567890")),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn hashmod_uses_low_eight_bytes_big_endian() {
        // md5("abc") low 8 bytes: d6963f7d28e17f72.
        // Below u64::MAX, so the modulus leaves it unchanged.
        assert_eq!(hashmod(b"abc", u64::MAX), 0xd696_3f7d_28e1_7f72);
        assert_eq!(hashmod(b"abc", 1000), 0xd696_3f7d_28e1_7f72u64 % 1000);
    }

    fn cfg(yaml: &str) -> RelabelConfig {
        match serde_saphyr::from_str::<RelabelConfig>(yaml) {
            Ok(c) => c,
            Err(e) => panic!("config {yaml:?} failed: {e}"),
        }
    }

    fn cfg_err(yaml: &str) -> String {
        match serde_saphyr::from_str::<RelabelConfig>(yaml) {
            Ok(c) => panic!("config {yaml:?} should fail, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// Table: (name, configs, input, expected output or None for dropped).
    #[test]
    fn relabel_table() {
        let cases: Vec<(&str, Vec<&str>, Labels, Option<Labels>)> = vec![
            (
                "replace default copies source",
                vec!["source_labels: [a]\ntarget_label: b"],
                labels!("a" => "foo"),
                Some(labels!("a" => "foo", "b" => "foo")),
            ),
            (
                "replace with groups and separator",
                vec!["source_labels: [a, b]\nregex: '(f.*);(.*)'\ntarget_label: c\nreplacement: '${2}-$1'"],
                labels!("a" => "foo", "b" => "bar"),
                Some(labels!("a" => "foo", "b" => "bar", "c" => "bar-foo")),
            ),
            (
                "replace no match leaves labels",
                vec!["source_labels: [a]\nregex: 'x.*'\ntarget_label: b\nreplacement: y"],
                labels!("a" => "foo"),
                Some(labels!("a" => "foo")),
            ),
            (
                "replace is anchored",
                vec!["source_labels: [a]\nregex: 'o'\ntarget_label: b\nreplacement: y"],
                labels!("a" => "foo"),
                Some(labels!("a" => "foo")),
            ),
            (
                "replace empty result deletes",
                vec!["source_labels: [a]\nregex: 'foo'\ntarget_label: a\nreplacement: ''"],
                labels!("a" => "foo", "z" => "1"),
                Some(labels!("z" => "1")),
            ),
            (
                "replace fast path sets constant on missing source",
                vec!["target_label: env\nreplacement: prod"],
                labels!("a" => "foo"),
                Some(labels!("a" => "foo", "env" => "prod")),
            ),
            (
                "replace $1_suffix is a named group (Go Expand)",
                vec!["source_labels: [a]\nregex: '(.*)'\ntarget_label: b\nreplacement: '$1_x'"],
                labels!("a" => "foo"),
                Some(labels!("a" => "foo")),
            ),
            (
                "replace named group and $$",
                vec!["source_labels: [a]\nregex: '(?P<host>[^:]+):.*'\ntarget_label: b\nreplacement: '$$${host}'"],
                labels!("a" => "node1:9100"),
                Some(labels!("a" => "node1:9100", "b" => "$node1")),
            ),
            (
                "replace templated target label",
                vec!["source_labels: [a]\nregex: '(.*)=(.*)'\ntarget_label: 'k_$1'\nreplacement: '$2'"],
                labels!("a" => "zone=eu"),
                Some(labels!("a" => "zone=eu", "k_zone" => "eu")),
            ),
            (
                "keep match",
                vec!["source_labels: [a]\nregex: 'f.*'\naction: keep"],
                labels!("a" => "foo"),
                Some(labels!("a" => "foo")),
            ),
            (
                "keep no match drops",
                vec!["source_labels: [a]\nregex: 'b.*'\naction: keep"],
                labels!("a" => "foo"),
                None,
            ),
            ("drop match", vec!["source_labels: [a]\nregex: 'f.*'\naction: Drop"], labels!("a" => "foo"), None),
            (
                "drop on missing label matches empty",
                vec!["source_labels: [missing]\nregex: ''\naction: drop"],
                labels!("a" => "foo"),
                None,
            ),
            (
                "keepequal equal",
                vec!["source_labels: [a]\ntarget_label: b\naction: keepequal"],
                labels!("a" => "x", "b" => "x"),
                Some(labels!("a" => "x", "b" => "x")),
            ),
            (
                "keepequal differs",
                vec!["source_labels: [a]\ntarget_label: b\naction: keepequal"],
                labels!("a" => "x", "b" => "y"),
                None,
            ),
            (
                "dropequal equal",
                vec!["source_labels: [a]\ntarget_label: b\naction: dropequal"],
                labels!("a" => "x", "b" => "x"),
                None,
            ),
            (
                "hashmod",
                vec!["source_labels: [a]\nmodulus: 1000\ntarget_label: h\naction: hashmod"],
                labels!("a" => "abc"),
                Some(labels!("a" => "abc", "h" => &*(0xd696_3f7d_28e1_7f72u64 % 1000).to_string())),
            ),
            (
                "labelmap",
                vec!["regex: '__meta_(.+)'\naction: labelmap"],
                labels!("__meta_zone" => "eu", "a" => "1"),
                Some(labels!("__meta_zone" => "eu", "zone" => "eu", "a" => "1")),
            ),
            (
                "labelmap with replacement",
                vec!["regex: 'x_(.+)'\nreplacement: 'y_$1'\naction: labelmap"],
                labels!("x_a" => "1", "x_b" => "2"),
                Some(labels!("x_a" => "1", "x_b" => "2", "y_a" => "1", "y_b" => "2")),
            ),
            (
                "labeldrop",
                vec!["regex: 'tmp_.*'\naction: labeldrop"],
                labels!("tmp_a" => "1", "keep" => "2"),
                Some(labels!("keep" => "2")),
            ),
            (
                "labelkeep",
                vec!["regex: '__name__|job'\naction: labelkeep"],
                labels!("__name__" => "up", "job" => "j", "other" => "x"),
                Some(labels!("__name__" => "up", "job" => "j")),
            ),
            (
                "lowercase and uppercase",
                vec![
                    "source_labels: [a]\ntarget_label: l\naction: lowercase",
                    "source_labels: [a]\ntarget_label: u\naction: uppercase",
                ],
                labels!("a" => "MiXed"),
                Some(labels!("a" => "MiXed", "l" => "mixed", "u" => "MIXED")),
            ),
            (
                "chain stops at drop",
                vec!["source_labels: [a]\nregex: 'foo'\naction: drop", "target_label: never\nreplacement: x"],
                labels!("a" => "foo"),
                None,
            ),
            (
                "dot matches newline",
                vec!["source_labels: [a]\nregex: 'x.y'\naction: keep"],
                labels!("a" => "x\ny"),
                Some(labels!("a" => "x\ny")),
            ),
        ];
        for (name, yamls, input, want) in cases {
            let cfgs: Vec<RelabelConfig> = yamls.iter().map(|y| cfg(y)).collect();
            assert_eq!(process(&input, &cfgs), want, "case {name}");
        }
    }

    #[test]
    fn invalid_configs_are_rejected_with_reason() {
        let cases = [
            ("action: nope", "unknown relabel action"),
            ("action: ''", "cannot be empty"),
            ("action: hashmod\ntarget_label: a", "non-zero modulus"),
            ("source_labels: [a]", "requires 'target_label'"),
            ("source_labels: [a]\naction: lowercase", "requires 'target_label'"),
            ("source_labels: [a]\ntarget_label: b\nreplacement: x\naction: uppercase", "'replacement' can not be set"),
            ("source_labels: [a]\ntarget_label: b\nregex: x\naction: keepequal", "requires only 'source_labels'"),
            ("source_labels: [a]\nregex: x\naction: labeldrop", "requires only 'regex'"),
            ("regex: '(unclosed'\naction: keep", "invalid relabel regex"),
            ("sourcelabels: [a]", "sourcelabels"),
        ];
        for (yaml, want) in cases {
            let e = cfg_err(yaml);
            assert!(e.contains(want), "{yaml:?}: {e}");
        }
    }

    #[test]
    fn expand_follows_go_rules() {
        let re = compile_anchored("(?P<a>x)(y)").unwrap_or_else(|e| panic!("{e}"));
        let caps = re.captures("xy").unwrap_or_else(|| panic!("no match"));
        let cases = [
            ("$1", "x"),
            ("${1}", "x"),
            ("$2$1", "yx"),
            ("$a", "x"),
            ("${a}b", "xb"),
            ("$ab", ""),
            ("$$1", "$1"),
            ("$", "$"),
            ("a$-b", "a$-b"),
            ("${1", "${1"),
            ("$9", ""),
            ("$01", ""),
            ("$0", "xy"),
        ];
        for (t, want) in cases {
            let mut out = String::new();
            expand(&re, &caps, t, &mut out);
            assert_eq!(out, want, "template {t:?}");
        }
    }
}
