//! Turning raw shard bytes into model batches: clip X to the flank's window, transpose to
//! channel-major f32, and check every row's values on the way.

use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use super::{Batch, DataError, WindowRef, MAX_FLANK, SEQ_LEN, X_LEN};
use crate::model::config::{IN_CHANNELS, OUT_CLASSES};

const X_WINDOW: usize = X_LEN * IN_CHANNELS;
const Y_WINDOW: usize = SEQ_LEN * OUT_CLASSES;

/// One shard read whole from the file: `X{index}` and `Y{index}` as element codes (0/1 for valid
/// one-hot values; see [`super::H5File::read_shard`]).
#[derive(Debug, Clone)]
pub struct RawShard {
    path: Arc<PathBuf>,
    index: usize,
    n_windows: usize,
    x: Vec<u8>,
    y: Vec<u8>,
}

impl RawShard {
    pub(crate) fn new(
        path: Arc<PathBuf>,
        index: usize,
        n_windows: usize,
        x: Vec<u8>,
        y: Vec<u8>,
    ) -> Self {
        Self {
            path,
            index,
            n_windows,
            x,
            y,
        }
    }

    /// The shard number.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Windows in the shard.
    pub fn n_windows(&self) -> usize {
        self.n_windows
    }

    /// Bytes held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.x.len() + self.y.len()
    }

    /// Element codes of the whole of `X{index}` (n × 15000 × 4, row-major).
    pub fn x_codes(&self) -> &[u8] {
        &self.x
    }

    /// Element codes of the whole of `Y{index}` (n × 5000 × 3, row-major).
    pub fn y_codes(&self) -> &[u8] {
        &self.y
    }

    /// Element codes of window `i` of `X`: 15000 rows of 4 (row-major), or `None` out of range.
    pub fn x_window(&self, i: usize) -> Option<&[u8]> {
        self.x.get(i * X_WINDOW..(i + 1) * X_WINDOW)
    }

    /// Element codes of window `i` of `Y`: 5000 rows of 3 (row-major), or `None` out of range.
    pub fn y_window(&self, i: usize) -> Option<&[u8]> {
        self.y.get(i * Y_WINDOW..(i + 1) * Y_WINDOW)
    }

    fn bad_value(&self, x: bool, window: usize, position: usize, found: &[u8]) -> DataError {
        DataError::BadValue {
            path: self.path.to_path_buf(),
            dataset: format!("{}{}", if x { 'X' } else { 'Y' }, self.index),
            window,
            position,
            found: found.to_vec(),
            expected: if x {
                "a one-hot row (A, C, G, T) or an all-zero row (N)"
            } else {
                "a one-hot label row, or all-zero (padding)"
            },
        }
    }

    fn window_out_of_range(&self, i: usize) -> DataError {
        DataError::NoSuchWindow {
            path: self.path.to_path_buf(),
            shard: self.index,
            index: i,
            detail: format!("the shard has {} windows", self.n_windows),
        }
    }
}

/// Checks every row of an X window: one-hot or all-zero. Returns the first bad row.
fn check_x(w: &[u8]) -> Option<usize> {
    // A valid row, read as a native-endian u32, is 0 or has exactly one byte equal to 1.
    const VALID: [u32; 5] = [
        0,
        u32::from_ne_bytes([1, 0, 0, 0]),
        u32::from_ne_bytes([0, 1, 0, 0]),
        u32::from_ne_bytes([0, 0, 1, 0]),
        u32::from_ne_bytes([0, 0, 0, 1]),
    ];
    w.chunks_exact(IN_CHANNELS).position(|r| {
        let v = u32::from_ne_bytes([r[0], r[1], r[2], r[3]]);
        !VALID.contains(&v)
    })
}

/// Checks every row of a Y window: one-hot, or all-zero where `create-data` pads past a gene's
/// end (real files hold many such rows). Returns the first bad row.
fn check_y(w: &[u8]) -> Option<usize> {
    w.chunks_exact(OUT_CLASSES).position(|r| {
        !matches!(
            (r[0], r[1], r[2]),
            (0, 0, 0) | (1, 0, 0) | (0, 1, 0) | (0, 0, 1)
        )
    })
}

/// Decodes one window into its slices of the batch (`xo`: 4 × (5000 + flank), `yo`: 3 × 5000).
fn decode_one(
    shard: &RawShard,
    i: usize,
    flank: usize,
    xo: &mut [f32],
    yo: &mut [f32],
) -> Result<(), DataError> {
    let xw = shard
        .x_window(i)
        .ok_or_else(|| shard.window_out_of_range(i))?;
    let yw = shard
        .y_window(i)
        .ok_or_else(|| shard.window_out_of_range(i))?;
    if let Some(row) = check_x(xw) {
        return Err(shard.bad_value(
            true,
            i,
            row,
            &xw[row * IN_CHANNELS..(row + 1) * IN_CHANNELS],
        ));
    }
    if let Some(row) = check_y(yw) {
        return Err(shard.bad_value(
            false,
            i,
            row,
            &yw[row * OUT_CLASSES..(row + 1) * OUT_CLASSES],
        ));
    }
    let len = SEQ_LEN + flank;
    let off = (MAX_FLANK - flank) / 2;
    let src = &xw[off * IN_CHANNELS..(off + len) * IN_CHANNELS];
    let (a, rest) = xo.split_at_mut(len);
    let (c, rest) = rest.split_at_mut(len);
    let (g, t) = rest.split_at_mut(len);
    for ((((row, a), c), g), t) in src.chunks_exact(IN_CHANNELS).zip(a).zip(c).zip(g).zip(t) {
        *a = f32::from(row[0]);
        *c = f32::from(row[1]);
        *g = f32::from(row[2]);
        *t = f32::from(row[3]);
    }
    let (n, rest) = yo.split_at_mut(SEQ_LEN);
    let (acc, don) = rest.split_at_mut(SEQ_LEN);
    for (((row, n), acc), don) in yw.chunks_exact(OUT_CLASSES).zip(n).zip(acc).zip(don) {
        *n = f32::from(row[0]);
        *acc = f32::from(row[1]);
        *don = f32::from(row[2]);
    }
    Ok(())
}

/// Decodes the windows `parts` (a shard and a row in it, in batch order) into a [`Batch`] for
/// `flank`: X clipped to `[(10000 - flank) / 2, 15000 - (10000 - flank) / 2)` and transposed to
/// (n, 4, 5000 + flank), Y transposed to (n, 3, 5000). Y rows past a gene's end are all-zero in
/// real `create-data` files (padding) and stay all-zero here. Every row of each window (all 15000 of X)
/// is checked; the first bad one is reported with its file, dataset, window and position.
/// `parallel` spreads the windows over rayon's pool.
pub fn decode_batch(
    parts: &[(&RawShard, usize)],
    flank: usize,
    parallel: bool,
) -> Result<Batch, DataError> {
    super::check_flank(flank)?;
    let n = parts.len();
    let xl = IN_CHANNELS * (SEQ_LEN + flank);
    let yl = OUT_CLASSES * SEQ_LEN;
    let mut x = vec![0f32; n * xl];
    let mut y = vec![0f32; n * yl];
    type Job<'a, 'b> = ((&'a mut [f32], &'a mut [f32]), &'a (&'b RawShard, usize));
    let job = |((xo, yo), (shard, i)): Job<'_, '_>| decode_one(shard, *i, flank, xo, yo);
    if parallel {
        x.par_chunks_mut(xl)
            .zip(y.par_chunks_mut(yl))
            .zip(parts.par_iter())
            .try_for_each(job)?;
    } else {
        x.chunks_mut(xl)
            .zip(y.chunks_mut(yl))
            .zip(parts.iter())
            .try_for_each(job)?;
    }
    Ok(Batch {
        n,
        flank,
        x,
        y,
        windows: parts
            .iter()
            .map(|(s, i)| WindowRef {
                shard: s.index,
                index: *i,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(x: Vec<u8>, y: Vec<u8>) -> RawShard {
        RawShard::new(Arc::new(PathBuf::from("mem.h5")), 3, 1, x, y)
    }

    fn one_window() -> (Vec<u8>, Vec<u8>) {
        let mut x = vec![0u8; X_WINDOW];
        for p in 0..X_LEN {
            if p % 7 != 0 {
                x[p * 4 + p % 4] = 1;
            }
        }
        let mut y = vec![0u8; Y_WINDOW];
        for p in 0..SEQ_LEN {
            y[p * 3 + usize::from(p % 50 == 0) + usize::from(p % 100 == 0)] = 1;
        }
        (x, y)
    }

    #[test]
    fn clip_and_transpose() {
        let (x, y) = one_window();
        let s = shard(x.clone(), y.clone());
        for flank in [80, 400, 2000, 10000] {
            for parallel in [false, true] {
                let b = decode_batch(&[(&s, 0)], flank, parallel).unwrap();
                let len = SEQ_LEN + flank;
                let off = (MAX_FLANK - flank) / 2;
                assert_eq!(b.x.len(), 4 * len);
                for p in [0, 1, len / 2, len - 1] {
                    for c in 0..4 {
                        assert_eq!(
                            b.x[c * len + p],
                            f32::from(x[(off + p) * 4 + c]),
                            "flank {flank} p {p} c {c}"
                        );
                    }
                }
                for p in [0, 50, 100, 4999] {
                    for c in 0..3 {
                        assert_eq!(b.y[c * SEQ_LEN + p], f32::from(y[p * 3 + c]));
                    }
                }
                assert_eq!(b.windows, vec![WindowRef { shard: 3, index: 0 }]);
            }
        }
    }

    #[test]
    fn bad_rows_are_named() {
        let (mut x, y) = one_window();
        x[1234 * 4..1235 * 4].copy_from_slice(&[1, 1, 0, 0]);
        let e = decode_batch(&[(&shard(x, y.clone()), 0)], 80, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mem.h5")
                && e.contains("X3")
                && e.contains("window 0")
                && e.contains("position 1234"),
            "{e}"
        );
        let (x, mut y) = one_window();
        y[17 * 3..18 * 3].copy_from_slice(&[0, 1, 1]);
        let e = decode_batch(&[(&shard(x, y), 0)], 80, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Y3") && e.contains("position 17"), "{e}");
    }
}
