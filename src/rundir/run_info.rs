//! `run.json`: what a run was asked to do (command, flags, command line), written into the run directory by
//! `train`/`transfer` when the run starts, so that `report` can name runs by their flags and a user can tell runs apart later.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::RUN_JSON;

/// The content of `run.json` (same [`schema_version`](super::METRICS_SCHEMA_VERSION) as
/// `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Layout version, as in `metrics.jsonl`.
    pub schema_version: u32,
    /// `train` or `transfer`.
    pub command: String,
    /// The flags that tell runs apart, e.g. `transfer -u 2 --freeze-bn` (the legend of `report`).
    pub label: String,
    /// The process's command line.
    pub command_line: Vec<String>,
    /// The pretrained checkpoint (`transfer`).
    pub pretrained_model: Option<PathBuf>,
    /// `all` or the number of trained residual units (`transfer`).
    pub unfreeze: Option<String>,
    /// `--freeze-bn`.
    pub freeze_bn: bool,
    pub train_dataset: PathBuf,
    pub test_dataset: PathBuf,
    pub validation_dataset: Option<PathBuf>,
    pub flanking_size: usize,
    pub epochs: usize,
    pub scheduler: String,
    pub loss: String,
    pub batch_size: usize,
    pub random_seed: u64,
    /// Base learning rate.
    pub learning_rate: f64,
    pub early_stopping: bool,
    pub patience: usize,
    pub project_name: String,
    pub exp_num: String,
    /// The compute device, in words.
    pub device: String,
}

impl RunInfo {
    /// Writes `run_dir/run.json` atomically.
    pub fn write(&self, run_dir: &Path) -> Result<(), crate::atomic::ReplaceError> {
        let json = serde_json::to_string_pretty(self).expect("RunInfo always serialises");
        crate::atomic::replace(&run_dir.join(RUN_JSON), json.as_bytes())
    }
}

/// `train`, `transfer -A`, `transfer -u 2 --freeze-bn`.
pub fn label(command: &str, unfreeze: Option<&str>, freeze_bn: bool) -> String {
    let mut s = command.to_string();
    match unfreeze {
        Some("all") => s.push_str(" -A"),
        Some(n) => s.push_str(&format!(" -u {n}")),
        None => {}
    }
    if freeze_bn {
        s.push_str(" --freeze-bn");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn labels_name_the_flags() {
        assert_eq!(label("train", None, false), "train");
        assert_eq!(label("transfer", Some("all"), false), "transfer -A");
        assert_eq!(
            label("transfer", Some("2"), true),
            "transfer -u 2 --freeze-bn"
        );
    }
}
