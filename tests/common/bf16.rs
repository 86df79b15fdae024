//! The bf16 tests' shared pieces (`tests/bf16.rs`, `tests/amx.rs`, `tests/bf16_plan.rs`): the conv shapes,
//! bf16 rounding of a slice, the two checks every bf16 forward kernel passes (the error bounds against f64,
//! and agreement with another kernel under every fusion), and fly windows for whole-model comparisons.
//!
//! Error bounds, for operands in [-1, 1) and a reduction of R products: against the exact conv of the
//! unrounded operands each operand is rounded to 8 significant bits (≤ 2·2^-8 per product) and the errors
//! add like a random walk, so |y − y_exact| ≤ 4 · 2^-8 · √R (a factor 2 for the tails); against the exact
//! conv of the *rounded* operands only f32 accumulation differs: 1e-6 · R.

use candle_core::{Device, Tensor};
use openspliceai_rs::model::FlankConfig;
use openspliceai_rs::ops::conv::kernels::{Dims, FusedVecs};
use openspliceai_rs::ops::conv::{ChannelMap, Fusion};
use openspliceai_rs::ops::conv_bf16::round_bf16;
use rand::{rngs::StdRng, SeedableRng};

use super::ops::{conv_reference, model_shapes, rand_vec};

/// A fused forward kernel on slices, as `conv::kernels` exposes them; `None` where it does not run.
pub type Kernel<'k> =
    &'k dyn Fn(&[f32], &[f32], Option<&[f32]>, Dims, Fusion<'_, &[f32]>) -> Option<FusedVecs>;

/// `(Cin, Cout, K, d)` of every conv of the four models (32 → 32 at each (K, d), the first 4 → 32 and the
/// last 32 → 3 1×1 convs), and odd channel counts that pad a pair or whole tiles.
pub fn conv_shapes() -> Vec<(usize, usize, usize, usize)> {
    let mut v: Vec<_> = model_shapes()
        .into_iter()
        .map(|(k, d)| (32, 32, k, d))
        .collect();
    v.extend([(4, 32, 1, 1), (32, 3, 1, 1), (5, 7, 11, 4), (40, 20, 3, 2)]);
    v
}

/// `v` rounded to bf16.
pub fn rounded(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| round_bf16(x)).collect()
}

/// The largest |a − b| of f32 values against f64 ones.
pub fn worst(a: &[f32], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .fold(0f64, |m, (&x, &y)| m.max((x as f64 - y).abs()))
}

/// The largest |a − b|.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// `kernel` (named `what` in failures) within both error bounds of the f64 conv for every shape, at two
/// windows of 1200 positions (two tiles with a partial micro-tile) and one of 37.
pub fn assert_forward_within_bf16_bounds(seed: u64, what: &str, kernel: Kernel) {
    let mut rng = StdRng::seed_from_u64(seed);
    for (cin, cout, k, d) in conv_shapes() {
        for &(n, l) in &[(2usize, 1200usize), (1, 37)] {
            let dims: Dims = (n, cin, cout, l, k, d);
            let x = rand_vec(&mut rng, n * cin * l);
            let w = rand_vec(&mut rng, cout * cin * k);
            let b = rand_vec(&mut rng, cout);
            let (y, _) = kernel(&x, &w, Some(&b), dims, Fusion::default()).unwrap();
            let zeros = vec![0f32; n * cout * l];
            let at = format!("{what}: Cin {cin} Cout {cout} K {k} d {d} L {l}");
            let r = (cin * k) as f64;
            let of_rounded = conv_reference(&rounded(&x), &rounded(&w), &b, &zeros, dims).y;
            let e = worst(&y, &of_rounded);
            assert!(e <= 1e-6 * r, "{at}: max |y − exact of rounded| = {e:e}");
            let exact = conv_reference(&x, &w, &b, &zeros, dims).y;
            let (e, bound) = (worst(&y, &exact), 4.0 * (2f64).powi(-8) * r.sqrt());
            assert!(e <= bound, "{at}: max |y − exact| = {e:e} > {bound:e}");
        }
    }
}

/// `a` and `b` (named in `what`) agree on every shape under every fusion (none; pre + post maps with the
/// sums; pre map + residual with the sums): outputs within 1e-5 · Cin·K, sums within f32 summation
/// noise. Cases where `b` does not run are skipped; `a` must run.
pub fn assert_fused_kernels_agree(seed: u64, what: &str, a: Kernel, b: Kernel) {
    let mut rng = StdRng::seed_from_u64(seed);
    for (cin, cout, k, d) in conv_shapes() {
        let (n, l) = (2usize, 1000usize);
        let dims: Dims = (n, cin, cout, l, k, d);
        let x = rand_vec(&mut rng, n * cin * l);
        let w = rand_vec(&mut rng, cout * cin * k);
        let bias = rand_vec(&mut rng, cout);
        let res = rand_vec(&mut rng, n * cout * l);
        let map = |c: usize, rng: &mut StdRng| ChannelMap {
            scale: rand_vec(rng, c),
            shift: rand_vec(rng, c),
            slope: 0.1,
        };
        let (pre, post) = (map(cin, &mut rng), map(cout, &mut rng));
        let fusions = [
            Fusion::default(),
            Fusion {
                pre: Some(&pre),
                post: Some(&post),
                residual: None,
                sums: true,
            },
            Fusion {
                pre: Some(&pre),
                post: None,
                residual: Some(res.as_slice()),
                sums: true,
            },
        ];
        for (fi, fuse) in fusions.into_iter().enumerate() {
            let (ya, sa) = a(&x, &w, Some(&bias), dims, fuse).unwrap();
            let Some((yb, sb)) = b(&x, &w, Some(&bias), dims, fuse) else {
                continue;
            };
            let scale = (cin * k) as f32;
            let diff = max_abs_diff(&ya, &yb);
            assert!(
                diff <= 1e-5 * scale,
                "{what}: Cin {cin} Cout {cout} K {k} d {d} fusion {fi}: max |a − b| = {diff:e}"
            );
            assert_eq!(sa.is_some(), sb.is_some());
            if let (Some(sa), Some(sb)) = (sa, sb) {
                for ((a1, a2), (b1, b2)) in sa.iter().zip(&sb) {
                    let tol = 1e-4 * (n * l) as f64 * scale as f64;
                    assert!((a1 - b1).abs() <= tol && (a2 - b2).abs() <= tol * 10.0);
                }
            }
        }
    }
}

/// `n` windows of the model's input length from the fly region, one-hot (N, 4, 5000 + CL).
pub fn fly_windows(cfg: &FlankConfig, n: usize) -> Option<Tensor> {
    let data = super::PvData::locate()?;
    let text = std::fs::read_to_string(data.input("region200k.fa")).unwrap();
    let seq: Vec<u8> = text
        .lines()
        .filter(|l| !l.starts_with('>'))
        .flat_map(|l| l.trim().bytes())
        .collect();
    let len = cfg.input_len();
    let mut x = vec![0f32; n * 4 * len];
    for (i, out) in x.chunks_mut(4 * len).enumerate() {
        let start = 20_000 + i * 5000;
        openspliceai_rs::genome::seq::encode_into(&seq[start..start + len], out, len, 0);
    }
    Some(Tensor::from_vec(x, (n, 4, len), &Device::Cpu).unwrap())
}

/// The largest and the mean |a − b| of two tensors.
pub fn tensor_diff(a: &Tensor, b: &Tensor) -> (f32, f64) {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mean = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() as f64)
        .sum::<f64>()
        / a.len() as f64;
    (max_abs_diff(&a, &b), mean)
}
