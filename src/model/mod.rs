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
    /// A checkpoint without every tensor of the model (the checkpoint door, [`io::check_state_dict`]).
    #[error("{}: the checkpoint lacks {missing} of the {total} tensors of a SpliceAI-{flank} model (first: `{first}`); {}", path.display(), other_size_hint(*flank, *found))]
    Incomplete {
        path: std::path::PathBuf,
        flank: usize,
        missing: usize,
        total: usize,
        first: String,
        /// The flanking size the checkpoint's units imply, when they imply one.
        found: Option<usize>,
    },
    /// `-f` asks for a smaller model than the checkpoint holds (the checkpoint door, [`io::check_state_dict`]).
    #[error("{}: this is a {found}nt checkpoint ({units} residual units), but -f {requested} asks for SpliceAI-{requested}: give -f {found} or leave -f out (the flanking size is read from the checkpoint)", path.display())]
    FlankMismatch {
        path: std::path::PathBuf,
        requested: usize,
        found: usize,
        units: usize,
    },
    #[error("{}: cannot tell the flanking size: the checkpoint has {units} residual units, a SpliceAI model 4, 8, 12 or 16 (for 80, 400, 2000, 10000nt); is it an OpenSpliceAI state dict?", path.display())]
    UnknownFlank {
        path: std::path::PathBuf,
        units: usize,
    },
    #[error("{}: tensor `{name}` has shape {found:?}, a SpliceAI-{flank} model expects {expected:?}", path.display())]
    WrongShape {
        path: std::path::PathBuf,
        flank: usize,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{}: tensor `{name}` is {found}, expected {expected}", path.display())]
    WrongDType {
        path: std::path::PathBuf,
        name: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error("{}: {ignored} tensors are not part of a SpliceAI-{flank} model (first: `{first}`); was it trained with another flanking size (-f)?", path.display())]
    Extra {
        path: std::path::PathBuf,
        flank: usize,
        ignored: usize,
        first: String,
    },
    #[error("{}: tensor `{name}` holds NaN or infinite weights ({count} of its {total} values): the checkpoint is broken (a training run that diverged?)", path.display())]
    NonFinite {
        path: std::path::PathBuf,
        name: String,
        count: usize,
        total: usize,
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

/// The end of [`ModelError::Incomplete`]'s message: the checkpoint's own size when known.
fn other_size_hint(flank: usize, found: Option<usize>) -> String {
    match found {
        Some(f) if f != flank => format!(
            "the checkpoint's flanking size is {f} (SpliceAI-{f}), not {flank}: give -f {f} or leave -f out"
        ),
        Some(_) => "the file is not a whole model (saved from a partial state dict, or edited?)".to_string(),
        None => "is it a checkpoint of another flanking size?".to_string(),
    }
}
