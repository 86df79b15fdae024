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
