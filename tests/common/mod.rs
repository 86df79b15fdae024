//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// True when running under CI (`CI=true`), where missing fixtures are a failure, not a skip.
pub fn under_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// The shared fixtures folder: `$OSAI_FIXTURES`, else `../shared/fixtures` beside the project.
/// Returns `None` (after printing why) when absent outside CI; panics when absent under CI.
pub fn fixtures_dir() -> Option<PathBuf> {
    let candidate = match std::env::var_os("OSAI_FIXTURES") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"),
    };
    if candidate.is_dir() {
        return Some(candidate);
    }
    if under_ci() {
        panic!(
            "fixtures not found at {} (set OSAI_FIXTURES); they are required under CI=true",
            candidate.display()
        );
    }
    eprintln!(
        "SKIP: fixtures not found at {} (set OSAI_FIXTURES to run this test)",
        candidate.display()
    );
    None
}

/// A file under the fixtures folder, with the same skip/fail rule as [`fixtures_dir`].
pub fn fixture(rel: &str) -> Option<PathBuf> {
    let p = fixtures_dir()?.join(rel);
    if p.exists() {
        return Some(p);
    }
    if under_ci() {
        panic!(
            "fixture {} is missing; it is required under CI=true",
            p.display()
        );
    }
    eprintln!("SKIP: fixture {} is missing", p.display());
    None
}

/// The real OpenSpliceAI-MANE checkpoint for a flanking size.
pub fn mane_checkpoint(flank: usize) -> Option<PathBuf> {
    fixture(&format!(
        "openspliceai-mane/{flank}nt/model_{flank}nt_rs10.pt"
    ))
}

/// The shared `predict`/`variant` data: `$OSAI_PV_DATA`, else `../shared/data/predict-variant` beside the
/// project. Same skip/fail rule as [`fixtures_dir`].
pub fn pv_data() -> Option<PathBuf> {
    let candidate = match std::env::var_os("OSAI_PV_DATA") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/predict-variant"),
    };
    if candidate.is_dir() {
        return Some(candidate);
    }
    if under_ci() {
        panic!(
            "predict/variant data not found at {} (set OSAI_PV_DATA); required under CI=true",
            candidate.display()
        );
    }
    eprintln!(
        "SKIP: predict/variant data not found at {} (set OSAI_PV_DATA)",
        candidate.display()
    );
    None
}

/// A text file, gunzipped when its name ends in `.gz`.
pub fn read_text(path: &std::path::Path) -> String {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        s
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

/// The device the device-parameterised tests (`train_step`) run on: `$OSAI_TEST_DEVICE` (as `--device`
/// takes it), else the CPU. `scripts/gpu-check.sh` runs them with `cuda`.
pub fn test_device() -> candle_core::Device {
    let spec = std::env::var("OSAI_TEST_DEVICE").unwrap_or_else(|_| "cpu".to_string());
    openspliceai_rs::device::select_device(&spec)
        .unwrap_or_else(|e| panic!("OSAI_TEST_DEVICE={spec}: {e}"))
}
