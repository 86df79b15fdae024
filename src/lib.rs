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
