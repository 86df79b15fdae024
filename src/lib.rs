//! openspliceai-rs: train and fine-tune SpliceAI splice-site models (OpenSpliceAI-compatible) on candle.

pub mod bench;
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
pub mod train;
pub mod variant;

/// mimalloc keeps freed pages for reuse: with the system allocator every large tensor is a fresh mmap whose
/// pages fault in on first touch, which cost a third of a CPU forward pass.
/// Wrapped in [`bench::memory::Counting`], which counts live bytes only while `bench --memory` measures.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: bench::memory::Counting<mimalloc::MiMalloc> =
    bench::memory::Counting(mimalloc::MiMalloc);
#[cfg(not(feature = "mimalloc"))]
#[global_allocator]
static GLOBAL: bench::memory::Counting<std::alloc::System> =
    bench::memory::Counting(std::alloc::System);

#[cfg(feature = "mimalloc")]
extern "C" {
    // mimalloc's C API (linked in through the `mimalloc` crate); `option` is an `mi_option_t`.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Tells the allocator to keep freed memory committed instead of returning it to the OS after 10 ms
/// (mimalloc's default). A training step frees and reallocates the same ~25 MB activation buffers every
/// batch; returned pages come back zero-filled through page faults, which cost ~7% of a 400nt step.
/// `MIMALLOC_PURGE_DELAY` in the environment still wins. Peak RSS is unchanged (the buffers are reused).
pub fn keep_freed_memory() {
    #[cfg(feature = "mimalloc")]
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        /// `mi_option_purge_delay` in mimalloc v3's `mi_option_e`.
        const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
        // SAFETY: setting an option is thread-safe in mimalloc and takes plain integers.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}
