//! Training data: OpenSpliceAI `create-data` HDF5 files, the validation split, and the batch loader.
//!
//! A file holds shard pairs `X{i}` (n, 15000, 4) one-hot bases (A, C, G, T; N = all-zero row) and
//! `Y{i}` (1, n, 5000, 3) one-hot labels (0 non-splice, 1 acceptor, 2 donor; all-zero rows pad past
//! a gene's end, as in real `create-data` output). [`H5File::open`]
//! checks presence, shapes and element types from the metadata alone; row values are checked as
//! each shard is decoded. [`Loader`] turns a list of [`WindowRef`]s into [`Batch`]es of
//! (n, 4, 5000 + flank) inputs and (n, 3, 5000) labels, reading the next shard on a background
//! thread and decoding with rayon.
//!
//! The default build reads HDF5 with the pure-Rust `hdf5-reader` crate; the `libhdf5` feature adds
//! `Backend::LibHdf5`, which reads through the official HDF5 C library.

mod decode;
mod error;
pub mod example;
mod file;
mod loader;
mod split;

pub use decode::{decode_batch, RawShard};
pub use error::DataError;
pub use file::{Backend, ElementType, H5File, ShardInfo};
pub use loader::{epoch_plan, Loader, LoaderConfig, Order, DEFAULT_PREFETCH};
pub use split::{split_train_validation, train_validation_windows, VALIDATION_FRACTION};

/// Positions labelled per window, the model's output length (defined in [`crate::model::config`]).
pub use crate::model::config::SEQ_LEN;

/// Positions stored per window in `X{i}` (15000) and the largest flanking context a file provides (10000).
pub use crate::genome::seq::{MAX_FLANK, X_LEN};

/// One window of a file: row `index` of shard `X{shard}` / `Y{shard}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowRef {
    /// Shard number (the `i` of `X{i}`).
    pub shard: usize,
    /// Window (row) within the shard.
    pub index: usize,
}

/// A decoded batch, ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Number of windows in the batch.
    pub n: usize,
    /// Flanking size the inputs were clipped to.
    pub flank: usize,
    /// Inputs, row-major (n, 4, 5000 + flank), channel order A, C, G, T; N is all-zero.
    pub x: Vec<f32>,
    /// One-hot labels, row-major (n, 3, 5000).
    pub y: Vec<f32>,
    /// The windows, in batch order.
    pub windows: Vec<WindowRef>,
}

impl Batch {
    /// Length of one input row: `SEQ_LEN + flank`.
    pub fn x_len(&self) -> usize {
        SEQ_LEN + self.flank
    }
}

/// Checks a flanking size: even and at most [`MAX_FLANK`].
pub fn check_flank(flank: usize) -> Result<(), DataError> {
    if flank > MAX_FLANK || !flank.is_multiple_of(2) {
        return Err(DataError::InvalidArgument(format!(
            "flanking size {flank} must be even and at most {MAX_FLANK}"
        )));
    }
    Ok(())
}
