//! Ranking metrics for one splice-site channel: upstream's `print_topl_statistics` top-k accuracies and
//! thresholds, and scikit-learn's `average_precision_score` (AUPRC), computed exactly over every stored position.
//!
//! Scores are kept as order-preserving `u32` keys of their `f32` value ([`score_key`]), 4 bytes a position; the
//! true sites as a sorted list of position indices. Finishing needs no copy of the scores: the top-k boundary
//! values are found by two histogram passes, then the keys are sorted in place (O(n log n)) for the AUPRC sweep.

use rayon::prelude::*;
use serde::Serialize;

/// The multiples of the number of true sites at which upstream measures top-k accuracy.
pub const TOPK_FACTORS: [f64; 4] = [0.5, 1.0, 2.0, 4.0];

/// Order-preserving map from an `f32` score to a `u32` key (`a < b` ⇔ `key(a) < key(b)`; `-0.0` is folded onto
/// `+0.0` so that both compare equal, as in numpy; a NaN sorts above `+inf`, as numpy sorts NaN last).
#[inline]
pub fn score_key(x: f32) -> u32 {
    let bits = (x + 0.0).to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// Inverse of [`score_key`].
#[inline]
pub fn key_score(k: u32) -> f32 {
    if k & 0x8000_0000 != 0 {
        f32::from_bits(k & 0x7FFF_FFFF)
    } else {
        f32::from_bits(!k)
    }
}

/// Ranking metrics of one splice-site channel (acceptor or donor) over the stored positions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankingMetrics {
    /// Top-k accuracy at k = 1 × sites (upstream's `{site}_topk.txt` value).
    pub topk: f64,
    /// Top-k accuracy at k = 0.5, 1, 2, 4 × sites, as upstream: `|top ∩ true| / (min(|top|, sites) + 1e-10)`.
    pub topk_all: [f64; 4],
    /// The score threshold at each k: the smallest score among the selected top positions (an `f32` value).
    /// NaN when no position was stored.
    pub thresholds: [f64; 4],
    /// Average precision exactly as scikit-learn's `average_precision_score` (0.0 without true sites, as
    /// scikit-learn ≥ 1.1 returns; NaN when no position was stored).
    pub auprc: f64,
    /// Number of true sites (positions whose label is exactly 1).
    pub n_true: u64,
}

/// Computes [`RankingMetrics`] from the keys of every stored position (in storage order; sorted in place on
/// return) and the sorted indices of the true sites.
///
/// Top-k follows `print_topl_statistics`: `m = int(k · sites)` positions with the highest scores are selected,
/// except that `m == 0` (Python's `a[-0:]`) or `m ≥ n` selects every position. Ties at the boundary are resolved
/// as `np.argsort(kind="stable")` does (among equal scores the highest indices are taken first); upstream's
/// default unstable argsort leaves that choice platform-dependent.
pub fn ranking_metrics(keys: &mut [u32], positives: &[u64]) -> RankingMetrics {
    let n = keys.len() as u64;
    let n_true = positives.len() as u64;
    if n == 0 {
        return RankingMetrics {
            topk: 0.0,
            topk_all: [0.0; 4],
            thresholds: [f64::NAN; 4],
            auprc: f64::NAN,
            n_true,
        };
    }
    let mut pos_keys: Vec<u32> = positives.iter().map(|&i| keys[i as usize]).collect();
    pos_keys.sort_unstable();

    let hist_hi = histogram(keys, |k| Some((k >> 16) as usize));
    let mut topk_all = [0.0; 4];
    let mut thresholds = [0.0; 4];
    let mut min_key: Option<u32> = None;
    for (slot, &factor) in TOPK_FACTORS.iter().enumerate() {
        // Python: int(top_length * len(idx_true)), truncation of a float product.
        let m = (factor * n_true as f64) as u64;
        let (hits, selected, threshold_key) = if m == 0 || m >= n {
            let mk = *min_key.get_or_insert_with(|| keys.par_iter().copied().min().unwrap_or(0));
            (n_true, n, mk)
        } else {
            let (s, above) = kth_largest(keys, &hist_hi, m);
            let pos_above = (pos_keys.len() - pos_keys.partition_point(|&k| k <= s)) as u64;
            let tied_hits = tied_positive_hits(keys, positives, s, m - above);
            (pos_above + tied_hits, m, s)
        };
        let denom = selected.min(n_true) as f64 + 1e-10;
        topk_all[slot] = hits as f64 / denom;
        thresholds[slot] = key_score(threshold_key) as f64;
    }

    keys.par_sort_unstable();
    let auprc = average_precision(keys, &pos_keys);
    RankingMetrics {
        topk: topk_all[1],
        topk_all,
        thresholds,
        auprc,
        n_true,
    }
}

/// A 65536-bucket count of `keys` by `bucket` (None skips a key), in parallel.
fn histogram(keys: &[u32], bucket: impl Fn(u32) -> Option<usize> + Sync) -> Vec<u64> {
    keys.par_chunks(1 << 20)
        .map(|chunk| {
            let mut h = vec![0u64; 1 << 16];
            for &k in chunk {
                if let Some(b) = bucket(k) {
                    h[b] += 1;
                }
            }
            h
        })
        .reduce(
            || vec![0u64; 1 << 16],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// The key of the `m`-th largest element (1-based, `1 ≤ m ≤ n`) and how many elements are strictly larger.
fn kth_largest(keys: &[u32], hist_hi: &[u64], m: u64) -> (u32, u64) {
    let (hi, above_hi) = find_bucket(hist_hi, m);
    let hist_lo = histogram(keys, |k| {
        ((k >> 16) as usize == hi).then_some((k & 0xFFFF) as usize)
    });
    let (lo, above_lo) = find_bucket(&hist_lo, m - above_hi);
    (((hi as u32) << 16) | lo as u32, above_hi + above_lo)
}

/// Scanning buckets from the top: the bucket holding the `m`-th largest element and the count above it.
fn find_bucket(hist: &[u64], m: u64) -> (usize, u64) {
    let mut above = 0u64;
    for b in (0..hist.len()).rev() {
        if above + hist[b] >= m {
            return (b, above);
        }
        above += hist[b];
    }
    unreachable!("m is at most the number of keys")
}

/// Among the positions whose key equals `s`, the `r` with the highest indices are selected (stable-argsort
/// order); returns how many of them are true sites.
fn tied_positive_hits(keys: &[u32], positives: &[u64], s: u32, r: u64) -> u64 {
    let mut taken = 0u64;
    let mut hits = 0u64;
    let mut p = positives.len();
    for i in (0..keys.len()).rev() {
        if taken == r {
            break;
        }
        if keys[i] != s {
            continue;
        }
        taken += 1;
        while p > 0 && positives[p - 1] > i as u64 {
            p -= 1;
        }
        if p > 0 && positives[p - 1] == i as u64 {
            hits += 1;
        }
    }
    hits
}

/// scikit-learn's `average_precision_score` from all keys sorted ascending and the true sites' keys sorted
/// ascending: one point per distinct score, `AP = Σ (R_j − R_{j−1}) · P_j` over thresholds from high to low,
/// summed with compensation (numpy sums pairwise; both are within an ulp or so of the exact sum).
fn average_precision(sorted_keys: &[u32], sorted_pos_keys: &[u32]) -> f64 {
    let n_true = sorted_pos_keys.len() as f64;
    let mut tp = 0u64;
    let mut seen = 0u64;
    let mut prev_recall = 0.0f64;
    let mut sum = 0.0f64;
    let mut comp = 0.0f64;
    let mut end = sorted_keys.len();
    let mut pend = sorted_pos_keys.len();
    while end > 0 {
        let k = sorted_keys[end - 1];
        let start = sorted_keys[..end].partition_point(|&x| x < k);
        let pstart = sorted_pos_keys[..pend].partition_point(|&x| x < k);
        seen += (end - start) as u64;
        tp += (pend - pstart) as u64;
        end = start;
        pend = pstart;
        let precision = tp as f64 / seen as f64;
        // sklearn sets recall to 1 everywhere when there is no positive.
        let recall = if n_true > 0.0 {
            tp as f64 / n_true
        } else {
            1.0
        };
        let term = (recall - prev_recall) * precision;
        prev_recall = recall;
        let t = sum + term;
        if sum.abs() >= term.abs() {
            comp += (sum - t) + term;
        } else {
            comp += (term - t) + sum;
        }
        sum = t;
    }
    (sum + comp).max(0.0)
}
