//! The calibration formulas of OpenSpliceAI 0.0.7's `calibrate`, as pure functions over every position of a
//! split: the cross-entropy of temperature-scaled logits (the NLL it fits and reports) and its gradient,
//! the expected calibration error (15 equal-width bins of the max-softmax confidence), the Brier score per
//! class and the reliability curves (30 uniform bins per class, scikit-learn's `calibration_curve`).
//!
//! Each position is computed as PyTorch computes it in float32 (the division by the temperature, the
//! log-softmax, the softmax and their backward, operation for operation), so that the values that decide
//! the fit (a loss improving by more than 1e-6, probabilities rounding to 1) are upstream's. Sums over
//! positions run in f64 over fixed chunks, the same on any number of threads.

use rayon::prelude::*;

use super::temperature::{Temperature, CLASSES, T_MAX, T_MIN};

/// Positions per parallel chunk (fixed, so sums do not depend on the thread count).
const CHUNK: usize = 16_384;
/// Bins of the expected calibration error (upstream's `_ECELoss(n_bins=15)`).
pub const ECE_BINS: usize = 15;
/// Bins of the reliability curves (`calibration_curve(n_bins=30, strategy='uniform')`).
pub const RELIABILITY_BINS: usize = 30;

/// The logits and the class of every position of a split, position-major: position `i` has the logits
/// `logits[3i..3i + 3]` (non-splice, acceptor, donor) and the class `labels[i]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelledLogits {
    logits: Vec<f32>,
    labels: Vec<u8>,
}

impl LabelledLogits {
    /// Checks that there are three logits per label and that every label is a class (0, 1 or 2).
    pub fn new(logits: Vec<f32>, labels: Vec<u8>) -> Result<Self, String> {
        if logits.len() != CLASSES * labels.len() {
            return Err(format!(
                "{} logits for {} labels; expected {CLASSES} per label",
                logits.len(),
                labels.len()
            ));
        }
        if let Some(l) = labels.iter().find(|&&l| l as usize >= CLASSES) {
            return Err(format!("label {l} is not a class (0, 1 or 2)"));
        }
        Ok(Self { logits, labels })
    }

    /// Appends positions (the caller guarantees the shapes: [`Self::new`]'s rules).
    pub(crate) fn extend(&mut self, logits: &[f32], labels: &[u8]) {
        debug_assert_eq!(logits.len(), CLASSES * labels.len());
        self.logits.extend_from_slice(logits);
        self.labels.extend_from_slice(labels);
    }

    /// Number of positions.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no positions.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The logits, position-major.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// The classes.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }
}

/// The class of a one-hot label row as upstream reads it (`argmax`): the first largest entry, so an
/// unlabelled all-zero row counts as class 0 (non-splice).
pub fn label_class(y: [f32; CLASSES]) -> u8 {
    let mut best = 0;
    for c in 1..CLASSES {
        if y[c] > y[best] {
            best = c;
        }
    }
    best as u8
}

fn scaled(x: &[f32], t: &[f32; CLASSES]) -> [f32; CLASSES] {
    [x[0] / t[0], x[1] / t[1], x[2] / t[2]]
}

fn max3(z: &[f32; CLASSES]) -> f32 {
    z[0].max(z[1]).max(z[2])
}

/// PyTorch's float32 log-softmax of three values: `(z − max) − ln Σ exp(z − max)`.
pub fn log_softmax3(z: [f32; CLASSES]) -> [f32; CLASSES] {
    let m = max3(&z);
    let d = z.map(|v| v - m);
    let s = d[0].exp() + d[1].exp() + d[2].exp();
    let ls = s.ln();
    d.map(|v| v - ls)
}

/// PyTorch's float32 softmax of three values: `exp(z − max) · (1 / Σ)`.
pub fn softmax3(z: [f32; CLASSES]) -> [f32; CLASSES] {
    let m = max3(&z);
    let e = z.map(|v| (v - m).exp());
    let inv = 1.0 / (e[0] + e[1] + e[2]);
    e.map(|v| v * inv)
}

/// Sums `f(range)` over fixed chunks of positions in parallel, then adds the chunks in order.
fn chunked_sum<const N: usize>(
    n: usize,
    f: impl Fn(std::ops::Range<usize>) -> [f64; N] + Sync,
) -> [f64; N] {
    let parts: Vec<[f64; N]> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|k| f(k * CHUNK..((k + 1) * CHUNK).min(n)))
        .collect();
    let mut total = [0.0; N];
    for p in parts {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

/// The mean cross-entropy of `logits / clamp(t)` (`nn.CrossEntropyLoss()`), as float32, and its gradient
/// with respect to `t` as PyTorch's autograd computes it through the clamp (zero for a value outside
/// [0.05, 5]): per position `∂/∂z_c = 1[c = y]·g − exp(log p_c)·g` with `g = −1/M`, then
/// `∂/∂T_c = −∂/∂z_c · ((x_c / T_c) / T_c)`.
pub fn loss_and_grad(data: &LabelledLogits, t: Temperature) -> (f32, [f32; CLASSES]) {
    let n = data.len();
    if n == 0 {
        return (f32::NAN, [0.0; CLASSES]);
    }
    let tc = t.clamped().0;
    let g = -(1.0f32 / n as f32);
    let sums = chunked_sum::<4>(n, |range| {
        let mut acc = [0.0f64; 4];
        for i in range {
            let x = &data.logits[CLASSES * i..CLASSES * i + CLASSES];
            let y = data.labels[i] as usize;
            let lp = log_softmax3(scaled(x, &tc));
            acc[0] -= lp[y] as f64;
            for c in 0..CLASSES {
                let up = if c == y { g } else { 0.0 };
                let gz = up - lp[c].exp() * g;
                let q = (x[c] / tc[c]) / tc[c];
                acc[1 + c] += (-gz * q) as f64;
            }
        }
        acc
    });
    let loss = (sums[0] / n as f64) as f32;
    let mut grad = [0.0f32; CLASSES];
    for c in 0..CLASSES {
        let inside = (T_MIN..=T_MAX).contains(&t.0[c]);
        grad[c] = if inside { sums[1 + c] as f32 } else { 0.0 };
    }
    (loss, grad)
}

/// The mean cross-entropy of `logits / clamp(t)`: upstream's reported NLL.
pub fn nll(data: &LabelledLogits, t: Temperature) -> f32 {
    let n = data.len();
    if n == 0 {
        return f32::NAN;
    }
    let tc = t.clamped().0;
    let [s] = chunked_sum::<1>(n, |range| {
        let mut acc = 0.0f64;
        for i in range {
            let x = &data.logits[CLASSES * i..CLASSES * i + CLASSES];
            acc -= log_softmax3(scaled(x, &tc))[data.labels[i] as usize] as f64;
        }
        [acc]
    });
    (s / n as f64) as f32
}

/// `softmax(logits / clamp(t))` of every position, position-major (float32, as upstream's).
pub fn probabilities(data: &LabelledLogits, t: Temperature) -> Vec<f32> {
    let tc = t.clamped().0;
    let mut out = vec![0.0f32; data.logits.len()];
    out.par_chunks_mut(CHUNK * CLASSES)
        .zip(data.logits.par_chunks(CHUNK * CLASSES))
        .for_each(|(o, x)| {
            for (oo, xx) in o.chunks_exact_mut(CLASSES).zip(x.chunks_exact(CLASSES)) {
                oo.copy_from_slice(&softmax3(scaled(xx, &tc)));
            }
        });
    out
}

/// The bin edges of the ECE as `torch.linspace(0, 1, 16)` makes them in float32 (the first half counted
/// up from 0, the second down from 1).
fn ece_edges() -> [f32; ECE_BINS + 1] {
    let step = 1.0f32 / ECE_BINS as f32;
    let half = ECE_BINS.div_ceil(2);
    std::array::from_fn(|i| {
        if i < half {
            step * i as f32
        } else {
            1.0 - step * (ECE_BINS - i) as f32
        }
    })
}

/// The expected calibration error of probabilities (position-major, three per position): the positions
/// are binned by their largest probability (bin b holds lower_b < confidence ≤ upper_b), and the ECE is
/// `Σ_b |mean confidence − accuracy| · (share of positions in b)`, accuracy being how often the most
/// probable class (the first, on ties) is the label.
pub fn ece(probs: &[f32], labels: &[u8]) -> f32 {
    let n = labels.len();
    if n == 0 {
        return f32::NAN;
    }
    let edges = ece_edges();
    // Per bin: count, summed confidence, correct predictions.
    let sums = chunked_sum::<{ 3 * ECE_BINS }>(n, |range| {
        let mut acc = [0.0f64; 3 * ECE_BINS];
        for i in range {
            let p = &probs[CLASSES * i..CLASSES * i + CLASSES];
            let mut pred = 0;
            for c in 1..CLASSES {
                if p[c] > p[pred] {
                    pred = c;
                }
            }
            let conf = p[pred];
            let b = edges[1..].partition_point(|&u| u < conf);
            if b >= ECE_BINS || conf <= edges[b] {
                continue;
            }
            acc[3 * b] += 1.0;
            acc[3 * b + 1] += conf as f64;
            if pred == labels[i] as usize {
                acc[3 * b + 2] += 1.0;
            }
        }
        acc
    });
    let mut e = 0.0f64;
    for b in 0..ECE_BINS {
        let count = sums[3 * b];
        if count > 0.0 {
            let gap = (sums[3 * b + 1] / count - sums[3 * b + 2] / count).abs();
            e += gap * (count / n as f64);
        }
    }
    e as f32
}

/// The Brier score of each class: the mean of `(1[label = c] − p_c)²` over positions.
pub fn brier(probs: &[f32], labels: &[u8]) -> [f64; CLASSES] {
    let n = labels.len();
    let sums = chunked_sum::<CLASSES>(n, |range| {
        let mut acc = [0.0f64; CLASSES];
        for i in range {
            for (c, a) in acc.iter_mut().enumerate() {
                let y = if labels[i] as usize == c { 1.0 } else { 0.0 };
                let d = y - probs[CLASSES * i + c] as f64;
                *a += d * d;
            }
        }
        acc
    });
    sums.map(|s| s / n as f64)
}

/// One class's reliability curve, as upstream saves it (`calibration_data_*.npz`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reliability {
    /// Share of positions of the class in each non-empty bin.
    pub prob_true: Vec<f64>,
    /// Mean probability of the class in each non-empty bin.
    pub prob_pred: Vec<f64>,
    /// Positions per bin, all 30 bins (`np.digitize` on the edges: a bin holds lower ≤ p < upper, and a
    /// probability of exactly 1 falls in none).
    pub bin_counts: Vec<i64>,
}

/// The reliability curve of class `class` over `n_bins` uniform bins: scikit-learn's
/// `calibration_curve(y == class, p_class, n_bins, strategy='uniform')` (a bin holds lower < p ≤ upper,
/// the first also 0 and the last also everything above its lower edge) and upstream's `bin_counts`.
pub fn reliability(probs: &[f32], labels: &[u8], class: usize, n_bins: usize) -> Reliability {
    // np.linspace(0, 1, n_bins + 1): k · (1 / n_bins), the last exactly 1.
    let edges: Vec<f64> = (0..=n_bins)
        .map(|k| {
            if k == n_bins {
                1.0
            } else {
                k as f64 * (1.0 / n_bins as f64)
            }
        })
        .collect();
    let interior = &edges[1..n_bins];
    let mut sum = vec![0.0f64; n_bins];
    let mut hits = vec![0.0f64; n_bins];
    let mut total = vec![0u64; n_bins];
    let mut counts = vec![0i64; n_bins];
    for (i, &label) in labels.iter().enumerate() {
        let p = probs[CLASSES * i + class] as f64;
        let b = interior.partition_point(|&e| e < p);
        sum[b] += p;
        if label as usize == class {
            hits[b] += 1.0;
        }
        total[b] += 1;
        let d = edges.partition_point(|&e| e <= p);
        if (1..=n_bins).contains(&d) {
            counts[d - 1] += 1;
        }
    }
    let mut r = Reliability {
        bin_counts: counts,
        ..Reliability::default()
    };
    for b in 0..n_bins {
        if total[b] > 0 {
            r.prob_true.push(hits[b] / total[b] as f64);
            r.prob_pred.push(sum[b] / total[b] as f64);
        }
    }
    r
}

/// Everything upstream reports of one split under one temperature, plus the histograms of the report.
#[derive(Debug, Clone)]
pub struct SplitMetrics {
    /// The temperature (clamped) the metrics are of.
    pub temperature: Temperature,
    /// Mean cross-entropy.
    pub nll: f32,
    /// Expected calibration error.
    pub ece: f32,
    /// Brier score per class.
    pub brier: [f64; CLASSES],
    /// Reliability curve per class.
    pub curves: [Reliability; CLASSES],
    /// Per class, the positions of that class counted in [`RELIABILITY_BINS`] uniform bins of their
    /// probability for it (the score distributions of the report).
    pub histograms: [Vec<u64>; CLASSES],
}

/// The metrics of `data` under temperature `t`.
pub fn split_metrics(data: &LabelledLogits, t: Temperature) -> SplitMetrics {
    let probs = probabilities(data, t);
    let labels = data.labels();
    let curves = std::array::from_fn(|c| reliability(&probs, labels, c, RELIABILITY_BINS));
    let histograms = std::array::from_fn(|c| {
        let mut h = vec![0u64; RELIABILITY_BINS];
        for (i, &l) in labels.iter().enumerate() {
            if l as usize == c {
                let p = probs[CLASSES * i + c] as f64;
                let b = ((p * RELIABILITY_BINS as f64) as usize).min(RELIABILITY_BINS - 1);
                h[b] += 1;
            }
        }
        h
    });
    SplitMetrics {
        temperature: t.clamped(),
        nll: nll(data, t),
        ece: ece(&probs, labels),
        brier: brier(&probs, labels),
        curves,
        histograms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> LabelledLogits {
        LabelledLogits::new(
            vec![
                4.0, -1.0, -2.0, //
                0.5, 0.4, -3.0, //
                -1.0, 2.0, 0.0, //
                1.0, 1.0, 3.0,
            ],
            vec![0, 1, 1, 0],
        )
        .unwrap()
    }

    #[test]
    fn shapes_are_checked() {
        assert!(LabelledLogits::new(vec![0.0; 5], vec![0, 1]).is_err());
        assert!(LabelledLogits::new(vec![0.0; 3], vec![3]).is_err());
    }

    #[test]
    fn argmax_labels() {
        assert_eq!(label_class([0.0, 0.0, 0.0]), 0);
        assert_eq!(label_class([0.0, 1.0, 0.0]), 1);
        assert_eq!(label_class([0.0, 0.0, 1.0]), 2);
    }

    /// The NLL is the mean of −log softmax at the label, in f64 within float32 rounding.
    #[test]
    fn nll_is_the_mean_cross_entropy() {
        let d = data();
        let t = Temperature([1.5, 0.7, 2.0]);
        let mut want = 0.0f64;
        for i in 0..d.len() {
            let z: Vec<f64> = (0..3)
                .map(|c| d.logits()[3 * i + c] as f64 / t.0[c] as f64)
                .collect();
            let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
            want += lse - z[d.labels()[i] as usize];
        }
        want /= d.len() as f64;
        let got = nll(&d, t) as f64;
        assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");
        assert_eq!(loss_and_grad(&d, t).0, nll(&d, t));
    }

    /// The gradient matches a central difference of the loss in f64.
    #[test]
    fn gradient_matches_finite_differences() {
        let d = data();
        let t = Temperature([1.3, 0.8, 2.2]);
        let (_, g) = loss_and_grad(&d, t);
        let f = |t: [f64; 3]| -> f64 {
            let mut s = 0.0;
            for i in 0..d.len() {
                let z: Vec<f64> = (0..3)
                    .map(|c| d.logits()[3 * i + c] as f64 / t[c])
                    .collect();
                let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
                s += lse - z[d.labels()[i] as usize];
            }
            s / d.len() as f64
        };
        for c in 0..3 {
            let h = 1e-5;
            let mut a = t.0.map(|v| v as f64);
            let mut b = a;
            a[c] += h;
            b[c] -= h;
            let fd = (f(a) - f(b)) / (2.0 * h);
            assert!(
                (g[c] as f64 - fd).abs() < 1e-4,
                "class {c}: {} vs {fd}",
                g[c]
            );
        }
        // Outside the clamp no gradient flows.
        let (_, g) = loss_and_grad(&d, Temperature([0.01, 1.0, 9.0]));
        assert_eq!((g[0], g[2]), (0.0, 0.0));
    }

    #[test]
    fn ece_by_hand() {
        // Confidences 0.9 (right), 0.58 (wrong), 0.65 (right), each alone in its bin.
        let probs = [0.9, 0.05, 0.05, 0.58, 0.32, 0.1, 0.2, 0.65, 0.15];
        let labels = [0, 1, 1];
        let want = (0.1 + 0.58 + 0.35) / 3.0;
        assert!((ece(&probs, &labels) as f64 - want).abs() < 1e-6);
        // Both in one bin, which holds every position: |mean confidence − accuracy|.
        let probs = [0.62, 0.3, 0.08, 0.3, 0.64, 0.06];
        let want = (0.63f64 - 0.5).abs();
        assert!((ece(&probs, &[0, 0]) as f64 - want).abs() < 1e-6);
        // torch.linspace(0, 1, 16) in float32: 0.6 lies just above the seventh upper edge.
        let e = ece_edges();
        assert_eq!((e[0], e[15]), (0.0, 1.0));
        assert!(e[9] < 0.6f32);
    }

    #[test]
    fn brier_and_reliability_by_hand() {
        let probs = [0.9, 0.05, 0.05, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0];
        let labels = [0, 1, 2];
        let b = brier(&probs, &labels);
        assert!((b[0] - (0.01 + 0.25 + 0.0) / 3.0).abs() < 1e-7);
        let r = reliability(&probs, &labels, 2, 30);
        // p = 0.05 (bin 1), 0.0 (bin 0), 1.0 (bin 29 in the curve, no bin in the counts).
        assert_eq!(r.prob_pred.len(), 3);
        assert_eq!(r.prob_true, vec![0.0, 0.0, 1.0]);
        assert_eq!(r.bin_counts.iter().sum::<i64>(), 2);
        assert_eq!((r.bin_counts[0], r.bin_counts[1]), (1, 1));
        // 0.5 = 15 · (1/30) sits on an edge: the counts put it in the bin above (lower ≤ p).
        let r = reliability(&probs, &labels, 1, 30);
        assert_eq!(r.bin_counts[15], 1);
        assert_eq!(r.prob_pred.len(), 3);
        assert!((r.prob_pred[2] - 0.5).abs() < 1e-12);
    }
}
