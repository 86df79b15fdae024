//! `models/model_{epoch}.pt` and `models/model_best.pt`: atomic writes, never NaN weights.

use std::path::{Path, PathBuf};

use super::TrainError;
use crate::checkpoint;
use crate::model::{io, SpliceAi};
use crate::rundir;

/// The `models/` folder of a run.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    run_dir: PathBuf,
    dir: PathBuf,
}

impl CheckpointStore {
    /// Creates `run_dir/models`, removing the temporary files of [`checkpoint::save`]'s atomic write that a
    /// killed run left there (`.model_best.pt.<pid>.<n>.tmp`).
    pub fn create(run_dir: &Path) -> Result<Self, TrainError> {
        let dir = rundir::models_dir(run_dir);
        std::fs::create_dir_all(&dir).map_err(|e| TrainError::Io {
            path: dir.clone(),
            source: e,
        })?;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if crate::atomic::is_temp_name(&name) {
                log::info!(
                    "removing {}, left by an interrupted checkpoint write",
                    entry.path().display()
                );
                std::fs::remove_file(entry.path()).map_err(|e| TrainError::Io {
                    path: entry.path(),
                    source: e,
                })?;
            }
        }
        Ok(Self {
            run_dir: run_dir.to_path_buf(),
            dir,
        })
    }

    /// Checkpoints already in `run_dir/models` (a run refuses to overwrite them without `--overwrite`).
    pub fn existing(run_dir: &Path) -> Vec<PathBuf> {
        let dir = rundir::models_dir(run_dir);
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pt"))
            .collect();
        found.sort();
        found
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of `model_{epoch}.pt`.
    pub fn epoch_path(&self, epoch: usize) -> PathBuf {
        rundir::epoch_model(&self.run_dir, epoch)
    }

    /// Path of `model_best.pt`.
    pub fn best_path(&self) -> PathBuf {
        rundir::best_model(&self.run_dir)
    }

    /// Writes the model to `path` atomically, after checking every weight is finite.
    pub fn save(&self, model: &SpliceAi, path: &Path) -> Result<(), TrainError> {
        if !io::all_finite(model)? {
            return Err(TrainError::NonFiniteWeights {
                path: path.to_path_buf(),
            });
        }
        let sd = io::state_dict(model)?;
        checkpoint::save(path, &sd)?;
        log::debug!("saved {}", path.display());
        Ok(())
    }
}
