//! The CUDA GEMM plan in bf16 and TF32 (`--precision bf16|tf32` on CUDA), run on the CPU by the plan's
//! executor with the GPU's operand rounding emulated (`execute_cpu_with`): against an f64 conv within the
//! rounding bound for every model conv shape (forward, input gradient, weight gradient), against the CPU
//! kernels' own bf16 emulation (the same roundings), whole models on the CUDA graph (`OSAI_OPS=reference`)
//! in bf16 and TF32 against f32, and the precision each device selects.
//!
//! The bound, element by element: each operand is rounded to nearest with unit round-off u (bf16 2⁻⁸,
//! TF32 2⁻¹¹), so each product a·b is off by at most (2u + u²)·|a·b|, and the f32 sum of n terms adds at
//! most n·2⁻²⁴ of Σ|terms| (worst case, no cancellation assumed). With S = Σ|a·b| (+ |bias|), the exact
//! conv of |x|, |w| (and |g|) computed in f64: |got − exact| ≤ (2u + u² + n·2⁻²⁴)·S.

mod common;

use candle_core::{Device, Tensor};
use common::bf16::{fly_windows, tensor_diff};
use common::compare::rel_err;
use common::ops::{conv_reference, model_shapes, rand_vec};
use openspliceai_rs::infer::Ensemble;
use openspliceai_rs::model::FlankConfig;
use openspliceai_rs::ops::conv::kernels::forward_bf16_emulated;
use openspliceai_rs::ops::conv_bf16::{round_bf16, round_tf32};
use openspliceai_rs::ops::gemm_plan::{
    execute_cpu_with, execute_naive, forward_plan, host, weight_grad_plan, Compute, ConvShape,
};
use openspliceai_rs::ops::path::{self, OpsPath};
use openspliceai_rs::ops::precision::{self, resolve, Active, Backend, Precision};
use rand::{rngs::StdRng, SeedableRng};

#[test]
fn rounding_to_tf32_is_to_nearest_even() {
    let one = 1f32;
    let ulp = 2f32.powi(-10); // TF32's spacing at 1
    assert_eq!(
        round_tf32(one + ulp / 2.0),
        one,
        "a tie rounds to even (down)"
    );
    assert_eq!(
        round_tf32(one + ulp + ulp / 2.0),
        one + 2.0 * ulp,
        "a tie rounds to even (up)"
    );
    assert_eq!(round_tf32(one + ulp / 2.0 + 2f32.powi(-20)), one + ulp);
    assert_eq!(round_tf32(-(one + ulp / 4.0)), -one);
    assert!(round_tf32(f32::NAN).is_nan());
    assert_eq!(round_tf32(f32::INFINITY), f32::INFINITY);
    assert_eq!(round_tf32(0.0), 0.0);
    for v in [0.1f32, -3.7, 1e-20, 12345.678, 1e30] {
        let r = round_tf32(v);
        assert_eq!(r.to_bits() & 0x1fff, 0, "{v}: low 13 bits must be zero");
        assert!(((r - v) / v).abs() <= 2f32.powi(-11), "{v} → {r}");
    }
    // The compute types' roundings are the crate's one rounding each.
    for v in [0.1f32, -3.7, 7e-3] {
        assert_eq!(Compute::Bf16.round(v), round_bf16(v));
        assert_eq!(Compute::Tf32.round(v), round_tf32(v));
        assert_eq!(Compute::F32.round(v), v);
    }
}

/// `(y with bias, grad_x, grad_w)` through the plans in `compute`, from plain slices (the CUDA op's
/// buffers and calls).
fn through_plans(
    compute: Compute,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    g: &[f32],
    s: &ConvShape,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let pad = s.pad();
    let xp = host::pad(x, s.batch * s.c_in, s.l, pad);
    let wp = host::permute_weight(w, s, false);
    let mut y: Vec<f32> = (0..s.batch * s.c_out * s.l)
        .map(|i| bias[(i / s.l) % s.c_out])
        .collect();
    execute_cpu_with(&forward_plan(s, false, true), compute, &xp, &wp, &mut y).unwrap();
    let t = s.transposed();
    let gp = host::pad(g, s.batch * s.c_out, s.l, pad);
    let wt = host::permute_weight(w, s, true);
    let mut gx = vec![f32::NAN; s.batch * s.c_in * s.l];
    execute_cpu_with(&forward_plan(&t, true, false), compute, &gp, &wt, &mut gx).unwrap();
    let mut gw_perm = vec![f32::NAN; s.k * s.c_out * s.c_in];
    execute_cpu_with(&weight_grad_plan(s), compute, &xp, g, &mut gw_perm).unwrap();
    (y, gx, host::unpermute_weight(&gw_perm, s))
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// The largest |got − want| / bound, and the largest |got − want| / max |want|.
fn against_bound(got: &[f32], want: &[f64], sum_abs: &[f64], coef: f64) -> (f64, f64) {
    let ratio = got
        .iter()
        .zip(want)
        .zip(sum_abs)
        .fold(0f64, |m, ((&g, &w), &s)| {
            let d = (g as f64 - w).abs();
            assert!(d.is_finite(), "non-finite result {g} (want {w})");
            m.max(d / (coef * s).max(f64::MIN_POSITIVE))
        });
    (ratio, rel_err(got, want, 1.0))
}

#[test]
fn plans_in_bf16_and_tf32_stay_within_the_rounding_bound_for_every_model_shape() {
    let mut rng = StdRng::seed_from_u64(28);
    for compute in [Compute::Bf16, Compute::Tf32] {
        let u = compute.unit_roundoff();
        let mut worst = [(0f64, 0f64); 3];
        for (k, d) in model_shapes() {
            // One window and two; a length shorter than the widest receptive field.
            for &(batch, l) in &[(1usize, 301usize), (2, 97)] {
                let s = ConvShape {
                    batch,
                    c_in: 32,
                    c_out: 32,
                    l,
                    k,
                    dilation: d,
                };
                let x = rand_vec(&mut rng, s.batch * s.c_in * s.l);
                let w = rand_vec(&mut rng, s.c_out * s.c_in * s.k);
                let bias = rand_vec(&mut rng, s.c_out);
                let g = rand_vec(&mut rng, s.batch * s.c_out * s.l);
                let dims = (s.batch, s.c_in, s.c_out, s.l, s.k, s.dilation);
                let exact = conv_reference(&x, &w, &bias, &g, dims);
                let sums = conv_reference(&abs(&x), &abs(&w), &abs(&bias), &abs(&g), dims);
                let (y, gx, gw) = through_plans(compute, &x, &w, &bias, &g, &s);
                // Terms per sum: C_in·K (+ bias) forward, C_out·K input gradient, B·L weight gradient.
                let terms = [s.c_in * s.k + 1, s.c_out * s.k, s.batch * s.l];
                let coef = |n: usize| 2.0 * u + u * u + n as f64 * 2f64.powi(-24);
                let errs = [
                    against_bound(&y, &exact.y, &sums.y, coef(terms[0])),
                    against_bound(&gx, &exact.gx, &sums.gx, coef(terms[1])),
                    against_bound(&gw, &exact.gw, &sums.gw, coef(terms[2])),
                ];
                for (i, (what, (ratio, _))) in
                    ["y", "grad_x", "grad_w"].iter().zip(errs).enumerate()
                {
                    assert!(
                        ratio <= 1.0,
                        "{compute:?} {s:?}: {what} at {ratio:.2} of the rounding bound"
                    );
                    worst[i] = (worst[i].0.max(ratio), worst[i].1.max(errs[i].1));
                }
            }
        }
        eprintln!(
            "{compute:?}: worst |err| / bound: y {:.3}, grad_x {:.3}, grad_w {:.3}; \
             worst |err| / max|exact|: y {:.1e}, grad_x {:.1e}, grad_w {:.1e}",
            worst[0].0, worst[1].0, worst[2].0, worst[0].1, worst[1].1, worst[2].1
        );
        // The emulation does round: well above f32's 1e-6 (the f32 plan's test), yet inside the bound.
        for (i, what) in ["y", "grad_x", "grad_w"].iter().enumerate() {
            let floor = if compute == Compute::Bf16 { 3e-4 } else { 5e-5 };
            assert!(
                worst[i].1 > floor,
                "{compute:?}: {what} only {:.1e} from f64: are the operands rounded?",
                worst[i].1
            );
        }
    }
}

/// The executor in bf16 is the f32 executor on rounded operands: against plain f64 loops over
/// pre-rounded copies, including the input gradient's transposed, flipped plan and the weight
/// gradient's transposed operand.
#[test]
fn executor_rounds_operands_then_accumulates_like_f32() {
    let mut rng = StdRng::seed_from_u64(29);
    let s = ConvShape {
        batch: 3,
        c_in: 7,
        c_out: 5,
        l: 41,
        k: 11,
        dilation: 4,
    };
    let xp = host::pad(
        &rand_vec(&mut rng, s.batch * s.c_in * s.l),
        s.batch * s.c_in,
        s.l,
        s.pad(),
    );
    let wp = rand_vec(&mut rng, s.k * s.c_out * s.c_in);
    let g = rand_vec(&mut rng, s.batch * s.c_out * s.l);
    for compute in [Compute::Bf16, Compute::Tf32] {
        let round = |v: &[f32]| v.iter().map(|&x| compute.round(x)).collect::<Vec<_>>();
        for (calls, a, b, c_len) in [
            (
                forward_plan(&s, false, false),
                &xp,
                &wp,
                s.batch * s.c_out * s.l,
            ),
            (weight_grad_plan(&s), &xp, &g, s.k * s.c_out * s.c_in),
        ] {
            let mut got = vec![f32::NAN; c_len];
            execute_cpu_with(&calls, compute, a, b, &mut got).unwrap();
            let mut want = vec![f32::NAN; c_len];
            execute_naive(&calls, &round(a), &round(b), &mut want).unwrap();
            let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
            let e = rel_err(&got, &want, 1.0);
            assert!(e < 1e-6, "{compute:?}: {e:e} from the naive loops");
        }
    }
}

/// The plan in bf16 and the CPU kernels' bf16 emulation (`OSAI_BF16=emulate`) see the same rounded
/// operands; only the f32 summation order differs.
#[test]
fn plan_bf16_matches_the_cpu_kernels_bf16_emulation() {
    let mut rng = StdRng::seed_from_u64(30);
    let mut worst = 0f64;
    for (k, d) in model_shapes() {
        let s = ConvShape {
            batch: 2,
            c_in: 32,
            c_out: 32,
            l: 257,
            k,
            dilation: d,
        };
        let x = rand_vec(&mut rng, s.batch * s.c_in * s.l);
        let w = rand_vec(&mut rng, s.c_out * s.c_in * s.k);
        let bias = rand_vec(&mut rng, s.c_out);
        let g = rand_vec(&mut rng, s.batch * s.c_out * s.l);
        let (y_plan, ..) = through_plans(Compute::Bf16, &x, &w, &bias, &g, &s);
        let dims = (s.batch, s.c_in, s.c_out, s.l, s.k, s.dilation);
        let (y_kern, _) = forward_bf16_emulated(&x, &w, Some(&bias), dims, Default::default());
        let want: Vec<f64> = y_kern.iter().map(|&v| v as f64).collect();
        let e = rel_err(&y_plan, &want, 1.0);
        assert!(
            e < 1e-5,
            "K={k} d={d}: plan bf16 {e:e} from the kernels' bf16"
        );
        worst = worst.max(e);
    }
    eprintln!("plan bf16 vs CPU kernels' bf16 emulation: worst relative difference {worst:.1e}");
}

#[test]
fn each_device_selects_its_plan_compute_type() {
    let sel = |p, b, env| resolve(p, b, env).unwrap();
    let cuda = sel(Precision::Bf16, Backend::Cuda, None);
    assert_eq!((cuda.active, cuda.gemm), (Active::F32, Compute::Bf16));
    assert!(cuda.message.unwrap().contains("bf16 conv GEMMs on CUDA"));
    let tf32 = sel(Precision::Tf32, Backend::Cuda, None);
    assert_eq!((tf32.active, tf32.gemm), (Active::F32, Compute::Tf32));
    assert!(tf32.message.unwrap().contains("TF32"));
    let off = sel(Precision::Bf16, Backend::Cuda, Some("off"));
    assert_eq!(off.gemm, Compute::F32);
    assert!(off
        .message
        .unwrap()
        .ends_with("OSAI_BF16=off; running in f32"));
    let metal = sel(Precision::Bf16, Backend::Metal, None);
    assert_eq!(metal.gemm, Compute::Bf16);
    for b in [Backend::Cpu, Backend::Metal] {
        let t = sel(Precision::Tf32, b, None);
        assert_eq!((t.active, t.gemm), (Active::F32, Compute::F32));
        let m = t.message.unwrap();
        assert!(
            m.starts_with("--precision tf32: ") && m.ends_with("no TF32; running in f32"),
            "{m}"
        );
    }
    // The CPU: the plan (OSAI_OPS=reference) follows the kernels.
    let emu = sel(Precision::Bf16, Backend::Cpu, Some("emulate"));
    assert_eq!(
        (emu.active, emu.gemm),
        (Active::Bf16Emulated, Compute::Bf16)
    );
    let f = sel(Precision::F32, Backend::Cuda, None);
    assert_eq!((f.gemm, f.message), (Compute::F32, None));
}

/// The MANE models on the CUDA graph (`OSAI_OPS=reference`, forced for this test binary) with the plan in
/// bf16 and TF32 against f32, on fly windows. The one test here that switches the process-wide compute
/// type (the others pass it explicitly).
#[test]
fn reference_graph_in_bf16_and_tf32_stays_close_to_f32() {
    path::force(OpsPath::Reference).unwrap();
    for flank in [80usize, 400, 2000] {
        let Some(ckpt) = common::mane_checkpoint(flank) else {
            return;
        };
        let cfg = FlankConfig::for_flank(flank).unwrap();
        let Some(x) = fly_windows(cfg, 2) else {
            return;
        };
        let ens = Ensemble::load(&ckpt, cfg, &Device::Cpu).unwrap();
        precision::set_gemm_compute(Compute::F32);
        let y32 = ens.forward(&x).unwrap();
        precision::set_gemm_compute(Compute::Bf16);
        let ybf = ens.forward(&x).unwrap();
        precision::set_gemm_compute(Compute::Tf32);
        let ytf = ens.forward(&x).unwrap();
        precision::set_gemm_compute(Compute::F32);
        let (d_bf, m_bf) = tensor_diff(&y32, &ybf);
        let (d_tf, m_tf) = tensor_diff(&y32, &ytf);
        eprintln!(
            "SpliceAI-{flank} (CUDA graph on the CPU): |p(bf16) − p(f32)| max {d_bf:.5}, mean {m_bf:.2e}; \
             |p(tf32) − p(f32)| max {d_tf:.5}, mean {m_tf:.2e}"
        );
        // bf16: the CPU kernels' bound (tests/bf16.rs); TF32 has 3 more bits: 8× tighter.
        assert!(d_bf < 0.03, "{flank}nt: bf16 plan is {d_bf} from f32");
        assert!(d_tf < 0.004, "{flank}nt: tf32 plan is {d_tf} from f32");
        assert!(
            m_tf < m_bf,
            "{flank}nt: tf32 ({m_tf:e}) no closer than bf16 ({m_bf:e})"
        );
    }
}

/// `forward --precision tf32` on the CPU says on one line that there is no TF32 and writes exactly the
/// f32 output; with `OSAI_OPS=reference` (the CUDA graph) `--precision bf16` (emulated, any CPU) runs the
/// plan in bf16: near the f32 plan, not equal to it.
#[test]
fn forward_takes_the_precision_on_the_cpu() {
    let (Some(ckpt), Some(input)) = (
        common::mane_checkpoint(80),
        common::fixture("parity/forward_80nt.safetensors"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, prec: &str, ops: &str| {
        let out = dir.path().join(format!("{name}.safetensors"));
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_openspliceai-rs"))
            .args(["forward", "-m"])
            .arg(&ckpt)
            .args(["-f", "80", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&out)
            .args(["--device", "cpu", "--precision", prec])
            .env("OSAI_OPS", ops)
            .env("OSAI_BF16", "emulate")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "{text}");
        let t = candle_core::safetensors::load(&out, &Device::Cpu).unwrap();
        (text, t["probs"].clone())
    };
    let (_, f32_native) = run("f32", "f32", "native");
    let (text, tf32) = run("tf32", "tf32", "native");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("TF32")).collect();
    assert_eq!(
        lines,
        ["--precision tf32: CPUs have no TF32; running in f32"],
        "{text}"
    );
    assert_eq!(
        tensor_diff(&f32_native, &tf32).0,
        0.0,
        "tf32 on the CPU must be f32"
    );
    let (_, f32_plan) = run("f32-plan", "f32", "reference");
    let (text, bf16_plan) = run("bf16-plan", "bf16", "reference");
    assert!(text.contains("precision: bf16 emulated"), "{text}");
    let (d, _) = tensor_diff(&f32_plan, &bf16_plan);
    eprintln!("forward fixture 80nt, CUDA graph: |p(bf16) − p(f32)| max {d:.2e}");
    assert!(d > 0.0 && d < 0.03, "bf16 plan {d} from f32");
}

/// The conv op (`conv1d_same_gemm_in`, autograd included) in bf16 and TF32 on the CPU runs exactly the
/// plans above: forward and both gradients equal the plan-level emulation.
#[test]
fn conv_op_in_bf16_and_tf32_runs_the_emulated_plans() {
    use candle_core::Var;
    use openspliceai_rs::ops::conv_gemm::conv1d_same_gemm_in;
    let mut rng = StdRng::seed_from_u64(31);
    let s = ConvShape {
        batch: 2,
        c_in: 32,
        c_out: 32,
        l: 201,
        k: 21,
        dilation: 10,
    };
    let x = rand_vec(&mut rng, s.batch * s.c_in * s.l);
    let w = rand_vec(&mut rng, s.c_out * s.c_in * s.k);
    let bias = rand_vec(&mut rng, s.c_out);
    let g = rand_vec(&mut rng, s.batch * s.c_out * s.l);
    for compute in [Compute::Bf16, Compute::Tf32] {
        let dev = Device::Cpu;
        let xv = Var::from_vec(x.clone(), (s.batch, s.c_in, s.l), &dev).unwrap();
        let wv = Var::from_vec(w.clone(), (s.c_out, s.c_in, s.k), &dev).unwrap();
        let bv = Var::from_vec(bias.clone(), s.c_out, &dev).unwrap();
        let gt = Tensor::from_vec(g.clone(), (s.batch, s.c_out, s.l), &dev).unwrap();
        let y = conv1d_same_gemm_in(xv.as_tensor(), wv.as_tensor(), bv.as_tensor(), 10, compute)
            .unwrap();
        let grads = (&y * &gt).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (py, pgx, pgw) = through_plans(compute, &x, &w, &bias, &g, &s);
        for (name, got, want) in [
            ("y", flat(&y), py),
            ("grad_x", flat(grads.get(xv.as_tensor()).unwrap()), pgx),
            ("grad_w", flat(grads.get(wv.as_tensor()).unwrap()), pgw),
        ] {
            let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
            let e = rel_err(&got, &want, 1.0);
            assert!(
                e < 1e-6,
                "{compute:?} {name}: the op is {e:e} from the plans"
            );
        }
    }
}
