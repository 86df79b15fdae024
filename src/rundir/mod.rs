//! The run directory of `train`/`transfer`/`test`, the one place that spells its layout:
//!
//! ```text
//! {output-dir}/SpliceAI_{project}_{flanking}_{exp}_rs{seed}/{exp}/   (upstream's path)
//!     models/model_{epoch}.pt, models/model_best.pt
//!     LOG/{TRAIN,VAL,TEST}/*.txt                                     (upstream's per-epoch files)
//!     metrics.jsonl, run.json, report.html                           (ours)
//!     run_state.safetensors, run.lock                                (ours: --resume, one run at a time)
//! ```
//!
//! `train` writes it, `test` writes `LOG/TEST`, `report` reads it; none of them names a file itself.

pub mod lock;
pub mod run_info;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use run_info::RunInfo;

/// The last two components of a run directory (`SpliceAI_x_80_0_rs42/0`): what tells runs apart.
pub fn short_name(run_dir: &Path) -> Vec<String> {
    let mut parts: Vec<String> = run_dir
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.reverse();
    parts
}

/// Checkpoints folder.
pub const MODELS: &str = "models";
/// Upstream's per-split log folder.
pub const LOG: &str = "LOG";
/// One JSON object per split per epoch (schema [`METRICS_SCHEMA_VERSION`]).
pub const METRICS_JSONL: &str = "metrics.jsonl";
/// What the run was asked to do ([`RunInfo`]).
pub const RUN_JSON: &str = "run.json";
/// The training curves that `train`/`transfer` write at the end.
pub const REPORT_HTML: &str = "report.html";
/// The checkpoint of the epoch with the lowest validation loss.
pub const BEST_MODEL: &str = "model_best.pt";

/// The learning rate of every batch, under `LOG/TRAIN/` (read by `report`).
pub const LR_EVERY_BATCH: &str = "learning_rate_every_batch.txt";
/// What `--resume` continues from: optimiser moments, counters and the run's identity, after each epoch.
pub const RUN_STATE: &str = "run_state.safetensors";
/// The lock file a running `train`/`transfer` holds (its PID and command line inside).
pub const RUN_LOCK: &str = "run.lock";
/// `transfer --freeze-bn`'s cache of the frozen layers' outputs.
pub const PREFIX_CACHE: &str = "prefix_cache.f16";

/// What `train`/`transfer` write in a run directory, as `crate::clobber::Io::output_dir` names (a folder
/// ends in `/`): no input may be among them.
pub const RUN_OUTPUTS: [&str; 8] = [
    "models/",
    "LOG/",
    METRICS_JSONL,
    RUN_JSON,
    REPORT_HTML,
    PREFIX_CACHE,
    RUN_STATE,
    RUN_LOCK,
];

/// The files `report` reads from a run directory: `metrics.jsonl`, `run.json` and the learning rate of
/// every batch.
pub fn report_inputs(run_dir: &Path) -> [PathBuf; 3] {
    [
        run_dir.join(METRICS_JSONL),
        run_dir.join(RUN_JSON),
        split_log_dir(run_dir, Split::Train).join(LR_EVERY_BATCH),
    ]
}

/// Layout version of `metrics.jsonl` and `run.json`, written as `schema_version` in each record. Raise it
/// when a field is renamed or removed, or its meaning changes; adding a field keeps the version.
pub const METRICS_SCHEMA_VERSION: u32 = 1;

/// Upstream's run directory: `{output_dir}/SpliceAI_{project_name}_{flanking}_{exp_num}_rs{random_seed}/{exp_num}`
/// (`initialize_paths_inner`; `models/` and `LOG/` go inside it).
pub fn upstream_run_dir(
    output_dir: impl AsRef<Path>,
    project_name: &str,
    flanking: usize,
    exp_num: &str,
    random_seed: u64,
) -> PathBuf {
    output_dir
        .as_ref()
        .join(format!(
            "SpliceAI_{project_name}_{flanking}_{exp_num}_rs{random_seed}"
        ))
        .join(exp_num)
}

/// `run_dir/models`.
pub fn models_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(MODELS)
}

/// `run_dir/models/model_{epoch}.pt`.
pub fn epoch_model(run_dir: &Path, epoch: usize) -> PathBuf {
    models_dir(run_dir).join(format!("model_{epoch}.pt"))
}

/// The epoch of a file named as [`epoch_model`] names them (`model_{epoch}.pt`), else `None`.
pub fn epoch_of_model(path: &Path) -> Option<usize> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("model_")?
        .strip_suffix(".pt")?
        .parse()
        .ok()
}

/// `run_dir/models/model_best.pt`.
pub fn best_model(run_dir: &Path) -> PathBuf {
    models_dir(run_dir).join(BEST_MODEL)
}

/// `run_dir/LOG`.
pub fn log_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(LOG)
}

/// `run_dir/LOG/{TRAIN,VAL,TEST}`.
pub fn split_log_dir(run_dir: &Path, split: Split) -> PathBuf {
    log_dir(run_dir).join(split.dir_name())
}

/// A data split, named as upstream's log directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Split {
    /// `LOG/TRAIN`.
    #[serde(rename = "train")]
    Train,
    /// `LOG/VAL`.
    #[serde(rename = "val")]
    Val,
    /// `LOG/TEST`.
    #[serde(rename = "test")]
    Test,
}

impl Split {
    /// All splits in upstream's evaluation order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The directory name under `LOG/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Split::Train => "TRAIN",
            Split::Val => "VAL",
            Split::Test => "TEST",
        }
    }

    /// Upstream's console header for the split's pass (`f"{run_mode.capitalize()}ing model..."`, hence
    /// "Validationing").
    pub fn console_header(self) -> &'static str {
        match self {
            Split::Train => "Training model...",
            Split::Val => "Validationing model...",
            Split::Test => "Testing model...",
        }
    }
}
