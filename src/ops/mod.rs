//! Our own ops: candle `CustomOp`s with their CPU kernels, and reference paths made of stock candle ops
//! (used on CUDA/Metal and by the tests).

pub mod bn_act;
pub mod bn_device;
pub mod conv;
#[cfg(target_arch = "x86_64")]
mod conv_direct;
pub mod conv_gemm;
mod cpu;
pub mod gemm_plan;
pub mod path;
