//! Atomic file replacement, the one policy for every output the project writes (checkpoints, run logs): the
//! new content goes to a uniquely named temporary file beside the target (`.{name}.{pid}.{n}.tmp`), is
//! fsynced, renamed over the target, and the directory is fsynced so the rename survives a crash. On any
//! error the temporary file is removed and an existing target is left untouched. A temporary file left by a
//! killed process matches [`is_temp_name`]; writers remove such files when they open their directory.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Why a [`replace`] failed: the path concerned, what was being done, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct ReplaceError {
    /// The target or the temporary file.
    pub path: PathBuf,
    /// What was being done, e.g. "cannot write temporary file".
    pub action: &'static str,
    /// The underlying error.
    pub source: std::io::Error,
}

fn err(path: &Path, action: &'static str, source: std::io::Error) -> ReplaceError {
    ReplaceError {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// True for the name of a temporary file of [`replace`] (`.` … `.tmp`), as a killed process leaves it.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
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

/// Replaces the content of `path` with `bytes` atomically (see the module doc for the policy).
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), ReplaceError> {
    let file_name = path
        .file_name()
        .ok_or_else(|| {
            err(
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
        .map_err(|e| err(&tmp_path, "cannot write temporary file", e))?;
    file.sync_all()
        .map_err(|e| err(&tmp_path, "cannot sync temporary file", e))?;
    drop(file);
    std::fs::rename(&tmp_path, path)
        .map_err(|e| err(path, "cannot move the new file into place at", e))?;
    guard.armed = false;
    sync_dir(&dir)?;
    log::debug!("wrote {} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

/// fsyncs a directory so that a rename or creation in it is durable. Windows cannot open a directory as a
/// file, so there this is a no-op.
pub fn sync_dir(dir: &Path) -> Result<(), ReplaceError> {
    if cfg!(windows) {
        return Ok(());
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(dir, "cannot sync directory", e))
}

fn create_temp(
    dir: &Path,
    file_name: &str,
    target: &Path,
) -> Result<(PathBuf, File), ReplaceError> {
    let pid = std::process::id();
    let mut last_err = None;
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{file_name}.{pid}.{n}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(err(target, "cannot create a temporary file beside", e)),
        }
    }
    Err(err(
        target,
        "cannot create a temporary file beside",
        last_err.unwrap_or_else(|| std::io::Error::other("too many name collisions")),
    ))
}
