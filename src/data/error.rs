//! Errors of the data module. Every message about a file names the file, and where it applies the
//! dataset and the window, and says what was expected.

use std::path::PathBuf;

/// An error reading, checking, splitting or batching training data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file does not exist.
    #[error("{}: file not found", path.display())]
    NotFound { path: PathBuf },
    /// The file exists but could not be read or written.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start with the HDF5 signature.
    #[error("{}: not an HDF5 file (no HDF5 signature found)", path.display())]
    NotHdf5 { path: PathBuf },
    /// The HDF5 library reported an error (a corrupt or unsupported file).
    #[error("{}: {}HDF5 read failed: {message}", path.display(), dataset_prefix(dataset))]
    Hdf5 {
        path: PathBuf,
        /// The dataset being read, if any.
        dataset: Option<String>,
        /// The library's message.
        message: String,
    },
    /// A required dataset is absent.
    #[error("{}: dataset {dataset} is missing: {why}", path.display())]
    MissingDataset {
        path: PathBuf,
        /// The missing dataset.
        dataset: String,
        /// Why it is required.
        why: String,
    },
    /// A dataset has the wrong shape.
    #[error("{}: dataset {dataset} has shape {found:?}, expected {expected}", path.display())]
    BadShape {
        path: PathBuf,
        /// The dataset.
        dataset: String,
        /// Its shape.
        found: Vec<u64>,
        /// What was expected.
        expected: String,
    },
    /// A dataset's element type cannot hold one-hot values.
    #[error(
        "{}: dataset {dataset} has element type {found}, expected int8 (or uint8, bool, float32/64 holding 0/1)",
        path.display()
    )]
    BadType {
        path: PathBuf,
        /// The dataset.
        dataset: String,
        /// The element type found.
        found: String,
    },
    /// A shard holds no windows.
    #[error("{}: dataset {dataset} is empty (0 windows); every shard needs at least one window", path.display())]
    EmptyShard {
        path: PathBuf,
        /// The dataset.
        dataset: String,
    },
    /// A row of X or Y is neither one-hot nor all-zero (N in X, padding in Y).
    #[error(
        "{}: dataset {dataset}, window {window}, position {position}: values {found:?}, expected {expected}",
        path.display()
    )]
    BadValue {
        path: PathBuf,
        /// The dataset.
        dataset: String,
        /// The window (row of the shard).
        window: usize,
        /// The position within the window.
        position: usize,
        /// The values found at that position (one per channel; values other than 0/1 shown as 2).
        found: Vec<u8>,
        /// What was expected.
        expected: &'static str,
    },
    /// The selection has fewer windows than one batch.
    #[error("{}: {n_windows} windows to train on, fewer than one batch of {batch_size}", path.display())]
    TooFewWindows {
        path: PathBuf,
        /// Windows available.
        n_windows: usize,
        /// The batch size.
        batch_size: usize,
    },
    /// A window reference does not exist in the file.
    #[error("{}: window {index} of shard X{shard} does not exist ({detail})", path.display())]
    NoSuchWindow {
        path: PathBuf,
        /// Shard.
        shard: usize,
        /// Window within the shard.
        index: usize,
        /// What exists.
        detail: String,
    },
    /// A caller-supplied argument is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Writing an HDF5 file failed.
    #[error("{}: writing HDF5 failed: {message}", path.display())]
    Write {
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The loader's per-batch transform failed.
    #[error("batch transform failed: {0}")]
    Transform(Box<dyn std::error::Error + Send + Sync>),
    /// The loader's background thread ended without delivering the epoch (it panicked).
    #[error("the data loader's background thread stopped unexpectedly after {delivered} of {expected} batches")]
    LoaderStopped {
        /// Batches delivered.
        delivered: usize,
        /// Batches expected.
        expected: usize,
    },
}

fn dataset_prefix(dataset: &Option<String>) -> String {
    match dataset {
        Some(d) => format!("dataset {d}: "),
        None => String::new(),
    }
}
