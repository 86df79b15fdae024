//! create-data errors.

use std::path::PathBuf;

use crate::genome::GenomeError;

/// Why create-data stopped.
#[derive(Debug, thiserror::Error)]
pub enum CreateDataError {
    #[error(transparent)]
    Genome(#[from] GenomeError),
    #[error("{}:{line}: {message}", path.display())]
    Annotation {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no genes passed the filters ({filters}); nothing to write")]
    Empty { filters: String },
    #[error("paralog removal: {0}")]
    Paralogs(String),
    #[error("invalid option: {0}")]
    Option(String),
    /// `--verify-h5` could not read a written dataset back; the run's files were removed.
    #[error("--verify-h5: {} cannot be read back; removed the {removed} file(s) this run wrote", dir.display())]
    Verify {
        dir: PathBuf,
        removed: usize,
        source: Box<crate::data::DataError>,
    },
}

pub(crate) fn io_err(
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> CreateDataError + '_ {
    move |source| CreateDataError::Io {
        path: path.to_path_buf(),
        source,
    }
}
