//! A human-readable description of a checkpoint: format, tensors, parameter count, inferred flanking size and
//! BatchNorm running statistics.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::checkpoint::{detect_format, load, CheckpointError, DType, Format, StateDict};

/// One tensor's name, type and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// State-dict name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
}

/// min / mean / max over all elements of a group of tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Smallest value.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Largest value.
    pub max: f64,
    /// Number of values summarised.
    pub count: usize,
}

impl Stats {
    fn of(values: impl IntoIterator<Item = f64>) -> Option<Stats> {
        let mut min = f64::INFINITY;
        let mut max = f64::NEG_INFINITY;
        let mut sum = 0.0;
        let mut count = 0usize;
        for v in values {
            min = min.min(v);
            max = max.max(v);
            sum += v;
            count += 1;
        }
        (count > 0).then(|| Stats {
            min,
            mean: sum / count as f64,
            max,
            count,
        })
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "min {:.6} / mean {:.6} / max {:.6} over {} values",
            self.min, self.mean, self.max, self.count
        )
    }
}

/// Summary of the BatchNorm layers' running statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormSummary {
    /// Number of BatchNorm layers (tensors named `*.running_mean`).
    pub layers: usize,
    /// Statistics over every `running_mean` element.
    pub running_mean: Option<Stats>,
    /// Statistics over every `running_var` element.
    pub running_var: Option<Stats>,
    /// The distinct `num_batches_tracked` values, ascending.
    pub num_batches_tracked: Vec<i64>,
}

/// What [`inspect`] finds in a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointInfo {
    /// The file described (empty when built from a state dict).
    pub path: PathBuf,
    /// The file format.
    pub format: Format,
    /// Every tensor in state-dict order.
    pub tensors: Vec<TensorInfo>,
    /// Number of elements of all tensors except BatchNorm running statistics and `num_batches_tracked`.
    pub parameter_count: usize,
    /// Number of residual units (distinct `residual_units.<i>` holding a unit's layers, `io::unit_count`).
    pub residual_units: usize,
    /// Flanking size implied by the number of residual units (4→80, 8→400, 12→2000, 16→10000).
    pub flanking: Option<usize>,
    /// BatchNorm running statistics, when there are BatchNorm layers.
    pub batchnorm: Option<BatchNormSummary>,
}

fn is_buffer(name: &str) -> bool {
    name.ends_with(".running_mean")
        || name.ends_with(".running_var")
        || name.ends_with(".num_batches_tracked")
}

impl CheckpointInfo {
    /// Describes an in-memory state dict (`path` is left empty).
    pub fn from_state_dict(
        sd: &StateDict,
        format: Format,
    ) -> Result<CheckpointInfo, CheckpointError> {
        let tensors: Vec<TensorInfo> = sd
            .iter()
            .map(|(n, t)| TensorInfo {
                name: n.to_string(),
                dtype: t.dtype,
                shape: t.shape.clone(),
            })
            .collect();
        let parameter_count = sd
            .iter()
            .filter(|(n, _)| !is_buffer(n))
            .map(|(_, t)| t.numel())
            .sum();
        // The checkpoint door's count, so `inspect` and every loading command agree on the size.
        let residual_units = super::io::unit_count(sd);

        let mut means = Vec::new();
        let mut vars = Vec::new();
        let mut tracked = BTreeSet::new();
        let mut layers = 0;
        for (n, t) in sd.iter() {
            if n.ends_with(".running_mean") {
                layers += 1;
                means.extend(t.to_f32_vec()?.into_iter().map(f64::from));
            } else if n.ends_with(".running_var") {
                vars.extend(t.to_f32_vec()?.into_iter().map(f64::from));
            } else if n.ends_with(".num_batches_tracked") {
                tracked.extend(t.to_i64_vec()?);
            }
        }
        let batchnorm = (layers > 0 || !tracked.is_empty()).then(|| BatchNormSummary {
            layers,
            running_mean: Stats::of(means),
            running_var: Stats::of(vars),
            num_batches_tracked: tracked.into_iter().collect(),
        });
        Ok(CheckpointInfo {
            path: PathBuf::new(),
            format,
            tensors,
            parameter_count,
            residual_units,
            flanking: super::FlankConfig::for_unit_count(residual_units).map(|c| c.flank),
            batchnorm,
        })
    }
}

/// Reads and describes the checkpoint at `path`.
pub fn inspect(path: &Path) -> Result<CheckpointInfo, CheckpointError> {
    let format = detect_format(path)?;
    let sd = load(path)?;
    let mut info = CheckpointInfo::from_state_dict(&sd, format)?;
    info.path = path.to_path_buf();
    Ok(info)
}

impl fmt::Display for CheckpointInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.as_os_str().is_empty() {
            writeln!(f, "checkpoint: {}", self.path.display())?;
        }
        writeln!(f, "format: {}", self.format)?;
        writeln!(
            f,
            "tensors: {}, parameters: {} (excluding BatchNorm running statistics)",
            self.tensors.len(),
            self.parameter_count
        )?;
        match self.flanking {
            Some(fl) => writeln!(
                f,
                "residual units: {} => flanking size {fl} nt (SpliceAI-{fl})",
                self.residual_units
            )?,
            None => writeln!(
                f,
                "residual units: {} (not a standard SpliceAI layout: expected 4, 8, 12 or 16)",
                self.residual_units
            )?,
        }
        if let Some(bn) = &self.batchnorm {
            writeln!(f, "batchnorm layers: {}", bn.layers)?;
            if let Some(s) = bn.running_mean {
                writeln!(f, "  running_mean: {s}")?;
            }
            if let Some(s) = bn.running_var {
                writeln!(f, "  running_var:  {s}")?;
            }
            let tracked: Vec<String> = bn
                .num_batches_tracked
                .iter()
                .map(|v| v.to_string())
                .collect();
            writeln!(f, "  num_batches_tracked: {}", tracked.join(", "))?;
        }
        let width = self.tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for t in &self.tensors {
            writeln!(
                f,
                "  {:<width$}  {:<8} {:?}",
                t.name,
                t.dtype.name(),
                t.shape
            )?;
        }
        Ok(())
    }
}
