//! Training: the run configuration, AdamW, schedules, the trainer step, evaluation, checkpoints,
//! the run log, and the epoch loop that ties them together.

pub mod best;
pub mod cache;
pub mod checkpoints;
pub mod config;
pub mod console;
pub mod evaluate;
pub mod optim;
pub mod run_log;
pub mod runner;
pub mod schedule;
pub mod state;
pub mod trainer;

use std::path::PathBuf;

pub use config::{RunConfig, RunKind};
pub use runner::{run, run_test, RunSummary, TestOptions};

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error("{dir} already holds {count} checkpoint(s); pass --overwrite to write into it, or choose another --output-dir/--project-name/--exp-num")]
    RunDirNotEmpty { dir: PathBuf, count: usize },
    #[error("the loss became {value} at epoch {epoch}, batch {batch}; stopping without saving (the checkpoints of earlier epochs are intact). Try a lower learning rate or check the data")]
    NonFiniteLoss {
        epoch: usize,
        batch: usize,
        value: f32,
    },
    #[error("refusing to write {path}: the model has non-finite weights")]
    NonFiniteWeights { path: PathBuf },
    #[error("interrupted: stopped after the current batch; checkpoints and logs of finished epochs are intact (the same command with --resume continues from the last complete epoch)")]
    Interrupted,
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Lock(#[from] crate::rundir::lock::LockError),
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error(transparent)]
    RunLog(#[from] run_log::RunLogError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
