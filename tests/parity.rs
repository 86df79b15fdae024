//! Forward parity against PyTorch on the real OpenSpliceAI-MANE checkpoints (eval mode, every flanking size),
//! through the library and through the `forward` command, and the checkpoint loading rule (keep the tensors
//! whose name and shape match the model, report loaded / missing / ignored).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use candle_core::{Device, Tensor};
use common::compare::{max_abs_diff, values};
use openspliceai_rs::checkpoint::{self, RawTensor, StateDict};
use openspliceai_rs::model::io::from_checkpoint;
use openspliceai_rs::model::{FlankConfig, ModelError, SpliceAi};

/// Largest |probs − reference| allowed (f32 forward through up to 16 residual units).
const PARITY_TOL: f32 = 2e-5;

/// Seed for the model's initial values (irrelevant where the checkpoint covers every tensor).
const SEED: u64 = 7;

fn load_safetensors(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn get<'a>(tensors: &'a HashMap<String, Tensor>, name: &str, path: &Path) -> &'a Tensor {
    tensors
        .get(name)
        .unwrap_or_else(|| panic!("{} has no tensor `{name}`", path.display()))
}

/// Largest absolute difference; panics on a shape mismatch or a non-finite value.
fn probs_diff(what: &str, got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(
        got.dims(),
        want.dims(),
        "{what}: shape {:?}, reference shape {:?}",
        got.dims(),
        want.dims()
    );
    let g = values(got);
    assert!(
        g.iter().all(|v| v.is_finite()),
        "{what}: non-finite probabilities"
    );
    max_abs_diff(&g, &values(want))
}

/// Library forward of the MANE checkpoint for `flank` against PyTorch's eval-mode `probs`.
fn library_parity(flank: usize) {
    let (Some(ckpt), Some(fixture)) = (
        common::mane_checkpoint(flank),
        common::fixture(&format!("parity/forward_{flank}nt.safetensors")),
    ) else {
        return;
    };
    let (model, report) = from_checkpoint(flank_config(flank), &ckpt, SEED, &Device::Cpu)
        .unwrap_or_else(|e| panic!("loading {}: {e}", ckpt.display()));
    assert!(
        report.missing.is_empty() && report.ignored.is_empty(),
        "{flank}nt checkpoint should match its own model exactly: {report}"
    );
    let tensors = load_safetensors(&fixture);
    let x = get(&tensors, "x", &fixture);
    let want = get(&tensors, "probs", &fixture);
    let probs = model
        .predict(x)
        .unwrap_or_else(|e| panic!("{flank}nt forward: {e}"));
    let d = probs_diff(&format!("{flank}nt library forward"), &probs, want);
    eprintln!("parity {flank}nt (library): max |probs - torch| = {d:.3e}");
    assert!(
        d <= PARITY_TOL,
        "{flank}nt library forward: max |probs - torch| = {d:.3e} > {PARITY_TOL:e}"
    );
}

#[test]
fn forward_parity_80nt() {
    library_parity(80);
}

#[test]
fn forward_parity_400nt() {
    library_parity(400);
}

#[test]
fn forward_parity_2000nt() {
    library_parity(2000);
}

#[test]
fn forward_parity_10000nt() {
    library_parity(10000);
}

/// The `forward` command on the MANE checkpoint for `flank`, compared with PyTorch's `probs`.
fn binary_parity(flank: usize) {
    let (Some(ckpt), Some(fixture)) = (
        common::mane_checkpoint(flank),
        common::fixture(&format!("parity/forward_{flank}nt.safetensors")),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("probs.safetensors");
    let out = Command::new(env!("CARGO_BIN_EXE_openspliceai-rs"))
        .arg("forward")
        .arg("--model")
        .arg(&ckpt)
        .args(["--flanking-size", &flank.to_string()])
        .arg("--input")
        .arg(&fixture)
        .arg("--output")
        .arg(&out_path)
        .args(["--device", "cpu"])
        .output()
        .expect("run openspliceai-rs forward");
    assert!(
        out.status.success(),
        "openspliceai-rs forward ({flank}nt) failed with {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let written = load_safetensors(&out_path);
    let tensors = load_safetensors(&fixture);
    let d = probs_diff(
        &format!("{flank}nt `forward` command"),
        get(&written, "probs", &out_path),
        get(&tensors, "probs", &fixture),
    );
    eprintln!("parity {flank}nt (forward command): max |probs - torch| = {d:.3e}");
    assert!(
        d <= PARITY_TOL,
        "{flank}nt `forward` command: max |probs - torch| = {d:.3e} > {PARITY_TOL:e}"
    );
}

#[test]
fn forward_command_parity_80nt() {
    binary_parity(80);
}

#[test]
fn forward_command_parity_10000nt() {
    binary_parity(10000);
}

/// The state-dict names a model for `flank` expects, in order.
fn expected_names(flank: usize) -> Vec<String> {
    let config = FlankConfig::for_flank(flank).expect("supported flank");
    SpliceAi::new(config, SEED, &Device::Cpu)
        .expect("model")
        .expected()
        .into_iter()
        .map(|(n, _, _)| n)
        .collect()
}

/// Asserts that the model's value of `name` equals `raw` bit for bit.
fn assert_same_values(model: &SpliceAi, name: &str, raw: &RawTensor, source: &str) {
    let got = match model.tensor(name) {
        Some(t) => values(&t),
        None => {
            let c = model
                .counter(name)
                .unwrap_or_else(|| panic!("model has no `{name}`"));
            assert_eq!(
                vec![c],
                raw.to_i64_vec().expect("int counter"),
                "`{name}` was not loaded from {source}"
            );
            return;
        }
    };
    let want = raw.to_f32_vec().expect("float tensor");
    assert!(
        got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
        "`{name}` does not hold the values of {source}"
    );
}

#[test]
fn a_10000nt_checkpoint_loads_every_tensor_of_a_400nt_model() {
    let Some(ckpt) = common::mane_checkpoint(10000) else {
        return;
    };
    let (model, report) = from_checkpoint(flank_config(400), &ckpt, SEED, &Device::Cpu)
        .unwrap_or_else(|e| panic!("loading {} into a 400nt model: {e}", ckpt.display()));
    let expected = expected_names(400);
    assert_eq!(
        report.loaded, expected,
        "every 400nt tensor should be loaded, in state-dict order"
    );
    assert!(
        report.missing.is_empty(),
        "nothing may be missing: {report}"
    );
    let sd = checkpoint::load(&ckpt).expect("10000nt checkpoint");
    let wanted: HashSet<&str> = expected.iter().map(String::as_str).collect();
    let extra: Vec<String> = sd
        .names()
        .into_iter()
        .filter(|n| !wanted.contains(n))
        .map(String::from)
        .collect();
    assert_eq!(
        report.ignored, extra,
        "ignored should list exactly the checkpoint's tensors the 400nt model lacks"
    );
    // The extra tensors are those of units 8-15 (list indices 10-13 and 15-18) and Skips 14 and 19.
    assert_eq!(extra.len(), sd.len() - expected.len());
    for n in &extra {
        let idx: usize = n
            .strip_prefix("residual_units.")
            .and_then(|r| r.split('.').next())
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("ignored tensor `{n}` is not a residual_units entry"));
        assert!(
            (10..=19).contains(&idx),
            "ignored tensor `{n}` belongs to the 400nt layout"
        );
    }
    for name in &expected {
        let raw = sd.get(name).expect("name in the checkpoint");
        assert_same_values(&model, name, raw, "the 10000nt checkpoint");
    }
}

#[test]
fn an_80nt_checkpoint_in_a_400nt_model_reports_the_missing_units() {
    let Some(ckpt) = common::mane_checkpoint(80) else {
        return;
    };
    let (model, report) = from_checkpoint(flank_config(400), &ckpt, SEED, &Device::Cpu)
        .unwrap_or_else(|e| panic!("loading {} into a 400nt model: {e}", ckpt.display()));
    let expected = expected_names(400);
    let is_new = |n: &str| {
        ["5", "6", "7", "8", "9"]
            .iter()
            .any(|i| n.starts_with(&format!("residual_units.{i}.")))
    };
    let want_missing: Vec<String> = expected.iter().filter(|n| is_new(n)).cloned().collect();
    let want_loaded: Vec<String> = expected.iter().filter(|n| !is_new(n)).cloned().collect();
    // Units 4-7 (list indices 5-8: 14 tensors each) and Skip 9 (2 tensors).
    assert_eq!(want_missing.len(), 4 * 14 + 2);
    assert_eq!(
        report.missing, want_missing,
        "missing should be exactly residual_units.5..9"
    );
    assert_eq!(
        report.loaded, want_loaded,
        "every other 400nt tensor should load"
    );
    assert!(
        report.ignored.is_empty(),
        "the 80nt checkpoint has nothing a 400nt model lacks: {report}"
    );
    let sd = checkpoint::load(&ckpt).expect("80nt checkpoint");
    for name in &want_loaded {
        assert_same_values(
            &model,
            name,
            sd.get(name).expect("in checkpoint"),
            "the 80nt checkpoint",
        );
    }
    // The missing tensors keep the seeded initial values of a fresh model.
    let fresh = SpliceAi::new(
        FlankConfig::for_flank(400).expect("400"),
        SEED,
        &Device::Cpu,
    )
    .expect("fresh model");
    let fresh_sd = openspliceai_rs::model::io::state_dict(&fresh).expect("state dict");
    for name in &want_missing {
        assert_same_values(
            &model,
            name,
            fresh_sd.get(name).expect("fresh"),
            "a fresh model",
        );
    }
}

#[test]
fn a_checkpoint_with_no_matching_tensor_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("unrelated_weights.safetensors");
    let mut sd = StateDict::new();
    sd.insert(
        "encoder.layer.0.weight",
        RawTensor::from_f32(vec![2, 2], &[1.0, 2.0, 3.0, 4.0]),
    );
    sd.insert("decoder.bias", RawTensor::from_f32(vec![3], &[0.0; 3]));
    // Right name, wrong shape: still no match.
    sd.insert("final_conv.bias", RawTensor::from_f32(vec![5], &[0.0; 5]));
    checkpoint::save(&path, &sd).expect("write safetensors");
    let err = match from_checkpoint(flank_config(80), &path, SEED, &Device::Cpu) {
        Ok((_, report)) => panic!("a checkpoint with no matching tensor loaded: {report}"),
        Err(e) => e,
    };
    assert!(
        matches!(
            err,
            ModelError::NoMatch {
                flank: 80,
                found: 3,
                ..
            }
        ),
        "expected NoMatch for 80nt with 3 tensors, got {err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "error does not name the file: {msg}"
    );
}

/// The configuration of a flanking size the fixtures use.
fn flank_config(flank: usize) -> &'static openspliceai_rs::model::FlankConfig {
    openspliceai_rs::model::FlankConfig::for_flank(flank).unwrap()
}
