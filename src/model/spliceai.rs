//! The SpliceAI network (OpenSpliceAI's `SpliceAI` module) over candle tensors.
//!
//! Every tensor lives in one ordered table under its PyTorch state-dict name, in PyTorch's registration order,
//! so that loading, saving and choosing the trainable subset are the same walk over one list. Trainable
//! parameters are candle [`Var`]s (tracked by autograd and handed to the optimiser); everything else is a
//! plain tensor, so backward does no work for frozen layers.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use rand::{rngs::StdRng, Rng, SeedableRng};

use super::config::{BlockSpec, FlankConfig, CHANNELS, IN_CHANNELS, OUT_CLASSES};
use super::ModelError;
use crate::ops::bn_act::{
    batch_moments, batchnorm_leaky_relu, bn_channel_map, channel_moment_sums, BnStats,
};
use crate::ops::conv::{
    conv1d_same, conv1d_same_fused, fused_available, ChannelMap, FusedOutput, Fusion,
};

/// BatchNorm1d epsilon (PyTorch default).
pub const BN_EPS: f64 = 1e-5;
/// BatchNorm1d momentum (PyTorch default).
pub const BN_MOMENTUM: f64 = 0.1;
/// LeakyReLU negative slope.
pub const LEAKY_SLOPE: f64 = 0.1;

/// What one state-dict entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A learnable parameter (conv weight/bias, BatchNorm weight/bias).
    Param,
    /// A BatchNorm running mean or variance (a buffer).
    RunningStat,
    /// A BatchNorm `num_batches_tracked` counter (int64 scalar).
    Counter,
}

/// The value of one entry.
#[derive(Debug, Clone)]
enum Slot {
    Frozen(Tensor),
    Trainable(Var),
    Counter(i64),
}

/// One named tensor of the model.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    kind: EntryKind,
    shape: Vec<usize>,
    slot: Slot,
    /// The ResidualUnit this entry belongs to (for `--unfreeze n`), if any.
    unit: Option<usize>,
}

/// A tensor value taken out of, or put into, the model: f32 data or an int64 counter.
#[derive(Debug, Clone)]
pub enum NamedValue {
    /// Any float tensor (converted to the model's f32 on load).
    Tensor(Tensor),
    /// `num_batches_tracked`.
    Counter(i64),
}

#[derive(Debug, Clone, Copy)]
struct ConvIdx {
    w: usize,
    b: usize,
    dilation: usize,
}

/// The BatchNorm running-statistics updates of one pass, recorded while the pass runs on `&self` and
/// applied after it by the `&mut self` entry points ([`SpliceAi::forward`], [`SpliceAi::forward_suffix`]).
/// An eval pass records none.
#[derive(Debug, Default)]
struct RunningUpdate {
    batches: Vec<BatchMoments>,
}

/// One BatchNorm's batch mean and biased variance over `count` values.
#[derive(Debug)]
struct BatchMoments {
    bn: BnIdx,
    moments: Moments,
    count: usize,
}

/// Batch mean and biased variance: on the host in f64, or as f32 tensors on the model's device (the
/// device BatchNorm op: CUDA and `OSAI_OPS=reference`), updated there without a host round trip.
#[derive(Debug)]
enum Moments {
    Host(Vec<f64>, Vec<f64>),
    Device(Tensor, Tensor),
}

impl RunningUpdate {
    fn record(&mut self, bn: BnIdx, mean: Vec<f64>, var: Vec<f64>, count: usize) {
        self.batches.push(BatchMoments {
            bn,
            moments: Moments::Host(mean, var),
            count,
        });
    }

    fn record_device(&mut self, bn: BnIdx, mean: Tensor, var: Tensor, count: usize) {
        self.batches.push(BatchMoments {
            bn,
            moments: Moments::Device(mean, var),
            count,
        });
    }
}

#[derive(Debug, Clone, Copy)]
struct BnIdx {
    weight: usize,
    bias: usize,
    mean: usize,
    var: usize,
    count: usize,
}

#[derive(Debug, Clone, Copy)]
enum Block {
    Unit(Unit),
    Skip(ConvIdx),
}

/// A residual unit's parameters: BN → LeakyReLU → conv, twice, added to the trunk.
#[derive(Debug, Clone, Copy)]
struct Unit {
    bn1: BnIdx,
    conv1: ConvIdx,
    bn2: BnIdx,
    conv2: ConvIdx,
}

/// The activations at a cut of the `residual_units` list: the trunk `h` (N, 32, 5000 + CL) and the skip
/// accumulator (N, 32, 5000 + CL, or already cropped to (N, 32, 5000)).
#[derive(Debug, Clone)]
pub struct Trunk {
    pub h: Tensor,
    pub skip: Tensor,
}

/// Which parameters are trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trainable {
    /// Nothing (evaluation).
    Nothing,
    /// The parameters of the last n ResidualUnits (Skip layers, `initial_*` and `final_conv` stay frozen).
    LastUnits(usize),
    /// Every parameter.
    All,
}

/// Forward mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// BatchNorm from running statistics; nothing is updated. For inference only: on CPUs with the fused
    /// kernels the blocks run without autograd, so a backward pass through an eval forward yields no
    /// parameter gradients.
    Eval,
    /// BatchNorm from batch statistics; running statistics and counters are updated (PyTorch `train()`).
    Train,
}

/// The SpliceAI model for one flanking size.
#[derive(Debug, Clone)]
pub struct SpliceAi {
    config: &'static FlankConfig,
    device: Device,
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    initial_conv: ConvIdx,
    initial_skip: ConvIdx,
    blocks: Vec<Block>,
    final_conv: ConvIdx,
    /// When set, BatchNorms whose parameters are frozen run in eval mode during training (`--freeze-bn`).
    freeze_bn: bool,
    /// Per-class temperature (1, 3, 1) that eval-mode predictions divide the logits by before the softmax
    /// (`calibrate`'s output, `--temperature`); training never reads it.
    temperature: Option<Tensor>,
}

struct Builder {
    entries: Vec<Entry>,
    rng: StdRng,
    device: Device,
}

impl Builder {
    fn push(
        &mut self,
        name: String,
        kind: EntryKind,
        shape: Vec<usize>,
        slot: Slot,
        unit: Option<usize>,
    ) -> usize {
        self.entries.push(Entry {
            name,
            kind,
            shape,
            slot,
            unit,
        });
        self.entries.len() - 1
    }

    /// PyTorch's Conv1d default initialisation: weight and bias uniform in ±1/sqrt(fan_in).
    fn conv(
        &mut self,
        prefix: &str,
        cin: usize,
        cout: usize,
        k: usize,
        dilation: usize,
        unit: Option<usize>,
    ) -> Result<ConvIdx, ModelError> {
        let bound = 1.0 / ((cin * k) as f64).sqrt();
        let mut uniform = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| self.rng.random_range(-bound..bound) as f32)
                .collect()
        };
        let wv = uniform(cout * cin * k);
        let bv = uniform(cout);
        let w = Tensor::from_vec(wv, (cout, cin, k), &self.device)?;
        let b = Tensor::from_vec(bv, cout, &self.device)?;
        Ok(ConvIdx {
            w: self.push(
                format!("{prefix}.weight"),
                EntryKind::Param,
                vec![cout, cin, k],
                Slot::Frozen(w),
                unit,
            ),
            b: self.push(
                format!("{prefix}.bias"),
                EntryKind::Param,
                vec![cout],
                Slot::Frozen(b),
                unit,
            ),
            dilation,
        })
    }

    fn bn(&mut self, prefix: &str, c: usize, unit: Option<usize>) -> Result<BnIdx, ModelError> {
        let ones = Tensor::ones(c, DType::F32, &self.device)?;
        let zeros = Tensor::zeros(c, DType::F32, &self.device)?;
        Ok(BnIdx {
            weight: self.push(
                format!("{prefix}.weight"),
                EntryKind::Param,
                vec![c],
                Slot::Frozen(ones.clone()),
                unit,
            ),
            bias: self.push(
                format!("{prefix}.bias"),
                EntryKind::Param,
                vec![c],
                Slot::Frozen(zeros.clone()),
                unit,
            ),
            mean: self.push(
                format!("{prefix}.running_mean"),
                EntryKind::RunningStat,
                vec![c],
                Slot::Frozen(zeros),
                unit,
            ),
            var: self.push(
                format!("{prefix}.running_var"),
                EntryKind::RunningStat,
                vec![c],
                Slot::Frozen(ones),
                unit,
            ),
            count: self.push(
                format!("{prefix}.num_batches_tracked"),
                EntryKind::Counter,
                vec![],
                Slot::Counter(0),
                unit,
            ),
        })
    }
}

impl SpliceAi {
    /// A freshly initialised model (PyTorch default initialisation, seeded).
    pub fn new(
        config: &'static FlankConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let mut b = Builder {
            entries: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            device: device.clone(),
        };
        let initial_conv = b.conv("initial_conv", IN_CHANNELS, CHANNELS, 1, 1, None)?;
        let initial_skip = b.conv("initial_skip.conv", CHANNELS, CHANNELS, 1, 1, None)?;
        let mut blocks = Vec::new();
        for (i, spec) in config.layout().into_iter().enumerate() {
            let p = format!("residual_units.{i}");
            blocks.push(match spec {
                BlockSpec::Unit {
                    unit,
                    kernel,
                    dilation,
                } => {
                    let u = Some(unit);
                    let bn1 = b.bn(&format!("{p}.batchnorm1"), CHANNELS, u)?;
                    let bn2 = b.bn(&format!("{p}.batchnorm2"), CHANNELS, u)?;
                    let conv1 = b.conv(
                        &format!("{p}.conv1"),
                        CHANNELS,
                        CHANNELS,
                        kernel,
                        dilation,
                        u,
                    )?;
                    let conv2 = b.conv(
                        &format!("{p}.conv2"),
                        CHANNELS,
                        CHANNELS,
                        kernel,
                        dilation,
                        u,
                    )?;
                    Block::Unit(Unit {
                        bn1,
                        conv1,
                        bn2,
                        conv2,
                    })
                }
                BlockSpec::Skip => {
                    Block::Skip(b.conv(&format!("{p}.conv"), CHANNELS, CHANNELS, 1, 1, None)?)
                }
            });
        }
        let final_conv = b.conv("final_conv", CHANNELS, OUT_CLASSES, 1, 1, None)?;
        let index = b
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        Ok(Self {
            config,
            device: device.clone(),
            entries: b.entries,
            index,
            initial_conv,
            initial_skip,
            blocks,
            final_conv,
            freeze_bn: false,
            temperature: None,
        })
    }

    /// The configuration (flanking size, W, AR, batch size).
    pub fn config(&self) -> &'static FlankConfig {
        self.config
    }

    /// The device the tensors live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// State-dict names and shapes in PyTorch order.
    pub fn expected(&self) -> Vec<(String, Vec<usize>, EntryKind)> {
        self.entries
            .iter()
            .map(|e| (e.name.clone(), e.shape.clone(), e.kind))
            .collect()
    }

    /// Sets one entry from a loaded value. The shape must match; float data is converted to f32.
    pub fn set(&mut self, name: &str, value: NamedValue) -> Result<(), ModelError> {
        let i = *self
            .index
            .get(name)
            .ok_or_else(|| ModelError::UnknownTensor(name.to_string()))?;
        let e = &mut self.entries[i];
        match (value, &mut e.slot) {
            (NamedValue::Counter(c), Slot::Counter(dst)) => *dst = c,
            (NamedValue::Tensor(t), Slot::Counter(dst)) => {
                *dst = t
                    .to_dtype(DType::I64)?
                    .flatten_all()?
                    .to_vec1::<i64>()?
                    .first()
                    .copied()
                    .unwrap_or(0)
            }
            (NamedValue::Counter(_), _) => {
                return Err(ModelError::Shape {
                    name: name.into(),
                    expected: e.shape.clone(),
                    got: vec![],
                })
            }
            (NamedValue::Tensor(t), slot) => {
                if t.dims() != e.shape.as_slice() {
                    return Err(ModelError::Shape {
                        name: name.into(),
                        expected: e.shape.clone(),
                        got: t.dims().to_vec(),
                    });
                }
                let t = t
                    .to_dtype(DType::F32)?
                    .to_device(&self.device)?
                    .contiguous()?;
                match slot {
                    Slot::Trainable(v) => v.set(&t)?,
                    Slot::Frozen(dst) => *dst = t,
                    Slot::Counter(_) => unreachable!("handled above"),
                }
            }
        }
        Ok(())
    }

    /// Every entry in PyTorch state-dict order (a detached copy of trainable values).
    pub fn named_values(&self) -> Vec<(String, NamedValue)> {
        self.entries
            .iter()
            .map(|e| {
                let v = match &e.slot {
                    Slot::Frozen(t) => NamedValue::Tensor(t.clone()),
                    Slot::Trainable(v) => NamedValue::Tensor(v.as_tensor().detach()),
                    Slot::Counter(c) => NamedValue::Counter(*c),
                };
                (e.name.clone(), v)
            })
            .collect()
    }

    /// The current value of one entry, if it is a tensor.
    pub fn tensor(&self, name: &str) -> Option<Tensor> {
        let e = &self.entries[*self.index.get(name)?];
        match &e.slot {
            Slot::Frozen(t) => Some(t.clone()),
            Slot::Trainable(v) => Some(v.as_tensor().clone()),
            Slot::Counter(_) => None,
        }
    }

    /// The value of a `num_batches_tracked` counter.
    pub fn counter(&self, name: &str) -> Option<i64> {
        match self.entries[*self.index.get(name)?].slot {
            Slot::Counter(c) => Some(c),
            _ => None,
        }
    }

    /// Chooses the trainable parameters; returns `(name, Var)` for each, in state-dict order.
    ///
    /// `LastUnits(n)` with n larger than the number of units is clamped (as upstream does); n = 0 trains
    /// nothing.
    pub fn set_trainable(&mut self, which: Trainable) -> Result<Vec<(String, Var)>, ModelError> {
        let n_units = self.config.n_units();
        let first_trained_unit = match which {
            Trainable::Nothing => None,
            Trainable::All => Some(0),
            Trainable::LastUnits(n) => {
                Some(n_units.saturating_sub(n.min(n_units))).filter(|_| n > 0)
            }
        };
        let mut vars = Vec::new();
        for e in &mut self.entries {
            if e.kind != EntryKind::Param {
                continue;
            }
            let train = match which {
                Trainable::All => true,
                Trainable::Nothing => false,
                Trainable::LastUnits(_) => match (e.unit, first_trained_unit) {
                    (Some(u), Some(first)) => u >= first,
                    _ => false,
                },
            };
            let current = match &e.slot {
                Slot::Frozen(t) => t.clone(),
                Slot::Trainable(v) => v.as_tensor().detach(),
                Slot::Counter(_) => continue,
            };
            if train {
                let v = Var::from_tensor(&current)?;
                vars.push((e.name.clone(), v.clone()));
                e.slot = Slot::Trainable(v);
            } else {
                e.slot = Slot::Frozen(current);
            }
        }
        Ok(vars)
    }

    /// `--freeze-bn`: BatchNorms whose parameters are frozen normalise with running statistics during
    /// training and never update them.
    pub fn set_freeze_bn(&mut self, on: bool) {
        self.freeze_bn = on;
    }

    /// The current value of tensor entry `i` (frozen, or a trainable `Var`'s). Entry indices come from the
    /// layout, so a counter here is a bug.
    fn value(&self, i: usize) -> &Tensor {
        match &self.entries[i].slot {
            Slot::Frozen(t) => t,
            Slot::Trainable(v) => v.as_tensor(),
            Slot::Counter(_) => panic!("entry {} is a counter, not a tensor", self.entries[i].name),
        }
    }

    fn is_trainable(&self, i: usize) -> bool {
        matches!(self.entries[i].slot, Slot::Trainable(_))
    }

    fn conv(&self, c: ConvIdx, x: &Tensor) -> Result<Tensor, ModelError> {
        Ok(conv1d_same(
            x,
            self.value(c.w),
            self.value(c.b),
            c.dilation,
        )?)
    }

    /// BatchNorm followed by LeakyReLU (one fused op); in batch-statistics mode it also updates the running
    /// statistics (unbiased variance, momentum 0.1) and `num_batches_tracked`, as PyTorch's `train()` does.
    fn bn_lrelu(
        &self,
        bn: BnIdx,
        x: &Tensor,
        mode: Mode,
        updates: &mut RunningUpdate,
    ) -> Result<Tensor, ModelError> {
        let stats = if self.uses_batch_stats(bn, mode) {
            BnStats::Batch
        } else {
            BnStats::Running {
                mean: self.value(bn.mean),
                var: self.value(bn.var),
            }
        };
        let out = batchnorm_leaky_relu(
            x,
            self.value(bn.weight),
            self.value(bn.bias),
            stats,
            BN_EPS,
            LEAKY_SLOPE,
        )?;
        let (n, _, l) = x.dims3()?;
        if let Some((mean, var)) = out.batch_stats {
            updates.record(bn, mean, var, n * l);
        } else if let Some((mean, var)) = out.device_stats {
            updates.record_device(bn, mean, var, n * l);
        }
        Ok(out.y)
    }

    /// Whether BatchNorm `bn` normalises with batch statistics in `mode` (PyTorch `train()`), rather than
    /// with its running statistics.
    fn uses_batch_stats(&self, bn: BnIdx, mode: Mode) -> bool {
        let frozen = !self.is_trainable(bn.weight) && !self.is_trainable(bn.bias);
        mode == Mode::Train && !(self.freeze_bn && frozen)
    }

    /// Applies the running-statistics updates a pass recorded (each BatchNorm runs once per pass, so
    /// applying them after it gives what PyTorch's in-place updates give).
    fn apply_running(&mut self, updates: RunningUpdate) -> Result<(), ModelError> {
        for u in updates.batches {
            match u.moments {
                Moments::Host(mean, var) => self.update_running(u.bn, &mean, &var, u.count)?,
                Moments::Device(mean, var) => {
                    self.update_running_device(u.bn, &mean, &var, u.count)?
                }
            }
        }
        Ok(())
    }

    /// Folds a batch mean and biased variance (over `count` values) into the running statistics as PyTorch
    /// does (unbiased variance, momentum 0.1) and counts the batch.
    fn update_running(
        &mut self,
        bn: BnIdx,
        mean: &[f64],
        var: &[f64],
        count: usize,
    ) -> Result<(), ModelError> {
        let (m, unbias) = (BN_MOMENTUM, unbias(count));
        let old_mean = self.value(bn.mean).to_vec1::<f32>()?;
        let old_var = self.value(bn.var).to_vec1::<f32>()?;
        let new_mean: Vec<f32> = old_mean
            .iter()
            .zip(mean)
            .map(|(&o, &b)| ((1.0 - m) * o as f64 + m * b) as f32)
            .collect();
        let new_var: Vec<f32> = old_var
            .iter()
            .zip(var)
            .map(|(&o, &v)| ((1.0 - m) * o as f64 + m * v * unbias) as f32)
            .collect();
        let c = new_mean.len();
        let new_mean = Tensor::from_vec(new_mean, c, &self.device)?;
        let new_var = Tensor::from_vec(new_var, c, &self.device)?;
        self.set_running(bn, new_mean, new_var);
        Ok(())
    }

    /// Stores BatchNorm `bn`'s new running statistics and counts the batch (`num_batches_tracked`).
    fn set_running(&mut self, bn: BnIdx, mean: Tensor, var: Tensor) {
        self.entries[bn.mean].slot = Slot::Frozen(mean);
        self.entries[bn.var].slot = Slot::Frozen(var);
        if let Slot::Counter(k) = &mut self.entries[bn.count].slot {
            *k += 1;
        }
    }

    /// [`Self::update_running`] with the batch moments as f32 tensors on the model's device, computed
    /// there (f32 instead of the host's f64: within a few ulps).
    fn update_running_device(
        &mut self,
        bn: BnIdx,
        mean: &Tensor,
        var: &Tensor,
        count: usize,
    ) -> Result<(), ModelError> {
        let (m, unbias) = (BN_MOMENTUM, unbias(count));
        let blend = |old: &Tensor, new: Tensor| -> candle_core::Result<Tensor> {
            (old.affine(1.0 - m, 0.0)? + new)?.detach().contiguous()
        };
        let new_mean = blend(self.value(bn.mean), mean.detach().affine(m, 0.0)?)?;
        let new_var = blend(self.value(bn.var), var.detach().affine(m * unbias, 0.0)?)?;
        self.set_running(bn, new_mean, new_var);
        Ok(())
    }

    /// BatchNorm `bn` + LeakyReLU as a per-channel map for the fused kernels: from the running statistics,
    /// or, in batch-statistics mode, from the input's sums (Σ, Σ² over `count` values per channel), in
    /// which case the running-statistics update is recorded as [`Self::bn_lrelu`] does.
    fn bn_map(
        &self,
        bn: BnIdx,
        mode: Mode,
        updates: &mut RunningUpdate,
        sums: impl FnOnce() -> Result<(Vec<(f64, f64)>, usize), ModelError>,
    ) -> Result<ChannelMap, ModelError> {
        let w = self.value(bn.weight).to_vec1::<f32>()?;
        let b = self.value(bn.bias).to_vec1::<f32>()?;
        let (mean, var) = if self.uses_batch_stats(bn, mode) {
            let (sums, count) = sums()?;
            let (mean, var) = batch_moments(&sums, count);
            updates.record(bn, mean.clone(), var.clone(), count);
            (mean, var)
        } else {
            let f64s = |t: &Tensor| -> Result<Vec<f64>, ModelError> {
                Ok(t.to_vec1::<f32>()?.iter().map(|&v| v as f64).collect())
            };
            (f64s(self.value(bn.mean))?, f64s(self.value(bn.var))?)
        };
        Ok(bn_channel_map(&w, &b, &mean, &var, BN_EPS, LEAKY_SLOPE))
    }

    /// List index of the first block holding a trained parameter (0 when a stem parameter is trained, the
    /// number of blocks when nothing is). Blocks before it get no gradient.
    fn first_trained_block(&self) -> usize {
        match self
            .entries
            .iter()
            .find(|e| matches!(e.slot, Slot::Trainable(_)))
        {
            None => self.blocks.len(),
            Some(e) => match e.unit {
                Some(u) => FlankConfig::block_index_of_unit(u),
                None => 0,
            },
        }
    }

    /// Whether the first residual unit after block `bi` normalises its input with batch statistics.
    fn next_bn1_uses_batch_stats(&self, bi: usize, mode: Mode) -> bool {
        self.blocks[bi + 1..].iter().find_map(|b| match b {
            Block::Unit(u) => Some(self.uses_batch_stats(u.bn1, mode)),
            Block::Skip(_) => None,
        }) == Some(true)
    }

    /// Runs block `bi` through the fused kernels (no autograd: only for blocks no gradient reaches).
    /// `h_sums` carries Σ, Σ² of `state.h` per channel when known. `Ok(false)` where no fused kernel runs.
    fn fused_block(
        &self,
        bi: usize,
        state: &mut Trunk,
        h_sums: &mut Option<Vec<(f64, f64)>>,
        mode: Mode,
        updates: &mut RunningUpdate,
    ) -> Result<bool, ModelError> {
        if !fused_available(&self.device) {
            return Ok(false);
        }
        let (n, _, l) = state.h.dims3()?;
        match self.blocks[bi] {
            Block::Unit(Unit {
                bn1,
                conv1,
                bn2,
                conv2,
            }) => {
                let h = state.h.clone();
                let known = h_sums.take();
                let pre1 = self.bn_map(bn1, mode, updates, || {
                    let sums = match known {
                        Some(s) => s,
                        None => channel_moment_sums(&h)?,
                    };
                    Ok((sums, n * l))
                })?;
                let batch2 = self.uses_batch_stats(bn2, mode);
                // Running statistics: BN2 folds into conv1's epilogue. Batch statistics: conv1's output
                // sums come out of the same pass and BN2 is applied while conv2 reads its input.
                let post1 = if batch2 {
                    None
                } else {
                    Some(self.bn_map(bn2, mode, updates, || {
                        Err(ModelError::Internal("BN2 statistics"))
                    })?)
                };
                let fusion = Fusion {
                    pre: Some(&pre1),
                    post: post1.as_ref(),
                    residual: None,
                    sums: batch2,
                };
                let (t, t_sums) = self.fused_conv(conv1, &h, fusion)?;
                let pre2 = match t_sums {
                    Some(s) => Some(self.bn_map(bn2, mode, updates, || Ok((s, n * l)))?),
                    None => None,
                };
                let fusion = Fusion {
                    pre: pre2.as_ref(),
                    post: None,
                    residual: Some(&h),
                    // Σ, Σ² of the new h only when the next unit's BN1 normalises with batch statistics.
                    sums: self.next_bn1_uses_batch_stats(bi, mode),
                };
                let (h2, sums2) = self.fused_conv(conv2, &t, fusion)?;
                state.h = h2;
                *h_sums = sums2;
            }
            Block::Skip(c) => {
                if state.skip.dims() != state.h.dims() {
                    return Ok(false);
                }
                let fusion = Fusion {
                    residual: Some(&state.skip),
                    ..Fusion::default()
                };
                let (skip, _) = self.fused_conv(c, &state.h, fusion)?;
                state.skip = skip;
            }
        }
        Ok(true)
    }

    fn fused_conv(
        &self,
        c: ConvIdx,
        x: &Tensor,
        fusion: Fusion,
    ) -> Result<FusedOutput, ModelError> {
        conv1d_same_fused(x, self.value(c.w), self.value(c.b), c.dilation, fusion)?
            .ok_or(ModelError::Internal("fused conv kernel unavailable"))
    }

    /// The forward pass: `x` (N, 4, 5000 + CL) → probabilities (N, 3, 5000). In [`Mode::Train`] it also
    /// updates the running statistics of the BatchNorms that use batch statistics; [`Self::predict`] is
    /// the same pass in [`Mode::Eval`] on `&self`.
    pub fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor, ModelError> {
        let mut updates = RunningUpdate::default();
        let state = self.stem(x)?;
        let state = self.forward_blocks(state, 0..self.blocks.len(), mode, &mut updates)?;
        let probs = self.head(&state)?;
        self.apply_running(updates)?;
        Ok(probs)
    }

    /// `initial_conv` and `initial_skip`: the trunk state before the first block.
    fn stem(&self, x: &Tensor) -> Result<Trunk, ModelError> {
        let (_, cin, len) = x.dims3()?;
        // Any length past the context works (the output is `len - CL` positions); training and the
        // 5000-position windows use `input_len()`, `variant` uses `CL + 2D + 1`.
        if cin != IN_CHANNELS || len <= self.config.flank {
            return Err(ModelError::Input {
                expected: format!("(N, {IN_CHANNELS}, L > {})", self.config.flank),
                got: x.dims().to_vec(),
            });
        }
        let h = self.conv(self.initial_conv, x)?;
        let skip = self.conv(self.initial_skip, &h)?;
        Ok(Trunk { h, skip })
    }

    /// Runs blocks `range` of the `residual_units` list. The skip accumulator may be full length or
    /// already cropped to the 5000 output positions (then Skip convs read the matching part of `h`).
    fn forward_blocks(
        &self,
        mut state: Trunk,
        range: std::ops::Range<usize>,
        mode: Mode,
        updates: &mut RunningUpdate,
    ) -> Result<Trunk, ModelError> {
        // Blocks that no gradient reaches run through the fused kernels where they exist (CPU).
        let fused_end = match mode {
            Mode::Eval => self.blocks.len(),
            Mode::Train => self.first_trained_block(),
        };
        let mut h_sums = None;
        for bi in range {
            if bi < fused_end && self.fused_block(bi, &mut state, &mut h_sums, mode, updates)? {
                continue;
            }
            h_sums = None;
            match self.blocks[bi] {
                Block::Unit(u) => {
                    let t = self.bn_lrelu(u.bn1, &state.h, mode, updates)?;
                    let t = self.conv(u.conv1, &t)?;
                    let t = self.bn_lrelu(u.bn2, &t, mode, updates)?;
                    let t = self.conv(u.conv2, &t)?;
                    state.h = (state.h + t)?;
                }
                Block::Skip(c) => {
                    // The skip accumulator covers the middle of `h` (the output positions).
                    let h = centre(&state.h, state.skip.dim(2)?)?;
                    state.skip = (state.skip + self.conv(c, &h)?)?;
                }
            }
        }
        Ok(state)
    }

    /// Crop, `final_conv`, softmax over the channels.
    fn head(&self, state: &Trunk) -> Result<Tensor, ModelError> {
        let out_len = state.h.dim(2)? - self.config.flank;
        let cropped = if state.skip.dim(2)? == out_len {
            state.skip.clone()
        } else {
            state.skip.narrow(2, self.config.flank / 2, out_len)?
        };
        let logits = self.conv(self.final_conv, &cropped)?;
        Ok(softmax_channels(&logits)?)
    }

    /// Index in the `residual_units` list where the frozen prefix ends, when the prefix is a fixed
    /// function: some (but not all) units are trainable, every parameter before the first trainable unit
    /// is frozen, and frozen BatchNorms run in eval mode (`--freeze-bn`). `None` otherwise.
    pub fn frozen_prefix_end(&self) -> Option<usize> {
        if !self.freeze_bn {
            return None;
        }
        let first_trainable = self
            .entries
            .iter()
            .position(|e| matches!(e.slot, Slot::Trainable(_)))?;
        let unit = self.entries[first_trainable].unit?;
        if unit == 0 {
            return None;
        }
        Some(FlankConfig::block_index_of_unit(unit))
    }

    /// The frozen prefix on `x`: the trunk activation `h` (full length) and the skip accumulator cropped to
    /// the 5000 output positions, at list index `cut` (from [`Self::frozen_prefix_end`]). Eval semantics.
    pub fn forward_prefix(&self, x: &Tensor, cut: usize) -> Result<Trunk, ModelError> {
        let state = self.stem(x)?;
        let mut state =
            self.forward_blocks(state, 0..cut, Mode::Eval, &mut RunningUpdate::default())?;
        let out_len = state.skip.dim(2)? - self.config.flank;
        state.skip = state
            .skip
            .narrow(2, self.config.flank / 2, out_len)?
            .contiguous()?;
        Ok(state)
    }

    /// The rest of the network from a prefix state at list index `cut`; updates running statistics as
    /// [`Self::forward`] does.
    pub fn forward_suffix(
        &mut self,
        state: Trunk,
        cut: usize,
        mode: Mode,
    ) -> Result<Tensor, ModelError> {
        let mut updates = RunningUpdate::default();
        let n = self.blocks.len();
        let state = self.forward_blocks(state, cut..n, mode, &mut updates)?;
        let probs = self.head(&state)?;
        self.apply_running(updates)?;
        Ok(probs)
    }

    /// Eval-mode [`Self::forward_suffix`] on `&self` (the prefix state's skip holds the output positions).
    pub fn predict_suffix(&self, state: Trunk, cut: usize) -> Result<Tensor, ModelError> {
        let out_len = state.skip.dim(2)?;
        let logits = self.predict_blocks(state, cut..self.blocks.len(), out_len)?;
        self.eval_head(&logits)
    }

    /// Eval-mode forward on `&self`: the model is never changed, so one loaded model can serve several
    /// threads at once. With a temperature set ([`Self::set_temperature`]) the probabilities are
    /// `softmax(logits / T)`.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let logits = self.predict_logits(x)?;
        self.eval_head(&logits)
    }

    /// The eval-mode logits (N, 3, L − CL): `final_conv`'s output before the softmax (and before any
    /// temperature), what OpenSpliceAI's `calibrate` fits its temperature on.
    pub fn predict_logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let out_len = x.dim(2)?.saturating_sub(self.config.flank);
        let state = self.stem(x)?;
        self.predict_blocks(state, 0..self.blocks.len(), out_len)
    }

    /// Sets (or clears) the per-class temperature of eval-mode predictions: the three values (non-splice,
    /// acceptor, donor) the logits are divided by before the softmax.
    pub fn set_temperature(&mut self, t: Option<[f32; OUT_CLASSES]>) -> Result<(), ModelError> {
        self.temperature = match t {
            Some(t) => Some(Tensor::from_slice(&t, (1, OUT_CLASSES, 1), &self.device)?),
            None => None,
        };
        Ok(())
    }

    /// The softmax of eval-mode logits, divided by the temperature first when one is set.
    fn eval_head(&self, logits: &Tensor) -> Result<Tensor, ModelError> {
        Ok(match &self.temperature {
            Some(t) => softmax_channels(&logits.broadcast_div(t)?)?,
            None => softmax_channels(logits)?,
        })
    }

    /// Eval-mode blocks `range` and `final_conv` (the logits), computing each unit only where the output
    /// reads it.
    ///
    /// The convs are same-padded, so every unit runs over the whole length it is given, yet an output
    /// position reads a unit's result only within the reach of the units after it (SpliceAI's units
    /// together reach exactly CL/2 each side). After each unit `h` is cut to the output positions plus
    /// that remaining reach, and the skip accumulator (read only by 1×1 convs and the head) to the
    /// output positions. The positions kept see the same neighbours as in the full-length pass, so the
    /// result is the same; the work of the last, widest units falls to about half at 10000nt.
    /// Only in eval mode: batch statistics would read every position.
    fn predict_blocks(
        &self,
        mut state: Trunk,
        range: std::ops::Range<usize>,
        out_len: usize,
    ) -> Result<Tensor, ModelError> {
        state.skip = centre(&state.skip, out_len)?;
        state.h = centre(&state.h, out_len + 2 * self.reach_from(range.start)?)?;
        for bi in range {
            let mut updates = RunningUpdate::default();
            state = self.forward_blocks(state, bi..bi + 1, Mode::Eval, &mut updates)?;
            if matches!(self.blocks[bi], Block::Unit(_)) {
                state.h = centre(&state.h, out_len + 2 * self.reach_from(bi + 1)?)?;
            }
        }
        self.conv(self.final_conv, &state.skip)
    }

    /// Positions each side that the units from list index `from` on read beyond their output: each
    /// conv of width K and dilation d reads (K−1)·d/2 each side.
    fn reach_from(&self, from: usize) -> Result<usize, ModelError> {
        let mut reach = 0;
        for block in &self.blocks[from.min(self.blocks.len())..] {
            if let Block::Unit(u) = block {
                for c in [u.conv1, u.conv2] {
                    reach += (self.value(c.w).dim(2)? - 1) * c.dilation / 2;
                }
            }
        }
        Ok(reach)
    }
}

/// The middle `len` positions of `t` (N, C, L), contiguous; `t` itself when it has `len` already.
fn centre(t: &Tensor, len: usize) -> Result<Tensor, ModelError> {
    let l = t.dim(2)?;
    if l == len {
        return Ok(t.clone());
    }
    if len > l || !(l - len).is_multiple_of(2) {
        return Err(ModelError::Internal("centre: length does not fit"));
    }
    Ok(t.narrow(2, (l - len) / 2, len)?.contiguous()?)
}

/// Softmax over the channel dimension (dim 1), differentiable (the max shift is a constant).
pub fn softmax_channels(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(1)?;
    e.broadcast_div(&s)
}
/// PyTorch's factor from the biased batch variance to the unbiased one that enters the running variance:
/// n / (n − 1), or 1 for a single value.
fn unbias(count: usize) -> f64 {
    let n = count as f64;
    if n > 1.0 {
        n / (n - 1.0)
    } else {
        1.0
    }
}
