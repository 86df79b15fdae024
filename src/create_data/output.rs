//! Staged outputs: every file is written under a temporary name in the output directory and renamed into place
//! only when the whole run succeeded, so a failed run leaves no partial file behind. Temporary names and the
//! directory sync follow the project's one policy (`atomic`); the files are renamed together.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::CreateDataError;
use crate::atomic;

/// Output files written so far, still under their temporary names.
pub struct Staged {
    dir: PathBuf,
    files: Vec<(PathBuf, PathBuf)>,
    committed: bool,
}

impl Staged {
    /// Creates the output directory (like `os.makedirs(exist_ok=True)`) and checks that it is writable.
    pub fn new(dir: &Path) -> Result<Self, CreateDataError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let probe = dir.join(format!(".create-data-probe-{}", std::process::id()));
        File::create(&probe).map_err(|e| CreateDataError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                e.kind(),
                format!("the output directory is not writable: {e}"),
            ),
        })?;
        let _ = std::fs::remove_file(&probe);
        Ok(Self {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            committed: false,
        })
    }

    /// Opens a new temporary file that will become `name`.
    pub fn create(&mut self, name: &str) -> Result<File, CreateDataError> {
        let dest = self.dir.join(name);
        let (tmp, file) = atomic::temp_beside(&dest).map_err(|e| CreateDataError::Io {
            path: e.path.clone(),
            source: e.into(),
        })?;
        self.files.push((tmp, dest));
        Ok(file)
    }

    /// The final path of `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Syncs and renames every staged file into place; returns their final paths.
    pub fn commit(mut self) -> Result<Vec<PathBuf>, CreateDataError> {
        for (tmp, _) in &self.files {
            File::open(tmp)
                .and_then(|f| f.sync_all())
                .map_err(io_err(tmp))?;
        }
        for (tmp, dest) in &self.files {
            std::fs::rename(tmp, dest).map_err(io_err(dest))?;
        }
        self.committed = true;
        atomic::sync_dir(&self.dir).map_err(|e| CreateDataError::Io {
            path: e.path.clone(),
            source: e.into(),
        })?;
        Ok(self.files.iter().map(|(_, dest)| dest.clone()).collect())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            for (tmp, _) in &self.files {
                let _ = std::fs::remove_file(tmp);
            }
        }
    }
}
