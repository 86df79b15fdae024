//! Training: losses, AdamW, schedules, the epoch loop and its outputs.

pub mod loss;
pub mod optim;
pub mod schedule;
