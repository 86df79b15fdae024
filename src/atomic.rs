//! Atomic file replacement, the one policy for every output the project writes (checkpoints, run logs): the
//! new content goes to a uniquely named temporary file beside the target (`.{name}.{pid}.{n}.tmp`), is
//! fsynced, renamed over the target, and the directory is fsynced so the rename survives a crash. On any
//! error the temporary file is removed and an existing target is left untouched. A temporary file left by a
//! killed process matches [`is_temp_name`]; writers remove such files when they open their directory.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Why a [`replace`] failed: the path concerned, what was being done, and the cause.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}", path.display())]
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
    let (target, mut file) = AtomicFile::create(path)?;
    file.write_all(bytes)
        .map_err(|e| err(&target.guard.path, "cannot write temporary file", e))?;
    target.commit(file)?;
    log::debug!("wrote {} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

/// The streaming form of [`replace`], with the same policy: [`AtomicFile::create`] opens the temporary
/// file, the caller writes it, [`AtomicFile::commit`] syncs it, renames it over the target and syncs the
/// directory. Dropped without a commit, it removes the temporary file.
pub struct AtomicFile {
    path: PathBuf,
    dir: PathBuf,
    guard: TempGuard,
}

impl AtomicFile {
    /// Creates the temporary file beside `path` and returns it with its guard.
    pub fn create(path: &Path) -> Result<(Self, File), ReplaceError> {
        let (dir, tmp_path, file) = open_temp(path)?;
        let target = Self {
            path: path.to_path_buf(),
            dir,
            guard: TempGuard {
                path: tmp_path,
                armed: true,
            },
        };
        Ok((target, file))
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs `file` (the one [`AtomicFile::create`] returned, fully written), renames it over the final
    /// path and syncs the directory.
    pub fn commit(mut self, file: File) -> Result<(), ReplaceError> {
        let tmp = self.guard.path.clone();
        file.sync_all()
            .map_err(|e| err(&tmp, "cannot sync temporary file", e))?;
        drop(file);
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| err(&self.path, "cannot move the new file into place at", e))?;
        self.guard.armed = false;
        sync_dir(&self.dir)
    }
}

impl From<ReplaceError> for std::io::Error {
    fn from(e: ReplaceError) -> Self {
        std::io::Error::new(e.source.kind(), e)
    }
}

/// A new, uniquely named temporary file beside `target` (`.{name}.{pid}.{n}.tmp`, see [`is_temp_name`]),
/// for writers that rename several files into place together (create-data's outputs).
pub fn temp_beside(target: &Path) -> Result<(PathBuf, File), ReplaceError> {
    let (_, tmp, file) = open_temp(target)?;
    Ok((tmp, file))
}

/// The directory of `target` and a new temporary file there.
fn open_temp(target: &Path) -> Result<(PathBuf, PathBuf, File), ReplaceError> {
    let file_name = target
        .file_name()
        .ok_or_else(|| {
            err(
                target,
                "cannot write",
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the path has no file name",
                ),
            )
        })?
        .to_string_lossy()
        .into_owned();
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (tmp, file) = create_temp(&dir, &file_name, target)?;
    Ok((dir, tmp, file))
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

// ---- buffered streaming output (predict, variant) ----

/// A buffered writer to a temporary file that becomes `path` on [`AtomicOutput::commit`].
pub struct AtomicOutput {
    writer: Option<BufWriter<File>>,
    file: AtomicFile,
}

impl AtomicOutput {
    /// Creates the temporary file beside `path` ([`AtomicFile`]'s policy).
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let (file, f) = AtomicFile::create(path)?;
        Ok(Self {
            writer: Some(BufWriter::with_capacity(1 << 20, f)),
            file,
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Flushes, syncs and renames the temporary file over the final path.
    pub fn commit(mut self) -> std::io::Result<()> {
        let w = self.writer.take().expect("writer present until commit");
        let f = w.into_inner().map_err(|e| e.into_error())?;
        Ok(self.file.commit(f)?)
    }
}

impl Write for AtomicOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.as_mut().expect("not committed").write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}
