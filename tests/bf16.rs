//! `--precision bf16` (bf16 operands, f32 accumulation) on the CPU: the AVX-512 BF16 conv kernel against an
//! f64 reference and against the portable emulation for every model conv shape, the fallback to f32 with
//! its message, and the probabilities of whole models in bf16 against f32.
//!
//! The error bounds (against f64 convs of the rounded and of the unrounded operands) are stated in
//! `tests/common/bf16.rs`.

mod common;

use std::process::Command;
use std::sync::Mutex;

use candle_core::{Device, Tensor};
use common::bf16::{
    assert_forward_within_bf16_bounds, assert_fused_kernels_agree, conv_shapes, fly_windows,
    max_abs_diff, rounded, tensor_diff, worst,
};
use common::ops::{conv_reference, rand_vec};
use openspliceai_rs::infer::Ensemble;
use openspliceai_rs::model::FlankConfig;
use openspliceai_rs::ops::conv::kernels::{
    forward_bf16, forward_bf16_emulated, forward_bf16_native, grad_weight_bf16,
    grad_weight_bf16_emulated, Dims,
};
use openspliceai_rs::ops::conv::Fusion;
use openspliceai_rs::ops::conv_bf16::round_bf16;
use openspliceai_rs::ops::precision::{self, resolve, Active, Backend, Precision};
use rand::{rngs::StdRng, SeedableRng};

#[test]
fn rounding_to_bf16_is_to_nearest_even() {
    assert_eq!(round_bf16(1.0), 1.0);
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: the tie goes to the even neighbour, 1.
    assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0);
    assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
    assert_eq!(round_bf16(-2.5), -2.5);
    assert!(round_bf16(f32::NAN).is_nan());
    // A NaN whose payload is only in the low half stays a NaN.
    assert!(round_bf16(f32::from_bits(0x7f80_0001)).is_nan());
    assert_eq!(round_bf16(f32::INFINITY), f32::INFINITY);
    assert_eq!(round_bf16(f32::MAX), f32::INFINITY);
    for v in [0.1f32, -3.7, 1e-20, 12345.678] {
        assert!(((round_bf16(v) - v) / v).abs() <= 1.0 / 256.0, "{v}");
    }
}

#[test]
fn f32_is_silent_and_bf16_falls_back_with_a_message_where_it_cannot_run() {
    let f = resolve(Precision::F32, Backend::Cpu, Some("off")).unwrap();
    assert_eq!((f.active, f.message), (Active::F32, None));
    let off = resolve(Precision::Bf16, Backend::Cpu, Some("off")).unwrap();
    assert_eq!(off.active, Active::F32);
    assert!(off
        .message
        .unwrap()
        .ends_with("OSAI_BF16=off; running in f32"));
    let gpu = resolve(Precision::Tf32, Backend::Metal, None).unwrap();
    assert_eq!(gpu.active, Active::F32);
    assert!(gpu.message.unwrap().contains("running in f32"));
    let emu = resolve(Precision::Bf16, Backend::Cpu, Some("emulate")).unwrap();
    assert_eq!(emu.active, Active::Bf16Emulated);
    let auto = resolve(Precision::Bf16, Backend::Cpu, None).unwrap();
    if precision::native_bf16_available() {
        assert_eq!(auto.active, Active::Bf16Native);
    } else {
        assert_eq!(auto.active, Active::F32);
        assert!(auto.message.unwrap().contains("lacks AVX-512 BF16"));
    }
    let bad = resolve(Precision::Bf16, Backend::Cpu, Some("yes")).unwrap_err();
    assert!(bad.contains("OSAI_BF16=yes"), "{bad}");
}

fn native() -> bool {
    let ok = precision::native_bf16_available();
    if !ok {
        // Hardware, not data: no failure under CI (its runners may lack AVX-512 BF16).
        eprintln!("SKIP: {}: this CPU lacks AVX-512 BF16", common::test_name());
    }
    ok
}

#[test]
fn bf16_kernel_is_within_the_bf16_error_bound_of_the_f64_conv_for_every_model_shape() {
    if !native() {
        return;
    }
    assert_forward_within_bf16_bounds(28, "AVX-512 BF16", &forward_bf16);
}

#[test]
fn bf16_kernel_matches_the_emulation_with_every_fusion() {
    if !native() {
        return;
    }
    let emulated =
        |x: &[f32], w: &[f32], b: Option<&[f32]>, dims: Dims, fuse: Fusion<'_, &[f32]>| {
            Some(forward_bf16_emulated(x, w, b, dims, fuse))
        };
    assert_fused_kernels_agree(29, "AVX-512 BF16 vs emulated", &forward_bf16, &emulated);
}

/// Held by the tests that switch the process-wide precision (tests run in parallel threads; the kernel
/// tests never read it).
static PRECISION: Mutex<()> = Mutex::new(());

fn lock_precision() -> std::sync::MutexGuard<'static, ()> {
    PRECISION.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn mane_models_in_bf16_stay_close_to_f32_on_fly_windows() {
    let _guard = lock_precision();
    for flank in [80usize, 400, 2000, 10000] {
        let Some(ckpt) = common::mane_checkpoint(flank) else {
            return;
        };
        let cfg = FlankConfig::for_flank(flank).unwrap();
        let Some(x) = fly_windows(cfg, if flank == 10000 { 1 } else { 2 }) else {
            return;
        };
        let ens = Ensemble::load(&ckpt, cfg, &Device::Cpu).unwrap();
        precision::set_active(Active::F32);
        let y32 = ens.forward(&x).unwrap();
        precision::set_active(Active::Bf16Emulated);
        let yem = ens.forward(&x).unwrap();
        let native = precision::native_bf16_available().then(|| {
            precision::set_active(Active::Bf16Native);
            ens.forward(&x).unwrap()
        });
        precision::set_active(Active::F32);
        let (d_em, m_em) = tensor_diff(&y32, &yem);
        eprintln!("SpliceAI-{flank}: |p(bf16 emulated) − p(f32)| max {d_em:.5}, mean {m_em:.2e}");
        assert!(d_em < 0.03, "{flank}nt: emulated bf16 is {d_em} from f32");
        if let Some(yn) = native {
            let (d, m) = tensor_diff(&y32, &yn);
            let (d_ne, m_ne) = tensor_diff(&yn, &yem);
            eprintln!(
                "SpliceAI-{flank}: |p(bf16) − p(f32)| max {d:.5}, mean {m:.2e}; \
                 |native − emulated| max {d_ne:.2e}, mean {m_ne:.2e}"
            );
            assert!(d < 0.03, "{flank}nt: bf16 is {d} from f32");
            // The same roundings, summed in another order: a sum landing on the other side of a bf16
            // rounding boundary of the next layer's input moves that value by one bf16 step, and the
            // layers after carry it on, so single positions can move about as far as bf16 itself moves
            // them (measured: max 2-4e-3, mean a third of bf16's or less). The kernel tests above hold
            // the two paths to 1e-6 of Σ|x·w| for one conv.
            assert!(
                m_ne < m,
                "{flank}nt: native bf16 is {m_ne:e} from the emulation on average, bf16 {m:e} from f32"
            );
        }
    }
}

fn osai() -> Command {
    Command::new(env!("CARGO_BIN_EXE_openspliceai-rs"))
}

/// `predict --compute-precision bf16` where bf16 cannot run (forced with OSAI_BF16=off) says so on one line
/// and writes exactly the f32 outputs; a bad OSAI_BF16 is refused by name.
#[test]
fn bf16_falls_back_to_f32_with_a_message() {
    let Some(ckpt) = common::mane_checkpoint(80) else {
        return;
    };
    let Some(data) = common::PvData::locate() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &str, extra: &[&str], env: &str| {
        let o = osai()
            .args(["predict", "-i"])
            .arg(data.input("mini.fa"))
            .arg("-m")
            .arg(&ckpt)
            .arg("-o")
            .arg(dir.path().join(out))
            .args(["-f", "80", "-q", "-t", "0.01"])
            .args(extra)
            .env("OSAI_BF16", env)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (ok, err) = run("f32", &[], "off");
    assert!(ok, "{err}");
    let (ok, err) = run("fallback", &["--compute-precision", "bf16"], "off");
    assert!(ok, "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("running in f32"))
        .collect();
    assert_eq!(lines.len(), 1, "one fallback line expected:\n{err}");
    assert!(lines[0].contains("OSAI_BF16=off"), "{err}");
    let read = |run: &str| {
        let d = dir.path().join(run).join("SpliceAI_5000_80");
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| (n.clone(), std::fs::read(d.join(n)).unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        read("f32"),
        read("fallback"),
        "the fallback must be f32 exactly"
    );
    let (ok, err) = run("bad", &["--compute-precision", "bf16"], "maybe");
    assert!(!ok);
    assert!(err.contains("OSAI_BF16=maybe"), "{err}");
    // bf16 itself (native here, or emulated) runs and says which.
    let env = if precision::native_bf16_available() {
        "auto"
    } else {
        "emulate"
    };
    let (ok, err) = run("bf16", &["--compute-precision", "bf16"], env);
    assert!(ok, "{err}");
    assert!(err.contains("precision: bf16"), "{err}");
}

// ---------------------------------------------------------------------------------------------------------
// Training: input and weight gradients in bf16, and a bf16 training run.
// ---------------------------------------------------------------------------------------------------------

/// w (Cout, Cin, K) → the kernel of the input gradient, w' (Cin, Cout, K) flipped in K: the input
/// gradient of a same-padded stride-1 conv is the conv of the output gradient with w', which is how the
/// conv op computes it (through the forward kernels, so in the process's precision).
fn flip_transpose(w: &[f32], cout: usize, cin: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    for co in 0..cout {
        for ci in 0..cin {
            for kk in 0..k {
                out[(ci * cout + co) * k + (k - 1 - kk)] = w[(co * cin + ci) * k + kk];
            }
        }
    }
    out
}

/// The input gradient of Σ y·r with bf16 operands, as the conv op runs it in bf16: the native kernel
/// where it runs (`native`), else the emulation.
fn grad_input_bf16(r: &[f32], w: &[f32], (n, cin, cout, l, k, d): Dims, native: bool) -> Vec<f32> {
    let wt = flip_transpose(w, cout, cin, k);
    let dims = (n, cout, cin, l, k, d);
    if native {
        forward_bf16_native(r, &wt, None, dims, Fusion::default())
            .unwrap()
            .0
    } else {
        forward_bf16_emulated(r, &wt, None, dims, Fusion::default()).0
    }
}

/// Error bound of the gradients, as for the forward (see the top of this file): a gradient is a reduction
/// of bf16 products, R = Cout·K of them for an input gradient and N·L (at most) for a weight gradient, with
/// every operand in [-1, 1): |g − g_exact| ≤ 4 · 2^-8 · √R. Against the exact gradient of the rounded
/// operands only the f32 accumulation differs: 1e-6 · R.
#[test]
fn bf16_input_and_weight_gradients_are_within_the_bf16_error_bound_for_every_model_shape() {
    let native = precision::native_bf16_available();
    let mut rng = StdRng::seed_from_u64(30);
    for (cin, cout, k, d) in conv_shapes() {
        for &(n, l) in &[(2usize, 900usize), (1, 37)] {
            let dims: Dims = (n, cin, cout, l, k, d);
            let x = rand_vec(&mut rng, n * cin * l);
            let w = rand_vec(&mut rng, cout * cin * k);
            let r = rand_vec(&mut rng, n * cout * l);
            let b = vec![0f32; cout];
            let exact = conv_reference(&x, &w, &b, &r, dims);
            let of_rounded = conv_reference(&rounded(&x), &rounded(&w), &b, &rounded(&r), dims);
            let at = format!("Cin {cin} Cout {cout} K {k} d {d} N {n} L {l}");

            let gx = grad_input_bf16(&r, &w, dims, native);
            let rx = (cout * k) as f64;
            let (e, e_acc) = (worst(&gx, &exact.gx), worst(&gx, &of_rounded.gx));
            let bound = 4.0 * (2f64).powi(-8) * rx.sqrt();
            assert!(
                e <= bound,
                "{at}: input gradient max |bf16 − exact| = {e:e} > {bound:e}"
            );
            assert!(
                e_acc <= 1e-6 * rx,
                "{at}: input gradient max |bf16 − exact of rounded| = {e_acc:e}"
            );

            let gw = grad_weight_bf16(&x, &r, dims);
            let rw = (n * l) as f64;
            let (e, e_acc) = (worst(&gw, &exact.gw), worst(&gw, &of_rounded.gw));
            let bound = 4.0 * (2f64).powi(-8) * rw.sqrt();
            assert!(
                e <= bound,
                "{at}: weight gradient max |bf16 − exact| = {e:e} > {bound:e}"
            );
            assert!(
                e_acc <= 1e-6 * rw,
                "{at}: weight gradient max |bf16 − exact of rounded| = {e_acc:e}"
            );
            // bf16 really ran: the f32 gradient is closer to the exact one than bf16's (on the large
            // shapes, where one rounding cannot cancel out by luck).
            if n * l > 100 && cin > 4 {
                let gw32 = openspliceai_rs::ops::conv::kernels::grad_weight_gemm(&x, &r, dims);
                assert!(
                    worst(&gw32, &exact.gw) < e,
                    "{at}: the bf16 weight gradient is f32's"
                );
            }
        }
    }
}

/// The gradients `--precision bf16` runs natively (the AVX-512 BF16 forward for the input gradient; the
/// weight gradient's native kernel where there is one) against the emulation.
#[test]
fn bf16_gradients_native_match_the_emulation_for_every_model_shape() {
    if !native() {
        return;
    }
    let mut rng = StdRng::seed_from_u64(31);
    for (cin, cout, k, d) in conv_shapes() {
        let (n, l) = (2usize, 1000usize);
        let dims: Dims = (n, cin, cout, l, k, d);
        let x = rand_vec(&mut rng, n * cin * l);
        let w = rand_vec(&mut rng, cout * cin * k);
        let r = rand_vec(&mut rng, n * cout * l);
        let at = format!("Cin {cin} Cout {cout} K {k} d {d}");
        let (gx, gxe) = (
            grad_input_bf16(&r, &w, dims, true),
            grad_input_bf16(&r, &w, dims, false),
        );
        let diff = max_abs_diff(&gx, &gxe);
        assert!(
            diff <= 1e-6 * (cout * k) as f32,
            "{at}: input gradient max |native − emulated| = {diff:e}"
        );
        let (gw, gwe) = (
            grad_weight_bf16(&x, &r, dims),
            grad_weight_bf16_emulated(&x, &r, dims),
        );
        let diff = max_abs_diff(&gw, &gwe);
        assert!(
            diff <= 1e-6 * (n * l) as f32,
            "{at}: weight gradient max |native − emulated| = {diff:e}"
        );
    }
}

/// The conv op's backward (what training runs) follows the process's precision: in bf16 its input and
/// weight gradients are exactly the bf16 kernels' above, in f32 the f32 kernels'.
#[test]
fn the_conv_op_backward_runs_in_the_active_precision() {
    use candle_core::Var;
    use openspliceai_rs::ops::conv::conv1d_same;
    let _guard = lock_precision();
    let mut rng = StdRng::seed_from_u64(32);
    let (n, cin, cout, l, k, d) = (2usize, 32usize, 32usize, 300usize, 11usize, 4usize);
    let dims: Dims = (n, cin, cout, l, k, d);
    let (xv, wv, rv) = (
        rand_vec(&mut rng, n * cin * l),
        rand_vec(&mut rng, cout * cin * k),
        rand_vec(&mut rng, n * cout * l),
    );
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::from_vec(xv.clone(), (n, cin, l), &dev).unwrap()).unwrap();
    let w = Var::from_tensor(&Tensor::from_vec(wv.clone(), (cout, cin, k), &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::zeros(cout, candle_core::DType::F32, &dev).unwrap()).unwrap();
    let r = Tensor::from_vec(rv.clone(), (n, cout, l), &dev).unwrap();
    let grads = || {
        let y = conv1d_same(x.as_tensor(), w.as_tensor(), b.as_tensor(), d).unwrap();
        let g = common::ops::weighted_sum_grads(&y, &r);
        let v = |t: &Tensor| {
            g.get(t)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        (v(x.as_tensor()), v(w.as_tensor()))
    };
    let mut modes = vec![(Active::Bf16Emulated, false)];
    if precision::native_bf16_available() {
        modes.push((Active::Bf16Native, true));
    }
    for (mode, native) in modes {
        precision::set_active(mode);
        let (gx, gw) = grads();
        precision::set_active(Active::F32);
        assert_eq!(
            gx,
            grad_input_bf16(&rv, &wv, dims, native),
            "{mode:?}: input gradient"
        );
        let gw_kernel = if native {
            grad_weight_bf16(&xv, &rv, dims)
        } else {
            grad_weight_bf16_emulated(&xv, &rv, dims)
        };
        assert_eq!(gw, gw_kernel, "{mode:?}: weight gradient");
    }
    precision::set_active(Active::F32);
    let (gx32, gw32) = grads();
    assert_ne!(
        gx32,
        grad_input_bf16(&rv, &wv, dims, false),
        "f32 input gradient"
    );
    assert_ne!(
        gw32,
        grad_weight_bf16(&xv, &rv, dims),
        "f32 weight gradient"
    );
}

/// `OSAI_BF16` for a bf16 run on this CPU: the native kernels where they run, else the emulation.
fn bf16_env() -> &'static str {
    if precision::native_bf16_available() {
        "auto"
    } else {
        "emulate"
    }
}

fn run_osai(args: &[&std::ffi::OsStr], env: &str) -> (bool, String, String) {
    let o = osai()
        .args(args)
        .env("OSAI_BF16", env)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(!err.contains("panicked"), "{err}");
    (o.status.success(), out, err)
}

fn metrics(run: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A short bf16 run from scratch (80nt, synthetic data) whose training loss falls epoch after epoch, whose
/// checkpoints are f32 state dicts that load as complete models; then `transfer -A` and `-u 2` in bf16 from
/// it, `test` and `calibrate` in bf16, the fallback (`test`: f32 exactly) and a bad `OSAI_BF16` on `train`.
#[test]
fn bf16_training_run_loss_falls_and_writes_f32_checkpoints() {
    use openspliceai_rs::checkpoint::{self, DType};
    use std::ffi::OsStr;
    let tmp = tempfile::tempdir().unwrap();
    let data = common::example_data(&tmp.path().join("data"), 3, 12, 28);
    let out = tmp.path().join("runs");
    let o = |s: &'static str| OsStr::new(s);
    let run_cmd = |cmd: &'static str,
                   project: &'static str,
                   epochs: &'static str,
                   extra: &[&OsStr],
                   env: &str| {
        let mut a: Vec<&OsStr> = vec![
            o(cmd),
            o("--train-dataset"),
            data.train.as_os_str(),
            o("--test-dataset"),
            data.test.as_os_str(),
            o("-o"),
            out.as_os_str(),
            o("-p"),
            o(project),
            o("-n"),
            o(epochs),
            o("-s"),
            o("CosineAnnealingWarmRestarts"),
            o("--batch-size"),
            o("8"),
            o("--device"),
            o("cpu"),
            o("--quiet"),
            o("--no-report"),
        ];
        a.extend_from_slice(extra);
        run_osai(&a, env)
    };
    let train = |project, epochs, extra: &[&OsStr], env: &str| {
        run_cmd("train", project, epochs, extra, env)
    };
    let (ok, stdout, err) = train("bf16", "3", &[o("--precision"), o("bf16")], bf16_env());
    assert!(ok, "{stdout}\n{err}");
    assert_eq!(
        stdout.matches("precision: bf16").count(),
        1,
        "one precision line expected:\n{stdout}"
    );
    let run = out.join("SpliceAI_bf16_80_0_rs42").join("0");
    let losses: Vec<f64> = metrics(&run)
        .iter()
        .filter(|r| r["split"] == "train" && r["epoch"].as_i64() >= Some(0))
        .map(|r| r["loss"].as_f64().unwrap())
        .collect();
    eprintln!("bf16 train losses per epoch: {losses:?}");
    assert_eq!(losses.len(), 3);
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "the bf16 training loss does not fall: {losses:?}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    let want = if precision::native_bf16_available() {
        "bf16"
    } else {
        "bf16-emulated"
    };
    assert_eq!(info["precision"], want, "run.json: {info}");
    // --resume in another precision is refused, naming the flag.
    let (ok, stdout, err) = train("bf16", "3", &[o("--resume")], bf16_env());
    assert!(!ok, "{stdout}");
    assert!(err.contains("--precision"), "{err}");
    // Checkpoints: f32 tensors (integers for num_batches_tracked), a complete 80nt model.
    let best = run.join("models").join("model_best.pt");
    let sd = checkpoint::load(&best).unwrap();
    for (name, t) in sd.iter() {
        assert!(
            matches!(t.dtype, DType::F32 | DType::I64),
            "{name}: {:?} in a bf16 run's checkpoint",
            t.dtype
        );
    }
    let cfg = FlankConfig::for_flank(80).unwrap();
    Ensemble::load(&best, cfg, &Device::Cpu).expect("the bf16 run's checkpoint loads");

    // transfer in bf16 from it (--compute-precision, the scoring commands' name, is accepted too).
    for (project, unfreeze) in [
        ("bf16A", &[o("-A")][..]),
        ("bf16u2", &[o("-u"), o("2")][..]),
    ] {
        let mut extra = vec![
            o("--compute-precision"),
            o("bf16"),
            o("-m"),
            best.as_os_str(),
        ];
        extra.extend_from_slice(unfreeze);
        let (ok, stdout, err) = run_cmd("transfer", project, "1", &extra, bf16_env());
        assert!(ok, "transfer {project}: {stdout}\n{err}");
        assert!(stdout.contains("precision: bf16"), "{stdout}");
    }
    // The fallback: one line, then f32; a bad OSAI_BF16 is refused by name, before any run directory.
    let (ok, stdout, err) = train("off", "1", &[o("--precision"), o("bf16")], "off");
    assert!(ok, "{stdout}\n{err}");
    assert_eq!(stdout.matches("running in f32").count(), 1, "{stdout}");
    let (ok, stdout, err) = train("bad", "1", &[o("--precision"), o("bf16")], "maybe");
    assert!(!ok, "{stdout}");
    assert!(err.contains("OSAI_BF16=maybe"), "{err}");
    assert!(!out.join("SpliceAI_bad_80_0_rs42").exists());
    // test: in bf16 it runs and says so; forced back to f32 (OSAI_BF16=off) its LOG is f32's exactly.
    let test_dir = |name: &str| tmp.path().join("test").join(name);
    let test = |dir: &std::path::Path, extra: &[&OsStr], env: &str| {
        let mut a: Vec<&OsStr> = vec![
            o("test"),
            o("-m"),
            best.as_os_str(),
            o("--test-dataset"),
            data.test.as_os_str(),
            o("-o"),
            dir.as_os_str(),
            o("--quiet"),
            o("--device"),
            o("cpu"),
        ];
        a.extend_from_slice(extra);
        run_osai(&a, env)
    };
    let (f32_dir, off_dir, bf16_dir) = (test_dir("f32"), test_dir("off"), test_dir("bf16"));
    let bf16 = [o("--precision"), o("bf16")];
    let (ok, stdout, err) = test(&bf16_dir, &bf16, bf16_env());
    assert!(ok, "{stdout}\n{err}");
    assert!(stdout.contains("precision: bf16"), "{stdout}");
    let (ok, stdout, err) = test(&f32_dir, &[], "off");
    assert!(ok, "{stdout}\n{err}");
    let (ok, stdout, err) = test(&off_dir, &bf16, "off");
    assert!(ok, "{stdout}\n{err}");
    assert_eq!(stdout.matches("running in f32").count(), 1, "{stdout}");
    let log = |d: &std::path::Path| {
        let d = d.join("LOG").join("TEST");
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| (n.clone(), std::fs::read(d.join(n)).unwrap()))
            .collect::<Vec<_>>()
    };
    assert!(!log(&f32_dir).is_empty());
    assert_eq!(
        log(&f32_dir),
        log(&off_dir),
        "the fallback must be f32 exactly"
    );
    // calibrate in bf16 (the test file stands in for the validation set).
    let (ok, stdout, err) = run_osai(
        &[
            o("calibrate"),
            o("-m"),
            best.as_os_str(),
            o("--train-dataset"),
            data.train.as_os_str(),
            o("--validation-dataset"),
            data.test.as_os_str(),
            o("--test-dataset"),
            data.test.as_os_str(),
            o("-o"),
            tmp.path().join("calibrate").as_os_str(),
            o("-p"),
            o("cal"),
            o("-q"),
            o("--device"),
            o("cpu"),
            o("--compute-precision"),
            o("bf16"),
        ],
        bf16_env(),
    );
    assert!(ok, "{stdout}\n{err}");
    assert!(stdout.contains("precision: bf16"), "{stdout}");
}
