//! The compute precision of the CPU conv kernels (`--precision f32|bf16`), chosen once per process at
//! startup, like the kernel choice of `OSAI_CONV_KERNEL`.
//!
//! bf16 means bf16 operands and f32 accumulation in every conv the CPU runs: forwards, input gradients
//! (a forward of the flipped kernel) and weight gradients (weights are rounded to bf16 as they are
//! packed, inputs and gradients as they are copied into the kernel's buffers); bias, BatchNorm, the
//! loss, AdamW, the master weights and every other op stay f32, and checkpoints are written in f32.
//! Three ways it runs:
//!
//! - `native`: the AMX kernels of `ops/conv_amx.rs` (`tdpbf16ps`) where the CPU has AMX-BF16 and the OS
//!   grants the tile state (`OSAI_AMX=off` skips them), else the AVX-512 BF16 forward of
//!   `ops/conv_bf16.rs` (`vdpbf16ps`) with emulated weight gradients, where the CPU has `avx512_bf16`;
//! - `emulate` (`OSAI_BF16=emulate`): operands rounded to bf16 the same way, then the f32 kernels: any
//!   CPU, the reference the native kernels are tested against;
//! - f32, with a one-line message, where bf16 was asked for but the CPU lacks AVX-512 BF16 or
//!   `OSAI_BF16=off` (so CI can force that path).
//!
//! Beside it, a second process-wide setting: the compute type of the GEMM plan ([`gemm_compute`],
//! `ops/gemm_plan.rs`), the conv graph that runs on CUDA and on the CPU with `OSAI_OPS=reference`:
//! f32 (`cublasSgemmStridedBatched`), TF32 (f32 storage, tensor-core math with 10-bit mantissas) or bf16
//! (bf16 operands, f32 accumulation and output), both through `cublasGemmStridedBatchedEx`; the CPU
//! executor emulates each by rounding the operands. On Metal (and CUDA with `OSAI_OPS=stock`) the stock
//! graph's per-tap matmuls read bf16 operands when the plan's compute type is bf16. [`resolve`] sets both
//! from `--precision` and the device.

use std::sync::atomic::{AtomicU8, Ordering};

/// `--precision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Precision {
    /// f32 operands and accumulation (the default; every identity test runs in it).
    #[default]
    F32,
    /// bf16 operands, f32 accumulation (conv forwards on the CPU; every conv GEMM on CUDA; the per-tap
    /// matmuls on Metal).
    Bf16,
    /// f32 storage, TF32 tensor-core math (CUDA only; f32 with a message elsewhere).
    Tf32,
}

/// Where the model runs, as far as the precision is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    Cuda,
    Metal,
}

impl Backend {
    /// The backend of `device`.
    pub fn of(device: &candle_core::Device) -> Backend {
        match device {
            candle_core::Device::Cpu => Backend::Cpu,
            candle_core::Device::Cuda(_) => Backend::Cuda,
            candle_core::Device::Metal(_) => Backend::Metal,
        }
    }
}

pub use super::gemm_plan::Compute;

/// What the conv kernels run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Active {
    F32,
    /// The AVX-512 BF16 kernel.
    Bf16Native,
    /// bf16 rounding of the operands, f32 kernels.
    Bf16Emulated,
}

const F32: u8 = 0;
const NATIVE: u8 = 1;
const EMULATED: u8 = 2;

static ACTIVE: AtomicU8 = AtomicU8::new(F32);
static GEMM: AtomicU8 = AtomicU8::new(0);

/// The compute type of the GEMM plan's calls (and of the stock graph's conv matmuls off the CPU) now.
pub fn gemm_compute() -> Compute {
    match GEMM.load(Ordering::Relaxed) {
        1 => Compute::Tf32,
        2 => Compute::Bf16,
        _ => Compute::F32,
    }
}

/// Sets the GEMM plan's compute type (tests, and [`select`]).
pub fn set_gemm_compute(c: Compute) {
    let v = match c {
        Compute::F32 => 0,
        Compute::Tf32 => 1,
        Compute::Bf16 => 2,
    };
    GEMM.store(v, Ordering::Relaxed);
}

/// The precision the conv kernels run in now.
pub fn active() -> Active {
    match ACTIVE.load(Ordering::Relaxed) {
        NATIVE => Active::Bf16Native,
        EMULATED => Active::Bf16Emulated,
        _ => Active::F32,
    }
}

/// Sets what the conv kernels run in (tests and `bench`, which times f32 and bf16 in one process).
pub fn set_active(a: Active) {
    let v = match a {
        Active::F32 => F32,
        Active::Bf16Native => NATIVE,
        Active::Bf16Emulated => EMULATED,
    };
    ACTIVE.store(v, Ordering::Relaxed);
}

/// Whether this CPU runs the native bf16 kernel (AVX-512F, BW and BF16).
pub fn native_bf16_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The CPU's native bf16 kernels: `AMX` where the CPU and the OS allow it (forwards and weight
/// gradients), else `AVX-512 BF16` (forwards; weight gradients emulated).
pub fn native_bf16_kernel() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if super::conv_amx::available() {
        return "AMX";
    }
    "AVX-512 BF16"
}

/// How a training run records its precision in `run.json`: `None` for f32; `bf16`, `bf16-emulated`
/// (`OSAI_BF16=emulate`) or `tf32` (the GEMM plan's compute type on CUDA) otherwise.
pub fn run_label() -> Option<String> {
    match (active(), gemm_compute()) {
        (Active::Bf16Native, _) | (Active::F32, Compute::Bf16) => Some("bf16".into()),
        (Active::Bf16Emulated, _) => Some("bf16-emulated".into()),
        (Active::F32, Compute::Tf32) => Some("tf32".into()),
        (Active::F32, Compute::F32) => None,
    }
}

/// What was chosen for a requested precision, and the line that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// What the CPU conv kernels run in.
    pub active: Active,
    /// The GEMM plan's compute type (CUDA; the CPU with `OSAI_OPS=reference`; Metal's stock matmuls).
    pub gemm: Compute,
    /// One line for stderr: what runs, or why the precision asked for is not and f32 runs.
    pub message: Option<String>,
}

/// Resolves `--precision p` for a model on `backend` with the environment variable `OSAI_BF16`
/// (`auto`, the default; `emulate`; `off`), without changing anything. An error names a bad
/// `OSAI_BF16` (read only when bf16 is asked for).
///
/// - CPU: bf16 as described above; the GEMM plan (`OSAI_OPS=reference`) emulates bf16 whenever the
///   kernels run bf16. TF32: CPUs have none, f32 with a message.
/// - CUDA: the GEMM plan in bf16 or TF32 (`OSAI_BF16=off` forces f32 there too).
/// - Metal: bf16 operands for the stock graph's matmuls; TF32: f32 with a message.
pub fn resolve(p: Precision, backend: Backend, env: Option<&str>) -> Result<Selection, String> {
    let env = env.unwrap_or("auto");
    if p == Precision::Bf16 && !matches!(env, "auto" | "emulate" | "off") {
        return Err(format!("OSAI_BF16={env}: expected auto, emulate or off"));
    }
    let f32_because = |flag: &str, why: &str| Selection {
        active: Active::F32,
        gemm: Compute::F32,
        message: Some(format!("--precision {flag}: {why}; running in f32")),
    };
    let gpu = |gemm: Compute, line: &str| Selection {
        active: Active::F32,
        gemm,
        message: Some(line.into()),
    };
    Ok(match (p, backend) {
        (Precision::F32, _) => Selection {
            active: Active::F32,
            gemm: Compute::F32,
            message: None,
        },
        (Precision::Tf32, Backend::Cpu) => f32_because("tf32", "CPUs have no TF32"),
        (Precision::Tf32, Backend::Metal) => f32_because("tf32", "Metal has no TF32"),
        (Precision::Tf32, Backend::Cuda) => gpu(
            Compute::Tf32,
            "precision: TF32 conv GEMMs on CUDA (f32 storage, CUBLAS_COMPUTE_32F_FAST_TF32)",
        ),
        (Precision::Bf16, _) if env == "off" => f32_because("bf16", "OSAI_BF16=off"),
        (Precision::Bf16, Backend::Cuda) => gpu(
            Compute::Bf16,
            "precision: bf16 conv GEMMs on CUDA (cublasGemmStridedBatchedEx: bf16 operands, f32 accumulation)",
        ),
        (Precision::Bf16, Backend::Metal) => gpu(
            Compute::Bf16,
            "precision: bf16 conv matmuls on Metal (bf16 operands and per-tap products, f32 sums)",
        ),
        (Precision::Bf16, Backend::Cpu) if env == "emulate" => Selection {
            active: Active::Bf16Emulated,
            gemm: Compute::Bf16,
            message: Some(
                "precision: bf16 emulated (OSAI_BF16=emulate: operands rounded to bf16, f32 kernels)"
                    .into(),
            ),
        },
        (Precision::Bf16, Backend::Cpu) if native_bf16_available() => Selection {
            active: Active::Bf16Native,
            gemm: Compute::Bf16,
            message: Some(format!(
                "precision: bf16 convolutions ({}, f32 accumulation)",
                native_bf16_kernel()
            )),
        },
        (Precision::Bf16, Backend::Cpu) => {
            f32_because("bf16", "this CPU lacks AVX-512 BF16 (avx512_bf16)")
        }
    })
}

/// [`resolve`] with the process's `OSAI_BF16`, then made active (both settings, and candle's own
/// TF32 switch for the matmuls outside the plan on CUDA); returns the line to print, if any.
pub fn select(p: Precision, backend: Backend) -> Result<Option<String>, String> {
    let env = std::env::var("OSAI_BF16").ok();
    let sel = resolve(p, backend, env.as_deref())?;
    set_active(sel.active);
    set_gemm_compute(sel.gemm);
    if backend == Backend::Cuda {
        candle_core::cuda::set_gemm_reduced_precision_f32(sel.gemm == Compute::Tf32);
    }
    Ok(sel.message)
}
