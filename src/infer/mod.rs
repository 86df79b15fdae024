//! The one inference door: every command that loads a model only to evaluate it (`test`, `forward`,
//! `predict`, `variant`, `calibrate`) loads through [`load`] (one file) or [`Ensemble::load_all`] (files or
//! directories), both through the checkpoint door `model::io::check_state_dict`, and evaluates through `SpliceAi::predict`, the eval path that computes each unit only where
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
    #[error("{}: a SpliceAI-{flank} checkpoint, but {} is SpliceAI-{first_flank}: the models of an ensemble must share one flanking size", path.display(), first.display())]
    MixedFlank {
        path: PathBuf,
        flank: usize,
        first: PathBuf,
        first_flank: usize,
    },
    /// Loading failed; the model's own errors name the file.
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Errors of the commands that score sequences with a loaded ensemble (`predict`, `variant`): what they
/// read, the models, the outputs they write, a stop on request.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error(transparent)]
    Genome(#[from] crate::genome::GenomeError),
    #[error(transparent)]
    Vcf(#[from] crate::genome::vcf::VcfError),
    #[error(transparent)]
    Annotation(#[from] crate::genome::gene_table::AnnotationError),
    #[error(transparent)]
    Infer(Box<InferError>),
    #[error("{name}: cannot write")]
    Output {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("interrupted: no output written")]
    Interrupted,
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl From<InferError> for ScoreError {
    fn from(e: InferError) -> Self {
        ScoreError::Infer(Box::new(e))
    }
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
    let epochs = files
        .iter()
        .filter(|p| crate::rundir::epoch_of_model(p).is_some())
        .count();
    if epochs >= 2 {
        log::warn!(
            "{}: {epochs} of its {} models are named as one run's epoch checkpoints (model_{{epoch}}.pt): averaging the epochs of one run is rarely meant; give model_best.pt, or each model with -m",
            path.display(),
            files.len()
        );
    }
    Ok(files)
}

/// Loads one checkpoint through the checkpoint door ([`io::open_checkpoint`]): every tensor of the model
/// there, with its shape and type, finite, and nothing left over (PyTorch's strict `load_state_dict`; a
/// 10000nt checkpoint holds every tensor of a 400nt model and more). Without `requested` (`-f`) the model
/// has the checkpoint's own flanking size; with it, the two must agree.
pub fn load(
    path: &Path,
    requested: Option<&'static FlankConfig>,
    device: &Device,
) -> Result<(SpliceAi, LoadReport), InferError> {
    if !path.exists() {
        return Err(InferError::Missing(path.to_path_buf()));
    }
    Ok(io::open_checkpoint(path, requested, 0, device)?)
}

/// [`load`] for a given flanking size.
pub fn load_strict(
    path: &Path,
    config: &'static FlankConfig,
    device: &Device,
) -> Result<(SpliceAi, LoadReport), InferError> {
    load(path, Some(config), device)
}

/// The flanking size of the checkpoint at `path`, after the door's checks ([`io::check_state_dict`]):
/// `requested` when it agrees with the checkpoint, the checkpoint's own when `None`.
pub fn checkpoint_config(
    path: &Path,
    requested: Option<&'static FlankConfig>,
) -> Result<&'static FlankConfig, InferError> {
    if !path.exists() {
        return Err(InferError::Missing(path.to_path_buf()));
    }
    Ok(io::checkpoint_config(path, requested)?)
}

impl Ensemble {
    /// Every model of `path` (a file or a directory), each loaded strictly ([`load_strict`]).
    pub fn load(
        path: &Path,
        config: &'static FlankConfig,
        device: &Device,
    ) -> Result<Self, InferError> {
        Self::load_all(&[path.to_path_buf()], Some(config), device)
    }

    /// Every model of `paths` (files or directories, `-m` repeated), each through the checkpoint door
    /// ([`load`]); without `requested` the flanking size is the checkpoints', which must all agree.
    pub fn load_all(
        paths: &[PathBuf],
        requested: Option<&'static FlankConfig>,
        device: &Device,
    ) -> Result<Self, InferError> {
        let mut files = Vec::new();
        for p in paths {
            files.extend(model_files(p)?);
        }
        let mut models: Vec<SpliceAi> = Vec::with_capacity(files.len());
        for p in &files {
            let (m, _) = load(p, requested, device)?;
            if let Some(first) = models.first() {
                if first.config().flank != m.config().flank {
                    return Err(InferError::MixedFlank {
                        path: p.clone(),
                        flank: m.config().flank,
                        first: files[0].clone(),
                        first_flank: first.config().flank,
                    });
                }
            }
            models.push(m);
        }
        let config = match models.first() {
            Some(m) => m.config(),
            None => return Err(ModelError::Internal("empty ensemble").into()),
        };
        Ok(Self {
            models,
            paths: files,
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
