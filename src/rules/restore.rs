//! Alert state across restarts.
//!
//! promlite keeps a state file per group in `<data dir>/rules/`, rewritten
//! after evaluations while the group holds alerts. At start, a group's first
//! evaluation adopts the saved alerts before running the state machine, so:
//! * a firing alert is firing at the first evaluation, with its original
//!   `activeAt`, whatever its `for` (Prometheus restores only alerts whose `for`
//!   exceeds its 10-minute grace period, its issue #15175; we do not copy that);
//! * a pending alert keeps its `activeAt` and fires when it would have;
//! * a saved alert whose condition no longer holds at the first evaluation is
//!   resolved by the state machine (and the resolve is sent);
//! * when the gap since the state was saved is longer than `max_gap` (by
//!   default the 5-minute lookback: beyond it the rule's series went stale, so
//!   its condition cannot have held throughout), nothing is restored and the
//!   rule is evaluated from scratch. Each case is logged.
//!
//! File layout (version 1): one header line
//! `promlite-rules-state 1 <crc32c of the body, 8 hex digits>\n`, then the
//! body, a JSON document ([`SavedGroup`]). Writes go to a temporary file that
//! is renamed over the old one, so a crash leaves the old or the new file,
//! never a torn one; the checksum catches anything else, and a file that
//! fails it is ignored with a warning.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::Labels;

use super::alerting::{ActiveAlert, AlertState, AlertingRule};
use super::group::{Group, Rule};

const MAGIC: &str = "promlite-rules-state";
const VERSION: u32 = 1;

/// A group's saved alert state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedGroup {
    /// The group's file.
    pub file: String,
    /// The group's name.
    pub group: String,
    /// Evaluation timestamp the state belongs to (ms).
    pub saved_at_ms: i64,
    /// Alerting rules with alerts.
    pub rules: Vec<SavedRule>,
}

/// One alerting rule's saved alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRule {
    /// `alert` name.
    pub name: String,
    /// Expression text (state is only restored into the same expression).
    pub expr: String,
    /// Alerts.
    pub alerts: Vec<SavedAlert>,
}

/// One saved alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedAlert {
    /// Alert labels as pairs.
    pub labels: Vec<(String, String)>,
    /// Annotations as pairs.
    pub annotations: Vec<(String, String)>,
    /// `inactive`, `pending` or `firing`.
    pub state: String,
    /// Last value.
    pub value: f64,
    /// activeAt, ms.
    pub active_at: i64,
    /// firedAt, ms.
    pub fired_at: Option<i64>,
    /// resolvedAt, ms.
    pub resolved_at: Option<i64>,
    /// Last notification, ms.
    pub last_sent_at: Option<i64>,
    /// endsAt of the last notification, ms.
    pub valid_until: i64,
    /// keep_firing_for clock, ms.
    pub keep_firing_since: Option<i64>,
}

/// What happened to one saved alert at the first evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// Adopted with this saved state (the state machine then runs as usual).
    Restored(AlertState),
    /// Not adopted: the outage was longer than the rule's data could cover.
    GapTooLong {
        /// How long the gap was, ms.
        gap_ms: i64,
    },
}

/// Errors reading or writing a state file.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// I/O on a state file.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Not a state file of a version we know.
    #[error("bad header: {0}")]
    Header(String),
    /// Checksum mismatch.
    #[error("checksum mismatch: got {got:08x}, expected {expected:08x}")]
    Checksum {
        /// Computed.
        got: u32,
        /// Stored.
        expected: u32,
    },
    /// The body does not decode.
    #[error("body: {0}")]
    Body(String),
}

fn state_from(s: &str) -> AlertState {
    match s {
        "firing" => AlertState::Firing,
        "pending" => AlertState::Pending,
        _ => AlertState::Inactive,
    }
}

fn pairs(l: &Labels) -> Vec<(String, String)> {
    l.iter().map(|l| (l.name.to_string(), l.value.to_string())).collect()
}

fn saved_alert(a: &ActiveAlert) -> SavedAlert {
    SavedAlert {
        labels: pairs(&a.labels),
        annotations: pairs(&a.annotations),
        state: a.state.as_str().to_string(),
        value: a.value,
        active_at: a.active_at,
        fired_at: a.fired_at,
        resolved_at: a.resolved_at,
        last_sent_at: a.last_sent_at,
        valid_until: a.valid_until,
        keep_firing_since: a.keep_firing_since,
    }
}

/// The state worth saving for `g`: every alert of every alerting rule.
pub fn save(g: &Group) -> SavedGroup {
    let mut rules = Vec::new();
    for slot in &g.rules {
        if let Rule::Alerting(ar) = &slot.rule {
            if ar.active.is_empty() {
                continue;
            }
            let mut alerts: Vec<SavedAlert> = ar.active.values().map(saved_alert).collect();
            alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
            rules.push(SavedRule { name: ar.spec.name.clone(), expr: ar.spec.expr.text.clone(), alerts });
        }
    }
    SavedGroup { file: g.file.clone(), group: g.name.clone(), saved_at_ms: g.last_eval_ms, rules }
}

/// Adopts `saved` alerts into `rule` before its first evaluation at `ts`,
/// unless the gap since they were saved exceeds `max_gap_ms`.
pub fn apply(rule: &mut AlertingRule, saved: &SavedGroup, ts: i64, max_gap_ms: i64) -> Vec<(Labels, RestoreOutcome)> {
    let Some(sr) = saved.rules.iter().find(|r| r.name == rule.spec.name && r.expr == rule.spec.expr.text) else {
        return Vec::new();
    };
    let gap = ts - saved.saved_at_ms;
    let mut out = Vec::new();
    for a in &sr.alerts {
        let labels = Labels::from_pairs(a.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let state = state_from(&a.state);
        if gap > max_gap_ms {
            if state != AlertState::Inactive {
                out.push((labels, RestoreOutcome::GapTooLong { gap_ms: gap }));
            }
            continue;
        }
        rule.active.insert(
            labels.clone(),
            ActiveAlert {
                labels: labels.clone(),
                annotations: Labels::from_pairs(a.annotations.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
                state,
                value: a.value,
                active_at: a.active_at,
                fired_at: a.fired_at,
                resolved_at: a.resolved_at,
                last_sent_at: a.last_sent_at,
                valid_until: a.valid_until,
                keep_firing_since: a.keep_firing_since,
            },
        );
        out.push((labels, RestoreOutcome::Restored(state)));
    }
    out
}

/// Encodes a state file (pure).
pub fn encode(s: &SavedGroup) -> Vec<u8> {
    // Serializing plain data with string keys cannot fail.
    let body = serde_json::to_vec(s).unwrap_or_default();
    let mut out = format!("{MAGIC} {VERSION} {:08x}\n", crc32c::crc32c(&body)).into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Decodes a state file (pure), checking header, version and checksum.
pub fn decode(data: &[u8]) -> Result<SavedGroup, RestoreError> {
    let nl = data.iter().position(|&b| b == b'\n').ok_or_else(|| RestoreError::Header("no header line".into()))?;
    let header = std::str::from_utf8(&data[..nl]).map_err(|_| RestoreError::Header("not UTF-8".into()))?;
    let mut parts = header.split(' ');
    if parts.next() != Some(MAGIC) {
        return Err(RestoreError::Header(format!("unknown magic in {header:?}")));
    }
    match parts.next().and_then(|v| v.parse::<u32>().ok()) {
        Some(VERSION) => {}
        other => return Err(RestoreError::Header(format!("unsupported version {other:?}"))),
    }
    let expected = parts
        .next()
        .and_then(|c| u32::from_str_radix(c, 16).ok())
        .ok_or_else(|| RestoreError::Header("missing checksum".into()))?;
    let body = &data[nl + 1..];
    let got = crc32c::crc32c(body);
    if got != expected {
        return Err(RestoreError::Checksum { got, expected });
    }
    serde_json::from_slice(body).map_err(|e| RestoreError::Body(e.to_string()))
}

/// Where group state files live, and their I/O.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// A store in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateStore { dir: dir.into() }
    }

    /// The file for group `name` of rule file `file`.
    pub fn path_for(&self, file: &str, name: &str) -> PathBuf {
        let mut key = Vec::with_capacity(file.len() + name.len() + 1);
        key.extend_from_slice(file.as_bytes());
        key.push(0xff);
        key.extend_from_slice(name.as_bytes());
        self.dir.join(format!("{:016x}.state", xxhash_rust::xxh3::xxh3_64(&key)))
    }

    /// The saved state of a group, if any. A damaged file is reported as an
    /// error; callers log it and start without restoring.
    pub fn load(&self, file: &str, name: &str) -> Result<Option<SavedGroup>, RestoreError> {
        let path = self.path_for(file, name);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RestoreError::Io { op: "read", path: path.display().to_string(), source: e }),
        };
        let s = decode(&data)?;
        // Two groups could hash alike only by accident; never restore a stranger's state.
        Ok((s.file == file && s.group == name).then_some(s))
    }

    /// Writes a group's state atomically (temp file, optional fsync, rename).
    pub fn store(&self, s: &SavedGroup, fsync: bool) -> Result<(), RestoreError> {
        let io = |op: &'static str, p: &Path| {
            let path = p.display().to_string();
            move |source| RestoreError::Io { op, path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let path = self.path_for(&s.file, &s.group);
        let tmp = path.with_extension("state.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&encode(s)).map_err(io("write", &tmp))?;
        if fsync {
            f.sync_all().map_err(io("fsync", &tmp))?;
        }
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        if fsync {
            if let Ok(d) = std::fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Removes a group's state (group deleted from the configuration).
    pub fn remove(&self, file: &str, name: &str) {
        let _ = std::fs::remove_file(self.path_for(file, name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SavedGroup {
        SavedGroup {
            file: "r.yml".into(),
            group: "g".into(),
            saved_at_ms: 1000,
            rules: vec![SavedRule {
                name: "A".into(),
                expr: "up == 0".into(),
                alerts: vec![SavedAlert {
                    labels: vec![("alertname".into(), "A".into())],
                    annotations: vec![],
                    state: "firing".into(),
                    value: 1.5,
                    active_at: 10,
                    fired_at: Some(20),
                    resolved_at: None,
                    last_sent_at: Some(20),
                    valid_until: 500,
                    keep_firing_since: None,
                }],
            }],
        }
    }

    #[test]
    fn codec_round_trip_and_corruption_detected() {
        let s = sample();
        let bytes = encode(&s);
        assert_eq!(decode(&bytes).unwrap(), s);
        let mut bad = bytes.clone();
        let last = bad.len() - 2;
        bad[last] ^= 1;
        assert!(matches!(decode(&bad), Err(RestoreError::Checksum { .. })));
        assert!(matches!(decode(b"other 1 0\n{}"), Err(RestoreError::Header(_))));
        assert!(matches!(decode(&bytes[..10]), Err(RestoreError::Header(_))));
    }

    #[test]
    fn store_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let st = StateStore::new(dir.path().join("rules"));
        assert!(st.load("r.yml", "g").unwrap().is_none());
        st.store(&sample(), true).unwrap();
        assert_eq!(st.load("r.yml", "g").unwrap(), Some(sample()));
        assert!(st.load("r.yml", "other").unwrap().is_none());
        st.remove("r.yml", "g");
        assert!(st.load("r.yml", "g").unwrap().is_none());
    }
}
