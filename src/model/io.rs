//! Moving a [`SpliceAi`] to and from a checkpoint [`StateDict`] (PyTorch names, PyTorch order).

use std::path::Path;

use candle_core::{Device, Tensor};

use super::spliceai::{EntryKind, NamedValue, SpliceAi};
use super::{FlankConfig, ModelError};
use crate::checkpoint::{self, Expected, LoadReport, RawTensor, StateDict};

/// The names and shapes the model expects, in PyTorch order.
pub fn expected(model: &SpliceAi) -> Vec<Expected> {
    model
        .expected()
        .into_iter()
        .map(|(name, shape, _)| Expected::new(name, shape))
        .collect()
}

/// Loads the tensors of `sd` whose name and shape match the model (upstream's partial-loading rule, docs/upstream-behaviour.md#checkpoints); the rest of
/// the model keeps its current values. `source` names the file in errors. Fails when nothing matches.
pub fn load_state_dict(
    model: &mut SpliceAi,
    sd: &StateDict,
    source: &Path,
) -> Result<LoadReport, ModelError> {
    let (matched, report) = checkpoint::match_state_dict(sd, &expected(model));
    if report.loaded.is_empty() {
        return Err(ModelError::NoMatch {
            path: source.to_path_buf(),
            flank: model.config().flank,
            found: sd.len(),
        });
    }
    let kinds: std::collections::HashMap<String, EntryKind> = model
        .expected()
        .into_iter()
        .map(|(n, _, k)| (n, k))
        .collect();
    let device = model.device().clone();
    for (name, raw) in matched.iter() {
        let value = match kinds.get(name) {
            Some(EntryKind::Counter) => NamedValue::Counter(
                raw.to_i64_vec()
                    .map_err(|e| ModelError::Tensor {
                        name: name.to_string(),
                        source: Box::new(e),
                    })?
                    .first()
                    .copied()
                    .unwrap_or(0),
            ),
            _ => {
                let v = raw.to_f32_vec().map_err(|e| ModelError::Tensor {
                    name: name.to_string(),
                    source: Box::new(e),
                })?;
                NamedValue::Tensor(Tensor::from_vec(v, raw.shape.clone(), &device)?)
            }
        };
        model.set(name, value)?;
    }
    for name in &report.missing {
        log::debug!(
            "{}: `{name}` not in the checkpoint, keeps its initial value",
            source.display()
        );
    }
    for name in &report.ignored {
        log::debug!(
            "{}: `{name}` ignored (not in the model, or another shape)",
            source.display()
        );
    }
    Ok(report)
}

/// A model of `config` initialised (seeded) and then loaded from a checkpoint file (upstream's partial
/// loading: what the file lacks keeps its seeded value; `transfer` relies on this). Commands that only
/// evaluate load through `infer::load_strict` instead.
pub fn from_checkpoint(
    config: &'static FlankConfig,
    path: &Path,
    seed: u64,
    device: &Device,
) -> Result<(SpliceAi, LoadReport), ModelError> {
    let sd = checkpoint::load(path)?;
    let mut model = SpliceAi::new(config, seed, device)?;
    let report = load_state_dict(&mut model, &sd, path)?;
    Ok((model, report))
}

/// Fails with [`ModelError::Incomplete`] unless the checkpoint at `path` gave the model every tensor.
///
/// The one completeness rule for commands that only evaluate (`forward`, `test`, `predict`, `variant`, all
/// through `infer::load_strict`):
/// a partly loaded model would be scored with seeded random weights in the missing places. `transfer`
/// keeps upstream's partial-loading rule and does not call this.
pub fn require_complete(path: &Path, flank: usize, report: &LoadReport) -> Result<(), ModelError> {
    match report.missing.first() {
        None => Ok(()),
        Some(first) => Err(ModelError::Incomplete {
            path: path.to_path_buf(),
            flank,
            missing: report.missing.len(),
            total: report.loaded.len() + report.missing.len(),
            first: first.clone(),
        }),
    }
}

/// The model's state dict: every tensor in PyTorch order, f32 on the CPU, `num_batches_tracked` as int64.
pub fn state_dict(model: &SpliceAi) -> Result<StateDict, ModelError> {
    let mut sd = StateDict::new();
    for (name, value) in model.named_values() {
        let raw = match value {
            NamedValue::Counter(c) => RawTensor::from_i64(Vec::<usize>::new(), &[c]),
            NamedValue::Tensor(t) => {
                let shape = t.dims().to_vec();
                let v = t.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
                RawTensor::from_f32(shape, &v)
            }
        };
        sd.insert(name, raw);
    }
    Ok(sd)
}

/// True if every float tensor of the model is finite (checked before a checkpoint is written).
pub fn all_finite(model: &SpliceAi) -> Result<bool, ModelError> {
    for (_, value) in model.named_values() {
        if let NamedValue::Tensor(t) = value {
            let bad = t
                .flatten_all()?
                .to_vec1::<f32>()?
                .iter()
                .any(|v| !v.is_finite());
            if bad {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
