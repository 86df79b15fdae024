//! One run per directory: a running `train`/`transfer` holds an exclusive advisory lock on `run.lock`
//! in its run directory. The operating system releases the lock when the process ends, however it ends,
//! so a killed run never leaves a stale lock; the file itself stays and names the last holder.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::RUN_LOCK;

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}: another run is writing this run directory ({holder}); wait for it to end or choose another --output-dir/--project-name/--exp-num", dir.display())]
    Held { dir: PathBuf, holder: String },
    #[error("{}: cannot lock the run directory", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of `run_dir` (which must exist) and writes `pid {pid}: {command}` into it.
    pub fn acquire(run_dir: &Path, command: &str) -> Result<Self, LockError> {
        let path = run_dir.join(RUN_LOCK);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "a process that has not written its name yet".to_string(),
                    h => h.to_string(),
                };
                return Err(LockError::Held {
                    dir: run_dir.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "pid {}: {command}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_name() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path(), "train -p first").unwrap();
        let err = RunLock::acquire(dir.path(), "train -p second").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}: train -p first", std::process::id())),
            "{msg}"
        );
        drop(first);
        RunLock::acquire(dir.path(), "train -p third").unwrap();
    }
}
