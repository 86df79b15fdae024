//! `openspliceai-rs`: a thin entry point over the library's CLI module.

use clap::Parser;
use openspliceai_rs::cli::{self, normalize_args, Cli};
use openspliceai_rs::train;

fn main() {
    openspliceai_rs::keep_freed_memory();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_secs()
        .init();
    let _ = ctrlc::set_handler(|| {
        if train::request_interrupt() {
            eprintln!("\nsecond Ctrl-C: exiting now");
            std::process::exit(130);
        }
        eprintln!(
            "\nCtrl-C: finishing the current batch, then stopping (press again to quit at once)"
        );
    });
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    if let Err(e) = cli::run(cli) {
        eprintln!("error: {}", render_error(&e));
        std::process::exit(if train::interrupted() { 130 } else { 1 });
    }
}

/// `{:#}` of an anyhow error, without repeating a cause that the message before it already ends with
/// (thiserror variants that print their `source` and also expose it).
fn render_error(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.ends_with(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    msg
}
