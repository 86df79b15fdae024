//! Atomic file replacement, the one policy for every output the project writes (checkpoints, run logs): the
//! new content goes to a uniquely named temporary file beside the target (`.{name}.{pid}@{host}.{n}.tmp`), is
//! fsynced, renamed over the target, and the directory is fsynced so the rename survives a crash. On any
//! error the temporary file is removed and an existing target is left untouched. A temporary file left by a
//! killed process matches [`is_temp_name`]; [`remove_stale_temps`] removes such files when a command starts
//! writing into their directory (only those whose process has ended).

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

/// This machine's name as it goes into temporary file names: letters, digits, `-` and `_` only (a dot
/// would end the field), read once; empty where the system does not say.
fn host_tag() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::env::var("COMPUTERNAME").ok())
            .unwrap_or_default();
        name.trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    })
}

/// The owner field of the temporary files process `pid` of this machine writes: `{pid}@{host}` (the host,
/// so that a job on another machine of a cluster, writing into the same shared directory, is never taken
/// for a dead local process), or `{pid}` where the host is unknown.
pub fn temp_owner(pid: u32) -> String {
    match host_tag() {
        "" => pid.to_string(),
        host => format!("{pid}@{host}"),
    }
}

/// The owner of a temporary file, from its name `.{name}.{pid}@{host}.{n}.tmp`: the process id and the
/// host; `None` when the name carries no owner.
pub fn temp_owner_of(name: &str) -> Option<(u32, Option<&str>)> {
    let stem = name.strip_suffix(".tmp")?;
    let mut parts = stem.rsplitn(3, '.');
    let n = parts.next()?;
    let owner = parts.next()?;
    parts.next()?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (pid, host) = match owner.split_once('@') {
        Some((pid, host)) => (pid, Some(host)),
        None => (owner, None),
    };
    Some((pid.parse().ok()?, host))
}

/// Whether process `pid` of this machine is running: `Some` where the system can tell (Linux's `/proc`),
/// `None` elsewhere.
fn pid_alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return None;
    }
    Some(proc.join(pid.to_string()).exists())
}

/// Removes the temporary files of ours ([`is_temp_name`]) that a killed run left in `dir`: those written
/// on this machine by a process that no longer runs. A temporary file of a running process (a parallel
/// job writing into the same directory) is left alone; one whose process cannot be told (written on
/// another machine, no owner in its name, or no `/proc`) is left and reported. Says what it removed (a
/// warning each) and returns the removed paths.
pub fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    let here = host_tag();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_temp_name(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let alive = match temp_owner_of(&name) {
            Some((pid, Some(host))) if !here.is_empty() && host == here => {
                pid_alive(pid).map(|a| (pid, a))
            }
            _ => None,
        };
        match alive {
            Some((pid, false)) => match std::fs::remove_file(&path) {
                Ok(()) => {
                    log::warn!(
                        "removed {}, a temporary file left by an interrupted run (process {pid})",
                        path.display()
                    );
                    removed.push(path);
                }
                Err(e) => log::warn!(
                    "could not remove {}, a temporary file left by an interrupted run: {e}",
                    path.display()
                ),
            },
            Some((_, true)) => {
                log::debug!("{}: a running process's temporary file", path.display())
            }
            None => log::warn!(
                "{} looks like a temporary file left by an interrupted run; left in place (cannot tell \
                 whether its process still runs): remove it if no other run writes here",
                path.display()
            ),
        }
    }
    removed
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

/// A new, uniquely named temporary file beside `target` (`.{name}.{pid}@{host}.{n}.tmp`, see [`is_temp_name`]),
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
    let owner = temp_owner(std::process::id());
    let mut last_err = None;
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{file_name}.{owner}.{n}.tmp"));
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

#[cfg(test)]
mod stale_tests {
    use super::*;

    #[test]
    fn owners_in_temp_names() {
        assert_eq!(
            temp_owner_of(".model_best.pt.1234@node-7.7.tmp"),
            Some((1234, Some("node-7")))
        );
        assert_eq!(
            temp_owner_of(".model_best.pt.1234.7.tmp"),
            Some((1234, None))
        );
        let own = format!(".x.{}.0.tmp", temp_owner(42));
        assert_eq!(temp_owner_of(&own).map(|o| o.0), Some(42));
        assert_eq!(temp_owner_of(".a.b.c.tmp"), None);
        assert_eq!(temp_owner_of(".x.tmp"), None);
        assert_eq!(temp_owner_of("x"), None);
        assert!(!host_tag().contains('.'));
    }

    #[test]
    fn removes_only_this_machines_dead_processes_temps() {
        if pid_alive(std::process::id()) != Some(true) || host_tag().is_empty() {
            return; // nothing can be told here: everything is left (and reported)
        }
        let d = tempfile::tempdir().unwrap();
        // Above Linux's largest pid (2^22), so never running.
        let dead = d
            .path()
            .join(format!(".out.vcf.{}.0.tmp", temp_owner(4_999_999)));
        let live = d
            .path()
            .join(format!(".out.vcf.{}.0.tmp", temp_owner(std::process::id())));
        let elsewhere = d.path().join(".out.vcf.4999999@another-node.0.tmp");
        let no_host = d.path().join(".out.vcf.4999999.0.tmp");
        let unknown = d.path().join(".out.vcf.tmp");
        let other = d.path().join("keep.tmp");
        for p in [&dead, &live, &elsewhere, &no_host, &unknown, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(d.path()), vec![dead.clone()]);
        assert!(!dead.exists());
        for p in [&live, &elsewhere, &no_host, &unknown, &other] {
            assert!(p.exists(), "{}", p.display());
        }
        // Our own writer's names carry the owner.
        let (tmp, _f) = temp_beside(&d.path().join("x.bin")).unwrap();
        let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            temp_owner_of(&name),
            Some((std::process::id(), Some(host_tag())))
        );
    }
}
