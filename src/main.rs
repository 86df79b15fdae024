//! `openspliceai-rs`: a thin entry point over the library's CLI module.

use clap::Parser;
use openspliceai_rs::bench::memory::{ProgramAllocator, PROGRAM_ALLOCATOR};
use openspliceai_rs::cancel;
use openspliceai_rs::cli::{self, normalize_args, Cli};

fn main() {
    keep_freed_memory();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_secs()
        .init();
    let _ = ctrlc::set_handler(|| {
        if cancel::request() {
            eprintln!("\nsecond Ctrl-C: exiting now");
            std::process::exit(130);
        }
        eprintln!(
            "\nCtrl-C: finishing the current batch, then stopping (press again to quit at once)"
        );
    });
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    if let Err(e) = cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(if cancel::requested() { 130 } else { 1 });
    }
}

/// The program's allocator (mimalloc, counted for `bench --memory`): why, in `bench::memory`.
#[global_allocator]
static GLOBAL: ProgramAllocator = PROGRAM_ALLOCATOR;

#[cfg(feature = "mimalloc")]
extern "C" {
    // mimalloc's C API (linked in through the `mimalloc` crate); `option` is an `mi_option_t`.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Tells the allocator to keep freed memory committed instead of returning it to the OS after 10 ms
/// (mimalloc's default). A training step frees and reallocates the same ~25 MB activation buffers every
/// batch; returned pages come back zero-filled through page faults, which cost ~7% of a 400nt step.
/// `MIMALLOC_PURGE_DELAY` in the environment still wins. Peak RSS is unchanged (the buffers are reused).
fn keep_freed_memory() {
    #[cfg(feature = "mimalloc")]
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        /// `mi_option_purge_delay` in mimalloc v3's `mi_option_e`.
        const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
        // SAFETY: setting an option is thread-safe in mimalloc and takes plain integers.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}
