//! `--precision bf16` (bf16 operands, f32 accumulation) on the CPU: the AVX-512 BF16 conv kernel against an
//! f64 reference and against the portable emulation for every model conv shape, the fallback to f32 with
//! its message, and the probabilities of whole models in bf16 against f32.
//!
//! Error bound used for the kernel against the exact conv of the unrounded operands: each operand is
//! rounded to 8 significant bits (relative error ≤ 2^-8 each, so ≤ 2·2^-8 per product) and the rounding
//! errors of a reduction of R = Cin·K products add up like a random walk, so
//! |y − y_exact| ≤ 4 · 2^-8 · √R · max|x| · max|w| (a factor 2 over 2·2^-8·√R for the tails). Against the
//! exact conv of the *rounded* operands only the f32 accumulation differs: 1e-5 of Σ|x·w|.

mod common;

use std::process::Command;

use candle_core::{Device, Tensor};
use common::ops::{conv_reference, model_shapes, rand_vec};
use openspliceai_rs::infer::Ensemble;
use openspliceai_rs::model::FlankConfig;
use openspliceai_rs::ops::conv::kernels::{forward_bf16, forward_bf16_emulated, Dims};
use openspliceai_rs::ops::conv::{ChannelMap, Fusion};
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

/// The shapes of every conv of the four models: each (K, d) at 32 → 32 channels, the first conv 4 → 32
/// (1×1), the last 32 → 3 (1×1), and an odd channel count (a padded pair).
fn shapes() -> Vec<(usize, usize, usize, usize)> {
    let mut v: Vec<_> = model_shapes()
        .into_iter()
        .map(|(k, d)| (32, 32, k, d))
        .collect();
    v.extend([(4, 32, 1, 1), (32, 3, 1, 1), (5, 7, 11, 4)]);
    v
}

fn rounded(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| round_bf16(x)).collect()
}

#[test]
fn bf16_kernel_is_within_the_bf16_error_bound_of_the_f64_conv_for_every_model_shape() {
    if !native() {
        return;
    }
    let mut rng = StdRng::seed_from_u64(28);
    for (cin, cout, k, d) in shapes() {
        // Two windows; 1200 positions make two tiles of the kernel with a partial micro-tile.
        for &(n, l) in &[(2usize, 1200usize), (1, 37)] {
            let dims: Dims = (n, cin, cout, l, k, d);
            let x = rand_vec(&mut rng, n * cin * l);
            let w = rand_vec(&mut rng, cout * cin * k);
            let b = rand_vec(&mut rng, cout);
            let (y, _) = forward_bf16(&x, &w, Some(&b), dims, Fusion::default()).unwrap();
            let zeros = vec![0f32; n * cout * l];
            let exact = conv_reference(&x, &w, &b, &zeros, dims).y;
            let of_rounded = conv_reference(&rounded(&x), &rounded(&w), &b, &zeros, dims).y;
            let r = (cin * k) as f64;
            let bound = 4.0 * (2f64).powi(-8) * r.sqrt();
            let (mut worst, mut worst_acc) = (0f64, 0f64);
            for ((&g, &e), &er) in y.iter().zip(&exact).zip(&of_rounded) {
                worst = worst.max((g as f64 - e).abs());
                worst_acc = worst_acc.max((g as f64 - er).abs());
            }
            assert!(
                worst <= bound,
                "Cin {cin} Cout {cout} K {k} d {d} L {l}: max |bf16 − exact| = {worst:e} > {bound:e}"
            );
            // Σ|x·w| ≤ R (operands in [-1, 1)).
            assert!(
                worst_acc <= 1e-6 * r,
                "Cin {cin} Cout {cout} K {k} d {d} L {l}: max |bf16 − exact of rounded| = {worst_acc:e}"
            );
        }
    }
}

#[test]
fn bf16_kernel_matches_the_emulation_with_every_fusion() {
    if !native() {
        return;
    }
    let mut rng = StdRng::seed_from_u64(29);
    for (cin, cout, k, d) in shapes() {
        let (n, l) = (2usize, 1000usize);
        let dims: Dims = (n, cin, cout, l, k, d);
        let x = rand_vec(&mut rng, n * cin * l);
        let w = rand_vec(&mut rng, cout * cin * k);
        let b = rand_vec(&mut rng, cout);
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
            let (y, s) = forward_bf16(&x, &w, Some(&b), dims, fuse).unwrap();
            let (ye, se) = forward_bf16_emulated(&x, &w, Some(&b), dims, fuse);
            let scale = (cin * k) as f32;
            let diff = y
                .iter()
                .zip(&ye)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                diff <= 1e-5 * scale,
                "Cin {cin} Cout {cout} K {k} d {d} fusion {fi}: max |native − emulated| = {diff:e}"
            );
            assert_eq!(s.is_some(), se.is_some());
            if let (Some(s), Some(se)) = (s, se) {
                for ((a1, a2), (b1, b2)) in s.iter().zip(&se) {
                    let tol = 1e-4 * (n * l) as f64 * scale as f64;
                    assert!((a1 - b1).abs() <= tol && (a2 - b2).abs() <= tol * 10.0);
                }
            }
        }
    }
}

/// `n` windows of the model's input length from the fly region, one-hot (N, 4, 5000 + CL).
fn fly_windows(cfg: &FlankConfig, n: usize) -> Option<Tensor> {
    let data = common::PvData::locate()?;
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

/// The largest and the mean |a − b|.
fn diff(a: &Tensor, b: &Tensor) -> (f32, f64) {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mean = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() as f64)
        .sum::<f64>()
        / a.len() as f64;
    let max = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    (max, mean)
}

/// The one test that switches the process-wide precision (tests run in parallel threads; the kernel
/// tests above never read it).
#[test]
fn mane_models_in_bf16_stay_close_to_f32_on_fly_windows() {
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
        let (d_em, m_em) = diff(&y32, &yem);
        eprintln!("SpliceAI-{flank}: |p(bf16 emulated) − p(f32)| max {d_em:.5}, mean {m_em:.2e}");
        assert!(d_em < 0.03, "{flank}nt: emulated bf16 is {d_em} from f32");
        if let Some(yn) = native {
            let (d, m) = diff(&y32, &yn);
            let (d_ne, m_ne) = diff(&yn, &yem);
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
