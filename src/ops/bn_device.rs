//! BatchNorm + LeakyReLU for CUDA (and the CPU with `OSAI_OPS=reference`) as one `CustomOp3` whose
//! autograd keeps only its input and output, plus per-channel statistics that stay on the device.
//!
//! The statistics are computed before the op from the detached input with the reference path's f32
//! maths (two-pass centred mean `μ₁ + c`, biased variance of the centred values; `ChannelGrid`) and
//! passed in as a (3, C) tensor `[μ₁; c; 1/σ]`; the affine parameters as `stack([w, b])` (2, C), whose
//! gradient candle routes back to `w` and `b`. The forward `y = lrelu(((x − μ₁) − c)·(1/σ·w) + b)` is the
//! reference's arithmetic in the same order, composed from candle's backend-storage ops in one function
//! generic over the storage, so the CPU runs the code CUDA runs. The backward is the closed-form
//! BatchNorm gradient (`dx = w/σ·(dz − mean dz − x̂·mean(dz·x̂))` with batch statistics, `w/σ·dz` with
//! running ones) from stock tensor ops, its per-channel sums two-level as in the reference.

use candle_core::backend::BackendStorage;
use candle_core::op::{Add, Maximum, Mul, Sub};
use candle_core::{CustomOp3, DType, Layout, Result, Shape, Tensor};

use super::bn_act::{check_bn_inputs, check_running, BnOutput, BnStats, ChannelGrid};
use super::{grad_if, Grads3};

#[derive(Debug, Clone, Copy)]
struct BnActDevice {
    slope: f64,
    /// Batch statistics (their gradient flows back into x); otherwise running ones (constants).
    batch: bool,
}

/// `y = lrelu(((x − μ₁) − c)·(inv_std·w) + b)` on backend storages: `x` (N, C, L), `wb` (2, C) = [w; b],
/// `st` (3, C) = [μ₁; c; inv_std], all f32, `wb` and `st` contiguous.
pub fn bn_act_forward<S: BackendStorage>(
    (x, xl): (&S, &Layout),
    (wb, wbl): (&S, &Layout),
    (st, stl): (&S, &Layout),
    slope: f64,
) -> Result<(S, Shape)> {
    let (n, c, l) = xl.shape().dims3()?;
    for (s, what) in [
        (x.dtype(), "input"),
        (wb.dtype(), "affine"),
        (st.dtype(), "stats"),
    ] {
        if s != DType::F32 {
            return Err(candle_core::Error::Msg(format!(
                "batchnorm (device op): {what} must be f32, got {s:?}"
            )));
        }
    }
    if wbl.shape().dims() != [2, c] || stl.shape().dims() != [3, c] {
        return Err(candle_core::Error::Msg(format!(
            "batchnorm (device op): {c} channels, but affine {:?} and stats {:?}",
            wbl.shape(),
            stl.shape()
        )));
    }
    if !wbl.is_contiguous() || !stl.is_contiguous() {
        return Err(candle_core::Error::RequiresContiguous {
            op: "batchnorm (device op)",
        });
    }
    let shape = Shape::from((n, c, l));
    let full = Layout::contiguous(shape.clone());
    // Row `row` of a (rows, C) tensor broadcast over (N, C, L), or as a (C) vector.
    let spread = |base: &Layout, row: usize| {
        Layout::new(shape.clone(), vec![0, 1, 0], base.start_offset() + row * c)
    };
    let vector = |base: &Layout, row: usize| {
        Layout::new(Shape::from(c), vec![1], base.start_offset() + row * c)
    };
    let scale = st.binary_impl::<Mul>(wb, &vector(stl, 2), &vector(wbl, 0))?;
    let mut t = x.binary_impl::<Sub>(st, xl, &spread(stl, 0))?;
    t = t.binary_impl::<Sub>(st, &full, &spread(stl, 1))?;
    t = t.binary_impl::<Mul>(&scale, &full, &spread(&Layout::contiguous(c), 0))?;
    t = t.binary_impl::<Add>(wb, &full, &spread(wbl, 1))?;
    // max(z, slope·z) is LeakyReLU for 0 < slope < 1 (the value; the gradient reads y's sign).
    let scaled = t.affine(&full, slope, 0.0)?;
    let y = t.binary_impl::<Maximum>(&scaled, &full, &full)?;
    Ok((y, shape))
}

impl CustomOp3 for BnActDevice {
    fn name(&self) -> &'static str {
        "bn-leaky-relu-device"
    }

    storage_fwd!(|op, (s1, l1), (s2, l2), (s3, l3)| {
        bn_act_forward((s1, l1), (s2, l2), (s3, l3), op.slope)
    });

    fn bwd(&self, x: &Tensor, wb: &Tensor, st: &Tensor, res: &Tensor, grad: &Tensor) -> Grads3 {
        let want_dx = x.track_op();
        let want_wb = wb.track_op();
        let (n, c, l) = x.dims3()?;
        let grid = ChannelGrid::new(n, c, l);
        let (x, wb, st) = (x.detach(), wb.detach(), st.detach());
        let g4 = grid.split(&grad.detach().contiguous()?)?;
        let dz = grid
            .split(&res.detach())?
            .gt(0f64)?
            .where_cond(&g4, &(&g4 * self.slope)?)?;
        drop(g4);
        let (mean1, corr, inv_std) = (st.get(0)?, st.get(1)?, st.get(2)?);
        let xhat = grid
            .split(&x)?
            .broadcast_sub(&grid.spread(&mean1)?)?
            .broadcast_sub(&grid.spread(&corr)?)?
            .broadcast_mul(&grid.spread(&inv_std)?)?;
        let db = grid.sum(&dz)?.flatten_all()?;
        let dw = grid.sum(&(&dz * &xhat)?)?.flatten_all()?;
        let dx = grad_if(want_dx, || {
            let a = grid.spread(&(&inv_std * &wb.get(0)?)?)?;
            let inner = if self.batch {
                let m = (n * l) as f64;
                dz.broadcast_sub(&grid.spread(&(&db / m)?)?)?
                    .sub(&xhat.broadcast_mul(&grid.spread(&(&dw / m)?)?)?)?
            } else {
                dz
            };
            inner.broadcast_mul(&a)?.reshape((n, c, l))
        })?;
        let dwb = grad_if(want_wb, || Tensor::stack(&[dw, db], 0))?;
        Ok((dx, dwb, None))
    }
}

/// BatchNorm (eps) + LeakyReLU (slope) on `x` (N, C, L) with affine `w`, `b` (C) through the device op;
/// in batch mode also the batch mean `μ₁ + c` and biased variance as f32 tensors on the device (the model
/// updates its running statistics from them there: nothing is read back to the host).
pub fn batchnorm_leaky_relu_device(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stats: BnStats<'_>,
    eps: f64,
    slope: f64,
) -> Result<BnOutput> {
    check_bn_inputs(x, w, b)?;
    let (n, c, l) = x.dims3()?;
    let (st, device_stats) = match stats {
        BnStats::Running { mean, var } => {
            check_running(mean, var)?;
            let inv_std = (var.detach() + eps)?.sqrt()?.recip()?;
            let zero = mean.zeros_like()?;
            (Tensor::stack(&[&mean.detach(), &zero, &inv_std], 0)?, None)
        }
        BnStats::Batch => {
            let grid = ChannelGrid::new(n, c, l);
            let count = (n * l) as f64;
            let ((mean1, corr), xc) = grid.centre(&grid.split(&x.detach())?, count)?;
            let var = (grid.sum(&xc.sqr()?)? / count)?.flatten_all()?;
            drop(xc);
            let inv_std = (var.clone() + eps)?.sqrt()?.recip()?;
            let (mean1, corr) = (mean1.flatten_all()?, corr.flatten_all()?);
            let st = Tensor::stack(&[&mean1, &corr, &inv_std], 0)?;
            (st, Some(((mean1 + corr)?, var)))
        }
    };
    let wb = Tensor::stack(&[w, b], 0)?;
    let op = BnActDevice {
        slope,
        batch: device_stats.is_some(),
    };
    let y = x.contiguous()?.apply_op3(&wb, &st.contiguous()?, op)?;
    Ok(BnOutput {
        y,
        batch_stats: None,
        device_stats,
    })
}
