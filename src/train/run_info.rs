//! `run.json`: what a run was asked to do (command, flags, command line), written into the run directory when
//! the run starts, so that `report` can name runs by their flags and a user can tell runs apart later.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{RunConfig, RunKind};
use crate::model::Trainable;

/// Name of the file in the run directory.
pub const RUN_JSON: &str = "run.json";

/// The content of `run.json` (same [`schema_version`](super::run_log::METRICS_SCHEMA_VERSION) as
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
    /// The record of `cfg`, with this process's command line.
    pub fn new(cfg: &RunConfig) -> Self {
        let (command, pretrained_model, unfreeze, freeze_bn) = match &cfg.kind {
            RunKind::Train => ("train", None, None, false),
            RunKind::Transfer {
                pretrained,
                trainable,
                freeze_bn,
            } => (
                "transfer",
                Some(pretrained.clone()),
                Some(match trainable {
                    Trainable::All => "all".to_string(),
                    Trainable::LastUnits(n) => n.to_string(),
                    Trainable::Nothing => "0".to_string(),
                }),
                *freeze_bn,
            ),
        };
        Self {
            schema_version: super::run_log::METRICS_SCHEMA_VERSION,
            command: command.into(),
            label: label(command, unfreeze.as_deref(), freeze_bn),
            command_line: std::env::args().collect(),
            pretrained_model,
            unfreeze,
            freeze_bn,
            train_dataset: cfg.train_dataset.clone(),
            test_dataset: cfg.test_dataset.clone(),
            validation_dataset: cfg.validation_dataset.clone(),
            flanking_size: cfg.flank.flank,
            epochs: cfg.epochs,
            scheduler: format!("{:?}", cfg.scheduler),
            loss: cfg.loss.name().into(),
            batch_size: cfg.batch_size,
            random_seed: cfg.random_seed,
            learning_rate: cfg.base_lr(),
            early_stopping: cfg.early_stopping,
            patience: cfg.patience,
            project_name: cfg.project_name.clone(),
            exp_num: cfg.exp_num.clone(),
            device: crate::device::describe(&cfg.device),
        }
    }

    /// Writes `run_dir/run.json` atomically.
    pub fn write(&self, run_dir: &Path) -> Result<(), super::TrainError> {
        let json = serde_json::to_string_pretty(self).expect("RunInfo always serialises");
        crate::checkpoint::atomic::replace(&run_dir.join(RUN_JSON), json.as_bytes()).map_err(|e| {
            super::TrainError::Io {
                path: e.path,
                source: e.source,
            }
        })
    }
}

/// `train`, `transfer -A`, `transfer -u 2 --freeze-bn`.
fn label(command: &str, unfreeze: Option<&str>, freeze_bn: bool) -> String {
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
