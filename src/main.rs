//! `openspliceai-rs`: a thin entry point over the library's CLI module.

use std::sync::atomic::Ordering;

use clap::Parser;
use openspliceai_rs::cli::{self, normalize_args, Cli};
use openspliceai_rs::train::INTERRUPTED;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_secs()
        .init();
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: exiting now");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: finishing the current batch, then stopping (press again to quit at once)");
    });
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    if let Err(e) = cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(if INTERRUPTED.load(Ordering::SeqCst) { 130 } else { 1 });
    }
}
