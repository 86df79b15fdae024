//! Our own ops: candle `CustomOp`s with their CPU kernels, and reference paths made of stock candle ops.

pub mod conv;
