//! The GEMM plan of the CUDA conv (`ops/gemm_plan.rs`), run by its CPU executor, against an f64
//! reference conv and its gradients, for every (W, AR) of the model at 32 channels, odd lengths (also
//! shorter than the receptive field), one and several windows, and odd channel counts. The executor
//! itself is checked against plain loops on random calls (transposes, offsets, strides, β), and
//! out-of-bounds plans are refused. These are what make the cuBLAS path trustworthy without a GPU.

mod common;

use common::compare::rel_err;
use common::ops::{conv_reference, model_shapes, rand_vec};
use openspliceai_rs::ops::gemm_plan::{
    execute_cpu, execute_naive, forward_plan, host, weight_grad_plan, ConvShape, GemmCall, Trans,
};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// The f64 reference conv (y with bias, ∂/∂x and ∂/∂w of Σ y·g) for a plan's shape.
fn reference(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    g: &[f32],
    s: &ConvShape,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let dims = (s.batch, s.c_in, s.c_out, s.l, s.k, s.dilation);
    let r = conv_reference(x, w, bias, g, dims);
    (r.y, r.gx, r.gw)
}

/// Forward, input gradient and weight gradient through the plans and the CPU executor, from plain
/// slices: exactly the buffers and calls the CUDA op uses.
fn through_plans(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    g: &[f32],
    s: &ConvShape,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let pad = s.pad();
    // Forward: bias-initialised output, β = 1 throughout.
    let xp = host::pad(x, s.batch * s.c_in, s.l, pad);
    let wp = host::permute_weight(w, s, false);
    let mut y: Vec<f32> = (0..s.batch * s.c_out * s.l)
        .map(|i| bias[(i / s.l) % s.c_out])
        .collect();
    execute_cpu(&forward_plan(s, false, true), &xp, &wp, &mut y).unwrap();
    // Input gradient: the transposed conv's forward with the flipped kernel, output overwritten.
    let t = s.transposed();
    let gp = host::pad(g, s.batch * s.c_out, s.l, pad);
    let wt = host::permute_weight(w, s, true);
    let mut gx = vec![f32::NAN; s.batch * s.c_in * s.l];
    execute_cpu(&forward_plan(&t, true, false), &gp, &wt, &mut gx).unwrap();
    // Weight gradient into (K, C_out, C_in), then back to (C_out, C_in, K).
    let mut gw_perm = vec![f32::NAN; s.k * s.c_out * s.c_in];
    execute_cpu(&weight_grad_plan(s), &xp, g, &mut gw_perm).unwrap();
    (y, gx, host::unpermute_weight(&gw_perm, s))
}

fn check_case(rng: &mut StdRng, s: ConvShape) -> (f64, f64, f64) {
    let x = rand_vec(rng, s.batch * s.c_in * s.l);
    let w = rand_vec(rng, s.c_out * s.c_in * s.k);
    let bias = rand_vec(rng, s.c_out);
    let g = rand_vec(rng, s.batch * s.c_out * s.l);
    let (y_ref, gx_ref, gw_ref) = reference(&x, &w, &bias, &g, &s);
    let (y, gx, gw) = through_plans(&x, &w, &bias, &g, &s);
    // Max |got − want| relative to max |want| (at least 1).
    let errs = (
        rel_err(&y, &y_ref, 1.0),
        rel_err(&gx, &gx_ref, 1.0),
        rel_err(&gw, &gw_ref, 1.0),
    );
    // f32 sums of up to C_in·K = 1312 (forward) or B·L (weight gradient) products of O(1) terms.
    assert!(
        errs.0 < 1e-5 && errs.1 < 1e-5 && errs.2 < 1e-5,
        "{s:?}: relative errors y {:e}, grad_x {:e}, grad_w {:e}",
        errs.0,
        errs.1,
        errs.2
    );
    errs
}

#[test]
fn plans_match_f64_reference_for_every_model_shape() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut worst = (0f64, 0f64, 0f64);
    for (k, d) in model_shapes() {
        // One window and three; a length shorter than the widest receptive field (K=41, d=25: 1001).
        for &(batch, l) in &[(1usize, 301usize), (3, 97), (2, 1201)] {
            let s = ConvShape {
                batch,
                c_in: 32,
                c_out: 32,
                l,
                k,
                dilation: d,
            };
            let e = check_case(&mut rng, s);
            eprintln!(
                "K={k:2} d={d:2} B={batch} L={l:4}: rel err y {:.1e} grad_x {:.1e} grad_w {:.1e}",
                e.0, e.1, e.2
            );
            worst = (worst.0.max(e.0), worst.1.max(e.1), worst.2.max(e.2));
        }
    }
    eprintln!(
        "worst relative errors: y {:.1e}, grad_x {:.1e}, grad_w {:.1e}",
        worst.0, worst.1, worst.2
    );
}

/// Channel counts that differ (the model's 4 → 32 stem and 32 → 3 head), odd ones, and lengths 1 and 2.
#[test]
fn plans_match_f64_reference_for_odd_channels_and_tiny_lengths() {
    let mut rng = StdRng::seed_from_u64(12);
    for &(batch, c_in, c_out, l, k, d) in &[
        (3usize, 4usize, 32usize, 157usize, 1usize, 1usize),
        (2, 32, 3, 157, 1, 1),
        (3, 5, 7, 157, 11, 4),
        (2, 7, 5, 63, 21, 10),
        (1, 3, 2, 1, 11, 1),
        (4, 2, 3, 2, 41, 25),
    ] {
        check_case(
            &mut rng,
            ConvShape {
                batch,
                c_in,
                c_out,
                l,
                k,
                dilation: d,
            },
        );
    }
}

/// Without `accumulate` the first tap overwrites whatever the output held (β = 0 on the first call):
/// the output buffer may come uninitialised from the device allocator.
#[test]
fn forward_without_bias_overwrites_the_output() {
    let mut rng = StdRng::seed_from_u64(13);
    let s = ConvShape {
        batch: 2,
        c_in: 6,
        c_out: 4,
        l: 33,
        k: 11,
        dilation: 4,
    };
    let x = rand_vec(&mut rng, s.batch * s.c_in * s.l);
    let w = rand_vec(&mut rng, s.c_out * s.c_in * s.k);
    let zeros = vec![0f32; s.c_out];
    let (y_ref, _, _) = reference(&x, &w, &zeros, &vec![0.0; s.batch * s.c_out * s.l], &s);
    let xp = host::pad(&x, s.batch * s.c_in, s.l, s.pad());
    let wp = host::permute_weight(&w, &s, false);
    let mut y = vec![f32::NAN; s.batch * s.c_out * s.l];
    execute_cpu(&forward_plan(&s, false, false), &xp, &wp, &mut y).unwrap();
    assert!(rel_err(&y, &y_ref, 1.0) < 1e-5);
}

/// The plans' shapes: K forward calls batched over windows, B weight-gradient calls batched over taps,
/// reading the shifted input through offsets k·d (forward) and batch strides d (weight gradient).
#[test]
fn plan_arguments_are_as_documented() {
    let s = ConvShape {
        batch: 3,
        c_in: 32,
        c_out: 16,
        l: 100,
        k: 21,
        dilation: 10,
    };
    assert_eq!((s.pad(), s.l_pad()), (100, 300));
    let f = forward_plan(&s, false, false);
    assert_eq!(f.len(), 21);
    assert_eq!(
        f[5],
        GemmCall {
            transa: Trans::N,
            transb: Trans::N,
            m: 100,
            n: 16,
            k: 32,
            alpha: 1.0,
            a_offset: 50,
            lda: 300,
            stride_a: 32 * 300,
            b_offset: 5 * 16 * 32,
            ldb: 32,
            stride_b: 0,
            beta: 1.0,
            c_offset: 0,
            ldc: 100,
            stride_c: 16 * 100,
            batch: 3,
        }
    );
    assert_eq!(f[0].beta, 0.0);
    assert!(forward_plan(&s, false, true).iter().all(|c| c.beta == 1.0));
    let flipped = forward_plan(&s.transposed(), true, false);
    assert_eq!(flipped[0].b_offset, 20 * 16 * 32);
    assert_eq!((flipped[0].n, flipped[0].k), (32, 16));
    let wg = weight_grad_plan(&s);
    assert_eq!(wg.len(), 3);
    assert_eq!(
        (wg[1].transa, wg[1].a_offset, wg[1].stride_a, wg[1].batch),
        (Trans::T, 32 * 300, 10, 21)
    );
    assert_eq!((wg[0].beta, wg[2].beta), (0.0, 1.0));
    for c in f.iter().chain(&flipped).chain(&wg) {
        c.check_bounds(3 * 32 * 300, 21 * 16 * 32, 3 * 32 * 300)
            .unwrap();
    }
}

/// The executor (`gemm` crate through strides) against three plain loops, on random calls with every
/// transpose combination, offsets, padded leading dimensions, batch strides (also 0) and β.
#[test]
fn executor_matches_plain_loops_on_random_calls() {
    let mut rng = StdRng::seed_from_u64(14);
    for case in 0..200 {
        let transa = if rng.random_bool(0.5) {
            Trans::N
        } else {
            Trans::T
        };
        let transb = if rng.random_bool(0.5) {
            Trans::N
        } else {
            Trans::T
        };
        let (m, n, k) = (
            rng.random_range(1..40usize),
            rng.random_range(1..40usize),
            rng.random_range(0..40usize),
        );
        let batch = rng.random_range(1..4usize);
        let (ar, ac) = if transa == Trans::N { (m, k) } else { (k, m) };
        let (br, bc) = if transb == Trans::N { (k, n) } else { (n, k) };
        let lda = ar.max(1) + rng.random_range(0..5usize);
        let ldb = br.max(1) + rng.random_range(0..5usize);
        let ldc = m + rng.random_range(0..5usize);
        let size_a = lda * ac.max(1);
        let size_b = ldb * bc.max(1);
        let size_c = ldc * n;
        let stride_a = if rng.random_bool(0.3) {
            0
        } else {
            size_a + rng.random_range(0..3usize)
        };
        let stride_b = if rng.random_bool(0.3) {
            0
        } else {
            size_b + rng.random_range(0..3usize)
        };
        let stride_c = size_c + rng.random_range(0..3usize);
        let call = GemmCall {
            transa,
            transb,
            m,
            n,
            k,
            alpha: [1.0, 0.5, -2.0][case % 3],
            a_offset: rng.random_range(0..4usize),
            lda,
            stride_a,
            b_offset: rng.random_range(0..4usize),
            ldb,
            stride_b,
            beta: [0.0, 1.0, 0.25][(case / 3) % 3],
            c_offset: rng.random_range(0..4usize),
            ldc,
            stride_c,
            batch,
        };
        let a = rand_vec(&mut rng, 4 + stride_a * batch + size_a);
        let b = rand_vec(&mut rng, 4 + stride_b * batch + size_b);
        let c0 = rand_vec(&mut rng, 4 + stride_c * batch + size_c);
        let (mut c1, mut c2) = (c0.clone(), c0.clone());
        execute_cpu(&[call], &a, &b, &mut c1).unwrap();
        execute_naive(&[call], &a, &b, &mut c2).unwrap();
        for (i, (&u, &v)) in c1.iter().zip(&c2).enumerate() {
            assert!(
                (u - v).abs() <= 1e-4 * (1.0 + v.abs()),
                "case {case} {call:?}: c[{i}] executor {u} vs loops {v}"
            );
        }
    }
}

/// A plan reaching outside a buffer, or whose batches would write overlapping outputs, is refused
/// before anything runs (cuBLAS would not check).
#[test]
fn out_of_bounds_and_overlapping_plans_are_refused() {
    let s = ConvShape {
        batch: 2,
        c_in: 4,
        c_out: 4,
        l: 50,
        k: 11,
        dilation: 4,
    };
    let xp = vec![0f32; 2 * 4 * s.l_pad()];
    let wp = vec![0f32; 11 * 16];
    let mut y = vec![0f32; 2 * 4 * 50];
    // Input not padded: the last taps read past its end.
    let e = execute_cpu(
        &forward_plan(&s, false, false),
        &xp[..2 * 4 * 50],
        &wp,
        &mut y,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("A reaches element"), "{e}");
    let e = execute_cpu(&forward_plan(&s, false, false), &xp, &wp, &mut y[..399])
        .unwrap_err()
        .to_string();
    assert!(e.contains("C reaches element"), "{e}");
    let mut call = forward_plan(&s, false, false)[0];
    call.stride_c = 10;
    let e = call.check_bounds(xp.len(), wp.len(), 10_000).unwrap_err();
    assert!(e.to_string().contains("overlap"), "{e}");
    call.stride_c = 200;
    call.lda = 10;
    let e = call.check_bounds(xp.len(), wp.len(), 10_000).unwrap_err();
    assert!(e.to_string().contains("leading dimension"), "{e}");
    let even = ConvShape { k: 4, ..s };
    assert!(even.check().unwrap_err().to_string().contains("odd kernel"));
}
