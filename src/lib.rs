//! openspliceai-rs: train and fine-tune SpliceAI splice-site models (OpenSpliceAI-compatible) on candle.
//!
//! The library sets no global allocator and prints nothing of its own accord; the binary (`main.rs`) chooses
//! the allocator (mimalloc, counted by [`bench::memory`]) and owns the console.

pub mod atomic;
pub mod bench;
pub mod cancel;
pub mod checkpoint;
pub mod cli;
pub mod create_data;
pub mod data;
pub mod device;
pub mod genome;
pub mod h5write;
pub mod infer;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod predict;
pub mod report;
pub mod rundir;
pub mod train;
pub mod variant;
