//! The CUDA graph's ops run end to end on the CPU (their `cpu_fwd` is the same generic code as their
//! `cuda_fwd`, with the GEMM plan run by the CPU executor instead of cuBLAS), autograd included:
//! the GEMM-plan conv against an f64 conv and its gradients, the device BatchNorm + LeakyReLU against the
//! stock-op reference (forward, batch statistics, every gradient; batch and running statistics).

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::compare::{rel_err, tensor_max_abs, tensor_max_abs_diff, values};
use common::ops::{conv_reference, model_shapes, rand_vec_in, weighted_sum_grads};
use openspliceai_rs::ops::bn_act::{batchnorm_leaky_relu_reference, BnStats};
use openspliceai_rs::ops::bn_device::batchnorm_leaky_relu_device;
use openspliceai_rs::ops::conv_gemm::conv1d_same_gemm;
use rand::{rngs::StdRng, SeedableRng};

#[test]
fn gemm_conv_op_and_its_backward_match_f64_reference() {
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(21);
    let mut cases: Vec<(usize, usize, usize, usize, usize, usize)> = Vec::new();
    for (k, d) in model_shapes() {
        cases.push((3, 32, 32, 157, k, d));
        cases.push((1, 32, 32, 1201, k, d));
    }
    cases.push((2, 4, 32, 301, 1, 1));
    cases.push((2, 32, 3, 301, 1, 1));
    cases.push((3, 5, 7, 63, 21, 10));
    for dims in cases {
        let (n, cin, cout, l, k, d) = dims;
        let xv = rand_vec_in(&mut rng, n * cin * l, -1.0, 1.0);
        let wv = rand_vec_in(&mut rng, cout * cin * k, -1.0, 1.0);
        let bv = rand_vec_in(&mut rng, cout, -1.0, 1.0);
        let rv = rand_vec_in(&mut rng, n * cout * l, -1.0, 1.0);
        let x = Var::from_vec(xv.clone(), (n, cin, l), &dev).unwrap();
        let w = Var::from_vec(wv.clone(), (cout, cin, k), &dev).unwrap();
        let b = Var::from_vec(bv.clone(), cout, &dev).unwrap();
        let r = Tensor::from_vec(rv.clone(), (n, cout, l), &dev).unwrap();
        let y = conv1d_same_gemm(x.as_tensor(), w.as_tensor(), b.as_tensor(), d).unwrap();
        let grads = weighted_sum_grads(&y, &r);
        let exact = conv_reference(&xv, &wv, &bv, &rv, dims);
        // Max |got − want| relative to max |want| (at least 1e-6).
        let err = |got: &Tensor, want: &[f64]| rel_err(&values(got), want, 1e-6);
        let errs = [
            err(&y, &exact.y),
            err(grads.get(x.as_tensor()).unwrap(), &exact.gx),
            err(grads.get(w.as_tensor()).unwrap(), &exact.gw),
            err(grads.get(b.as_tensor()).unwrap(), &exact.gb),
        ];
        eprintln!(
            "{dims:?}: rel err y {:.1e} grad_x {:.1e} grad_w {:.1e} grad_b {:.1e}",
            errs[0], errs[1], errs[2], errs[3]
        );
        assert!(errs.iter().all(|&e| e < 1e-5), "{dims:?}: {errs:?}");
    }
}

/// Only the gradients that are asked for are made (a frozen weight, a data input), and a frozen
/// layer's input gradient still flows.
#[test]
fn gemm_conv_op_computes_only_needed_gradients() {
    let dev = Device::Cpu;
    let x = Tensor::ones((2, 3, 20), DType::F32, &dev).unwrap();
    let w = Var::ones((4, 3, 11), DType::F32, &dev).unwrap();
    let b = Tensor::zeros(4, DType::F32, &dev).unwrap();
    let g = conv1d_same_gemm(&x, w.as_tensor(), &b, 4)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(g.get(w.as_tensor()).is_some() && g.get(&x).is_none() && g.get(&b).is_none());
    let xv = Var::ones((2, 3, 20), DType::F32, &dev).unwrap();
    let wf = Tensor::ones((4, 3, 11), DType::F32, &dev).unwrap();
    let g = conv1d_same_gemm(xv.as_tensor(), &wf, &b, 4)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    // Σ_y of a conv of ones: each input position feeds every in-range tap of every output channel.
    let gx = values(g.get(xv.as_tensor()).unwrap());
    let pad = 20isize;
    for (i, &v) in gx.iter().enumerate() {
        let p = (i % 20) as isize;
        let taps = (0..11isize)
            .filter(|k| {
                let out = p - k * 4 + pad;
                (0..20).contains(&out)
            })
            .count();
        assert_eq!(v, (4 * taps) as f32, "grad_x[{i}]");
    }
    let err = conv1d_same_gemm(
        &x,
        &Tensor::ones((4, 3, 4), DType::F32, &dev).unwrap(),
        &b,
        1,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("odd kernel"), "{err}");
}

/// The device BatchNorm op against the stock-op reference: batch statistics (with a channel mean far from
/// 0, where centring matters) and running statistics; y, the statistics, and the gradients of x, w, b.
#[test]
fn device_batchnorm_matches_the_stock_reference() {
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(22);
    for &(n, c, l) in &[(3usize, 32usize, 301usize), (1, 32, 5000), (2, 5, 97)] {
        let mut xv = rand_vec_in(&mut rng, n * c * l, -2.0, 2.0);
        for (i, v) in xv.iter_mut().enumerate() {
            *v += ((i / l) % c) as f32 * 0.7 - 3.0;
        }
        let wv = rand_vec_in(&mut rng, c, 0.5, 1.5);
        let bv = rand_vec_in(&mut rng, c, -0.5, 0.5);
        let rv = rand_vec_in(&mut rng, n * c * l, -1.0, 1.0);
        let mean = Tensor::from_vec(rand_vec_in(&mut rng, c, -3.0, 3.0), c, &dev).unwrap();
        let var = Tensor::from_vec(rand_vec_in(&mut rng, c, 0.5, 2.0), c, &dev).unwrap();
        let r = Tensor::from_vec(rv, (n, c, l), &dev).unwrap();
        for running in [false, true] {
            let run = |device_op: bool| {
                let x = Var::from_vec(xv.clone(), (n, c, l), &dev).unwrap();
                let w = Var::from_vec(wv.clone(), c, &dev).unwrap();
                let b = Var::from_vec(bv.clone(), c, &dev).unwrap();
                let stats = if running {
                    BnStats::Running {
                        mean: &mean,
                        var: &var,
                    }
                } else {
                    BnStats::Batch
                };
                let f = if device_op {
                    batchnorm_leaky_relu_device
                } else {
                    batchnorm_leaky_relu_reference
                };
                let out = f(
                    x.as_tensor(),
                    w.as_tensor(),
                    b.as_tensor(),
                    stats,
                    1e-5,
                    0.1,
                )
                .unwrap();
                let g = weighted_sum_grads(&out.y, &r);
                let grads = [&x, &w, &b].map(|v| g.get(v.as_tensor()).unwrap().clone());
                let stats = out.batch_stats.or_else(|| {
                    out.device_stats.map(|(m, v)| {
                        let host = |t: Tensor| values(&t).into_iter().map(f64::from).collect();
                        (host(m), host(v))
                    })
                });
                (out.y, stats, grads)
            };
            let (y_dev, st_dev, g_dev) = run(true);
            let (y_ref, st_ref, g_ref) = run(false);
            let (d, s) = (tensor_max_abs_diff(&y_dev, &y_ref), tensor_max_abs(&y_ref));
            assert!(
                d <= 1e-6 * s.max(1.0),
                "({n},{c},{l}) running={running}: y {d} of {s}"
            );
            // The device op's mean μ₁ + c is added in f32 on the device, the reference's in f64 on the host.
            match (st_dev, st_ref) {
                (None, None) => assert!(running),
                (Some((m1, v1)), Some((m2, v2))) => {
                    for (a, b) in m1.iter().zip(&m2).chain(v1.iter().zip(&v2)) {
                        assert!(
                            (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                            "batch statistic {a} vs {b}"
                        );
                    }
                }
                other => panic!("batch statistics from one side only: {other:?}"),
            }
            for (name, gd, gr) in [
                ("x", &g_dev[0], &g_ref[0]),
                ("w", &g_dev[1], &g_ref[1]),
                ("b", &g_dev[2], &g_ref[2]),
            ] {
                let (d, s) = (tensor_max_abs_diff(gd, gr), tensor_max_abs(gr));
                eprintln!(
                    "({n},{c},{l}) running={running}: grad_{name} max diff {d:.2e} of {s:.2e}"
                );
                assert!(
                    d <= 2e-5 * s.max(1e-3),
                    "({n},{c},{l}) running={running}: grad_{name} {d} of {s}"
                );
            }
        }
    }
}

/// On a CUDA build with a GPU: the same ops on the GPU (cuBLAS running the plans, candle's CUDA storage
/// ops for padding, permutations and the BatchNorm) against the CPU (the plans' executor), forward and
/// every gradient, at the model's widest shapes. Skips with a message where no CUDA device opens.
#[cfg(feature = "cuda")]
#[test]
fn cuda_ops_match_the_cpu_ops() {
    let gpu = match Device::new_cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipping: no CUDA device opens here: {e}");
            return;
        }
    };
    let cpu = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(23);
    for &(n, c, l, k, d) in &[
        (3usize, 32usize, 1201usize, 11usize, 4usize),
        (2, 32, 1201, 41, 25),
        (4, 32, 301, 1, 1),
    ] {
        let xv = rand_vec_in(&mut rng, n * c * l, -1.0, 1.0);
        let wv = rand_vec_in(&mut rng, c * c * k, -0.2, 0.2);
        let bv = rand_vec_in(&mut rng, c, -0.5, 0.5);
        let gv = rand_vec_in(&mut rng, c, 0.5, 1.5);
        let rv = rand_vec_in(&mut rng, n * c * l, -1.0, 1.0);
        // conv → BatchNorm (batch statistics) → Σ y·r, and every gradient, on one device.
        let run = |dev: &Device| {
            let x = Var::from_vec(xv.clone(), (n, c, l), dev).unwrap();
            let w = Var::from_vec(wv.clone(), (c, c, k), dev).unwrap();
            let b = Var::from_vec(bv.clone(), c, dev).unwrap();
            let g = Var::from_vec(gv.clone(), c, dev).unwrap();
            let be = Var::from_vec(bv.clone(), c, dev).unwrap();
            let r = Tensor::from_vec(rv.clone(), (n, c, l), dev).unwrap();
            let h = conv1d_same_gemm(x.as_tensor(), w.as_tensor(), b.as_tensor(), d).unwrap();
            let out = batchnorm_leaky_relu_device(
                &h,
                g.as_tensor(),
                be.as_tensor(),
                BnStats::Batch,
                1e-5,
                0.1,
            )
            .unwrap();
            let grads = weighted_sum_grads(&out.y, &r);
            let (mean, var) = out.device_stats.unwrap();
            let mut all = vec![h, out.y, mean, var];
            for v in [&x, &w, &b, &g, &be] {
                all.push(grads.get(v.as_tensor()).unwrap().clone());
            }
            all.into_iter()
                .map(|t| values(&t.to_device(&Device::Cpu).unwrap()))
                .collect::<Vec<_>>()
        };
        let (on_gpu, on_cpu) = (run(&gpu), run(&cpu));
        let names = [
            "conv",
            "y",
            "mean",
            "var",
            "grad_x",
            "grad_w",
            "grad_b",
            "grad_gamma",
            "grad_beta",
        ];
        for ((name, a), b) in names.iter().zip(&on_gpu).zip(&on_cpu) {
            let want: Vec<f64> = b.iter().map(|&v| v as f64).collect();
            let e = rel_err(a, &want, 1e-6);
            eprintln!("({n},{c},{l}) K={k} d={d}: {name} GPU vs CPU rel err {e:.1e}");
            assert!(
                e < 1e-4,
                "({n},{c},{l}) K={k} d={d}: {name} GPU vs CPU rel err {e:e}"
            );
        }
    }
}

/// On a CUDA build with a GPU: the conv op with its plans in bf16 (`cublasGemmStridedBatchedEx`, bf16
/// operands from candle's cast, f32 accumulation) and TF32 (`CUBLAS_COMPUTE_32F_FAST_TF32`) against the
/// CPU executor's emulation of the same (operands rounded to nearest even), forward and both gradients.
/// bf16: the same operands, only the summation order differs (1e-4). TF32: the tensor cores' own
/// conversion of f32 operands may round ties (or more) otherwise, so up to a TF32 step per operand (4e-3).
#[cfg(feature = "cuda")]
#[test]
fn cuda_plan_in_bf16_and_tf32_matches_the_cpu_emulation() {
    use openspliceai_rs::ops::conv_gemm::conv1d_same_gemm_in;
    use openspliceai_rs::ops::gemm_plan::Compute;
    let gpu = match Device::new_cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipping: no CUDA device opens here: {e}");
            return;
        }
    };
    let mut rng = StdRng::seed_from_u64(24);
    for &(n, c, l, k, d) in &[
        (3usize, 32usize, 1201usize, 11usize, 4usize),
        (2, 32, 1201, 41, 25),
    ] {
        let xv = rand_vec_in(&mut rng, n * c * l, -1.0, 1.0);
        let wv = rand_vec_in(&mut rng, c * c * k, -0.2, 0.2);
        let bv = rand_vec_in(&mut rng, c, -0.5, 0.5);
        let rv = rand_vec_in(&mut rng, n * c * l, -1.0, 1.0);
        let run = |dev: &Device, compute: Compute| {
            let x = Var::from_vec(xv.clone(), (n, c, l), dev).unwrap();
            let w = Var::from_vec(wv.clone(), (c, c, k), dev).unwrap();
            let b = Var::from_vec(bv.clone(), c, dev).unwrap();
            let r = Tensor::from_vec(rv.clone(), (n, c, l), dev).unwrap();
            let y = conv1d_same_gemm_in(x.as_tensor(), w.as_tensor(), b.as_tensor(), d, compute)
                .unwrap();
            let grads = weighted_sum_grads(&y, &r);
            let mut all = vec![y];
            for v in [&x, &w] {
                all.push(grads.get(v.as_tensor()).unwrap().clone());
            }
            all.into_iter()
                .map(|t| values(&t.to_device(&Device::Cpu).unwrap()))
                .collect::<Vec<_>>()
        };
        for (compute, tol) in [(Compute::Bf16, 1e-4), (Compute::Tf32, 4e-3)] {
            let (on_gpu, on_cpu) = (run(&gpu, compute), run(&Device::Cpu, compute));
            let gpu_f32 = run(&gpu, Compute::F32);
            for (i, name) in ["y", "grad_x", "grad_w"].iter().enumerate() {
                let want: Vec<f64> = on_cpu[i].iter().map(|&v| v as f64).collect();
                let e = rel_err(&on_gpu[i], &want, 1e-6);
                let f: Vec<f64> = gpu_f32[i].iter().map(|&v| v as f64).collect();
                let from_f32 = rel_err(&on_gpu[i], &f, 1e-6);
                eprintln!(
                    "({n},{c},{l}) K={k} d={d} {compute:?}: {name} GPU vs CPU emulation rel err \
                     {e:.1e}; GPU {compute:?} vs GPU f32 {from_f32:.1e}"
                );
                assert!(e < tol, "{compute:?} {name}: GPU vs CPU emulation {e:e}");
            }
        }
    }
}
