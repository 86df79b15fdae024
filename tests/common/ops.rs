//! The op tests' shared pieces: random inputs, the model's (kernel, dilation) pairs, the gradients of a
//! weighted sum, and an f64 reference conv with its gradients.

use candle_core::backprop::GradStore;
use candle_core::Tensor;
use openspliceai_rs::model::CONFIGS;
use rand::{rngs::StdRng, Rng};

/// `n` values uniform in [lo, hi).
pub fn rand_vec_in(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// `n` values uniform in [-1, 1).
pub fn rand_vec(rng: &mut StdRng, n: usize) -> Vec<f32> {
    rand_vec_in(rng, n, -1.0, 1.0)
}

/// Every (kernel, dilation) pair the model uses, plus the 1×1 convs.
pub fn model_shapes() -> Vec<(usize, usize)> {
    let mut v = vec![(1, 1)];
    for c in CONFIGS.iter() {
        for (&k, &d) in c.kernel_sizes.iter().zip(c.dilations) {
            if !v.contains(&(k, d)) {
                v.push((k, d));
            }
        }
    }
    v
}

/// The gradients of Σ y·r (a loss whose gradient with respect to y is r) for every variable y depends on.
pub fn weighted_sum_grads(y: &Tensor, r: &Tensor) -> GradStore {
    (y * r).unwrap().sum_all().unwrap().backward().unwrap()
}

/// An f64 "same" conv and the gradients of Σ y·r.
pub struct ConvReference {
    /// y = conv(x, w) + bias, (n, c_out, l).
    pub y: Vec<f64>,
    /// ∂/∂x, (n, c_in, l).
    pub gx: Vec<f64>,
    /// ∂/∂w, (c_out, c_in, k).
    pub gw: Vec<f64>,
    /// ∂/∂bias, (c_out).
    pub gb: Vec<f64>,
}

/// The f64 reference of a "same"-padded dilated conv (padding (k − 1)·d / 2 each side) of x (n, cin, l) with
/// w (cout, cin, k) plus `bias` (cout), and the gradients of Σ y·r for r (n, cout, l).
#[allow(clippy::needless_range_loop)]
pub fn conv_reference(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    r: &[f32],
    (n, cin, cout, l, k, d): (usize, usize, usize, usize, usize, usize),
) -> ConvReference {
    let pad = ((k - 1) * d / 2) as isize;
    let mut y = vec![0f64; n * cout * l];
    let mut gx = vec![0f64; n * cin * l];
    let mut gw = vec![0f64; cout * cin * k];
    let mut gb = vec![0f64; cout];
    for b in 0..n {
        for co in 0..cout {
            for p in 0..l {
                let yi = (b * cout + co) * l + p;
                y[yi] = bias[co] as f64;
                let ri = r[yi] as f64;
                gb[co] += ri;
                for kk in 0..k {
                    let s = p as isize + (kk * d) as isize - pad;
                    if s < 0 || s >= l as isize {
                        continue;
                    }
                    for ci in 0..cin {
                        let xi = (b * cin + ci) * l + s as usize;
                        let wi = (co * cin + ci) * k + kk;
                        y[yi] += w[wi] as f64 * x[xi] as f64;
                        gx[xi] += w[wi] as f64 * ri;
                        gw[wi] += x[xi] as f64 * ri;
                    }
                }
            }
        }
    }
    ConvReference { y, gx, gw, gb }
}
