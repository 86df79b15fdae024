//! openspliceai-rs: train and fine-tune SpliceAI splice-site models (OpenSpliceAI-compatible) on candle.

pub mod model;
pub mod ops;
pub mod train;
