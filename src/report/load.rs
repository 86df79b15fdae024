//! Reading a run directory: `metrics.jsonl` (strictly, with errors naming file and line), `run.json` and the
//! per-batch learning rates.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ReportError;
use crate::rundir::{RunInfo, METRICS_JSONL, METRICS_SCHEMA_VERSION, RUN_JSON};

/// The fields of one splice-site class that `report` reads (non-finite values are `null` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct SiteRecord {
    /// Top-k accuracy at k = 1 × sites.
    pub topk: Option<f64>,
    /// Average precision.
    pub auprc: Option<f64>,
    /// Argmax F1.
    pub f1: Option<f64>,
    /// True sites among the ranked positions (absent in older files).
    #[serde(default)]
    pub n_true: Option<u64>,
}

/// The fields of one `metrics.jsonl` line that `report` reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record {
    /// Layout version.
    pub schema_version: u32,
    /// Epoch from 0; −1 for the zero-shot baseline.
    pub epoch: i64,
    /// `train`, `val` or `test`.
    pub split: String,
    /// Epoch loss.
    pub loss: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub lr: Option<f64>,
    /// Seconds of the pass.
    pub seconds: Option<f64>,
    /// Acceptor metrics.
    pub acceptor: SiteRecord,
    /// Donor metrics.
    pub donor: SiteRecord,
    /// Positions that entered top-k and AUPRC (absent in older files).
    #[serde(default)]
    pub ranked_positions: Option<u64>,
}

impl Record {
    /// The AUPRC of a model that guesses: the fraction of ranked positions that are true sites of the
    /// class (`acceptor` or `donor`), where the record holds both counts.
    pub fn positive_fraction(&self, acceptor: bool) -> Option<f64> {
        let site = if acceptor {
            &self.acceptor
        } else {
            &self.donor
        };
        match (site.n_true, self.ranked_positions) {
            (Some(t), Some(n)) if n > 0 => Some(t as f64 / n as f64),
            _ => None,
        }
    }
}

/// One run directory's data.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The directory.
    pub dir: PathBuf,
    /// The legend name (from `run.json`'s flags, else the directory).
    pub label: String,
    /// `run.json`, when present.
    pub info: Option<RunInfo>,
    /// The `metrics.jsonl` records in file order.
    pub records: Vec<Record>,
    /// `LOG/TRAIN/learning_rate_every_batch.txt`, when present.
    pub lr_per_batch: Vec<f64>,
}

impl RunData {
    /// The records of `split` from epoch 0 on, in epoch order.
    pub fn split(&self, split: &str) -> Vec<&Record> {
        let mut v: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| r.split == split && r.epoch >= 0)
            .collect();
        v.sort_by_key(|r| r.epoch);
        v
    }

    /// The zero-shot record of `split` (epoch −1), for `transfer` runs.
    pub fn zero_shot(&self, split: &str) -> Option<&Record> {
        self.records
            .iter()
            .find(|r| r.split == split && r.epoch == -1)
    }

    /// What identifies the zero-shot scores: runs from the same pretrained model on the same validation and
    /// test data share them (their values may differ in the last digits: the prefix cache of `--freeze-bn`
    /// holds f16 activations), so a report shows them once. Without `run.json`, the values themselves.
    pub fn zero_shot_key(&self) -> Option<String> {
        let val = self.zero_shot("val");
        let test = self.zero_shot("test");
        if val.is_none() && test.is_none() {
            return None;
        }
        Some(match &self.info {
            Some(i) => format!(
                "{:?}|{:?}|{:?}|{:?}|{}",
                i.pretrained_model, i.validation_dataset, i.train_dataset, i.test_dataset, i.loss
            ),
            None => format!("{val:?}|{test:?}"),
        })
    }

    /// The epoch with the lowest validation loss (the first of equals, as `model_best.pt`).
    pub fn best_epoch(&self) -> Option<i64> {
        let mut best: Option<(f64, i64)> = None;
        for r in self.split("val") {
            if let Some(l) = r.loss {
                if best.is_none_or(|(b, _)| l < b) {
                    best = Some((l, r.epoch));
                }
            }
        }
        best.map(|(_, e)| e)
    }

    /// The record of `split` at `epoch`.
    pub fn at(&self, split: &str, epoch: i64) -> Option<&Record> {
        self.records
            .iter()
            .find(|r| r.split == split && r.epoch == epoch)
    }
}

/// Reads a run directory.
pub fn load_run(dir: &Path) -> Result<RunData, ReportError> {
    let path = dir.join(METRICS_JSONL);
    let gz = dir.join(format!("{METRICS_JSONL}.gz"));
    let path = match (path.is_file(), gz.is_file()) {
        (false, true) => gz,
        (false, false) => {
            return Err(ReportError::MissingMetrics {
                path,
                dir: dir.to_path_buf(),
            })
        }
        _ => path,
    };
    let text = read_text(&path)?;
    let records = parse_metrics(&path, &text)?;
    let info = read_run_info(dir)?;
    let lr_per_batch = read_lr(
        &crate::rundir::split_log_dir(dir, crate::rundir::Split::Train)
            .join("learning_rate_every_batch.txt"),
    )?;
    let label = match &info {
        Some(i) => display_label(&i.label),
        None => dir_name(dir),
    };
    Ok(RunData {
        dir: dir.to_path_buf(),
        label,
        info,
        records,
        lr_per_batch,
    })
}

/// A run's name in the report: run.json's label, with a from-scratch run called so (`train` alone reads as
/// the training split beside the legend's "training set").
pub fn display_label(label: &str) -> String {
    match label {
        "train" => "train from scratch".into(),
        other => other.into(),
    }
}

/// A text file, plain, gzip or bgzip (told by its first bytes, as every input is read).
fn read_text(path: &Path) -> Result<String, ReportError> {
    let err = |source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let input =
        crate::genome::input::open_reader(path.to_path_buf(), file).map_err(|e| match e {
            crate::genome::GenomeError::Unsupported { message, .. } => {
                err(std::io::Error::other(message))
            }
            crate::genome::GenomeError::Io { source, .. } => err(source),
            other => err(std::io::Error::other(other.to_string())),
        })?;
    let mut text = String::new();
    let mut reader = input.reader;
    reader.read_to_string(&mut text).map_err(err)?;
    Ok(text)
}

/// Parses `metrics.jsonl`: every line a complete record of this schema version, the last one ended by a
/// newline (a missing one means the file was cut), at least one record from epoch 0 on.
pub fn parse_metrics(path: &Path, text: &str) -> Result<Vec<Record>, ReportError> {
    let parse_err = |line: usize, message: String| ReportError::Parse {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut records = Vec::new();
    let n_lines = text.lines().count();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if i + 1 == n_lines && !text.ends_with('\n') {
            return Err(parse_err(
                i + 1,
                "the last line is not ended by a newline: the file was cut short (a run killed while writing, or a partial copy)".into(),
            ));
        }
        let r: Record = serde_json::from_str(line).map_err(|e| {
            parse_err(
                i + 1,
                format!("not a metrics record of schema version {METRICS_SCHEMA_VERSION}: {e}"),
            )
        })?;
        if r.schema_version != METRICS_SCHEMA_VERSION {
            return Err(parse_err(
                i + 1,
                format!(
                    "schema_version {} is not supported (this tool reads version {METRICS_SCHEMA_VERSION})",
                    r.schema_version
                ),
            ));
        }
        if !["train", "val", "test"].contains(&r.split.as_str()) {
            return Err(parse_err(
                i + 1,
                format!("split `{}`: expected train, val or test", r.split),
            ));
        }
        records.push(r);
    }
    if !records.iter().any(|r| r.epoch >= 0) {
        return Err(ReportError::Empty {
            path: path.to_path_buf(),
            message: "no finished epoch (the file holds no record with epoch >= 0)".into(),
        });
    }
    Ok(records)
}

fn read_run_info(dir: &Path) -> Result<Option<RunInfo>, ReportError> {
    let path = dir.join(RUN_JSON);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ReportError::Read { path, source }),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ReportError::Parse {
            path,
            line: e.line(),
            message: format!("not a run.json of this tool: {e}"),
        })
}

/// One float a line; a missing file gives no values.
fn read_lr(path: &Path) -> Result<Vec<f64>, ReportError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ReportError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.trim().parse::<f64>().map_err(|_| ReportError::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                message: format!("`{l}` is not a learning rate (one number a line expected)"),
            })
        })
        .collect()
}

/// The run directory's name with its parent (`SpliceAI_x_80_0_rs42/0`).
fn dir_name(dir: &Path) -> String {
    crate::rundir::short_name(dir).join("/")
}

/// Runs with the same label get their project name (or directory) appended, so legends stay distinct.
pub fn disambiguate_labels(runs: &mut [RunData]) {
    let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
    for r in runs.iter_mut() {
        if labels.iter().filter(|l| **l == r.label).count() > 1 {
            let extra = match &r.info {
                Some(i) => format!("{} #{}", i.project_name, i.exp_num),
                None => dir_name(&r.dir),
            };
            r.label = format!("{} ({extra})", r.label);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"schema_version":1,"epoch":0,"split":"val","loss":0.5,"lr":0.001,"seconds":1.0,"acceptor":{"topk":0.1,"auprc":0.2,"f1":0.3},"donor":{"topk":0.1,"auprc":null,"f1":0.3}}"#;

    #[test]
    fn gzip_metrics_and_metrics_jsonl_gz_are_read() {
        use std::io::Write;
        let gz = |text: &str| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(text.as_bytes()).unwrap();
            e.finish().unwrap()
        };
        let text = format!("{LINE}\n");
        for name in [METRICS_JSONL, "metrics.jsonl.gz"] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(name), gz(&text)).unwrap();
            let run = load_run(dir.path()).unwrap();
            assert_eq!(run.records.len(), 1, "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        let cut = gz(&LINE.repeat(50));
        std::fs::write(dir.path().join(METRICS_JSONL), &cut[..cut.len() / 2]).unwrap();
        let msg = format!(
            "{:#}",
            anyhow::Error::from(load_run(dir.path()).unwrap_err())
        );
        assert!(
            msg.contains("truncated") && msg.contains(METRICS_JSONL),
            "{msg}"
        );
    }

    #[test]
    fn parses_complete_lines() {
        let r = parse_metrics(Path::new("m.jsonl"), &format!("{LINE}\n")).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].donor.auprc, None);
    }

    #[test]
    fn a_cut_last_line_names_file_and_line() {
        let text = format!("{LINE}\n{}", &LINE[..40]);
        let e = parse_metrics(Path::new("run/metrics.jsonl"), &text).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("run/metrics.jsonl:2:"), "{msg}");
        assert!(msg.contains("cut short"), "{msg}");
    }

    #[test]
    fn another_schema_version_is_refused() {
        let text = LINE.replace("\"schema_version\":1", "\"schema_version\":7") + "\n";
        let msg = parse_metrics(Path::new("m.jsonl"), &text)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("schema_version 7"), "{msg}");
    }

    #[test]
    fn no_epoch_is_an_error() {
        let msg = parse_metrics(Path::new("m.jsonl"), "")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no finished epoch"), "{msg}");
    }
}
