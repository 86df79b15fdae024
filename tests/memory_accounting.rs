//! What autograd keeps for backward, counted by the tests' global allocator (`bench::memory`, set in
//! `tests/common` as `main.rs` sets it): one
//! conv + BatchNorm + LeakyReLU layer of the widest kernel through the CUDA graph's ops keeps about its
//! input, the conv output and the layer output; through the stock-op graph every tap's copy, product and
//! partial sum. One test in this binary, so no other test allocates while it counts.

mod common;

use candle_core::{Device, Tensor, Var};
use openspliceai_rs::bench::memory;
use openspliceai_rs::ops::bn_act::{batchnorm_leaky_relu_reference, BnStats};
use openspliceai_rs::ops::bn_device::batchnorm_leaky_relu_device;
use openspliceai_rs::ops::conv::conv1d_same_reference;
use openspliceai_rs::ops::conv_gemm::conv1d_same_gemm;

type Conv = fn(&Tensor, &Tensor, &Tensor, usize) -> candle_core::Result<Tensor>;
type Bn = fn(
    &Tensor,
    &Tensor,
    &Tensor,
    BnStats<'_>,
    f64,
    f64,
) -> candle_core::Result<openspliceai_rs::ops::bn_act::BnOutput>;

/// Net bytes alive after the layer's forward and a loss on it (dropped before returning).
fn kept_by_layer(conv: Conv, bn: Bn, x: &Tensor, w: &Var, b: &Var, g: &Var, be: &Var) -> isize {
    memory::enable();
    let base = memory::live();
    let h = conv(x, w.as_tensor(), b.as_tensor(), 25).unwrap();
    let y = bn(&h, g.as_tensor(), be.as_tensor(), BnStats::Batch, 1e-5, 0.1)
        .unwrap()
        .y;
    drop(h);
    let loss = y.sqr().unwrap().sum_all().unwrap();
    drop(y);
    let kept = memory::live() - base;
    memory::disable();
    // The graph is complete: backward reaches every parameter.
    let grads = loss.backward().unwrap();
    for v in [w, b, g, be] {
        assert!(grads.get(v.as_tensor()).is_some());
    }
    kept
}

#[test]
fn device_ops_keep_about_one_activation_per_step_of_the_layer() {
    // The allocator counts: 4 MiB allocated while enabled are seen, and gone once freed.
    memory::enable();
    let before = memory::live();
    let v = std::hint::black_box(vec![1u8; 4 << 20]);
    let during = memory::live();
    drop(v);
    let after = memory::live();
    memory::disable();
    assert!(during - before >= 4 << 20, "{before} {during}");
    assert!(after - before < 1 << 20, "{before} {after}");

    let dev = Device::Cpu;
    let (n, c, l, k) = (2usize, 32usize, 2001usize, 41usize);
    let act = (n * c * l * 4) as isize;
    let x = Var::randn(0f32, 1.0, (n, c, l), &dev).unwrap();
    let x1 = (x.as_tensor() * 1.0).unwrap(); // a tracked input, as inside the network
    let w = Var::randn(0f32, 0.05, (c, c, k), &dev).unwrap();
    let b = Var::zeros(c, candle_core::DType::F32, &dev).unwrap();
    let g = Var::ones(c, candle_core::DType::F32, &dev).unwrap();
    let be = Var::zeros(c, candle_core::DType::F32, &dev).unwrap();
    // A first pass of each, so that lazily made state (rayon's pool, gemm's per-thread packing buffers)
    // is not counted.
    kept_by_layer(
        conv1d_same_gemm,
        batchnorm_leaky_relu_device,
        &x1,
        &w,
        &b,
        &g,
        &be,
    );
    kept_by_layer(
        conv1d_same_reference,
        batchnorm_leaky_relu_reference,
        &x1,
        &w,
        &b,
        &g,
        &be,
    );
    let ours = kept_by_layer(
        conv1d_same_gemm,
        batchnorm_leaky_relu_device,
        &x1,
        &w,
        &b,
        &g,
        &be,
    );
    let stock = kept_by_layer(
        conv1d_same_reference,
        batchnorm_leaky_relu_reference,
        &x1,
        &w,
        &b,
        &g,
        &be,
    );
    eprintln!(
        "one K={k} conv + BN layer, {n}x{c}x{l}: kept {:.2} activations (device ops) vs {:.2} (stock ops)",
        ours as f64 / act as f64,
        stock as f64 / act as f64
    );
    // Conv output, layer output and its square (the loss; the input x1 existed before), plus
    // per-channel vectors.
    assert!(ours <= 3 * act + (1 << 16), "device ops kept {ours} bytes");
    assert!(
        stock >= 20 * ours,
        "stock ops kept {stock} bytes, device ops {ours}"
    );
}
