//! Errors reading genomes and annotations: each names the file and, where there is one, the line.

use std::path::PathBuf;

/// A problem with a FASTA or annotation file.
#[derive(Debug, thiserror::Error)]
pub enum GenomeError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Unsupported { path: PathBuf, message: String },
    #[error("{}:{line}: {message}", path.display())]
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
    #[error("{}:{line}: expected a FASTA header line starting with '>'", path.display())]
    NoHeader { path: PathBuf, line: usize },
    #[error("{}: not a valid FASTA file for indexing", path.display())]
    Index {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A `--region`, `--regions-file` or `--shard` problem (malformed, or a contig the FASTA lacks).
    #[error(transparent)]
    Region(#[from] super::region::RegionError),
    #[error("{}: no sequence named `{name}`", path.display())]
    NoSequence { path: PathBuf, name: String },
}
