//! The run logger: OpenSpliceAI's `LOG/{TRAIN,VAL,TEST}/*.txt` files (same names, same line formats), a
//! `metrics.jsonl` with one object per split per epoch, and upstream's console summary text.
//!
//! What upstream 0.0.7 writes (`train_base/utils.py`, `create_metric_files`, `train_epoch`, `valid_epoch`,
//! `model_evaluation`, `metrics`, `print_topl_statistics`, `train_model`), and what [`RunLog`] reproduces:
//! - every split directory holds all 19 files of [`LOG_FILES`] (upstream opens each of them for append while
//!   logging an epoch, so the `learning_rate_*` files exist, empty, in `VAL/` and `TEST/`);
//! - each batch, every split: `loss_every_update.txt` ← the batch loss ([`RunLog::log_batch_loss`]);
//! - each training batch, after the scheduler step: `TRAIN/learning_rate_every_batch.txt` ← the new lr
//!   ([`RunLog::log_batch_lr`]);
//! - each epoch, every split ([`RunLog::log_epoch_metrics`]): `{acceptor,donor}_topk_all.txt` ← the tab line
//!   `%.4f`×9 (top-k at 0.5/1/2/4, AUPRC, 4 thresholds) then `%d` sites; `loss_batch.txt` ← the epoch loss;
//!   `{acceptor,donor}_topk.txt` ← top-k at k = 1×sites; `{acceptor,donor}_auprc.txt`; `accuracy.txt` ← the mean
//!   class accuracy; `{acceptor,donor}_{precision,recall,f1,accuracy}.txt` (nothing for non-splice);
//! - each epoch, after validation and test: `TRAIN/learning_rate_every_epoch.txt` ← the lr
//!   ([`RunLog::log_epoch_lr`]).
//!
//! Single values are written as Python's `str(float)` ([`python_float_repr`]), one per line.
//!
//! Crash safety. Per-epoch files are small: each append writes the whole new content to a temporary file in
//! the same directory, fsyncs it, renames it over the old one and fsyncs the directory, so a reader or a
//! crash sees the old or the new file, never a torn one. The two per-batch files grow by one line per batch
//! (hundreds of thousands of lines over a run), where rewriting would be quadratic; they are appended with one
//! `write(2)` of the complete line on an `O_APPEND` descriptor (a process killed by a signal never leaves a
//! partial write to a regular file on Linux: the syscall completes first), a short write is rolled back by
//! truncation, they are fsynced at every epoch's metrics, and [`RunLog::create`] cuts any partial last line
//! (possible only after a power loss) from every file it finds.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::atomic;
use crate::metrics::{ClassMetrics, EpochMetrics, RankingMetrics, SiteClassMetrics, CLASS_NAMES};
use crate::rundir::{self, Split, METRICS_JSONL, METRICS_SCHEMA_VERSION};

/// The files upstream creates in each of `LOG/TRAIN`, `LOG/VAL`, `LOG/TEST` (`create_metric_files` order),
/// without the `.txt` extension.
pub const LOG_FILES: [&str; 19] = [
    "donor_topk_all",
    "donor_topk",
    "donor_auprc",
    "donor_accuracy",
    "donor_precision",
    "donor_recall",
    "donor_f1",
    "acceptor_topk_all",
    "acceptor_topk",
    "acceptor_auprc",
    "acceptor_accuracy",
    "acceptor_precision",
    "acceptor_recall",
    "acceptor_f1",
    "accuracy",
    "loss_batch",
    "loss_every_update",
    "learning_rate_every_epoch",
    "learning_rate_every_batch",
];

/// Errors of the run logger, each naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum RunLogError {
    /// Creating a directory failed.
    #[error("cannot create directory {path}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Reading, writing, syncing or renaming a log file failed.
    #[error("cannot write log file {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line was only partly written (and was rolled back).
    #[error("short write to log file {path}: {written} of {len} bytes (rolled back)")]
    ShortWrite {
        path: PathBuf,
        /// Bytes written.
        written: usize,
        /// Bytes of the line.
        len: usize,
    },
    /// Serialising a metrics record failed.
    #[error("cannot serialise a record for {path}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Python's `repr(float)` / `str(float)`: the shortest digits that round-trip, in fixed notation when the
/// decimal exponent is in `-4..16` (always with a fractional part, `1.0`), otherwise scientific with a signed,
/// at-least-two-digit exponent (`9.986128001799077e-05`, `1e+16`); `nan`, `inf`, `-inf`, `-0.0`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "d[.ddd]e[-]x". When two shortest candidates
    // exist, Python takes the one nearest to x (ties to even): the correctly rounded string of that many
    // digits (`{:.*e}` rounds the exact value half-to-even), provided it round-trips.
    let shortest = format!("{:e}", x);
    let n_digits = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.chars().filter(char::is_ascii_digit).count());
    let nearest = format!("{:.*e}", n_digits.saturating_sub(1), x);
    let s = if nearest.parse::<f64>() == Ok(x) {
        nearest
    } else {
        shortest
    };
    let (mantissa, exp) = s.split_once('e').expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    let mut out = String::from(sign);
    if !(-4..16).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.push_str(&"0".repeat(int_len - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    } else {
        out.push_str("0.");
        out.push_str(&"0".repeat((-exp - 1) as usize));
        out.push_str(&digits);
    }
    out
}

/// Upstream's `{site}_topk_all.txt` line (without newline): `"%.4f\t" × 9` of top-k at 0.5/1/2/4, AUPRC and the
/// four thresholds, then `"%d"` true sites. Also the console's line, uncoloured.
pub fn topk_all_line(r: &RankingMetrics) -> String {
    let mut s = String::new();
    for v in r
        .topk_all
        .iter()
        .chain([&r.auprc])
        .chain(r.thresholds.iter())
    {
        s.push_str(&python_format_4f(*v));
        s.push('\t');
    }
    s.push_str(&r.n_true.to_string());
    s
}

/// Python's `"%.4f" % x` (Rust's `{:.4}` rounds the exact binary value half-to-even, as Python does).
pub fn python_format_4f(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{:.4}", x)
    }
}

/// Upstream's console text after a split's pass (`print_topl_statistics` for acceptor and donor, then
/// `metrics`), colour codes optional (upstream prints bold names, red top-k@1 and blue AUPRC):
///
/// ```text
///
/// acceptor:
/// 0.0126\t0.0116\t…\t950
///
/// donor:
/// …
/// ***************************************
///
/// Overall Accuracy: 0.33367076814280505
/// Class Non-splice\t: Accuracy=…, Precision=…, Recall=…, F1=…
/// Class acceptor\t: …
/// Class donor\t: …
/// ```
pub fn console_summary(m: &EpochMetrics, color: bool) -> String {
    let mut s = String::new();
    for (name, r) in [
        ("acceptor", &m.acceptor.ranking),
        ("donor", &m.donor.ranking),
    ] {
        if color {
            s.push_str(&format!("\n\x1b[1m{name}:\x1b[0m\n"));
            let f: Vec<String> = r
                .topk_all
                .iter()
                .chain([&r.auprc])
                .chain(r.thresholds.iter())
                .map(|v| python_format_4f(*v))
                .collect();
            s.push_str(&format!(
                "{}\t\x1b[91m{}\t\x1b[0m{}\t{}\t\x1b[94m{}\t\x1b[0m{}\t{}\t{}\t{}\t{}\n",
                f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], r.n_true
            ));
        } else {
            s.push_str(&format!("\n{name}:\n{}\n", topk_all_line(r)));
        }
    }
    s.push_str("***************************************\n\n");
    s.push_str(&format!(
        "Overall Accuracy: {}\n",
        python_float_repr(m.accuracy)
    ));
    for (name, c) in CLASS_NAMES.iter().zip(m.class_metrics()) {
        s.push_str(&format!(
            "Class {name}\t: Accuracy={}, Precision={}, Recall={}, F1={}\n",
            python_float_repr(c.accuracy),
            python_float_repr(c.precision),
            python_float_repr(c.recall),
            python_float_repr(c.f1)
        ));
    }
    s
}

/// One line of `metrics.jsonl`: one split in one epoch (epoch −1 for a zero-shot baseline before training).
/// Non-finite numbers are written as `null`.
#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    /// [`METRICS_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Epoch from 0 (−1: before training).
    pub epoch: i64,
    /// The split.
    pub split: Split,
    /// The epoch loss ([`EpochMetrics::loss`]).
    pub loss: f64,
    /// The learning rate at the end of the epoch, where meaningful.
    pub lr: Option<f64>,
    /// Wall-clock seconds of the split's pass.
    pub seconds: f64,
    /// Windows fed per second of that pass.
    pub windows_per_s: f64,
    /// Mean class accuracy.
    pub accuracy: f64,
    /// Acceptor: argmax metrics, top-k, thresholds, AUPRC, sites.
    pub acceptor: SiteClassMetrics,
    /// Donor: the same.
    pub donor: SiteClassMetrics,
    /// Non-splice argmax metrics.
    pub non_splice: ClassMetrics,
    /// Windows fed.
    pub windows: u64,
    /// Windows that entered the metrics.
    pub kept_windows: u64,
    /// Positions that entered top-k and AUPRC (`n_true` of a class over this: the AUPRC of chance).
    pub ranked_positions: u64,
}

impl EpochRecord {
    /// Builds the record of `split` at `epoch` from its metrics, the lr and the pass's duration.
    pub fn new(epoch: i64, split: Split, m: &EpochMetrics, lr: Option<f64>, seconds: f64) -> Self {
        Self {
            schema_version: METRICS_SCHEMA_VERSION,
            epoch,
            split,
            loss: m.loss,
            lr,
            seconds,
            windows_per_s: if seconds > 0.0 {
                m.windows as f64 / seconds
            } else {
                f64::NAN
            },
            accuracy: m.accuracy,
            acceptor: m.acceptor,
            donor: m.donor,
            non_splice: m.non_splice,
            windows: m.windows,
            kept_windows: m.kept_windows,
            ranked_positions: match m.kept_windows {
                0 => 0,
                k => m.ranked_windows * (m.positions / k),
            },
        }
    }
}

/// The logger of one run directory (`{output-dir}/SpliceAI_…/{exp-num}/`).
#[derive(Debug)]
pub struct RunLog {
    run_dir: PathBuf,
    /// Open `O_APPEND` handles of the per-batch files, with their current lengths.
    appenders: HashMap<PathBuf, (File, u64)>,
}

impl RunLog {
    /// Opens (creating as needed) `run_dir/LOG/{TRAIN,VAL,TEST}/` with all of upstream's files and
    /// `run_dir/metrics.jsonl`. Existing files are kept and appended to (as upstream does); a partial last
    /// line is cut off and stale temporary files are removed.
    pub fn create(run_dir: impl AsRef<Path>) -> Result<Self, RunLogError> {
        let run_dir = run_dir.as_ref().to_path_buf();
        let log = Self {
            run_dir,
            appenders: HashMap::new(),
        };
        for split in Split::ALL {
            let dir = log.split_dir(split);
            fs::create_dir_all(&dir).map_err(|source| RunLogError::CreateDir {
                path: dir.clone(),
                source,
            })?;
            remove_stale_temps(&dir)?;
            for name in LOG_FILES {
                prepare_file(&dir.join(format!("{name}.txt")))?;
            }
            sync_dir(&dir)?;
        }
        remove_stale_temps(&log.run_dir)?;
        prepare_file(&log.jsonl_path())?;
        sync_dir(&rundir::log_dir(&log.run_dir))?;
        sync_dir(&log.run_dir)?;
        Ok(log)
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// `run_dir/LOG/{TRAIN,VAL,TEST}`.
    pub fn split_dir(&self, split: Split) -> PathBuf {
        rundir::split_log_dir(&self.run_dir, split)
    }

    /// The path of one of [`LOG_FILES`] for a split.
    pub fn file_path(&self, split: Split, name: &str) -> PathBuf {
        self.split_dir(split).join(format!("{name}.txt"))
    }

    /// `run_dir/metrics.jsonl`.
    pub fn jsonl_path(&self) -> PathBuf {
        self.run_dir.join(METRICS_JSONL)
    }

    /// Appends one batch's loss to `{split}/loss_every_update.txt` (every split, every batch, as upstream).
    /// Pass the value upstream would print: for an `f32` loss, `loss as f64`.
    pub fn log_batch_loss(&mut self, split: Split, loss: f64) -> Result<(), RunLogError> {
        let path = self.file_path(split, "loss_every_update");
        self.append_fast(path, &python_float_repr(loss))
    }

    /// Appends the learning rate after a training batch's scheduler step to
    /// `TRAIN/learning_rate_every_batch.txt`.
    pub fn log_batch_lr(&mut self, lr: f64) -> Result<(), RunLogError> {
        let path = self.file_path(Split::Train, "learning_rate_every_batch");
        self.append_fast(path, &python_float_repr(lr))
    }

    /// Appends the learning rate at the end of an epoch (after validation and test) to
    /// `TRAIN/learning_rate_every_epoch.txt`.
    pub fn log_epoch_lr(&mut self, lr: f64) -> Result<(), RunLogError> {
        let path = self.file_path(Split::Train, "learning_rate_every_epoch");
        append_atomic(&path, &python_float_repr(lr))
    }

    /// Appends a split's epoch metrics to its files, in upstream's order: `acceptor_topk_all`,
    /// `donor_topk_all`, `donor_topk`, `donor_auprc`, `acceptor_topk`, `acceptor_auprc`, `loss_batch`
    /// ([`EpochMetrics::loss`]), `accuracy`, then `{acceptor,donor}_{accuracy,precision,recall,f1}`; the
    /// split's per-batch files are fsynced first. Nothing is written for non-splice (as upstream).
    pub fn log_epoch_metrics(&mut self, split: Split, m: &EpochMetrics) -> Result<(), RunLogError> {
        for (path, (file, _)) in &self.appenders {
            if path.starts_with(self.split_dir(split)) {
                file.sync_all().map_err(|source| RunLogError::Write {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        let f = |name: &str| self.file_path(split, name);
        let r = python_float_repr;
        append_atomic(&f("acceptor_topk_all"), &topk_all_line(&m.acceptor.ranking))?;
        append_atomic(&f("donor_topk_all"), &topk_all_line(&m.donor.ranking))?;
        append_atomic(&f("donor_topk"), &r(m.donor.ranking.topk))?;
        append_atomic(&f("donor_auprc"), &r(m.donor.ranking.auprc))?;
        append_atomic(&f("acceptor_topk"), &r(m.acceptor.ranking.topk))?;
        append_atomic(&f("acceptor_auprc"), &r(m.acceptor.ranking.auprc))?;
        append_atomic(&f("loss_batch"), &r(m.loss))?;
        append_atomic(&f("accuracy"), &r(m.accuracy))?;
        for (site, c) in [("acceptor", &m.acceptor.class), ("donor", &m.donor.class)] {
            append_atomic(&f(&format!("{site}_accuracy")), &r(c.accuracy))?;
            append_atomic(&f(&format!("{site}_precision")), &r(c.precision))?;
            append_atomic(&f(&format!("{site}_recall")), &r(c.recall))?;
            append_atomic(&f(&format!("{site}_f1")), &r(c.f1))?;
        }
        Ok(())
    }

    /// Appends one record to `metrics.jsonl`.
    pub fn log_jsonl(&mut self, record: &EpochRecord) -> Result<(), RunLogError> {
        let path = self.jsonl_path();
        let line = serde_json::to_string(record).map_err(|source| RunLogError::Json {
            path: path.clone(),
            source,
        })?;
        append_atomic(&path, &line)
    }

    /// fsyncs the per-batch files (also done by [`log_epoch_metrics`](Self::log_epoch_metrics) for its split).
    pub fn flush(&mut self) -> Result<(), RunLogError> {
        for (path, (file, _)) in &self.appenders {
            file.sync_all().map_err(|source| RunLogError::Write {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// One `write(2)` of `line\n` on an `O_APPEND` handle; a short write is truncated away.
    fn append_fast(&mut self, path: PathBuf, line: &str) -> Result<(), RunLogError> {
        let werr = |path: &Path, source| RunLogError::Write {
            path: path.to_path_buf(),
            source,
        };
        if !self.appenders.contains_key(&path) {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .map_err(|e| werr(&path, e))?;
            let len = file.metadata().map_err(|e| werr(&path, e))?.len();
            self.appenders.insert(path.clone(), (file, len));
        }
        let (file, len) = self.appenders.get_mut(&path).expect("inserted above");
        let buf = format!("{line}\n");
        let result = loop {
            match file.write(buf.as_bytes()) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match result {
            Ok(n) if n == buf.len() => {
                *len += n as u64;
                Ok(())
            }
            Ok(n) => {
                file.set_len(*len).map_err(|e| werr(&path, e))?;
                Err(RunLogError::ShortWrite {
                    path,
                    written: n,
                    len: buf.len(),
                })
            }
            Err(e) => {
                let _ = file.set_len(*len);
                Err(werr(&path, e))
            }
        }
    }
}

/// Appends `line\n` to `path` by replacing the file with its content plus the line
/// ([`atomic::replace`]).
pub fn append_atomic(path: &Path, line: &str) -> Result<(), RunLogError> {
    let mut content = match fs::read(path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(RunLogError::Write {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    content.extend_from_slice(line.as_bytes());
    content.push(b'\n');
    Ok(atomic::replace(path, &content)?)
}

/// Creates an empty file if missing; otherwise cuts a partial last line.
fn prepare_file(path: &Path) -> Result<(), RunLogError> {
    let werr = |source| RunLogError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(werr)?;
    let content = fs::read(path).map_err(werr)?;
    if !content.is_empty() && content.last() != Some(&b'\n') {
        let keep = content
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        log::warn!(
            "{}: cutting a partial last line ({} bytes)",
            path.display(),
            content.len() - keep
        );
        file.set_len(keep as u64).map_err(werr)?;
        file.sync_all().map_err(werr)?;
    }
    Ok(())
}

/// Removes the temporary files an interrupted [`append_atomic`] left ([`atomic::is_temp_name`]).
fn remove_stale_temps(dir: &Path) -> Result<(), RunLogError> {
    let entries = fs::read_dir(dir).map_err(|source| RunLogError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if atomic::is_temp_name(&name) {
            fs::remove_file(entry.path()).map_err(|source| RunLogError::Write {
                path: entry.path(),
                source,
            })?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), RunLogError> {
    Ok(atomic::sync_dir(dir)?)
}

impl From<atomic::ReplaceError> for RunLogError {
    fn from(e: atomic::ReplaceError) -> Self {
        RunLogError::Write {
            path: e.path,
            source: e.source,
        }
    }
}
