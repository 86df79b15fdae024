//! Cancellation: one process-wide flag that long work polls between units it can stop after without
//! leaving anything half-written (a training batch, a prediction window batch, a chunk of VCF records).
//! The binary's signal handlers (Ctrl-C/SIGINT, SIGTERM, SIGUSR1) set it; the library only reads it.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// SIGINT's number, what Ctrl-C sends (the same on every platform the tool runs on).
pub const SIGINT: i32 = 2;

/// Asks running work to stop at its next safe point. Returns true when a stop had already been asked for
/// (a second signal, which the handler takes as "exit now").
pub fn request() -> bool {
    request_by(SIGINT)
}

/// [`request`] on behalf of signal `signal`, which sets the exit status ([`exit_code`]); the first
/// signal's number is kept.
pub fn request_by(signal: i32) -> bool {
    let _ = SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    REQUESTED.swap(true, Ordering::SeqCst)
}

/// True once a stop was asked for ([`request`]).
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The exit status of a process stopped by a signal: 128 + its number, the shell's convention (130 for
/// Ctrl-C, 143 for SIGTERM, 138 for SIGUSR1 on Linux). `None` when no stop was asked for.
pub fn exit_code() -> Option<i32> {
    requested().then(|| 128 + SIGNAL.load(Ordering::SeqCst).max(1))
}
