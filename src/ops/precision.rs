//! The compute precision of the CPU conv kernels (`--precision f32|bf16`), chosen once per process at
//! startup, like the kernel choice of `OSAI_CONV_KERNEL`.
//!
//! bf16 means bf16 operands and f32 accumulation in every conv forward the CPU runs (weights are rounded
//! to bf16 as they are packed, inputs as they are copied into the kernel's slab); bias, BatchNorm maps,
//! the residual and every other op stay f32, and checkpoints are never changed. Three ways it runs:
//!
//! - `native`: the AVX-512 BF16 kernel of `ops/conv_bf16.rs` (`vdpbf16ps`), where the CPU has
//!   `avx512_bf16` and AVX-512F;
//! - `emulate` (`OSAI_BF16=emulate`): operands rounded to bf16 the same way, then the f32 kernels: any
//!   CPU, the reference the native kernel is tested against;
//! - f32, with a one-line message, where bf16 was asked for but the CPU lacks AVX-512 BF16 or
//!   `OSAI_BF16=off` (so CI can force that path).

use std::sync::atomic::{AtomicU8, Ordering};

/// `--precision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Precision {
    /// f32 operands and accumulation (the default; every identity test runs in it).
    #[default]
    F32,
    /// bf16 operands, f32 accumulation (conv forwards on the CPU).
    Bf16,
}

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

/// Whether this CPU runs the native bf16 kernel (AVX-512F and AVX-512 BF16).
pub fn native_bf16_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// What was chosen for a requested precision, and the line that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub active: Active,
    /// One line for stderr: what runs, or why bf16 was asked for and f32 runs.
    pub message: Option<String>,
}

/// Resolves `--precision p` on a CPU (`cpu`: whether the model runs on the CPU) with the environment
/// variable `OSAI_BF16` (`auto`, the default; `emulate`; `off`), without changing anything. An error
/// names a bad `OSAI_BF16` (read only when bf16 is asked for).
pub fn resolve(p: Precision, cpu: bool, env: Option<&str>) -> Result<Selection, String> {
    let env = env.unwrap_or("auto");
    if p == Precision::Bf16 && !matches!(env, "auto" | "emulate" | "off") {
        return Err(format!("OSAI_BF16={env}: expected auto, emulate or off"));
    }
    let f32_because = |why: &str| Selection {
        active: Active::F32,
        message: Some(format!("--precision bf16: {why}; running in f32")),
    };
    Ok(match p {
        Precision::F32 => Selection {
            active: Active::F32,
            message: None,
        },
        Precision::Bf16 if !cpu => f32_because("only the CPU kernels have bf16 so far"),
        Precision::Bf16 if env == "off" => f32_because("OSAI_BF16=off"),
        Precision::Bf16 if env == "emulate" => Selection {
            active: Active::Bf16Emulated,
            message: Some(
                "precision: bf16 emulated (OSAI_BF16=emulate: operands rounded to bf16, f32 kernels)"
                    .into(),
            ),
        },
        Precision::Bf16 if native_bf16_available() => Selection {
            active: Active::Bf16Native,
            message: Some(
                "precision: bf16 convolutions (AVX-512 BF16, f32 accumulation)".into(),
            ),
        },
        Precision::Bf16 => f32_because("this CPU lacks AVX-512 BF16 (avx512_bf16)"),
    })
}

/// [`resolve`] with the process's `OSAI_BF16`, then made active; returns the line to print, if any.
pub fn select(p: Precision, cpu: bool) -> Result<Option<String>, String> {
    let env = std::env::var("OSAI_BF16").ok();
    let sel = resolve(p, cpu, env.as_deref())?;
    set_active(sel.active);
    Ok(sel.message)
}
