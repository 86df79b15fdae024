//! Small helpers the CPU kernels of our ops share: slices behind candle storage, disjoint parallel
//! writes, and vectorisable f64 sums.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Result, Storage};
use rayon::prelude::*;

/// The contiguous f32 slice of a CPU storage described by `layout`; `op` and `what` name it in errors.
pub(crate) fn f32_slice<'a>(
    s: &'a CpuStorage,
    layout: &Layout,
    op: &'static str,
    what: &str,
) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => {
            return Err(candle_core::Error::Msg(format!(
                "{op}: {what} must be f32, got {:?}",
                s.dtype()
            )))
        }
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => Err(candle_core::Error::RequiresContiguous { op }),
    }
}

/// The f32 slice behind a contiguous tensor's storage guard, which must be on the CPU.
pub(crate) fn storage_f32<'a>(
    s: &'a Storage,
    layout: &Layout,
    op: &'static str,
    what: &str,
) -> Result<&'a [f32]> {
    match s {
        Storage::Cpu(c) => f32_slice(c, layout, op, what),
        _ => Err(candle_core::Error::Msg(format!(
            "{op}: {what} is not on the CPU"
        ))),
    }
}

/// A raw output pointer handed to rayon tasks that each write their own disjoint range of it.
pub(crate) struct SendPtr<T = f32>(pub(crate) *mut T);
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
// SAFETY: only used to give each rayon task its own disjoint ranges of one buffer.
unsafe impl<T: Send> Send for SendPtr<T> {}
unsafe impl<T: Send> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// Σ f(v) over a row in f64 with 8 independent lanes, so the loop vectorises (a single f64 accumulator
/// forces a sequential chain of adds).
#[inline]
pub(crate) fn lane_sum(row: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for ch in chunks {
        for j in 0..8 {
            acc[j] += f(ch[j]);
        }
    }
    acc.iter().sum::<f64>() + rest.iter().map(|&v| f(v)).sum::<f64>()
}

/// Runs tasks `0..n_tasks` (at least one) in one contiguous range per rayon thread, each range adding
/// into its own zeroed accumulator of `size` floats with its own `scratch()`, then sums the accumulators
/// in range order: the weight gradients' reduction over (window, tile) tasks.
pub(crate) fn accumulate_tasks<S>(
    n_tasks: usize,
    size: usize,
    scratch: impl Fn() -> S + Sync + Send,
    task: impl Fn(usize, &mut S, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let n_chunks = rayon::current_num_threads().clamp(1, n_tasks);
    let partials: Vec<Vec<f32>> = (0..n_chunks)
        .into_par_iter()
        .map(|c| {
            let mut acc = vec![0f32; size];
            let mut scratch = scratch();
            for t in c * n_tasks / n_chunks..(c + 1) * n_tasks / n_chunks {
                task(t, &mut scratch, &mut acc);
            }
            acc
        })
        .collect();
    let mut out = vec![0f32; size];
    for p in partials {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
    out
}
