//! SpliceAI: the configuration table and the network. Knows the architecture, nothing about files or training.

pub mod config;
pub mod inspect;
pub mod io;
pub mod spliceai;

pub use config::{FlankConfig, UnsupportedFlank, CONFIGS, SEQ_LEN};
pub use spliceai::{EntryKind, Mode, NamedValue, SpliceAi, Trainable, Trunk};

/// Errors of the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Flank(#[from] UnsupportedFlank),
    #[error("model has no tensor named `{0}`")]
    UnknownTensor(String),
    #[error("tensor `{name}`: expected shape {expected:?}, got {got:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("model input: expected shape {expected}, got {got:?}")]
    Input { expected: String, got: Vec<usize> },
    #[error("{}: no tensor matches a SpliceAI-{flank} model (the file holds {found} tensors; is it an OpenSpliceAI state dict of this flanking size?)", path.display())]
    NoMatch {
        path: std::path::PathBuf,
        flank: usize,
        found: usize,
    },
    /// An evaluation-only command got a checkpoint without every tensor of the model (see
    /// [`io::require_complete`]).
    #[error("{}: the checkpoint lacks {missing} of the {total} tensors of a SpliceAI-{flank} model (first: `{first}`); is it a checkpoint of another flanking size?", path.display())]
    Incomplete {
        path: std::path::PathBuf,
        flank: usize,
        missing: usize,
        total: usize,
        first: String,
    },
    #[error("tensor `{name}`")]
    Tensor {
        name: String,
        #[source]
        source: Box<crate::checkpoint::CheckpointError>,
    },
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A broken invariant of the model code itself (a bug, not bad input).
    #[error("internal error: {0}")]
    Internal(&'static str),
}
