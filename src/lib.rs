//! openspliceai-rs: train and fine-tune SpliceAI splice-site models (OpenSpliceAI-compatible) on candle.

pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod device;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod train;

/// mimalloc keeps freed pages for reuse: with the system allocator every large tensor is a fresh mmap whose
/// pages fault in on first touch, which cost a third of a CPU forward pass.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
