//! Atomic file replacement: write a temporary file beside the target, sync it, rename it over the target.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::CheckpointError;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_err(path: &Path, action: &'static str, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Removes the temporary file on drop unless it was renamed into place.
struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = std::fs::remove_file(&self.path) {
                log::warn!(
                    "could not remove temporary file {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

/// Writes `bytes` to `path` atomically: a new temporary file in the same directory receives the bytes and is
/// fsynced, then renamed over `path` (and the directory is synced, best effort). On any error the temporary file
/// is removed and an existing file at `path` is left untouched.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let file_name = path
        .file_name()
        .ok_or_else(|| {
            io_err(
                path,
                "cannot write",
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the path has no file name",
                ),
            )
        })?
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (tmp_path, mut file) = create_temp(&dir, &file_name, path)?;
    let mut guard = TempGuard {
        path: tmp_path.clone(),
        armed: true,
    };
    file.write_all(bytes)
        .map_err(|e| io_err(&tmp_path, "cannot write temporary file", e))?;
    file.sync_all()
        .map_err(|e| io_err(&tmp_path, "cannot sync temporary file", e))?;
    drop(file);
    std::fs::rename(&tmp_path, path)
        .map_err(|e| io_err(path, "cannot move the new file into place at", e))?;
    guard.armed = false;
    // Persist the rename itself; not all platforms allow opening a directory, so this is best effort.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    log::debug!("wrote {} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

fn create_temp(
    dir: &Path,
    file_name: &str,
    target: &Path,
) -> Result<(PathBuf, File), CheckpointError> {
    let pid = std::process::id();
    let mut last_err = None;
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{file_name}.{pid}.{n}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(io_err(target, "cannot create a temporary file beside", e)),
        }
    }
    Err(io_err(
        target,
        "cannot create a temporary file beside",
        last_err.unwrap_or_else(|| std::io::Error::other("too many name collisions")),
    ))
}
