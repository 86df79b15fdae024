//! The fused BatchNorm + LeakyReLU op against the same maths in stock candle ops: outputs, batch
//! statistics and all three gradients, in batch-statistics and running-statistics modes.

mod common;

use candle_core::{Device, Tensor, Var};
use common::compare::{tensor_max_rel_diff, values};
use common::ops::weighted_sum_grads;
use openspliceai_rs::ops::bn_act::{
    batchnorm_leaky_relu, batchnorm_leaky_relu_reference, leaky_relu_reference, BnOutput, BnStats,
};

#[test]
fn fused_op_matches_stock_candle_ops_forward_and_backward() {
    let dev = Device::Cpu;
    let (n, c, l) = (3, 6, 257);
    let x = Var::from_tensor(&(Tensor::randn(0.5f32, 2.0, (n, c, l), &dev).unwrap())).unwrap();
    let w = Var::from_tensor(&Tensor::randn(1f32, 0.3, c, &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::randn(0f32, 0.3, c, &dev).unwrap()).unwrap();
    let r = Tensor::randn(0f32, 1.0, (n, c, l), &dev).unwrap();
    let rm = Tensor::randn(0f32, 0.5, c, &dev).unwrap();
    let rv = (Tensor::randn(0f32, 0.5, c, &dev).unwrap().abs().unwrap() + 0.5).unwrap();
    for mode in ["batch", "running"] {
        let stats = if mode == "batch" {
            BnStats::Batch
        } else {
            BnStats::Running {
                mean: &rm,
                var: &rv,
            }
        };
        let ours = batchnorm_leaky_relu(
            x.as_tensor(),
            w.as_tensor(),
            b.as_tensor(),
            stats,
            1e-5,
            0.1,
        )
        .unwrap();
        let refr = batchnorm_leaky_relu_reference(
            x.as_tensor(),
            w.as_tensor(),
            b.as_tensor(),
            stats,
            1e-5,
            0.1,
        )
        .unwrap();
        assert!(
            tensor_max_rel_diff(&ours.y, &refr.y) < 1e-5,
            "{mode}: outputs differ"
        );
        match (&ours.batch_stats, &refr.batch_stats) {
            (Some((m1, v1)), Some((m2, v2))) => {
                // The CPU op's statistics are f64; the reference's f32 (it runs on GPUs without f64).
                for (a, b) in m1.iter().zip(m2).chain(v1.iter().zip(v2)) {
                    assert!(
                        (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                        "{mode}: stats {a} vs {b}"
                    );
                }
            }
            (None, None) => assert_eq!(mode, "running"),
            _ => panic!("{mode}: one path returned batch statistics, the other did not"),
        }
        let g1 = weighted_sum_grads(&ours.y, &r);
        let g2 = weighted_sum_grads(&refr.y, &r);
        for (name, v) in [("x", &x), ("w", &w), ("b", &b)] {
            let a = g1
                .get(v.as_tensor())
                .unwrap_or_else(|| panic!("{mode}: no fused gradient for {name}"));
            let e = g2.get(v.as_tensor()).unwrap();
            let err = tensor_max_rel_diff(a, e);
            assert!(
                err < 1e-4,
                "{mode}: gradient of {name} differs (rel {err:e})"
            );
        }
    }
}

/// LeakyReLU's gradient at exactly 0 is PyTorch's, slope·g, on the CPU op and on the stock-op reference
/// (candle's `maximum` would split the tie and give 0.55·g).
#[test]
fn leaky_relu_gradient_at_exact_zero_is_slope() {
    let dev = Device::Cpu;
    let z = Var::from_tensor(&Tensor::new(&[-1f32, 0.0, 0.0, 2.0, 0.0], &dev).unwrap()).unwrap();
    let y = leaky_relu_reference(z.as_tensor(), 0.1).unwrap();
    assert_eq!(y.to_vec1::<f32>().unwrap(), [-0.1, 0.0, 0.0, 2.0, 0.0]);
    let g = y.sum_all().unwrap().backward().unwrap();
    let gz = g.get(z.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(gz, [0.1, 0.1, 0.1, 1.0, 0.1]);

    // With weight 0 and bias 0 every BatchNorm output is exactly 0, so the bias gradient is Σ slope·g.
    let (n, c, l) = (2, 3, 50);
    let x = Tensor::randn(0f32, 1.0, (n, c, l), &dev).unwrap();
    let w = Var::from_tensor(&Tensor::zeros(c, candle_core::DType::F32, &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::zeros(c, candle_core::DType::F32, &dev).unwrap()).unwrap();
    let r = Tensor::randn(0f32, 1.0, (n, c, l), &dev).unwrap();
    let want: Vec<f32> = r
        .sum((0, 2))
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|s| 0.1 * s)
        .collect();
    let (rm, rv) = (
        Tensor::zeros(c, candle_core::DType::F32, &dev).unwrap(),
        Tensor::ones(c, candle_core::DType::F32, &dev).unwrap(),
    );
    type Bn = fn(&Tensor, &Tensor, &Tensor, BnStats<'_>, f64, f64) -> candle_core::Result<BnOutput>;
    let paths: [(&str, Bn); 2] = [
        ("CPU op", batchnorm_leaky_relu),
        ("reference", batchnorm_leaky_relu_reference),
    ];
    for (path, f) in paths {
        for stats in [
            BnStats::Batch,
            BnStats::Running {
                mean: &rm,
                var: &rv,
            },
        ] {
            let out = f(&x, w.as_tensor(), b.as_tensor(), stats, 1e-5, 0.1).unwrap();
            let y = values(&out.y);
            assert!(
                y.iter().all(|&v| v == 0.0),
                "{path} {stats:?}: outputs not all 0"
            );
            let g = weighted_sum_grads(&out.y, &r);
            let gb = g.get(b.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
            for (ch, (got, want)) in gb.iter().zip(&want).enumerate() {
                assert!(
                    (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                    "{path} {stats:?}: bias gradient of channel {ch} is {got}, slope·Σg = {want}"
                );
            }
        }
    }
}
