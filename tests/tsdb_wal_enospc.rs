//! A full disk: commits fail with a storage error, nothing acknowledged is
//! lost or corrupted, and commits work again once space returns.
//!
//! Runs on a 2 MiB tmpfs when this process may mount one (root, as in CI);
//! otherwise the same scenario is driven by a file-size limit (RLIMIT_FSIZE),
//! which makes writes fail with EFBIG instead of ENOSPC.

use std::path::{Path, PathBuf};

use promlite::labels;
use promlite::model::{Matcher, Sample};
use promlite::storage::{Appendable, Queryable, StorageError};
use promlite::tsdb::head::{Head, HeadOptions};
use promlite::tsdb::wal::WalOptions;

struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn try_mount(dir: &Path) -> Option<Tmpfs> {
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?
        .success();
    ok.then(|| Tmpfs(dir.to_path_buf()))
}

fn set_fsize_limit(bytes: u64) {
    // SAFETY: plain libc calls with valid arguments; SIGXFSZ is ignored so an
    // oversized write returns EFBIG instead of killing the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit { rlim_cur: bytes, rlim_max: libc::RLIM_INFINITY };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

fn all_samples(h: &Head) -> Vec<Sample> {
    let mut out = Vec::new();
    for mut s in h.select(i64::MIN, i64::MAX, &[Matcher::equal("__name__", "fill")]).unwrap() {
        s.samples.collect_into(&mut out);
    }
    out
}

#[test]
fn full_disk_fails_commits_cleanly_and_recovers() {
    let base = tempfile::tempdir().unwrap();
    let mount = if std::env::var_os("PROMLITE_TEST_NO_MOUNT").is_some() { None } else { try_mount(base.path()) };
    let dir = base.path().join("db");
    let filler = base.path().join("filler");
    let opts = HeadOptions { wal: WalOptions { segment_size: 256 << 10, fsync: true }, ..Default::default() };
    if mount.is_some() {
        std::fs::write(&filler, vec![1u8; 1200 << 10]).unwrap();
    } else {
        // Every file may grow to 300 KiB; a segment hits that limit quickly.
        set_fsize_limit(300 << 10);
    }
    let (head, _) =
        Head::open(&dir, HeadOptions { wal: WalOptions { segment_size: 1 << 30, fsync: true }, ..opts.clone() })
            .unwrap();
    let l = labels!("__name__" => "fill", "job" => "x");
    let mut acked: Vec<Sample> = Vec::new();
    let mut t = 0i64;
    let mut failure = None;
    for _ in 0..10_000 {
        let mut app = head.appender();
        let mut batch = Vec::new();
        for _ in 0..200 {
            t += 1000;
            let v = (t as f64).sqrt();
            app.append(&l, t, v).unwrap();
            batch.push(Sample::new(t, v));
        }
        match app.commit() {
            Ok(()) => acked.extend(batch),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let err = failure.expect("the disk never filled up");
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    if mount.is_some() {
        assert!(err.to_string().contains("No space left"), "{err}");
    }
    // Still serving, with every acknowledged sample.
    let got = all_samples(&head);
    assert!(got.len() >= acked.len());
    assert!(acked.iter().all(|s| got.iter().any(|g| g.bit_eq(s))));

    // Space comes back: commits work again.
    if mount.is_some() {
        std::fs::remove_file(&filler).unwrap();
    } else {
        set_fsize_limit(libc::RLIM_INFINITY);
    }
    for _ in 0..3 {
        let mut app = head.appender();
        t += 1000;
        app.append(&l, t, 1.0).unwrap();
        app.commit().expect("commit after space returned");
        acked.push(Sample::new(t, 1.0));
    }
    drop(head);
    let (head, _) = Head::open(&dir, opts).unwrap();
    let got = all_samples(&head);
    for s in &acked {
        assert!(got.iter().any(|g| g.bit_eq(s)), "lost acknowledged sample {s:?}");
    }
    drop(head);
    drop(mount);
}
