//! The one inference door: every command that loads a model only to evaluate it (`test`, `forward`,
//! `predict`, `variant`) loads through [`load_strict`] (one file) or [`Ensemble::load`] (a file or a
//! directory), and evaluates through `SpliceAi::predict`, the eval path that computes each unit only where
//! the output reads it. The ensemble forward is the mean of the models' softmax outputs, as OpenSpliceAI's.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::checkpoint::LoadReport;
use crate::model::io;
use crate::model::{FlankConfig, ModelError, SpliceAi};

/// Errors of model loading and inference.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("{}: no such file or directory", .0.display())]
    Missing(PathBuf),
    #[error("{}: cannot list the directory", path.display())]
    ListDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the directory holds no model (*.pt, *.pth, *.safetensors)", .0.display())]
    EmptyDir(PathBuf),
    #[error("{}: {ignored} tensors are not part of a SpliceAI-{flank} model (first: `{first}`); was it trained with another flanking size (-f)?", path.display())]
    Extra {
        path: PathBuf,
        flank: usize,
        ignored: usize,
        first: String,
    },
    /// Loading failed; the model's own errors name the file.
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// One model or several averaged: OpenSpliceAI's ensemble is the arithmetic mean of softmax outputs.
pub struct Ensemble {
    models: Vec<SpliceAi>,
    paths: Vec<PathBuf>,
    config: &'static FlankConfig,
    device: Device,
}

/// The model files of `path`: the file itself, or every `*.pt`, `*.pth` and `*.safetensors` of a
/// directory (not recursive), sorted by name so that runs are reproducible. OpenSpliceAI's `variant`
/// globs `*.p[th]` and misses `.pth`; both commands here take all three.
pub fn model_files(path: &Path) -> Result<Vec<PathBuf>, InferError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(InferError::Missing(path.to_path_buf()));
    }
    let list = |e| InferError::ListDir {
        path: path.to_path_buf(),
        source: e,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(list)? {
        let p = entry.map_err(list)?.path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if p.is_file() && matches!(ext, "pt" | "pth" | "safetensors") {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(InferError::EmptyDir(path.to_path_buf()));
    }
    Ok(files)
}

/// Loads one checkpoint for `config`: every tensor of the model must be there
/// ([`io::require_complete`]) and, as PyTorch's strict `load_state_dict`, no tensor may be left over (a
/// 10000nt checkpoint holds every tensor of a 400nt model and more).
pub fn load_strict(
    path: &Path,
    config: &'static FlankConfig,
    device: &Device,
) -> Result<(SpliceAi, LoadReport), InferError> {
    let (model, report) = io::from_checkpoint(config, path, 0, device)?;
    io::require_complete(path, config.flank, &report)?;
    if let Some(first) = report.ignored.first() {
        return Err(InferError::Extra {
            path: path.to_path_buf(),
            flank: config.flank,
            ignored: report.ignored.len(),
            first: first.clone(),
        });
    }
    Ok((model, report))
}

impl Ensemble {
    /// Every model of `path` (a file or a directory), each loaded strictly ([`load_strict`]).
    pub fn load(
        path: &Path,
        config: &'static FlankConfig,
        device: &Device,
    ) -> Result<Self, InferError> {
        let paths = model_files(path)?;
        let models = paths
            .iter()
            .map(|p| load_strict(p, config, device).map(|(m, _)| m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            models,
            paths,
            config,
            device: device.clone(),
        })
    }

    /// The flanking configuration.
    pub fn config(&self) -> &'static FlankConfig {
        self.config
    }

    /// The device the models live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Sets (or clears) the per-class temperature every model divides its logits by before the softmax
    /// ([`SpliceAi::set_temperature`]): the ensemble averages the calibrated probabilities.
    pub fn set_temperature(&mut self, t: Option<[f32; 3]>) -> Result<(), InferError> {
        for m in &mut self.models {
            m.set_temperature(t)?;
        }
        Ok(())
    }

    /// The files loaded, in averaging order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// `x` (N, 4, L) f32 on any device → mean softmax (N, 3, L − CL) on the CPU.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, InferError> {
        let x = x.to_device(&self.device)?;
        let mut sum: Option<Tensor> = None;
        for m in &self.models {
            let y = m.predict(&x)?;
            sum = Some(match sum {
                None => y,
                Some(s) => (s + y)?,
            });
        }
        let sum = sum.ok_or(ModelError::Internal("empty ensemble"))?;
        let y = if self.models.len() == 1 {
            sum
        } else {
            (sum / self.models.len() as f64)?
        };
        Ok(y.to_device(&Device::Cpu)?)
    }
}
