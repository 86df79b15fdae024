//! Which graph the ops build: our CPU kernels, the CUDA graph, or the stock-op graph.
//!
//! `OSAI_OPS=native` (the default) runs our custom ops on the CPU (conv kernels, fused BatchNorm +
//! LeakyReLU, fused blocks). `OSAI_OPS=reference` makes the CPU build exactly the graph CUDA builds: the
//! GEMM-plan conv (`ops/conv_gemm.rs`, the plan run by a CPU executor instead of cuBLAS) and the device
//! BatchNorm op (`ops/bn_device.rs`), no fused blocks. The tests use it to check the GPU graph against
//! PyTorch on a machine without a GPU; a user can use it to tell a GPU result from a GPU bug.
//! `OSAI_OPS=stock` builds the graph Metal runs: the same maths from stock candle ops only (a matmul per
//! conv tap, the f32 reference BatchNorm), on the CPU and on CUDA too (to compare the graphs' memory and
//! results on a GPU). Otherwise the CUDA graph runs on CUDA and the stock graph on Metal.
//!
//! Wherever a non-native graph runs, the "GPU rules" hold: no f64 tensor in the graph (Apple GPUs have no
//! f64 and candle's Metal backend has no f64 kernels; consumer NVIDIA GPUs run f64 at 1/32–1/64 speed).
//! [`check_no_f64`] enforces them in our ops and [`check_graph_no_f64`] over a whole graph before backward.

use std::sync::OnceLock;

use candle_core::{DType, Device, Result, Tensor};

/// The environment variable that selects the path.
pub const ENV: &str = "OSAI_OPS";

/// The graph the ops build on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpsPath {
    /// Our CPU kernels (the default).
    Native,
    /// The graph CUDA runs: the GEMM-plan conv and the device BatchNorm op, in f32.
    Reference,
    /// The stock-op graph Metal runs, in f32.
    Stock,
}

static PATH: OnceLock<std::result::Result<OpsPath, String>> = OnceLock::new();

fn parse(value: Option<&str>) -> std::result::Result<OpsPath, String> {
    match value.map(str::trim) {
        None | Some("") | Some("native") => Ok(OpsPath::Native),
        Some("reference") => Ok(OpsPath::Reference),
        Some("stock") => Ok(OpsPath::Stock),
        Some(other) => Err(format!(
            "{ENV}=`{other}` is not a valid ops path: expected `native` (our CPU kernels, the default), \
             `reference` (the graph CUDA runs) or `stock` (the stock-op graph Metal runs)"
        )),
    }
}

/// The path for this process: `OSAI_OPS`, read once. A bad value is an error (every time it is asked).
pub fn ops_path() -> Result<OpsPath> {
    PATH.get_or_init(|| parse(std::env::var(ENV).ok().as_deref()))
        .clone()
        .map_err(candle_core::Error::Msg)
}

/// Sets the path for this process before anything reads it (tests that must run the reference graph
/// whatever the environment says). An error if the path was already fixed to another value.
pub fn force(path: OpsPath) -> Result<()> {
    let got = PATH.get_or_init(|| Ok(path));
    match got {
        Ok(p) if *p == path => Ok(()),
        _ => Err(candle_core::Error::Msg(format!(
            "ops path already fixed to {got:?} in this process; cannot switch to {path:?}"
        ))),
    }
}

/// Whether our CPU kernels run on `device` (the CPU on the native path); otherwise the reference graph.
pub fn native_kernels(device: &Device) -> Result<bool> {
    Ok(device.is_cpu() && ops_path()? == OpsPath::Native)
}

/// Whether the CUDA graph's ops (GEMM-plan conv, device BatchNorm) run on `device`: on CUDA (unless
/// `OSAI_OPS=stock` asks for the stock-op graph there, to compare the two on a GPU), and on the CPU with
/// `OSAI_OPS=reference`. Elsewhere off the native path the stock-op graph runs.
pub fn device_ops(device: &Device) -> Result<bool> {
    let path = ops_path()?;
    Ok((device.is_cuda() && path != OpsPath::Stock)
        || (device.is_cpu() && path == OpsPath::Reference))
}

/// Whether the GPU rules (no f64 in the graph) hold on `device`: wherever the reference graph runs.
pub fn gpu_rules(device: &Device) -> Result<bool> {
    Ok(!native_kernels(device)?)
}

/// An error if `t` is f64 while the GPU rules hold on its device.
pub fn check_no_f64(t: &Tensor, what: &str) -> Result<()> {
    if t.dtype() == DType::F64 && gpu_rules(t.device())? {
        return Err(candle_core::Error::Msg(format!(
            "{what} is f64, which the GPU graph must not use (Metal has no f64; {ENV}=reference and \
             non-CPU devices keep to f32)"
        )));
    }
    Ok(())
}

/// An error if any tensor in the graph that leads to `root` is f64 while the GPU rules hold on its
/// device: checked before backward, so an f64 op anywhere in the trained graph fails on the CPU's
/// reference path rather than first on a Mac.
pub fn check_graph_no_f64(root: &Tensor) -> Result<()> {
    if !gpu_rules(root.device())? {
        return Ok(());
    }
    check_no_f64(root, "the loss")?;
    for node in root.sorted_nodes() {
        check_no_f64(
            node,
            &format!("a tensor {:?} in the trained graph", node.dims()),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(parse(None), Ok(OpsPath::Native));
        assert_eq!(parse(Some("native")), Ok(OpsPath::Native));
        assert_eq!(parse(Some(" reference ")), Ok(OpsPath::Reference));
        assert_eq!(parse(Some("stock")), Ok(OpsPath::Stock));
        let e = parse(Some("gpu")).unwrap_err();
        assert!(
            e.contains("OSAI_OPS=`gpu`") && e.contains("reference"),
            "{e}"
        );
    }
}
