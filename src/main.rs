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
    install_signal_handlers();
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    if let Err(e) = cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(cancel::exit_code().unwrap_or(1));
    }
}

/// Ctrl-C (SIGINT), SIGTERM and SIGUSR1 ask running work to stop after its current unit (a training
/// batch, a batch of windows or records); a second signal exits at once. The exit status is 128 + the
/// first signal's number, so that a batch script can tell "stopped, resumable" from a failure.
#[cfg(unix)]
fn install_signal_handlers() {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGUSR1]) else {
        log::warn!("cannot install the signal handlers: signals end the program at once");
        return;
    };
    std::thread::spawn(move || {
        for signal in signals.forever() {
            on_signal(
                signal,
                signal_hook::low_level::signal_name(signal).unwrap_or("signal"),
            );
        }
    });
}

#[cfg(not(unix))]
fn install_signal_handlers() {
    let _ = ctrlc::set_handler(|| on_signal(cancel::SIGINT, "Ctrl-C"));
}

fn on_signal(signal: i32, name: &str) {
    if cancel::request_by(signal) {
        eprintln!("\nsecond {name}: exiting now");
        std::process::exit(128 + signal);
    }
    eprintln!(
        "\n{name}: finishing the current batch, then stopping (send it again to quit at once)"
    );
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
