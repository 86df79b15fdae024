//! Errors reading genomes and annotations: each names the file and, where there is one, the line.

use std::path::PathBuf;

/// A problem with a FASTA or annotation file.
#[derive(Debug, thiserror::Error)]
pub enum GenomeError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Unsupported { path: PathBuf, message: String },
    #[error("{}, line {line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: duplicate FASTA record `{id}` (line {line}); every record name must be unique", path.display())]
    DuplicateRecord {
        path: PathBuf,
        id: String,
        line: usize,
    },
}
