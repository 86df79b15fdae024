//! The dilated conv as a list of strided-batched GEMM calls in cuBLAS's column-major terms: the plan the
//! CUDA op hands to `cublasSgemmStridedBatched`, and that [`execute_cpu`] runs on host slices with the
//! same semantics, so that the CPU tests check exactly the calls the GPU makes.
//!
//! Operands, all contiguous f32, row-major in our (N, C, L) sense:
//! - the padded input `X_pad` (B, C_in, L_pad), `L_pad = L + 2·pad`, `pad = (K−1)·d/2`, zero at both ends;
//! - the weight permuted once to taps-first `W_perm` (K, C_out, C_in), so each tap is one matrix;
//! - the output `Y` (B, C_out, L).
//!
//! A row-major `r × c` matrix with row stride `s` is, column-major, its transpose (`c × r`, leading
//! dimension `s`). So the forward `Y_b = Σ_k W_k · X_pad_b[:, k·d .. k·d+L]` is, column-major,
//! `Y_bᵀ (L × C_out, ld L) += X_kᵀ (L × C_in, ld L_pad, offset k·d) · W_kᵀ (C_in × C_out, ld C_in)`: one
//! call per tap, batched over the windows, reading the shifted input through a pointer offset and the
//! padded leading dimension (no per-tap copies). The input gradient is the same forward of the padded
//! output gradient with the weight transposed and flipped, which the plan expresses by reading tap
//! `K−1−k` of the (K, C_in, C_out) permutation ([`forward_plan`] with `flip`). The weight gradient
//! `dW_k = Σ_b G_b · X_pad_b[:, k·d..]ᵀ` is one call per window batched over the taps (the taps' input
//! views are `d` apart, their outputs `C_out·C_in` apart), accumulating over windows with β = 1.
//!
//! A plan runs in one [`Compute`] type: f32 (`cublasSgemmStridedBatched`), TF32 or bf16
//! (`cublasGemmStridedBatchedEx` with `CUBLAS_COMPUTE_32F_FAST_TF32`, or bf16 copies of A and B made once
//! per op and `CUBLAS_COMPUTE_32F`; C and α, β stay f32). [`execute_cpu_with`] emulates the last two by
//! rounding every element of A and B (`conv_bf16::round_tf32`, `round_bf16`: nearest even) and
//! accumulating in f32, so the CPU runs the GPU's calls on the GPU's operands.

use candle_core::{Result, Shape};
use rayon::prelude::*;

/// The compute type of a plan's GEMMs: what the operands A and B are rounded to before the f32
/// multiply-accumulate. C is f32 in all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compute {
    /// f32 operands (`cublasSgemmStridedBatched`).
    #[default]
    F32,
    /// Operands rounded to TF32 (10-bit mantissa), f32 accumulation (`CUBLAS_COMPUTE_32F_FAST_TF32`).
    Tf32,
    /// bf16 operands (8 significant bits), f32 accumulation (`CUDA_R_16BF`, `CUBLAS_COMPUTE_32F`).
    Bf16,
}

impl Compute {
    /// `v` as this compute type's tensor cores read it.
    #[inline(always)]
    pub fn round(self, v: f32) -> f32 {
        match self {
            Compute::F32 => v,
            Compute::Tf32 => super::conv_bf16::round_tf32(v),
            Compute::Bf16 => super::conv_bf16::round_bf16(v),
        }
    }

    /// The unit round-off of the operands' rounding (2^−p for p significant bits): 2⁻²⁴, 2⁻¹¹, 2⁻⁸.
    pub fn unit_roundoff(self) -> f64 {
        match self {
            Compute::F32 => 2f64.powi(-24),
            Compute::Tf32 => 2f64.powi(-11),
            Compute::Bf16 => 2f64.powi(-8),
        }
    }

    /// The operands rounded, once (the CUDA op's one conversion per op); f32 borrows them as they are.
    fn rounded(self, v: &[f32]) -> std::borrow::Cow<'_, [f32]> {
        match self {
            Compute::F32 => std::borrow::Cow::Borrowed(v),
            _ => std::borrow::Cow::Owned(v.par_iter().map(|&x| self.round(x)).collect()),
        }
    }
}

/// Whether a cuBLAS operand is used as stored (`N`) or transposed (`T`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trans {
    N,
    T,
}

/// One `cublasSgemmStridedBatched` call: for `i < batch`,
/// `C_i = α·op(A_i)·op(B_i) + β·C_i`, `op(A_i)` m×k, `op(B_i)` k×n, `C_i` m×n, column-major, where
/// `A_i` starts at `a_offset + i·stride_a` (offsets in elements of the operand buffers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GemmCall {
    pub transa: Trans,
    pub transb: Trans,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub a_offset: usize,
    pub lda: usize,
    pub stride_a: usize,
    pub b_offset: usize,
    pub ldb: usize,
    pub stride_b: usize,
    pub beta: f32,
    pub c_offset: usize,
    pub ldc: usize,
    pub stride_c: usize,
    pub batch: usize,
}

/// The shapes of one same-padded, stride-1, dilated conv: `x` (batch, c_in, l) ⊛ `w` (c_out, c_in, k).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub l: usize,
    pub k: usize,
    pub dilation: usize,
}

impl ConvShape {
    /// The weight-gradient conv of an input `x` (B, C_in, L) and an output gradient `g` (B, C_out, L) with
    /// kernel size `k`; an error where their windows or lengths disagree.
    pub fn grad_weight(x: &Shape, g: &Shape, k: usize, dilation: usize) -> Result<ConvShape> {
        let (batch, c_in, l) = x.dims3()?;
        let (b2, c_out, l2) = g.dims3()?;
        if (b2, l2) != (batch, l) {
            return Err(candle_core::Error::Msg(format!(
                "conv1d grad-weight: input {x:?} and gradient {g:?} disagree"
            )));
        }
        Ok(ConvShape {
            batch,
            c_in,
            c_out,
            l,
            k,
            dilation,
        })
    }

    /// The sizes `(N, Cin, Cout, L, K, dilation)`, in the order of `conv::kernels::Dims`.
    pub fn dims(&self) -> (usize, usize, usize, usize, usize, usize) {
        (
            self.batch,
            self.c_in,
            self.c_out,
            self.l,
            self.k,
            self.dilation,
        )
    }

    /// Zeros on each side of the sequence.
    pub fn pad(&self) -> usize {
        (self.k - 1) * self.dilation / 2
    }

    /// Length of the padded input rows.
    pub fn l_pad(&self) -> usize {
        self.l + 2 * self.pad()
    }

    /// The conv whose forward is this conv's input gradient: channels swapped.
    pub fn transposed(&self) -> ConvShape {
        ConvShape {
            c_in: self.c_out,
            c_out: self.c_in,
            ..*self
        }
    }

    /// An error unless the kernel is odd and positive (same padding) and the dilation positive.
    pub fn check(&self) -> Result<()> {
        if self.k.is_multiple_of(2) || self.dilation == 0 {
            return Err(candle_core::Error::Msg(format!(
                "same-padded conv1d needs an odd kernel size and a positive dilation, got K={} d={}",
                self.k, self.dilation
            )));
        }
        Ok(())
    }
}

/// Forward `Y (B, C_out, L) = conv(X_pad, W)`: operand A is `X_pad` (B, C_in, L_pad), B the permuted
/// weight (K, C_out, C_in) or, with `flip`, tap `K−1−k` of it (the input gradient's flipped kernel, whose
/// permutation of the forward weight is (K, C_in, C_out): pass [`ConvShape::transposed`]), C is `Y`.
/// The first tap overwrites `Y` (β = 0) unless `accumulate` (then `Y` holds the bias already, β = 1).
pub fn forward_plan(s: &ConvShape, flip: bool, accumulate: bool) -> Vec<GemmCall> {
    let (l_pad, tap) = (s.l_pad(), s.c_out * s.c_in);
    (0..s.k)
        .map(|k| {
            let wk = if flip { s.k - 1 - k } else { k };
            GemmCall {
                transa: Trans::N,
                transb: Trans::N,
                m: s.l,
                n: s.c_out,
                k: s.c_in,
                alpha: 1.0,
                a_offset: k * s.dilation,
                lda: l_pad,
                stride_a: s.c_in * l_pad,
                b_offset: wk * tap,
                ldb: s.c_in,
                stride_b: 0,
                beta: if k == 0 && !accumulate { 0.0 } else { 1.0 },
                c_offset: 0,
                ldc: s.l,
                stride_c: s.c_out * s.l,
                batch: s.batch,
            }
        })
        .collect()
}

/// Weight gradient `dW (K, C_out, C_in)`, taps first (permute to (C_out, C_in, K) afterwards): operand A
/// is `X_pad` (B, C_in, L_pad), B the output gradient `G` (B, C_out, L), C is `dW`. Column-major
/// `dW_kᵀ (C_in × C_out, ld C_in) = X_k (C_in × L, stored L × C_in with ld L_pad: transposed) · G_bᵀ
/// (L × C_out, ld L)`, one call per window over the K taps, the first overwriting.
pub fn weight_grad_plan(s: &ConvShape) -> Vec<GemmCall> {
    let l_pad = s.l_pad();
    (0..s.batch)
        .map(|b| GemmCall {
            transa: Trans::T,
            transb: Trans::N,
            m: s.c_in,
            n: s.c_out,
            k: s.l,
            alpha: 1.0,
            a_offset: b * s.c_in * l_pad,
            lda: l_pad,
            stride_a: s.dilation,
            b_offset: b * s.c_out * s.l,
            ldb: s.l,
            stride_b: 0,
            beta: if b == 0 { 0.0 } else { 1.0 },
            c_offset: 0,
            ldc: s.c_in,
            stride_c: s.c_out * s.c_in,
            batch: s.k,
        })
        .collect()
}

impl GemmCall {
    /// (rows, cols) of the stored operand A (column-major: rows are contiguous).
    fn a_stored(&self) -> (usize, usize) {
        match self.transa {
            Trans::N => (self.m, self.k),
            Trans::T => (self.k, self.m),
        }
    }

    fn b_stored(&self) -> (usize, usize) {
        match self.transb {
            Trans::N => (self.k, self.n),
            Trans::T => (self.n, self.k),
        }
    }

    /// One past the last element a column-major `rows × cols` operand with leading dimension `ld` at
    /// `offset`, repeated `batch` times `stride` apart, touches; an error if `ld < rows`.
    fn extent(
        what: &str,
        (rows, cols): (usize, usize),
        ld: usize,
        offset: usize,
        stride: usize,
        batch: usize,
    ) -> Result<usize> {
        if ld < rows.max(1) {
            return Err(candle_core::Error::Msg(format!(
                "gemm plan: leading dimension of {what} is {ld} < {rows} rows"
            )));
        }
        if rows == 0 || cols == 0 || batch == 0 {
            return Ok(0);
        }
        Ok(offset + (batch - 1) * stride + (cols - 1) * ld + rows)
    }

    /// Checks that every element the call reads or writes lies inside buffers of `len_a`, `len_b`,
    /// `len_c` elements, and that the batches write disjoint parts of C: what cuBLAS would not check.
    pub fn check_bounds(&self, len_a: usize, len_b: usize, len_c: usize) -> Result<()> {
        let ea = Self::extent(
            "A",
            self.a_stored(),
            self.lda,
            self.a_offset,
            self.stride_a,
            self.batch,
        )?;
        let eb = Self::extent(
            "B",
            self.b_stored(),
            self.ldb,
            self.b_offset,
            self.stride_b,
            self.batch,
        )?;
        let ec = Self::extent(
            "C",
            (self.m, self.n),
            self.ldc,
            self.c_offset,
            self.stride_c,
            self.batch,
        )?;
        for (what, e, len) in [("A", ea, len_a), ("B", eb, len_b), ("C", ec, len_c)] {
            if e > len {
                return Err(candle_core::Error::Msg(format!(
                    "gemm plan: {what} reaches element {e} of a buffer of {len}: {self:?}"
                )));
            }
        }
        if self.batch > 1 && ec > 0 && self.stride_c < self.ldc * (self.n - 1) + self.m {
            return Err(candle_core::Error::Msg(format!(
                "gemm plan: the batches of C overlap (stride {}): {self:?}",
                self.stride_c
            )));
        }
        Ok(())
    }
}

/// Runs `calls` in order on host buffers with `cublasSgemmStridedBatched`'s column-major semantics: the
/// CPU twin of the CUDA executor. Each call is bounds-checked first; its batches run in parallel (their
/// outputs are disjoint, [`GemmCall::check_bounds`]).
pub fn execute_cpu(calls: &[GemmCall], a: &[f32], b: &[f32], c: &mut [f32]) -> Result<()> {
    execute_cpu_with(calls, Compute::F32, a, b, c)
}

/// [`execute_cpu`] in `compute`: A and B rounded to it element by element first (one copy each, as the
/// CUDA op converts them once), then the same f32 calls.
pub fn execute_cpu_with(
    calls: &[GemmCall],
    compute: Compute,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) -> Result<()> {
    for call in calls {
        call.check_bounds(a.len(), b.len(), c.len())?;
    }
    let (a, b) = (compute.rounded(a), compute.rounded(b));
    let (a, b) = (&a[..], &b[..]);
    for call in calls {
        call.check_bounds(a.len(), b.len(), c.len())?;
        if call.m == 0 || call.n == 0 || call.batch == 0 {
            continue;
        }
        let c_ptr = super::cpu::SendPtr(c.as_mut_ptr());
        let c_len = c.len();
        // One call with many batches: parallel over them; a single large one: parallel inside.
        let par = if call.batch > 1 {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(rayon::current_num_threads())
        };
        let run = |i: usize| {
            let c_start = call.c_offset + i * call.stride_c;
            // SAFETY: batch i writes only [c_start, c_start + (n−1)·ldc + m), inside c and disjoint
            // from the other batches' ranges (checked above).
            let ci = unsafe {
                std::slice::from_raw_parts_mut(c_ptr.get().add(c_start), c_len - c_start)
            };
            gemm_one(
                call,
                par,
                &a[call.a_offset + i * call.stride_a..],
                &b[call.b_offset + i * call.stride_b..],
                ci,
            );
        };
        if call.batch > 1 {
            (0..call.batch).into_par_iter().for_each(run);
        } else {
            run(0);
        }
    }
    Ok(())
}

/// One column-major GEMM through the `gemm` crate (which takes row and column strides, so transposes
/// and leading dimensions are just strides). `a`, `b`, `c` start at the call's matrices.
fn gemm_one(call: &GemmCall, par: gemm::Parallelism, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (m, n, k) = (call.m, call.n, call.k);
    // Element (i, p) of op(A): stored (i, p) at i + p·lda, or (p, i) at p + i·lda.
    let (a_rs, a_cs) = match call.transa {
        Trans::N => (1, call.lda),
        Trans::T => (call.lda, 1),
    };
    let (b_rs, b_cs) = match call.transb {
        Trans::N => (1, call.ldb),
        Trans::T => (call.ldb, 1),
    };
    if k == 0 {
        // cuBLAS: C = β·C.
        for j in 0..n {
            for v in &mut c[j * call.ldc..j * call.ldc + m] {
                *v = if call.beta == 0.0 {
                    0.0
                } else {
                    *v * call.beta
                };
            }
        }
        return;
    }
    let read_dst = call.beta != 0.0;
    // SAFETY: check_bounds proved every index inside the slices; c does not alias a or b.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            call.ldc as isize,
            1,
            read_dst,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            // gemm: dst = alpha·dst + beta·lhs·rhs.
            call.beta,
            call.alpha,
            false,
            false,
            false,
            par,
        )
    }
}

/// The same semantics as three plain loops, in f64 accumulators: the tests' check of [`execute_cpu`].
pub fn execute_naive(calls: &[GemmCall], a: &[f32], b: &[f32], c: &mut [f32]) -> Result<()> {
    for call in calls {
        call.check_bounds(a.len(), b.len(), c.len())?;
        for i in 0..call.batch {
            let (ao, bo, co) = (
                call.a_offset + i * call.stride_a,
                call.b_offset + i * call.stride_b,
                call.c_offset + i * call.stride_c,
            );
            let at = |r: usize, p: usize| match call.transa {
                Trans::N => a[ao + r + p * call.lda],
                Trans::T => a[ao + p + r * call.lda],
            };
            let bt = |p: usize, j: usize| match call.transb {
                Trans::N => b[bo + p + j * call.ldb],
                Trans::T => b[bo + j + p * call.ldb],
            };
            for j in 0..call.n {
                for r in 0..call.m {
                    let dot: f64 = (0..call.k).map(|p| at(r, p) as f64 * bt(p, j) as f64).sum();
                    let dst = &mut c[co + r + j * call.ldc];
                    let old = if call.beta == 0.0 {
                        0.0
                    } else {
                        call.beta as f64 * *dst as f64
                    };
                    *dst = (call.alpha as f64 * dot + old) as f32;
                }
            }
        }
    }
    Ok(())
}

/// Host-side helpers that prepare the plans' operands from plain (N, C, L) / (C_out, C_in, K) slices: the
/// CPU mirror of the device's padding and permutation copies, for tests.
pub mod host {
    use super::ConvShape;

    /// `x` (B, C, L) → (B, C, L + 2·pad), zeros at both ends.
    pub fn pad(x: &[f32], rows: usize, l: usize, pad: usize) -> Vec<f32> {
        let lp = l + 2 * pad;
        let mut out = vec![0f32; rows * lp];
        for r in 0..rows {
            out[r * lp + pad..r * lp + pad + l].copy_from_slice(&x[r * l..(r + 1) * l]);
        }
        out
    }

    /// `w` (C_out, C_in, K) → (K, C_out, C_in), or with `transpose` → (K, C_in, C_out).
    pub fn permute_weight(w: &[f32], s: &ConvShape, transpose: bool) -> Vec<f32> {
        let (co_n, ci_n, k_n) = (s.c_out, s.c_in, s.k);
        let mut out = vec![0f32; w.len()];
        for co in 0..co_n {
            for ci in 0..ci_n {
                for k in 0..k_n {
                    let dst = if transpose {
                        (k * ci_n + ci) * co_n + co
                    } else {
                        (k * co_n + co) * ci_n + ci
                    };
                    out[dst] = w[(co * ci_n + ci) * k_n + k];
                }
            }
        }
        out
    }

    /// `dw` (K, C_out, C_in) → (C_out, C_in, K).
    pub fn unpermute_weight(dw: &[f32], s: &ConvShape) -> Vec<f32> {
        let mut out = vec![0f32; dw.len()];
        for k in 0..s.k {
            for co in 0..s.c_out {
                for ci in 0..s.c_in {
                    out[(co * s.c_in + ci) * s.k + k] = dw[(k * s.c_out + co) * s.c_in + ci];
                }
            }
        }
        out
    }
}
