//! openspliceai-rs copy of candle-kernels 0.11.1's build script (see PATCHED.md): the elementwise,
//! reduction, indexing and conv kernels as PTX for the virtual architecture compute_80, which the
//! driver JIT-compiles for any GPU from Ampere on (Hopper, Blackwell), whatever `CUDA_COMPUTE_CAP`
//! says. The MoE/GGUF static library (and with it the link to libcudart and libstdc++) is left out:
//! nothing in openspliceai-rs runs quantized or MoE kernels.
use cudaforge::{KernelBuilder, Result};
use std::env;
use std::path::PathBuf;

/// The virtual architecture the PTX targets (`.target sm_80`): the oldest with bf16 and the
/// instructions candle's kernels use.
const PTX_COMPUTE_CAP: usize = 80;

fn main() -> Result<()> {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src");

    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let bindings = KernelBuilder::new()
        .source_dir("src")
        .compute_cap(PTX_COMPUTE_CAP)
        .arg("--expt-relaxed-constexpr")
        .arg("-std=c++17")
        .arg("-O3")
        .build_ptx()?;
    bindings.write(out_dir.join("ptx.rs"))?;
    Ok(())
}
