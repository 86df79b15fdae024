//! Cancellation: one process-wide flag that long work polls between units it can stop after without
//! leaving anything half-written (a training batch, a prediction window batch, a chunk of VCF records).
//! The binary's Ctrl-C handler sets it; the library only reads it.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks running work to stop at its next safe point. Returns true when a stop had already been asked for
/// (a second Ctrl-C, which the handler takes as "exit now").
pub fn request() -> bool {
    REQUESTED.swap(true, Ordering::SeqCst)
}

/// True once a stop was asked for ([`request`]).
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
