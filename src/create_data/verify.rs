//! `--verify-h5`: read every written `dataset_*.h5` back with the training reader and check each shard.

use std::path::Path;

use crate::data::{DataError, H5File};

/// Opens each dataset file in `dir`, decodes every shard and returns a line per file with its windows; empty
/// splits are reported, not failed (upstream crashes on them).
pub fn verify(dir: &Path) -> Result<Vec<String>, DataError> {
    let mut lines = Vec::new();
    for split in ["test", "train", "validation"] {
        let path = dir.join(format!("dataset_{split}.h5"));
        if !path.exists() {
            continue;
        }
        match H5File::open(&path) {
            Ok(f) => {
                for i in 0..f.shards().len() {
                    f.read_shard(i)?;
                }
                lines.push(format!(
                    "verified {}: {} shards, {} windows",
                    path.display(),
                    f.shards().len(),
                    f.n_windows()
                ));
            }
            Err(e) if is_empty(&path) => {
                lines.push(format!(
                    "verified {}: no records ({})",
                    path.display(),
                    crate::error_chain(&e)
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(lines)
}

fn is_empty(path: &Path) -> bool {
    hdf5_reader::Hdf5File::open(path)
        .ok()
        .and_then(|f| f.root_group().ok()?.member_names().ok())
        .is_some_and(|(_, d)| d.is_empty())
}

/// [`verify`] after a run that wrote `written` into `dir`: when a dataset cannot be read back, every file of
/// `written` is removed (each said with a warning), so a failed verification leaves nothing half-usable.
pub fn verify_written(
    dir: &Path,
    written: &[std::path::PathBuf],
) -> Result<Vec<String>, super::CreateDataError> {
    verify(dir).map_err(|source| {
        let mut removed = 0;
        for p in written {
            match std::fs::remove_file(p) {
                Ok(()) => {
                    log::warn!("--verify-h5 failed: removed {}", p.display());
                    removed += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("--verify-h5 failed: could not remove {}: {e}", p.display()),
            }
        }
        super::CreateDataError::Verify {
            dir: dir.to_path_buf(),
            removed,
            source: Box::new(source),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_verification_removes_what_the_run_wrote() {
        let d = tempfile::tempdir().unwrap();
        let bad = d.path().join("dataset_train.h5");
        let stats = d.path().join("train_stats.txt");
        std::fs::write(&bad, b"not an HDF5 file").unwrap();
        std::fs::write(&stats, b"chr1\t1\t2\tg\t1\t+\n").unwrap();
        let mine = d.path().join("input.fa");
        std::fs::write(&mine, b">a\nACGT\n").unwrap();
        let e = verify_written(d.path(), &[stats.clone(), bad.clone()]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("--verify-h5") && msg.contains("removed the 2 file(s)"),
            "{msg}"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert!(!bad.exists() && !stats.exists());
        // Only what the run wrote goes.
        assert_eq!(std::fs::read(&mine).unwrap(), b">a\nACGT\n");
    }

    #[test]
    fn passing_verification_keeps_everything() {
        let d = tempfile::tempdir().unwrap();
        let stats = d.path().join("train_stats.txt");
        std::fs::write(&stats, b"x").unwrap();
        assert!(verify_written(d.path(), std::slice::from_ref(&stats))
            .unwrap()
            .is_empty());
        assert!(stats.exists());
    }
}
