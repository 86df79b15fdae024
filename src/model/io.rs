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

/// A model of `config` initialised (seeded) and then loaded from a checkpoint file with upstream's
/// partial-loading rule: what the file lacks keeps its seeded value (`transfer --partial-load` and the
/// parity tests). Every command loads through the checkpoint door, [`open_checkpoint`], instead.
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

/// The number of ResidualUnits a state dict holds: the distinct `residual_units.<i>` entries with a unit's
/// layers (`batchnorm1`, `conv1`, `batchnorm2`, `conv2`); the Skips (`residual_units.<i>.conv`) are not
/// units. One missing tensor does not change the count.
pub fn unit_count(sd: &StateDict) -> usize {
    let units: std::collections::BTreeSet<usize> = sd
        .iter()
        .filter_map(|(n, _)| {
            let mut parts = n.strip_prefix("residual_units.")?.split('.');
            let i = parts.next()?.parse().ok()?;
            matches!(
                parts.next()?,
                "batchnorm1" | "conv1" | "batchnorm2" | "conv2"
            )
            .then_some(i)
        })
        .collect();
    units.len()
}

/// The checkpoint door: the one check every command runs on a checkpoint before it uses it.
///
/// The flanking size comes from the checkpoint's units ([`FlankConfig::for_unit_count`]); `requested` (the
/// `-f` flag) must agree with it, or it is an error naming both sizes. Then every tensor of the model must
/// be there ([`ModelError::Incomplete`]) with the model's shape ([`ModelError::WrongShape`]), floating-point
/// (`num_batches_tracked` an integer, [`ModelError::WrongDType`]) and finite ([`ModelError::NonFinite`]),
/// and nothing else may be in the file ([`ModelError::Extra`]), as PyTorch's strict `load_state_dict`.
/// Returns the configuration the checkpoint is a model of. `path` names the file in every error.
pub fn check_state_dict(
    path: &Path,
    sd: &StateDict,
    requested: Option<&'static FlankConfig>,
) -> Result<&'static FlankConfig, ModelError> {
    let units = unit_count(sd);
    let found = FlankConfig::for_unit_count(units);
    let config = match (requested, found) {
        (Some(r), Some(f)) if f.flank > r.flank => {
            return Err(ModelError::FlankMismatch {
                path: path.to_path_buf(),
                requested: r.flank,
                found: f.flank,
                units,
            })
        }
        (Some(r), _) => r,
        (None, Some(f)) => f,
        (None, None) => {
            return Err(ModelError::UnknownFlank {
                path: path.to_path_buf(),
                units,
            })
        }
    };
    let model = SpliceAi::new(config, 0, &Device::Cpu)?;
    let expected = model.expected();
    let mut missing = Vec::new();
    for (name, shape, kind) in &expected {
        let Some(t) = sd.get(name) else {
            missing.push(name.clone());
            continue;
        };
        let counter = *kind == EntryKind::Counter;
        if t.dtype.is_float() == counter {
            return Err(ModelError::WrongDType {
                path: path.to_path_buf(),
                name: name.clone(),
                found: t.dtype.name(),
                expected: if counter {
                    "an integer counter (int64)"
                } else {
                    "floating-point weights (float32)"
                },
            });
        }
        if t.shape != *shape {
            return Err(ModelError::WrongShape {
                path: path.to_path_buf(),
                flank: config.flank,
                name: name.clone(),
                expected: shape.clone(),
                found: t.shape.clone(),
            });
        }
    }
    if let Some(first) = missing.first() {
        return Err(ModelError::Incomplete {
            path: path.to_path_buf(),
            flank: config.flank,
            missing: missing.len(),
            total: expected.len(),
            first: first.clone(),
            found: found.map(|f| f.flank),
        });
    }
    let known: std::collections::HashSet<&str> =
        expected.iter().map(|(n, _, _)| n.as_str()).collect();
    let extra: Vec<&str> = sd
        .names()
        .into_iter()
        .filter(|n| !known.contains(n))
        .collect();
    if let Some(first) = extra.first() {
        return Err(ModelError::Extra {
            path: path.to_path_buf(),
            flank: config.flank,
            ignored: extra.len(),
            first: first.to_string(),
        });
    }
    for (name, _, kind) in &expected {
        if *kind == EntryKind::Counter {
            continue;
        }
        let Some(t) = sd.get(name) else { continue };
        let values = t.to_f32_vec().map_err(|e| ModelError::Tensor {
            name: name.clone(),
            source: Box::new(e),
        })?;
        let count = values.iter().filter(|v| !v.is_finite()).count();
        if count > 0 {
            return Err(ModelError::NonFinite {
                path: path.to_path_buf(),
                name: name.clone(),
                count,
                total: values.len(),
            });
        }
    }
    Ok(config)
}

/// Reads the checkpoint at `path` and runs the door ([`check_state_dict`]) on it.
pub fn checkpoint_config(
    path: &Path,
    requested: Option<&'static FlankConfig>,
) -> Result<&'static FlankConfig, ModelError> {
    let sd = checkpoint::load(path)?;
    check_state_dict(path, &sd, requested)
}

/// Loads the model of the checkpoint at `path` through the door ([`check_state_dict`]): a complete, finite
/// model of the checkpoint's own flanking size, which `requested` (`-f`), when given, must agree with.
pub fn open_checkpoint(
    path: &Path,
    requested: Option<&'static FlankConfig>,
    seed: u64,
    device: &Device,
) -> Result<(SpliceAi, LoadReport), ModelError> {
    let sd = checkpoint::load(path)?;
    let config = check_state_dict(path, &sd, requested)?;
    let mut model = SpliceAi::new(config, seed, device)?;
    let report = load_state_dict(&mut model, &sd, path)?;
    Ok((model, report))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CONFIGS;

    /// Every size's own state dict passes the door without `-f` and gives that size back; with a smaller
    /// `-f` it is refused naming both sizes, with a larger one it is incomplete naming its own size.
    #[test]
    fn the_door_reads_each_flanking_size_from_the_units() {
        let path = Path::new("m.pt");
        for (i, cfg) in CONFIGS.iter().enumerate() {
            let model = SpliceAi::new(cfg, 1, &Device::Cpu).unwrap();
            let sd = state_dict(&model).unwrap();
            assert_eq!(unit_count(&sd), cfg.n_units());
            assert_eq!(check_state_dict(path, &sd, None).unwrap().flank, cfg.flank);
            assert_eq!(
                check_state_dict(path, &sd, Some(cfg)).unwrap().flank,
                cfg.flank
            );
            if let Some(smaller) = i.checked_sub(1).map(|j| &CONFIGS[j]) {
                let e = check_state_dict(path, &sd, Some(smaller)).unwrap_err();
                assert!(
                    matches!(e, ModelError::FlankMismatch { requested, found, .. }
                        if requested == smaller.flank && found == cfg.flank),
                    "{e}"
                );
            }
            if let Some(larger) = CONFIGS.get(i + 1) {
                let e = check_state_dict(path, &sd, Some(larger)).unwrap_err();
                assert!(
                    matches!(e, ModelError::Incomplete { flank, found: Some(f), .. }
                        if flank == larger.flank && f == cfg.flank),
                    "{e}"
                );
            }
        }
    }
}
