//! The AMX (`tdpbf16ps`) bf16 conv kernels: the forward against the AVX-512 BF16 kernel and the exact conv of
//! the rounded operands with every fusion, and the weight gradient against the f64 one, for every model conv
//! shape. Both kernels round the same operands to bf16 and accumulate in f32, so against the exact result of
//! the rounded operands only f32 summation differs (1e-6 per product summed, operands in [-1, 1)); against
//! the unrounded operands the bf16 bound of tests/bf16.rs applies (4 · 2^-8 · √R).

mod common;

use common::ops::{conv_reference, model_shapes, rand_vec};
use openspliceai_rs::ops::conv::kernels::{
    forward_bf16, forward_bf16_amx, grad_weight_bf16_amx, Dims,
};
use openspliceai_rs::ops::conv::{ChannelMap, Fusion};
use openspliceai_rs::ops::conv_bf16::round_bf16;
use rand::{rngs::StdRng, SeedableRng};

/// Whether the AMX kernels run here (hardware, not data: no failure under CI, whose runners may lack AMX).
fn amx() -> bool {
    let ok = grad_weight_bf16_amx(&[0.0], &[0.0], (1, 1, 1, 1, 1, 1)).is_some();
    if !ok {
        eprintln!(
            "SKIP: {}: no AMX-BF16 here (or OSAI_AMX=off)",
            common::test_name()
        );
    }
    ok
}

/// Every conv of the four models (32 → 32 at each (K, d)), the first 4 → 32 and last 32 → 3 1×1 convs,
/// and odd channel counts that pad whole tiles.
fn shapes() -> Vec<(usize, usize, usize, usize)> {
    let mut v: Vec<_> = model_shapes()
        .into_iter()
        .map(|(k, d)| (32, 32, k, d))
        .collect();
    v.extend([(4, 32, 1, 1), (32, 3, 1, 1), (5, 7, 11, 4), (40, 20, 3, 2)]);
    v
}

fn rounded(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| round_bf16(x)).collect()
}

fn max_diff(a: &[f32], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .fold(0f64, |m, (&x, &y)| m.max((x as f64 - y).abs()))
}

#[test]
fn amx_forward_matches_the_exact_conv_of_the_rounded_operands_and_the_avx512_kernel() {
    if !amx() {
        return;
    }
    let mut rng = StdRng::seed_from_u64(281);
    for (cin, cout, k, d) in shapes() {
        for &(n, l) in &[(2usize, 1200usize), (1, 37)] {
            let dims: Dims = (n, cin, cout, l, k, d);
            let x = rand_vec(&mut rng, n * cin * l);
            let w = rand_vec(&mut rng, cout * cin * k);
            let b = rand_vec(&mut rng, cout);
            let (y, _) = forward_bf16_amx(&x, &w, Some(&b), dims, Fusion::default()).unwrap();
            let zeros = vec![0f32; n * cout * l];
            let r = (cin * k) as f64;
            let of_rounded = conv_reference(&rounded(&x), &rounded(&w), &b, &zeros, dims).y;
            let worst = max_diff(&y, &of_rounded);
            assert!(
                worst <= 1e-6 * r,
                "Cin {cin} Cout {cout} K {k} d {d} L {l}: max |AMX − exact of rounded| = {worst:e}"
            );
            let exact = conv_reference(&x, &w, &b, &zeros, dims).y;
            let (worst, bound) = (max_diff(&y, &exact), 4.0 * (2f64).powi(-8) * r.sqrt());
            assert!(
                worst <= bound,
                "Cin {cin} Cout {cout} K {k} d {d} L {l}: max |AMX − exact| = {worst:e} > {bound:e}"
            );
        }
    }
}

#[test]
fn amx_forward_matches_the_avx512_bf16_kernel_with_every_fusion() {
    if !amx() {
        return;
    }
    let mut rng = StdRng::seed_from_u64(282);
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
            let (y, s) = forward_bf16_amx(&x, &w, Some(&b), dims, fuse).unwrap();
            let Some((ya, sa)) = forward_bf16(&x, &w, Some(&b), dims, fuse) else {
                continue;
            };
            let scale = (cin * k) as f32;
            let diff = y
                .iter()
                .zip(&ya)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                diff <= 1e-5 * scale,
                "Cin {cin} Cout {cout} K {k} d {d} fusion {fi}: max |AMX − AVX-512 BF16| = {diff:e}"
            );
            assert_eq!(s.is_some(), sa.is_some());
            if let (Some(s), Some(sa)) = (s, sa) {
                for ((a1, a2), (b1, b2)) in s.iter().zip(&sa) {
                    let tol = 1e-4 * (n * l) as f64 * scale as f64;
                    assert!((a1 - b1).abs() <= tol && (a2 - b2).abs() <= tol * 10.0);
                }
            }
        }
    }
}

#[test]
fn amx_weight_gradient_matches_the_f64_one_for_every_model_shape() {
    if !amx() {
        return;
    }
    let mut rng = StdRng::seed_from_u64(283);
    for (cin, cout, k, d) in shapes() {
        // 2 × 2000 positions: two tasks per window, the second a partial one; 37: less than a chunk.
        for &(n, l) in &[(2usize, 2000usize), (1, 37)] {
            let dims: Dims = (n, cin, cout, l, k, d);
            let x = rand_vec(&mut rng, n * cin * l);
            let g = rand_vec(&mut rng, n * cout * l);
            let gw = grad_weight_bf16_amx(&x, &g, dims).unwrap();
            let (zw, zb) = (vec![0f32; cout * cin * k], vec![0f32; cout]);
            let positions = (n * l) as f64;
            let of_rounded = conv_reference(&rounded(&x), &zw, &zb, &rounded(&g), dims).gw;
            let worst = max_diff(&gw, &of_rounded);
            assert!(
                worst <= 1e-6 * positions,
                "Cin {cin} Cout {cout} K {k} d {d} L {l}: max |AMX gw − exact of rounded| = {worst:e}"
            );
            let exact = conv_reference(&x, &zw, &zb, &g, dims).gw;
            let (worst, bound) = (
                max_diff(&gw, &exact),
                4.0 * (2f64).powi(-8) * positions.sqrt(),
            );
            assert!(
                worst <= bound,
                "Cin {cin} Cout {cout} K {k} d {d} L {l}: max |AMX gw − exact| = {worst:e} > {bound:e}"
            );
        }
    }
}

/// The startup line names the kernel that runs: AMX here, and with `OSAI_AMX=off` the AVX-512 BF16 forward,
/// whose predictions agree with AMX's to bf16 precision.
#[test]
fn osai_amx_off_selects_the_avx512_bf16_kernel_and_says_so() {
    if !amx() {
        return;
    }
    let Some(ckpt) = common::mane_checkpoint(80) else {
        return;
    };
    let Some(data) = common::PvData::locate() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &str, amx: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_openspliceai-rs"))
            .args(["predict", "-i"])
            .arg(data.input("mini.fa"))
            .arg("-m")
            .arg(&ckpt)
            .arg("-o")
            .arg(dir.path().join(out))
            .args([
                "-f",
                "80",
                "-q",
                "-t",
                "0.01",
                "--compute-precision",
                "bf16",
            ])
            .env("OSAI_AMX", amx)
            .env_remove("OSAI_BF16")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        err
    };
    let on = run("amx", "auto");
    assert!(
        on.contains("precision: bf16 convolutions (AMX, f32 accumulation)"),
        "{on}"
    );
    let off = run("avx512", "off");
    assert!(
        off.contains("precision: bf16 convolutions (AVX-512 BF16, f32 accumulation)"),
        "{off}"
    );
    let read = |run: &str| {
        let d = dir.path().join(run).join("SpliceAI_5000_80");
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|n| std::fs::read_to_string(d.join(n)).unwrap())
            .collect::<Vec<_>>()
    };
    // Both write the same sites (a score moving across the 0.01 threshold would show as one line more or
    // less: the fly region's mini FASTA has none so close).
    let (a, b) = (read("amx"), read("avx512"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.lines().count(), y.lines().count());
    }
}
