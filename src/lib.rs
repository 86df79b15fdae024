//! openspliceai-rs: train and fine-tune SpliceAI splice-site models (OpenSpliceAI-compatible) on candle.
//!
//! The library sets no global allocator and prints nothing of its own accord; the binary (`main.rs`) chooses
//! the allocator (mimalloc, counted by [`bench::memory`]) and owns the console.

pub mod atomic;
pub mod bench;
pub mod calibrate;
pub mod cancel;
pub mod checkpoint;
pub mod cli;
pub mod clobber;
pub mod console;
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
pub mod progress;
pub mod report;
pub mod rundir;
pub mod train;
pub mod variant;

/// An error and its causes on one line, `outer: cause: cause`. Each error type here prints only its own
/// level and exposes its cause through `source()` (never both), so this is how a whole message is shown
/// outside anyhow (whose `{:#}` does the same in `main`).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    msg
}
