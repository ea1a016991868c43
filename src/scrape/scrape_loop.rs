//! One target's scrape loop: wait for its offset, then every interval fetch,
//! append (on a blocking thread, since commit may write the WAL), report,
//! and on stop either hand the series state over (reload) or end every
//! series with a stale marker (the target went away).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::oneshot;

use super::append::{self, AppendStats, Report, ScrapeOptions, SeriesCache};
use super::fetch::{FetchError, Fetched, Fetcher};
use super::target::{Health, ScrapeStatus, Target};
use crate::model::Labels;
use crate::storage::Appendable;

/// How a loop ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// The target is gone: write stale markers for its series and report series.
    Stale,
    /// The loop is replaced by one for the same target (config reload): keep series state.
    Handover,
}

/// What a stopped loop hands over.
#[derive(Debug, Default)]
pub struct Carry {
    /// Series of the last scrape.
    pub cache: SeriesCache,
    /// The target's series labels (for report-series staleness).
    pub labels: Labels,
    /// Timestamp of the last scrape (ms), stale markers must come after it.
    pub last_ts: i64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Nanoseconds since the Unix epoch (0 before it).
fn now_ns(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Most a scrape's time is moved back onto the interval grid, as in
/// Prometheus (`ScrapeTimestampTolerance`, 2 ms; at most 1% of the interval).
const ALIGN_TOLERANCE_NS: i64 = 2_000_000;

/// Prometheus's scrape-time alignment (`--scrape.adjust-timestamps`, on by
/// default): a scrape that starts at most the tolerance after its slot on
/// the loop's interval grid (which starts at the first scrape) is stamped
/// with the slot's time. Timer jitter then leaves the timestamps exactly
/// one interval apart, which chunks store in a bit per sample and which
/// lets `rate` share one window shape across steps. `aligned` is the
/// current slot (nanoseconds), moved on by whole intervals; returns the
/// scrape's time in milliseconds.
fn aligned_scrape_ms(started_ns: i64, aligned: &mut Option<i64>, interval_ns: i64) -> i64 {
    let slot = aligned.get_or_insert(started_ns);
    if interval_ns > 0 {
        if started_ns - *slot >= interval_ns {
            // Skipped ticks: whole intervals at once.
            *slot += (started_ns - *slot) / interval_ns * interval_ns;
        }
        let tolerance = (interval_ns / 100).min(ALIGN_TOLERANCE_NS);
        if (0..=tolerance).contains(&(started_ns - *slot)) {
            return slot.div_euclid(1_000_000);
        }
    }
    started_ns.div_euclid(1_000_000)
}

/// Everything a loop needs, shared with its pool.
#[derive(Clone)]
pub struct LoopContext {
    /// Where samples go.
    pub storage: Arc<dyn Appendable>,
    /// The pool's HTTP client, or why it could not be built.
    pub fetcher: Arc<Result<Fetcher, FetchError>>,
    /// Per-scrape settings.
    pub opts: Arc<ScrapeOptions>,
    /// Seed of the start offsets.
    pub offset_seed: u64,
}

/// Runs the loop until `stop` fires (or its sender is dropped, treated as `Stale`).
pub async fn run(target: Arc<Target>, ctx: LoopContext, carry: Carry, mut stop: oneshot::Receiver<StopMode>) -> Carry {
    let series_labels = target.series_labels();
    let mut cache = carry.cache;
    let mut last_ts = carry.last_ts;
    let offset = target.offset(SystemTime::now(), ctx.offset_seed);
    let interval = target.interval.to_std().max(std::time::Duration::from_millis(1));
    let timeout = target.timeout.to_std();
    let start = tokio::time::Instant::now() + offset;
    let interval_ns = i64::try_from(interval.as_nanos()).unwrap_or(i64::MAX);
    let mut aligned: Option<i64> = None;
    let mut ticker = tokio::time::interval_at(start, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mode = loop {
        tokio::select! {
            m = &mut stop => break m.unwrap_or(StopMode::Stale),
            _ = ticker.tick() => {}
        }
        let started = SystemTime::now();
        let clock = Instant::now();
        let fetched = match ctx.fetcher.as_ref() {
            Ok(f) => tokio::select! {
                m = &mut stop => break m.unwrap_or(StopMode::Stale),
                r = f.fetch(&target.url, timeout) => r,
            },
            Err(e) => Err(e.clone()),
        };
        let duration = clock.elapsed();
        let ts = aligned_scrape_ms(now_ns(started), &mut aligned, interval_ns).max(last_ts + 1);
        let storage = ctx.storage.clone();
        let opts = ctx.opts.clone();
        let labels = series_labels.clone();
        let job = tokio::task::spawn_blocking(move || {
            let out = process(storage.as_ref(), fetched, &labels, &opts, &mut cache, ts, duration.as_secs_f64());
            (cache, out)
        });
        let (back, (result, meta)) = match job.await {
            Ok(v) => v,
            Err(e) => {
                // The blocking task panicked or was cancelled; the series state went with it.
                tracing::error!(url = %target.url, error = %e, "scrape append task failed");
                (SeriesCache::default(), (Err(format!("internal error: {e}")), None))
            }
        };
        cache = back;
        last_ts = ts;
        let (health, last_error, samples) = match &result {
            Ok(st) => (Health::Up, String::new(), st.scraped),
            Err(e) => (Health::Down, e.clone(), 0),
        };
        target.set_status(ScrapeStatus {
            health,
            last_error,
            last_scrape: Some(started),
            last_duration: duration,
            last_samples: samples,
        });
        if let Some(m) = meta {
            target.set_metadata(m);
        }
    };
    if mode == StopMode::Stale {
        let ts = now_ms(SystemTime::now()).max(last_ts + 1);
        let storage = ctx.storage.clone();
        let labels = series_labels.clone();
        let done = tokio::task::spawn_blocking(move || {
            write_stale(storage.as_ref(), &mut cache, &labels, ts);
            cache
        })
        .await;
        return Carry { cache: done.unwrap_or_default(), labels: series_labels, last_ts: ts };
    }
    Carry { cache, labels: series_labels, last_ts }
}

/// Ends every series of `cache` and the report series of `labels` at `ts`.
pub fn write_stale(storage: &dyn Appendable, cache: &mut SeriesCache, labels: &Labels, ts: i64) {
    let mut app = storage.appender();
    append::append_stale_all(app.as_mut(), cache, ts);
    append::append_report_stale(app.as_mut(), labels, ts);
    if let Err(e) = app.commit() {
        tracing::warn!(error = %e, "writing stale markers failed");
    }
}

type Processed = (Result<AppendStats, String>, Option<BTreeMap<String, super::target::MetricMetadata>>);

/// Appends one scrape's outcome and its report series, and commits.
fn process(
    storage: &dyn Appendable,
    fetched: Result<Fetched, FetchError>,
    labels: &Labels,
    opts: &ScrapeOptions,
    cache: &mut SeriesCache,
    ts: i64,
    duration: f64,
) -> Processed {
    let mut app = storage.appender();
    let mut meta = BTreeMap::new();
    let result = match fetched {
        Ok(f) => match append::append_scrape(app.as_mut(), &f.body, f.format, labels, opts, cache, ts, &mut meta) {
            Ok(st) => Ok(st),
            Err(e) => {
                app.rollback();
                app = storage.appender();
                append::append_stale_all(app.as_mut(), cache, ts);
                Err(e.to_string())
            }
        },
        Err(e) => {
            append::append_stale_all(app.as_mut(), cache, ts);
            Err(e.to_string())
        }
    };
    let st = result.as_ref().copied().unwrap_or_default();
    let report = Report {
        up: if result.is_ok() { 1.0 } else { 0.0 },
        duration_seconds: duration,
        scraped: st.scraped as f64,
        post_relabel: st.post_relabel as f64,
        series_added: st.series_added as f64,
    };
    append::append_report(app.as_mut(), labels, ts, &report);
    let ok = result.is_ok();
    match app.commit() {
        Ok(()) => (result, ok.then_some(meta)),
        Err(e) => (Err(format!("storage commit failed: {e}")), None),
    }
}

#[cfg(test)]
mod tests {
    use super::aligned_scrape_ms;

    const MS: i64 = 1_000_000;

    #[test]
    fn scrape_times_within_the_tolerance_snap_to_the_interval_grid() {
        let interval = 15_000 * MS;
        let t0 = 1_700_000_000_123 * MS + 456_789;
        let mut slot = None;
        // The first scrape starts the grid (and keeps its own time).
        assert_eq!(aligned_scrape_ms(t0, &mut slot, interval), t0 / MS);
        // Late by up to 2 ms: the slot's time.
        assert_eq!(aligned_scrape_ms(t0 + interval + MS, &mut slot, interval), (t0 + interval) / MS);
        assert_eq!(aligned_scrape_ms(t0 + 2 * interval + 2 * MS, &mut slot, interval), (t0 + 2 * interval) / MS);
        // Later than that: its own time, and the grid stays.
        assert_eq!(
            aligned_scrape_ms(t0 + 3 * interval + 3 * MS, &mut slot, interval),
            (t0 + 3 * interval + 3 * MS) / MS
        );
        assert_eq!(aligned_scrape_ms(t0 + 4 * interval + MS / 2, &mut slot, interval), (t0 + 4 * interval) / MS);
        // Skipped ticks move the grid by whole intervals.
        assert_eq!(aligned_scrape_ms(t0 + 9 * interval + MS, &mut slot, interval), (t0 + 9 * interval) / MS);
        assert_eq!(slot, Some(t0 + 9 * interval));
    }

    #[test]
    fn short_intervals_get_one_percent_of_the_interval() {
        // 100 ms: 1 ms of tolerance, not 2.
        let interval = 100 * MS;
        let mut slot = None;
        let t0 = 5_000 * MS;
        aligned_scrape_ms(t0, &mut slot, interval);
        assert_eq!(aligned_scrape_ms(t0 + interval + MS, &mut slot, interval), 5_100);
        assert_eq!(aligned_scrape_ms(t0 + 2 * interval + MS + MS / 2, &mut slot, interval), 5_201);
    }
}
