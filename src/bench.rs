//! `openspliceai-rs bench`: speed of the convolution and of whole steps, beside the device's matmul ceiling.
//!
//! Reports ms per window, windows/s and achieved GFLOP/s (conv FLOPs = 2·Cin·Cout·K·positions) for the
//! eval forward, a train step with `--unfreeze 2` and with `--unfreeze-all`, and each conv shape of the
//! model forward and forward+backward; plus the peak resident memory of the process. With `--memory`, the
//! bytes a training step keeps alive for backward ([`train_memory`], counted by [`memory`]).

pub mod memory;

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};

use crate::metrics::Loss;
use crate::model::config::{BlockSpec, CHANNELS, IN_CHANNELS, OUT_CLASSES, SEQ_LEN};
use crate::model::{FlankConfig, Mode, SpliceAi, Trainable};
use crate::ops::conv::conv1d_same;

/// Conv FLOPs of one forward pass of one window, split per ResidualUnit and the rest.
#[derive(Debug, Clone)]
pub struct ModelFlops {
    /// Forward FLOPs of each ResidualUnit's two convs.
    pub per_unit: Vec<f64>,
    /// Forward FLOPs of the 1×1 convs (initial, skips, final).
    pub pointwise: f64,
}

impl ModelFlops {
    /// FLOPs of the model for a flanking size.
    pub fn new(cfg: &FlankConfig) -> Self {
        let l = cfg.input_len() as f64;
        let c = CHANNELS as f64;
        let mut per_unit = Vec::new();
        let mut pointwise = 2.0 * IN_CHANNELS as f64 * c * l + 2.0 * c * c * l;
        for b in cfg.layout() {
            match b {
                BlockSpec::Unit { kernel, .. } => {
                    per_unit.push(2.0 * 2.0 * c * c * kernel as f64 * l)
                }
                BlockSpec::Skip => pointwise += 2.0 * c * c * l,
            }
        }
        pointwise += 2.0 * c * OUT_CLASSES as f64 * SEQ_LEN as f64;
        Self {
            per_unit,
            pointwise,
        }
    }

    /// Forward FLOPs per window.
    pub fn forward(&self) -> f64 {
        self.per_unit.iter().sum::<f64>() + self.pointwise
    }

    /// FLOPs per window of a train step training the last `n` units (forward, plus input and weight
    /// gradients of the convs from the first trained unit on; the 1×1 convs are counted as fully tracked).
    pub fn train_step(&self, n: usize) -> f64 {
        let n = n.min(self.per_unit.len());
        let tracked: f64 = self.per_unit[self.per_unit.len() - n..].iter().sum();
        self.forward() + 2.0 * tracked + 2.0 * self.pointwise
    }
}

/// One measured row.
#[derive(Debug, Clone)]
pub struct BenchRow {
    pub name: String,
    pub ms_per_window: f64,
    pub windows_per_s: f64,
    pub gflops: f64,
}

fn time_best<F: FnMut() -> candle_core::Result<()>>(
    reps: usize,
    mut f: F,
) -> candle_core::Result<f64> {
    f()?; // warm-up
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Normal(0, std) f32 values drawn on the host and moved to `device`: a CUDA device then needs no curand.
fn host_randn<S: Into<candle_core::Shape>>(
    std: f32,
    shape: S,
    device: &Device,
) -> candle_core::Result<Tensor> {
    Tensor::randn(0f32, std, shape, &Device::Cpu)?.to_device(device)
}

/// GFLOP/s of a large f32 matmul on the device: the ceiling the conv numbers compare with.
pub fn matmul_ceiling(device: &Device, size: usize) -> candle_core::Result<f64> {
    let a = host_randn(1.0, (size, size), device)?;
    let b = host_randn(1.0, (size, size), device)?;
    let secs = time_best(3, || {
        let c = a.matmul(&b)?;
        c.device().synchronize()?;
        Ok(())
    })?;
    Ok(2.0 * (size as f64).powi(3) / secs / 1e9)
}

/// GFLOP/s of f32 FMAs that never touch memory (24 independent AVX-512 accumulators on every rayon
/// thread): the CPU's arithmetic peak, which a matmul through the `gemm` crate (AVX2 on this code path)
/// does not reach on every CPU. `None` off x86_64 or without AVX-512F.
pub fn cpu_fma_peak() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::is_x86_feature_detected!("avx512f") {
            return None;
        }
        const ITERS: usize = 4_000_000;
        // SAFETY: AVX-512F was detected above.
        Some(thread_peak(ITERS * 24 * 32, || unsafe { fma_loop(ITERS) }))
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// GFLOP/s of `body` run once on every rayon thread, `flops` each: the best of 3 after a warm-up (clock
/// ramp).
#[cfg(target_arch = "x86_64")]
fn thread_peak(flops: usize, body: impl Fn() -> f32 + Sync) -> f64 {
    let threads = rayon::current_num_threads();
    let run = || {
        let t = Instant::now();
        rayon::broadcast(|_| std::hint::black_box(body()));
        t.elapsed().as_secs_f64()
    };
    run(); // warm-up (clock ramp)
    let secs = (0..3).map(|_| run()).fold(f64::INFINITY, f64::min);
    (threads * flops) as f64 / secs / 1e9
}

/// The sum of every lane of the 24 accumulators of a peak loop (what keeps the loop from being dropped).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_lanes(acc: [std::arch::x86_64::__m512; 24]) -> f32 {
    use std::arch::x86_64::*;
    let mut s = _mm512_setzero_ps();
    for v in acc {
        s = _mm512_add_ps(s, v);
    }
    _mm512_reduce_add_ps(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(1.0); 24];
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    sum_lanes(acc)
}

/// The same peak for `vdpbf16ps` (bf16 pairs into f32, 64 flops per instruction), where the CPU has
/// AVX-512 BF16: whether bf16 can be faster than f32 on this CPU at all.
pub fn cpu_bf16_peak() -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if !crate::ops::precision::native_bf16_available() {
            return None;
        }
        const ITERS: usize = 2_000_000;
        // SAFETY: AVX-512F and AVX-512 BF16 were detected above.
        Some(thread_peak(ITERS * 24 * 64, || unsafe {
            dpbf16_loop(ITERS)
        }))
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn dpbf16_loop(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_ps(1.0); 24];
    // (1e-3, 1e-3) in every lane: small steps, no overflow.
    let a: __m512bh = std::mem::transmute(_mm512_set1_epi32(0x3a83_3a83));
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_dpbf16_ps(*v, a, a);
        }
    }
    sum_lanes(acc)
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Benchmarks the model of `cfg` on `device` with `batch` windows per step and `reps` timed repetitions.
pub fn run(
    cfg: &'static FlankConfig,
    device: &Device,
    batch: usize,
    reps: usize,
) -> anyhow::Result<Vec<BenchRow>> {
    let flops = ModelFlops::new(cfg);
    let mut rows = Vec::new();
    let x = host_randn(1.0, (batch, IN_CHANNELS, cfg.input_len()), device)?;
    // Random one-hot-ish labels are not needed for timing: a fixed class-0 target suffices.
    let y = Tensor::zeros((batch, OUT_CLASSES, SEQ_LEN), DType::F32, device)?;
    let mut model = SpliceAi::new(cfg, 0, device)?;
    let per = |secs: f64, f: f64, name: &str| BenchRow {
        name: name.to_string(),
        ms_per_window: secs * 1e3 / batch as f64,
        windows_per_s: batch as f64 / secs,
        gflops: f * batch as f64 / secs / 1e9,
    };
    let secs = time_best(reps, || {
        let p = model.predict(&x).map_err(candle_core::Error::wrap)?;
        p.device().synchronize()
    })?;
    rows.push(per(secs, flops.forward(), "eval forward"));
    // Every row runs in the process's precision (`--precision`): in bf16 the train steps' forwards,
    // input and weight gradients too; BatchNorm, the loss and the optimiser state stay f32.
    for (name, which, n) in [
        ("train step --unfreeze 2", Trainable::LastUnits(2), 2usize),
        ("train step --unfreeze-all", Trainable::All, cfg.n_units()),
    ] {
        model.set_trainable(which)?;
        let secs = time_best(reps, || {
            let p = model
                .forward(&x, Mode::Train)
                .map_err(candle_core::Error::wrap)?;
            let loss = Loss::CrossEntropyLoss.compute(&p, &y)?;
            let g = loss.backward()?;
            drop(g);
            x.device().synchronize()
        })?;
        rows.push(per(secs, flops.train_step(n), name));
    }
    // Each conv shape of the model, forward and forward+backward, at the model's batch and length.
    let mut seen = Vec::new();
    for (&k, &d) in cfg.kernel_sizes.iter().zip(cfg.dilations) {
        if seen.contains(&(k, d)) {
            continue;
        }
        seen.push((k, d));
        let xin = Var::from_tensor(&host_randn(
            1.0,
            (batch, CHANNELS, cfg.input_len()),
            device,
        )?)?;
        let w = Var::from_tensor(&host_randn(0.05, (CHANNELS, CHANNELS, k), device)?)?;
        let b = Var::from_tensor(&Tensor::zeros(CHANNELS, DType::F32, device)?)?;
        let f = 2.0 * (CHANNELS * CHANNELS * k * cfg.input_len()) as f64;
        let secs = time_best(reps, || {
            let yv = conv1d_same(xin.as_tensor(), w.as_tensor(), b.as_tensor(), d)?;
            yv.device().synchronize()
        })?;
        rows.push(per(secs, f, &format!("conv W{k} AR{d} forward")));
        let secs = time_best(reps, || {
            let yv = conv1d_same(xin.as_tensor(), w.as_tensor(), b.as_tensor(), d)?;
            let g = yv.sum_all()?.backward()?;
            drop(g);
            xin.device().synchronize()
        })?;
        rows.push(per(secs, 3.0 * f, &format!("conv W{k} AR{d} fwd+bwd")));
    }
    Ok(rows)
}

/// What one training step holds: net bytes alive after the forward and loss (what autograd keeps for
/// backward) and the peak over forward + backward, on the host heap (the CPU's device memory) and, on
/// CUDA, device memory in use after the forward (driver's `cuMemGetInfo`).
#[derive(Debug, Clone)]
pub struct MemoryRow {
    pub name: String,
    pub kept: usize,
    pub peak: usize,
    pub device_kept: Option<usize>,
}

/// Measures [`MemoryRow`]s of a train step with `--unfreeze 2` and `--unfreeze-all` for `cfg` at `batch`
/// windows on `device`, through whichever ops graph runs there (`OSAI_OPS`).
pub fn train_memory(
    cfg: &'static FlankConfig,
    device: &Device,
    batch: usize,
) -> anyhow::Result<Vec<MemoryRow>> {
    let x = host_randn(1.0, (batch, IN_CHANNELS, cfg.input_len()), device)?;
    let y = Tensor::zeros((batch, OUT_CLASSES, SEQ_LEN), DType::F32, device)?;
    let mut model = SpliceAi::new(cfg, 0, device)?;
    let mut rows = Vec::new();
    for (name, which) in [
        ("train step --unfreeze 2", Trainable::LastUnits(2)),
        ("train step --unfreeze-all", Trainable::All),
    ] {
        model.set_trainable(which)?;
        // One step first, so that lazily made state (running statistics, caches) is not counted.
        step_once(&mut model, &x, &y)?;
        let dev0 = memory::device_used(device)?;
        memory::enable();
        let base = memory::live();
        memory::reset_peak();
        let measured = (|| -> anyhow::Result<(isize, Option<usize>)> {
            let p = model.forward(&x, Mode::Train)?;
            let loss = Loss::CrossEntropyLoss.compute(&p, &y)?;
            drop(p);
            device.synchronize()?;
            let kept = memory::live() - base;
            let dev = memory::device_used(device)?;
            let g = loss.backward()?;
            device.synchronize()?;
            drop(g);
            Ok((kept, dev))
        })();
        let peak = memory::peak() - base;
        memory::disable();
        let (kept, dev1) = measured?;
        rows.push(MemoryRow {
            name: name.to_string(),
            kept: kept.max(0) as usize,
            peak: peak.max(0) as usize,
            device_kept: dev0.zip(dev1).map(|(a, b)| b.saturating_sub(a)),
        });
    }
    Ok(rows)
}

fn step_once(model: &mut SpliceAi, x: &Tensor, y: &Tensor) -> anyhow::Result<()> {
    let p = model.forward(x, Mode::Train)?;
    let g = Loss::CrossEntropyLoss.compute(&p, y)?.backward()?;
    drop(g);
    x.device().synchronize()?;
    Ok(())
}
