//! Fused BatchNorm1d + LeakyReLU: `y = lrelu((x − μ)·w/σ + b)` over (N, C, L), one op with its own backward.
//!
//! Built from stock candle ops this pair costs a dozen broadcast passes forward and more backward, which on
//! CPU cost several times the convolutions. The fused CPU op makes two passes forward (statistics in f64,
//! then the normalised output) and two backward, parallel over channels. Batch statistics are returned so
//! the model can update its running statistics exactly as PyTorch (unbiased variance, momentum 0.1).
//! On CUDA, and on the CPU with `OSAI_OPS=reference`, the device op of `ops/bn_device.rs` runs; on Metal,
//! and with `OSAI_OPS=stock`, the same maths as stock candle ops in f32 ([`batchnorm_leaky_relu_reference`]).

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, DType, Result, Shape, Tensor};

use rayon::prelude::*;

use super::conv::ChannelMap;
use super::cpu::{f32_slice, storage_f32, SendPtr};
use super::path::{check_no_f64, device_ops, native_kernels};
use super::Grads3;

const OP: &str = "bn-leaky-relu";

/// Where the normalisation statistics come from.
#[derive(Debug, Clone, Copy)]
pub enum BnStats<'a> {
    /// Batch statistics over N·L (training mode).
    Batch,
    /// Running statistics (eval mode), each (C).
    Running { mean: &'a Tensor, var: &'a Tensor },
}

/// The op's result.
#[derive(Debug, Clone)]
pub struct BnOutput {
    /// Activations (N, C, L).
    pub y: Tensor,
    /// In batch mode on the host paths: per-channel mean and biased variance over N·L, in f64.
    pub batch_stats: Option<(Vec<f64>, Vec<f64>)>,
    /// In batch mode through the device op (`ops/bn_device.rs`): the same as f32 tensors (C) on the
    /// input's device, never read back to the host.
    pub device_stats: Option<(Tensor, Tensor)>,
}

/// Batch statistics kept between forward and backward.
#[derive(Debug, Default)]
struct Saved {
    mean: Vec<f64>,
    inv_std: Vec<f64>,
}

#[derive(Debug, Clone)]
struct BnLeakyRelu {
    eps: f64,
    slope: f32,
    /// `Some((mean, var))` in running mode (f32, as stored); `None` for batch statistics.
    running: Option<(Vec<f32>, Vec<f32>)>,
    saved: Arc<Mutex<Saved>>,
}

/// BatchNorm (eps) followed by LeakyReLU (slope) on `x` (N, C, L) with affine `w`, `b` (C).
pub fn batchnorm_leaky_relu(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stats: BnStats<'_>,
    eps: f64,
    slope: f64,
) -> Result<BnOutput> {
    if device_ops(x.device())? {
        return super::bn_device::batchnorm_leaky_relu_device(x, w, b, stats, eps, slope);
    }
    if !native_kernels(x.device())? {
        return batchnorm_leaky_relu_reference(x, w, b, stats, eps, slope);
    }
    let running = match stats {
        BnStats::Batch => None,
        BnStats::Running { mean, var } => Some((
            mean.to_dtype(DType::F32)?.to_vec1::<f32>()?,
            var.to_dtype(DType::F32)?.to_vec1::<f32>()?,
        )),
    };
    let op = BnLeakyRelu {
        eps,
        slope: slope as f32,
        running,
        saved: Arc::new(Mutex::new(Saved::default())),
    };
    let saved = op.saved.clone();
    let batch = op.running.is_none();
    let y = x
        .contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, op)?;
    let batch_stats = if batch {
        let s = saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("bn stats lock poisoned".into()))?;
        let var = s.inv_std.iter().map(|is| 1.0 / (is * is) - eps).collect();
        Some((s.mean.clone(), var))
    } else {
        None
    };
    Ok(BnOutput {
        y,
        batch_stats,
        device_stats: None,
    })
}

/// The same computation from stock candle ops in f32: the path on Metal and with `OSAI_OPS=stock`,
/// and the tests' reference. No f64 (Metal has none): the batch statistics are two-pass and centred (a
/// corrected mean, then the mean of the centred squares; `ChannelGrid::centre`) and every per-channel
/// reduction, forward and backward, runs in two levels (`ChannelGrid`), so that f32 matches PyTorch's
/// f64-accumulated CPU BatchNorm within the fixtures' tolerances.
pub fn batchnorm_leaky_relu_reference(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stats: BnStats<'_>,
    eps: f64,
    slope: f64,
) -> Result<BnOutput> {
    check_bn_inputs(x, w, b)?;
    let (n, c, l) = x.dims3()?;
    let grid = ChannelGrid::new(n, c, l);
    let x4 = grid.split(x)?;
    let (z, batch_stats) = match stats {
        BnStats::Running { mean, var } => {
            check_running(mean, var)?;
            let scale = (w / (var + eps)?.sqrt()?)?;
            let shift = (b - (mean * &scale)?)?;
            let z = x4
                .broadcast_mul(&grid.spread(&scale)?)?
                .broadcast_add(&grid.spread(&shift)?)?;
            (z, None)
        }
        BnStats::Batch => {
            let count = (n * l) as f64;
            let ((mean1, corr), xc) = grid.centre(&x4, count)?;
            let var = (grid.sum(&xc.sqr()?)? / count)?;
            let inv_std = (var.clone() + eps)?.sqrt()?.recip()?;
            let scale = (inv_std * w.reshape((1, c, 1, 1))?)?;
            let z = xc
                .broadcast_mul(&grid.spread(&scale)?)?
                .broadcast_add(&grid.spread(b)?)?;
            let host = |t: &Tensor| -> Result<Vec<f64>> {
                let v = t.flatten_all()?.to_vec1::<f32>()?;
                Ok(v.into_iter().map(f64::from).collect())
            };
            // μ₁ + c added on the host in f64 (for the running mean), as the CPU op's f64 mean.
            let mean: Vec<f64> = host(&mean1)?
                .iter()
                .zip(host(&corr)?)
                .map(|(a, b)| a + b)
                .collect();
            (z, Some((mean, host(&var.detach())?)))
        }
    };
    let y = leaky_relu_reference(&z, slope)?.reshape((n, c, l))?;
    Ok(BnOutput {
        y,
        batch_stats,
        device_stats: None,
    })
}

/// [`check_no_f64`] of a BatchNorm's input and affine parameters, in that order.
pub(super) fn check_bn_inputs(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<()> {
    for (t, what) in [
        (x, "batchnorm input"),
        (w, "batchnorm weight"),
        (b, "batchnorm bias"),
    ] {
        check_no_f64(t, what)?;
    }
    Ok(())
}

/// [`check_no_f64`] of a BatchNorm's running mean and variance, in that order.
pub(super) fn check_running(mean: &Tensor, var: &Tensor) -> Result<()> {
    check_no_f64(mean, "batchnorm running mean")?;
    check_no_f64(var, "batchnorm running variance")
}

/// LeakyReLU from stock ops with PyTorch's gradient: `g` where z > 0, `slope·g` elsewhere, exactly 0
/// included (candle's `maximum(z, slope·z)` splits a tie 0.5/0.5 and would give 0.55·g at z = 0).
pub fn leaky_relu_reference(z: &Tensor, slope: f64) -> Result<Tensor> {
    z.gt(0f64)?.where_cond(z, &(z * slope)?)
}

/// (N, C, L) seen as (N, C, M, K) with L = M·K, K the largest divisor of L up to [`Self::MAX_K`]. A
/// per-channel sum runs over (N, K) into (1, C, M, 1), then over M; and a per-channel value enters the
/// graph through (1, C, M, 1), so that the sums candle's backward makes of it are two-level too.
pub(super) struct ChannelGrid {
    n: usize,
    c: usize,
    m: usize,
    k: usize,
}

impl ChannelGrid {
    const MAX_K: usize = 256;

    pub(super) fn new(n: usize, c: usize, l: usize) -> Self {
        let k = (1..=Self::MAX_K.min(l.max(1)))
            .rev()
            .find(|k| l.is_multiple_of(*k))
            .unwrap_or(1);
        Self { n, c, m: l / k, k }
    }

    /// `x` (N, C, L) as (N, C, M, K).
    pub(super) fn split(&self, x: &Tensor) -> Result<Tensor> {
        x.reshape((self.n, self.c, self.m, self.k))
    }

    /// Per-channel sum of `t` (N, C, M, K) as (1, C, 1, 1), in two levels.
    pub(super) fn sum(&self, t: &Tensor) -> Result<Tensor> {
        t.sum_keepdim((0, 3))?.sum_keepdim(2)
    }

    /// The per-channel mean of `x4` (N, C, M, K) over `count` values as μ₁ + c, and `x4` centred on it, in f32 to
    /// about the precision of f64 statistics: a first mean μ₁ = Σx/m, then the mean c = Σ(x − μ₁)/m of
    /// the residuals (the classic corrected two-pass), so the centring carries no rounding error of order
    /// eps·|μ| (which would shift whole channels). c is detached: ∂c/∂x = 0 in exact maths, and in f32
    /// its gradient would only add rounding noise.
    pub(super) fn centre(&self, x4: &Tensor, count: f64) -> Result<((Tensor, Tensor), Tensor)> {
        let mean1 = (self.sum(x4)? / count)?;
        let d = x4.broadcast_sub(&self.spread(&mean1)?)?;
        let c = (self.sum(&d.detach())? / count)?;
        let xc = d.broadcast_sub(&self.spread(&c)?)?;
        Ok(((mean1.detach(), c), xc))
    }

    /// A per-channel value (C elements) as (1, C, M, 1), ready to broadcast against (N, C, M, K).
    pub(super) fn spread(&self, v: &Tensor) -> Result<Tensor> {
        v.reshape((1, self.c, 1, 1))?
            .broadcast_as((1, self.c, self.m, 1))?
            .contiguous()
    }
}

/// Σx and Σx² of channel `c` over all windows, in f64 lanes (f64 keeps E[x²] − E[x]² exact to far below
/// f32 resolution for activations of this network).
fn channel_sums(x: &[f32], n: usize, c_total: usize, l: usize, c: usize) -> (f64, f64) {
    let (mut s1, mut s2) = (0f64, 0f64);
    for b in 0..n {
        let row = &x[(b * c_total + c) * l..(b * c_total + c + 1) * l];
        let (mut a1, mut a2) = ([0f64; 8], [0f64; 8]);
        let chunks = row.chunks_exact(8);
        let rest = chunks.remainder();
        for ch in chunks {
            for j in 0..8 {
                let v = ch[j] as f64;
                a1[j] += v;
                a2[j] += v * v;
            }
        }
        s1 += a1.iter().sum::<f64>() + rest.iter().map(|&v| v as f64).sum::<f64>();
        s2 += a2.iter().sum::<f64>() + rest.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
    }
    (s1, s2)
}

/// Mean and biased variance from Σx, Σx² over `count` values.
fn moments((s1, s2): (f64, f64), count: f64) -> (f64, f64) {
    let mean = s1 / count;
    (mean, (s2 / count - mean * mean).max(0.0))
}

/// Mean and 1/sqrt(var + eps) of channel `c` over all windows, in one pass.
fn channel_stats(x: &[f32], n: usize, c_total: usize, l: usize, c: usize, eps: f64) -> (f64, f64) {
    let (mean, var) = moments(channel_sums(x, n, c_total, l, c), (n * l) as f64);
    (mean, 1.0 / (var + eps).sqrt())
}

/// Per-channel Σx and Σx² (f64) of `x` (N, C, L) on the CPU, parallel over channels.
pub fn channel_moment_sums(x: &Tensor) -> Result<Vec<(f64, f64)>> {
    let (n, c, l) = x.dims3()?;
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let data = storage_f32(&storage, layout, OP, "input")?;
    Ok((0..c)
        .into_par_iter()
        .map(|ch| channel_sums(data, n, c, l, ch))
        .collect())
}

/// Batch mean and biased variance per channel from [`channel_moment_sums`]-style sums over `count` values.
pub fn batch_moments(sums: &[(f64, f64)], count: usize) -> (Vec<f64>, Vec<f64>) {
    sums.iter().map(|&s| moments(s, count as f64)).unzip()
}

/// BatchNorm with affine `w`, `b` and statistics `mean`, `inv_std` as `x·scale + shift`, folded in f64.
fn fold(w: f32, b: f32, mean: f64, inv_std: f64) -> (f32, f32) {
    let w = w as f64;
    ((w * inv_std) as f32, (b as f64 - mean * w * inv_std) as f32)
}

/// The BatchNorm (affine `w`, `b`, statistics `mean`, `var`) and the LeakyReLU after it as one per-channel
/// map `v ↦ lrelu(v·scale + shift)`, folded in f64 exactly as the fused op's forward does.
pub fn bn_channel_map(
    w: &[f32],
    b: &[f32],
    mean: &[f64],
    var: &[f64],
    eps: f64,
    slope: f64,
) -> ChannelMap {
    let (scale, shift) = w
        .iter()
        .zip(b)
        .zip(mean.iter().zip(var))
        .map(|((&w, &b), (&m, &v))| fold(w, b, m, 1.0 / (v + eps).sqrt()))
        .unzip();
    ChannelMap {
        scale,
        shift,
        slope: slope as f32,
    }
}

/// `out = lrelu(x·scale + shift)`.
#[inline]
fn affine_lrelu(out: &mut [f32], x: &[f32], scale: f32, shift: f32, slope: f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        let z = v * scale + shift;
        // max(z, slope·z) is LeakyReLU for 0 < slope < 1, and vectorises.
        *o = z.max(z * slope);
    }
}

/// One row (window, channel) of what the backward reads: the op's output `y`, its gradient `g` and the
/// input `x`, all of one length.
#[derive(Debug, Clone, Copy)]
struct BwdRow<'a> {
    y: &'a [f32],
    g: &'a [f32],
    x: &'a [f32],
}

impl<'a> BwdRow<'a> {
    /// Elements `range` of each.
    fn new(y: &'a [f32], g: &'a [f32], x: &'a [f32], range: std::ops::Range<usize>) -> Self {
        BwdRow {
            y: &y[range.clone()],
            g: &g[range.clone()],
            x: &x[range],
        }
    }
}

/// Σ dz and Σ dz·(x − μ) over a row, dz = g·lrelu'(z) read off the output's sign, in f64 lanes.
#[inline]
fn bwd_sums(row: BwdRow, mu: f64, slope: f32) -> (f64, f64) {
    let BwdRow { y, g, x } = row;
    let (mut a, mut b) = ([0f64; 8], [0f64; 8]);
    let n8 = y.len() / 8 * 8;
    for i in (0..n8).step_by(8) {
        for j in 0..8 {
            let k = i + j;
            let dz = (g[k] * if y[k] > 0.0 { 1.0 } else { slope }) as f64;
            a[j] += dz;
            b[j] += dz * (x[k] as f64 - mu);
        }
    }
    let (mut sa, mut sb) = (a.iter().sum::<f64>(), b.iter().sum::<f64>());
    for k in n8..y.len() {
        let dz = (g[k] * if y[k] > 0.0 { 1.0 } else { slope }) as f64;
        sa += dz;
        sb += dz * (x[k] as f64 - mu);
    }
    (sa, sb)
}

/// The coefficients of one channel's input gradient `dx = a·dz + c1·(x − μ) + c0`, dz = g·lrelu'(z), with
/// the LeakyReLU's `slope`.
#[derive(Debug, Clone, Copy)]
struct DxCoeffs {
    mu: f32,
    a: f32,
    c1: f32,
    c0: f32,
    slope: f32,
}

/// `out = a·dz + c1·(x − μ) + c0` over a row, dz = g·lrelu'(z).
#[inline]
fn bwd_dx(out: &mut [f32], row: BwdRow, coeffs: DxCoeffs) {
    let BwdRow { y, g, x } = row;
    let DxCoeffs {
        mu,
        a,
        c1,
        c0,
        slope,
    } = coeffs;
    for k in 0..out.len() {
        let dz = g[k] * if y[k] > 0.0 { 1.0 } else { slope };
        out[k] = a * dz + c1 * (x[k] - mu) + c0;
    }
}

impl CustomOp3 for BnLeakyRelu {
    fn name(&self) -> &'static str {
        OP
    }

    cpu_fwd!(|op, (s1, l1), (s2, l2), (s3, l3)| {
        let (n, c, l) = l1.shape().dims3()?;
        let x = f32_slice(s1, l1, OP, "input")?;
        let w = f32_slice(s2, l2, OP, "weight")?;
        let b = f32_slice(s3, l3, OP, "bias")?;
        if w.len() != c || b.len() != c {
            return Err(candle_core::Error::Msg(format!(
                "batchnorm: {c} channels but weight/bias have {}/{}",
                w.len(),
                b.len()
            )));
        }
        let stats: Vec<(f64, f64)> = match &op.running {
            Some((rm, rv)) => (0..c)
                .map(|ch| (rm[ch] as f64, 1.0 / (rv[ch] as f64 + op.eps).sqrt()))
                .collect(),
            None => (0..c)
                .into_par_iter()
                .map(|ch| channel_stats(x, n, c, l, ch, op.eps))
                .collect(),
        };
        let mut y = vec![0f32; x.len()];
        let yp = SendPtr(y.as_mut_ptr());
        let slope = op.slope;
        (0..c).into_par_iter().for_each(|ch| {
            let (mean, inv_std) = stats[ch];
            let (scale, shift) = fold(w[ch], b[ch], mean, inv_std);
            for bb in 0..n {
                let off = (bb * c + ch) * l;
                // SAFETY: channel ch of window bb: a range no other task touches.
                let out = unsafe { std::slice::from_raw_parts_mut(yp.get().add(off), l) };
                affine_lrelu(out, &x[off..off + l], scale, shift, slope);
            }
        });
        if op.running.is_none() {
            let mut s = op
                .saved
                .lock()
                .map_err(|_| candle_core::Error::Msg("bn stats lock poisoned".into()))?;
            s.mean = stats.iter().map(|s| s.0).collect();
            s.inv_std = stats.iter().map(|s| s.1).collect();
        }
        Ok((CpuStorage::F32(y), Shape::from((n, c, l))))
    });

    fn bwd(&self, x: &Tensor, w: &Tensor, _b: &Tensor, res: &Tensor, grad: &Tensor) -> Grads3 {
        let (n, c, l) = x.dims3()?;
        let dev = x.device().clone();
        // No input gradient when nothing before x is trained (the first trained unit's input).
        let want_dx = x.track_op();
        let (x, res, grad) = (x.contiguous()?, res.contiguous()?, grad.contiguous()?);
        let (xs, xl) = x.storage_and_layout();
        let (ys, yl) = res.storage_and_layout();
        let (gs, gl) = grad.storage_and_layout();
        let xv = storage_f32(&xs, xl, OP, "input")?;
        let yv = storage_f32(&ys, yl, OP, "output")?;
        let gv = storage_f32(&gs, gl, OP, "gradient")?;
        let wv = w.to_vec1::<f32>()?;
        let (mean, inv_std): (Vec<f64>, Vec<f64>) = match &self.running {
            Some((rm, rv)) => (
                rm.iter().map(|&m| m as f64).collect(),
                rv.iter()
                    .map(|&v| 1.0 / (v as f64 + self.eps).sqrt())
                    .collect(),
            ),
            None => {
                let s = self
                    .saved
                    .lock()
                    .map_err(|_| candle_core::Error::Msg("bn stats lock poisoned".into()))?;
                (s.mean.clone(), s.inv_std.clone())
            }
        };
        let batch = self.running.is_none();
        let slope = self.slope;
        let m = (n * l) as f64;
        let mut dx = vec![0f32; if want_dx { xv.len() } else { 0 }];
        let dxp = SendPtr(dx.as_mut_ptr());
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mu, is) = (mean[ch], inv_std[ch]);
                let (mut sdz, mut sdzmu) = (0f64, 0f64);
                for bb in 0..n {
                    let off = (bb * c + ch) * l;
                    let row = BwdRow::new(yv, gv, xv, off..off + l);
                    let (a, b) = bwd_sums(row, mu, slope);
                    sdz += a;
                    sdzmu += b;
                }
                let sdzx = sdzmu * is; // Σ dz·x̂
                let wis = wv[ch] as f64 * is;
                // Batch statistics: dx = wis/m·(m·dz − Σdz − x̂·Σdz·x̂); running statistics: dx = wis·dz.
                let (c1, c0) = if batch {
                    (-wis * sdzx * is / m, -wis * sdz / m)
                } else {
                    (0.0, 0.0)
                };
                let coeffs = DxCoeffs {
                    mu: mu as f32,
                    a: wis as f32,
                    c1: c1 as f32,
                    c0: c0 as f32,
                    slope,
                };
                for bb in (0..n).filter(|_| want_dx) {
                    let off = (bb * c + ch) * l;
                    // SAFETY: channel ch of window bb is written by this task only.
                    let out = unsafe { std::slice::from_raw_parts_mut(dxp.get().add(off), l) };
                    bwd_dx(out, BwdRow::new(yv, gv, xv, off..off + l), coeffs);
                }
                (sdz, sdzx)
            })
            .collect();
        let db: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
        let dw: Vec<f32> = sums.iter().map(|s| s.1 as f32).collect();
        let dx = if want_dx {
            Some(Tensor::from_vec(dx, (n, c, l), &dev)?)
        } else {
            None
        };
        Ok((
            dx,
            Some(Tensor::from_vec(dw, c, &dev)?),
            Some(Tensor::from_vec(db, c, &dev)?),
        ))
    }
}
