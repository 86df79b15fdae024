//! The dilated conv as candle `CustomOp`s that run the GEMM plans of [`super::gemm_plan`]: cuBLAS
//! strided-batched GEMMs on CUDA, the plans' CPU executor on the CPU (`OSAI_OPS=reference`), with the
//! padding and weight permutations in between made of candle's backend-storage copies, in one function
//! generic over the storage ([`PlanStorage`]): the CPU runs exactly the code and calls the GPU runs,
//! except the GEMM itself.
//!
//! Autograd keeps only the op's input (for the weight gradient) and its weight: no per-tap copies,
//! products or partial sums. The backward is the same op: the input gradient is the forward plan over
//! the padded output gradient with the transposed, flipped kernel; the weight gradient its own plan
//! ([`weight_grad_plan`]); the bias gradient a per-channel sum.
//!
//! Every plan runs in the op's compute type, by default the process's (`precision::gemm_compute`, set
//! by `--precision`) when the op is built, and its backward in the same: f32 (`cublasSgemmStridedBatched`), TF32 (`cublasGemmStridedBatchedEx` on the f32
//! buffers with `CUBLAS_COMPUTE_32F_FAST_TF32`) or bf16 (A and B converted to bf16 once per op, C f32,
//! `CUBLAS_COMPUTE_32F`); the CPU executor emulates the last two by rounding A and B.

#[cfg(feature = "cuda")]
use candle_core::backend::BackendDevice;
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};

use super::gemm_plan::{
    execute_cpu_with, forward_plan, weight_grad_plan, Compute, ConvShape, GemmCall,
};
use super::{grad_if, Grads2, Grads3};

/// A backend storage that can run a GEMM plan: `calls` in `compute` with operands A, B read and C
/// written.
pub trait PlanStorage: BackendStorage + Sized {
    fn run_plan(
        calls: &[GemmCall],
        compute: Compute,
        a: &Self,
        b: &Self,
        c: &mut Self,
    ) -> Result<()>;

    /// f32 zeros of `shape` on this storage's device.
    fn zeros_f32(&self, shape: &Shape) -> Result<Self>;
}

fn f32_vec<'a>(s: &'a CpuStorage, what: &str) -> Result<&'a [f32]> {
    match s {
        CpuStorage::F32(v) => Ok(v),
        _ => Err(candle_core::Error::Msg(format!(
            "conv1d (gemm plan): {what} must be f32, got {:?}",
            s.dtype()
        ))),
    }
}

impl PlanStorage for CpuStorage {
    fn zeros_f32(&self, shape: &Shape) -> Result<Self> {
        Ok(CpuStorage::F32(vec![0f32; shape.elem_count()]))
    }

    fn run_plan(
        calls: &[GemmCall],
        compute: Compute,
        a: &Self,
        b: &Self,
        c: &mut Self,
    ) -> Result<()> {
        let (a, b) = (f32_vec(a, "operand A")?, f32_vec(b, "operand B")?);
        match c {
            CpuStorage::F32(c) => execute_cpu_with(calls, compute, a, b, c),
            _ => Err(candle_core::Error::Msg(
                "conv1d (gemm plan): the output must be f32".into(),
            )),
        }
    }
}

#[cfg(feature = "cuda")]
impl PlanStorage for candle_core::CudaStorage {
    fn zeros_f32(&self, shape: &Shape) -> Result<Self> {
        self.device.zeros_impl(shape, DType::F32)
    }

    fn run_plan(
        calls: &[GemmCall],
        compute: Compute,
        a: &Self,
        b: &Self,
        c: &mut Self,
    ) -> Result<()> {
        match compute {
            Compute::F32 => cuda_sgemm(calls, a, b, c),
            Compute::Tf32 => cuda_gemm_ex(calls, compute, a, b, c),
            Compute::Bf16 => {
                // One conversion per operand per op (candle's cast kernel: round to nearest even).
                let to_bf16 = |s: &Self| {
                    let n = s.as_cuda_slice::<f32>()?.len();
                    s.to_dtype(&Layout::contiguous(n), DType::BF16)
                };
                cuda_gemm_ex(calls, compute, &to_bf16(a)?, &to_bf16(b)?, c)
            }
        }
    }
}

#[cfg(feature = "cuda")]
fn cublas_int(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| {
        candle_core::Error::Msg(format!("conv1d (gemm plan): {v} exceeds cuBLAS's int"))
    })
}

#[cfg(feature = "cuda")]
fn cublas_op(
    t: super::gemm_plan::Trans,
) -> candle_core::cuda_backend::cudarc::cublas::sys::cublasOperation_t {
    use candle_core::cuda_backend::cudarc::cublas::sys::cublasOperation_t;
    match t {
        super::gemm_plan::Trans::N => cublasOperation_t::CUBLAS_OP_N,
        super::gemm_plan::Trans::T => cublasOperation_t::CUBLAS_OP_T,
    }
}

/// The f32 plan: `cublasSgemmStridedBatched` per call.
#[cfg(feature = "cuda")]
fn cuda_sgemm(
    calls: &[GemmCall],
    a: &candle_core::CudaStorage,
    b: &candle_core::CudaStorage,
    c: &mut candle_core::CudaStorage,
) -> Result<()> {
    use candle_core::cuda_backend::cudarc::cublas::{Gemm, GemmConfig, StridedBatchedConfig};
    let blas = cublas(&c.device)?;
    let a = a.as_cuda_slice::<f32>()?;
    let b = b.as_cuda_slice::<f32>()?;
    let c = c.as_cuda_slice_mut::<f32>()?;
    for call in calls {
        call.check_bounds(a.len(), b.len(), c.len())?;
        if call.m == 0 || call.n == 0 || call.batch == 0 {
            continue;
        }
        let cfg = StridedBatchedConfig {
            gemm: GemmConfig {
                transa: cublas_op(call.transa),
                transb: cublas_op(call.transb),
                m: cublas_int(call.m)?,
                n: cublas_int(call.n)?,
                k: cublas_int(call.k)?,
                alpha: call.alpha,
                lda: cublas_int(call.lda)?,
                ldb: cublas_int(call.ldb)?,
                beta: call.beta,
                ldc: cublas_int(call.ldc)?,
            },
            batch_size: cublas_int(call.batch)?,
            stride_a: call.stride_a as i64,
            stride_b: call.stride_b as i64,
            stride_c: call.stride_c as i64,
        };
        let av = a.slice(call.a_offset..);
        let bv = b.slice(call.b_offset..);
        let mut cv = c.slice_mut(call.c_offset..);
        // SAFETY: check_bounds proved that every element the call touches lies inside the three
        // buffers and that its batches write disjoint parts of C.
        unsafe { blas.gemm_strided_batched(cfg, &av, &bv, &mut cv) }
            .map_err(|e| candle_core::Error::Msg(format!("cuBLAS sgemm: {e:?}")))?;
    }
    Ok(())
}

/// The TF32 plan (A, B f32) or the bf16 plan (A, B bf16): `cublasGemmStridedBatchedEx` per call, C f32,
/// α and β f32 on the host, compute type `CUBLAS_COMPUTE_32F_FAST_TF32` or `CUBLAS_COMPUTE_32F`.
#[cfg(feature = "cuda")]
fn cuda_gemm_ex(
    calls: &[GemmCall],
    compute: Compute,
    a: &candle_core::CudaStorage,
    b: &candle_core::CudaStorage,
    c: &mut candle_core::CudaStorage,
) -> Result<()> {
    use candle_core::cuda_backend::cudarc::cublas::result::gemm_strided_batched_ex;
    use candle_core::cuda_backend::cudarc::cublas::sys::{
        cublasComputeType_t, cublasGemmAlgo_t, cudaDataType_t,
    };
    use candle_core::cuda_backend::cudarc::driver::{DevicePtr, DevicePtrMut};
    let blas = cublas(&c.device)?;
    let stream = c.device.cuda_stream();
    let err =
        |e| candle_core::Error::Msg(format!("cuBLAS GemmStridedBatchedEx ({compute:?}): {e:?}"));
    // A and B as raw device pointers (with the guards that record their use on the stream when
    // dropped, after the calls), their lengths, cuBLAS type and element size.
    let ((a_ptr, _record_a), a_len, (b_ptr, _record_b), b_len, in_type, elem) = match compute {
        Compute::Tf32 => {
            let (a, b) = (a.as_cuda_slice::<f32>()?, b.as_cuda_slice::<f32>()?);
            (
                a.device_ptr(&stream),
                a.len(),
                b.device_ptr(&stream),
                b.len(),
                cudaDataType_t::CUDA_R_32F,
                4u64,
            )
        }
        Compute::Bf16 => {
            let a = a.as_cuda_slice::<half::bf16>()?;
            let b = b.as_cuda_slice::<half::bf16>()?;
            (
                a.device_ptr(&stream),
                a.len(),
                b.device_ptr(&stream),
                b.len(),
                cudaDataType_t::CUDA_R_16BF,
                2u64,
            )
        }
        Compute::F32 => return cuda_sgemm(calls, a, b, c),
    };
    let compute_type = match compute {
        Compute::Tf32 => cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
        _ => cublasComputeType_t::CUBLAS_COMPUTE_32F,
    };
    let c = c.as_cuda_slice_mut::<f32>()?;
    let c_len = c.len();
    let (c_ptr, _record_c) = c.device_ptr_mut(&stream);
    for call in calls {
        call.check_bounds(a_len, b_len, c_len)?;
        if call.m == 0 || call.n == 0 || call.batch == 0 {
            continue;
        }
        let (alpha, beta) = (call.alpha, call.beta);
        // SAFETY: check_bounds proved that every element the call touches lies inside the three
        // buffers and that its batches write disjoint parts of C; the pointers are offset inside
        // them; all work is queued on the device's stream, the handle's stream.
        unsafe {
            gemm_strided_batched_ex(
                *blas.handle(),
                cublas_op(call.transa),
                cublas_op(call.transb),
                cublas_int(call.m)?,
                cublas_int(call.n)?,
                cublas_int(call.k)?,
                (&alpha) as *const f32 as *const _,
                (a_ptr + call.a_offset as u64 * elem) as *const _,
                in_type,
                cublas_int(call.lda)?,
                call.stride_a as i64,
                (b_ptr + call.b_offset as u64 * elem) as *const _,
                in_type,
                cublas_int(call.ldb)?,
                call.stride_b as i64,
                (&beta) as *const f32 as *const _,
                (c_ptr + call.c_offset as u64 * 4) as *mut _,
                cudaDataType_t::CUDA_R_32F,
                cublas_int(call.ldc)?,
                call.stride_c as i64,
                cublas_int(call.batch)?,
                compute_type,
                cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(err)?;
    }
    Ok(())
}

/// The device's cuBLAS handle (created on first use by the vendored candle; a clear error when libcublas
/// cannot be loaded).
#[cfg(feature = "cuda")]
fn cublas(
    dev: &candle_core::CudaDevice,
) -> Result<std::sync::Arc<candle_core::cuda_backend::cudarc::cublas::CudaBlas>> {
    dev.cublas_handle()
}

/// Zeros of `shape` on the storage's device, f32.
fn zeros<S: PlanStorage>(like: &S, shape: impl Into<Shape>) -> Result<S> {
    like.zeros_f32(&shape.into())
}

fn check_f32<S: BackendStorage>(s: &S, what: &str) -> Result<()> {
    if s.dtype() != DType::F32 {
        return Err(candle_core::Error::Msg(format!(
            "conv1d (gemm plan): {what} must be f32, got {:?}",
            s.dtype()
        )));
    }
    Ok(())
}

fn contiguous_start(l: &Layout, what: &'static str) -> Result<usize> {
    if !l.is_contiguous() {
        return Err(candle_core::Error::RequiresContiguous { op: what });
    }
    Ok(l.start_offset())
}

/// `x` (rows, l) contiguous → (rows, l + 2·pad) with zeros at both ends.
fn pad_rows<S: PlanStorage>(x: &S, xl: &Layout, rows: usize, l: usize, pad: usize) -> Result<S> {
    let start = contiguous_start(xl, "conv1d (gemm plan) input")?;
    let lp = l + 2 * pad;
    let mut out = zeros(x, (rows, lp))?;
    x.copy2d(&mut out, rows, l, l, lp, start, pad)?;
    Ok(out)
}

/// A contiguous copy of `s` read through `shape` and `stride` from the start of layout `base`.
fn gather<S: PlanStorage>(s: &S, base: &Layout, shape: Shape, stride: Vec<usize>) -> Result<S> {
    let mut out = zeros(s, shape.clone())?;
    s.copy_strided_src(
        &mut out,
        0,
        &Layout::new(shape, stride, base.start_offset()),
    )?;
    Ok(out)
}

/// The conv's shape from `x` (B, C, L) and `w` (C_out, C_in, K); with `input_grad`, `x` is the output
/// gradient (B, C_out, L) of the conv of `w`.
fn conv_shape(xl: &Layout, wl: &Layout, dilation: usize, input_grad: bool) -> Result<ConvShape> {
    let (batch, c, l) = xl.shape().dims3()?;
    let (c_out, c_in, k) = wl.shape().dims3()?;
    let expect = if input_grad { c_out } else { c_in };
    if c != expect {
        return Err(candle_core::Error::Msg(format!(
            "conv1d: input has {c} channels, kernel {:?} expects {expect}",
            wl.shape()
        )));
    }
    let s = ConvShape {
        batch,
        c_in,
        c_out,
        l,
        k,
        dilation,
    };
    s.check()?;
    Ok(s)
}

/// Forward conv through the plan: `x` (B, C_in, L) ⊛ `w` (C_out, C_in, K) (+ `bias` (C_out)) →
/// (B, C_out, L); or, with `input_grad`, the input gradient (B, C_in, L) from the output gradient `x`
/// (B, C_out, L) of the conv of `w`.
pub fn conv_forward<S: PlanStorage>(
    (x, xl): (&S, &Layout),
    (w, wl): (&S, &Layout),
    bias: Option<(&S, &Layout)>,
    dilation: usize,
    input_grad: bool,
    compute: Compute,
) -> Result<(S, Shape)> {
    check_f32(x, "input")?;
    check_f32(w, "kernel")?;
    let s = conv_shape(xl, wl, dilation, input_grad)?;
    contiguous_start(wl, "conv1d (gemm plan) kernel")?;
    let (ci, co, k) = (s.c_in, s.c_out, s.k);
    // The conv that runs: this one, or for the input gradient the transposed one with flipped taps.
    let (run, wp) = if input_grad {
        // (K, C_in, C_out): element (k, i, o) = w[o, i, k].
        let wp = gather(w, wl, (k, ci, co).into(), vec![1, k, ci * k])?;
        (s.transposed(), wp)
    } else {
        // (K, C_out, C_in): element (k, o, i) = w[o, i, k].
        let wp = gather(w, wl, (k, co, ci).into(), vec![1, ci * k, k])?;
        (s, wp)
    };
    let xp = pad_rows(x, xl, run.batch * run.c_in, run.l, run.pad())?;
    let out_shape = Shape::from((run.batch, run.c_out, run.l));
    let mut y = match bias {
        Some((b, bl)) => {
            check_f32(b, "bias")?;
            if bl.shape().elem_count() != run.c_out {
                return Err(candle_core::Error::Msg(format!(
                    "conv1d: bias has {} values, expected {}",
                    bl.shape().elem_count(),
                    run.c_out
                )));
            }
            contiguous_start(bl, "conv1d (gemm plan) bias")?;
            gather(b, bl, out_shape.clone(), vec![0, 1, 0])?
        }
        None => zeros(x, out_shape.clone())?,
    };
    let calls = forward_plan(&run, input_grad, bias.is_some());
    S::run_plan(&calls, compute, &xp, &wp, &mut y)?;
    Ok((y, out_shape))
}

/// Weight gradient through the plan: `x` (B, C_in, L) and the output gradient `g` (B, C_out, L) →
/// (C_out, C_in, K).
pub fn conv_grad_weight<S: PlanStorage>(
    (x, xl): (&S, &Layout),
    (g, gl): (&S, &Layout),
    k: usize,
    dilation: usize,
    compute: Compute,
) -> Result<(S, Shape)> {
    check_f32(x, "input")?;
    check_f32(g, "gradient")?;
    let s = ConvShape::grad_weight(xl.shape(), gl.shape(), k, dilation)?;
    s.check()?;
    let (batch, c_in, c_out, l, ..) = s.dims();
    let g_start = contiguous_start(gl, "conv1d (gemm plan) gradient")?;
    let xp = pad_rows(x, xl, batch * c_in, l, s.pad())?;
    let mut dw = zeros(x, (k, c_out, c_in))?;
    let calls: Vec<GemmCall> = weight_grad_plan(&s)
        .into_iter()
        .map(|c| GemmCall {
            b_offset: c.b_offset + g_start,
            ..c
        })
        .collect();
    S::run_plan(&calls, compute, &xp, g, &mut dw)?;
    // (K, C_out, C_in) → (C_out, C_in, K): element (o, i, k) = dw[k, o, i].
    let shape = Shape::from((c_out, c_in, k));
    let out = gather(
        &dw,
        &Layout::contiguous((k, c_out, c_in)),
        shape.clone(),
        vec![c_in, 1, c_out * c_in],
    )?;
    Ok((out, shape))
}

/// `x (B, C_in, L) ⊛ w (C_out, C_in, K)`, same padding, dilation `dilation`, no bias; with `input_grad`
/// the input gradient of that conv from its output gradient (no backward then). Its plans run in
/// `compute`, fixed when the op is built (its backward runs in the same).
#[derive(Debug, Clone, Copy)]
pub struct ConvGemm {
    pub dilation: usize,
    pub input_grad: bool,
    pub compute: Compute,
}

/// `(x, w, b) → conv(x, w) + b` through the plan, in `compute`.
#[derive(Debug, Clone, Copy)]
pub struct ConvGemmBias {
    pub dilation: usize,
    pub compute: Compute,
}

/// `(x (B, C_in, L), g (B, C_out, L)) → dW (C_out, C_in, K)`.
#[derive(Debug, Clone, Copy)]
struct ConvGemmGradWeight {
    dilation: usize,
    k: usize,
    compute: Compute,
}

/// The gradients of `conv(x, w)` from `grad`, each only where it is needed, in `compute`.
fn conv_bwd(dilation: usize, compute: Compute, x: &Tensor, w: &Tensor, grad: &Tensor) -> Grads2 {
    let grad = grad.contiguous()?;
    let gx = grad_if(x.track_op(), || {
        let op = ConvGemm {
            dilation,
            input_grad: true,
            compute,
        };
        grad.apply_op2_no_bwd(&w.detach().contiguous()?, &op)
    })?;
    let gw = grad_if(w.track_op(), || {
        let op = ConvGemmGradWeight {
            dilation,
            k: w.dims3()?.2,
            compute,
        };
        x.detach().contiguous()?.apply_op2_no_bwd(&grad, &op)
    })?;
    Ok((gx, gw))
}

impl CustomOp2 for ConvGemm {
    fn name(&self) -> &'static str {
        "conv1d-gemm-plan"
    }

    storage_fwd!(|op, (s1, l1), (s2, l2)| conv_forward(
        (s1, l1),
        (s2, l2),
        None,
        op.dilation,
        op.input_grad,
        op.compute
    ));

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Grads2 {
        if self.input_grad {
            return Err(candle_core::Error::Msg(
                "conv1d (gemm plan): no second derivative".into(),
            ));
        }
        conv_bwd(self.dilation, self.compute, x, w, grad)
    }
}

impl CustomOp3 for ConvGemmBias {
    fn name(&self) -> &'static str {
        "conv1d-gemm-plan-bias"
    }

    storage_fwd!(|op, (s1, l1), (s2, l2), (s3, l3)| conv_forward(
        (s1, l1),
        (s2, l2),
        Some((s3, l3)),
        op.dilation,
        false,
        op.compute
    ));

    fn bwd(&self, x: &Tensor, w: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> Grads3 {
        let (gx, gw) = conv_bwd(self.dilation, self.compute, x, w, grad)?;
        let gb = grad_if(b.track_op(), || grad.detach().sum((0, 2)))?;
        Ok((gx, gw, gb))
    }
}

impl CustomOp2 for ConvGemmGradWeight {
    fn name(&self) -> &'static str {
        "conv1d-gemm-plan-grad-weight"
    }

    storage_fwd!(|op, (s1, l1), (s2, l2)| conv_grad_weight(
        (s1, l1),
        (s2, l2),
        op.k,
        op.dilation,
        op.compute
    ));
}

/// The same-padded dilated conv plus bias through the GEMM plan (the CUDA graph): `x` (N, C_in, L),
/// `w` (C_out, C_in, K), `b` (C_out) → (N, C_out, L), in the process's GEMM compute type
/// (`precision::gemm_compute`, `--precision`).
pub fn conv1d_same_gemm(x: &Tensor, w: &Tensor, b: &Tensor, dilation: usize) -> Result<Tensor> {
    conv1d_same_gemm_in(x, w, b, dilation, super::precision::gemm_compute())
}

/// [`conv1d_same_gemm`] in a given compute type (forward and backward), whatever the process's is.
pub fn conv1d_same_gemm_in(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    dilation: usize,
    compute: Compute,
) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &w.contiguous()?,
        &b.contiguous()?,
        ConvGemmBias { dilation, compute },
    )
}
