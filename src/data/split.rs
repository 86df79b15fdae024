//! The seeded 90:10 train/validation split over a file's windows.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::{H5File, WindowRef};

/// Share of the windows that go to validation.
pub const VALIDATION_FRACTION: f64 = 0.1;

/// Salt so that the split and the epoch orders draw from unrelated streams for the same seed.
const SPLIT_SALT: u64 = 0x5EED_5917_7A11_D001;

/// Splits the file's windows 90:10 into (training, validation), seeded by `seed`: the same seed
/// gives the same split, whatever the epoch. The split is over windows, not shards, so a file with
/// a single shard splits too. Validation gets `round(n / 10)` windows, at least 1 when the file has
/// 2 or more, and training keeps at least 1. Both lists are sorted by shard, then row.
pub fn split_train_validation(file: &H5File, seed: u64) -> (Vec<WindowRef>, Vec<WindowRef>) {
    let mut all = file.all_windows();
    let n = all.len();
    let n_val = if n < 2 {
        0
    } else {
        ((n as f64 * VALIDATION_FRACTION).round() as usize).clamp(1, n - 1)
    };
    let mut rng = StdRng::seed_from_u64(seed ^ SPLIT_SALT);
    all.shuffle(&mut rng);
    let mut validation = all.split_off(n - n_val);
    all.sort_unstable();
    validation.sort_unstable();
    (all, validation)
}

/// The (training, validation) windows of a run: with an explicit `validation` file, every window
/// of `train` trains and every window of `validation` validates; otherwise the seeded 90:10
/// [`split_train_validation`] of `train`. Validation windows then refer to the file they come
/// from (`validation` when given, else `train`).
pub fn train_validation_windows(
    train: &H5File,
    validation: Option<&H5File>,
    seed: u64,
) -> (Vec<WindowRef>, Vec<WindowRef>) {
    match validation {
        Some(v) => (train.all_windows(), v.all_windows()),
        None => split_train_validation(train, seed),
    }
}
