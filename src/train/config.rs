//! Everything a training run needs to know, built by the CLI (or a library user).

use std::path::PathBuf;

use candle_core::Device;

use super::schedule::SchedulerKind;
use crate::metrics::Loss;
use crate::model::{FlankConfig, Trainable};
use crate::rundir::{run_info, RunInfo};

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
        /// `--partial-load`: upstream's rule, load the tensors whose name and shape match and keep the
        /// seeded values elsewhere, instead of the checkpoint door's strict load.
        partial_load: bool,
    },
}

/// A training run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Where the run's console lines go (the CLI prints them).
    pub out: crate::console::Output,
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
    /// `--resume`: continue the run directory from its last complete epoch (or start it).
    pub resume: bool,
    /// Show progress bars (they are hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Never use the frozen-prefix cache (`--no-cache`).
    pub no_cache: bool,
    /// Keep the prefix cache file after the run (`--keep-cache`).
    pub keep_cache: bool,
    /// Where the prefix cache goes (`--cache-dir`; default the run directory).
    pub cache_dir: Option<PathBuf>,
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

    /// The files the run reads: datasets and the pretrained checkpoint.
    pub fn input_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.train_dataset.clone(), self.test_dataset.clone()];
        files.extend(self.validation_dataset.clone());
        if let RunKind::Transfer { pretrained, .. } = &self.kind {
            files.push(pretrained.clone());
        }
        files
    }

    /// `{output-dir}/SpliceAI_{project}_{flanking}_{exp}_rs{seed}/{exp}/`.
    pub fn run_dir(&self) -> PathBuf {
        crate::rundir::upstream_run_dir(
            &self.output_dir,
            &self.project_name,
            self.flank.flank,
            &self.exp_num,
            self.random_seed,
        )
    }
}

impl RunConfig {
    /// Where `--freeze-bn`'s prefix cache goes: `prefix_cache.f16` in the run directory `run_dir`, or with
    /// `--cache-dir DIR`, `DIR/{run directory's name}-{exp}.prefix_cache.f16` (a name of its own per run,
    /// so runs sharing DIR do not share a file).
    pub fn prefix_cache_path(&self, run_dir: &std::path::Path) -> PathBuf {
        match &self.cache_dir {
            None => run_dir.join(crate::rundir::PREFIX_CACHE),
            Some(d) => d.join(format!(
                "{}.{}",
                crate::rundir::short_name(run_dir).join("-"),
                crate::rundir::PREFIX_CACHE
            )),
        }
    }

    /// The `run.json` record of this run, with this process's command line.
    pub fn run_info(&self) -> RunInfo {
        let (command, pretrained_model, unfreeze, freeze_bn) = match &self.kind {
            RunKind::Train => ("train", None, None, false),
            RunKind::Transfer {
                pretrained,
                trainable,
                freeze_bn,
                ..
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
        RunInfo {
            schema_version: crate::rundir::METRICS_SCHEMA_VERSION,
            command: command.into(),
            label: run_info::label(command, unfreeze.as_deref(), freeze_bn),
            command_line: std::env::args().collect(),
            pretrained_model,
            unfreeze,
            freeze_bn,
            train_dataset: self.train_dataset.clone(),
            test_dataset: self.test_dataset.clone(),
            validation_dataset: self.validation_dataset.clone(),
            flanking_size: self.flank.flank,
            epochs: self.epochs,
            scheduler: format!("{:?}", self.scheduler),
            loss: self.loss.name().into(),
            batch_size: self.batch_size,
            random_seed: self.random_seed,
            learning_rate: self.base_lr(),
            early_stopping: self.early_stopping,
            patience: self.patience,
            project_name: self.project_name.clone(),
            exp_num: self.exp_num.clone(),
            device: crate::device::describe(&self.device),
            tool_version: Some(env!("CARGO_PKG_VERSION").into()),
            started: Some(run_info::utc_now()),
            windows: None,
            precision: crate::ops::precision::run_label(),
        }
    }
}
