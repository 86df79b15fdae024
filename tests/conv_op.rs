//! The dilated conv op against stock candle's conv1d (forward), an f64 reference (gradients) and
//! finite differences, for every (W, AR) of the flanking table plus 1×1 convs, odd batches and lengths.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::compare::{tensor_max_abs_diff, values};
use common::ops::{conv_reference, model_shapes, rand_vec, weighted_sum_grads};
use openspliceai_rs::ops::conv::{conv1d_same, conv1d_same_reference};
use rand::{rngs::StdRng, SeedableRng};

#[test]
fn forward_matches_stock_candle_conv1d_for_every_model_shape() {
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(1);
    for (k, d) in model_shapes() {
        for &(n, l) in &[(1usize, 97usize), (3, 301), (2, 1200)] {
            let (cin, cout) = (32, 32);
            let x = Tensor::from_vec(rand_vec(&mut rng, n * cin * l), (n, cin, l), &dev).unwrap();
            let w =
                Tensor::from_vec(rand_vec(&mut rng, cout * cin * k), (cout, cin, k), &dev).unwrap();
            let b = Tensor::from_vec(rand_vec(&mut rng, cout), cout, &dev).unwrap();
            let ours = conv1d_same(&x, &w, &b, d).unwrap();
            let pad = (k - 1) * d / 2;
            let stock = x
                .conv1d(&w, pad, 1, d, 1)
                .unwrap()
                .broadcast_add(&b.reshape((1, cout, 1)).unwrap())
                .unwrap();
            let diff = tensor_max_abs_diff(&ours, &stock);
            assert!(
                diff < 1e-4,
                "k={k} d={d} n={n} l={l}: max |ours - candle| = {diff}"
            );
            let refpath = conv1d_same_reference(&x, &w, &b, d).unwrap();
            let diff = tensor_max_abs_diff(&ours, &refpath);
            assert!(
                diff < 1e-4,
                "k={k} d={d}: max |ours - reference path| = {diff}"
            );
        }
    }
}

type Conv = fn(&Tensor, &Tensor, &Tensor, usize) -> candle_core::Result<Tensor>;

/// Gradients of `conv` (our op, or the stock-op reference) against the f64 reference and central finite
/// differences, at batch 3 (candle's own conv1d backward is wrong at batch ≥ 2).
fn check_gradients(conv: Conv, what: &str) {
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(2);
    for (k, d) in model_shapes() {
        // Odd batch and length; length shorter than the receptive field for the widest kernels too.
        let (n, cin, cout, l) = (3usize, 5usize, 7usize, 157usize);
        let xv = rand_vec(&mut rng, n * cin * l);
        let wv = rand_vec(&mut rng, cout * cin * k);
        let rv = rand_vec(&mut rng, n * cout * l);
        let x =
            Var::from_tensor(&Tensor::from_vec(xv.clone(), (n, cin, l), &dev).unwrap()).unwrap();
        let w =
            Var::from_tensor(&Tensor::from_vec(wv.clone(), (cout, cin, k), &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::zeros(cout, DType::F32, &dev).unwrap()).unwrap();
        let r = Tensor::from_vec(rv.clone(), (n, cout, l), &dev).unwrap();
        let y = conv(x.as_tensor(), w.as_tensor(), b.as_tensor(), d).unwrap();
        let grads = weighted_sum_grads(&y, &r);
        let exact = conv_reference(&xv, &wv, &vec![0.0; cout], &rv, (n, cin, cout, l, k, d));

        let check = |name: &str, got: &Tensor, want: &[f64]| {
            let got = values(got);
            let scale = want.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                let err = (*g as f64 - w).abs() / scale;
                assert!(
                    err < 1e-5,
                    "{what} k={k} d={d} {name}[{i}]: got {g}, want {w} (rel {err:e})"
                );
            }
        };
        check("y", &y, &exact.y);
        check("grad_x", grads.get(x.as_tensor()).unwrap(), &exact.gx);
        check("grad_w", grads.get(w.as_tensor()).unwrap(), &exact.gw);
        // grad_b = Σ r over batch and positions.
        check("grad_b", grads.get(b.as_tensor()).unwrap(), &exact.gb);

        // Central finite differences of the (linear) loss at a few weight and input elements.
        let loss_at = |xv: &[f32], wv: &[f32]| -> f64 {
            let x = Tensor::from_vec(xv.to_vec(), (n, cin, l), &dev).unwrap();
            let w = Tensor::from_vec(wv.to_vec(), (cout, cin, k), &dev).unwrap();
            let y = conv(&x, &w, b.as_tensor(), d).unwrap();
            (&y * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let h = 0.5f32;
        let gw = values(grads.get(w.as_tensor()).unwrap());
        for &i in &[0usize, wv.len() / 2, wv.len() - 1] {
            let (mut wp, mut wm) = (wv.clone(), wv.clone());
            wp[i] += h;
            wm[i] -= h;
            let fd = (loss_at(&xv, &wp) - loss_at(&xv, &wm)) / (2.0 * h as f64);
            assert!(
                (fd - gw[i] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
                "{what} k={k} d={d} w[{i}]: fd {fd} vs {}",
                gw[i]
            );
        }
        let gx = values(grads.get(x.as_tensor()).unwrap());
        for &i in &[0usize, xv.len() / 3, xv.len() - 1] {
            let (mut xp, mut xm) = (xv.clone(), xv.clone());
            xp[i] += h;
            xm[i] -= h;
            let fd = (loss_at(&xp, &wv) - loss_at(&xm, &wv)) / (2.0 * h as f64);
            assert!(
                (fd - gx[i] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
                "{what} k={k} d={d} x[{i}]: fd {fd} vs {}",
                gx[i]
            );
        }
    }
}

#[test]
fn gradients_match_f64_reference_and_finite_differences() {
    check_gradients(conv1d_same, "conv1d_same");
}

/// The stock-op graph CUDA and Metal run (and the CPU with `OSAI_OPS=reference`).
#[test]
fn reference_conv_gradients_match_f64_reference_and_finite_differences() {
    check_gradients(conv1d_same_reference, "conv1d_same_reference");
}

#[test]
fn even_kernels_are_rejected() {
    let dev = Device::Cpu;
    let x = Tensor::zeros((1, 2, 10), DType::F32, &dev).unwrap();
    let w = Tensor::zeros((2, 2, 4), DType::F32, &dev).unwrap();
    let b = Tensor::zeros(2, DType::F32, &dev).unwrap();
    let err = conv1d_same(&x, &w, &b, 1).unwrap_err().to_string();
    assert!(err.contains("odd kernel"), "{err}");
}

/// The direct AVX-512 kernels (where the CPU has them) against the im2col + gemm kernels and the f64
/// reference, at the model's channel counts and at odd ones (channel blocks past the end), for every
/// (W, AR) and lengths shorter and longer than one task's tile.
#[test]
fn direct_kernels_match_gemm_kernels_and_f64_reference() {
    use openspliceai_rs::ops::conv::kernels;
    let mut rng = StdRng::seed_from_u64(3);
    let probe = kernels::forward_direct(&[0.0; 4], &[0.0; 1], None, (1, 1, 1, 4, 1, 1));
    if probe.is_none() {
        eprintln!("skipping: the direct kernels need AVX-512F, which this CPU lacks");
        return;
    }
    let mut cases = Vec::new();
    for (k, d) in model_shapes() {
        cases.push((2usize, 32usize, 32usize, 1000usize, k, d));
        cases.push((3, 5, 7, 157, k, d));
    }
    // Longer than the forward (960) and weight-gradient (1920) tiles, with tails.
    cases.push((2, 32, 32, 5401, 11, 4));
    cases.push((1, 4, 32, 2049, 1, 1));
    cases.push((1, 32, 3, 1999, 1, 1));
    for (n, cin, cout, l, k, d) in cases {
        let x = rand_vec(&mut rng, n * cin * l);
        let w = rand_vec(&mut rng, cout * cin * k);
        let b = rand_vec(&mut rng, cout);
        let g = rand_vec(&mut rng, n * cout * l);
        let dims = (n, cin, cout, l, k, d);
        // The reference without bias: the bias is added below.
        let exact = conv_reference(&x, &w, &vec![0.0; cout], &g, dims);
        let (y_ref, gw_ref) = (exact.y, exact.gw);
        let y_direct = kernels::forward_direct(&x, &w, Some(&b), dims).unwrap();
        let y_gemm = kernels::forward_gemm(&x, &w, Some(&b), dims);
        let scale = y_ref.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, ((&yd, &yg), &yr)) in y_direct.iter().zip(&y_gemm).zip(&y_ref).enumerate() {
            let want = yr + b[(i / l) % cout] as f64;
            assert!(
                (yd as f64 - want).abs() < 1e-5 * scale && (yd - yg).abs() < 1e-5 * scale as f32,
                "{dims:?} y[{i}]: direct {yd}, gemm {yg}, f64 {want}"
            );
        }
        let gw_direct = kernels::grad_weight_direct(&x, &g, dims).unwrap();
        let gw_gemm = kernels::grad_weight_gemm(&x, &g, dims);
        let scale = gw_ref.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, ((&a, &b), &r)) in gw_direct.iter().zip(&gw_gemm).zip(&gw_ref).enumerate() {
            assert!(
                (a as f64 - r).abs() < 1e-5 * scale && (a - b).abs() < 1e-5 * scale as f32,
                "{dims:?} gw[{i}]: direct {a}, gemm {b}, f64 {r}"
            );
        }
    }
}

/// The fused conv (input map, output map, residual, output sums) against the same steps composed from
/// stock candle ops, where the fused kernel runs.
#[test]
fn fused_conv_matches_composed_ops() {
    use openspliceai_rs::ops::conv::{conv1d_same_fused, fused_available, ChannelMap, Fusion};
    let dev = Device::Cpu;
    if !fused_available(&dev) {
        eprintln!("skipping: the fused conv needs AVX-512F, which this CPU lacks");
        return;
    }
    let mut rng = StdRng::seed_from_u64(4);
    let map = |rng: &mut StdRng, c: usize| ChannelMap {
        scale: rand_vec(rng, c).iter().map(|v| 0.5 + v.abs()).collect(),
        shift: rand_vec(rng, c),
        slope: 0.1,
    };
    let apply = |t: &Tensor, m: &ChannelMap| -> Tensor {
        let c = m.scale.len();
        let s = Tensor::from_vec(m.scale.clone(), (1, c, 1), &dev).unwrap();
        let h = Tensor::from_vec(m.shift.clone(), (1, c, 1), &dev).unwrap();
        let z = t.broadcast_mul(&s).unwrap().broadcast_add(&h).unwrap();
        z.maximum(&(&z * m.slope as f64).unwrap()).unwrap()
    };
    for &(n, cin, cout, l, k, d) in &[
        (2usize, 32usize, 32usize, 1000usize, 11usize, 4usize),
        (3, 5, 7, 157, 11, 1),
        (1, 32, 32, 2001, 1, 1),
    ] {
        let x = Tensor::from_vec(rand_vec(&mut rng, n * cin * l), (n, cin, l), &dev).unwrap();
        let w = Tensor::from_vec(rand_vec(&mut rng, cout * cin * k), (cout, cin, k), &dev).unwrap();
        let b = Tensor::from_vec(rand_vec(&mut rng, cout), cout, &dev).unwrap();
        let r = Tensor::from_vec(rand_vec(&mut rng, n * cout * l), (n, cout, l), &dev).unwrap();
        let (pre, post) = (map(&mut rng, cin), map(&mut rng, cout));
        let fusion = Fusion {
            pre: Some(&pre),
            post: Some(&post),
            residual: Some(&r),
            sums: true,
        };
        let (y, sums) = conv1d_same_fused(&x, &w, &b, d, fusion).unwrap().unwrap();
        let want = (apply(&conv1d_same(&apply(&x, &pre), &w, &b, d).unwrap(), &post) + &r).unwrap();
        let diff = tensor_max_abs_diff(&y, &want);
        assert!(
            diff < 1e-4,
            "{n}x{cin}->{cout} l={l} k={k}: max |fused - composed| = {diff}"
        );
        let yv = want.to_vec3::<f32>().unwrap();
        for (co, &(s1, s2)) in sums.unwrap().iter().enumerate() {
            let vals = yv.iter().flat_map(|win| win[co].iter().map(|&v| v as f64));
            let (w1, w2) = vals.fold((0.0, 0.0), |(a, b), v| (a + v, b + v * v));
            assert!(
                (s1 - w1).abs() < 1e-3 * (1.0 + w1.abs()),
                "Σy[{co}]: {s1} vs {w1}"
            );
            assert!(
                (s2 - w2).abs() < 1e-3 * (1.0 + w2.abs()),
                "Σy²[{co}]: {s2} vs {w2}"
            );
        }
        // Without maps or residual it is the plain conv.
        let (plain, none) = conv1d_same_fused(&x, &w, &b, d, Fusion::default())
            .unwrap()
            .unwrap();
        assert!(none.is_none());
        assert!(tensor_max_abs_diff(&plain, &conv1d_same(&x, &w, &b, d).unwrap()) < 1e-5);
    }
}
