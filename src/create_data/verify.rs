//! `--verify-h5`: read every written `dataset_*.h5` back with the training reader and check each shard.

use std::path::Path;

use crate::data::{DataError, H5File};

/// Opens each dataset file in `dir`, decodes every shard and prints its windows; empty splits are reported, not
/// failed (upstream crashes on them).
pub fn verify(dir: &Path) -> Result<(), DataError> {
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
                println!(
                    "verified {}: {} shards, {} windows",
                    path.display(),
                    f.shards().len(),
                    f.n_windows()
                );
            }
            Err(e) if is_empty(&path) => {
                println!("verified {}: no records ({e})", path.display());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn is_empty(path: &Path) -> bool {
    hdf5_reader::Hdf5File::open(path)
        .ok()
        .and_then(|f| f.root_group().ok()?.member_names().ok())
        .is_some_and(|(_, d)| d.is_empty())
}
