//! Target discovery: `static_configs` and `file_sd_configs`.
//!
//! File SD follows Prometheus's `discovery/file`: each file is a JSON or YAML
//! list of `{targets: [...], labels: {...}}`; every target gets
//! `__meta_filepath`; a file that fails to read or parse keeps the targets it
//! had before (the error is kept for the log). Files are re-read when their
//! modification time or size changes (polled) and every `refresh_interval`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::Deserialize;

use super::target::{TargetGroup, ADDRESS_LABEL};
use crate::config::{FileSdConfig, StaticConfig};
use crate::model::Labels;

/// The label file SD adds with the file a target came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// One group in a file SD file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Why a file SD file was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("file_sd {path}: {message}")]
pub struct FileSdError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Parses one file SD file's content (`.json` as JSON, anything else as YAML).
pub fn parse_file(path: &Path, content: &str) -> Result<Vec<TargetGroup>, FileSdError> {
    let p = path.display().to_string();
    let fail = |message: String| FileSdError { path: p.clone(), message };
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let groups: Vec<FileGroup> = if is_json {
        serde_json::from_str(content).map_err(|e| fail(e.to_string()))?
    } else if content.trim().is_empty() {
        Vec::new()
    } else {
        serde_saphyr::from_str(content).map_err(|e| fail(e.without_snippet().to_string()))?
    };
    let mut out = Vec::with_capacity(groups.len());
    for (i, g) in groups.into_iter().enumerate() {
        for t in &g.targets {
            if t.contains('/') {
                return Err(fail(format!("{t:?} is not a valid hostname")));
            }
        }
        let mut labels = g.labels;
        labels.insert(FILEPATH_LABEL.to_string(), p.clone());
        out.push(TargetGroup {
            source: format!("{p}:{i}"),
            targets: g.targets.iter().map(|t| Labels::from_pairs([(ADDRESS_LABEL, t.as_str())])).collect(),
            labels: Labels::from_pairs(labels.iter()),
        });
    }
    Ok(out)
}

#[derive(Debug)]
struct FileState {
    stamp: Option<(SystemTime, u64)>,
    groups: Vec<TargetGroup>,
}

/// Watches the files of one `file_sd_configs` entry.
#[derive(Debug)]
pub struct FileSd {
    config: FileSdConfig,
    files: BTreeMap<PathBuf, FileState>,
    last_full_read: Option<Instant>,
    /// Errors of the last refresh (file kept its previous targets).
    pub errors: Vec<FileSdError>,
}

impl FileSd {
    /// A watcher for `config` (its paths already resolved against the config dir).
    pub fn new(config: FileSdConfig) -> Self {
        FileSd { config, files: BTreeMap::new(), last_full_read: None, errors: Vec::new() }
    }

    /// Re-expands the globs and re-reads files that changed (or all of them
    /// when the refresh interval passed). Returns whether any group changed.
    pub fn refresh(&mut self, now: Instant) -> bool {
        self.errors.clear();
        let full = self.last_full_read.is_none_or(|t| now.duration_since(t) >= self.config.refresh_interval.to_std());
        if full {
            self.last_full_read = Some(now);
        }
        let mut seen = Vec::new();
        for pattern in &self.config.files {
            match glob::glob(pattern) {
                Ok(paths) => seen.extend(paths.flatten()),
                Err(e) => self.errors.push(FileSdError { path: pattern.clone(), message: e.to_string() }),
            }
        }
        seen.sort();
        seen.dedup();
        let mut changed = false;
        let before = self.files.len();
        self.files.retain(|p, _| seen.contains(p));
        changed |= self.files.len() != before;
        for path in seen {
            let stamp =
                std::fs::metadata(&path).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            let known = self.files.get(&path);
            if !full && known.is_some_and(|f| f.stamp == stamp && stamp.is_some()) {
                continue;
            }
            let read = std::fs::read_to_string(&path)
                .map_err(|e| FileSdError { path: path.display().to_string(), message: e.to_string() })
                .and_then(|c| parse_file(&path, &c));
            match read {
                Ok(groups) => {
                    if known.is_none_or(|f| f.groups != groups) {
                        changed = true;
                    }
                    self.files.insert(path, FileState { stamp, groups });
                }
                Err(e) => {
                    // Keep what the file had before (Prometheus does the same).
                    self.errors.push(e);
                }
            }
        }
        changed
    }

    /// Every group from every file.
    pub fn groups(&self) -> impl Iterator<Item = &TargetGroup> {
        self.files.values().flat_map(|f| f.groups.iter())
    }
}

/// The groups of a job's `static_configs`.
pub fn static_groups(job: &str, cfgs: &[StaticConfig]) -> Vec<TargetGroup> {
    cfgs.iter().enumerate().map(|(i, c)| TargetGroup::from_static(format!("{job}/static/{i}"), c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Duration;
    use crate::labels;

    #[test]
    fn parses_json_and_yaml_files() {
        let g = parse_file(Path::new("/sd/a.json"), r#"[{"targets":["h1:1","h2:2"],"labels":{"env":"prod"}}]"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].targets, vec![labels!("__address__" => "h1:1"), labels!("__address__" => "h2:2")]);
        assert_eq!(g[0].labels, labels!("__meta_filepath" => "/sd/a.json", "env" => "prod"));
        let y = parse_file(Path::new("/sd/b.yml"), "- targets: ['h3:3']\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(y[0].targets, vec![labels!("__address__" => "h3:3")]);
        let e = parse_file(Path::new("/sd/c.yml"), "- target: ['x:1']\n").err();
        assert!(e.is_some_and(|e| e.message.contains("target")));
    }

    #[test]
    fn refresh_rereads_changed_files_and_keeps_old_on_error() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let f = dir.path().join("t.json");
        std::fs::write(&f, r#"[{"targets":["a:1"]}]"#).unwrap_or_else(|e| panic!("{e}"));
        let mut sd = FileSd::new(FileSdConfig {
            files: vec![dir.path().join("*.json").display().to_string()],
            refresh_interval: Duration::from_secs(300),
        });
        let t0 = Instant::now();
        assert!(sd.refresh(t0));
        assert_eq!(sd.groups().count(), 1);
        assert!(!sd.refresh(t0), "unchanged file is not re-read");
        std::fs::write(&f, r#"[{"targets":["a:1","b:2"]}]"#).unwrap_or_else(|e| panic!("{e}"));
        assert!(sd.refresh(t0));
        assert_eq!(sd.groups().next().map(|g| g.targets.len()), Some(2));
        std::fs::write(&f, "not json at all, longer").unwrap_or_else(|e| panic!("{e}"));
        assert!(!sd.refresh(t0));
        assert_eq!(sd.errors.len(), 1);
        assert_eq!(sd.groups().next().map(|g| g.targets.len()), Some(2), "old targets kept");
        std::fs::remove_file(&f).unwrap_or_else(|e| panic!("{e}"));
        assert!(sd.refresh(t0));
        assert_eq!(sd.groups().count(), 0);
    }
}
