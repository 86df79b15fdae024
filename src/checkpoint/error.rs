//! The error type of the checkpoint module.

use std::path::PathBuf;

/// Everything that can go wrong while reading, writing or matching a checkpoint.
///
/// Every variant that concerns a file names it (and the tensor or archive record when relevant) and says what
/// was expected, so the message alone is enough to act on.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// An operating-system error while reading or writing a file.
    #[error("{action} {}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What was being done, e.g. "cannot read".
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The file is neither a PyTorch zip checkpoint nor a safetensors file.
    #[error(
        "{} is not a checkpoint: {reason} (expected a PyTorch .pt zip archive or a safetensors file)",
        path.display()
    )]
    UnknownFormat {
        /// The file concerned.
        path: PathBuf,
        /// Why it was not recognised.
        reason: String,
    },

    /// The output file name has an extension that selects no format.
    #[error(
        "cannot choose a checkpoint format for {}: expected the extension .pt, .pth, .bin or .safetensors",
        path.display()
    )]
    UnsupportedExtension {
        /// The file concerned.
        path: PathBuf,
    },

    /// The zip container of a `.pt` file is damaged or truncated.
    #[error("{} is not a readable PyTorch zip checkpoint: {message}", path.display())]
    Zip {
        /// The file concerned.
        path: PathBuf,
        /// What the zip reader reported.
        message: String,
    },

    /// The archive does not hold exactly one `<prefix>/data.pkl`.
    #[error("{}: {message} (expected exactly one `<name>/data.pkl` record)", path.display())]
    Layout {
        /// The file concerned.
        path: PathBuf,
        /// What was found instead.
        message: String,
    },

    /// The pickle in `data.pkl` is malformed, truncated or uses an unsupported opcode.
    #[error("{} ({record}): malformed pickle at byte {offset}: {message}", path.display())]
    Pickle {
        /// The file concerned.
        path: PathBuf,
        /// The archive record holding the pickle.
        record: String,
        /// Byte offset of the offending opcode inside the pickle.
        offset: usize,
        /// What was wrong.
        message: String,
    },

    /// The pickle names a global outside the allowlist (it would execute code in Python).
    #[error(
        "{} ({record}): refusing to load: the pickle references the global `{module}.{name}`, which is not a \
         PyTorch tensor/state-dict type (only collections.OrderedDict, torch._utils._rebuild_tensor_v2, \
         torch._utils._rebuild_parameter, torch.*Storage and similar are allowed)",
        path.display()
    )]
    ForbiddenGlobal {
        /// The file concerned.
        path: PathBuf,
        /// The archive record holding the pickle.
        record: String,
        /// The module part of the global.
        module: String,
        /// The attribute part of the global.
        name: String,
    },

    /// The unpickled object is not one bare tensor (what `torch.save(tensor)` writes).
    #[error("{}: the pickled object is {found}, not one tensor as torch.save(tensor) writes it", path.display())]
    NotATensor {
        /// The file concerned.
        path: PathBuf,
        /// What was found.
        found: String,
    },

    /// The unpickled object is not a state dict (a dict of tensors, possibly wrapped).
    #[error(
        "{}: {message} (expected a state dict: a dict of tensors, or a dict holding one under `state_dict` \
         or `model_state_dict`)",
        path.display()
    )]
    NotAStateDict {
        /// The file concerned.
        path: PathBuf,
        /// What was found.
        message: String,
    },

    /// A tensor's storage record (`<prefix>/data/<key>`) is absent from the archive.
    #[error("{}: tensor `{tensor}` needs the storage record `{record}`, which is missing from the archive", path.display())]
    MissingRecord {
        /// The file concerned.
        path: PathBuf,
        /// The tensor that needed it.
        tensor: String,
        /// The record's full name in the archive.
        record: String,
    },

    /// A storage record holds fewer bytes than its declared element count needs.
    #[error(
        "{}: storage record `{record}` of tensor `{tensor}` is too short: expected at least {expected} bytes, found {actual}",
        path.display()
    )]
    RecordTooShort {
        /// The file concerned.
        path: PathBuf,
        /// The tensor that uses the record.
        tensor: String,
        /// The record's full name in the archive.
        record: String,
        /// The number of bytes required.
        expected: u64,
        /// The number of bytes present.
        actual: u64,
    },

    /// A tensor uses an element type this reader does not support.
    #[error(
        "{}: tensor `{tensor}` has the unsupported element type `{dtype}` (supported: float32, float64, float16, \
         bfloat16, int64, int32, int16, int8, uint8, bool)",
        path.display()
    )]
    UnsupportedDtype {
        /// The file concerned.
        path: PathBuf,
        /// The tensor concerned (or `?` when unknown).
        tensor: String,
        /// The element type as named in the file.
        dtype: String,
    },

    /// A tensor's description is inconsistent (bad shape, stride, offset or data length).
    #[error("{}: tensor `{tensor}`: {message}", path.display())]
    BadTensor {
        /// The file concerned.
        path: PathBuf,
        /// The tensor concerned.
        tensor: String,
        /// What was wrong and what was expected.
        message: String,
    },

    /// A safetensors file is malformed.
    #[error("{} is not a readable safetensors file: {message}", path.display())]
    Safetensors {
        /// The file concerned.
        path: PathBuf,
        /// What the safetensors reader reported.
        message: String,
    },

    /// The checkpoint is too large for the writer (the zip writer does not emit zip64 entries).
    #[error("cannot write {}: {message}", path.display())]
    TooLarge {
        /// The file concerned.
        path: PathBuf,
        /// What exceeded which limit.
        message: String,
    },

    /// A tensor's values cannot be converted to the requested element type (not tied to a file).
    #[error("tensor of type {dtype} with shape {shape:?}: {message}")]
    Conversion {
        /// The tensor's element type name.
        dtype: &'static str,
        /// The tensor's shape.
        shape: Vec<usize>,
        /// What was wrong.
        message: String,
    },
}

impl From<crate::atomic::ReplaceError> for CheckpointError {
    fn from(e: crate::atomic::ReplaceError) -> Self {
        CheckpointError::Io {
            path: e.path,
            action: e.action,
            source: e.source,
        }
    }
}
