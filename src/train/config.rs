//! Everything a training run needs to know, built by the CLI (or a library user).

use std::path::PathBuf;

use candle_core::Device;

use super::loss::Loss;
use super::schedule::SchedulerKind;
use crate::model::{FlankConfig, Trainable};

/// Train from scratch, or fine-tune a pretrained model.
#[derive(Debug, Clone)]
pub enum RunKind {
    /// `train`: fresh PyTorch-default initialisation, lr 1e-3, five MultiStepLR milestones.
    Train,
    /// `transfer`: load a checkpoint, lr 1e-4, four milestones, train only `trainable`.
    Transfer {
        /// The pretrained checkpoint.
        pretrained: PathBuf,
        /// Which parameters are trained.
        trainable: Trainable,
        /// `--freeze-bn`: frozen BatchNorms use their running statistics and never update them.
        freeze_bn: bool,
    },
}

/// A training run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub kind: RunKind,
    pub train_dataset: PathBuf,
    pub test_dataset: PathBuf,
    pub validation_dataset: Option<PathBuf>,
    pub flank: &'static FlankConfig,
    pub epochs: usize,
    pub scheduler: SchedulerKind,
    pub early_stopping: bool,
    pub patience: usize,
    pub output_dir: PathBuf,
    pub project_name: String,
    pub exp_num: String,
    pub random_seed: u64,
    pub loss: Loss,
    pub batch_size: usize,
    pub device: Device,
    pub overwrite: bool,
    /// Show progress bars (they are hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Never use the frozen-prefix cache (`--no-cache`).
    pub no_cache: bool,
    /// Keep the prefix cache file after the run (`--keep-cache`).
    pub keep_cache: bool,
    /// What is printed per epoch (`--console`).
    pub console: super::console::ConsoleMode,
    /// Write `report.html` into the run directory at the end (off with `--no-report`).
    pub report: bool,
}

impl RunConfig {
    /// Base learning rate: 1e-4 for `transfer`, 1e-3 for `train`.
    pub fn base_lr(&self) -> f64 {
        match self.kind {
            RunKind::Train => 1e-3,
            RunKind::Transfer { .. } => 1e-4,
        }
    }

    /// MultiStepLR milestones count: 4 for `transfer`, 5 for `train`.
    pub fn milestone_count(&self) -> usize {
        match self.kind {
            RunKind::Train => 5,
            RunKind::Transfer { .. } => 4,
        }
    }

    /// `{output-dir}/SpliceAI_{project}_{flanking}_{exp}_rs{seed}/{exp}/`.
    pub fn run_dir(&self) -> PathBuf {
        super::run_log::upstream_run_dir(
            &self.output_dir,
            &self.project_name,
            self.flank.flank,
            &self.exp_num,
            self.random_seed,
        )
    }
}
