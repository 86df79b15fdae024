//! The frozen-prefix cache: a cached `--freeze-bn` transfer equals an uncached one within f16 rounding,
//! removes its file at the end, and keeps it with `--keep-cache`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_openspliceai-rs")
}

fn run(args: &[&str]) {
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("run the binary");
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (epoch, split, loss, acceptor auprc) of every metrics.jsonl line.
fn metrics(run_dir: &Path) -> Vec<(i64, String, f64, f64)> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["epoch"].as_i64().unwrap(),
                v["split"].as_str().unwrap().to_string(),
                v["loss"].as_f64().unwrap(),
                v["acceptor"]["auprc"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn cached_run_matches_uncached_run_within_f16_rounding() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let paths = common::example_data(&data, 2, 16, 11);
    let (train, test) = (paths.train.to_str().unwrap(), paths.test.to_str().unwrap());
    let out = tmp.path().join("out");
    let out_s = out.to_str().unwrap();
    // A pretrained model: one short epoch from scratch.
    run(&[
        "train",
        "-train",
        train,
        "-test",
        test,
        "-f",
        "80",
        "-n",
        "1",
        "-p",
        "base",
        "-o",
        out_s,
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--quiet",
    ]);
    let base = out.join("SpliceAI_base_80_0_rs42/0/models/model_best.pt");
    let base_s = base.to_str().unwrap();
    let transfer = |project: &str, extra: &[&str]| -> PathBuf {
        let mut args = vec![
            "transfer",
            "-train",
            train,
            "-test",
            test,
            "-m",
            base_s,
            "-f",
            "80",
            "-u",
            "2",
            "--freeze-bn",
            "-p",
            project,
            "-o",
            out_s,
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--quiet",
            "-s",
            "CosineAnnealingWarmRestarts",
        ];
        args.extend_from_slice(extra);
        run(&args);
        out.join(format!("SpliceAI_{project}_80_0_rs42/0"))
    };
    let cached = transfer("cached", &["-n", "2"]);
    let plain = transfer("plain", &["-n", "2", "--no-cache"]);
    assert!(
        !cached.join("prefix_cache.f16").exists(),
        "the cache file must be removed at the end"
    );
    let (a, b) = (metrics(&cached), metrics(&plain));
    assert_eq!(a.len(), b.len());
    assert_eq!(
        a.len(),
        2 + 3 * 2,
        "baseline val/test + 3 splits × 2 epochs"
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.0, &x.1), (y.0, &y.1));
        // f16 keeps 11 significant bits (relative rounding 2^-11 ≈ 4.9e-4 per activation); the losses
        // average over 10^5 positions, so they agree far closer than that.
        let rel = (x.2 - y.2).abs() / y.2.abs();
        assert!(
            rel < 1e-3,
            "epoch {} {}: loss {} cached vs {} uncached (rel {rel:e})",
            x.0,
            x.1,
            x.2,
            y.2
        );
        assert!(
            (x.3 - y.3).abs() < 2e-2,
            "epoch {} {}: acceptor AUPRC {} vs {}",
            x.0,
            x.1,
            x.3,
            y.3
        );
    }
    // The zero-shot rows (epoch -1) come from the model as loaded, in f32, in every mode: the same
    // numbers with the cache, without it, and with every layer trained (-A, which keeps no cache).
    let all = transfer("all", &["-n", "1", "-A"]);
    let zero_shot = |rows: Vec<(i64, String, f64, f64)>| {
        rows.into_iter().filter(|r| r.0 == -1).collect::<Vec<_>>()
    };
    let baseline = zero_shot(metrics(&plain));
    assert_eq!(baseline.len(), 2, "zero-shot val and test");
    assert_eq!(zero_shot(a), baseline, "cached run's zero-shot rows");
    assert_eq!(
        zero_shot(metrics(&all)),
        baseline,
        "-A run's zero-shot rows"
    );
    // --keep-cache leaves the file, one slot per train, validation and test window.
    let kept = transfer("kept", &["--keep-cache", "-n", "1"]);
    let f = kept.join("prefix_cache.f16");
    let size = std::fs::metadata(&f).expect("kept cache file").len();
    let windows = 32 + 16; // training file (split 90:10) + test file
    let slot = (32 * 5080 + 32 * 5000) * 2;
    assert_eq!(size, (windows * slot) as u64);
}
