//! Progress of every long command: training and evaluation passes, calibration, and the counts of
//! `predict` and `variant`. In a terminal, indicatif bars (with a total and an ETA where the total is
//! known); when stderr is not a terminal (a log file, a batch job), a plain line at a fixed interval
//! (`--progress-interval`, 30 s by default) with done/total, rate and ETA; nothing when disabled.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Seconds between two plain progress lines unless `--progress-interval` says otherwise.
pub const DEFAULT_INTERVAL_S: f64 = 30.0;

/// The interval of plain progress lines in milliseconds (0: the default), set once by the command line.
static INTERVAL_MS: AtomicU64 = AtomicU64::new(0);

/// Sets the interval between plain progress lines (`--progress-interval`) for the whole process.
pub fn set_interval(seconds: f64) {
    let ms = (seconds * 1000.0).round().clamp(1.0, u64::MAX as f64) as u64;
    INTERVAL_MS.store(ms, Ordering::Relaxed);
}

/// The interval between plain progress lines.
pub fn interval() -> Duration {
    match INTERVAL_MS.load(Ordering::Relaxed) {
        0 => Duration::from_secs_f64(DEFAULT_INTERVAL_S),
        ms => Duration::from_millis(ms),
    }
}

/// A factory of progress bars.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
    terminal: bool,
    interval: Duration,
}

impl Progress {
    /// Progress on or off; drawn as bars when stderr is a terminal, as plain lines otherwise.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            terminal: std::io::stderr().is_terminal(),
            interval: interval(),
        }
    }

    /// Plain lines (as when stderr is not a terminal) every `interval`, whatever stderr is.
    pub fn plain(enabled: bool, interval: Duration) -> Self {
        Self {
            enabled,
            terminal: false,
            interval,
        }
    }

    /// A bar over `len` batches labelled `label` (e.g. "epoch 3/10 train").
    pub fn bar(&self, len: u64, label: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        if !self.terminal {
            return self.lines(Some(len), "batches", label);
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix:>18} [{bar:30}] {pos}/{len} batches {elapsed_precise} (eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar
    }

    /// A spinner of a count without a known end, drawn with the indicatif `template` (no plain lines:
    /// see [`Progress::counter`] for those).
    pub fn spinner(&self, template: &str) -> ProgressBar {
        if !self.enabled || !self.terminal {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    }

    /// A count of `unit`s (e.g. "records") of the command `label`: a bar with an ETA when `total` is
    /// known, a spinner otherwise; the bar's message (e.g. the sequence being scored) is shown after it.
    pub fn counter(&self, total: Option<u64>, unit: &str, label: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        if !self.terminal {
            return self.lines(total, unit, label);
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = match total {
            Some(_) => format!(
                "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{elapsed_precise}} {{per_sec}} (eta {{eta}}) {{msg}}"
            ),
            None => format!("{{spinner}} {{prefix}} {{pos}} {unit} {{elapsed_precise}} {{per_sec}} {{msg}}"),
        };
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar
    }

    /// A hidden bar whose count a thread prints as a plain line every interval until it finishes or
    /// is dropped.
    fn lines(&self, total: Option<u64>, unit: &str, label: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
        let weak = bar.downgrade();
        let (unit, label, every) = (unit.to_string(), label.to_string(), self.interval);
        let start = Instant::now();
        let spawned = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let step = every.min(Duration::from_millis(100));
                let mut next = start + every;
                loop {
                    std::thread::sleep(step);
                    let Some(bar) = weak.upgrade() else { return };
                    if bar.is_finished() {
                        return;
                    }
                    let now = Instant::now();
                    if now >= next {
                        eprintln!("{}", line(&label, &unit, &bar, now - start));
                        while next <= now {
                            next += every;
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            log::debug!("no progress lines: {e}");
        }
        bar
    }
}

/// One plain progress line: `label: done/total unit (pct%), rate unit/s, elapsed, ETA`.
fn line(label: &str, unit: &str, bar: &ProgressBar, elapsed: Duration) -> String {
    let done = bar.position();
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let msg = bar.message();
    let msg = if msg.is_empty() {
        String::new()
    } else {
        format!(" [{msg}]")
    };
    match bar.length() {
        Some(total) if total > 0 => {
            let pct = 100.0 * done as f64 / total as f64;
            let eta = if rate > 0.0 && done <= total {
                clock(Duration::from_secs_f64((total - done) as f64 / rate))
            } else {
                "unknown".into()
            };
            format!(
                "{label}: {done}/{total} {unit} ({pct:.1}%), {} {unit}/s, elapsed {}, ETA {eta}{msg}",
                rate_text(rate),
                clock(elapsed)
            )
        }
        _ => format!(
            "{label}: {done} {unit}, {} {unit}/s, elapsed {}{msg}",
            rate_text(rate),
            clock(elapsed)
        ),
    }
}

fn rate_text(rate: f64) -> String {
    if rate >= 100.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.2}")
    }
}

/// `1h02m03s`, `2m05s`, `7s`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads() {
        assert_eq!(clock(Duration::from_secs(7)), "7s");
        assert_eq!(clock(Duration::from_secs(125)), "2m05s");
        assert_eq!(clock(Duration::from_secs(3723)), "1h02m03s");
    }

    #[test]
    fn plain_line_has_done_total_rate_and_eta() {
        let bar = ProgressBar::hidden();
        bar.set_length(100);
        bar.inc(25);
        let l = line("variant", "records", &bar, Duration::from_secs(10));
        assert_eq!(
            l,
            "variant: 25/100 records (25.0%), 2.50 records/s, elapsed 10s, ETA 30s"
        );
        let bar = ProgressBar::hidden();
        bar.inc(500);
        bar.set_message("chr2R");
        let l = line("predict", "windows", &bar, Duration::from_secs(2));
        assert_eq!(l, "predict: 500 windows, 250 windows/s, elapsed 2s [chr2R]");
    }

    #[test]
    fn plain_bars_stop_with_their_bar() {
        let p = Progress::plain(true, Duration::from_millis(10));
        let bar = p.counter(Some(3), "records", "test");
        bar.inc(1);
        std::thread::sleep(Duration::from_millis(50));
        bar.finish_and_clear();
        drop(bar);
    }
}
