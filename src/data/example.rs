//! A learnable synthetic data set in the exact `create-data` layout, and the small HDF5 writer it
//! uses (also used by tests and benchmarks to write other layouts).
//!
//! Each window is background sequence in which the dinucleotides `AG` and `GT` never occur (a
//! Markov chain that never follows A with G nor G with T), so the only `AG`/`GT` in a window
//! belong to a planted site:
//! - acceptor (label 1) on the first exon base, after `C` + 11 pyrimidines + `CAG`:
//!   `CYYYYYYYYYYYCAG|G[AC]`;
//! - donor (label 2) on the last exon base, before the intron's `GTAAGT`: `CAG|GTAAGT`
//!   (which holds the window's only other `AG` and `GT`).
//!
//! A few sites per window (exon boundaries alternate), N padding on one flank of some windows
//! (as `create-data` pads gene ends), and rare scattered N.

use std::path::{Path, PathBuf};

use hdf5_writer::{DatasetBuilder, FilterDescription, Hdf5Builder, Hdf5Writer, WriteOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::{DataError, MAX_FLANK, SEQ_LEN, X_LEN};
use crate::model::config::{IN_CHANNELS, OUT_CLASSES};

/// Element type of a dataset to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteType {
    /// int8 (what `create-data` writes).
    I8,
    /// uint8.
    U8,
    /// int16, little-endian (not a valid `create-data` type; for tests of the type check).
    I16,
    /// float32, little-endian.
    F32,
}

impl WriteType {
    fn size(self) -> usize {
        match self {
            WriteType::I8 | WriteType::U8 => 1,
            WriteType::I16 => 2,
            WriteType::F32 => 4,
        }
    }
}

/// One dataset for [`write_h5`].
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSpec {
    /// Name in the root group (e.g. `X0`).
    pub name: String,
    /// Shape.
    pub shape: Vec<u64>,
    /// Element type.
    pub dtype: WriteType,
    /// Elements as little-endian bytes, row-major; length = product(shape) × element size.
    pub bytes: Vec<u8>,
    /// Chunk shape for a chunked layout; `None` writes contiguous data (as h5py by default).
    pub chunks: Option<Vec<u64>>,
    /// Deflate (gzip) level, chunked layouts only.
    pub gzip: Option<u32>,
    /// The shuffle filter (before deflate, as h5py orders them), chunked layouts only.
    pub shuffle: bool,
}

impl DatasetSpec {
    /// A contiguous int8 dataset from 0/1 (or any) byte values.
    pub fn int8(name: impl Into<String>, shape: Vec<u64>, bytes: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            shape,
            dtype: WriteType::I8,
            bytes,
            chunks: None,
            gzip: None,
            shuffle: false,
        }
    }
}

const FILTER_DEFLATE: u16 = 1;
const FILTER_SHUFFLE: u16 = 2;

/// Writes an HDF5 file (superblock v2, datasets in the root group) readable by h5py and libhdf5.
pub fn write_h5(path: &Path, datasets: &[DatasetSpec]) -> Result<(), DataError> {
    let werr = |message: String| DataError::Write {
        path: path.to_path_buf(),
        message,
    };
    let mut builder = Hdf5Builder::new();
    for d in datasets {
        let elems: u64 = d.shape.iter().product();
        if elems as usize * d.dtype.size() != d.bytes.len() {
            return Err(werr(format!(
                "dataset {}: {} bytes for shape {:?} of {:?}",
                d.name,
                d.bytes.len(),
                d.shape,
                d.dtype
            )));
        }
        let mut b = match d.dtype {
            WriteType::I8 => DatasetBuilder::typed::<i8>(d.name.clone(), d.shape.clone()),
            WriteType::U8 => DatasetBuilder::typed::<u8>(d.name.clone(), d.shape.clone()),
            WriteType::I16 => DatasetBuilder::typed::<i16>(d.name.clone(), d.shape.clone()),
            WriteType::F32 => DatasetBuilder::typed::<f32>(d.name.clone(), d.shape.clone()),
        }
        .raw_data(d.bytes.clone());
        if let Some(chunks) = &d.chunks {
            b = b.chunked(chunks.clone());
            if d.shuffle {
                b = b.filter(FilterDescription {
                    id: FILTER_SHUFFLE,
                    name: None,
                    client_data: vec![d.dtype.size() as u32],
                });
            }
            if let Some(level) = d.gzip {
                b = b.filter(FilterDescription {
                    id: FILTER_DEFLATE,
                    name: None,
                    client_data: vec![level],
                });
            }
        } else if d.shuffle || d.gzip.is_some() {
            return Err(werr(format!(
                "dataset {}: filters need a chunked layout",
                d.name
            )));
        }
        builder = builder.dataset(b);
    }
    let plan = builder.into_plan().map_err(|e| werr(e.to_string()))?;
    let file = std::fs::File::create(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let sink = Hdf5Writer::new(std::io::BufWriter::new(file), WriteOptions::default())
        .finish(plan)
        .map_err(|e| werr(e.to_string()))?;
    let file = sink.into_inner().map_err(|e| werr(e.to_string()))?;
    file.sync_all().map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// Writes one `create-data` file: shards `X{i}` int8 (n, 15000, 4) and `Y{i}` int8 (1, n, 5000, 3),
/// contiguous. `shards` holds, per shard, the window count and its X and Y bytes.
pub fn write_create_data_file(
    path: &Path,
    shards: &[(usize, Vec<u8>, Vec<u8>)],
) -> Result<(), DataError> {
    let specs: Vec<DatasetSpec> = shards
        .iter()
        .enumerate()
        .flat_map(|(i, (n, x, y))| {
            let n = *n as u64;
            [
                DatasetSpec::int8(
                    format!("X{i}"),
                    vec![n, X_LEN as u64, IN_CHANNELS as u64],
                    x.clone(),
                ),
                DatasetSpec::int8(
                    format!("Y{i}"),
                    vec![1, n, SEQ_LEN as u64, OUT_CLASSES as u64],
                    y.clone(),
                ),
            ]
        })
        .collect();
    write_h5(path, &specs)
}

/// Options of [`write_example_data`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExampleOptions {
    /// Shards of `dataset_train.h5`.
    pub train_shards: usize,
    /// Shards of `dataset_test.h5`.
    pub test_shards: usize,
    /// Windows per shard.
    pub windows_per_shard: usize,
    /// Random seed; the same options give byte-identical files.
    pub seed: u64,
    /// Fewest and most splice sites per window (alternating acceptor/donor), 1..=40.
    pub sites_per_window: (usize, usize),
}

impl Default for ExampleOptions {
    fn default() -> Self {
        Self {
            train_shards: 4,
            test_shards: 1,
            windows_per_shard: 100,
            seed: 42,
            sites_per_window: (4, 10),
        }
    }
}

/// Paths written by [`write_example_data`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExamplePaths {
    /// `dir/dataset_train.h5`.
    pub train: PathBuf,
    /// `dir/dataset_test.h5`.
    pub test: PathBuf,
}

const A: u8 = 0;
const C: u8 = 1;
const G: u8 = 2;
const T: u8 = 3;
const N: u8 = 4;

/// One synthetic window: X codes (15000 rows × 4) and Y (5000 rows × 3), both 0/1 bytes.
fn example_window(seed: u64, sites: (usize, usize)) -> (Vec<u8>, Vec<u8>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let off = MAX_FLANK / 2;
    // Background: a chain that never writes A→G or G→T.
    let mut seq = vec![0u8; X_LEN];
    let mut prev = rng.random_range(0..4u8);
    for b in seq.iter_mut() {
        let next = match prev {
            A => [A, C, T][rng.random_range(0..3)],
            G => [A, C, G][rng.random_range(0..3)],
            _ => rng.random_range(0..4u8),
        };
        *b = next;
        prev = next;
    }
    let mut label = vec![0u8; SEQ_LEN];
    let mut protected = vec![false; X_LEN];
    let k = rng.random_range(sites.0..=sites.1);
    let slot = SEQ_LEN / k;
    let mut kind = if rng.random_bool(0.5) { 1u8 } else { 2u8 };
    for s in 0..k {
        let p = s * slot + 25 + rng.random_range(0..slot - 50);
        let q = p + off;
        if kind == 1 {
            seq[q - 15] = C;
            for b in &mut seq[q - 14..q - 3] {
                *b = if rng.random_bool(0.5) { C } else { T };
            }
            seq[q - 3..q + 1].copy_from_slice(&[C, A, G, G]);
            // [AC], but never an A before a G (that would be a decoy AG).
            seq[q + 1] = if seq[q + 2] != G && rng.random_bool(0.5) {
                A
            } else {
                C
            };
        } else {
            seq[q - 2..q + 7].copy_from_slice(&[C, A, G, G, T, A, A, G, T]);
        }
        label[p] = kind;
        for m in &mut protected[q - 20..q + 20] {
            *m = true;
        }
        kind = 3 - kind;
    }
    // N padding on one flank of a quarter of the windows, and rare scattered N.
    if rng.random_bool(0.25) {
        let r = rng.random_range(1..=off);
        if rng.random_bool(0.5) {
            seq[..r].fill(N);
        } else {
            seq[X_LEN - r..].fill(N);
        }
    }
    for (b, &keep) in seq.iter_mut().zip(&protected) {
        if !keep && rng.random_bool(0.001) {
            *b = N;
        }
    }
    let mut x = vec![0u8; X_LEN * IN_CHANNELS];
    for (row, &b) in x.chunks_exact_mut(IN_CHANNELS).zip(&seq) {
        if b < 4 {
            row[b as usize] = 1;
        }
    }
    let mut y = vec![0u8; SEQ_LEN * OUT_CLASSES];
    for (row, &l) in y.chunks_exact_mut(OUT_CLASSES).zip(&label) {
        row[l as usize] = 1;
    }
    (x, y)
}

fn example_file(
    path: &Path,
    shards: usize,
    opts: &ExampleOptions,
    file_salt: u64,
) -> Result<(), DataError> {
    let per = opts.windows_per_shard;
    let data: Vec<(usize, Vec<u8>, Vec<u8>)> = (0..shards)
        .map(|s| {
            let windows: Vec<(Vec<u8>, Vec<u8>)> = (0..per)
                .into_par_iter()
                .map(|w| {
                    // Mix the user seed before combining, so seeds differing only in low bits do not
                    // just permute the same windows (`7 ^ w` and `9 ^ w` cover the same set).
                    let seed = opts
                        .seed
                        .wrapping_mul(0xD6E8_FEB8_6659_FD93)
                        .rotate_left(32)
                        ^ file_salt
                        ^ ((s as u64) << 32)
                        ^ (w as u64);
                    let seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
                    example_window(seed, opts.sites_per_window)
                })
                .collect();
            let mut x = Vec::with_capacity(per * X_LEN * IN_CHANNELS);
            let mut y = Vec::with_capacity(per * SEQ_LEN * OUT_CLASSES);
            for (wx, wy) in windows {
                x.extend_from_slice(&wx);
                y.extend_from_slice(&wy);
            }
            (per, x, y)
        })
        .collect();
    write_create_data_file(path, &data)
}

/// Writes `dir/dataset_train.h5` and `dir/dataset_test.h5`, a learnable synthetic set in the exact
/// `create-data` layout (contiguous int8 `X{i}` (n, 15000, 4) and `Y{i}` (1, n, 5000, 3)); see the
/// module docs for the signal. Creates `dir` if needed.
pub fn write_example_data(dir: &Path, opts: &ExampleOptions) -> Result<ExamplePaths, DataError> {
    let (lo, hi) = opts.sites_per_window;
    if opts.train_shards == 0 || opts.test_shards == 0 || opts.windows_per_shard == 0 {
        return Err(DataError::InvalidArgument(
            "example data needs at least one shard per file and one window per shard".into(),
        ));
    }
    if lo == 0 || lo > hi || hi > 40 {
        return Err(DataError::InvalidArgument(format!(
            "sites per window ({lo}, {hi}) must satisfy 1 <= min <= max <= 40"
        )));
    }
    std::fs::create_dir_all(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let paths = ExamplePaths {
        train: dir.join("dataset_train.h5"),
        test: dir.join("dataset_test.h5"),
    };
    example_file(&paths.train, opts.train_shards, opts, 0x7EA1_0000_0000_0000)?;
    example_file(&paths.test, opts.test_shards, opts, 0x7E57_0000_0000_0000)?;
    log::info!(
        "wrote example data: {} ({} × {} windows), {} ({} × {} windows)",
        paths.train.display(),
        opts.train_shards,
        opts.windows_per_shard,
        paths.test.display(),
        opts.test_shards,
        opts.windows_per_shard
    );
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(row: &[u8]) -> u8 {
        row.iter().position(|&v| v == 1).map_or(N, |i| i as u8)
    }

    #[test]
    fn sites_follow_the_motifs_and_are_the_only_ag_gt() {
        for seed in 0..20 {
            let (x, y) = example_window(seed, (4, 10));
            let seq: Vec<u8> = x.chunks_exact(4).map(base).collect();
            let off = MAX_FLANK / 2;
            let mut acceptors = 0usize;
            let mut donors = 0usize;
            for p in 0..SEQ_LEN {
                let q = p + off;
                match base(&y[p * 3..p * 3 + 3]) {
                    1 => {
                        acceptors += 1;
                        assert_eq!(&seq[q - 2..q], &[A, G]);
                    }
                    2 => {
                        donors += 1;
                        assert_eq!(&seq[q + 1..q + 3], &[G, T]);
                    }
                    _ => {}
                }
            }
            assert!(acceptors + donors >= 4 && acceptors.abs_diff(donors) <= 1);
            // Any AG or GT outside a site's motif would be a decoy: there is none (a donor's
            // `CAG|GTAAGT` holds two of each, an acceptor's `CAG|G` one AG).
            let count = |d: [u8; 2]| seq.windows(2).filter(|w| *w == d).count();
            assert_eq!(count([A, G]), acceptors + 2 * donors, "seed {seed}");
            assert_eq!(count([G, T]), 2 * donors, "seed {seed}");
        }
    }
}
