//! The AMX (`tdpbf16ps`) bf16 conv kernels: the forward against the AVX-512 BF16 kernel and the exact conv of
//! the rounded operands with every fusion, and the weight gradient against the f64 one, for every model conv
//! shape, within the bounds stated in `tests/common/bf16.rs` (1e-6 per product summed against the exact
//! result of the rounded operands, 4 · 2^-8 · √R against the unrounded ones).

mod common;

use common::bf16::{
    assert_forward_within_bf16_bounds, assert_fused_kernels_agree, conv_shapes, rounded, worst,
};
use common::ops::{conv_reference, rand_vec};
use openspliceai_rs::ops::conv::kernels::{
    forward_bf16, forward_bf16_amx, grad_weight_bf16_amx, Dims,
};
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

#[test]
fn amx_forward_is_within_the_bf16_error_bounds_of_the_f64_conv() {
    if !amx() {
        return;
    }
    assert_forward_within_bf16_bounds(281, "AMX", &forward_bf16_amx);
}

#[test]
fn amx_forward_matches_the_avx512_bf16_kernel_with_every_fusion() {
    if !amx() {
        return;
    }
    assert_fused_kernels_agree(282, "AMX vs AVX-512 BF16", &forward_bf16_amx, &forward_bf16);
}

#[test]
fn amx_weight_gradient_matches_the_f64_one_for_every_model_shape() {
    if !amx() {
        return;
    }
    let mut rng = StdRng::seed_from_u64(283);
    for (cin, cout, k, d) in conv_shapes() {
        // 2 × 2000 positions: two tasks per window, the second a partial one; 37: less than a chunk.
        for &(n, l) in &[(2usize, 2000usize), (1, 37)] {
            let dims: Dims = (n, cin, cout, l, k, d);
            let x = rand_vec(&mut rng, n * cin * l);
            let g = rand_vec(&mut rng, n * cout * l);
            let gw = grad_weight_bf16_amx(&x, &g, dims).unwrap();
            let (zw, zb) = (vec![0f32; cout * cin * k], vec![0f32; cout]);
            let positions = (n * l) as f64;
            let of_rounded = conv_reference(&rounded(&x), &zw, &zb, &rounded(&g), dims).gw;
            let e = worst(&gw, &of_rounded);
            assert!(
                e <= 1e-6 * positions,
                "Cin {cin} Cout {cout} K {k} d {d} L {l}: max |AMX gw − exact of rounded| = {e:e}"
            );
            let exact = conv_reference(&x, &zw, &zb, &g, dims).gw;
            let (e, bound) = (worst(&gw, &exact), 4.0 * (2f64).powi(-8) * positions.sqrt());
            assert!(
                e <= bound,
                "Cin {cin} Cout {cout} K {k} d {d} L {l}: max |AMX gw − exact| = {e:e} > {bound:e}"
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
