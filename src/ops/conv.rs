//! Same-padded, stride-1, dilated Conv1d: the op behind every convolution of SpliceAI.
//!
//! `y[n, co, l] = Σ_ci Σ_k w[co, ci, k] · x[n, ci, l + k·d − pad]`, `pad = (K−1)·d/2`, zero outside `[0, L)`.
//!
//! On CPU it runs our own kernel ([`Conv1dSame`], a candle `CustomOp2` with its own backward); this avoids
//! candle 0.11's conv1d backward, whose weight gradient is wrong for batch ≥ 2 and whose 1×1 input gradient
//! is wrong on CPU (see docs/upstream-behaviour.md, "candle 0.11.1 bugs we work around"). On CUDA, and on the CPU with `OSAI_OPS=reference`
//! (`ops/path.rs`), it runs the GEMM-plan op of `ops/conv_gemm.rs`; on Metal, and with `OSAI_OPS=stock`,
//! [`conv1d_same_reference`], a sum of per-tap matmuls made of stock candle ops whose backward candle gets
//! right.
//!
//! CPU kernels: on x86-64 with AVX-512F the direct kernels of `ops/conv_direct.rs` (shifted vector loads
//! from a zero-padded slab, no im2col); elsewhere, or with `OSAI_CONV_KERNEL=gemm`, an implicit GEMM over
//! position tiles: for each (window, tile) an im2col buffer of `Cin·K × T` is filled and one `Cout × Cin·K`
//! by `Cin·K × T` matrix product (the `gemm` crate) writes the output tile. Either way the input gradient of
//! a same-padded stride-1 conv is the same conv of the output gradient with the transposed, flipped kernel,
//! and the weight gradient is `Σ G · colᵀ` over tiles. [`conv1d_same_fused`] adds BatchNorm-style maps and
//! a residual around the direct kernel for layers that need no gradient.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};

use rayon::prelude::*;

use super::cpu::{accumulate_tasks, f32_slice, lane_sum, storage_f32, SendPtr};
use super::gemm_plan::ConvShape;
use super::path::{check_no_f64, device_ops, native_kernels};
use super::precision::{self, Active};
use super::{grad_if, Grads2, Grads3};

const OP: &str = "conv1d-same";

/// The op: `x (N, Cin, L)` ⊛ `w (Cout, Cin, K)` with dilation `d`, same padding (K odd), no bias.
#[derive(Debug, Clone, Copy)]
pub struct Conv1dSame {
    pub dilation: usize,
}

/// The op with its bias fused: `(x, w, b) → conv(x, w) + b`.
#[derive(Debug, Clone, Copy)]
pub struct Conv1dSameBias {
    pub dilation: usize,
}

/// Weight gradient of [`Conv1dSame`]: `(x (N, Cin, L), g (N, Cout, L)) → (Cout, Cin, K)`.
#[derive(Debug, Clone, Copy)]
struct Conv1dSameGradWeight {
    dilation: usize,
    k_size: usize,
}

/// Applies the same-padded dilated convolution plus a per-channel bias.
///
/// `x`: (N, Cin, L); `w`: (Cout, Cin, K) with K odd; `b`: (Cout). Output (N, Cout, L).
pub fn conv1d_same(x: &Tensor, w: &Tensor, b: &Tensor, dilation: usize) -> Result<Tensor> {
    if native_kernels(x.device())? {
        x.contiguous()?.apply_op3(
            &w.contiguous()?,
            &b.contiguous()?,
            Conv1dSameBias { dilation },
        )
    } else if device_ops(x.device())? {
        for (t, what) in [(x, "conv input"), (w, "conv weight"), (b, "conv bias")] {
            check_no_f64(t, what)?;
        }
        super::conv_gemm::conv1d_same_gemm(x, w, b, dilation)
    } else {
        conv1d_same_reference(x, w, b, dilation)
    }
}

/// The same convolution built from stock candle ops (a matmul per kernel tap); the reference the CPU
/// kernel is tested against, and the path used on Metal (and on the CPU with `OSAI_OPS=stock`).
pub fn conv1d_same_reference(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    dilation: usize,
) -> Result<Tensor> {
    for (t, what) in [(x, "conv input"), (w, "conv weight"), (b, "conv bias")] {
        check_no_f64(t, what)?;
    }
    let y = conv1d_same_nobias_reference(x, w, dilation)?;
    y.broadcast_add(&b.reshape((1, b.elem_count(), 1))?)
}

fn conv1d_same_nobias_reference(x: &Tensor, w: &Tensor, dilation: usize) -> Result<Tensor> {
    let (n, _cin, l) = x.dims3()?;
    let (_cout, _, k) = w.dims3()?;
    check_odd(k)?;
    let pad = (k - 1) * dilation / 2;
    let xp = if pad > 0 {
        x.pad_with_zeros(2, pad, pad)?
    } else {
        x.clone()
    };
    // `--precision bf16` off the CPU (Metal; CUDA with OSAI_OPS=stock): bf16 operands for each tap's
    // matmul (candle's Metal and CUDA matmuls take bf16, and return bf16), the taps summed in f32.
    let bf16 = !x.device().is_cpu() && precision::gemm_compute() == precision::Compute::Bf16;
    let (xp, w) = if bf16 {
        (xp.to_dtype(DType::BF16)?, w.to_dtype(DType::BF16)?)
    } else {
        (xp, w.clone())
    };
    let mut acc: Option<Tensor> = None;
    for tap in 0..k {
        let wk = w.narrow(2, tap, 1)?.squeeze(2)?.contiguous()?; // (Cout, Cin)
        let xk = xp.narrow(2, tap * dilation, l)?.contiguous()?; // (N, Cin, L)
        let yk = wk.broadcast_left(n)?.contiguous()?.matmul(&xk)?;
        let yk = if bf16 { yk.to_dtype(DType::F32)? } else { yk };
        acc = Some(match acc {
            None => yk,
            Some(a) => (a + yk)?,
        });
    }
    acc.ok_or_else(|| candle_core::Error::Msg("conv1d with an empty kernel".into()))
}

fn check_odd(k: usize) -> Result<()> {
    if k % 2 == 1 {
        Ok(())
    } else {
        Err(candle_core::Error::Msg(format!(
            "same-padded conv1d needs an odd kernel size, got {k}"
        )))
    }
}

/// The conv of an input of shape `x` (N, Cin, L) with a kernel of shape `w` (Cout, Cin, K); an error
/// unless the channels agree and K is odd.
fn same_conv(x: &Shape, w: &Shape, dilation: usize) -> Result<ConvShape> {
    let (n, cin, l) = x.dims3()?;
    let (cout, cin_w, k) = w.dims3()?;
    if cin != cin_w {
        return Err(candle_core::Error::Msg(format!(
            "conv1d: input has {cin} channels, kernel expects {cin_w}"
        )));
    }
    check_odd(k)?;
    Ok(ConvShape {
        batch: n,
        c_in: cin,
        c_out: cout,
        l,
        k,
        dilation,
    })
}

/// Position-tile length so that the im2col buffer (`rows × T` floats) stays around 512 KiB.
fn tile_len(rows: usize, l: usize) -> usize {
    let t = (131_072 / rows.max(1)).clamp(64, 2048);
    let t = (t / 16).max(4) * 16;
    t.min(l.max(1))
}

/// Fills `col[(ci·K + k)·T + t] = x[ci, p0 + t + k·d − pad]` for `t < t_len` (0 outside the sequence),
/// from one window `x` (Cin, L) of the conv `s`.
fn im2col(x: &[f32], s: &ConvShape, p0: usize, t_len: usize, col: &mut [f32]) {
    let ConvShape {
        c_in: cin,
        l,
        k: k_size,
        dilation,
        ..
    } = *s;
    let pad = s.pad();
    for ci in 0..cin {
        let xrow = &x[ci * l..(ci + 1) * l];
        for k in 0..k_size {
            let dst = &mut col[(ci * k_size + k) * t_len..(ci * k_size + k + 1) * t_len];
            let shift = (p0 + k * dilation) as isize - pad as isize;
            let t_lo = (-shift).clamp(0, t_len as isize) as usize;
            let t_hi = (l as isize - shift).clamp(0, t_len as isize) as usize;
            if t_lo >= t_hi {
                dst.fill(0.0);
                continue;
            }
            dst[..t_lo].fill(0.0);
            let s_lo = (shift + t_lo as isize) as usize;
            dst[t_lo..t_hi].copy_from_slice(&xrow[s_lo..s_lo + (t_hi - t_lo)]);
            dst[t_hi..].fill(0.0);
        }
    }
}

/// A matrix operand of [`gemm_f32`] in a slice: element (i, j) is `data[i·rs + j·cs]` (so a transposed
/// matrix is just other strides).
#[derive(Debug, Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major, row stride `rs`.
    fn rows(data: &'a [f32], rs: usize) -> Self {
        Mat { data, rs, cs: 1 }
    }

    /// Column-major, column stride `cs`: the transpose of a row-major matrix of row stride `cs`.
    fn cols(data: &'a [f32], cs: usize) -> Self {
        Mat { data, rs: 1, cs }
    }

    /// Whether the slice holds every element of a `rows × cols` matrix (both positive).
    fn holds(&self, rows: usize, cols: usize) -> bool {
        self.data.len() > (rows - 1) * self.rs + (cols - 1) * self.cs
    }
}

/// The result of [`gemm_f32`]: row-major, row stride `rs`; the product is added to it (`accumulate`) or
/// overwrites it.
struct Dst<'a> {
    data: &'a mut [f32],
    rs: usize,
    accumulate: bool,
}

/// `dst (m × n) (+)= a (m × k) · b (k × n)`. One thread; callers parallelise.
fn gemm_f32(dst: Dst, a: Mat, b: Mat, (m, n, k): (usize, usize, usize)) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(
        dst.data.len() >= (m - 1) * dst.rs + n,
        "gemm: dst too short"
    );
    assert!(a.holds(m, k), "gemm: lhs too short");
    assert!(b.holds(k, n), "gemm: rhs too short");
    // SAFETY: the asserts above bound every index gemm touches; dst does not alias a or b.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            dst.rs as isize,
            dst.accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Forward kernel of the conv `s` on contiguous buffers: x (N, Cin, L), w (Cout, Cin·K) → y (N, Cout, L).
pub(crate) fn conv_forward_cpu(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    s: &ConvShape,
) -> Vec<f32> {
    match precision::active() {
        Active::F32 => {}
        Active::Bf16Native => {
            if let Some((y, _)) = super::conv_bf16::forward_fused(x, w, bias, s, Fusion::default())
            {
                return y;
            }
        }
        Active::Bf16Emulated => {
            return super::conv_bf16::forward_emulated(x, w, bias, s, Fusion::default()).0
        }
    }
    conv_forward_f32(x, w, bias, s)
}

/// The f32 forward whatever `--precision` says: the direct kernel where it runs, else im2col + gemm.
pub(crate) fn conv_forward_f32(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    s: &ConvShape,
) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if let Some(y) = super::conv_direct::forward(x, w, bias, s) {
        return y;
    }
    conv_forward_gemm(x, w, bias, s)
}

/// The im2col + gemm forward (every CPU; the direct kernels replace it where AVX-512F is present).
pub(crate) fn conv_forward_gemm(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    s: &ConvShape,
) -> Vec<f32> {
    let (n, cin, cout, l, k_size, _) = s.dims();
    let rows = cin * k_size;
    let mut y = vec![0f32; n * cout * l];
    if l == 0 || n == 0 {
        return y;
    }
    if k_size == 1 {
        // 1×1 conv: one matmul per window straight from x.
        y.par_chunks_mut(cout * l)
            .zip(x.par_chunks(cin * l))
            .for_each(|(yn, xn)| {
                if let Some(bias) = bias {
                    for (row, &bv) in yn.chunks_mut(l).zip(bias) {
                        row.fill(bv);
                    }
                }
                let dst = Dst {
                    data: yn,
                    rs: l,
                    accumulate: bias.is_some(),
                };
                gemm_f32(dst, Mat::rows(w, cin), Mat::rows(xn, l), (cout, l, cin))
            });
        return y;
    }
    let t_len = tile_len(rows, l);
    let n_tiles = l.div_ceil(t_len);
    // Each task owns one (window, tile): it writes y[n, :, p0..p0+T], disjoint across tasks.
    let y_ptr = SendPtr(y.as_mut_ptr());
    (0..n * n_tiles).into_par_iter().for_each_init(
        || vec![0f32; rows * t_len],
        |col, task| {
            let (b, tile) = (task / n_tiles, task % n_tiles);
            let p0 = tile * t_len;
            let t = t_len.min(l - p0);
            let xb = &x[b * cin * l..(b + 1) * cin * l];
            im2col(xb, s, p0, t, col);
            // SAFETY: rows co of window b, columns p0..p0+t: disjoint between tasks, inside y.
            let dst = unsafe {
                std::slice::from_raw_parts_mut(
                    y_ptr.get().add(b * cout * l + p0),
                    (cout - 1) * l + t,
                )
            };
            if let Some(bias) = bias {
                for (co, &bv) in bias.iter().enumerate() {
                    dst[co * l..co * l + t].fill(bv);
                }
            }
            let dst = Dst {
                data: dst,
                rs: l,
                accumulate: bias.is_some(),
            };
            gemm_f32(dst, Mat::rows(w, rows), Mat::rows(col, t), (cout, t, rows));
        },
    );
    y
}

/// Weight-gradient kernel of the conv `s`: x (N, Cin, L), g (N, Cout, L) → gw (Cout, Cin·K).
/// In bf16 (`--precision bf16`) the operands x and g are bf16 and the sums f32 ([`super::conv_bf16::grad_weight`]).
pub(crate) fn conv_grad_weight_cpu(x: &[f32], g: &[f32], s: &ConvShape) -> Vec<f32> {
    match precision::active() {
        Active::Bf16Native => super::conv_bf16::grad_weight(x, g, s),
        Active::Bf16Emulated => super::conv_bf16::grad_weight_emulated(x, g, s),
        _ => conv_grad_weight_f32(x, g, s),
    }
}

/// The f32 weight gradient whatever `--precision` says: the direct kernel where it runs, else im2col + gemm.
pub(crate) fn conv_grad_weight_f32(x: &[f32], g: &[f32], s: &ConvShape) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if let Some(gw) = super::conv_direct::grad_weight(x, g, s) {
        return gw;
    }
    conv_grad_weight_gemm(x, g, s)
}

/// The im2col + gemm weight gradient (every CPU; see [`conv_forward_gemm`]).
pub(crate) fn conv_grad_weight_gemm(x: &[f32], g: &[f32], s: &ConvShape) -> Vec<f32> {
    let (n, cin, cout, l, k_size, _) = s.dims();
    let rows = cin * k_size;
    let size = cout * rows;
    if l == 0 || n == 0 {
        return vec![0f32; size];
    }
    // Longer tiles than the forward's: each tile is one gemm whose reduction runs over positions.
    let t_len = (tile_len(rows, l) * 4).min(l.max(1));
    let n_tiles = l.div_ceil(t_len);
    // One contiguous range of tasks per thread, each with its own accumulator.
    accumulate_tasks(
        n * n_tiles,
        size,
        || vec![0f32; rows * t_len],
        |task, col, acc| {
            let (b, tile) = (task / n_tiles, task % n_tiles);
            let p0 = tile * t_len;
            let t = t_len.min(l - p0);
            let xb = &x[b * cin * l..(b + 1) * cin * l];
            if k_size == 1 {
                // col is x's tile directly: rows = cin, row stride l.
                let gb = &g[b * cout * l + p0..];
                // acc (cout × cin) += g_tile (cout × t) · x_tileᵀ (t × cin)
                let dst = Dst {
                    data: acc,
                    rs: cin,
                    accumulate: true,
                };
                gemm_f32(
                    dst,
                    Mat::rows(gb, l),
                    Mat::cols(&xb[p0..], l),
                    (cout, cin, t),
                );
            } else {
                im2col(xb, s, p0, t, col);
                let gb = &g[b * cout * l + p0..];
                let dst = Dst {
                    data: acc,
                    rs: rows,
                    accumulate: true,
                };
                gemm_f32(dst, Mat::rows(gb, l), Mat::cols(col, t), (cout, rows, t));
            }
        },
    )
}

/// Σ over windows and positions of each channel of `g` (N, C, L): the bias gradient. candle's
/// `sum((0, 2))` takes a slow strided path for this reduction.
fn channel_sums(g: &Tensor) -> Result<Tensor> {
    let (n, c, l) = g.dims3()?;
    if !g.device().is_cpu() {
        return g.sum((0, 2));
    }
    let g = g.contiguous()?;
    let (storage, layout) = g.storage_and_layout();
    let data = storage_f32(&storage, layout, OP, "gradient")?;
    let sums: Vec<f32> = (0..c)
        .into_par_iter()
        .map(|ch| {
            (0..n)
                .map(|b| lane_sum(&data[(b * c + ch) * l..(b * c + ch + 1) * l], |v| v as f64))
                .sum::<f64>() as f32
        })
        .collect();
    Tensor::from_vec(sums, c, g.device())
}

/// Rearranges w (Cout, Cin, K) into the kernel of the input gradient: w' (Cin, Cout, K), flipped in K.
fn flip_transpose(w: &[f32], cout: usize, cin: usize, k_size: usize) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    for co in 0..cout {
        for ci in 0..cin {
            for k in 0..k_size {
                out[(ci * cout + co) * k_size + (k_size - 1 - k)] = w[(co * cin + ci) * k_size + k];
            }
        }
    }
    out
}

/// The CPU forward shared by [`Conv1dSame`] and [`Conv1dSameBias`]: checks shapes, then runs the kernel.
fn conv_cpu_fwd(
    dilation: usize,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    bias: Option<(&CpuStorage, &Layout)>,
) -> Result<(CpuStorage, Shape)> {
    let s = same_conv(l1.shape(), l2.shape(), dilation)?;
    let x = f32_slice(s1, l1, OP, "input")?;
    let w = f32_slice(s2, l2, OP, "kernel")?;
    let b = bias
        .map(|(s3, l3)| f32_slice(s3, l3, OP, "bias"))
        .transpose()?;
    if let Some(b) = b {
        if b.len() != s.c_out {
            return Err(candle_core::Error::Msg(format!(
                "conv1d: bias has {} values, expected {}",
                b.len(),
                s.c_out
            )));
        }
    }
    let y = conv_forward_cpu(x, w, b, &s);
    Ok((CpuStorage::F32(y), Shape::from((s.batch, s.c_out, s.l))))
}

impl CustomOp2 for Conv1dSame {
    fn name(&self) -> &'static str {
        OP
    }

    cpu_fwd!(|op, (s1, l1), (s2, l2)| conv_cpu_fwd(op.dilation, (s1, l1), (s2, l2), None));

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Grads2 {
        let (cout, cin, k) = w.dims3()?;
        let grad = grad.contiguous()?;
        // grad_x: the same conv of grad with the transposed, flipped kernel; skipped when no gradient
        // flows further back from x (the input data, or a frozen layer's output).
        let grad_x = grad_if(x.track_op(), || {
            let w_vec = w.flatten_all()?.to_vec1::<f32>()?;
            let wt = Tensor::from_vec(
                flip_transpose(&w_vec, cout, cin, k),
                (cin, cout, k),
                w.device(),
            )?;
            grad.apply_op2_no_bwd(&wt, self)
        })?;
        let grad_w = grad_if(w.track_op(), || {
            let op = Conv1dSameGradWeight {
                dilation: self.dilation,
                k_size: k,
            };
            x.apply_op2_no_bwd(&grad, &op)
        })?;
        Ok((grad_x, grad_w))
    }
}

impl CustomOp3 for Conv1dSameBias {
    fn name(&self) -> &'static str {
        "conv1d-same-bias"
    }

    cpu_fwd!(|op, (s1, l1), (s2, l2), (s3, l3)| conv_cpu_fwd(
        op.dilation,
        (s1, l1),
        (s2, l2),
        Some((s3, l3))
    ));

    fn bwd(&self, x: &Tensor, w: &Tensor, b: &Tensor, res: &Tensor, grad: &Tensor) -> Grads3 {
        let grad = grad.contiguous()?;
        let (gx, gw) = Conv1dSame {
            dilation: self.dilation,
        }
        .bwd(x, w, res, &grad)?;
        let gb = grad_if(b.track_op(), || channel_sums(&grad))?;
        Ok((gx, gw, gb))
    }
}

impl CustomOp2 for Conv1dSameGradWeight {
    fn name(&self) -> &'static str {
        "conv1d-same-grad-weight"
    }

    cpu_fwd!(|op, (s1, l1), (s2, l2)| {
        let s = ConvShape::grad_weight(l1.shape(), l2.shape(), op.k_size, op.dilation)?;
        let x = f32_slice(s1, l1, OP, "input")?;
        let g = f32_slice(s2, l2, OP, "gradient")?;
        let gw = conv_grad_weight_cpu(x, g, &s);
        Ok((
            CpuStorage::F32(gw),
            Shape::from((s.c_out, s.c_in, op.k_size)),
        ))
    });
}

/// A per-channel affine map followed by LeakyReLU, `v ↦ lrelu(v·scale + shift)`: an eval-mode BatchNorm
/// folded with its activation, or a batch-statistics one whose statistics are already known.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelMap {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
    pub slope: f32,
}

/// What [`conv1d_same_fused`] does around the convolution: `y = post(conv(pre(x)) + bias) + residual`.
/// `R` holds the residual: a tensor here, its contiguous data for the direct kernel.
#[derive(Debug, Clone, Copy)]
pub struct Fusion<'a, R = &'a Tensor> {
    /// Applied to the input (its real positions; the zero padding stays zero, as for a conv of `pre(x)`).
    pub pre: Option<&'a ChannelMap>,
    /// Applied to `conv + bias`.
    pub post: Option<&'a ChannelMap>,
    /// Added last, (N, Cout, L).
    pub residual: Option<R>,
    /// Also return per-channel Σy and Σy² (f64) of the stored output, for a following BatchNorm's batch
    /// statistics.
    pub sums: bool,
}

impl<R> Default for Fusion<'_, R> {
    fn default() -> Self {
        Fusion {
            pre: None,
            post: None,
            residual: None,
            sums: false,
        }
    }
}

/// The output of [`conv1d_same_fused`] and, when asked for, its per-channel Σy and Σy².
pub type FusedOutput = (Tensor, Option<Vec<(f64, f64)>>);

/// Whether [`conv1d_same_fused`] runs on `device` (the CPU with AVX-512F, on the native ops path; a bad
/// `OSAI_OPS` reads as no, and fails in [`conv1d_same`]).
pub fn fused_available(device: &candle_core::Device) -> bool {
    #[cfg(target_arch = "x86_64")]
    if native_kernels(device).unwrap_or(false) {
        return fused_kernel_runs();
    }
    let _ = device;
    false
}

/// Whether a fused forward runs here for the active precision (x86-64 only): the direct AVX-512F kernel in
/// f32, the AVX-512 BF16 one in bf16, the emulation (f32 kernels) anywhere.
#[cfg(target_arch = "x86_64")]
fn fused_kernel_runs() -> bool {
    match precision::active() {
        Active::F32 => super::conv_direct::available(),
        Active::Bf16Native => precision::native_bf16_available(),
        Active::Bf16Emulated => true,
    }
}

/// `y = post(conv(pre(x)) + b) + residual` in one pass per tile, without autograd: for evaluation and for
/// frozen layers whose inputs carry no gradient. `Ok(None)` where no fused kernel runs (devices other
/// than the CPU, CPUs without AVX-512F); callers then compose the stock ops.
pub fn conv1d_same_fused(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    dilation: usize,
    fusion: Fusion,
) -> Result<Option<FusedOutput>> {
    #[cfg(target_arch = "x86_64")]
    {
        if !native_kernels(x.device())? || !fused_kernel_runs() {
            return Ok(None);
        }
        let s = same_conv(x.shape(), w.shape(), dilation)?;
        let (n, cin, cout, l, ..) = s.dims();
        let check_map = |m: Option<&ChannelMap>, c: usize, what: &str| match m {
            Some(m) if m.scale.len() != c || m.shift.len() != c => {
                Err(candle_core::Error::Msg(format!(
                    "conv1d: {what} map has {} channels, expected {c}",
                    m.scale.len()
                )))
            }
            _ => Ok(()),
        };
        check_map(fusion.pre, cin, "input")?;
        check_map(fusion.post, cout, "output")?;
        let wv = w.flatten_all()?.to_vec1::<f32>()?;
        let bv = b.to_vec1::<f32>()?;
        let x = x.contiguous()?;
        let residual = match fusion.residual {
            Some(r) if r.dims() != [n, cout, l] => {
                return Err(candle_core::Error::Msg(format!(
                    "conv1d: residual {:?}, expected ({n}, {cout}, {l})",
                    r.dims()
                )))
            }
            Some(r) => Some(r.contiguous()?),
            None => None,
        };
        let (xs, xl) = x.storage_and_layout();
        let xv = storage_f32(&xs, xl, OP, "input")?;
        let guard = residual.as_ref().map(|r| r.storage_and_layout());
        let rv = match &guard {
            Some((s, l)) => Some(storage_f32(s, l, OP, "residual")?),
            None => None,
        };
        let fusion = Fusion {
            pre: fusion.pre,
            post: fusion.post,
            residual: rv,
            sums: fusion.sums,
        };
        let out = match precision::active() {
            Active::F32 => super::conv_direct::forward_fused(xv, &wv, Some(&bv), &s, fusion),
            Active::Bf16Native => super::conv_bf16::forward_fused(xv, &wv, Some(&bv), &s, fusion),
            Active::Bf16Emulated => Some(super::conv_bf16::forward_emulated(
                xv,
                &wv,
                Some(&bv),
                &s,
                fusion,
            )),
        };
        let Some((y, sums)) = out else {
            return Ok(None);
        };
        Ok(Some((Tensor::from_vec(y, (n, cout, l), x.device())?, sums)))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, w, b, dilation, fusion);
        Ok(None)
    }
}

/// Which CPU kernel the conv op runs on this machine: `"direct-avx512"` or `"im2col-gemm"`, or in bf16
/// `"direct-avx512-bf16"` or `"bf16-emulated"`.
pub fn cpu_kernel_name() -> &'static str {
    match precision::active() {
        #[cfg(target_arch = "x86_64")]
        Active::Bf16Native if super::conv_amx::available() => return "amx-bf16",
        Active::Bf16Native => return "direct-avx512-bf16",
        Active::Bf16Emulated => return "bf16-emulated",
        Active::F32 => {}
    }
    #[cfg(target_arch = "x86_64")]
    if super::conv_direct::available() {
        return "direct-avx512";
    }
    "im2col-gemm"
}

/// The CPU kernels on plain slices, for tests that hold them against each other. Not a stable API.
#[doc(hidden)]
pub mod kernels {
    use super::ConvShape;

    /// The sizes `(N, Cin, Cout, L, K, dilation)` as a [`ConvShape`].
    pub type Dims = (usize, usize, usize, usize, usize, usize);

    /// A fused forward's output and, when asked for, its per-channel Σy and Σy².
    pub type FusedVecs = (Vec<f32>, Option<Vec<(f64, f64)>>);

    fn shape((batch, c_in, c_out, l, k, dilation): Dims) -> ConvShape {
        ConvShape {
            batch,
            c_in,
            c_out,
            l,
            k,
            dilation,
        }
    }

    /// (N, Cin, L) ⊛ (Cout, Cin, K) through im2col + gemm.
    pub fn forward_gemm(x: &[f32], w: &[f32], bias: Option<&[f32]>, dims: Dims) -> Vec<f32> {
        super::conv_forward_gemm(x, w, bias, &shape(dims))
    }

    /// The same through the direct AVX-512 kernel; `None` where it does not run.
    pub fn forward_direct(
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        dims: Dims,
    ) -> Option<Vec<f32>> {
        #[cfg(target_arch = "x86_64")]
        return super::super::conv_direct::forward(x, w, bias, &shape(dims));
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (x, w, bias, shape(dims));
            None
        }
    }

    /// The forward (with the maps of `fuse`) through the AVX-512 BF16 kernel: bf16 operands, f32
    /// accumulation; `None` where it does not run.
    pub fn forward_bf16(
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        dims: Dims,
        fuse: super::Fusion<'_, &[f32]>,
    ) -> Option<FusedVecs> {
        super::super::conv_bf16::forward_avx512(x, w, bias, &shape(dims), fuse)
    }

    /// The forward `--precision bf16` runs natively: AMX where it runs, else AVX-512 BF16; `None` where
    /// neither does.
    pub fn forward_bf16_native(
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        dims: Dims,
        fuse: super::Fusion<'_, &[f32]>,
    ) -> Option<FusedVecs> {
        super::super::conv_bf16::forward_fused(x, w, bias, &shape(dims), fuse)
    }

    /// The same through the AMX kernel; `None` where it does not run (no AMX, or `OSAI_AMX=off`).
    pub fn forward_bf16_amx(
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        dims: Dims,
        fuse: super::Fusion<'_, &[f32]>,
    ) -> Option<FusedVecs> {
        #[cfg(target_arch = "x86_64")]
        return super::super::conv_amx::forward_fused(x, w, bias, &shape(dims), fuse);
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (x, w, bias, shape(dims), fuse);
            None
        }
    }

    /// The weight gradient with x and g rounded to bf16, through the AMX kernel; `None` where it does
    /// not run.
    pub fn grad_weight_bf16_amx(x: &[f32], g: &[f32], dims: Dims) -> Option<Vec<f32>> {
        #[cfg(target_arch = "x86_64")]
        return super::super::conv_amx::grad_weight(x, g, &shape(dims));
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (x, g, shape(dims));
            None
        }
    }

    /// The same with the operands rounded to bf16 and the f32 kernels (any CPU).
    pub fn forward_bf16_emulated(
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        dims: Dims,
        fuse: super::Fusion<'_, &[f32]>,
    ) -> FusedVecs {
        super::super::conv_bf16::forward_emulated(x, w, bias, &shape(dims), fuse)
    }

    /// Weight gradient (Cout, Cin, K) from x (N, Cin, L) and g (N, Cout, L) through im2col + gemm.
    pub fn grad_weight_gemm(x: &[f32], g: &[f32], dims: Dims) -> Vec<f32> {
        super::conv_grad_weight_gemm(x, g, &shape(dims))
    }

    /// The weight gradient with bf16 operands (x and g) and f32 accumulation, as `--precision bf16`
    /// runs it natively (AMX where it runs, else the emulation).
    pub fn grad_weight_bf16(x: &[f32], g: &[f32], dims: Dims) -> Vec<f32> {
        super::super::conv_bf16::grad_weight(x, g, &shape(dims))
    }

    /// The same with x and g rounded to bf16 and the f32 kernels (any CPU).
    pub fn grad_weight_bf16_emulated(x: &[f32], g: &[f32], dims: Dims) -> Vec<f32> {
        super::super::conv_bf16::grad_weight_emulated(x, g, &shape(dims))
    }

    /// The weight gradient the conv op runs for the process's active precision.
    pub fn grad_weight_active(x: &[f32], g: &[f32], dims: Dims) -> Vec<f32> {
        super::conv_grad_weight_cpu(x, g, &shape(dims))
    }

    /// The forward the conv op runs for the process's active precision (the input gradient is this
    /// forward of the output gradient with the transposed, flipped kernel).
    pub fn forward_active(x: &[f32], w: &[f32], bias: Option<&[f32]>, dims: Dims) -> Vec<f32> {
        super::conv_forward_cpu(x, w, bias, &shape(dims))
    }

    /// The same through the direct AVX-512 kernel; `None` where it does not run.
    pub fn grad_weight_direct(x: &[f32], g: &[f32], dims: Dims) -> Option<Vec<f32>> {
        #[cfg(target_arch = "x86_64")]
        return super::super::conv_direct::grad_weight(x, g, &shape(dims));
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (x, g, shape(dims));
            None
        }
    }
}

/// The dtype every op here computes in.
pub const COMPUTE_DTYPE: DType = DType::F32;
