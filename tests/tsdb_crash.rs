//! Crash safety: a child process appends continuously and prints every
//! acknowledged batch; the test kills it with SIGKILL at random moments,
//! reopens the head and checks that every acknowledged sample is there, bit
//! for bit. The child is this same test binary, re-run with an env var.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use promlite::labels;
use promlite::model::{Labels, Matcher, Sample, STALE_NAN};
use promlite::storage::{Appendable, Queryable};
use promlite::tsdb::head::{Head, HeadOptions};
use promlite::tsdb::wal::WalOptions;
use rand::Rng;

const CHILD_ENV: &str = "PROMLITE_CRASH_CHILD_DIR";
const SERIES: u64 = 8;

fn opts() -> HeadOptions {
    HeadOptions {
        wal: WalOptions { segment_size: 64 << 10, fsync: true },
        chunk_file_size: 8 << 10,
        chunk_range: 60_000,
        ..Default::default()
    }
}

fn series_labels(s: u64) -> Labels {
    labels!("__name__" => "crash", "s" => s.to_string().as_str())
}

/// The value of series `s` in batch `b`; covers the special bit patterns.
fn value(b: u64, s: u64) -> f64 {
    match (b + s) % 9 {
        0 => f64::from_bits(0x7ff8_0000_0000_0000 | (b & 0xffff)),
        1 => STALE_NAN,
        2 => -0.0,
        3 => f64::INFINITY,
        4 => f64::NEG_INFINITY,
        _ => (b * 31 + s) as f64 * 0.25,
    }
}

fn batch_time(b: u64) -> i64 {
    b as i64 * 1000
}

/// Child: append batches forever, printing `ACK <b>` after each commit.
fn child(dir: &Path) -> ! {
    let (head, _) = match Head::open(dir, opts()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("child: open failed: {e}");
            std::process::exit(3);
        }
    };
    let start = if head.max_time() == i64::MIN { 1 } else { head.max_time() as u64 / 1000 + 1 };
    let mut b = start;
    loop {
        let mut app = head.appender();
        for s in 0..SERIES {
            if let Err(e) = app.append(&series_labels(s), batch_time(b), value(b, s)) {
                eprintln!("child: append failed: {e}");
                std::process::exit(4);
            }
        }
        if let Err(e) = app.commit() {
            eprintln!("child: commit failed: {e}");
            std::process::exit(5);
        }
        println!("ACK {b}");
        if b % 150 == 0 {
            // Exercise truncation and WAL checkpoints under crashes too. The
            // announcement comes first: a kill during truncation may already
            // have dropped data below the cut, which truncation is allowed to do
            // (the Db calls it only after that range is in a block).
            println!("TRUNC {}", batch_time(b.saturating_sub(100)));
            if let Err(e) = head.truncate(batch_time(b.saturating_sub(100))) {
                eprintln!("child: truncate failed: {e}");
                std::process::exit(6);
            }
        }
        b += 1;
    }
}

fn check(dir: &Path, acked: u64, truncated_below: i64) -> u64 {
    let (head, _) = Head::open(dir, opts()).expect("reopen after kill");
    let min_valid = head.min_valid_time().max(truncated_below);
    let mut found = 0;
    for s in 0..SERIES {
        let m = [Matcher::equal("__name__", "crash"), Matcher::equal("s", s.to_string())];
        let mut got = Vec::new();
        for mut series in head.select(i64::MIN, i64::MAX, &m).unwrap() {
            series.samples.collect_into(&mut got);
        }
        for b in 1..=acked {
            let t = batch_time(b);
            if t < min_valid {
                continue;
            }
            let want = Sample::new(t, value(b, s));
            let hit = got.iter().find(|g| g.t == t);
            assert!(
                hit.is_some_and(|g| g.bit_eq(&want)),
                "series {s} batch {b}: want {want:?}, got {hit:?} (acked up to {acked})"
            );
            found += 1;
        }
        // Anything beyond the acknowledged batches must still be exact.
        for g in &got {
            let b = (g.t / 1000) as u64;
            assert!(g.bit_eq(&Sample::new(batch_time(b), value(b, s))), "unexpected sample {g:?}");
        }
    }
    found
}

#[test]
fn acknowledged_samples_survive_sigkill() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rng();
    let mut acked = 0u64;
    let mut truncated_below = i64::MIN;
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < 6 {
        let mut child = Command::new(&exe)
            .args(["--exact", "acknowledged_samples_survive_sigkill", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            let mut trunc = i64::MIN;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ACK ").and_then(|n| n.parse::<u64>().ok()) {
                    last = Some(n);
                }
                if let Some(t) = line.strip_prefix("TRUNC ").and_then(|n| n.parse::<i64>().ok()) {
                    trunc = trunc.max(t);
                }
            }
            (last, trunc)
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(150..700)));
        // SIGKILL: no destructors, no flushing.
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(status.code().is_none(), "child exited on its own: {status:?}");
        let (last, trunc) = reader.join().unwrap();
        if let Some(n) = last {
            assert!(n >= acked, "acks went backwards");
            acked = n;
        }
        truncated_below = truncated_below.max(trunc);
        let checked = check(dir.path(), acked, truncated_below);
        assert!(acked == 0 || checked > 0);
        rounds += 1;
    }
    eprintln!("crash test: {rounds} kills, {acked} batches acknowledged");
    assert!(acked > 100, "the child acknowledged only {acked} batches");
    assert!(started.elapsed() < Duration::from_secs(60));
}
